"""How far an INT8 PVT backbone's pyramid is from the float one, level by level.

    python tools/analysis/int8_agreement.py CONFIG [--shape 800 1344]
        [--calib-dir data/toy/coco/train2017] [--eval-dir data/toy/coco/val2017]
        [--types Softmax MVN Gelu] [--out record.json]

The config's backbone (its own initialisation: no checkpoint is read) is exported with
--dynamic and quantised by NNCF as tools/deployment/quantize.py quantises, calibrated on
--calib-dir's images resized to --shape; then again with each of --types (OpenVINO's names:
the attention's Softmax, LayerNorm as MVN, Gelu) kept in float. Each runs in OpenVINO beside
the float graph on --eval-dir's images; printed per variant: the relative error of each
level, ||F(int8) - F(f32)|| / ||F(f32)||, the mean over the images.
"""
import argparse
import json

try:
    from pvt_mm.run.analysis.int8 import CANDIDATES, pyramid_agreement
    from pvt_mm.run.cli import add_cfg_options
except ModuleNotFoundError as err:
    raise SystemExit(f'{err}\nRun `make setup` first and use .venv/bin/python (or install '
                     'pvt_mm into your environment: docs/install.md).') from None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('--shape', type=int, nargs=2, default=(800, 1344), metavar=('H', 'W'))
    parser.add_argument('--calib-dir', default='data/toy/coco/train2017')
    parser.add_argument('--eval-dir', default='data/toy/coco/val2017')
    parser.add_argument('--types', nargs='*', default=list(CANDIDATES))
    parser.add_argument('--out', help='write the record here (JSON)')
    add_cfg_options(parser)
    args = parser.parse_args(argv)
    record = pyramid_agreement(args.config, calib_dir=args.calib_dir, eval_dir=args.eval_dir,
                               shape=args.shape, candidates=args.types,
                               cfg_options=args.cfg_options)
    print('| variant | ' + ' | '.join(f'F{i + 1}' for i in range(4)) + ' |')
    print('| --- ' * 5 + '|')
    for name, errors in record['variants'].items():
        print(f'| {name} | ' + ' | '.join(f'{e:.4f}' for e in errors) + ' |')
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(record, f, indent=1)


if __name__ == '__main__':
    main()
