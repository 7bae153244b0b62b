"""Predictions from an exported model: the image through the config's test pipeline and the
model's data preprocessor (exactly as tools/test.py feeds PyTorch), onnxruntime for the
network, and the task's upstream post-processing (:mod:`pvt_mm.run.deployment.rules`)
for the rest. The model is built from the config only for its preprocessing and
post-processing; its weights are never loaded or used."""
from __future__ import annotations

import os.path as osp
import time
from typing import Any

from pvt_deploy.schema import END2END_PART, META_CLASSES, META_MODEL, META_OUTPUTS, META_PART

from ..tasks import Task
from .export import read_metadata
from .rules import EXPORT_RULES, export_rules

WHOLE_PARTS = {rules.part: rules.task for rules in EXPORT_RULES.values()}


def check_exported(meta: dict, onnx_path: str, task: Task, model: Any) -> None:
    """Stops with a clear message when the file is not a whole model exported from the config."""
    part = meta.get(META_PART)
    if part is None:
        raise SystemExit(f'onnx_infer: {onnx_path} carries no pvt_mm metadata: export it with '
                         'tools/deployment/export_onnx.py.')
    if part not in WHOLE_PARTS:
        if part == END2END_PART:
            raise SystemExit(f'onnx_infer: {onnx_path} is an end-to-end graph (exported with '
                             '--end2end): it needs no post-processing; run it with '
                             '`python -m pvt_deploy`.')
        what = {'backbone': 'only a backbone (exported with --backbone-only)',
                'detector_rpn': "a two-stage detector up to its RPN (its RoI stage is "
                                'exported with --end2end, for python -m pvt_deploy)'}.get(part, part)
        raise SystemExit(f'onnx_infer: {onnx_path} holds {what}; onnx_infer needs a whole '
                         'single-stage detector, segmentor or classifier.')
    if WHOLE_PARTS[part] is not task or meta.get(META_MODEL) != type(model).__name__:
        raise SystemExit(f'onnx_infer: {onnx_path} was exported from a {meta.get(META_MODEL)}, '
                         f'but the config builds a {type(model).__name__}.')


def build_postprocessor(cfg: Any, task: Task) -> Any:
    """The model built from the config (no weights): its data preprocessor and heads' post-
    processing are what PyTorch inference uses; and the dataset's class names."""
    model = task.build_eval_model(cfg)
    model.dataset_meta = task.dataset_meta(cfg)
    return model


def preprocess(cfg: Any, model: Any, image_path: str) -> tuple[Any, list]:
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


def onnx_predict(image: str, config: str, onnx_file: str, *, out: str, score_thr: float = 0.3,
                 nms_iou: float = 0.5, min_size: int = 640, topk: int = 5,
                 dump: str | None = None, cfg_options: dict | None = None) -> Any:
    """tools/deployment/onnx_infer.py: predicts on ``image`` with ``onnx_file`` in onnxruntime,
    draws the prediction into ``out`` as tools/demo.py does, and with ``dump`` pickles it
    (keyed as tools/test.py's ``--out``). Returns the data sample."""
    import onnxruntime as ort
    import torch
    from mmengine.fileio import dump as dump_file
    from mmengine.registry import init_default_scope

    from ..config import load_config
    from ..inference import draw_prediction

    for what, path in (('image', image), ('ONNX file', onnx_file)):
        if not osp.isfile(path):
            raise SystemExit(f'onnx_infer: {what} {path!r} does not exist.')
    cfg, task = load_config(config, cfg_options)
    init_default_scope(cfg.default_scope)  # the task's registries, as mmdet's and mmseg's apis
    model = build_postprocessor(cfg, task)
    meta = read_metadata(onnx_file)
    check_exported(meta, onnx_file, task, model)
    if meta.get(META_CLASSES):  # the checkpoint's classes, as mmdet's and mmseg's apis take them
        model.dataset_meta['classes'] = tuple(meta[META_CLASSES])
    inputs, samples = preprocess(cfg, model, image)

    session = ort.InferenceSession(onnx_file, providers=['CPUExecutionProvider'])
    expected = session.get_inputs()[0].shape
    fixed = [(axis, d, n) for axis, d, n in zip(('batch', 'channels', 'height', 'width'),
                                                expected, inputs.shape) if isinstance(d, int)]
    wrong = [f'{axis} {n} (the graph takes {d})' for axis, d, n in fixed if d != n]
    if wrong:
        raise SystemExit(f'onnx_infer: the preprocessed image has {", ".join(wrong)}: '
                         f'{onnx_file} was exported at a fixed size; export it with --dynamic.')
    start = time.perf_counter()
    outputs = session.run(None, {'input': inputs.numpy()})
    seconds = time.perf_counter() - start
    with torch.no_grad():
        result = export_rules(task).postprocess(model, meta[META_OUTPUTS],
                                  [torch.from_numpy(o) for o in outputs], samples)
    print(f'onnxruntime ran {osp.basename(onnx_file)} on a {inputs.shape[2]}x{inputs.shape[3]} '
          f'input in {seconds:.3f} s')
    if dump:
        dump_file([dict(img_path=image, **export_rules(task).plain_prediction(result))], dump)
        print(f'prediction pickled to {dump}')
    draw_prediction(task, image, result, model.dataset_meta, out=out, score_thr=score_thr,
                    nms_iou=nms_iou, min_size=min_size, topk=topk)
    return result


__all__ = ['onnx_predict', 'check_exported', 'build_postprocessor', 'preprocess']
