"""A config's model (or its backbone) exported to an ONNX file and checked against PyTorch,
as ``tools/deployment/export_onnx.py`` does."""
from __future__ import annotations

import json
import os
import os.path as osp
import statistics
import time
from collections.abc import Sequence
from typing import Any


def load_weights(model: Any, checkpoint: str, backbone_only: bool) -> dict:
    """Loads ``checkpoint`` strictly: a whole model's through pvt_mm's whole-model reader
    (any published backbone layout), the backbone's alone through PVT's own loader; returns
    the class names (and palette) the file was saved with, ``{}`` where it has none."""
    from ...network import load_pretrained
    from ...network.model_weights import load_model_checkpoint
    if backbone_only:
        load_pretrained(model.backbone, checkpoint)
        return {}
    return load_model_checkpoint(model, checkpoint).dataset_meta


def timed(fn: Any, repeat: int) -> tuple[Any, float]:
    """``fn()`` after one warm-up run; its output and the median time of ``repeat`` runs."""
    fn()  # warm-up: allocations, onnxruntime's first-run optimisations, caches
    times = []
    for _ in range(max(1, repeat)):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return out, statistics.median(times)


def example_input(shape: Sequence[int], image: bool = False, seed: int = 0) -> Any:
    """A (1, 3, H, W) input: unit-scale normal values (what a data preprocessor hands the
    network), or with ``image`` whole numbers 0-255 (what an end-to-end graph takes)."""
    import torch
    g = torch.Generator().manual_seed(seed)
    if image:
        return torch.randint(0, 256, (1, 3, *shape), generator=g).float()
    return torch.randn(1, 3, *shape, generator=g)


DETECTIONS = ['boxes', 'scores', 'labels']  # an end-to-end detector's outputs


def detection_diffs(ref: Sequence[Any], outs: Sequence[Any], shape: Sequence[int]) -> dict:
    """Two runs' detections paired one to one (same label, nearest score and box): per
    output (masks too, when there are), the largest |difference| over the pairs and its scale. Scores that tie to a few
    ulps may come out of NMS in either order, so the outputs are not compared row by row.

    A PyTorch detection without a partner counts as a label difference of 1; a different
    number of detections is the ``count`` difference.
    """
    import numpy as np
    (b1, s1, l1), (b2, s2, l2) = [r.double().numpy() for r in ref[:3]], outs[:3]
    m1, m2 = (ref[3].double().numpy(), outs[3]) if len(ref) > 3 else (None, None)
    free = np.ones(len(s2), bool)
    box_diff = score_diff = label_diff = mask_diff = 0.0
    for i, (box, score, label) in enumerate(zip(b1, s1, l1)):
        cost = np.abs(s2 - score) + np.abs(b2 - box).max(1) / max(1.0, float(np.abs(b1).max()))
        cost = np.where(free & (l2 == label), cost, np.inf)
        j = int(np.argmin(cost))
        if not np.isfinite(cost[j]):
            label_diff = 1.0
            continue
        free[j] = False
        box_diff = max(box_diff, float(np.abs(b2[j] - box).max()))
        score_diff = max(score_diff, abs(float(s2[j]) - float(score)))
        if m1 is not None:
            mask_diff = max(mask_diff, float(np.abs(m2[j] - m1[i]).max()))
    diffs = dict(boxes=(box_diff, max(1.0, float(np.abs(b1).max(initial=0)))),
                 scores=(score_diff, 1.0), labels=(label_diff, 1.0),
                 count=(float(abs(len(s1) - len(s2))), 1.0))
    if m1 is not None:
        diffs['masks'] = (mask_diff, 1.0)
    return diffs


def compare(session: Any, module: Any, names: list[str], shape: Sequence[int], repeat: int,
            seed: int = 0, image: bool = False) -> tuple[dict, float, float]:
    """onnxruntime against PyTorch on one input (:func:`example_input`): per output, the
    largest |difference| and the scale it is judged against (the largest |value|, at least
    1). Outputs of different shapes (a different number of detections) raise."""
    import numpy as np
    import torch
    x = example_input(shape, image, seed)
    with torch.no_grad():
        ref, t_torch = timed(lambda: module(x), repeat)
    ref = (ref,) if isinstance(ref, torch.Tensor) else ref
    outs, t_ort = timed(lambda: session.run(None, {'input': x.numpy()}), repeat)
    if names[:3] == DETECTIONS:  # masks, when there are, paired with their detections
        return detection_diffs(ref, outs, shape), t_torch, t_ort
    diffs = {}
    for name, r, o in zip(names, ref, outs):
        if tuple(r.shape) != o.shape:
            raise AssertionError(f'{name}: onnxruntime gave shape {o.shape}, PyTorch '
                                 f'{tuple(r.shape)} at input {shape[0]}x{shape[1]}.')
        if r.numel() == 0:
            diffs[name] = (0.0, 1.0)
            continue
        r = r.double()
        diffs[name] = (float(np.abs(o - r.numpy()).max()), max(1.0, float(r.abs().max())))
    return diffs, t_torch, t_ort


def _load_model(config: str, checkpoint: str | None, backbone_only: bool,
                cfg_options: dict | None) -> tuple[Any, Any, Any, dict]:
    """(cfg, task, the model in eval mode with its weights, the dataset's metainfo: the
    checkpoint's, else the config's)."""
    from ...network.families import family_of
    from ..config import load_config
    from ...network.weights import check_source
    if checkpoint:
        try:
            check_source(checkpoint)
        except (FileNotFoundError, ValueError) as e:
            raise SystemExit(f'export_onnx: {e}') from None
    cfg, task = load_config(config, cfg_options)
    model = task.build_eval_model(cfg)
    saved = load_weights(model, checkpoint, backbone_only) if checkpoint else {}
    # The checkpoint's classes where it has them, else the config's (as demo.py takes them).
    dataset_meta = {**task.dataset_meta(cfg), **saved}
    if family_of(model.backbone) is None:
        raise SystemExit(f'export_onnx: the backbone is {type(model.backbone).__name__}, not '
                         "pvt_mm.PVT or pvt_mm.PVTv2; this tool exports pvt_mm's models.")
    return cfg, task, model, dataset_meta


def _end2end_part(model: Any, cfg: Any, rules: Any, shape: tuple[int, int],
                  dynamic: bool) -> tuple[Any, list[str], dict, tuple[int, int]]:
    """(the end-to-end module, its output names, its record's fields, the traced shape)."""
    from .graphs import NotEnd2EndError, resize_steps
    from .rules import NotExportableError
    from ..tasks import _test_pipeline
    module, names, constants = rules.end2end(model, cfg)
    try:
        steps = resize_steps(_test_pipeline(cfg))
    except NotEnd2EndError as e:
        raise NotExportableError(str(e)) from None
    least = getattr(module, 'trace_size', 0)
    if dynamic and min(shape) < least:
        # A map of 1 is traced as a constant (torch.export specialises size 1): every level
        # at least 2 keeps the graph general.
        shape = tuple(max(n, least) for n in shape)
        print(f'  traced at {shape[0]}x{shape[1]}: every pyramid level at least 2 wide, so '
              'that no map size is traced as a constant')
    fields = dict(resize=steps, preprocess=module.image_input.describe(), constants=constants)
    return module, names, fields, shape


def _metadata(task: Any, model: Any, part: str, groups: list[dict], dataset_meta: dict | None,
              names: list[str], end2end: dict | None) -> dict[str, str]:
    """The file's metadata, written through the contract (:mod:`pvt_deploy.schema`)."""
    from pvt_deploy import schema
    meta = {schema.META_PART: part, schema.META_TASK: task.name,
            schema.META_MODEL: type(model).__name__, schema.META_OUTPUTS: json.dumps(groups)}
    classes = list((dataset_meta or {}).get('classes') or [])
    if classes:
        meta[schema.META_CLASSES] = json.dumps(classes)
    if end2end is not None:
        meta[schema.META_END2END] = schema.end2end_record(
            task=task.name, model=type(model).__name__, outputs=names, classes=classes,
            palette=list((dataset_meta or {}).get('palette') or []), **end2end)
    return meta


def export_model(config: str, checkpoint: str | None = None, *, out: str,
                 shape: Sequence[int] | None = None, dynamic: bool = False,
                 backbone_only: bool = False, end2end: bool = False, attention: str = 'fused',
                 check_shapes: Sequence[Sequence[int]] = (), tolerance: float = 1e-4,
                 verify: bool = True, repeat: int = 3, opset: int | None = None,
                 cfg_options: dict | None = None) -> None:
    """Exports the config's model (or its backbone) to ``out``; unless ``verify`` is off,
    runs onnxruntime beside PyTorch at the example size (and, with ``dynamic``, at
    ``check_shapes`` or one other size) and stops when an output differs by more than
    ``tolerance`` of its magnitude. With ``end2end`` the graph is the whole predictor, from
    an RGB 0-255 image to the task's predictions (:mod:`pvt_mm.run.deployment.graphs`)."""
    from .export import export_onnx, exportable_part
    from .rules import NotExportableError, export_rules

    if end2end and backbone_only:
        raise SystemExit('export_onnx: --end2end and --backbone-only exclude each other.')
    cfg, task, model, dataset_meta = _load_model(config, checkpoint, backbone_only, cfg_options)
    rules = export_rules(task)
    shape = tuple(shape) if shape else rules.export_shape(cfg)
    model.backbone.fused_attn = attention == 'fused'
    if min(shape) < model.backbone.min_input_size:
        raise SystemExit(f'export_onnx: --shape {shape[0]} {shape[1]} is below the backbone\'s '
                         f'minimum input of {model.backbone.min_input_size} px a side.')
    try:
        record = None
        if end2end:
            module, names, record, shape = _end2end_part(model, cfg, rules, shape, dynamic)
            part, groups = 'end2end', [dict(name=n, levels=1) for n in names]
            example = example_input(shape, image=True)
        else:
            example = example_input(shape)
            module, part, names, groups = exportable_part(model, task, example=example,
                                                          backbone_only=backbone_only)
        os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
        meta = _metadata(task, model, part, groups, dataset_meta, names, record)
        info = export_onnx(module, example, out, output_names=names, dynamic=dynamic,
                           opset=opset, metadata=meta,
                           optimize=getattr(module, 'onnx_optimize', True))
    except NotExportableError as e:
        raise SystemExit(f'export_onnx: cannot export {type(model).__name__} from '
                         f'{config}: {e}') from None
    _report(out, model, part, attention, shape, info, names, dynamic, end2end)
    if verify:
        _verify(out, module, names, shape, dynamic, check_shapes, repeat, tolerance, end2end,
                checkpoint)


def _report(out: str, model: Any, part: str, attention: str, shape: Sequence[int], info: dict,
            names: list[str], dynamic: bool, end2end: bool) -> None:
    size = osp.getsize(out) / 2**20
    print(f'exported {type(model).__name__} ({part}, {attention} attention) at '
          f'{shape[0]}x{shape[1]} to {out} ({size:.1f} MiB) in {info["seconds"]:.1f} s; '
          'onnx checker: ok')
    if dynamic:
        rng = ', '.join(f'{k} >= {lo}' + (f' and <= {hi}' if hi else '')
                        for k, (lo, hi) in info['input_range'].items())
        print(f'  input (1, 3, height, width), dynamic: traced for {rng}')
        bounded = {k: hi for k, (lo, hi) in info['input_range'].items() if hi}
        if end2end and bounded:
            raise SystemExit(f'export_onnx: the graph was traced for {rng} only: a map of the '
                             f'example was 1 wide. Export at a larger --shape.')
    print(f'  outputs: {", ".join(names)}')


def _verify(out: str, module: Any, names: list[str], shape: Sequence[int], dynamic: bool,
            check_shapes: Sequence[Sequence[int]], repeat: int, tolerance: float, end2end: bool,
            checkpoint: str | None) -> None:
    """onnxruntime beside PyTorch at the example size and, with ``dynamic``, another."""
    import onnxruntime as ort
    start = time.perf_counter()
    session = ort.InferenceSession(out, providers=['CPUExecutionProvider'])
    print(f'  onnxruntime {ort.__version__} session made in {time.perf_counter() - start:.1f} s')
    shapes = [shape]
    if dynamic:  # a graph that froze a size shows it at any other size
        shapes += [tuple(s) for s in check_shapes] or [(shape[0] + 32, shape[1] + 32)]
    elif check_shapes:
        print('  --check-shape ignored: the graph is fixed at the example size (no --dynamic)')
    worst, failed = 0.0, []
    for hw in shapes:
        diffs, t_torch, t_ort = compare(session, module, names, hw, repeat, image=end2end)
        top = max(diffs, key=lambda k: diffs[k][0] / diffs[k][1])
        diff, scale = diffs[top]
        worst = max(worst, diff / scale)
        print(f'  onnxruntime vs PyTorch at {hw[0]}x{hw[1]}: max |diff| {diff:.2e} ({top}, '
              f'values up to {scale:.3g}); time {t_ort:.3f} s (onnxruntime) vs {t_torch:.3f} s '
              '(PyTorch)')
        if diff > tolerance * scale:
            failed.append(f'{hw[0]}x{hw[1]}')
    if failed and end2end and names[:3] == DETECTIONS and not checkpoint:
        print('  random weights: their detection scores tie to a few ulps, so NMS may keep other '
              'boxes in each runtime; verify with a checkpoint')
        return
    if failed:
        raise SystemExit(f'export_onnx: onnxruntime disagrees with PyTorch at {", ".join(failed)} '
                         f'(relative |diff| {worst:.2e} > --tolerance {tolerance:g}); '
                         f'{out} is not to be trusted.')
    print(f'verified: relative max |diff| {worst:.2e} over {len(shapes)} size(s) '
          f'(tolerance {tolerance:g})')


__all__ = ['export_model', 'load_weights', 'compare', 'timed', 'example_input']
