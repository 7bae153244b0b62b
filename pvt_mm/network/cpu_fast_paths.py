"""Faster execution of PVT's and PVTv2's encoder blocks on the CPU, the weights unchanged.

:func:`block_forward` (PVT v1) and :func:`block_forward_v2` (PVTv2) compute what the
blocks' own ``forward`` computes (the paper's math lives in :mod:`pvt_mm.network.pvt` and
:mod:`pvt_mm.network.pvt_v2`), reordered for PyTorch's CPU kernels. The networks call them
only where they were measured winning: ``cpu_fast_paths=True`` (the default), a CPU tensor,
eager mode. On other devices and under ``torch.compile`` the plain blocks run, with
PyTorch's own kernels. ``tools/analysis/benchmark.py`` measures the difference.

The pieces, each used only where it computes the plain result:

* **Query groups in the attention backward** (:func:`query_groups`): PyTorch's CPU
  flash-attention backward runs one thread per (image, head), so the one-head first
  stage ran its backward on one core at batch 1. Folding query groups into the batch
  fills the threads. Both families.
* **v1's MLP backward reusing its buffers** (:class:`~pvt_mm.network.lean_backward.
  MlpFunction`, which every device runs with ``lean_backward``): on the CPU path it runs
  only where the hidden activation is at least :data:`MLP_REUSE_MIN_BYTES`; below, autograd's
  own chain was faster here.
* **v1's chunked inference MLP fused into the residual** (:func:`mlp_add_`): without
  autograd the (tokens x hidden) activation, 8x the input in stage 1, is never allocated.
* **PVTv2's FFN through oneDNN with its elementwise steps fused, at inference**
  (:func:`conv_ffn_infer`): GELU runs on the depth-wise conv's output while it is in cache
  instead of as a pass of its own over the largest activation, and the linears add their
  biases in the product. oneDNN's erf and its products' blocking differ from PyTorch's in
  the last bits (about 1e-6 relative), so this one is equal within rounding, not bit for bit.

Double backward (``create_graph=True``) needs ``lean_backward=False`` (autograd's own FFN
chain); a second backward through the same graph (``retain_graph=True``) works either way.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import lean_backward as _lean
from .lean_backward import MlpFunction, autocast_dtype, plain_conv_ffn, plain_mlp


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


# MlpFunction saves the time of filling two fresh hidden-size tensors, which pays only when
# they are large: below this size of the hidden activation autograd's own chain was faster
# in the benchmark (tools/analysis/benchmark.py; the figures are in docs/speed.md).
MLP_REUSE_MIN_BYTES = 16 << 20


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


def _attention(block: nn.Module, x: Tensor, hw: tuple[int, int], lean_on: bool) -> Tensor:
    """``attn(norm1(x), hw)``, with its input cast once under autocast where ``lean_on``;
    with autograd, query groups fill the threads."""
    attn, y = block.attn, block.norm1(x)
    q, k, v = _lean.qkv(attn, y, hw) if lean_on else attn.qkv(y, hw)
    if torch.is_grad_enabled() and attn.fused and (q.requires_grad or k.requires_grad):
        out = grouped_attention(q, k, v, attn.attn_drop if attn.training else 0.0)
    else:
        out = attn.attend(q, k, v)
    return attn.project(out, y.shape)


def block_forward(block: nn.Module, x: Tensor, hw: tuple[int, int], lean: bool = True) -> Tensor:
    """What PVT v1's ``block(x, hw)`` returns, with the CPU paths above where they apply
    (and the lean functions with ``lean``)."""
    x = x + block.drop_path(_attention(block, x, hw, lean))
    if not torch.is_grad_enabled():  # inference: the MLP chunked into the residual
        if block.training or _autocast(x) or not plain_mlp(block.mlp, x):
            return x + block.drop_path(block.mlp(block.norm2(x)))
        return mlp_add_(block.mlp, x, block.norm2(x))  # x is this block's own fresh sum
    y = block.norm2(x)
    out = _lean.mlp(block.mlp, y, min_bytes=MLP_REUSE_MIN_BYTES) if lean else block.mlp(y)
    return x + block.drop_path(out)


def _autocast(x: Tensor) -> bool:
    """Autocast on for ``x``'s device: the inference paths' kernels are not autocast's, so
    they stand aside (the lean training functions take autocast's casts themselves)."""
    return autocast_dtype(x) is not None


def _fused_conv_gelu_ok(ffn: nn.Module, x: Tensor) -> bool:
    return (torch.backends.mkldnn.is_available() and not _autocast(x) and plain_conv_ffn(ffn, x)
            and x.dtype == torch.float32 and ffn.fc1.bias is not None
            and isinstance(ffn.relu, (nn.ReLU, nn.Identity)))


def _linear(x: Tensor, fc: nn.Linear, post_op: str = 'none') -> Tensor:
    """oneDNN's linear with its bias (and ``post_op``) fused: no pass to copy the bias into
    the output before the product."""
    return torch.ops.mkldnn._linear_pointwise(x, fc.weight, fc.bias, post_op, [], '')


def conv_ffn_infer(ffn: nn.Module, x: Tensor, hw: tuple[int, int]) -> Tensor:
    """PVTv2's ``ffn(x, hw)`` without autograd, through oneDNN with its elementwise steps
    fused: fc1 with its bias (and linear SRA's ReLU), the depth-wise conv with GELU (what
    inductor's CPU backend fuses them into), fc2 with its bias."""
    if not _fused_conv_gelu_ok(ffn, x):
        return ffn(x, hw)
    h = _linear(x, ffn.fc1, 'relu' if isinstance(ffn.relu, nn.ReLU) else 'none')
    C, conv = h.shape[-1], ffn.dwconv
    h = h.view(x.shape[0], hw[0], hw[1], C).permute(0, 3, 1, 2)  # channels-last, in place
    act = torch.ops.mkldnn._convolution_pointwise(
        h, conv.weight, conv.bias, list(conv.padding), list(conv.stride), list(conv.dilation),
        C, 'gelu', [], 'none')
    return _linear(act.permute(0, 2, 3, 1).flatten(1, 2), ffn.fc2)


def block_forward_v2(block: nn.Module, x: Tensor, hw: tuple[int, int],
                     lean: bool = True) -> Tensor:
    """What PVTv2's ``block(x, hw)`` returns, with the CPU paths above where they apply
    (and the lean functions with ``lean``)."""
    x = x + block.drop_path(_attention(block, x, hw, lean))
    y = block.norm2(x)
    if not torch.is_grad_enabled():
        return x + block.drop_path(conv_ffn_infer(block.mlp, y, hw))
    return x + block.drop_path(_lean.conv_ffn(block.mlp, y, hw) if lean else block.mlp(y, hw))


__all__ = ['block_forward', 'block_forward_v2', 'query_groups', 'grouped_attention',
           'MlpFunction', 'mlp_add_', 'conv_ffn_infer', 'MLP_REUSE_MIN_BYTES']
