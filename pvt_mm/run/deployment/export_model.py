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


def load_weights(model: Any, checkpoint: str, backbone_only: bool) -> dict | None:
    """Loads ``checkpoint`` strictly (the backbone's through PVT's own loader); returns the
    checkpoint's dataset_meta, if it has one."""
    from mmengine.runner import load_checkpoint

    from ...network import load_pretrained
    if backbone_only:
        load_pretrained(model.backbone, checkpoint)
        return None
    ckpt = load_checkpoint(model, checkpoint, map_location='cpu', strict=True, logger='silent')
    return ckpt.get('meta', {}).get('dataset_meta')


def timed(fn: Any, repeat: int) -> tuple[Any, float]:
    """``fn()`` after one warm-up run; its output and the median time of ``repeat`` runs."""
    fn()  # warm-up: allocations, onnxruntime's first-run optimisations, caches
    times = []
    for _ in range(max(1, repeat)):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return out, statistics.median(times)


def compare(session: Any, module: Any, names: list[str], shape: Sequence[int], repeat: int,
            seed: int = 0) -> tuple[dict, float, float]:
    """onnxruntime against PyTorch on one unit-scale normal input: per output, the largest
    |difference| and the scale it is judged against (the largest |value|, at least 1)."""
    import numpy as np
    import torch
    x = torch.randn(1, 3, *shape, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        ref, t_torch = timed(lambda: module(x), repeat)
    outs, t_ort = timed(lambda: session.run(None, {'input': x.numpy()}), repeat)
    diffs = {}
    for name, r, o in zip(names, ref, outs):
        if tuple(r.shape) != o.shape:
            raise AssertionError(f'{name}: onnxruntime gave shape {o.shape}, PyTorch '
                                 f'{tuple(r.shape)} at input {shape[0]}x{shape[1]}.')
        diffs[name] = (float(np.abs(o - r.numpy()).max()), max(1.0, float(r.abs().max())))
    return diffs, t_torch, t_ort


def export_model(config: str, checkpoint: str | None = None, *, out: str,
                 shape: Sequence[int] | None = None, dynamic: bool = False,
                 backbone_only: bool = False, attention: str = 'fused',
                 check_shapes: Sequence[Sequence[int]] = (), tolerance: float = 1e-4,
                 verify: bool = True, repeat: int = 3, opset: int | None = None,
                 cfg_options: dict | None = None) -> None:
    """Exports the config's model (or its backbone) to ``out``; unless ``verify`` is off,
    runs onnxruntime beside PyTorch at the example size (and, with ``dynamic``, at
    ``check_shapes`` or one other size) and stops when an output differs by more than
    ``tolerance`` of its magnitude."""
    import torch

    from ...network import PVT
    from ..config import load_config
    from ..tasks import NotExportableError
    from .export import (META_CLASSES, META_MODEL, META_OUTPUTS, META_PART, META_TASK,
                         export_onnx, exportable_part)

    if checkpoint and not osp.isfile(checkpoint):
        raise SystemExit(f'export_onnx: checkpoint {checkpoint!r} does not exist.')
    cfg, task = load_config(config, cfg_options)
    shape = tuple(shape) if shape else task.export_shape(cfg)
    model = task.build_eval_model(cfg)
    dataset_meta = load_weights(model, checkpoint, backbone_only) if checkpoint else None
    if not isinstance(model.backbone, PVT):
        raise SystemExit(f'export_onnx: the backbone is {type(model.backbone).__name__}, not '
                         "pvt_mm.PVT or pvt_mm.PVTv2; this tool exports pvt_mm's models.")
    model.backbone.fused_attn = attention == 'fused'
    if min(shape) < model.backbone.min_input_size:
        raise SystemExit(f'export_onnx: --shape {shape[0]} {shape[1]} is below the backbone\'s '
                         f'minimum input of {model.backbone.min_input_size} px a side.')
    example = torch.randn(1, 3, *shape, generator=torch.Generator().manual_seed(0))
    try:
        module, part, names, groups = exportable_part(model, task, example=example,
                                                      backbone_only=backbone_only)
        os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
        meta = {META_PART: part, META_TASK: task.name, META_MODEL: type(model).__name__,
                META_OUTPUTS: json.dumps(groups)}
        if dataset_meta and dataset_meta.get('classes'):
            meta[META_CLASSES] = json.dumps(list(dataset_meta['classes']))
        info = export_onnx(module, example, out, output_names=names, dynamic=dynamic,
                           opset=opset, metadata=meta)
    except NotExportableError as e:
        raise SystemExit(f'export_onnx: cannot export {type(model).__name__} from '
                         f'{config}: {e}') from None
    size = osp.getsize(out) / 2**20
    print(f'exported {type(model).__name__} ({part}, {attention} attention) at '
          f'{shape[0]}x{shape[1]} to {out} ({size:.1f} MiB) in {info["seconds"]:.1f} s; '
          'onnx checker: ok')
    if dynamic:
        rng = ', '.join(f'{k} >= {lo}' + (f' and <= {hi}' if hi else '')
                        for k, (lo, hi) in info['input_range'].items())
        print(f'  input (1, 3, height, width), dynamic: traced for {rng}')
    print(f'  outputs: {", ".join(names)}')
    if not verify:
        return
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
        diffs, t_torch, t_ort = compare(session, module, names, hw, repeat)
        top = max(diffs, key=lambda k: diffs[k][0] / diffs[k][1])
        diff, scale = diffs[top]
        worst = max(worst, diff / scale)
        print(f'  onnxruntime vs PyTorch at {hw[0]}x{hw[1]}: max |diff| {diff:.2e} ({top}, '
              f'values up to {scale:.3g}); time {t_ort:.3f} s (onnxruntime) vs {t_torch:.3f} s '
              '(PyTorch)')
        if diff > tolerance * scale:
            failed.append(f'{hw[0]}x{hw[1]}')
    if failed:
        raise SystemExit(f'export_onnx: onnxruntime disagrees with PyTorch at {", ".join(failed)} '
                         f'(relative |diff| {worst:.2e} > --tolerance {tolerance:g}); '
                         f'{out} is not to be trusted.')
    print(f'verified: relative max |diff| {worst:.2e} over {len(shapes)} size(s) '
          f'(tolerance {tolerance:g})')


__all__ = ['export_model', 'load_weights', 'compare', 'timed']
