"""bf16 autocast of a model's network on the CPU, with its post-processing kept in fp32."""
from __future__ import annotations

import functools
from typing import Any

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from torch import nn

from ...registry import HOOKS

# The parts of mmdet detectors, mmseg segmentors and mmpretrain classifiers that are network:
# features in, features or raw head outputs out.
NETWORK_PARTS = ('backbone', 'neck', 'rpn_head', 'bbox_head', 'decode_head', 'auxiliary_head',
                 'head')


def _to_fp32(out: Any) -> Any:
    if isinstance(out, torch.Tensor):
        return out.float() if out.is_floating_point() and out.dtype != torch.float32 else out
    if isinstance(out, (list, tuple)) and not hasattr(out, '_fields'):
        return type(out)(_to_fp32(o) for o in out)
    if isinstance(out, dict):
        return type(out)({k: _to_fp32(v) for k, v in out.items()})
    return out


def autocast_network(model: nn.Module, dtype: torch.dtype = torch.bfloat16,
                     device_type: str = 'cpu') -> list[str]:
    """Runs the ``forward`` of the model's network parts (:data:`NETWORK_PARTS`) under
    autocast and hands their outputs on in fp32. Returns the parts.

    What follows a part (anchor decoding, NMS, RoIAlign, losses, resizing) then runs in fp32:
    mmcv's CPU operators take no bf16 (``nms`` raises "expected scalar type Float"), and
    losses keep fp32's precision. mmengine's AmpOptimWrapper and TestLoop ``fp16`` autocast
    the whole step instead, which on a GPU mmcv's half-precision kernels allow. A part
    wrapped before is left as it is.
    """
    if is_model_wrapper(model):
        model = model.module
    parts = [name for name in NETWORK_PARTS if isinstance(getattr(model, name, None), nn.Module)]
    if not parts:
        raise ValueError(f'{type(model).__name__} has none of {NETWORK_PARTS} to autocast.')
    for name in parts:
        part = getattr(model, name)
        if getattr(part.forward, '_pvt_mm_autocast', False):
            continue  # wrapped already
        forward = part.forward

        @functools.wraps(forward)
        def run(*args: Any, _forward: Any = forward, **kwargs: Any) -> Any:
            with torch.autocast(device_type, dtype=dtype):
                return _to_fp32(_forward(*args, **kwargs))

        run._pvt_mm_autocast = True
        part.forward = run
    return parts


@HOOKS.register_module()
class CpuBf16Hook(Hook):
    """``--amp`` on a CPU: the network in bf16 autocast for training, validation and testing
    (:func:`autocast_network`); parameters, gradients, optimizer state and losses stay fp32,
    and bf16's fp32-sized exponent needs no loss scaling."""

    priority = 'VERY_HIGH'

    def before_run(self, runner: Any) -> None:
        parts = autocast_network(runner.model)
        runner.logger.info(f'bf16 autocast on the CPU for {", ".join(parts)}.')
