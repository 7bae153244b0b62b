"""One image through a detector, segmentor or classifier, and the prediction drawn, as
``tools/demo.py`` does (``tools/deployment/onnx_infer.py`` draws with the same code)."""
from __future__ import annotations

import os
import os.path as osp
from types import SimpleNamespace
from typing import Any

from .tasks import Task


def demo(image: str, config: str, checkpoint: str, *, out: str, score_thr: float = 0.3,
         nms_iou: float = 0.5, min_size: int = 640, topk: int = 5, amp: bool = False,
         device: str | None = None, cfg_options: dict | None = None) -> Any:
    """Predicts on ``image`` with the task's own apis (mmdet's ``init_detector`` /
    ``inference_detector``, mmseg's ``init_model`` / ``inference_model``, mmpretrain's
    ``get_model`` / ``ImageClassificationInferencer``) on the model with ``checkpoint`` loaded
    strictly (:meth:`pvt_mm.run.tasks.Task.inference`), draws the prediction into ``out`` and
    returns the data sample."""
    import torch

    from ..network.weights import check_source
    from .amp import inference_amp
    from .config import load_config

    if not osp.isfile(image):
        raise FileNotFoundError(f'image {image!r} does not exist.')
    check_source(checkpoint)  # a path, URL or hf-hub: id; a missing file fails here
    cfg, task = load_config(config, cfg_options)
    device = device or ('cuda:0' if torch.cuda.is_available() else 'cpu')
    model, predict = task.inference(cfg, checkpoint, device)
    precision = inference_amp(model, amp)
    result = predict(image)
    if amp:
        print(f'--amp: {precision}')
    draw_prediction(task, image, result, model.dataset_meta, out=out, score_thr=score_thr,
                    nms_iou=nms_iou, min_size=min_size, topk=topk)
    return result


def draw_prediction(task: Task, image_path: str, result: Any, dataset_meta: dict, *, out: str,
                    score_thr: float = 0.3, nms_iou: float = 0.5, min_size: int = 640,
                    topk: int = 5) -> None:
    """Draws ``result`` (the task's data sample) on the image into ``out`` and prints what
    was found; the keywords are the flags of :func:`pvt_mm.run.cli.add_drawing_args`."""
    import mmcv
    options = SimpleNamespace(out=out, score_thr=score_thr, nms_iou=nms_iou, min_size=min_size,
                              topk=topk)
    image = mmcv.imread(image_path, channel_order='rgb')
    scale = display_scale(image.shape[:2], options.min_size)
    picture = mmcv.imrescale(image, scale, interpolation='nearest')
    drawn, vis_cfg, kwargs = task.drawing(result, scale, options)
    visualizer = task.registry('VISUALIZERS').build(vis_cfg)  # the named instance, made once
    visualizer.dataset_meta = dataset_meta
    os.makedirs(osp.dirname(osp.abspath(options.out)), exist_ok=True)
    task.draw(visualizer, picture, drawn, options.out, **kwargs)
    summary = task.summary(result, dataset_meta, options, drawn)
    if summary:
        print(summary)
    print(f'drawn prediction written to {options.out} ({picture.shape[1]}x{picture.shape[0]}, '
          f'{scale}x the image)')


def display_scale(hw: tuple[int, int], min_size: int) -> int:
    """The whole-number upscaling that brings the longer side to at least ``min_size``."""
    return max(1, -(-min_size // max(hw)))


__all__ = ['demo', 'draw_prediction', 'display_scale']
