"""The export rules per task: what part of a model exports to ONNX, at which example size,
which end-to-end graph (:mod:`.graphs`) a model gets, and how the raw outputs of an exported
file become predictions again. One :class:`ExportRules` per entry of the task table
(:data:`pvt_mm.run.tasks.TASKS`), keyed by its name; this module imports the task table, never
the reverse.
"""
from __future__ import annotations

from typing import Any, Callable

import torch
from torch import Tensor, nn

from ..tasks import TASKS, Task, _padded, _test_pipeline, _test_resize, head_groups


# The DETR family's detectors whose own predict runs inside an end-to-end graph (DetrGraph).
DETR_GRAPHS = ('DETR', 'DeformableDETR', 'DINO')


# Why Mask2Former (mmdet's detector, mmseg's head) has no end-to-end graph: what torch.export
# stops at with a symbolic size, per package.
MASKFORMER_REFUSAL = (
    "{kind}: --end2end writes no Mask2Former graph: {what}; mmdet's MSDeformAttnPixelDecoder "
    'also keeps the level sizes in a tensor (torch._shape_as_tensor) and reads them back as '
    "numbers, which pvt_mm's exportable form does for Deformable DETR and DINO only. Export "
    'the backbone with --backbone-only, or run the model in PyTorch.')


class NotExportableError(RuntimeError):
    """A model, or a part of it, that cannot be exported; the message says which and why."""


class ExportRules:
    """One task's export rules; the subclasses below fill them in."""

    part = ''  # the part name of a whole exported model (the file's pvt_mm.part)

    def __init__(self, task: Task) -> None:
        self.task = task

    @property
    def what(self) -> str:
        return self.task.what

    def export_shape(self, cfg: Any) -> tuple[int, int]:
        """The example size: the test pipeline's resize target (h, w), padded as the data
        preprocessor pads; 512x512 when the config names none."""
        target = _test_resize(cfg)
        if target is None:
            return (512, 512)
        pre = cfg.model.get('data_preprocessor', {})
        return _padded(target, pre.get('pad_size_divisor') or pre.get('size_divisor') or 1)

    def exportable(self, model: nn.Module, example: Tensor) -> tuple[Callable, str, list[dict]]:
        """``(fn, part, groups)``: ``fn(model, x)`` computes the exported outputs; ``part``
        names what they are (:attr:`part` for a whole model); ``groups`` names the
        outputs, one entry per argument of the post-processing with its level count.

        Raises:
            NotExportableError: the model's forward cannot be traced to a size-free graph.
        """
        raise NotImplementedError

    def end2end(self, model: nn.Module, cfg: Any) -> tuple[nn.Module, list[str], dict]:
        """``(module, output_names, constants)`` for ``export_onnx.py --end2end``: ``module``
        maps a (1, 3, H, W) RGB 0-255 image to the task's predictions
        (:mod:`pvt_mm.run.deployment.graphs`); ``constants`` are the thresholds written into the graph.

        Raises:
            NotExportableError: the model's post-processing has no graph here (the reason).
        """
        try:
            module, names = self._end2end(model, cfg)
        except ValueError as e:  # graphs.NotEnd2EndError
            raise NotExportableError(str(e)) from None
        return module, names, module.constants()

    def _end2end(self, model: nn.Module, cfg: Any) -> tuple[nn.Module, list[str]]:
        raise NotExportableError(f'{self.what}: no end-to-end graph.')

    def postprocess(self, model: nn.Module, groups: list[dict], outputs: list[Tensor],
                    samples: list) -> Any:
        """Raw outputs of an exported model turned into a data sample with the prediction,
        by the upstream heads' own code."""
        raise NotImplementedError

    def plain_prediction(self, result: Any) -> dict:
        """The prediction as CPU tensors in a plain dict, keyed as tools/test.py's --out."""
        raise NotImplementedError


class DetectionRules(ExportRules):
    part = 'detector'

    def exportable(self, model, example):
        from mmdet.models.detectors import (DetectionTransformer, SingleStageDetector,
                                            TwoStageDetector)
        kind = type(model).__name__
        if isinstance(model, DetectionTransformer):
            raise NotExportableError(
                f'{kind} cannot be exported whole: its transformer builds the padding mask '
                "from each image's size in Python (mmdet's DetectionTransformer reads "
                "img_shape and batch_input_shape from the data samples), which a traced graph "
                'would freeze at the example size. Export the backbone with --backbone-only, '
                'or the whole predictor with --end2end (its mask made in the graph).')
        if isinstance(model, SingleStageDetector):
            with torch.no_grad():
                groups = head_groups(model.bbox_head, model._forward(example))
            return (lambda m, x: m._forward(x)), self.part, groups
        if isinstance(model, TwoStageDetector) and model.with_rpn:
            # The RoI stage takes a data-dependent number of proposals (NMS): it stays out.
            def rpn_part(m, x):
                feats = m.extract_feat(x)
                return feats, m.rpn_head(feats)
            with torch.no_grad():
                feats, rpn = rpn_part(model, example)
            groups = [dict(name='features', levels=len(feats)),
                      *[dict(name=f'rpn_{g["name"]}', levels=g['levels'])
                        for g in head_groups(model.rpn_head, rpn)]]
            return rpn_part, 'detector_rpn', groups
        raise NotExportableError(
            f'{kind}: pvt_mm exports single-stage detectors whole and two-stage ones up to '
            'their RPN; this detector is neither. Export the backbone with --backbone-only.')

    def _end2end(self, model, cfg):
        from mmdet.models.detectors import (DetectionTransformer, SingleStageDetector,
                                            TwoStageDetector)

        from .graphs import DenseDetectorGraph, DetrGraph, ImageInput, TwoStageDetectorGraph
        kind = type(model).__name__
        pre = model.data_preprocessor
        image_input = ImageInput(pre, pre.pad_size_divisor, pre.pad_value)
        if kind in DETR_GRAPHS:  # the padding mask is made in the graph, from the traced sizes
            return DetrGraph(model, image_input), ['boxes', 'scores', 'labels']
        if isinstance(model, DetectionTransformer):
            raise NotExportableError(
                f'{kind}: --end2end writes {", ".join(DETR_GRAPHS)} of the DETR family; '
                'export the backbone with --backbone-only.')
        if kind in ('MaskFormer', 'Mask2Former'):
            raise NotExportableError(MASKFORMER_REFUSAL.format(kind=kind, what=(
                "torch.export stops in its pixel decoder, and mmdet's MaskFormerFusionHead "
                'makes the instances or panoptic map image by image on data samples, which '
                'has no graph here')))
        if isinstance(model, TwoStageDetector):
            module = TwoStageDetectorGraph(model, image_input)
            return module, ['boxes', 'scores', 'labels'] + (['masks'] if module.with_mask else [])
        if not isinstance(model, SingleStageDetector):
            raise NotExportableError(f'{kind}: --end2end writes single-stage and two-stage '
                                     'detectors and DETR.')
        return DenseDetectorGraph(model, image_input), ['boxes', 'scores', 'labels']

    def postprocess(self, model, groups, outputs, samples):
        args, i = [], 0
        for g in groups:
            args.append(outputs[i:i + g['levels']])
            i += g['levels']
        metas = [s.metainfo for s in samples]
        results = model.bbox_head.predict_by_feat(*args, batch_img_metas=metas, rescale=True)
        return model.add_pred_to_datasample(samples, results)[0]

    def plain_prediction(self, result):
        inst = result.pred_instances
        return dict(pred_instances=dict(bboxes=inst.bboxes, scores=inst.scores,
                                        labels=inst.labels))


class SegmentationRules(ExportRules):
    part = 'segmentor'

    def export_shape(self, cfg):
        """The test pipeline's resize target (h, w), padded as mmseg's data preprocessor pads
        at test time (its ``test_cfg``: ``size`` or ``size_divisor``); the crop size when the
        pipeline resizes nothing."""
        target = _test_resize(cfg)
        if target is None:
            return tuple(cfg.crop_size) if cfg.get('crop_size') else super().export_shape(cfg)
        pad = (cfg.model.get('data_preprocessor') or {}).get('test_cfg') or {}
        return tuple(pad['size']) if pad.get('size') else \
            _padded(target, pad.get('size_divisor') or 1)

    def exportable(self, model, example):
        from mmseg.models.segmentors import EncoderDecoder
        if not isinstance(model, EncoderDecoder):
            raise NotExportableError(f'{type(model).__name__}: pvt_mm exports mmseg '
                                     'EncoderDecoder segmentors; export the backbone with '
                                     '--backbone-only.')
        return (lambda m, x: m._forward(x)), self.part, [dict(name='seg_logits', levels=1)]

    def _end2end(self, model, cfg):
        from .graphs import ImageInput, SegmentorGraph
        self.exportable(model, None)  # mmseg EncoderDecoder only: raises otherwise
        head = type(model.decode_head).__name__
        if head in ('MaskFormerHead', 'Mask2FormerHead'):
            raise NotExportableError(MASKFORMER_REFUSAL.format(kind=head, what=(
                "mmseg's head makes the logits in its predict, which first deep-copies the "
                "metainfo holding the traced sizes (torch.export: 'Cannot access data "
                "pointer of Tensor')")))
        pad = (cfg.model.get('data_preprocessor') or {}).get('test_cfg') or {}
        if pad.get('size'):
            raise NotExportableError(
                f"the data preprocessor pads every test image to a fixed size {pad['size']}; "
                'an end-to-end graph pads to a size divisor (test_cfg=dict(size_divisor=N)).')
        pre = model.data_preprocessor
        module = SegmentorGraph(model, ImageInput(pre, pad.get('size_divisor') or 1, pre.pad_val))
        return module, ['labels', 'logits']

    def postprocess(self, model, groups, outputs, samples):
        if model.test_cfg.get('mode', 'whole') != 'whole':
            raise NotExportableError(f"the config tests in {model.test_cfg['mode']!r} mode; "
                                     "an exported segmentor runs 'whole' inference only.")
        logits = model.decode_head.predict_by_feat(outputs[0], [s.metainfo for s in samples])
        return model.postprocess_result(logits, samples)[0]

    def plain_prediction(self, result):
        return dict(pred_sem_seg=result.pred_sem_seg.data[0])


class ClassificationRules(ExportRules):
    part = 'classifier'

    def export_shape(self, cfg):
        for t in _test_pipeline(cfg):
            size = t.get('crop_size')
            if size is not None:
                return (size, size) if isinstance(size, int) else tuple(size)
        return (224, 224)

    def exportable(self, model, example):
        return (lambda m, x: m(x, mode='tensor')), self.part, [dict(name='cls_score', levels=1)]

    def _end2end(self, model, cfg):
        from .graphs import ClassifierGraph, ImageInput
        return ClassifierGraph(model, ImageInput(model.data_preprocessor, 1, 0)), ['probabilities']

    def postprocess(self, model, groups, outputs, samples):
        return model.head._get_predictions(outputs[0], samples)[0]

    def plain_prediction(self, result):
        return dict(pred_score=result.pred_score, pred_label=result.pred_label)


EXPORT_RULES: dict[str, ExportRules] = {
    name: rules(TASKS[name]) for name, rules in (
        ('det', DetectionRules), ('seg', SegmentationRules), ('cls', ClassificationRules))}


def export_rules(task: Task) -> ExportRules:
    """The export rules of a task table entry."""
    return EXPORT_RULES[task.name]


__all__ = ['ExportRules', 'EXPORT_RULES', 'export_rules', 'NotExportableError']
