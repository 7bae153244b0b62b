"""Run an exported PVT detector, segmentor or classifier with onnxruntime on one image.

    python tools/deployment/onnx_infer.py IMAGE CONFIG MODEL.onnx --out FILE
        [--score-thr 0.3] [--nms-iou 0.5] [--min-size 640] [--topk 5] [--dump FILE.pkl]

MODEL.onnx is what tools/deployment/export_onnx.py wrote from CONFIG (without
--backbone-only). The image goes through the config's own test pipeline and the model's
data preprocessor, exactly as tools/test.py feeds PyTorch; onnxruntime (CPU) computes the raw
outputs; mmdet's and mmseg's own post-processing turns them into predictions: the head's
``predict_by_feat`` (anchor decoding, score threshold, NMS, rescaling to the image) for
detectors, the decode head's ``predict_by_feat`` and the segmentor's ``postprocess_result``
(resize to the image, argmax) for segmentors, mmpretrain's head for classifiers. The model
is built from CONFIG only for that post-processing; its weights are never loaded or used.
The prediction is drawn as tools/demo.py draws it, and ``--dump`` pickles it (boxes, scores
and labels; the label map; the class scores) for comparison with tools/test.py's ``--out``.
"""
import argparse

try:
    from pvt_mm.run.cli import add_cfg_options, add_drawing_args
    from pvt_mm.run.deployment.onnx_inference import onnx_predict
except ModuleNotFoundError as err:
    raise SystemExit(f'{err}\nRun `make setup` first and use .venv/bin/python (or install '
                     'pvt_mm into your environment: docs/install.md).') from None


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Predict with an exported PVT model in onnxruntime and draw the result')
    parser.add_argument('image', help='image file')
    parser.add_argument('config', help='the config the model was exported from')
    parser.add_argument('onnx', help='the .onnx file export_onnx.py wrote')
    add_drawing_args(parser)
    parser.add_argument('--dump', help='also pickle the prediction into this .pkl file')
    add_cfg_options(parser)
    return parser.parse_args(argv)


def main(argv=None):
    args = vars(parse_args(argv))
    onnx_predict(args.pop('image'), args.pop('config'), args.pop('onnx'), **args)


if __name__ == '__main__':
    main()
