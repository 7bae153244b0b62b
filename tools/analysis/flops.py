"""Counting the multiply-adds of a forward (or forward + backward) pass, attention included.

Counts at the aten level with ``torch.utils.flop_counter.FlopCounterMode``: convolutions and
every matrix product (``mm``/``addmm``/``bmm`` and fused attention), wherever they are, also
inside ``nn.MultiheadAttention``. Multiply-adds are reported (one multiply-add = one "FLOP",
the convention of the paper's tables and of mmcv's counter); element-wise work (norms,
activations, softmax, interpolation) is not counted. torch's counter has no formula for the
CPU flash-attention kernel, so one is registered here: without it, the SRA attention of a
fused model would count as zero.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode, sdpa_backward_flop_count, sdpa_flop_count

aten = torch.ops.aten

COUNTING_RULE = ('multiply-adds of convolutions and matrix products (attention included); '
                 '1 multiply-add = 1 FLOP; element-wise ops not counted')


def _cpu_flash_sdpa(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    return sdpa_flop_count(query_shape, key_shape, value_shape)


def _cpu_flash_sdpa_backward(grad_out_shape, query_shape, key_shape, value_shape, *args,
                             out_shape=None, **kwargs) -> int:
    return sdpa_backward_flop_count(grad_out_shape, query_shape, key_shape, value_shape)


CUSTOM_FORMULAS = {
    aten._scaled_dot_product_flash_attention_for_cpu: _cpu_flash_sdpa,
    aten._scaled_dot_product_flash_attention_for_cpu_backward: _cpu_flash_sdpa_backward,
}


def count_macs(fn: Callable[[], Any]) -> tuple[int, dict[str, int]]:
    """Runs ``fn()`` under the counter; returns total multiply-adds and a per-op breakdown."""
    counter = FlopCounterMode(display=False, custom_mapping=CUSTOM_FORMULAS)
    with counter:
        fn()
    per_op = {str(op).replace('aten.', ''): n // 2
              for op, n in counter.get_flop_counts().get('Global', {}).items()}
    return counter.get_total_flops() // 2, per_op
