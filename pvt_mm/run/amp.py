"""``--amp``: mixed precision as mmdet's tools do it on a GPU, and bf16 autocast of the network
on a CPU with native bf16 matrix instructions; what an AmpOptimWrapper config does without a
GPU."""
from __future__ import annotations

from typing import Any

import torch

CPU_BF16_HOOK = dict(type='pvt_mm.CpuBf16Hook')


def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bf16 matrices natively (AVX512-BF16 or AMX tiles); where it
    does not, oneDNN emulates bf16 and it runs slower than fp32."""
    checks = ('_is_avx512_bf16_supported', '_is_amx_tile_supported')
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


NO_BF16 = ('No CUDA GPU, and this CPU has no native bf16 matrix instructions (AVX512-BF16 or '
           'AMX): --amp is ignored, running in fp32.')
CPU_BF16 = ('No CUDA GPU: --amp runs the network (backbone, neck, dense heads) under bf16 '
            'autocast on the CPU; post-processing, losses and the optimizer stay fp32.')


def _add_cpu_bf16_hook(cfg: Any) -> None:
    hooks = list(cfg.get('custom_hooks') or [])
    if CPU_BF16_HOOK not in hooks:
        cfg.custom_hooks = [*hooks, CPU_BF16_HOOK]


def enable_amp(cfg: Any) -> str:
    """Mixed-precision training as ``--amp`` asks; returns what it chose, to be logged.

    GPU: mmdet's rule, ``AmpOptimWrapper`` (fp16 autocast and loss scaling). CPU with native
    bf16: pvt_mm's ``CpuBf16Hook`` (bf16 autocast of the network; bf16 needs no loss
    scaling) with the plain ``OptimWrapper``. Other CPUs: fp32, said so.
    """
    wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
    if wrapper not in ('OptimWrapper', 'AmpOptimWrapper'):
        raise ValueError(f'--amp only applies to OptimWrapper, this config uses {wrapper}.')
    if torch.cuda.is_available():
        if wrapper == 'OptimWrapper':
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
        return 'Mixed-precision training on the GPU (AmpOptimWrapper).'
    without_gpu_amp(cfg)
    if not cpu_has_native_bf16():
        return NO_BF16
    _add_cpu_bf16_hook(cfg)
    return CPU_BF16


def enable_amp_test(cfg: Any) -> str:
    """``--amp`` for testing: on a GPU mmengine's TestLoop ``fp16`` switch (the whole step in
    fp16 autocast), on a CPU with native bf16 the ``CpuBf16Hook``. Returns what it chose."""
    if torch.cuda.is_available():
        cfg.test_cfg = {**(cfg.get('test_cfg') or {}), 'fp16': True}
        return 'Testing under fp16 autocast on the GPU.'
    if not cpu_has_native_bf16():
        return NO_BF16
    _add_cpu_bf16_hook(cfg)
    return CPU_BF16


def inference_amp(model: Any, amp: bool) -> str:
    """``--amp`` for inference outside a Runner (tools/demo.py): the model's network parts
    autocast as the hook does it. Returns what it chose."""
    from .hooks import autocast_network
    if not amp:
        return 'fp32'
    if torch.cuda.is_available() and next(model.parameters()).is_cuda:
        autocast_network(model, torch.float16, 'cuda')
        return 'fp16 autocast of the network on the GPU'
    if not cpu_has_native_bf16():
        return NO_BF16
    autocast_network(model)
    return CPU_BF16


def without_gpu_amp(cfg: Any) -> bool:
    """On a machine without CUDA, runs an AmpOptimWrapper config in fp32; True if it did."""
    if torch.cuda.is_available() or cfg.optim_wrapper.get('type') != 'AmpOptimWrapper':
        return False
    cfg.optim_wrapper.type = 'OptimWrapper'
    for key in ('loss_scale', 'dtype', 'use_fsdp'):
        cfg.optim_wrapper.pop(key, None)
    return True
