"""GFLOPs and parameters of a PVT model at a given input size, attention's matrix products counted.

    python tools/analysis/get_flops.py CONFIG [--shape H W] [--cfg-options k=v ...]
    python tools/analysis/get_flops.py --arch small [--shape 224 224]   (or --arch b2 for PVTv2)

With a config: the whole detector, segmentor or classifier's tensor forward (backbone, neck,
heads; no post-processing), as mmdet's, mmseg's and mmpretrain's get_flops measure it. With
--arch: the papers' ImageNet classifier, ``PVT(arch, num_classes=1000)`` for tiny ... large
(Table 2 of the v1 paper: class token, final norm, 1000-way head) or ``PVTv2(arch,
num_classes=1000)`` for b0 ... b5 and b2_li, counted as it runs. Two counts are printed,
multiply-adds and the official get_flops.py's rule (which the papers' tables use), with
their rules (pvt_mm/run/analysis/flops.py).
"""
import argparse
import json

try:
    from pvt_mm.run.analysis.flops import (COUNTING_RULE, OFFICIAL_RULE, count_classifier,
                                            count_config)
    from pvt_mm.run.cli import add_cfg_options
except ModuleNotFoundError as err:
    raise SystemExit(f'{err}\nRun `make setup` first and use .venv/bin/python (or install '
                     'pvt_mm into your environment: docs/install.md).') from None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', nargs='?', help='detection, segmentation or classification config')
    parser.add_argument('--arch', help='instead of a config: a PVT (tiny...large) or PVTv2 (b0...b5, b2_li) size with the classifier')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'),
                        help='input height and width (default: 224x224 with --arch, '
                             '800x1333 for detection, 512x512 for segmentation)')
    add_cfg_options(parser)
    parser.add_argument('--json', action='store_true', help='print one JSON line only')
    args = parser.parse_args(argv)
    if bool(args.config) == bool(args.arch):
        parser.error('give a CONFIG or --arch, not both')
    if args.arch:
        result = count_classifier(args.arch, tuple(args.shape or (224, 224)))
    else:
        result = count_config(args.config, args.shape and tuple(args.shape), args.cfg_options)
    result['counting'] = COUNTING_RULE
    result['official_counting'] = OFFICIAL_RULE
    if args.json:
        print(json.dumps(result))
        return result
    print(f"{result['model']} at {result['input'][0]}x{result['input'][1]}")
    print(f"  GFLOPs: {result['gmacs']:.1f}   (backbone {result['backbone_gmacs']:.2f})")
    print(f"  Params: {result['params_m']:.2f} M")
    print('  by op: ' + ', '.join(f'{k} {v:.2f}' for k, v in result['per_op_gmacs'].items()))
    print(f"  counting: {COUNTING_RULE}")
    print(f"  official count: {result['official_gflops']:.2f} GFLOPs ({OFFICIAL_RULE}; "
          "the papers' tables)")
    return result


if __name__ == '__main__':
    main()
