"""Faster execution of PVT's encoder block on the CPU, with the network's weights unchanged.

:func:`block_forward` computes exactly what ``Block.forward`` of :mod:`pvt_mm.network.pvt`
computes (the paper's math lives there), reordered for PyTorch's CPU kernels. The network
calls it only where it was measured winning: ``PVT(cpu_fast_paths=True)`` (the default), a
CPU tensor, eager mode. On other devices and under ``torch.compile`` the plain block runs,
with PyTorch's own kernels. ``tools/analysis/benchmark.py`` measures the difference.

Three pieces, each used only where it computes the plain result:

* **Query groups in the attention backward** (:func:`query_groups`): PyTorch's CPU
  flash-attention backward runs one thread per (image, head), so PVT's one-head first
  stage ran its backward on one core at batch 1. Folding query groups into the batch
  fills the threads.
* **An MLP that holds half for backward and reuses its buffers** (:class:`MlpFunction`):
  autograd's Linear-GELU-Linear saves the GELU input and output (two tokens x hidden
  tensors) and its backward fills two fresh ones; this one saves the input only,
  recomputes the output in the backward and writes both gradients into it. Gradients are
  bit-equal to autograd's. Used where the hidden activation is at least
  :data:`MLP_REUSE_MIN_BYTES` (below, it is slower).
* **A chunked inference MLP fused into the residual** (:func:`mlp_add_`): without
  autograd the (tokens x hidden) activation, 8x the input in stage 1, is never allocated.

The MLP's backward is not itself differentiable: double backward (``create_graph=True``)
fails loudly; set ``model.cpu_fast_paths = False`` for it. A second backward through the
same graph (``retain_graph=True``) works.
"""
from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable


def query_groups(q: Tensor) -> int:
    """How many query groups to fold into the batch of a CPU attention with autograd.

    Splitting the queries into ``g`` groups, each attending to the same keys, gives ``g``
    times the (batch, head) pairs; the keys' and values' gradients are summed back over the
    groups by autograd. ``g`` brings the pair count to a multiple of the thread count and
    divides the query count; 1 when nothing is to be gained.
    """
    threads, pairs, n = torch.get_num_threads(), q.shape[0] * q.shape[1], q.shape[2]
    groups = threads // math.gcd(pairs, threads)
    while n % groups:
        groups -= 1
    return groups


def grouped_attention(q: Tensor, k: Tensor, v: Tensor, dropout_p: float) -> Tensor:
    """``F.scaled_dot_product_attention`` with query groups folded into the batch.

    Takes (B, heads, N, d) queries and returns (B * g, heads, N / g, d): group ``i`` of image
    ``b`` is row ``b * g + i``, so ``out.transpose(1, 2).reshape(B, N, C)`` is the usual
    token layout again.
    """
    B, heads, N, _ = q.shape
    groups = query_groups(q)
    if groups > 1:
        # Each query row attends independently: fold query groups into the batch.
        q = q.transpose(1, 2).reshape(B * groups, N // groups, heads, -1).transpose(1, 2)
        k, v = (t.unsqueeze(1).expand(B, groups, *t.shape[1:]).flatten(0, 1) for t in (k, v))
    return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p)


class MlpFunction(torch.autograd.Function):
    """Linear, exact GELU, Linear for training, holding half the hidden-size memory for
    backward, with a backward that reuses its buffers.

    Autograd's chain saves both the GELU input and its output (two tokens x hidden tensors,
    8x the block's width each). This saves the input only; the backward recomputes the
    GELU output (the same values: the same kernel on the same input), which, once it has
    given fc2's weight gradient, receives the gradient of the GELU output and then, in
    place, that of its input: the bytes held for backward fall by a third, and no fresh
    hidden-size tensor is filled in the backward (docs/speed.md has the figures). The products are autograd's own (same operands, same order), so the
    gradients are bit-equal. Differentiating the gradients is refused by
    ``once_differentiable``.
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
        gx = gw1 = gb1 = gw2 = gb2 = None
        act = F.gelu(hidden)  # recomputed: the same values the forward multiplied by fc2
        if need_w2:
            gw2 = act.t().mm(grad).t()
        if need_b2:
            gb2 = grad.sum(0)
        if need_x or need_w1 or need_b1:
            g_hidden = torch.mm(grad, w2, out=act)  # act is spent: it takes d(GELU out)
            torch.ops.aten.gelu_backward.grad_input(g_hidden, hidden, grad_input=g_hidden)
            if need_x:
                gx = g_hidden.mm(w1).view(ctx.in_shape)
            if need_w1:
                gw1 = flat.t().mm(g_hidden).t()
            if need_b1:
                gb1 = g_hidden.sum(0)
        return gx, gw1, gb1, gw2, gb2


def _plain_mlp(mlp: nn.Module, x: Tensor) -> bool:
    """Whether ``mlp`` is exactly Linear, exact GELU, Linear with biases in ``x``'s dtype,
    and its dropout inactive: the case the fused MLP paths compute bit for bit."""
    return (isinstance(mlp.act, nn.GELU) and mlp.act.approximate == 'none'
            and isinstance(mlp.norm, nn.Identity)
            and mlp.fc1.bias is not None and mlp.fc2.bias is not None
            and (not mlp.training or mlp.drop1.p == mlp.drop2.p == 0.0)
            and x.dtype == mlp.fc1.weight.dtype and not torch.is_autocast_enabled(x.device.type))


# MlpFunction saves the time of filling two fresh hidden-size tensors, which pays only when
# they are large: below this size of the hidden activation autograd's own chain was faster
# in the benchmark (tools/analysis/benchmark.py; the figures are in docs/speed.md).
MLP_REUSE_MIN_BYTES = 16 << 20


def mlp_train(mlp: nn.Module, x: Tensor) -> Tensor:
    """``mlp(x)`` with autograd, through :class:`MlpFunction` where it computes the same and
    its hidden activation is large enough for the reuse to pay."""
    hidden_bytes = x.numel() // x.shape[-1] * mlp.fc1.out_features * x.element_size()
    if hidden_bytes >= MLP_REUSE_MIN_BYTES and _plain_mlp(mlp, x) and \
            (x.requires_grad or mlp.fc1.weight.requires_grad):
        return MlpFunction.apply(x, mlp.fc1.weight, mlp.fc1.bias, mlp.fc2.weight, mlp.fc2.bias)
    return mlp(x)


def mlp_add_(mlp: nn.Module, residual: Tensor, x: Tensor, chunk_bytes: int = 8 << 20) -> Tensor:
    """``residual += mlp(x)`` in place, without autograd, a chunk of tokens at a time.

    Tokens go through fc1, GELU (in place) and fc2 a chunk at a time and are added to
    ``residual`` chunk by chunk, each chunk staying in cache. Per element it is the same
    arithmetic, in the same order, as ``residual + mlp(x)``.
    """
    flat_in = x.reshape(-1, x.shape[-1])
    flat_out = residual.view(-1, residual.shape[-1])
    rows = max(1, chunk_bytes // (mlp.fc1.out_features * x.element_size()))
    w1, w2 = mlp.fc1.weight.t(), mlp.fc2.weight.t()
    for start in range(0, flat_in.shape[0], rows):
        hidden = torch.ops.aten.gelu_(torch.addmm(mlp.fc1.bias, flat_in[start:start + rows], w1))
        flat_out[start:start + rows].add_(torch.addmm(mlp.fc2.bias, hidden, w2))
    return residual


def block_forward(block: nn.Module, x: Tensor, hw: tuple[int, int]) -> Tensor:
    """What ``block(x, hw)`` returns, computed with the CPU paths above where they apply."""
    attn = block.attn
    if not torch.is_grad_enabled():  # inference: the MLP chunked into the residual
        x = x + block.drop_path(attn(block.norm1(x), hw))
        if block.training or not _plain_mlp(block.mlp, x):
            return x + block.drop_path(block.mlp(block.norm2(x)))
        return mlp_add_(block.mlp, x, block.norm2(x))  # x is this block's own fresh sum
    q, k, v = attn.qkv(block.norm1(x), hw)
    if attn.fused and (q.requires_grad or k.requires_grad):
        out = grouped_attention(q, k, v, attn.attn_drop if attn.training else 0.0)
    else:
        out = attn.attend(q, k, v)
    x = x + block.drop_path(attn.project(out, x.shape))
    return x + block.drop_path(mlp_train(block.mlp, block.norm2(x)))


__all__ = ['block_forward', 'query_groups', 'grouped_attention', 'MlpFunction', 'mlp_train',
           'mlp_add_']
