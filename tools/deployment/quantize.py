"""Quantise an end-to-end PVT graph to INT8 for OpenVINO (NNCF post-training quantisation).

    python tools/deployment/quantize.py CONFIG CHECKPOINT FILE.onnx --out FILE_int8.xml
        [--calib-images 32] [--calib-split train|val|test] [--data-root DIR]
        [--cfg-options k=v ...]

FILE.onnx is what ``export_onnx.py CONFIG CHECKPOINT --end2end`` wrote. The calibration
images are the first --calib-images of the config's --calib-split dataset (the training
split by default, so the validation figures are not measured on them), each through the
config's test pipeline as tools/test.py feeds the model. The network part of the graph is
quantised (weights and activations INT8); the post-processing (decoding, NMS, resizing)
stays float. The output is an OpenVINO IR (.xml and .bin) with the ONNX file's metadata and
its precision record: ``python -m pvt_deploy FILE_int8.xml IMAGE --runtime openvino`` runs it,
``tools/deployment/evaluate.py CONFIG FILE_int8.xml --runtime openvino`` measures it.
The weights are FILE.onnx's; CHECKPOINT, read safely, must hold the class names the file holds
(a file exported from another model is refused).
"""
import argparse
import json
import os.path as osp

try:
    from pvt_mm.run.cli import add_cfg_options
    from pvt_mm.run.deployment.quantize import quantize
except ModuleNotFoundError as err:
    raise SystemExit(f'{err}\nRun `make setup` first and use .venv/bin/python (or install '
                     'pvt_mm into your environment: docs/install.md).') from None


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='the config the file was exported from')
    parser.add_argument('checkpoint', help='the checkpoint the file was exported from')
    parser.add_argument('onnx', help='the .onnx file export_onnx.py --end2end wrote')
    parser.add_argument('--out', required=True, help='the OpenVINO IR to write (*.xml)')
    parser.add_argument('--calib-images', type=int, default=32,
                        help='calibration images (default 32)')
    parser.add_argument('--calib-split', choices=('train', 'val', 'test'), default='train')
    parser.add_argument('--data-root', help="override the config's data_root")
    add_cfg_options(parser)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if not osp.isfile(args.onnx):
        raise SystemExit(f'{args.onnx} does not exist.')
    if args.calib_images < 1:
        raise SystemExit('--calib-images must be at least 1.')
    record = quantize(args.config, args.onnx, args.out, checkpoint=args.checkpoint,
                      calib_images=args.calib_images,
                      calib_split=args.calib_split, data_root=args.data_root,
                      cfg_options=args.cfg_options)
    print(f'wrote {args.out}: {json.dumps(record)}')


if __name__ == '__main__':
    main()
