"""Plot the loss and metric curves of a training run from its work dir, into a PNG.

    python tools/analysis/plot_curves.py WORK_DIR --out curves.png [--keys loss coco/bbox_mAP]

What mmdet's ``analyze_logs.py plot_curve`` does, without seaborn: it reads the scalars that
mmengine's ``LocalVisBackend`` logged (``<work_dir>/<timestamp>/vis_data/scalars.json``, of
the latest run that trained, unless ``--run`` names one) and draws the training losses against the
iteration and the validation metrics against the step they were evaluated at (epoch or
iteration, as logged). Default keys: every ``loss*`` and every metric logged at validation
that has a value (COCO logs -1 for a size range with no objects).
"""
import argparse
import glob
import json
import os
import os.path as osp

TRAIN_ONLY = {'lr', 'data_time', 'time', 'memory', 'epoch', 'iter', 'step', 'base_lr'}


def find_scalars(work_dir, run=None):
    """The scalars.json of the named run (a timestamp folder), or of the latest run that
    trained (a tools/test.py run into the same work dir logs its metrics only)."""
    pattern = osp.join(work_dir, run or '*', 'vis_data', 'scalars.json')
    found = sorted(glob.glob(pattern), reverse=True)
    trained = [p for p in found if _has_losses(p)]
    if not (found if run else trained):
        raise FileNotFoundError(f'no {osp.join(run or "<timestamp>", "vis_data", "scalars.json")} '
                                f'{"" if run else "with training losses "}in {work_dir!r}: is it '
                                'the work dir of a run by tools/train.py (mmengine LocalVisBackend)?')
    return found[0] if run else trained[0]


def _has_losses(path):
    with open(path) as f:
        return any('"loss' in line for line in f)


def read_curves(path):
    """(train, val): key -> ([x], [y]); train against iteration, val against the logged step."""
    train, val = {}, {}
    with open(path) as f:
        for line in f:
            record = json.loads(line)
            is_train = 'loss' in record or 'lr' in record
            x = record.get('iter', record.get('step')) if is_train else record.get('step')
            for key, value in record.items():
                if key in TRAIN_ONLY or not isinstance(value, (int, float)):
                    continue
                xs, ys = (train if is_train else val).setdefault(key, ([], []))
                xs.append(x)
                ys.append(value)
    return train, val


def plot(train, val, out, keys=None, title=''):
    """Writes the curves to ``out``; returns the keys drawn."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    losses = [k for k in train if (k in keys if keys else k.startswith('loss'))]
    # By default, leave out what COCO marks "not applicable" (-1, e.g. no small objects).
    metrics = [k for k in val if (k in keys if keys else max(val[k][1]) >= 0)]
    missing = [k for k in (keys or []) if k not in train and k not in val]
    if missing:
        raise KeyError(f'not logged in this run: {missing}; logged: '
                       f'{sorted(set(train) | set(val))}')
    panels = [p for p in (('training loss', 'iteration', losses, train),
                          ('validation', 'step (epoch or iteration)', metrics, val)) if p[2]]
    if not panels:
        raise ValueError('nothing to plot: no losses or metrics were logged.')
    fig, axes = plt.subplots(1, len(panels), figsize=(6.4 * len(panels), 4.2), squeeze=False)
    for ax, (name, xlabel, drawn, curves) in zip(axes[0], panels):
        for key in drawn:
            xs, ys = curves[key]
            ax.plot(xs, ys, marker='o' if len(xs) < 30 else None, label=key)
        ax.set_title(name)
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return losses + metrics


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('work_dir', help='the work dir of a training run')
    parser.add_argument('--out', required=True, help='PNG file to write')
    parser.add_argument('--keys', nargs='+', help='scalars to plot (default: losses, metrics)')
    parser.add_argument('--run', help='timestamp folder of the run (default: the latest)')
    args = parser.parse_args(argv)
    path = find_scalars(args.work_dir, args.run)
    train, val = read_curves(path)
    drawn = plot(train, val, args.out, args.keys, title=osp.basename(osp.normpath(args.work_dir)))
    print(f'curves of {", ".join(drawn)} from {path} written to {args.out}')


if __name__ == '__main__':
    main()
