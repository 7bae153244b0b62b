"""``--amp`` as mmdet's tools do it, and what an AmpOptimWrapper config does without a GPU."""
from __future__ import annotations

from typing import Any

import torch


def enable_amp(cfg: Any) -> None:
    """Mixed precision as mmdet's ``--amp`` does it (needs a GPU with mmengine 0.10)."""
    if not torch.cuda.is_available():
        raise RuntimeError('--amp needs a CUDA GPU: mmengine 0.10 runs AmpOptimWrapper on GPUs '
                           'only. Drop --amp to train in fp32 on this machine.')
    wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
    if wrapper == 'AmpOptimWrapper':
        return
    if wrapper != 'OptimWrapper':
        raise ValueError(f'--amp only applies to OptimWrapper, this config uses {wrapper}.')
    cfg.optim_wrapper.type = 'AmpOptimWrapper'
    cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')


def without_gpu_amp(cfg: Any) -> bool:
    """On a machine without CUDA, runs an AmpOptimWrapper config in fp32; True if it did."""
    if torch.cuda.is_available() or cfg.optim_wrapper.get('type') != 'AmpOptimWrapper':
        return False
    cfg.optim_wrapper.type = 'OptimWrapper'
    cfg.optim_wrapper.pop('loss_scale', None)
    return True
