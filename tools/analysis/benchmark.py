"""Speed and memory of pvt_mm's PVT and PVTv2 against mmdet's and timm's with the same weights.

    python tools/analysis/benchmark.py [--arch small | --config CONFIG] [--shape 800 1344]
        [--batch 1] [--dtype fp32|bf16|fp16] [--device cpu|cuda] [--compile]
        [--modes infer train] [--repeat 5] [--warmup 1] [--out FILE.json]
        [--sweep [--sweep-shapes H W ...]] [--allocator glibc|keep|both]

What is timed, and how, is pvt_mm/run/analysis/benchmark.py's docstring; docs/speed.md has
the records in docs/benchmarks/ and the commands that made them.
"""
import argparse
import os.path as osp
import sys

try:
    import torch

    from pvt_mm.run.analysis.benchmark import DTYPES, benchmark
except ModuleNotFoundError as err:
    raise SystemExit(f'{err}\nRun `make setup` first and use .venv/bin/python (or install '
                     'pvt_mm into your environment: docs/install.md).') from None


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    what = parser.add_mutually_exclusive_group()
    what.add_argument('--arch', default='small', help='backbone alone (default: small)')
    what.add_argument('--config', help='a whole detector or segmentor from this config')
    parser.add_argument('--shape', type=int, nargs=2, default=[800, 1344], metavar=('H', 'W'))
    parser.add_argument('--batch', type=int, default=1)
    parser.add_argument('--dtype', choices=sorted(DTYPES), default='fp32')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--compile', action='store_true', help='torch.compile both models')
    parser.add_argument('--peers', nargs='+', choices=['timm', 'mmdet'],
                        help="race only these peers (default: every one the model has: timm's "
                             "and mmdet's for PVTv2, mmdet's for PVT v1 and configs)")
    parser.add_argument('--modes', nargs='+', choices=['infer', 'train'], default=['infer', 'train'])
    parser.add_argument('--repeat', type=int, default=5)
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--out', help='write the JSON record here (with --sweep also the plot, '
                        'as the same name ending in .png)')
    parser.add_argument('--sweep', action='store_true',
                        help='race at every size of --sweep-shapes (default: 512x512, 800x800, '
                             '1024x1024, 800x1333, 1344x1344) and plot cost against pixels')
    parser.add_argument('--sweep-shapes', type=int, nargs=2, action='append',
                        metavar=('H', 'W'), help='a size for --sweep (repeatable)')
    parser.add_argument('--allocator', choices=['glibc', 'keep', 'both'], default='glibc',
                        help="on a CPU: glibc's default heap, freed memory kept for reuse as "
                             'tools/train.py sets it, or one race under each in processes of '
                             'their own (default: glibc)')
    return parser.parse_args(argv)


def main(argv=None):
    command = ' '.join(sys.argv if argv is None else ['benchmark.py', *argv])
    return benchmark(parse_args(argv), command, script=osp.abspath(__file__))


if __name__ == '__main__':
    main()
