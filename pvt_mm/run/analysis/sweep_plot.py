"""The plot of a ``benchmark.py --sweep`` record: time and memory against the image's pixels,
log-log, pvt_mm beside its peers (mmdet's PVT; timm's and mmdet's PVTv2), with each curve's
fitted growth exponent
(``tools/analysis/plot_sweep.py`` draws it from a record on disk)."""
from __future__ import annotations

import math

CURVES = {  # panel -> (row mode, field, label) per curve
    'time (s)': [('infer', 's', 'inference'), ('train', 's', 'training step')],
    'memory (MiB)': [('train', 'peak_mb', 'training peak (resident)'),
                     ('train', 'saved_mb', 'held for backward (GPU blocks)')],
}
STYLE = {'pvt_mm': dict(color='tab:blue'), 'mmdet': dict(color='tab:orange'),
         'timm': dict(color='tab:green')}


def growth_exponent(pixels: list[float], values: list[float]) -> float:
    """The least-squares slope of log(value) against log(pixels): value ~ pixels^slope."""
    xs, ys = [math.log(p) for p in pixels], [math.log(v) for v in values]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)


def plot_sweep(record: dict, out: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    runs = sorted(record['runs'], key=lambda r: r['shape'][0] * r['shape'][1])
    pixels = [r['shape'][0] * r['shape'][1] for r in runs]
    fig, axes = plt.subplots(1, len(CURVES), figsize=(13, 5))
    for ax, (panel, curves) in zip(axes, CURVES.items()):
        for (mode, field, label), dash in zip(curves, ('-', '--')):
            for model in ('pvt_mm', *record.get('peers', ['mmdet'])):
                values = [next(row for row in r['rows'] if row['mode'] == mode)
                          [f'{model}_{field}'] for r in runs]
                k = growth_exponent(pixels, values)
                ax.plot(pixels, values, dash, marker='o', **STYLE[model],
                        label=f'{model} {label} (~ pixels^{k:.2f})')
        ax.set_xscale('log')
        ax.set_yscale('log')
        ax.set_xlabel('pixels (H x W)')
        ax.set_ylabel(panel)
        ax.grid(True, which='both', alpha=0.3)
        ax.legend(fontsize=8)
        sizes = ', '.join(f"{r['shape'][0]}x{r['shape'][1]}" for r in runs)
        ax.set_title(f'{panel.split()[0]}: {sizes}', fontsize=9)
    fig.suptitle(f"{record['what']}, batch {record['batch']}, {record['dtype']}, "
                 f"{record['machine']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


__all__ = ['plot_sweep', 'growth_exponent', 'CURVES']
