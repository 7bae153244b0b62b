"""Time an exported PVT model in onnxruntime and OpenVINO beside pvt_mm's eager PyTorch path.

    python tools/analysis/runtime_speed.py CONFIG [CHECKPOINT] [--shape 800 1333]
        [--parts backbone raw end2end] [--repeat 5] [--cls-bias 0] [--out record.json]
        [--calib-dir data/toy/coco/val2017 | --no-int8]

Each part is exported with --dynamic (the backbone; the network to its raw outputs; the
end-to-end graph, decoding and NMS included), then timed in PyTorch, onnxruntime and, when
installed, OpenVINO in f32 and bf16 and, quantised by NNCF (tools/deployment/quantize.py's
rules, calibrated on the images of --calib-dir resized to --shape), in int8, on one image of
--shape (the raw parts on the tensor its preprocessing makes), median of --repeat runs after a
warm-up. Prints a Markdown table of seconds, ratios to PyTorch and largest differences; --out
writes the record as JSON. Without a CHECKPOINT the weights are random; --cls-bias sets a
detector's classification biases (0: every candidate reaches the NMS, the slowest
post-processing).
"""
import argparse
import json

try:
    from pvt_mm.run.analysis.runtimes import PARTS, format_table, race_runtimes
    from pvt_mm.run.cli import add_cfg_options
except ModuleNotFoundError as err:
    raise SystemExit(f'{err}\nRun `make setup` first and use .venv/bin/python (or install '
                     'pvt_mm into your environment: docs/install.md).') from None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='detection, segmentation or classification config')
    parser.add_argument('checkpoint', nargs='?', help='whole-model checkpoint (default: random)')
    parser.add_argument('--shape', type=int, nargs=2, default=(800, 1333), metavar=('H', 'W'),
                        help='the image size (default 800 1333)')
    parser.add_argument('--parts', nargs='+', choices=PARTS, default=list(PARTS))
    parser.add_argument('--repeat', type=int, default=5, help='timed runs after a warm-up')
    parser.add_argument('--cls-bias', type=float,
                        help="random weights: a detector's classification biases")
    parser.add_argument('--out', help='write the record here (JSON)')
    parser.add_argument('--calib-dir', default='data/toy/coco/val2017',
                        help='images the int8 graphs are calibrated on (default: the toy set '
                             'make demo writes; speed does not depend on them)')
    parser.add_argument('--no-int8', action='store_true', help='leave out the int8 column')
    add_cfg_options(parser)
    args = parser.parse_args(argv)
    record = race_runtimes(args.config, args.checkpoint, shape=args.shape, parts=args.parts,
                           repeat=args.repeat, cls_bias=args.cls_bias,
                           cfg_options=args.cfg_options,
                           calib_dir=None if args.no_int8 else args.calib_dir)
    print(format_table(record))
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(record, f, indent=1)
        print(f'record written to {args.out}')


if __name__ == '__main__':
    main()
