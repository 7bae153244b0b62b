"""ONNX export of PVT and of the detectors, segmentors and classifiers built on it.

* :func:`exportable_part`: which part of a model exports, as a module returning a flat tuple
  of tensors, with its output names; :class:`NotExportableError` says which part cannot
  and why.
* :func:`export_onnx`: ``torch.export`` (height and width symbolic when ``dynamic``), then
  PyTorch's ONNX exporter, onnx's checker, and pvt_mm's metadata written into the file.

The graph's input is what the model's data preprocessor hands the network (normalised,
padded, NCHW float); decoding, NMS and resizing to the image stay outside, in the
upstream heads' own ``predict_by_feat`` (:mod:`pvt_mm.run.deployment.onnx_inference`).
PVT resizes its position embeddings to the real grid on every forward, and while exporting
it does so unconditionally (:meth:`pvt_mm.network.pvt.PVTStage.resized_pos_embed`), so the
graph carries no size of the example input. ``torch.export`` assumes every symbolic size is
at least 2, so a dynamic graph is traced for inputs whose smallest map is 2 wide or more
(64 px for the paper's arches); onnxruntime also runs it on the smaller sizes PVT accepts.
"""
from __future__ import annotations

import contextlib
import re
import sys
import time
from collections.abc import Iterator
from typing import Any
from unittest import mock

import torch
from torch import Tensor, nn

from pvt_deploy.schema import (META_CLASSES, META_END2END, META_MODEL, META_OUTPUTS,
                               META_PART, META_TASK, parse_metadata)

from ...network.families import family_of
from ..tasks import Task
from .deformable import level_sizes_as_numbers
from .rules import NotExportableError, export_rules

# The metadata keys are the contract's (pvt_deploy.schema), imported from there.


class _Part(nn.Module):
    """Runs ``fn(model, x)`` and flattens what it returns (tensors, nested in lists and
    tuples) into one tuple, the ONNX graph's outputs."""

    def __init__(self, model: nn.Module, fn: Any) -> None:
        super().__init__()
        self.model = model
        self.fn = fn

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        out = self.fn(self.model, x)
        return tuple(_flatten(out))


def _flatten(out: Any) -> list[Tensor]:
    if isinstance(out, Tensor):
        return [out]
    return [t for item in out for t in _flatten(item)]


def exportable_part(model: nn.Module, task: Task | None, *, backbone_only: bool = False,
                    example: Tensor | None = None) -> tuple[nn.Module, str, list[str], list[dict]]:
    """The part of ``model`` that exports to ONNX.

    Args:
        model: a ``pvt_mm.PVT``, or an mmdet detector, mmseg segmentor or mmpretrain
            classifier (in eval mode).
        task: the model's :class:`~pvt_mm.run.tasks.Task`, or ``None`` for a bare backbone.
        backbone_only: export only ``model.backbone``.
        example: an input, used to name the head's outputs (detectors).

    Returns:
        ``(module, part, output_names, groups)``: ``module(x)`` returns the outputs as a flat
        tuple; ``part`` is backbone or the task's part (detector, detector_rpn, segmentor,
        classifier); ``groups`` says how the outputs group (for the post-processing).

    Raises:
        NotExportableError: a whole model whose forward cannot be traced to a size-free graph.
    """
    if task is None or backbone_only:
        backbone = model if task is None else getattr(model, 'backbone', None)
        if backbone is None:
            raise NotExportableError(f'{type(model).__name__} has no backbone to export.')
        ours = family_of(backbone) is not None  # a pvt_mm network: its outputs have names
        names = ['logits'] if ours and backbone.is_classifier else (
            [f'F{i + 1}' for i in backbone.out_indices] if ours else None)
        module = _Part(backbone, lambda m, x: m(x))
        if names is None:
            with torch.no_grad():
                names = [f'out{i}' for i in range(len(module(example)))]
        return module, 'backbone', names, [dict(name='features', levels=len(names))]
    fn, part, groups = export_rules(task).exportable(model, example)
    names = [g['name'] if g['levels'] == 1 and part != 'detector' else f'{g["name"]}_{i}'
             for g in groups for i in range(g['levels'])]
    return _Part(model, fn), part, names, groups


def _adaptive_average(x: Tensor, cells: int, dim: int) -> Tensor:
    """``adaptive_avg_pool`` along one axis of symbolic length ``n``: cell ``i`` averages
    ``[floor(i n / cells), ceil((i + 1) n / cells))``, PyTorch's rule, as differences of a
    cumulative sum gathered at indices computed from ``n`` in the graph."""
    n = x.shape[dim]
    i = torch.arange(cells, device=x.device)
    start, end = (i * n) // cells, ((i + 1) * n + cells - 1) // cells
    zero = torch.zeros_like(x.narrow(dim, 0, 1))
    total = torch.cat([zero, x.cumsum(dim)], dim)
    shape = [1] * x.dim()
    shape[dim] = cells
    count = (end - start).to(x.dtype).reshape(shape)
    return (total.index_select(dim, end) - total.index_select(dim, start)) / count


@contextlib.contextmanager
def _symbolic_upstream_sizes() -> Iterator[None]:
    """While exporting, computes sizes that upstream modules derive in Python on the
    symbolic sizes instead, so that the graph follows the input.

    mmseg's ``Upsample`` (Semantic FPN's scale heads) sets its output size to
    ``int(size * scale_factor)``: ``int()`` of a symbolic float makes torch.export take the
    example's value, and the graph then upsamples every input to the example's map size.
    With an integral scale factor the same size is ``size * factor`` in integers, which
    stays symbolic. Other cases run mmseg's own code (and the export's check catches them).

    ``nn.AdaptiveAvgPool2d`` to more than one cell (UPerNet's and PSPNet's pyramid pooling,
    scales 2, 3, 6) is translated to ONNX with its windows' indices computed at the example's
    size, so another size reads out of range; with a symbolic size it is written as
    :func:`_adaptive_average` along each axis (the same windows; sums by cumulative-sum
    differences, which round differently within float32's precision).
    """
    original_pool = nn.AdaptiveAvgPool2d.forward

    def pool(self: nn.Module, x: Tensor) -> Tensor:
        size = self.output_size
        cells = (size, size) if isinstance(size, int) else tuple(size)
        if None in cells or not any(isinstance(n, torch.SymInt) for n in x.shape[-2:]) or \
                cells == (1, 1):
            return original_pool(self, x)
        return _adaptive_average(_adaptive_average(x, cells[0], -2), cells[1], -1)

    with contextlib.ExitStack() as patches:
        patches.enter_context(mock.patch.object(nn.AdaptiveAvgPool2d, 'forward', pool))
        if 'mmseg' in sys.modules:
            from mmseg.models.utils import Upsample as upsample
            from mmseg.models.utils import resize
            original_upsample = upsample.forward

            def forward(self: nn.Module, x: Tensor) -> Tensor:
                factor = self.scale_factor
                if self.size or not isinstance(factor, float) or not factor.is_integer():
                    return original_upsample(self, x)
                size = [t * int(factor) for t in x.shape[-2:]]
                return resize(x, size, None, self.mode, self.align_corners)

            patches.enter_context(mock.patch.object(upsample, 'forward', forward))
        yield


def _first_lines(err: BaseException, n: int = 6) -> str:
    lines = [ln for ln in str(err).splitlines() if ln.strip()]
    return '\n  '.join(lines[:n])


def export_onnx(module: nn.Module, example: Tensor, path: str, *, output_names: list[str],
                dynamic: bool = False, opset: int | None = None,
                metadata: dict[str, str] | None = None, optimize: bool = True) -> dict[str, Any]:
    """Exports ``module`` (eval mode, one input) to ``path`` and checks the file.

    With ``dynamic``, height and width are symbolic (``torch.export.Dim.DYNAMIC``): export
    fails rather than freeze either to the example's size. ``optimize`` is the ONNX exporter's
    own graph optimisation (onnxscript's); a module may turn it off with an
    ``onnx_optimize = False`` attribute that says why.

    Returns:
        ``seconds`` (export time) and ``input_range`` (the traced range of each dynamic
        axis, as torch.export states it).

    Raises:
        NotExportableError: torch.export or the ONNX translation refused the graph (the
            exporter's own first lines are quoted).
    """
    import onnx
    import sympy
    from torch.export import Dim
    from torch.utils._sympy.numbers import int_oo
    shapes = ({2: Dim.DYNAMIC, 3: Dim.DYNAMIC},) if dynamic else None
    start = time.perf_counter()
    try:
        with torch.no_grad(), _symbolic_upstream_sizes(), level_sizes_as_numbers():
            program = torch.export.export(module, (example,), dynamic_shapes=shapes, strict=False)
    except Exception as e:  # torch.export's errors are many; quote the first lines
        raise NotExportableError(f'torch.export could not trace {type(module.model).__name__}'
                                 f'{" with dynamic height and width" if dynamic else ""}: '
                                 f'{type(e).__name__}: {_first_lines(e)}') from e
    ranges = {}
    if dynamic:
        name = program.graph_signature.user_inputs[0]
        node = next(n for n in program.graph.nodes if n.op == 'placeholder' and n.name == name)
        for axis, size in zip(('height', 'width'), node.meta['val'].shape[2:]):
            if not isinstance(size, torch.SymInt):
                raise NotExportableError(f'the export fixed the {axis} at the example size.')
            r = program.range_constraints[size.node.expr]
            ranges[axis] = (int(r.lower), None if r.upper in (int_oo, sympy.oo) else int(r.upper))
    try:
        onnx_program = torch.onnx.export(program, (example,), input_names=['input'],
                                         output_names=output_names, opset_version=opset,
                                         dynamo=True, external_data=False, verbose=False,
                                         optimize=optimize)
    except Exception as e:
        raise NotExportableError(f'the ONNX translation failed: {type(e).__name__}: '
                                 f'{_first_lines(e)}') from e
    proto = onnx_program.model_proto
    if dynamic:
        dims = proto.graph.input[0].type.tensor_type.shape.dim
        fixed = [i for i in (2, 3) if not dims[i].dim_param]
        if fixed:
            raise NotExportableError(f'the exported graph fixed input axes {fixed}.')
        # Name the axes; the outputs' sizes are written in the input's symbols.
        rename = {dims[2].dim_param: 'height', dims[3].dim_param: 'width'}
        pattern = re.compile(r'\b(' + '|'.join(map(re.escape, rename)) + r')\b')
        for value in [*proto.graph.input, *proto.graph.output, *proto.graph.value_info]:
            for dim in value.type.tensor_type.shape.dim:
                if dim.dim_param:
                    dim.dim_param = pattern.sub(lambda m: rename[m.group(1)], dim.dim_param)
    for key, value in (metadata or {}).items():
        proto.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(proto, full_check=True)
    onnx.save(proto, path)
    return dict(seconds=time.perf_counter() - start, input_range=ranges)


def read_metadata(path: str) -> dict[str, Any]:
    """pvt_mm's metadata of an exported file (empty for files pvt_mm did not write)."""
    import onnx
    proto = onnx.load(path, load_external_data=False)
    return parse_metadata({p.key: p.value for p in proto.metadata_props})


__all__ = ['NotExportableError', 'exportable_part', 'export_onnx', 'read_metadata',
           'META_PART', 'META_TASK', 'META_OUTPUTS', 'META_MODEL', 'META_CLASSES', 'META_END2END']
