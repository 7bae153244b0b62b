"""The table of tasks: everything that differs between detection, segmentation and
classification, in one place.

Each :class:`Task` knows its OpenMMLab package (scope and registries), how its model is built,
its synthetic data samples, how ``tools/test.py --out`` and ``--show-dir`` work for it, how
``tools/demo.py`` predicts and draws. What of its models exports to ONNX, and how, is the
deployment wing's (:mod:`pvt_mm.run.deployment.rules`, keyed by this table). Tools and the rest of the run
layer ask the table (``task_of(cfg).build_model(cfg)``) instead of branching on the task.
A new task is one more :class:`Task` here; a new backbone family changes nothing here.

The OpenMMLab package of a task is imported only when one of its methods runs.
"""
from __future__ import annotations

import importlib
import inspect
import warnings
from typing import Any, Callable

import torch
from torch import Tensor, nn


class Task:
    """What one OpenMMLab task needs; the subclasses below fill it in."""

    name = ''  # short name: det, seg, cls
    package = ''  # the OpenMMLab package, also its registry scope
    what = ''  # in words, for messages
    flops_shape = (224, 224)  # tools/analysis/get_flops.py's default input (h, w)

    # -- registries and models ---------------------------------------------------------
    def registry(self, kind: str = 'MODELS') -> Any:
        """The package's registry of a kind (``'MODELS'``, ``'DATASETS'``, ``'VISUALIZERS'``)."""
        return getattr(importlib.import_module(f'{self.package}.registry'), kind)

    def register_modules(self) -> None:
        """Registers all of the package's modules (datasets, transforms, metrics, models)."""
        importlib.import_module(f'{self.package}.utils').register_all_modules(
            init_default_scope=False)

    def build_model(self, cfg: Any, model_cfg: Any = None) -> nn.Module:
        """``cfg.model`` (or ``model_cfg``) built in the task's scope, as its tools build it."""
        from mmengine.registry import DefaultScope
        with DefaultScope.overwrite_default_scope(self.package):
            return self.registry().build(cfg.model if model_cfg is None else model_cfg)

    def build_eval_model(self, cfg: Any) -> nn.Module:
        """The config's model in eval mode on the CPU, SyncBN reverted to BN (it cannot run,
        or export, without a GPU)."""
        from mmengine.model import revert_sync_batchnorm
        return revert_sync_batchnorm(self.build_model(cfg)).eval()

    def dataset_meta(self, cfg: Any) -> dict:
        """The test dataset's metainfo (class names, palette): its class's, updated by the
        config's ``metainfo``."""
        dataset_cfg = cfg.test_dataloader.dataset
        dataset_cls = self.registry('DATASETS').get(dataset_cfg.type)
        meta = dict(getattr(dataset_cls, 'METAINFO', {}) or {})
        meta.update(dataset_cfg.get('metainfo') or {})
        return meta

    def synthetic_samples(self, shape: tuple[int, int], batch: int = 1,
                          targets: bool = True) -> list | None:
        """Data samples for a (batch, 3, h, w) input: metainfo, and with ``targets`` a few
        ground-truth objects, a label map or a label; None where the model needs none."""
        return None

    def tensor_forward(self, model: nn.Module, x: Tensor, samples: list | None) -> Any:
        """The model's network in ``tensor`` mode: raw outputs, no post-processing."""
        return model(x, samples, mode='tensor')

    # -- tools/test.py -----------------------------------------------------------------
    def configure_out(self, cfg: Any, path: str) -> None:
        """``--out``, before the Runner is built."""
        if not path.endswith(('.pkl', '.pickle')):
            raise ValueError(f'--out must be a .pkl file for {self.what}, got {path!r}.')

    def attach_out(self, runner: Any, path: str) -> None:
        """``--out``, once the Runner is built: a metric that dumps the predictions."""
        from mmengine.evaluator import DumpResults
        runner.test_evaluator.metrics.append(DumpResults(out_file_path=path))

    def configure_show_dir(self, cfg: Any, show_dir: str) -> None:
        """``--show-dir``: every test prediction drawn into <work_dir>/<timestamp>/SHOW_DIR/
        (mmdet's rule). mmseg's and mmpretrain's hooks have no such option (their tools
        write relative to the current directory), so pvt_mm's ShowDirHook applies mmdet's
        rule with the runner's visualizer."""
        cfg.custom_hooks = [*cfg.get('custom_hooks', []),
                            dict(type='pvt_mm.ShowDirHook', out_dir=show_dir)]

    # -- tools/demo.py -----------------------------------------------------------------
    def inference(self, cfg: Any, checkpoint: str, device: str) -> tuple[nn.Module, Callable]:
        """The model as the package's apis build it, with its checkpoint read by pvt_mm's
        strict reader (any published backbone layout; the packages' own loaders would leave
        a backbone they cannot read at its random init with a warning), and a function from
        an image path to its data sample with the prediction. ``model.dataset_meta``: the
        checkpoint's class names where it has them, else the config's test set's."""
        from ..network.model_weights import load_model_checkpoint
        model = self.inference_model(cfg)
        weights = load_model_checkpoint(model, checkpoint)
        meta = {**self.dataset_meta(cfg), **weights.dataset_meta}
        return self.predictor(model.to(device).eval(), meta)

    def inference_model(self, cfg: Any) -> nn.Module:
        """The config's model built by the package's inference api, without weights."""
        raise NotImplementedError

    def predictor(self, model: nn.Module, dataset_meta: dict) -> tuple[nn.Module, Callable]:
        """(``model`` with ``dataset_meta`` set, image path -> data sample with the
        prediction), through the package's inference api."""
        raise NotImplementedError

    def drawing(self, result: Any, scale: int, options: Any) -> tuple[Any, dict, dict]:
        """(the sample to draw at ``scale`` times the image, the visualizer config, the
        drawing call's keyword arguments)."""
        raise NotImplementedError

    def draw(self, visualizer: Any, picture: Any, sample: Any, out_file: str,
             **kwargs: Any) -> None:
        visualizer.add_datasample('demo', picture, data_sample=sample, draw_gt=False,
                                  show=False, out_file=out_file, **kwargs)

    def attach_deployed(self, sample: Any, pred: Any) -> None:
        """A ``pvt_deploy`` prediction (original image's pixels) put on the dataset's data
        sample where the task's metric reads it (tools/deployment/evaluate.py)."""
        raise ValueError(f'evaluating a deployed {self.name} file is not supported: '
                         'detectors and segmentors are.')

    def summary(self, result: Any, dataset_meta: dict, options: Any, drawn: Any) -> str:
        """What the demo prints about the prediction."""
        return ''


def _test_pipeline(cfg: Any) -> list:
    return cfg.get('test_dataloader', {}).get('dataset', {}).get('pipeline', [])


def _test_resize(cfg: Any) -> tuple[int, int] | None:
    """The test pipeline's resize target as (h, w), or None when it resizes nothing."""
    for t in _test_pipeline(cfg):
        if t.get('type', '').endswith('Resize') and t.get('scale'):
            w, h = t['scale'] if not isinstance(t['scale'], int) else (t['scale'],) * 2
            return min(h, w), max(h, w)  # keep_ratio: a landscape image fills (short, long)
    return None


def _padded(shape: tuple[int, int], divisor: int) -> tuple[int, int]:
    return tuple(-(-n // divisor) * divisor for n in shape)


def _sample_meta(shape: tuple[int, int]) -> dict:
    h, w = shape
    return dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w), batch_input_shape=(h, w),
                scale_factor=(1.0, 1.0))


def head_groups(head: nn.Module, outs: Any) -> list[dict]:
    """Names a head's raw outputs after the arguments of its ``predict_by_feat``, one entry per
    argument with its level count, e.g. ``cls_scores`` x 5, ``bbox_preds`` x 5."""
    params = list(inspect.signature(head.predict_by_feat).parameters)  # bound: no self
    return [dict(name=params[i], levels=len(group)) for i, group in enumerate(outs)]


class Detection(Task):
    name, package, what = 'det', 'mmdet', 'detection'
    flops_shape = (800, 1333)

    def synthetic_samples(self, shape, batch=1, targets=True):
        from mmdet.structures import DetDataSample
        from mmengine.structures import InstanceData
        h, w = shape
        g = torch.Generator().manual_seed(0)
        out = []
        for _ in range(batch):
            s = DetDataSample(metainfo=_sample_meta(shape))
            if targets:
                xy = torch.rand(4, 2, generator=g) * torch.tensor([w * 0.6, h * 0.6])
                wh = (torch.rand(4, 2, generator=g) * 0.3 + 0.1) * torch.tensor([w, h])
                s.gt_instances = InstanceData(bboxes=torch.cat([xy, xy + wh], 1),
                                              labels=torch.randint(0, 3, (4,), generator=g))
            out.append(s)
        return out

    def attach_out(self, runner, path):
        from mmdet.evaluation import DumpDetResults
        runner.test_evaluator.metrics.append(DumpDetResults(out_file_path=path))

    def configure_show_dir(self, cfg, show_dir):
        """mmdet's own rule: its DetVisualizationHook with ``test_out_dir``."""
        hooks = cfg.default_hooks
        if 'visualization' not in hooks:
            raise RuntimeError('--show-dir needs a visualization hook in default_hooks.')
        hooks.visualization.draw = True
        hooks.visualization.test_out_dir = show_dir

    def inference_model(self, cfg):
        from mmdet.apis import init_detector
        # Its warning that without a checkpoint the classes are COCO's does not hold here:
        # they come from the checkpoint, else the config. Other warnings pass on.
        with warnings.catch_warnings(record=True) as caught:
            model = init_detector(cfg, None, device='cpu')
        for w in caught:
            if 'checkpoint is None' not in str(w.message):
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        return model

    def predictor(self, model, dataset_meta):
        from mmdet.apis import inference_detector
        model.dataset_meta = dataset_meta
        return model, lambda image: inference_detector(model, image)

    def drawing(self, result, scale, options):
        shown = one_box_per_object(result.pred_instances, options.score_thr, options.nms_iou)
        shown.bboxes = shown.bboxes * scale
        drawn = result.clone()
        drawn.pred_instances = shown
        # One colour that stands out from what is drawn (the toy shapes are red, green and
        # blue), labels on a dark band, lines readable at the display size.
        vis_cfg = dict(type='DetLocalVisualizer', name='pvt_mm_demo', bbox_color=(255, 230, 0),
                       text_color=(255, 255, 255), line_width=3)
        return drawn, vis_cfg, dict(pred_score_thr=options.score_thr)

    def attach_deployed(self, sample, pred):
        import numpy as np
        from mmengine.structures import InstanceData
        instances = InstanceData()
        instances.bboxes = torch.from_numpy(np.asarray(pred.boxes, np.float32).reshape(-1, 4))
        instances.scores = torch.from_numpy(np.asarray(pred.scores, np.float32))
        instances.labels = torch.from_numpy(np.asarray(pred.labels, np.int64))
        if pred.masks is not None:
            instances.masks = torch.from_numpy(np.asarray(pred.masks, bool))
        sample.pred_instances = instances

    def summary(self, result, dataset_meta, options, drawn):
        inst = result.pred_instances
        keep = inst.scores >= options.score_thr
        classes = dataset_meta.get('classes', ())
        found = [f'{classes[int(l)] if int(l) < len(classes) else int(l)} {float(s):.2f}'
                 for l, s in zip(inst.labels[keep], inst.scores[keep])]
        return (f'{len(found)} detections above {options.score_thr}: '
                f'{", ".join(found) or "none"} (drawn: the best of each overlapping group, '
                f'{len(drawn.pred_instances)})')

def one_box_per_object(instances: Any, score_thr: float, iou: float) -> Any:
    """The detections above ``score_thr``, keeping of boxes that overlap by more than ``iou``
    (whatever their class) only the best-scoring one, so that every drawn label is legible."""
    from mmcv.ops import nms
    inst = instances[instances.scores >= score_thr]
    if len(inst) == 0:
        return inst
    _, keep = nms(inst.bboxes.float(), inst.scores.float(), iou)
    return inst[keep]


class Segmentation(Task):
    name, package, what = 'seg', 'mmseg', 'segmentation'
    flops_shape = (512, 512)

    def synthetic_samples(self, shape, batch=1, targets=True):
        from mmengine.structures import PixelData
        from mmseg.structures import SegDataSample
        g = torch.Generator().manual_seed(0)
        out = []
        for _ in range(batch):
            s = SegDataSample(metainfo=_sample_meta(shape))
            if targets:
                s.gt_sem_seg = PixelData(data=torch.randint(0, 3, (1, *shape), generator=g))
            out.append(s)
        return out

    def configure_out(self, cfg, path):
        """mmseg's rule: IoUMetric writes the predicted label maps into the directory."""
        cfg.test_evaluator['output_dir'] = path
        cfg.test_evaluator['keep_results'] = True

    def attach_out(self, runner, path):
        pass

    def inference_model(self, cfg):
        from mmseg.apis import init_model
        return init_model(cfg, None, device='cpu')

    def predictor(self, model, dataset_meta):
        from mmseg.apis import inference_model
        model.dataset_meta = dataset_meta
        return model, lambda image: inference_model(model, image)

    def attach_deployed(self, sample, pred):
        import numpy as np
        from mmengine.structures import PixelData
        sample.pred_sem_seg = PixelData(
            data=torch.from_numpy(np.asarray(pred.labels, np.int64))[None])

    def drawing(self, result, scale, options):
        from mmengine.structures import PixelData
        drawn = result.clone()
        seg = result.pred_sem_seg.data  # a new PixelData: one of another size cannot take it
        drawn.pred_sem_seg = PixelData(
            data=seg.repeat_interleave(scale, -2).repeat_interleave(scale, -1))
        return drawn, dict(type='SegLocalVisualizer', name='pvt_mm_demo', alpha=0.6), \
            dict(with_labels=True)

class Classification(Task):
    name, package, what = 'cls', 'mmpretrain', 'classification'

    def synthetic_samples(self, shape, batch=1, targets=True):
        if not targets:
            return None
        from mmpretrain.structures import DataSample
        g = torch.Generator().manual_seed(0)
        return [DataSample().set_gt_label(int(torch.randint(0, 3, (1,), generator=g)))
                for _ in range(batch)]

    def tensor_forward(self, model, x, samples):
        return model(x, None, mode='tensor')

    def inference_model(self, cfg):
        from mmpretrain.apis import get_model
        return get_model(cfg, pretrained=False)

    def predictor(self, model, dataset_meta):
        from mmpretrain.apis import ImageClassificationInferencer
        model._dataset_meta = model.dataset_meta = dataset_meta  # the inferencer reads the first
        inferencer = ImageClassificationInferencer(model, pretrained=False)
        return model, lambda image: inferencer(image, return_datasamples=True)[0]

    def drawing(self, result, scale, options):
        return result, dict(type='UniversalVisualizer', name='pvt_mm_demo'), {}

    def draw(self, visualizer, picture, sample, out_file, **kwargs):
        visualizer.visualize_cls(picture, sample, draw_gt=False, show=False, out_file=out_file)

    def summary(self, result, dataset_meta, options, drawn):
        scores = result.pred_score
        classes = dataset_meta.get('classes') or [str(i) for i in range(len(scores))]
        top = scores.topk(min(options.topk, len(scores)))
        return f'top {len(top.indices)} classes: ' + ', '.join(
            f'{classes[int(i)]} {float(v):.3f}' for v, i in zip(top.values, top.indices))

TASKS: dict[str, Task] = {t.name: t for t in (Detection(), Segmentation(), Classification())}


def task_of(cfg: Any) -> Task:
    """The task of a config: from ``default_scope``, else from where the model type is
    registered.

    Raises:
        ValueError: neither tells.
    """
    scope = cfg.get('default_scope')
    for task in TASKS.values():
        if scope == task.package:
            return task
    model_type = str(cfg.get('model', {}).get('type', ''))
    for task in TASKS.values():
        if model_type.startswith(task.package + '.'):
            return task
    for task in TASKS.values():  # in order: a type that several packages know goes to the first
        task.register_modules()
        if task.registry().get(model_type) is not None:
            return task
    packages = sorted(t.package for t in TASKS.values())
    raise ValueError(f'Cannot tell which of {packages} the config is for: default_scope is '
                     f'{scope!r} and model type {model_type!r} is in none of their registries. '
                     f'Set default_scope to one of {packages} in the config.')


__all__ = ['Task', 'TASKS', 'Detection', 'Segmentation', 'Classification',
           'task_of', 'head_groups', 'one_box_per_object']
