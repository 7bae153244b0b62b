"""Predict with an end-to-end PVT graph, without torch or OpenMMLab.

    python -m pvt_deploy MODEL.onnx|MODEL_int8.xml IMAGE [IMAGE ...] [--out-dir DIR] [--json FILE]
        [--runtime onnxruntime|openvino] [--precision f32|bf16|default] [--threads N]
        [--score-thr 0.3] [--topk 5]

MODEL.onnx is what ``tools/deployment/export_onnx.py CONFIG CHECKPOINT --end2end --dynamic``
wrote, or the OpenVINO IR ``tools/deployment/quantize.py`` made of it (``--runtime
openvino``). Each image is read with OpenCV, resized as the config's test pipeline resizes it
(the steps are in the file), run through the graph and mapped back to the image: the line
printed per image says what was found; ``--out-dir`` gets the drawn image (and, for a
segmentor, the label map as a PNG) and ``--json`` every prediction in the image's pixels.
"""
from __future__ import annotations

import argparse
import json
import os
import os.path as osp
import sys

from . import Model, draw, read, summary
from .runtimes import RUNTIMES
from .schema import SchemaError
from .tasks import TASKS


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog='python -m pvt_deploy', description=__doc__.split(
        '\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('model', help='the .onnx file export_onnx.py --end2end wrote, or the '
                                      '.xml quantize.py wrote')
    parser.add_argument('images', nargs='+', help='image files')
    parser.add_argument('--out-dir', help='write the drawn images (and label maps) here')
    parser.add_argument('--json', help='write the predictions here (boxes in image pixels)')
    parser.add_argument('--runtime', choices=RUNTIMES, default='onnxruntime')
    parser.add_argument('--precision', default='f32',
                        help="the runtime's inference precision: f32; OpenVINO also bf16, or "
                             'default (bf16 on CPUs with AMX)')
    parser.add_argument('--threads', type=int, help='intra-op threads (default: all cores)')
    parser.add_argument('--score-thr', type=float, default=0.3,
                        help='detections drawn and printed from this score up (the JSON keeps '
                             "every detection the graph returns, above the config's score_thr)")
    parser.add_argument('--topk', type=int, default=5, help='classes printed (classifiers)')
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for path in [args.model, *args.images]:
        if not osp.isfile(path):
            print(f'pvt_deploy: {path!r} does not exist.', file=sys.stderr)
            return 2
    try:
        model = Model(args.model, args.runtime, args.threads,
                      None if args.precision == 'default' else args.precision)
    except (SchemaError, ValueError, ImportError) as e:
        print(f'pvt_deploy: {e}', file=sys.stderr)
        return 2
    where = f' ({model.precision})' if args.runtime == 'openvino' else ''
    if model.weights != 'f32':
        where += f', {model.weights} weights'
    print(f'{osp.basename(args.model)}: {model.meta["model"]} ({model.task}), '
          f'{args.runtime}{where}')
    if args.out_dir:
        os.makedirs(args.out_dir, exist_ok=True)
    records = []
    for path in args.images:
        image = read(path)
        pred = model.predict(image)
        h, w = pred.input_shape
        print(f'{path}: {w}x{h} input, {pred.seconds:.3f} s: '
              f'{summary(pred, model.classes, args.score_thr, args.topk)}')
        record = dict(image=path, seconds=pred.seconds, **pred.to_json(model.classes))
        if args.out_dir:
            import cv2
            stem = osp.splitext(osp.basename(path))[0]
            drawn = osp.join(args.out_dir, f'{stem}.png')
            cv2.imwrite(drawn, draw(image, pred, model.classes, score_thr=args.score_thr,
                                    topk=args.topk, palette=model.meta.get('palette')))
            record['drawn'] = drawn
            record.update(TASKS[pred.task].save_extra(pred, args.out_dir, stem))
        records.append(record)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(records, f)
        print(f'predictions written to {args.json}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
