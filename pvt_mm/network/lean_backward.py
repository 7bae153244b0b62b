"""Feed-forward networks (and one cast) that hold less for backward, on every device, with
the same gradients.

Autograd keeps every hidden-size tensor a feed-forward network makes (8x the block's width in
the first stages, most of a training step's memory). These functions save the one that
cannot be recomputed cheaply and recompute the rest in the backward, with PyTorch's own
kernels, so they run as they are on a GPU:

* :class:`MlpFunction`, PVT v1's Linear-GELU-Linear: saves the GELU input, not its output.
* :class:`ConvFFNFunction`, PVTv2's depth-wise conv, GELU and fc2: saves the conv's input
  only; the conv (9 multiply-adds a value) and GELU run again in the backward.
* :class:`SharedCast`, under autocast: SRA's input cast to low precision once for its query
  projection and its reduction conv, instead of once for each, so one copy is saved.

The products are autograd's own (the same operands in the same order), so the gradients are
bit-equal to autograd's chain. Under autocast the functions take what autocast would give
the chain (inputs and weights cast to its dtype, once, by ordinary casts that autograd
differentiates) and run in that dtype: the same kernels on the same operands, so bit-equal
there too. The backward is not itself differentiable: double backward (``create_graph=True``)
fails loudly; the backbones' ``lean_backward=False`` gives autograd's own chain.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable


def _exact_gelu(act: nn.Module) -> bool:
    return isinstance(act, nn.GELU) and act.approximate == 'none'


def autocast_dtype(x: Tensor) -> torch.dtype | None:
    """Autocast's dtype where it is on for ``x``'s device, else ``None``."""
    device = x.device.type
    try:
        enabled = torch.is_autocast_enabled(device)
    except RuntimeError:  # a device autocast does not know (meta): no autocast there
        return None
    return torch.get_autocast_dtype(device) if enabled else None


def compute_dtype(x: Tensor, weight: Tensor) -> torch.dtype | None:
    """The dtype a linear or conv of ``x`` and ``weight`` computes in: autocast's where it is
    on for ``x``'s device and would cast both (fp32 or its own dtype), else their common
    dtype; ``None`` where they differ outside autocast (the module raises then)."""
    dtype = autocast_dtype(x)
    if dtype is not None:
        castable = (torch.float32, dtype)
        return dtype if x.dtype in castable and weight.dtype in castable else None
    return x.dtype if x.dtype == weight.dtype else None


def _apply(function: type[torch.autograd.Function], x: Tensor, *params: Tensor) -> Tensor:
    """``function.apply(x, *params)`` in their compute dtype: under autocast, the casts autocast
    would make, made once here (no-ops on tensors already in that dtype), and the function
    run with autocast off so that nothing inside it casts again."""
    dtype = autocast_dtype(x)
    if dtype is None:
        return function.apply(x, *params)
    with torch.autocast(x.device.type, enabled=False):
        return function.apply(x.to(dtype), *(p.to(dtype) for p in params))


def plain_mlp(mlp: nn.Module, x: Tensor) -> bool:
    """Whether ``mlp`` (timm's Mlp) is exactly Linear, exact GELU, Linear with biases, its
    dropout inactive, and ``x`` and its weights in one compute dtype (:func:`compute_dtype`):
    the case :class:`MlpFunction` computes bit for bit."""
    return (_exact_gelu(mlp.act) and isinstance(mlp.norm, nn.Identity)
            and mlp.fc1.bias is not None and mlp.fc2.bias is not None
            and (not mlp.training or mlp.drop1.p == mlp.drop2.p == 0.0)
            and compute_dtype(x, mlp.fc1.weight) is not None)


def plain_conv_ffn(ffn: nn.Module, x: Tensor) -> bool:
    """The same for PVTv2's ConvFFN: exact GELU, biases, inactive dropout, one compute dtype."""
    return (_exact_gelu(ffn.act) and ffn.dwconv.bias is not None and ffn.fc2.bias is not None
            and (not ffn.training or ffn.drop.p == 0.0)
            and compute_dtype(x, ffn.fc2.weight) is not None)


def _needs_grad(x: Tensor, module: nn.Module) -> bool:
    return torch.is_grad_enabled() and (
        x.requires_grad or any(p.requires_grad for p in module.parameters()))


def _fc2_backward(grad: Tensor, act: Tensor, w2: Tensor, need_w2: bool,
                  need_b2: bool) -> tuple[Tensor, Tensor | None, Tensor | None]:
    """fc2's gradients from the recomputed GELU output ``act`` (tokens x hidden); the
    gradient of ``act`` is written into ``act`` itself. The weight gradient is the product
    autograd's linear backward computes, ``grad.t() @ act`` (the transposed product
    ``(act.t() @ grad).t()`` sums in another order under AMX's bf16 kernels)."""
    gw2 = grad.t().mm(act) if need_w2 else None
    gb2 = grad.sum(0) if need_b2 else None
    g_act = torch.mm(grad, w2, out=act)
    return g_act, gw2, gb2


class MlpFunction(torch.autograd.Function):
    """Linear, exact GELU, Linear, holding fc1's input and the GELU input for backward.

    Autograd's chain saves the GELU input and its output; this saves the input only. The
    backward recomputes the GELU output (the same kernel on the same input), which, once it
    has given fc2's weight gradient, receives the gradient of the GELU output and then, in
    place, that of its input: a third less held, and no fresh hidden-size tensor filled in
    the backward.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor) -> Tensor:
        flat = x.reshape(-1, x.shape[-1])
        hidden = torch.addmm(b1, flat, w1.t())
        out = torch.addmm(b2, F.gelu(hidden), w2.t())
        ctx.save_for_backward(flat, w1, w2, hidden)
        ctx.in_shape = x.shape
        return out.view(*x.shape[:-1], w2.shape[0])

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, ...]:
        flat, w1, w2, hidden = ctx.saved_tensors
        need_x, need_w1, need_b1, need_w2, need_b2 = ctx.needs_input_grad
        grad = grad_out.reshape(-1, grad_out.shape[-1])
        gx = gw1 = gb1 = None
        below = need_x or need_w1 or need_b1
        g_hidden, gw2, gb2 = _fc2_backward(grad, F.gelu(hidden), w2, need_w2, need_b2)
        if below:
            torch.ops.aten.gelu_backward.grad_input(g_hidden, hidden, grad_input=g_hidden)
            if need_x:
                gx = g_hidden.mm(w1).view(ctx.in_shape)
            if need_w1:
                gw1 = g_hidden.t().mm(flat)  # autograd's product, as in _fc2_backward
            if need_b1:
                gb1 = g_hidden.sum(0)
        return gx, gw1, gb1, gw2, gb2


class SharedCast(torch.autograd.Function):
    """``x`` cast to ``dtype`` once and handed out twice, two aliases of one tensor.

    Under autocast, two products of one fp32 input (SRA's query projection and its reduction
    conv) each make and save their own low-precision copy of it; these two aliases of one
    copy are saved as one. The two gradients are cast back and summed in ``x``'s dtype, as
    the two casts' own backwards and autograd's accumulation sum them: bit-equal.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
        ctx.in_dtype = x.dtype
        y = x.to(dtype)
        return y, y.view_as(y)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, g1: Tensor, g2: Tensor) -> tuple[Tensor, None]:
        return g1.to(ctx.in_dtype) + g2.to(ctx.in_dtype), None


def cast_once(x: Tensor) -> tuple[Tensor, Tensor]:
    """``(x, x)`` for two products, cast to autocast's dtype once where autocast would cast
    it for each of them (:class:`SharedCast` with autograd)."""
    dtype = autocast_dtype(x)
    if dtype is None or x.dtype != torch.float32:
        return x, x
    if torch.is_grad_enabled():
        return SharedCast.apply(x, dtype)
    y = x.to(dtype)
    return y, y


def _tokens(m: Tensor) -> Tensor:
    """(B, C, H, W) -> (B, H * W, C); a view of a channels-last map."""
    return m.permute(0, 2, 3, 1).flatten(1, 2)


class ConvFFNFunction(torch.autograd.Function):
    """PVTv2's depth-wise 3x3 conv, exact GELU and fc2, holding the conv's input only.

    Autograd's chain saves three hidden-size tensors (the conv's input, the GELU input and
    its output); this saves the first and recomputes the other two in the backward, where
    the recomputed GELU output then receives its own gradient and, in place, the GELU
    input's.
    """

    @staticmethod
    def forward(ctx: Any, h: Tensor, wd: Tensor, bd: Tensor, w2: Tensor, b2: Tensor) -> Tensor:
        B, C = h.shape[:2]
        act = F.gelu(_tokens(F.conv2d(h, wd, bd, padding=1, groups=C)))
        out = torch.addmm(b2, act.reshape(-1, C), w2.t())
        ctx.save_for_backward(h, wd, bd, w2)
        return out.view(B, -1, w2.shape[0])

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, ...]:
        h, wd, bd, w2 = ctx.saved_tensors
        need_h, need_wd, need_bd, need_w2, need_b2 = ctx.needs_input_grad
        B, C = h.shape[:2]
        grad = grad_out.reshape(-1, grad_out.shape[-1])
        conv = F.conv2d(h, wd, bd, padding=1, groups=C)  # recomputed: the GELU input
        pre = _tokens(conv)
        g_act, gw2, gb2 = _fc2_backward(grad, F.gelu(pre).reshape(-1, C), w2, need_w2,
                                        need_b2)
        gh = gwd = gbd = None
        if need_h or need_wd or need_bd:
            g_pre = g_act.view(pre.shape)
            torch.ops.aten.gelu_backward.grad_input(g_pre, pre, grad_input=g_pre)
            g_conv = g_pre.view(B, conv.shape[2], conv.shape[3], C).permute(0, 3, 1, 2)
            gh, gwd, gbd = torch.ops.aten.convolution_backward(
                g_conv, h, wd, [C], [1, 1], [1, 1], [1, 1], False, [0, 0], C,
                [need_h, need_wd, need_bd])
        return gh, gwd, gbd, gw2, gb2


def mlp(module: nn.Module, x: Tensor, min_bytes: int = 0) -> Tensor:
    """``module(x)`` for v1's Mlp, through :class:`MlpFunction` when training needs it and
    its hidden activation is at least ``min_bytes`` (the CPU paths' threshold,
    :data:`pvt_mm.network.cpu_fast_paths.MLP_REUSE_MIN_BYTES`; 0 on other devices)."""
    if not (_needs_grad(x, module) and plain_mlp(module, x)):
        return module(x)
    if min_bytes:
        dtype = compute_dtype(x, module.fc1.weight)
        if x.numel() // x.shape[-1] * module.fc1.out_features * dtype.itemsize < min_bytes:
            return module(x)
    return mlp_function(module, x)


def mlp_function(module: nn.Module, x: Tensor) -> Tensor:
    """:class:`MlpFunction` on v1's Mlp ``module``, in the compute dtype (autocast's casts)."""
    return _apply(MlpFunction, x, module.fc1.weight, module.fc1.bias, module.fc2.weight,
                  module.fc2.bias)


def conv_ffn(module: nn.Module, x: Tensor, hw: tuple[int, int]) -> Tensor:
    """``module(x, hw)`` for PVTv2's ConvFFN, through :class:`ConvFFNFunction` when training
    needs it."""
    if not (_needs_grad(x, module) and plain_conv_ffn(module, x)):
        return module(x, hw)
    h = module.relu(module.fc1(x))
    h = h.view(x.shape[0], hw[0], hw[1], -1).permute(0, 3, 1, 2)
    return _apply(ConvFFNFunction, h, module.dwconv.weight, module.dwconv.bias,
                  module.fc2.weight, module.fc2.bias)


def qkv(attn: nn.Module, x: Tensor, hw: tuple[int, int]) -> tuple[Tensor, Tensor, Tensor]:
    """``attn.qkv(x, hw)``; under autocast, with ``x`` cast once for the query projection
    and the reduction conv where SRA reduces (R > 1) (:func:`cast_once`)."""
    if attn.sr_ratio > 1:
        x_q, x_kv = cast_once(x)
        return attn.qkv(x_q, hw, source=x_kv)
    return attn.qkv(x, hw)


def attention(attn: nn.Module, x: Tensor, hw: tuple[int, int]) -> Tensor:
    """``attn(x, hw)`` with its input cast once (:func:`qkv`)."""
    return attn.project(attn.attend(*qkv(attn, x, hw)), x.shape)


def block_v1(block: nn.Module, x: Tensor, hw: tuple[int, int]) -> Tensor:
    """What PVT v1's ``block(x, hw)`` returns, its attention input cast once and its MLP
    through :class:`MlpFunction` (the lean path of :mod:`pvt_mm.network.dispatch`)."""
    x = x + block.drop_path(attention(block.attn, block.norm1(x), hw))
    return x + block.drop_path(mlp(block.mlp, block.norm2(x)))


def block_v2(block: nn.Module, x: Tensor, hw: tuple[int, int]) -> Tensor:
    """What PVTv2's ``block(x, hw)`` returns, its ConvFFN through :class:`ConvFFNFunction`."""
    x = x + block.drop_path(attention(block.attn, block.norm1(x), hw))
    return x + block.drop_path(conv_ffn(block.mlp, block.norm2(x), hw))


__all__ = ['MlpFunction', 'ConvFFNFunction', 'SharedCast', 'cast_once', 'mlp', 'mlp_function',
           'conv_ffn', 'qkv', 'attention', 'block_v1', 'block_v2', 'plain_mlp', 'plain_conv_ffn', 'autocast_dtype', 'compute_dtype']
