"""Export a PVT detector, segmentor or classifier, or its backbone alone, to ONNX.

    python tools/deployment/export_onnx.py CONFIG [CHECKPOINT] --out FILE.onnx
        [--shape H W] [--dynamic] [--backbone-only | --end2end] [--attention fused|explicit]
        [--check-shape H W ...] [--no-verify] [--cfg-options k=v ...]

What is exported (the graph's input is what the model's data preprocessor hands the network:
a normalised, padded (1, 3, H, W) float tensor):

* ``--backbone-only``: PVT's pyramid F1..F4 (a classifier's backbone: its logits).
* single-stage detectors (RetinaNet): backbone, neck and head up to the raw per-level class
  scores and box regressions, before anchor decoding and NMS.
* two-stage detectors (Mask R-CNN): backbone, neck and RPN up to the neck's maps and the
  RPN's raw outputs. The RoI stage (proposal NMS, RoIAlign on a data-dependent number of
  proposals, box and mask heads) is in the ``--end2end`` graph only.
* segmentors (Semantic FPN, Trans2Seg): the decode head's logits (stride 4).
* classifiers: the class scores.
* ``--end2end``: the whole predictor, from a (1, 3, H, W) RGB 0-255 image (after the test
  pipeline's resize, which the file's metadata states) to boxes, scores and labels
  (single-stage detectors: decoding and NMS in the graph; Faster / Mask R-CNN: proposals,
  RoIAlign and both heads, with each detection's mask before pasting; DETR), the label map
  (segmentors) or class probabilities (classifiers). ``python -m pvt_deploy`` runs it
  without torch.
* DETR: with ``--backbone-only`` or ``--end2end`` (where the padding mask its transformer
  needs is made from the traced sizes); to raw outputs the tool says why not and stops.

The file is checked with onnx's checker and, unless ``--no-verify``, run once with
onnxruntime on the CPU beside PyTorch on the same input (unit-scale normal values): the
largest absolute difference of every output and both times are printed. CHECKPOINT is the
whole model's checkpoint (what tools/train.py writes, mmdet's model-zoo PVT files, the
official mmdet-2 files), read as every pvt_mm tool reads one: backbone keys in any
published layout converted, every key checked, loaded strictly or refused naming the keys;
its class names go into the file's metadata. With ``--backbone-only`` it goes through PVT's
own loader (a network's weights in any layout, or a whole model's backbone). Without one the weights are random: for trying the export only.
"""
import argparse

try:
    from pvt_mm.run.cli import add_cfg_options
    from pvt_mm.run.deployment.export_model import export_model
except ModuleNotFoundError as err:
    raise SystemExit(f'{err}\nRun `make setup` first and use .venv/bin/python (or install '
                     'pvt_mm into your environment: docs/install.md).') from None


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Export a PVT model (or its backbone) to ONNX and check it with onnxruntime',
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='Parts exported: --backbone-only: F1..F4; RetinaNet and other single-stage '
               'detectors: raw per-level scores and box regressions (no decoding, no NMS); '
               'Mask R-CNN and other two-stage detectors: neck maps and raw RPN outputs (the '
               'RoI stage only with --end2end); segmentors: decode-head logits; classifiers: '
               'class scores; DETR: --backbone-only or --end2end.')
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', nargs='?', help='checkpoint (default: random weights)')
    parser.add_argument('--out', required=True, help='the .onnx file to write')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'),
                        help='example input size (default: from the test pipeline, padded as '
                             'the data preprocessor pads)')
    parser.add_argument('--dynamic', action='store_true',
                        help='height and width as dynamic axes: one file for every input size')
    parser.add_argument('--backbone-only', action='store_true', help='export the backbone alone')
    parser.add_argument('--end2end', action='store_true',
                        help='the whole predictor in one graph: input an RGB 0-255 image after '
                             "the test pipeline's resize; outputs boxes, scores and labels "
                             '(detectors; Mask R-CNN also masks), the label map (segmentors) '
                             'or class probabilities (classifiers); run it with '
                             '`python -m pvt_deploy`')
    parser.add_argument('--attention', choices=['fused', 'explicit'], default='fused',
                        help="PVT's attention path: F.scaled_dot_product_attention (fused) or "
                             'the explicit softmax(QK^T/sqrt(d))V')
    parser.add_argument('--check-shape', type=int, nargs=2, action='append', default=[],
                        metavar=('H', 'W'), help='with --dynamic, also compare onnxruntime with '
                        'PyTorch at this size (repeatable)')
    parser.add_argument('--tolerance', type=float, default=1e-4,
                        help='largest |difference| allowed, relative to the largest |value| of '
                             'each output (at least 1); above it the tool fails')
    parser.add_argument('--no-verify', action='store_true',
                        help='skip the onnxruntime run against PyTorch')
    parser.add_argument('--repeat', type=int, default=3,
                        help='timed runs of each runtime after one warm-up (median printed)')
    parser.add_argument('--opset', type=int, help="ONNX opset (default: the exporter's)")
    add_cfg_options(parser)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    export_model(args.config, args.checkpoint, out=args.out, shape=args.shape,
                 dynamic=args.dynamic, backbone_only=args.backbone_only, end2end=args.end2end,
                 attention=args.attention, check_shapes=args.check_shape,
                 tolerance=args.tolerance, verify=not args.no_verify, repeat=args.repeat,
                 opset=args.opset, cfg_options=args.cfg_options)


if __name__ == '__main__':
    main()
