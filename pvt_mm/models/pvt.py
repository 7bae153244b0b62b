"""Pyramid Vision Transformer (PVT v1) backbone.

Wang et al., "Pyramid Vision Transformer: A Versatile Backbone for Dense Prediction
without Convolutions", ICCV 2021 (arXiv 2102.12122). The code follows the paper's
Section 3 top to bottom: patch embedding (3.2), spatial-reduction attention (3.3,
Eq. 1-4), the encoder block, and the four-stage pyramid of Table 1.

Numerics match the official implementation: LayerNorm eps 1e-5 in the patch embedding
and in the spatial-reduction norm, eps 1e-6 in the two norms of each block, exact GELU,
and position embeddings learned at the pretraining size that are bilinearly resized
(``align_corners=False``) to the actual feature size of every stage.

Input size rule: a stage with patch size ``p`` maps ``h x w`` to ``floor(h/p) x floor(w/p)``
(a convolution with kernel = stride = ``p`` and no padding), so the default arches give
F_i of size ``floor(H / 2**(i+1))`` for i = 1..4 (strides 4/8/16/32; the remainder is
dropped, as in the official code). Spatial reduction needs at least ``R_i`` tokens per
side in stage i, which makes 32x32 the smallest input the paper's arches accept;
:attr:`PVT.min_input_size` holds the bound and smaller inputs raise ``ValueError``.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from mmengine.logging import print_log
from mmengine.model import BaseModule
from torch import Tensor, nn
from torch.autograd.function import once_differentiable
from torch.utils.checkpoint import checkpoint

from ..registry import MODELS

# Table 1 of the paper. Keys of a custom arch dict are the same.
ARCH_SETTINGS: dict[str, dict[str, tuple[int, ...]]] = {
    'tiny': dict(depths=(2, 2, 2, 2)),
    'small': dict(depths=(3, 4, 6, 3)),
    'medium': dict(depths=(3, 4, 18, 3)),
    'large': dict(depths=(3, 8, 27, 3)),
}
_COMMON = dict(
    patch_sizes=(4, 2, 2, 2),
    embed_dims=(64, 128, 320, 512),
    num_heads=(1, 2, 5, 8),
    mlp_ratios=(8, 8, 4, 4),
    sr_ratios=(8, 4, 2, 1),
)
for _arch in ARCH_SETTINGS.values():
    _arch.update(_COMMON)
ARCH_KEYS = ('patch_sizes', 'embed_dims', 'depths', 'num_heads', 'mlp_ratios', 'sr_ratios')

PATCH_NORM_EPS = 1e-5  # official: nn.LayerNorm default in PatchEmbed and in Attention.norm
BLOCK_NORM_EPS = 1e-6  # official: partial(nn.LayerNorm, eps=1e-6) for Block.norm1/norm2


def resolve_arch(arch: str | dict[str, Sequence[int]]) -> dict[str, tuple[int, ...]]:
    """Returns the arch table entry for a size name, or validates a custom arch dict.

    Args:
        arch: ``'tiny'``, ``'small'``, ``'medium'``, ``'large'``, or a dict with the keys
            of :data:`ARCH_KEYS`, each a sequence with one value per stage.

    Raises:
        ValueError: unknown name, missing or extra keys, lists of different lengths,
            non-positive values, or heads that do not divide the channels.
    """
    if isinstance(arch, str):
        name = arch.lower()
        if name not in ARCH_SETTINGS:
            raise ValueError(f'Unknown PVT arch {arch!r}; valid names are '
                             f'{sorted(ARCH_SETTINGS)} or a dict with keys {list(ARCH_KEYS)}.')
        return dict(ARCH_SETTINGS[name])
    if not isinstance(arch, dict):
        raise TypeError(f'PVT arch must be a name or a dict, got {type(arch).__name__}.')
    missing = [k for k in ARCH_KEYS if k not in arch]
    extra = [k for k in arch if k not in ARCH_KEYS]
    if missing or extra:
        raise ValueError(f'Custom PVT arch must have exactly the keys {list(ARCH_KEYS)}; '
                         f'missing {missing}, unexpected {extra}.')
    spec = {k: tuple(arch[k]) for k in ARCH_KEYS}
    lengths = {k: len(v) for k, v in spec.items()}
    if len(set(lengths.values())) != 1 or not next(iter(lengths.values())):
        raise ValueError(f'Custom PVT arch lists must all have one entry per stage (same, '
                         f'non-zero length); got lengths {lengths}.')
    for key, values in spec.items():
        if any(not isinstance(v, (int, float)) or v <= 0 for v in values):
            raise ValueError(f'Custom PVT arch {key!r} must hold positive numbers, got {values}.')
    for i, (dim, heads) in enumerate(zip(spec['embed_dims'], spec['num_heads'])):
        if dim % heads:
            raise ValueError(f'Custom PVT arch stage {i + 1}: num_heads={heads} does not divide '
                             f'embed_dims={dim}.')
    return spec


class PatchEmbed(nn.Module):
    """Non-overlapping patch embedding: Conv2d(kernel = stride = patch size) + LayerNorm."""

    def __init__(self, in_channels: int, embed_dim: int, patch_size: int) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_channels, embed_dim, kernel_size=patch_size, stride=patch_size)
        self.norm = nn.LayerNorm(embed_dim, eps=PATCH_NORM_EPS)

    def forward(self, x: Tensor) -> tuple[Tensor, tuple[int, int]]:
        """Maps (B, C, H, W) to tokens (B, H'W', D) and the grid size (H', W')."""
        x = self.proj(x)
        hw = (x.shape[2], x.shape[3])
        return self.norm(x.flatten(2).transpose(1, 2)), hw


def _query_groups(q: Tensor) -> int:
    """How many query groups to fold into the batch of a CPU attention with autograd.

    PyTorch's CPU flash-attention backward runs one thread per (batch, head) pair, so
    with one image and one head (stage 1) a single core does all of it. Splitting the
    queries into ``g`` groups, each attending to the same keys, gives ``g`` times the
    pairs; the keys' and values' gradients are summed back over the groups by autograd.
    ``g`` brings the pair count to a multiple of the thread count and divides the
    query count; 1 on other devices, while tracing, or when nothing is to be gained.
    """
    if q.device.type != 'cpu' or torch.compiler.is_compiling():
        return 1
    threads, pairs, n = torch.get_num_threads(), q.shape[0] * q.shape[1], q.shape[2]
    groups = threads // math.gcd(pairs, threads)
    while n % groups:
        groups -= 1
    return groups


class SpatialReductionAttention(nn.Module):
    """Multi-head attention whose keys and values come from a spatially reduced input.

    SR(x) = LayerNorm(Conv2d_{k=s=R}(x)) shrinks the key/value sequence R^2 times
    (paper Eq. 3). ``q`` and ``kv`` are separate projections, as in the official code.

    Args:
        dim: channels.
        num_heads: attention heads; must divide ``dim``.
        sr_ratio: spatial-reduction ratio R (1 = plain multi-head attention).
        qkv_bias: bias in the q and kv projections.
        attn_drop: dropout on the attention weights.
        proj_drop: dropout after the output projection.
        fused: use ``F.scaled_dot_product_attention`` (fused kernels); ``False`` runs the
            explicit softmax(QK^T / sqrt(d)) V, for reference and export.
    """

    def __init__(self, dim: int, num_heads: int, sr_ratio: int = 1, qkv_bias: bool = True,
                 attn_drop: float = 0.0, proj_drop: float = 0.0, fused: bool = True) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim ** -0.5
        self.sr_ratio = sr_ratio
        self.fused = fused
        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.kv = nn.Linear(dim, dim * 2, bias=qkv_bias)
        self.attn_drop = attn_drop
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)
        if sr_ratio > 1:
            self.sr = nn.Conv2d(dim, dim, kernel_size=sr_ratio, stride=sr_ratio)
            self.norm = nn.LayerNorm(dim, eps=PATCH_NORM_EPS)

    def forward(self, x: Tensor, hw: tuple[int, int]) -> Tensor:
        B, N, C = x.shape
        q = self.q(x).view(B, N, self.num_heads, self.head_dim).transpose(1, 2)
        if self.sr_ratio > 1:
            # (B, N, C) seen as a channels-last (B, C, H, W) map: the conv reads it in place.
            x_ = x.view(B, hw[0], hw[1], C).permute(0, 3, 1, 2)
            x = self.norm(self.sr(x_).flatten(2).transpose(1, 2))
        k, v = self.kv(x).view(B, -1, 2, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        drop = self.attn_drop if self.training else 0.0
        if self.fused:
            groups = _query_groups(q) if q.requires_grad or k.requires_grad else 1
            if groups > 1:
                # Each query row attends independently: fold query groups into the batch.
                q = q.transpose(1, 2).reshape(B * groups, N // groups, self.num_heads, -1)
                q = q.transpose(1, 2)
                k, v = (t.unsqueeze(1).expand(B, groups, *t.shape[1:]).flatten(0, 1)
                        for t in (k, v))
            out = F.scaled_dot_product_attention(q, k, v, dropout_p=drop)
        else:
            attn = (q * self.scale) @ k.transpose(-2, -1)
            attn = F.dropout(attn.softmax(dim=-1), p=drop)
            out = attn @ v
        return self.proj_drop(self.proj(out.transpose(1, 2).reshape(B, N, C)))


class _MlpFunction(torch.autograd.Function):
    """Linear, exact GELU, Linear for training, with a backward that reuses its buffers.

    Autograd's own backward of this chain allocates and fills two fresh (tokens x hidden)
    tensors, the gradients of the GELU output and input, each 8x the block input in
    stage 1. Here the saved GELU output, once it has given fc2's weight gradient,
    receives the gradient of the GELU output and then, in place, that of its input: the
    backward allocates nothing of that size (PVT-S at 800x1344 on the CPU: GELU's
    backward 448 -> 185 ms a step, the step ~8% faster). The products are autograd's own
    (same operands, same order), so the gradients are bit-equal. The saved tensor is
    spent by one backward: a second one through the same graph (``retain_graph=True``)
    is refused by autograd's version check, and differentiating the gradients
    (``create_graph=True``) by ``once_differentiable``. Set ``Mlp.reuse_buffers = False``
    for those uses.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor) -> Tensor:
        flat = x.reshape(-1, x.shape[-1])
        hidden = torch.addmm(b1, flat, w1.t())
        act = F.gelu(hidden)
        out = torch.addmm(b2, act, w2.t())
        ctx.save_for_backward(flat, w1, w2, hidden, act)
        ctx.in_shape = x.shape
        return out.view(*x.shape[:-1], w2.shape[0])

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, ...]:
        flat, w1, w2, hidden, act = ctx.saved_tensors
        need_x, need_w1, need_b1, need_w2, need_b2 = ctx.needs_input_grad
        grad = grad_out.reshape(-1, grad_out.shape[-1])
        gx = gw1 = gb1 = gw2 = gb2 = None
        if need_w2:
            gw2 = act.t().mm(grad).t()
        if need_b2:
            gb2 = grad.sum(0)
        if need_x or need_w1 or need_b1:
            g_hidden = torch.mm(grad, w2, out=act)  # act is spent: it holds d(GELU out)
            torch.ops.aten.gelu_backward.grad_input(g_hidden, hidden, grad_input=g_hidden)
            if need_x:
                gx = g_hidden.mm(w1).view(ctx.in_shape)
            if need_w1:
                gw1 = flat.t().mm(g_hidden).t()
            if need_b1:
                gb1 = g_hidden.sum(0)
        return gx, gw1, gb1, gw2, gb2


class Mlp(nn.Module):
    """The feed-forward layer: Linear, GELU, Linear (with dropout after each).

    Attributes:
        reuse_buffers: train through :class:`_MlpFunction` where it applies (default);
            ``False`` keeps autograd's own chain, for double backward or
            ``retain_graph=True``. A class attribute: set it on ``Mlp`` for all blocks.
    """

    reuse_buffers: bool = True

    def __init__(self, dim: int, hidden_dim: int, drop: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x: Tensor) -> Tensor:
        if self._buffer_reusing_backward(x):
            return _MlpFunction.apply(x, self.fc1.weight, self.fc1.bias, self.fc2.weight,
                                      self.fc2.bias)
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))

    def _buffer_reusing_backward(self, x: Tensor) -> bool:
        """Whether :class:`_MlpFunction` computes this call exactly: eager autograd in the
        parameters' dtype, no active dropout, biases present, no autocast or tracing."""
        return (self.reuse_buffers and torch.is_grad_enabled()
                and not torch.compiler.is_compiling()
                and (x.requires_grad or self.fc1.weight.requires_grad)
                and (self.drop.p == 0.0 or not self.training)
                and self.fc1.bias is not None and self.fc2.bias is not None
                and x.dtype == self.fc1.weight.dtype
                and not torch.is_autocast_enabled(x.device.type))

    def add_to_(self, residual: Tensor, x: Tensor, chunk_bytes: int = 8 << 20) -> Tensor:
        """``residual += mlp(x)`` in place, for inference without autograd.

        Tokens go through fc1, GELU (in place) and fc2 a chunk at a time and are added to
        ``residual`` chunk by chunk: the (tokens x hidden) activation, 8x the input in stage
        1, is never materialised, and each chunk stays in cache. Per element it is the same
        arithmetic, in the same order, as ``residual + forward(x)``.
        """
        flat_in = x.reshape(-1, x.shape[-1])
        flat_out = residual.view(-1, residual.shape[-1])
        rows = max(1, chunk_bytes // (self.fc1.out_features * x.element_size()))
        w1, w2 = self.fc1.weight.t(), self.fc2.weight.t()
        for start in range(0, flat_in.shape[0], rows):
            hidden = torch.ops.aten.gelu_(torch.addmm(self.fc1.bias, flat_in[start:start + rows], w1))
            flat_out[start:start + rows].add_(torch.addmm(self.fc2.bias, hidden, w2))
        return residual


class DropPath(nn.Module):
    """Stochastic depth: drops the whole residual branch per sample while training."""

    def __init__(self, drop_prob: float = 0.0) -> None:
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x: Tensor) -> Tensor:
        if self.drop_prob == 0.0 or not self.training:
            return x
        keep = 1.0 - self.drop_prob
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask.div_(keep)

    def extra_repr(self) -> str:
        return f'drop_prob={self.drop_prob}'


class Block(nn.Module):
    """Encoder layer: x + SRA(LN(x)), then x + MLP(LN(x)), each with stochastic depth."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, sr_ratio: int,
                 qkv_bias: bool = True, drop: float = 0.0, attn_drop: float = 0.0,
                 drop_path: float = 0.0, fused_attn: bool = True) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=BLOCK_NORM_EPS)
        self.attn = SpatialReductionAttention(dim, num_heads, sr_ratio, qkv_bias, attn_drop,
                                              drop, fused_attn)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=BLOCK_NORM_EPS)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop)

    def forward(self, x: Tensor, hw: tuple[int, int]) -> Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x), hw))
        if self.training or torch.is_grad_enabled() or torch.compiler.is_compiling() \
                or torch.is_autocast_enabled(x.device.type) or x.dtype != self.mlp.fc1.weight.dtype:
            return x + self.drop_path(self.mlp(self.norm2(x)))
        return self.mlp.add_to_(x, self.norm2(x))  # x is this block's own fresh sum


class PVTStage(nn.Module):
    """One pyramid level: patch embedding, resized position embedding, encoder blocks.

    Args:
        in_channels: channels of the stage input.
        dim: channels of the stage output (C_i).
        patch_size: P_i.
        pos_grid: (h, w) of the position embedding learned at the pretraining size.
        blocks: the encoder layers.
        drop_rate: dropout after adding the position embedding.
    """

    def __init__(self, in_channels: int, dim: int, patch_size: int, pos_grid: tuple[int, int],
                 blocks: list[Block], drop_rate: float = 0.0) -> None:
        super().__init__()
        self.pos_grid = pos_grid
        self.patch_embed = PatchEmbed(in_channels, dim, patch_size)
        self.pos_embed = nn.Parameter(torch.zeros(1, pos_grid[0] * pos_grid[1], dim))
        self.pos_drop = nn.Dropout(drop_rate)
        self.blocks = nn.ModuleList(blocks)
        self.with_cp = False
        self._pos_cache: tuple[tuple[Any, ...], Tensor] | None = None

    def resized_pos_embed(self, hw: tuple[int, int]) -> Tensor:
        """The position embedding bilinearly resized to the grid ``hw``, as (1, h*w, C).

        Without autograd (inference) the result is cached per grid size, device and dtype
        and dropped as soon as the parameter changes (its version counter moves).
        """
        pos = self.pos_embed
        if hw == self.pos_grid:
            return pos
        caching = not (torch.is_grad_enabled() and pos.requires_grad) and \
            not torch.compiler.is_compiling()
        if caching:
            key = (hw, pos._version, pos.device, pos.dtype, pos.data_ptr())
            if self._pos_cache is not None and self._pos_cache[0] == key:
                return self._pos_cache[1]
        grid = pos.reshape(1, *self.pos_grid, -1).permute(0, 3, 1, 2)
        out = F.interpolate(grid, size=hw, mode='bilinear', align_corners=False)
        out = out.flatten(2).transpose(1, 2)
        if caching:
            self._pos_cache = (key, out)
        return out

    def forward(self, x: Tensor) -> Tensor:
        """Maps (B, C_in, H, W) to (B, C_i, floor(H/P_i), floor(W/P_i))."""
        B = x.shape[0]
        x, hw = self.patch_embed(x)
        x = self.pos_drop(x + self.resized_pos_embed(hw))
        for block in self.blocks:
            if self.with_cp and self.training and x.requires_grad:
                x = checkpoint(block, x, hw, use_reentrant=False)
            else:
                x = block(x, hw)
        # A channels-last NCHW view, no copy: the next stage's patch embedding reads it as
        # is. reshape(B, C, h, w) of the transpose gives the same view except that, for
        # B = 1, the batch stride is not recognised as channels-last and the convolution
        # first copies the map to NCHW.
        return x.view(B, hw[0], hw[1], -1).permute(0, 3, 1, 2)


@MODELS.register_module()
class PVT(BaseModule):
    """Pyramid Vision Transformer (v1) returning the feature pyramid F1..F4.

    Args:
        arch: ``'tiny'``, ``'small'``, ``'medium'``, ``'large'`` (paper Table 1), or a dict
            with keys :data:`ARCH_KEYS`, one value per stage.
        in_channels: channels of the input image.
        pretrain_img_size: image size the position embeddings were learned at (224 gives
            56^2, 28^2, 14^2, 7^2 tokens for the paper's arches).
        out_indices: which stages (0-based) to return, in order; default all.
        qkv_bias: bias in the q and kv projections.
        drop_rate: dropout after position embeddings, in attention output and MLP.
        attn_drop_rate: dropout on attention weights.
        drop_path_rate: stochastic depth, rising linearly over all blocks to this value.
        frozen_stages: -1 freezes nothing; 0 freezes stage 1's patch and position
            embedding (the stem); k >= 1 freezes stages 1..k entirely. Frozen parts get
            ``requires_grad=False`` and stay in eval mode.
        with_cp: gradient checkpointing of every block while training (less memory).
        fused_attn: attention through ``F.scaled_dot_product_attention``; ``False`` uses
            the explicit math path.
        init_cfg: ``dict(type='Pretrained', checkpoint=PATH_OR_URL)`` loads weights in
            :meth:`init_weights` (official PVT, mmdet PVT, pvt_mm, or whole detector /
            segmentor checkpoints), strictly: any mismatch raises. Otherwise random init.
        pretrained: deprecated spelling of ``init_cfg=dict(type='Pretrained', checkpoint=...)``
            that mmseg's ``EncoderDecoder`` and older configs pass; a path or URL.
    """

    def __init__(self,
                 arch: str | dict[str, Sequence[int]] = 'small',
                 in_channels: int = 3,
                 pretrain_img_size: int | tuple[int, int] = 224,
                 out_indices: Sequence[int] | None = None,
                 qkv_bias: bool = True,
                 drop_rate: float = 0.0,
                 attn_drop_rate: float = 0.0,
                 drop_path_rate: float = 0.1,
                 frozen_stages: int = -1,
                 with_cp: bool = False,
                 fused_attn: bool = True,
                 init_cfg: dict | list[dict] | None = None,
                 pretrained: str | None = None) -> None:
        if pretrained is not None:
            if init_cfg is not None:
                raise ValueError('Give the checkpoint as init_cfg or as pretrained, not both.')
            if not isinstance(pretrained, str):
                raise TypeError(f'pretrained must be a path or URL, got {type(pretrained).__name__}.')
            warnings.warn("PVT(pretrained=...) is deprecated; use init_cfg=dict(type='Pretrained', "
                          'checkpoint=...).', DeprecationWarning, stacklevel=2)
            init_cfg = dict(type='Pretrained', checkpoint=pretrained)
        super().__init__(init_cfg=init_cfg)
        self.arch = resolve_arch(arch)
        num_stages = len(self.arch['depths'])
        self.num_stages = num_stages
        if not isinstance(in_channels, int) or in_channels <= 0:
            raise ValueError(f'in_channels must be a positive int, got {in_channels!r}.')
        self.in_channels = in_channels

        if out_indices is None:
            out_indices = tuple(range(num_stages))
        if isinstance(out_indices, int):
            out_indices = (out_indices,)
        out_indices = tuple(out_indices)
        bad = [i for i in out_indices if not isinstance(i, int) or not -num_stages <= i < num_stages]
        if not out_indices or bad:
            raise ValueError(f'out_indices {out_indices} invalid: each must be one of '
                             f'{list(range(num_stages))} (or negative from the end).')
        self.out_indices = tuple(i % num_stages for i in out_indices)
        if not isinstance(frozen_stages, int) or not -1 <= frozen_stages <= num_stages:
            raise ValueError(f'frozen_stages={frozen_stages!r} invalid: must be an int in '
                             f'[-1, {num_stages}] (-1 = none, 0 = stem, k = stages 1..k).')
        self.frozen_stages = frozen_stages

        pretrain = (pretrain_img_size, pretrain_img_size) if isinstance(
            pretrain_img_size, int) else tuple(pretrain_img_size)
        depths = self.arch['depths']
        dpr = torch.linspace(0, drop_path_rate, sum(depths)).tolist()
        stages, stride, cin, grid, cur = [], 1, in_channels, pretrain, 0
        self.strides, self.min_input_size = [], 1
        for i in range(num_stages):
            p, dim = self.arch['patch_sizes'][i], self.arch['embed_dims'][i]
            sr = self.arch['sr_ratios'][i]
            stride *= p
            grid = (grid[0] // p, grid[1] // p)
            if min(grid) < 1:
                raise ValueError(f'pretrain_img_size {pretrain} gives stage {i + 1} an empty '
                                 f'position grid; it must be at least {stride}.')
            # Smallest input that leaves stage i at least max(1, sr) tokens per side.
            self.min_input_size = max(self.min_input_size, stride * max(1, sr))
            blocks = [Block(dim, self.arch['num_heads'][i], self.arch['mlp_ratios'][i], sr,
                            qkv_bias, drop_rate, attn_drop_rate, dpr[cur + j], fused_attn)
                      for j in range(depths[i])]
            stages.append(PVTStage(cin, dim, p, grid, blocks, drop_rate))
            self.strides.append(stride)
            cin, cur = dim, cur + depths[i]
        self.stages = nn.ModuleList(stages)
        self.with_cp = with_cp
        self.feature_info = [
            dict(num_chs=self.arch['embed_dims'][i], reduction=self.strides[i],
                 module=f'stages.{i}') for i in self.out_indices
        ]
        self._freeze_stages()

    @property
    def out_channels(self) -> list[int]:
        """Channels of each returned feature map, in output order."""
        return [self.arch['embed_dims'][i] for i in self.out_indices]

    @property
    def with_cp(self) -> bool:
        return self._with_cp

    @with_cp.setter
    def with_cp(self, value: bool) -> None:
        self._with_cp = bool(value)
        for stage in getattr(self, 'stages', []):
            stage.with_cp = self._with_cp

    @property
    def fused_attn(self) -> bool:
        return all(m.fused for m in self.modules() if isinstance(m, SpatialReductionAttention))

    @fused_attn.setter
    def fused_attn(self, value: bool) -> None:
        for m in self.modules():
            if isinstance(m, SpatialReductionAttention):
                m.fused = bool(value)

    def _frozen_modules(self) -> list[nn.Module]:
        if self.frozen_stages < 0:
            return []
        if self.frozen_stages == 0:
            return [self.stages[0].patch_embed]
        return list(self.stages[:self.frozen_stages])

    def _freeze_stages(self) -> None:
        for module in self._frozen_modules():
            module.eval()
            for param in module.parameters():
                param.requires_grad = False
        if self.frozen_stages == 0:
            self.stages[0].pos_embed.requires_grad = False

    def train(self, mode: bool = True) -> 'PVT':
        super().train(mode)
        self._freeze_stages()
        return self

    def init_weights(self) -> None:
        """Loads the ``Pretrained`` checkpoint of ``init_cfg`` strictly, or inits randomly.

        Random init follows the official code: truncated normal (std 0.02) for linear
        weights and position embeddings, zero biases, LayerNorm weight 1 and bias 0.
        """
        cfg = self.init_cfg
        if isinstance(cfg, dict) and cfg.get('type') == 'Pretrained':
            from ..checkpoint import load_pretrained
            load_pretrained(self, cfg['checkpoint'], prefix=cfg.get('prefix'),
                            map_location=cfg.get('map_location', 'cpu'))
        else:
            if cfg is not None:
                print_log(f'PVT: init_cfg {cfg} is not a Pretrained checkpoint; using the '
                          'official random init.', logger='current')
            for m in self.modules():
                if isinstance(m, nn.Linear):
                    nn.init.trunc_normal_(m.weight, std=0.02)
                    if m.bias is not None:
                        nn.init.zeros_(m.bias)
                elif isinstance(m, nn.LayerNorm):
                    nn.init.ones_(m.weight)
                    nn.init.zeros_(m.bias)
            for stage in self.stages:
                nn.init.trunc_normal_(stage.pos_embed, std=0.02)
        self._is_init = True

    def check_input(self, x: Any) -> None:
        """Raises a clear error for an input the backbone cannot take.

        Raises:
            TypeError: not a floating-point tensor.
            ValueError: not 4-D, wrong channel count, smaller than :attr:`min_input_size`
                on a side, or holding NaN or infinite values. The finiteness check reads
                the input once (a device sync on GPU); it is skipped while
                ``torch.compile`` traces, where data-dependent branches break the graph.
        """
        if not isinstance(x, Tensor):
            raise TypeError(f'PVT expects a torch.Tensor of shape (B, {self.in_channels}, H, W), '
                            f'got {type(x).__name__}.')
        if x.ndim != 4:
            raise ValueError(f'PVT expects a 4-D input (B, {self.in_channels}, H, W), got a '
                             f'{x.ndim}-D tensor of shape {tuple(x.shape)}.')
        if not x.is_floating_point():
            raise TypeError(f'PVT expects a floating-point input, got {x.dtype}; convert it '
                            '(and normalize it) first, e.g. x.float().')
        if x.shape[1] != self.in_channels:
            raise ValueError(f'PVT was built for {self.in_channels} input channels, got '
                             f'{x.shape[1]} (input shape {tuple(x.shape)}).')
        h, w = x.shape[2], x.shape[3]
        if min(h, w) < self.min_input_size:
            raise ValueError(f'Input of {h}x{w} is too small for PVT: both sides must be at least '
                             f'{self.min_input_size} pixels (stride x spatial reduction of the '
                             'deepest-limited stage).')
        if not torch.compiler.is_compiling() and not bool(torch.isfinite(x).all()):
            nan, inf = x.isnan(), x.isinf()
            first = tuple((nan | inf).nonzero()[0].tolist())
            raise ValueError(f'PVT expects finite input values, got {int(nan.sum())} NaN and '
                             f'{int(inf.sum())} infinite values in the input of shape '
                             f'{tuple(x.shape)} (the first at index {first}); check the image '
                             'loading and normalization.')

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        """Returns the maps of ``out_indices`` as contiguous NCHW tensors, F_i at stride
        2^(i+1).

        Stages pass each other channels-last views; the maps handed out are contiguous
        NCHW, the layout mmdet's and mmseg's necks expect. Fed channels-last, a neck and
        head run their convolutions channels-last, which on the CPU made a RetinaNet
        training step 24.3 s instead of 18.6 s (PVT-S, 800x1333).
        """
        self.check_input(x)
        feats = {}
        for i, stage in enumerate(self.stages[:max(self.out_indices) + 1]):
            x = stage(x)
            if i in self.out_indices:
                feats[i] = x.contiguous()
        return tuple(feats[i] for i in self.out_indices)


__all__ = ['PVT', 'ARCH_SETTINGS', 'ARCH_KEYS', 'resolve_arch', 'PVTStage', 'PatchEmbed',
           'SpatialReductionAttention', 'Block', 'Mlp', 'DropPath']
