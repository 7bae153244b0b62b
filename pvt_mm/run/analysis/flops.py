"""Counting the multiply-adds of a forward (or forward + backward) pass, attention included.

Counts at the aten level with ``torch.utils.flop_counter.FlopCounterMode``: convolutions and
every matrix product (``mm``/``addmm``/``bmm`` and fused attention), wherever they are, also
inside ``nn.MultiheadAttention``. Multiply-adds are reported (one multiply-add = one "FLOP",
the convention of the paper's tables and of mmcv's counter); element-wise work (norms,
activations, softmax, interpolation) is not counted. torch's counter has no formula for the
CPU flash-attention kernel, so one is registered here: without it, the SRA attention of a
fused model would count as zero; nor for oneDNN's fused linear and convolution, which
PVTv2's CPU inference path calls, so those are registered too. Its convolution backward counts a grouped convolution's weight
gradient as if ungrouped; that formula is corrected here.

The official code's ``get_flops.py`` (both families) counts with mmcv 1.x's module counter
plus the attention products, which also counts some element-wise work: LayerNorm and other
norms (2 per element when affine), convolution biases, ReLU-family activations, pooling and
upsampling (GELU, softmax and linear biases not). :data:`OFFICIAL_RULE` is that sum; the
papers' GFLOPs are printed under it (PVTv2-b5: 11.72 multiply-adds, 11.75 official, 11.8 in
the paper).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import (FlopCounterMode, conv_backward_flop, conv_flop_count,
                                     sdpa_backward_flop_count, sdpa_flop_count)

aten = torch.ops.aten

COUNTING_RULE = ('multiply-adds of convolutions and matrix products (attention included); '
                 '1 multiply-add = 1 FLOP; element-wise ops not counted')
OFFICIAL_RULE = ("the official get_flops.py's: the multiply-adds plus what mmcv 1.x's counter "
                 'adds (norms, conv biases, ReLU-family activations, pooling, upsampling)')
_ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU)
_POOLS = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d,
          nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d,
          nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d)
_NORMS = (nn.LayerNorm, nn.GroupNorm, nn.modules.batchnorm._BatchNorm,
          nn.modules.instancenorm._InstanceNorm)


def _cpu_flash_sdpa(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    return sdpa_flop_count(query_shape, key_shape, value_shape)


def _cpu_flash_sdpa_backward(grad_out_shape, query_shape, key_shape, value_shape, *args,
                             out_shape=None, **kwargs) -> int:
    return sdpa_backward_flop_count(grad_out_shape, query_shape, key_shape, value_shape)


def _conv_backward(grad_out_shape, x_shape, w_shape, bias, stride, padding, dilation,
                   transposed, output_padding, groups, output_mask, out_shape=None,
                   **kwargs) -> int:
    """torch's formula, except a grouped convolution's weight gradient: torch counts it as if
    ungrouped, ``groups`` times too much (512x for PVTv2-b2's stage-1 depth-wise conv). Each
    weight's gradient sums one product per image and output position."""
    args = (grad_out_shape, x_shape, w_shape, bias, stride, padding, dilation, transposed,
            output_padding, groups)
    if transposed or groups == 1 or not output_mask[1]:
        return conv_backward_flop(*args, output_mask, out_val=out_shape)
    count = conv_backward_flop(*args, [output_mask[0], False, False], out_val=out_shape)
    weights = 1
    for n in w_shape:
        weights *= n
    positions = grad_out_shape[0]
    for n in grad_out_shape[2:]:
        positions *= n
    return count + 2 * weights * positions


def _mkldnn_linear(x_shape, w_shape, *args, out_shape=None, **kwargs) -> int:
    """oneDNN's fused linear (PVTv2's CPU inference path): 2 x rows x in x out, as mm."""
    rows = 1
    for n in x_shape[:-1]:
        rows *= n
    return 2 * rows * x_shape[-1] * w_shape[0]


def _mkldnn_conv(x_shape, w_shape, *args, out_shape=None, **kwargs) -> int:
    """oneDNN's fused convolution (the depth-wise conv with GELU), as torch's conv formula."""
    return conv_flop_count(list(x_shape), list(w_shape), list(out_shape), transposed=False)


CUSTOM_FORMULAS = {
    aten.convolution_backward: _conv_backward,
    torch.ops.mkldnn._linear_pointwise: _mkldnn_linear,
    torch.ops.mkldnn._convolution_pointwise: _mkldnn_conv,
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


def count_elementwise(model: nn.Module, fn: Callable[[], Any]) -> tuple[Any, int]:
    """Runs ``fn()``; returns what it returned and the element-wise operations mmcv 1.x's
    module counter adds to the multiply-adds (the official ``get_flops.py``'s rule): norms
    (inputs, twice when affine), convolution biases (outputs), ReLU-family activations
    (outputs), pooling (inputs), upsampling (outputs). Wrap :func:`count_macs` in it to get
    both counts from one forward."""
    total = 0

    def hook(module: nn.Module, inputs: tuple, output: Any) -> None:
        nonlocal total
        if isinstance(module, _NORMS):
            affine = getattr(module, 'affine', False) or getattr(module, 'elementwise_affine',
                                                                  False)
            total += inputs[0].numel() * (2 if affine else 1)
        elif isinstance(module, nn.modules.conv._ConvNd) and module.bias is not None:
            total += output.numel()
        elif isinstance(module, _ACTIVATIONS) or isinstance(module, nn.Upsample):
            total += output.numel()
        elif isinstance(module, _POOLS):
            total += inputs[0].numel()

    hooks = [m.register_forward_hook(hook) for m in model.modules()]
    try:
        result = fn()
    finally:
        for h in hooks:
            h.remove()
    return result, total


def count_classifier(arch: str, shape: tuple[int, int] = (224, 224)) -> dict[str, Any]:
    """The paper's ImageNet classifier, counted as it runs: ``PVT(arch, num_classes=1000)``
    for a v1 size (the class token in the last stage, the final norm and the head included;
    Table 2), ``PVTv2(arch, num_classes=1000)`` for a v2 one (``b0`` ... ``b5``, ``b2_li``;
    the pooled head included)."""
    from ...network.families import family_of_arch
    network = family_of_arch(arch).network
    # The plain blocks: the CPU paths compute the same math, but not through the modules
    # the official rule's hooks see.
    model = network(arch, num_classes=1000, cpu_fast_paths=False).eval()
    x = torch.randn(1, 3, *shape)
    with torch.no_grad():
        (macs, per_op), elementwise = count_elementwise(
            model, lambda: count_macs(lambda: model(x)))
        backbone = network(arch, cpu_fast_paths=False).eval()
        backbone_macs, _ = count_macs(lambda: backbone(x))
    params = sum(p.numel() for p in model.parameters())
    return dict(model=f'{network.family}-{arch} + ImageNet classifier', input=list(shape),
                gmacs=macs / 1e9, official_gflops=(macs + elementwise) / 1e9,
                params_m=params / 1e6, backbone_gmacs=backbone_macs / 1e9,
                per_op_gmacs={k: v / 1e9 for k, v in per_op.items()})


def count_config(config: str, shape: tuple[int, int] | None = None,
                 cfg_options: dict | None = None) -> dict[str, Any]:
    """The config's whole model in ``tensor`` mode (backbone, neck, heads; no post-processing),
    as mmdet's, mmseg's and mmpretrain's get_flops measure it; ``shape`` defaults to the
    task's usual input (800x1333 detection, 512x512 segmentation, 224x224 classification)."""
    import os.path as osp

    from ..config import load_config
    cfg, task = load_config(config, cfg_options)
    h, w = shape or task.flops_shape
    model = task.build_model(cfg).eval()
    if hasattr(model.backbone, 'cpu_fast_paths'):  # the plain blocks, as count_classifier
        model.backbone.cpu_fast_paths = False
    x = torch.randn(1, 3, h, w)
    samples = task.synthetic_samples((h, w), targets=False)
    with torch.no_grad():
        (macs, per_op), elementwise = count_elementwise(
            model, lambda: count_macs(lambda: task.tensor_forward(model, x, samples)))
        backbone_macs, _ = count_macs(lambda: model.backbone(x))
    return dict(model=osp.basename(config), input=[h, w], gmacs=macs / 1e9,
                official_gflops=(macs + elementwise) / 1e9,
                params_m=sum(p.numel() for p in model.parameters()) / 1e6,
                backbone_gmacs=backbone_macs / 1e9,
                per_op_gmacs={k: v / 1e9 for k, v in per_op.items()})


__all__ = ['COUNTING_RULE', 'OFFICIAL_RULE', 'count_macs', 'count_elementwise', 'count_classifier',
           'count_config']
