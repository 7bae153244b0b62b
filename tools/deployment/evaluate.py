"""Evaluate a deployed PVT file on the config's test set, as tools/test.py evaluates a checkpoint.

    python tools/deployment/evaluate.py CONFIG FILE [--runtime onnxruntime|openvino]
        [--precision f32|bf16|default] [--threads N] [--data-root DIR] [--cfg-options k=v ...]

FILE is an end-to-end graph (``export_onnx.py --end2end``) or the INT8 IR ``quantize.py``
wrote (``--runtime openvino``). Every test image goes through ``pvt_deploy`` (the runner
without torch: its resize, the graph, its mapping back to the image) and the predictions go
to the config's own test_evaluator (COCO box / mask mAP, mIoU) with the ground truth the test
pipeline loads; the metrics print as a JSON line.
"""
import argparse
import json

try:
    from pvt_mm.run.cli import add_cfg_options
    from pvt_mm.run.deployment.evaluate import evaluate_deployed
except ModuleNotFoundError as err:
    raise SystemExit(f'{err}\nRun `make setup` first and use .venv/bin/python (or install '
                     'pvt_mm into your environment: docs/install.md).') from None


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='the config the file was exported from')
    parser.add_argument('file', help='.onnx (export_onnx.py --end2end) or .xml (quantize.py)')
    parser.add_argument('--runtime', choices=('onnxruntime', 'openvino'), default='onnxruntime')
    parser.add_argument('--precision', default='f32',
                        help="the runtime's precision for what is float: f32; OpenVINO also "
                             'bf16, or default')
    parser.add_argument('--threads', type=int, help='intra-op threads')
    parser.add_argument('--data-root', help="override the config's data_root")
    add_cfg_options(parser)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    metrics = evaluate_deployed(args.config, args.file, runtime=args.runtime,
                                precision=None if args.precision == 'default' else args.precision,
                                threads=args.threads, data_root=args.data_root,
                                cfg_options=args.cfg_options)
    print('pvt_mm deployed metrics: ' + json.dumps(metrics, default=float))


if __name__ == '__main__':
    main()
