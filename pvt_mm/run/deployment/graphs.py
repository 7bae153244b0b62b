"""Whole predictors in one ONNX graph (``tools/deployment/export_onnx.py --end2end``).

The graph's input is one image as the caller has it after the config's test resize: a
(1, 3, H, W) float tensor, RGB, 0-255. Inside the graph:

* :class:`ImageInput`: the data preprocessor's work (channel order, mean / std, padding to
  the size divisor), with the constants taken from the model's own preprocessor;
* the network (``model._forward``), then the task's post-processing:
  :class:`DenseDetectorGraph` (priors from the run-time map sizes, box decoding with the head's own
  coder, score threshold, top-k, class-wise NMS through ``torchvision.ops.nms``, which the
  ONNX exporter writes as ``NonMaxSuppression``), :class:`DetrGraph` (mmdet's own DETR,
  Deformable DETR and DINO prediction, the padding mask made from the traced sizes),
  :class:`SegmentorGraph` (the logits resized to the input, the label map) and
  :class:`ClassifierGraph` (probabilities).

What stays outside is what needs the original image: reading it, the test pipeline's resize,
and mapping boxes (or the label map) back to it. :func:`resize_steps` writes that resize into
the file's metadata so that a runner without torch (``pvt_deploy``) can repeat it.
Which module a model gets is its task's export rules' (:mod:`pvt_mm.run.deployment.rules`);
this file imports nothing of pvt_mm.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn


class NotEnd2EndError(ValueError):
    """A model or test pipeline without an end-to-end graph here; the message says why (the
    export rules turn it into their NotExportableError)."""


# The single-stage heads whose post-processing is written here, by how their per-level
# outputs become boxes. Another head (with its own predict_by_feat) is refused by name.
DENSE_HEADS = ('RetinaHead', 'ATSSHead', 'GFLHead')


def _padded_to(x: Tensor, divisor: int, value: float) -> Tensor:
    """``x`` padded at the bottom and right to a multiple of ``divisor``, as mmengine's
    ``stack_batch`` and mmdet's data preprocessor pad."""
    if divisor <= 1:
        return x
    h, w = x.shape[-2:]
    # Sizes are positive: (n + d - 1) // d rounds up. ONNX's integer Div truncates, so the
    # floor of a negative, -(-n // d), would come out one less in the graph.
    return nn.functional.pad(x, (0, (w + divisor - 1) // divisor * divisor - w, 0,
                                 (h + divisor - 1) // divisor * divisor - h), value=value)


class ImageInput(nn.Module):
    """An RGB 0-255 image made into the network's input as the model's data preprocessor
    makes it: RGB to BGR when the model was trained on BGR, ``(x - mean) / std``, then padding
    to ``size_divisor`` with ``pad_value``."""

    def __init__(self, preprocessor: nn.Module, size_divisor: int, pad_value: float) -> None:
        super().__init__()
        # mmengine / mmdet: _channel_conversion; mmseg: channel_conversion; mmpretrain: to_rgb.
        converts = any(bool(getattr(preprocessor, k, False))
                       for k in ('_channel_conversion', 'channel_conversion', 'to_rgb'))
        # The pipeline loads BGR (mmcv); a converting preprocessor hands the network RGB.
        self.to_bgr = not converts
        if getattr(preprocessor, '_enable_normalize', True) is False:
            mean, std = torch.zeros(3), torch.ones(3)
        else:
            mean, std = preprocessor.mean.flatten(), preprocessor.std.flatten()
        self.register_buffer('mean', mean.reshape(1, 3, 1, 1).clone().float(), persistent=False)
        self.register_buffer('std', std.reshape(1, 3, 1, 1).clone().float(), persistent=False)
        self.size_divisor = int(size_divisor or 1)
        self.pad_value = float(pad_value)

    def forward(self, image: Tensor) -> Tensor:
        x = image.flip(1) if self.to_bgr else image
        return _padded_to((x - self.mean) / self.std, self.size_divisor, self.pad_value)

    def describe(self) -> dict:
        return dict(mean=self.mean.flatten().tolist(), std=self.std.flatten().tolist(),
                    network_channels='BGR' if self.to_bgr else 'RGB',
                    size_divisor=self.size_divisor, pad_value=self.pad_value)


def class_wise_nms(boxes: Tensor, scores: Tensor, labels: Tensor, iou: float) -> Tensor:
    """Indices kept by NMS within each class, best first: mmcv's ``batched_nms`` rule (boxes
    of different classes moved apart by ``label * (max coordinate + 1)``), with torchvision's
    ``nms`` (ONNX ``NonMaxSuppression``)."""
    from torchvision.ops import nms
    # mmcv's max coordinate; with a 0 beside it, so that no detection is no error (boxes
    # are clipped to the image, so the 0 changes nothing otherwise).
    top = torch.cat([boxes.flatten(), boxes.new_zeros(1)]).max()
    offsets = labels.to(boxes) * (top + 1)
    return nms(boxes + offsets[:, None], scores, iou)


class DenseDetectorGraph(nn.Module):
    """A single-stage detector (RetinaNet, ATSS, GFL) from image to ``boxes (N, 4)`` in the
    input's pixels, ``scores (N,)`` and ``labels (N,)``: the steps and constants of mmdet's
    ``BaseDenseHead.predict_by_feat`` for one image (``GFLHead``'s own per-level decoding for
    GFL), with its ``test_cfg``: per level the best ``nms_pre`` (anchor, class) scores above
    ``score_thr``; boxes decoded by the head's coder and clipped to the input; ATSS's
    centerness multiplied in; boxes not wider and taller than ``min_bbox_size`` dropped;
    class-wise NMS; the best ``max_per_img``."""

    def __init__(self, model: nn.Module, image_input: ImageInput) -> None:
        super().__init__()
        head = model.bbox_head
        kind = type(head).__name__
        if kind not in DENSE_HEADS:
            raise NotEnd2EndError(
                f'{type(model).__name__} with a {kind}: --end2end writes the post-processing '
                f'of {", ".join(DENSE_HEADS)}; export this head to raw outputs (without '
                '--end2end) and post-process them with tools/deployment/onnx_infer.py.')
        cfg = head.test_cfg
        nms = cfg.get('nms') or {}
        if nms.get('type', 'nms') != 'nms':
            raise NotEnd2EndError(f"test_cfg.nms type {nms['type']!r}: only plain 'nms' "
                                     'has an ONNX operator (NonMaxSuppression).')
        self.model, self.image_input, self.kind = model, image_input, kind
        self.score_thr = float(cfg.get('score_thr', 0))
        self.nms_pre = int(cfg.get('nms_pre', -1))
        self.iou = float(nms.get('iou_threshold', 0.5))
        self.max_per_img = int(cfg.get('max_per_img', 100))
        self.min_bbox_size = float(cfg.get('min_bbox_size', -1))
        # The smallest input whose every level is at least 2 wide: a dynamic graph traced
        # smaller would fix the coarsest map's size (torch.export specialises sizes of 1).
        self.trace_size = 2 * max(int(s[0]) for s in head.prior_generator.strides)

    def constants(self) -> dict:
        return dict(score_thr=self.score_thr, nms_pre=self.nms_pre, iou_threshold=self.iou,
                    max_per_img=self.max_per_img, min_bbox_size=self.min_bbox_size)

    def _level(self, cls: Tensor, reg: Tensor, factor: Tensor | None, priors: Tensor,
               stride: Any) -> tuple[Tensor, ...]:
        """One level's candidates: (boxes' encodings, priors, scores, labels, factors)."""
        head = self.model.bbox_head
        c = head.cls_out_channels
        cls = cls.permute(1, 2, 0).reshape(-1, c)
        scores = cls.sigmoid() if head.use_sigmoid_cls else cls.softmax(-1)[:, :-1]
        c = scores.shape[1]
        if self.kind == 'GFLHead':  # distances from the anchor centre, in pixels
            reg = head.integral(reg.permute(1, 2, 0)) * stride[0]
        else:
            reg = reg.permute(1, 2, 0).reshape(-1, head.bbox_coder.encode_size)
        flat = scores.reshape(-1)
        k = flat.shape[0] if self.nms_pre <= 0 else torch.sym_min(self.nms_pre, flat.shape[0])
        # The best k of all; the threshold comes after decoding (boxes of a data-dependent
        # count do not trace through mmdet's coders). The same set and order as mmdet's
        # filter_scores_and_topk (threshold first, then the best nms_pre of what passed).
        top, index = flat.topk(k)
        anchor, label = index // c, index % c
        if factor is not None:
            factor = factor.permute(1, 2, 0).reshape(-1).sigmoid()[anchor]
        return reg[anchor], priors[anchor], top, label, factor

    def forward(self, image: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        head = self.model.bbox_head
        h, w = image.shape[-2:]
        outs = self.model._forward(self.image_input(image))
        cls_scores, bbox_preds = outs[0], outs[1]
        factors = outs[2] if len(outs) > 2 and self.kind == 'ATSSHead' else [None] * len(cls_scores)
        sizes = [s.shape[-2:] for s in cls_scores]
        priors = head.prior_generator.grid_priors(sizes, dtype=cls_scores[0].dtype,
                                                  device=cls_scores[0].device)
        parts = [self._level(c[0], r[0], None if f is None else f[0], p, s)
                 for c, r, f, p, s in zip(cls_scores, bbox_preds, factors, priors,
                                          head.prior_generator.strides)]
        regs, anchors, scores, labels, fs = (list(x) for x in zip(*parts))
        if self.kind == 'GFLHead':  # decoded per level from the anchor centres
            boxes = torch.cat([head.bbox_coder.decode(head.anchor_center(a), r, max_shape=(h, w))
                               for a, r in zip(anchors, regs)])
        else:
            boxes = head.bbox_coder.decode(torch.cat(anchors), torch.cat(regs), max_shape=(h, w))
        scores, labels = torch.cat(scores), torch.cat(labels)
        keep = scores > self.score_thr
        if fs[0] is not None:
            scores = scores * torch.cat(fs)
        if self.min_bbox_size >= 0:
            keep &= ((boxes[:, 2] - boxes[:, 0]) > self.min_bbox_size) & \
                    ((boxes[:, 3] - boxes[:, 1]) > self.min_bbox_size)
        boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
        keep = class_wise_nms(boxes, scores, labels, self.iou)[:self.max_per_img]
        return boxes[keep], scores[keep], labels[keep]


def roi_features(extractor: nn.Module, feats: Sequence[Tensor], rois: Tensor) -> Tensor:
    """mmdet's ``SingleRoIExtractor`` with torchvision's ``roi_align`` (ONNX ``RoiAlign``) in
    place of mmcv's compiled op, same parameters: every RoI pooled on every level, each kept
    from the level ``map_roi_levels`` assigns it (mmdet's own ONNX-export branch, which avoids
    a data-dependent split)."""
    from torchvision.ops import roi_align
    layers = extractor.roi_layers
    levels = extractor.map_roi_levels(rois, len(layers))
    out = None
    for i, layer in enumerate(layers):
        pooled = roi_align(feats[i], rois, layer.output_size, layer.spatial_scale,
                           layer.sampling_ratio, layer.aligned)
        pick = (levels == i)[:, None, None, None]
        out = torch.where(pick, pooled, 0.0 if out is None else out)
    return out


class TwoStageDetectorGraph(nn.Module):
    """An mmdet ``TwoStageDetector`` with a ``StandardRoIHead`` (Faster / Mask R-CNN) from
    image to ``boxes (N, 4)``, ``scores (N,)``, ``labels (N,)`` in the input's pixels and, with
    a mask head, ``masks (N, M, M)``: each detection's mask probabilities for its class, before
    pasting (mmdet pastes them at the box in the original image; ``pvt_deploy`` does).

    The steps and constants of mmdet's ``predict``: the RPN's best ``nms_pre`` anchors per
    level, decoded and clipped, boxes not wider and taller than ``min_bbox_size`` dropped,
    NMS per level, the best ``max_per_img`` proposals; RoIAlign (:func:`roi_features`); the
    box head's softmax and per-class decoding, ``score_thr``, class-wise NMS, the best
    ``max_per_img``; RoIAlign of the detections and the mask head, sigmoid."""

    def __init__(self, model: nn.Module, image_input: ImageInput) -> None:
        super().__init__()
        roi_head = model.roi_head
        kind = type(roi_head).__name__
        if kind != 'StandardRoIHead' or getattr(roi_head, 'with_shared_head', False):
            raise NotEnd2EndError(f'{type(model).__name__} with a {kind}: --end2end writes '
                                  "the StandardRoIHead's stages (Faster / Mask R-CNN).")
        for cfg in (model.rpn_head.test_cfg, roi_head.test_cfg):
            if (cfg.get('nms') or {}).get('type', 'nms') != 'nms':
                raise NotEnd2EndError(f"test_cfg nms type {cfg['nms']['type']!r}: only plain "
                                      "'nms' has an ONNX operator.")
        if roi_head.bbox_head.reg_class_agnostic or roi_head.bbox_head.custom_cls_channels:
            raise NotEnd2EndError('a class-agnostic or custom-channel box head: not written.')
        self.model, self.image_input = model, image_input
        self.with_mask = bool(roi_head.with_mask)
        self.trace_size = 2 * max(int(s[0]) for s in model.rpn_head.prior_generator.strides)

    def constants(self) -> dict:
        rpn, rcnn = self.model.rpn_head.test_cfg, self.model.roi_head.test_cfg
        out = dict(rpn=dict(nms_pre=int(rpn.get('nms_pre', -1)),
                            max_per_img=int(rpn.get('max_per_img', 1000)),
                            iou_threshold=float(rpn['nms'].get('iou_threshold', 0.7)),
                            min_bbox_size=float(rpn.get('min_bbox_size', -1))),
                   rcnn=dict(score_thr=float(rcnn.get('score_thr', 0)),
                             iou_threshold=float(rcnn['nms'].get('iou_threshold', 0.5)),
                             max_per_img=int(rcnn.get('max_per_img', 100))))
        if self.with_mask:
            out['rcnn']['mask_thr_binary'] = float(rcnn.get('mask_thr_binary', 0.5))
        return out

    def _proposals(self, feats: Sequence[Tensor], h: Any, w: Any) -> Tensor:
        rpn = self.model.rpn_head
        cfg = rpn.test_cfg
        nms_pre = int(cfg.get('nms_pre', -1))
        cls_scores, bbox_preds = rpn(feats)
        priors = rpn.prior_generator.grid_priors([c.shape[-2:] for c in cls_scores],
                                                 dtype=cls_scores[0].dtype,
                                                 device=cls_scores[0].device)
        regs, anchors, scores, levels = [], [], [], []
        for i, (cls, reg, prior) in enumerate(zip(cls_scores, bbox_preds, priors)):
            cls = cls[0].permute(1, 2, 0).reshape(-1, rpn.cls_out_channels)
            score = cls.sigmoid()[:, 0] if rpn.use_sigmoid_cls else cls.softmax(-1)[:, 0]
            reg = reg[0].permute(1, 2, 0).reshape(-1, rpn.bbox_coder.encode_size)
            k = score.shape[0] if nms_pre <= 0 else torch.sym_min(nms_pre, score.shape[0])
            top, index = score.topk(k)
            regs.append(reg[index])
            anchors.append(prior[index])
            scores.append(top)
            levels.append(torch.full_like(index, i))
        boxes = rpn.bbox_coder.decode(torch.cat(anchors), torch.cat(regs), max_shape=(h, w))
        scores, levels = torch.cat(scores), torch.cat(levels)
        least = float(cfg.get('min_bbox_size', -1))
        if least >= 0:
            keep = ((boxes[:, 2] - boxes[:, 0]) > least) & ((boxes[:, 3] - boxes[:, 1]) > least)
            boxes, scores, levels = boxes[keep], scores[keep], levels[keep]
        keep = class_wise_nms(boxes, scores, levels, float(cfg['nms'].get('iou_threshold', 0.7)))
        return boxes[keep[:int(cfg.get('max_per_img', 1000))]]

    def forward(self, image: Tensor) -> tuple[Tensor, ...]:
        model, roi_head = self.model, self.model.roi_head
        h, w = image.shape[-2:]
        feats = model.extract_feat(self.image_input(image))
        proposals = self._proposals(feats, h, w)
        rois = torch.cat([proposals.new_zeros(proposals.shape[0], 1), proposals], 1)
        extractor = roi_head.bbox_roi_extractor
        cls_score, bbox_pred = roi_head.bbox_head(
            roi_features(extractor, feats[:extractor.num_inputs], rois))
        cfg, head = roi_head.test_cfg, roi_head.bbox_head
        scores = cls_score.softmax(-1)[:, :-1]  # (R, C), background dropped
        c = scores.shape[1]
        boxes = head.bbox_coder.decode(rois[:, 1:].repeat_interleave(c, 0),
                                       bbox_pred.reshape(-1, head.bbox_coder.encode_size),
                                       max_shape=(h, w))  # (R * C, 4), roi-major
        scores = scores.reshape(-1)
        labels = torch.arange(c, device=scores.device).repeat(rois.shape[0])
        keep = scores > float(cfg.get('score_thr', 0))
        boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
        keep = class_wise_nms(boxes, scores, labels, float(cfg['nms'].get('iou_threshold', 0.5)))
        keep = keep[:int(cfg.get('max_per_img', 100))]
        boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
        if not self.with_mask:
            return boxes, scores, labels
        extractor = roi_head.mask_roi_extractor
        rois = torch.cat([boxes.new_zeros(boxes.shape[0], 1), boxes], 1)
        masks = roi_head.mask_head(roi_features(extractor, feats[:extractor.num_inputs], rois))
        if not roi_head.mask_head.class_agnostic:
            masks = masks[torch.arange(masks.shape[0]), labels]
        else:
            masks = masks[:, 0]
        return boxes, scores, labels, masks.sigmoid()


class DetrGraph(nn.Module):
    """mmdet's ``DETR``, ``DeformableDETR`` or ``DINO`` from image to ``boxes (N, 4)`` in the
    input's pixels, ``scores (N,)`` and ``labels (N,)``: its own ``predict`` (no NMS: the best
    ``max_per_img`` queries), with the one image's metainfo made of the traced sizes, so that
    the padding mask its transformer builds from ``img_shape`` and ``batch_input_shape``
    follows the input. The deformable ones trace in :mod:`pvt_mm.run.deployment.deformable`'s
    form (their level sizes kept as numbers)."""

    def __init__(self, model: nn.Module, image_input: ImageInput) -> None:
        super().__init__()
        from mmdet.models.detectors import DeformableDETR
        self.model, self.image_input = model, image_input
        self.trace_size = 0
        # Deformable DETR and DINO (traced in pvt_mm.run.deployment.deformable's form): the
        # ONNX exporter's optimiser (onnxscript 0.7) drops a clamp's bound in the refine
        # two-stage graph, leaving a Clip whose input no node makes (onnx's checker refuses
        # the file); written unoptimised, onnxruntime optimises the graph when it loads it.
        self.onnx_optimize = not isinstance(model, DeformableDETR)

    def constants(self) -> dict:
        return dict(max_per_img=int(self.model.bbox_head.test_cfg.get('max_per_img', 100)))

    def forward(self, image: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        from mmdet.structures import DetDataSample
        x = self.image_input(image)
        h, w = image.shape[-2:]
        sample = DetDataSample()
        meta = dict(img_shape=(h, w), ori_shape=(h, w), batch_input_shape=tuple(x.shape[-2:]),
                    pad_shape=tuple(x.shape[-2:]), scale_factor=(1.0, 1.0))
        for key, value in meta.items():  # set_metainfo would deep-copy the traced sizes
            sample.set_field(value, key, field_type='metainfo')
        inst = self.model.predict(x, [sample], rescale=False)[0].pred_instances
        return inst.bboxes, inst.scores, inst.labels


class SegmentorGraph(nn.Module):
    """An mmseg ``EncoderDecoder`` from image to its ``labels`` (H, W) and ``logits`` (C, H,
    W) at the input's size: the decode head's logits resized to the padded input as its
    ``predict_by_feat`` does, the padding cropped, and the arg-max (a threshold on the sigmoid
    for one output channel), as the segmentor's ``postprocess_result`` does for an image the
    test pipeline did not resize. For one it did, mmseg resizes the logits to the image
    before the arg-max, which a runner does with ``logits``."""

    def __init__(self, model: nn.Module, image_input: ImageInput) -> None:
        super().__init__()
        if model.test_cfg.get('mode', 'whole') != 'whole':
            raise NotEnd2EndError(f"the config tests in {model.test_cfg['mode']!r} mode; "
                                     "an exported segmentor runs 'whole' inference only.")
        self.model, self.image_input = model, image_input
        self.align_corners = bool(model.decode_head.align_corners)
        self.threshold = float(getattr(model.decode_head, 'threshold', None) or 0.3)

    def constants(self) -> dict:
        return dict(align_corners=self.align_corners, threshold=self.threshold)

    def forward(self, image: Tensor) -> Tensor:
        h, w = image.shape[-2:]
        x = self.image_input(image)
        logits = self.model._forward(x)
        logits = nn.functional.interpolate(logits, size=x.shape[-2:], mode='bilinear',
                                           align_corners=self.align_corners)[0, :, :h, :w]
        if logits.shape[0] == 1:
            return (logits[0].sigmoid() > self.threshold).long(), logits
        return logits.argmax(0), logits


class ClassifierGraph(nn.Module):
    """An mmpretrain ``ImageClassifier`` from image to its class ``probabilities`` (C,): the
    head's softmax (a multi-label head's sigmoid)."""

    def __init__(self, model: nn.Module, image_input: ImageInput) -> None:
        super().__init__()
        from mmpretrain.models.heads import MultiLabelClsHead
        self.model, self.image_input = model, image_input
        self.multi_label = isinstance(model.head, MultiLabelClsHead)

    def constants(self) -> dict:
        return dict(multi_label=self.multi_label)

    def forward(self, image: Tensor) -> Tensor:
        score = self.model(self.image_input(image), mode='tensor')[0]
        return score.sigmoid() if self.multi_label else score.softmax(-1)


# -- the test pipeline's resize, for a runner outside torch ------------------------------

_LOADING = ('LoadImageFromFile', 'LoadAnnotations', 'PackDetInputs', 'PackSegInputs',
            'PackInputs')


def resize_steps(pipeline: list) -> list[dict]:
    """The test pipeline's image steps between loading and packing, as plain dicts that a
    runner repeats (``pvt_deploy.image``): ``Resize`` (mmdet / mmseg: ``scale`` (w, h),
    ``keep_ratio``), ``ResizeEdge`` and ``CenterCrop`` (mmpretrain), each with its
    interpolation and backend.

    Raises:
        NotEnd2EndError: a step the runner does not know (its name and the ones it does).
    """
    steps = []
    for t in pipeline:
        kind = str(t['type']).split('.')[-1]
        if kind.startswith(_LOADING):
            continue
        common = dict(interpolation=t.get('interpolation', 'bilinear'),
                      backend=t.get('backend', 'cv2'))
        if kind == 'Resize' and t.get('scale') is not None:
            scale = t['scale'] if not isinstance(t['scale'], int) else (t['scale'],) * 2
            steps.append(dict(type='Resize', scale=[int(s) for s in scale],
                              keep_ratio=bool(t.get('keep_ratio', False)), **common))
        elif kind == 'ResizeEdge':
            steps.append(dict(type='ResizeEdge', scale=int(t['scale']),
                              edge=t.get('edge', 'short'), **common))
        elif kind == 'CenterCrop':
            size = t['crop_size']
            size = [size, size] if isinstance(size, int) else list(size)  # (w, h)
            if t.get('auto_pad'):
                raise NotEnd2EndError('CenterCrop with auto_pad: the runner does not pad.')
            steps.append(dict(type='CenterCrop', crop_size=size))
        else:
            raise NotEnd2EndError(
                f'the test pipeline has a {kind} step; an end-to-end graph takes the image '
                'after Resize (mmdet, mmseg) or ResizeEdge and CenterCrop (mmpretrain), which '
                'the runner repeats, and no other step.')
    return steps


__all__ = ['ImageInput', 'DenseDetectorGraph', 'TwoStageDetectorGraph', 'DetrGraph', 'roi_features', 'SegmentorGraph', 'ClassifierGraph', 'class_wise_nms',
           'resize_steps', 'DENSE_HEADS', 'NotEnd2EndError']
