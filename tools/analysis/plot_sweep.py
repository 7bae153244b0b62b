"""The plot of a ``benchmark.py --sweep`` record: time and memory against the image's pixels,
log-log, pvt_mm beside mmdet's PVT, with each curve's fitted growth exponent.

    python tools/analysis/plot_sweep.py SWEEP.json --out SWEEP.png
"""
import argparse
import json

try:
    from pvt_mm.run.analysis.sweep_plot import plot_sweep
except ModuleNotFoundError as err:
    raise SystemExit(f'{err}\nRun `make setup` first and use .venv/bin/python (or install '
                     'pvt_mm into your environment: docs/install.md).') from None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('record', help='the JSON record benchmark.py --sweep wrote')
    parser.add_argument('--out', required=True, help='the PNG to write')
    args = parser.parse_args(argv)
    with open(args.record) as f:
        plot_sweep(json.load(f), args.out)
    print(f'plot written to {args.out}')


if __name__ == '__main__':
    main()
