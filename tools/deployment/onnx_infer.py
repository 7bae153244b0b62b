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
import os.path as osp
import sys
import time

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # tools/: demo.py
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))  # export_onnx.py's model building


def parse_args(argv=None):
    from demo import add_drawing_args
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(
        description='Predict with an exported PVT model in onnxruntime and draw the result')
    parser.add_argument('image', help='image file')
    parser.add_argument('config', help='the config the model was exported from')
    parser.add_argument('onnx', help='the .onnx file export_onnx.py wrote')
    add_drawing_args(parser)
    parser.add_argument('--dump', help='also pickle the prediction into this .pkl file')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings in the config, key=value (a.b.c=v)')
    return parser.parse_args(argv)


PARTS = {'detector': 'det', 'segmentor': 'seg', 'classifier': 'cls'}


def check_exported(meta, onnx_path, task, model):
    """Stops with a clear message when the file is not a whole model exported from CONFIG."""
    from pvt_mm.deployment import META_MODEL, META_PART
    part = meta.get(META_PART)
    if part is None:
        raise SystemExit(f'onnx_infer: {onnx_path} carries no pvt_mm metadata: export it with '
                         'tools/deployment/export_onnx.py.')
    if part not in PARTS:
        what = {'backbone': 'only a backbone (exported with --backbone-only)',
                'detector_rpn': "a two-stage detector up to its RPN (the RoI stage is not "
                                'exported)'}.get(part, part)
        raise SystemExit(f'onnx_infer: {onnx_path} holds {what}; onnx_infer needs a whole '
                         'single-stage detector, segmentor or classifier.')
    if PARTS[part] != task or meta.get(META_MODEL) != type(model).__name__:
        raise SystemExit(f'onnx_infer: {onnx_path} was exported from a {meta.get(META_MODEL)}, '
                         f'but the config builds a {type(model).__name__}.')


def build_postprocessor(cfg, task):
    """The model built from the config (no weights): its data preprocessor and heads' post-
    processing are what PyTorch inference uses; and the dataset's class names."""
    from export_onnx import build_model

    from pvt_mm.config import task_registry
    model = build_model(cfg, task)
    dataset_cfg = cfg.test_dataloader.dataset
    dataset_cls = task_registry(task, 'DATASETS').get(dataset_cfg.type)
    meta = dict(getattr(dataset_cls, 'METAINFO', {}) or {})
    meta.update(dataset_cfg.get('metainfo') or {})
    model.dataset_meta = meta
    return model


def preprocess(cfg, model, image_path):
    """The image through the config's test pipeline (annotation loading left out) and the
    model's data preprocessor: the network's input and the data sample with its metainfo."""
    import torch
    from mmengine.dataset import Compose, pseudo_collate
    steps = [t for t in cfg.test_dataloader.dataset.pipeline
             if not str(t['type']).split('.')[-1].startswith('LoadAnnotations')]
    data = Compose(steps)(dict(img_path=image_path, img_id=0))
    with torch.no_grad():
        batch = model.data_preprocessor(pseudo_collate([data]), False)
    return batch['inputs'], batch['data_samples']


def postprocess(task, model, groups, outputs, samples):
    """The raw outputs turned into predictions by the upstream heads' own code."""
    import torch
    tensors = [torch.from_numpy(o) for o in outputs]
    metas = [s.metainfo for s in samples]
    with torch.no_grad():
        if task == 'det':
            args, i = [], 0
            for g in groups:
                args.append(tensors[i:i + g['levels']])
                i += g['levels']
            results = model.bbox_head.predict_by_feat(*args, batch_img_metas=metas, rescale=True)
            return model.add_pred_to_datasample(samples, results)[0]
        if task == 'seg':
            if model.test_cfg.get('mode', 'whole') != 'whole':
                raise SystemExit(f"onnx_infer: the config tests in {model.test_cfg['mode']!r} "
                                 "mode; onnx_infer runs 'whole' inference only.")
            logits = model.decode_head.predict_by_feat(tensors[0], metas)
            return model.postprocess_result(logits, samples)[0]
        return model.head._get_predictions(tensors[0], samples)[0]


def as_plain(task, result, image_path):
    """The prediction as CPU tensors in a plain dict, keyed as tools/test.py's --out."""
    if task == 'det':
        inst = result.pred_instances
        pred = dict(pred_instances=dict(bboxes=inst.bboxes, scores=inst.scores,
                                        labels=inst.labels))
    elif task == 'seg':
        pred = dict(pred_sem_seg=result.pred_sem_seg.data[0])
    else:
        pred = dict(pred_score=result.pred_score, pred_label=result.pred_label)
    return dict(img_path=image_path, **pred)


def main(argv=None):
    args = parse_args(argv)
    import mmcv
    import onnxruntime as ort
    from demo import draw_prediction
    from mmengine.fileio import dump
    from mmengine.registry import init_default_scope

    from pvt_mm.config import load_config
    from pvt_mm.deployment import META_CLASSES, META_OUTPUTS, read_metadata

    for what, path in (('image', args.image), ('ONNX file', args.onnx)):
        if not osp.isfile(path):
            raise SystemExit(f'onnx_infer: {what} {path!r} does not exist.')
    cfg, task = load_config(args.config, args.cfg_options)
    init_default_scope(cfg.default_scope)  # the task's registries, as mmdet's and mmseg's apis
    model = build_postprocessor(cfg, task)
    meta = read_metadata(args.onnx)
    check_exported(meta, args.onnx, task, model)
    if meta.get(META_CLASSES):  # the checkpoint's classes, as mmdet's and mmseg's apis take them
        model.dataset_meta['classes'] = tuple(meta[META_CLASSES])
    inputs, samples = preprocess(cfg, model, args.image)

    session = ort.InferenceSession(args.onnx, providers=['CPUExecutionProvider'])
    expected = session.get_inputs()[0].shape
    fixed = [(axis, d, n) for axis, d, n in zip(('batch', 'channels', 'height', 'width'),
                                                expected, inputs.shape) if isinstance(d, int)]
    wrong = [f'{axis} {n} (the graph takes {d})' for axis, d, n in fixed if d != n]
    if wrong:
        raise SystemExit(f'onnx_infer: the preprocessed image has {", ".join(wrong)}: '
                         f'{args.onnx} was exported at a fixed size; export it with --dynamic.')
    start = time.perf_counter()
    outputs = session.run(None, {'input': inputs.numpy()})
    seconds = time.perf_counter() - start
    result = postprocess(task, model, meta[META_OUTPUTS], outputs, samples)
    print(f'onnxruntime ran {osp.basename(args.onnx)} on a {inputs.shape[2]}x{inputs.shape[3]} '
          f'input in {seconds:.3f} s')
    if args.dump:
        dump([as_plain(task, result, args.image)], args.dump)
        print(f'prediction pickled to {args.dump}')
    image = mmcv.imread(args.image, channel_order='rgb')
    draw_prediction(task, image, result, model.dataset_meta, args)


if __name__ == '__main__':
    main()
