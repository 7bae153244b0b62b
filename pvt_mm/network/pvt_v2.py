"""Pyramid Vision Transformer v2 backbone.

Wang et al., "PVT v2: Improved Baselines with Pyramid Vision Transformer", Computational
Visual Media 2022 (arXiv 2106.13797). Section 3 changes three things in PVT v1
(:mod:`pvt_mm.network.pvt`, whose spatial-reduction attention, drop path and backbone
machinery this file reuses): linear spatial-reduction attention (3.1: keys and values from
a 7x7 average pool, a 1x1 conv, LayerNorm and GELU), overlapping patch embedding (3.2: a 7x7
stride-4 convolution, then 3x3 stride 2, zero-padded), and a convolutional feed-forward
network (3.3: fc1, a 3x3 depth-wise convolution, GELU, fc2; the depth-wise convolution's
zero padding carries position, so there are no position embeddings). Each stage ends with
its own LayerNorm. The sizes are the official code's (:data:`pvt_mm.network.arch.
ARCH_SETTINGS_V2`).

Numerics match the official code (``classification/pvt_v2.py`` and ``detection/pvt_v2.py``
of whai362/PVT, branch v2): LayerNorm eps 1e-5 in the patch embeddings and the spatial
reduction, 1e-6 in the blocks and the stage-closing norms; exact GELU.

Input size rule: padding makes each patch embedding a ceiling, ``ceil(n / 4)`` in stage 1
and ``ceil(n / 2)`` after, so F_i has ``ceil(H / 2^(i+1))`` rows (333 -> 84, 42, 21, 11).
Spatial reduction needs at least R_i tokens per side in stage i: the paper's arches take
inputs of 29 px and up (stage 1's grid of 8); linear SRA pools to 7x7 from any grid, so
b2-li takes any size. :attr:`PVTv2.min_input_size` holds the bound.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from timm.layers import DropPath, trunc_normal_
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from ..registry import MODELS
from . import cpu_fast_paths
from . import lean_backward as lean
from .arch import resolve_arch_v2
from .exportable import AdaptiveAvgPool2d
from .pvt import BLOCK_NORM_EPS, PATCH_NORM_EPS, PVT, SpatialReductionAttention

LINEAR_SRA_POOL = 7  # linear SRA's keys and values: a 7x7 grid whatever the input


class OverlapPatchEmbed(nn.Module):
    """Overlapping patch embedding (3.2): Conv2d(kernel k, stride s, padding k // 2) + LayerNorm."""

    def __init__(self, in_channels: int, embed_dim: int, *, patch_size: int, stride: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_channels, embed_dim, kernel_size=patch_size, stride=stride,
                              padding=patch_size // 2)
        self.norm = nn.LayerNorm(embed_dim, eps=PATCH_NORM_EPS)

    def forward(self, x: Tensor) -> tuple[Tensor, tuple[int, int]]:
        """Maps (B, C, H, W) to tokens (B, H'W', D) and the grid (H', W')."""
        x = self.proj(x)
        hw = (x.shape[2], x.shape[3])
        return self.norm(x.permute(0, 2, 3, 1).flatten(1, 2)), hw


class LinearSRA(SpatialReductionAttention):
    """Linear spatial-reduction attention (3.1): keys and values from the map average-pooled
    to 7x7, then a 1x1 conv, LayerNorm and GELU, so attention costs linear in the tokens."""

    def __init__(self, dim: int, num_heads: int, **kwargs: Any) -> None:
        super().__init__(dim, num_heads, sr_ratio=1, **kwargs)
        self.pool = AdaptiveAvgPool2d(LINEAR_SRA_POOL)  # nn's, with a size-free export
        self.sr = nn.Conv2d(dim, dim, kernel_size=1)
        self.norm = nn.LayerNorm(dim, eps=PATCH_NORM_EPS)
        self.act = nn.GELU()

    def reduce(self, x: Tensor, hw: tuple[int, int]) -> Tensor:
        B, _, C = x.shape
        x_ = x.view(B, hw[0], hw[1], C).permute(0, 3, 1, 2)
        return self.act(self.norm(self.sr(self.pool(x_)).permute(0, 2, 3, 1).flatten(1, 2)))


class ConvFFN(nn.Module):
    """Convolutional feed-forward (3.3): fc1, 3x3 depth-wise conv, GELU, fc2; with linear
    SRA a ReLU follows fc1, as in the official code."""

    def __init__(self, dim: int, hidden: int, *, drop: float = 0.0, linear: bool = False) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.relu = nn.ReLU() if linear else nn.Identity()
        self.dwconv = nn.Conv2d(hidden, hidden, kernel_size=3, padding=1, groups=hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x: Tensor, hw: tuple[int, int]) -> Tensor:
        B = x.shape[0]
        x = self.relu(self.fc1(x))
        # (B, N, C) seen as a channels-last (B, C, H, W) map: the conv reads it in place.
        x = self.dwconv(x.view(B, hw[0], hw[1], -1).permute(0, 3, 1, 2))
        x = self.drop(self.act(x.permute(0, 2, 3, 1).flatten(1, 2)))
        return self.drop(self.fc2(x))


class Block(nn.Module):
    """Encoder layer: x + SRA(LN(x)), then x + ConvFFN(LN(x)), each with stochastic depth."""

    lean_backward = True  # the backbone's switch (PVTv2.lean_backward) sets it

    def __init__(self, dim: int, num_heads: int, *, mlp_ratio: float, sr_ratio: int,
                 linear: bool = False, qkv_bias: bool = True, drop: float = 0.0,
                 attn_drop: float = 0.0, drop_path: float = 0.0, fused_attn: bool = True) -> None:
        super().__init__()
        attn = dict(qkv_bias=qkv_bias, attn_drop=attn_drop, proj_drop=drop, fused=fused_attn)
        self.norm1 = nn.LayerNorm(dim, eps=BLOCK_NORM_EPS)
        self.attn = LinearSRA(dim, num_heads, **attn) if linear else \
            SpatialReductionAttention(dim, num_heads, sr_ratio=sr_ratio, **attn)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=BLOCK_NORM_EPS)
        self.mlp = ConvFFN(dim, int(dim * mlp_ratio), drop=drop, linear=linear)

    def forward(self, x: Tensor, hw: tuple[int, int]) -> Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x), hw))
        return x + self.drop_path(self.ffn(self.norm2(x), hw))

    def ffn(self, x: Tensor, hw: tuple[int, int]) -> Tensor:
        """The ConvFFN, holding only the depth-wise conv's input for backward with
        ``lean_backward``."""
        return lean.conv_ffn(self.mlp, x, hw) if self.lean_backward else self.mlp(x, hw)


def _run_block(block: Block, x: Tensor, hw: tuple[int, int]) -> Tensor:
    return block(x, hw)


class PVTv2Stage(nn.Module):
    """One pyramid level: overlapping patch embedding, encoder blocks, a closing LayerNorm."""

    def __init__(self, in_channels: int, dim: int, *, patch_size: int, stride: int,
                 blocks: list[Block]) -> None:
        super().__init__()
        self.patch_embed = OverlapPatchEmbed(in_channels, dim, patch_size=patch_size,
                                             stride=stride)
        self.blocks = nn.ModuleList(blocks)
        self.norm = nn.LayerNorm(dim, eps=BLOCK_NORM_EPS)
        self.with_cp = False
        self.cpu_fast_paths = True

    def uses_cpu_fast_paths(self, x: Tensor) -> bool:
        """The switch: the CPU paths run for CPU tensors in eager mode when enabled."""
        return self.cpu_fast_paths and x.device.type == 'cpu' and \
            not torch.compiler.is_compiling()

    def forward(self, x: Tensor) -> Tensor:
        """Maps (B, C_in, H, W) to (B, C_i, ceil(H/s), ceil(W/s)) as a channels-last view."""
        B = x.shape[0]
        x, hw = self.patch_embed(x)
        run = cpu_fast_paths.block_forward_v2 if self.uses_cpu_fast_paths(x) else _run_block
        for block in self.blocks:
            if self.with_cp and self.training and x.requires_grad:
                x = checkpoint(run, block, x, hw, use_reentrant=False)
            else:
                x = run(block, x, hw)
        return self.norm(x).view(B, hw[0], hw[1], -1).permute(0, 3, 1, 2)


@MODELS.register_module()
class PVTv2(PVT):
    """Pyramid Vision Transformer v2: the feature pyramid F1..F4, or the official classifier.

    With ``num_classes > 0`` it is the official ImageNet classifier: the mean of the last
    stage's tokens through a linear head, returned as ``(logits,)`` (mmpretrain's
    ``ClsHead`` reads them).

    Args:
        arch: ``'b0'`` ... ``'b5'``, ``'b2_li'`` (linear SRA), or a dict with keys
            :data:`pvt_mm.network.arch.V2_KEYS`, one value per stage, and ``linear``.
        in_channels, out_indices, qkv_bias, drop_rate, attn_drop_rate, drop_path_rate,
        frozen_stages, with_cp, fused_attn, init_cfg, pretrained, num_classes: as
            :class:`pvt_mm.PVT` (``frozen_stages=0`` freezes stage 1's patch embedding).
        cpu_fast_paths, lean_backward: as :class:`pvt_mm.PVT`
            (:func:`pvt_mm.network.cpu_fast_paths.block_forward_v2`,
            :class:`pvt_mm.network.lean_backward.ConvFFNFunction`).
    """

    family = 'PVTv2'

    def __init__(self,
                 arch: str | dict[str, Sequence[int]] = 'b2',
                 *,
                 in_channels: int = 3,
                 out_indices: Sequence[int] | None = None,
                 qkv_bias: bool = True,
                 drop_rate: float = 0.0,
                 attn_drop_rate: float = 0.0,
                 drop_path_rate: float = 0.1,
                 frozen_stages: int = -1,
                 with_cp: bool = False,
                 fused_attn: bool = True,
                 cpu_fast_paths: bool = True,
                 lean_backward: bool = True,
                 init_cfg: dict | list[dict] | None = None,
                 pretrained: str | None = None,
                 num_classes: int = 0) -> None:
        self._set_up(resolve_arch_v2(arch), in_channels=in_channels, out_indices=out_indices,
                     frozen_stages=frozen_stages, init_cfg=init_cfg, pretrained=pretrained,
                     num_classes=num_classes)
        self.with_cls_token = False
        depths, linear = self.arch['depths'], self.arch['linear']
        dpr = torch.linspace(0, drop_path_rate, sum(depths), device='cpu').tolist()  # meta too
        stages, cin, cur, stride = [], in_channels, 0, 1
        self.strides, self.min_input_size = [], 1
        for i in range(self.num_stages):
            dim, sr = self.arch['embed_dims'][i], self.arch['sr_ratios'][i]
            step = 4 if i == 0 else 2
            stride *= step
            if not linear:  # stage i's grid, ceil(n / stride), must be at least R_i
                self.min_input_size = max(self.min_input_size, (sr - 1) * stride + 1)
            blocks = [Block(dim, self.arch['num_heads'][i], mlp_ratio=self.arch['mlp_ratios'][i],
                            sr_ratio=sr, linear=linear, qkv_bias=qkv_bias, drop=drop_rate,
                            attn_drop=attn_drop_rate, drop_path=dpr[cur + j],
                            fused_attn=fused_attn)
                      for j in range(depths[i])]
            stages.append(PVTv2Stage(cin, dim, patch_size=7 if i == 0 else 3, stride=step,
                                     blocks=blocks))
            self.strides.append(stride)
            cin, cur = dim, cur + depths[i]
        self.stages = nn.ModuleList(stages)
        if num_classes:
            self.head = nn.Linear(self.arch['embed_dims'][-1], num_classes)
        self._finish(with_cp=with_cp, cpu_fast_paths=cpu_fast_paths, lean_backward=lean_backward)

    @property
    def is_classifier(self) -> bool:
        return self.num_classes > 0

    def random_init(self) -> None:
        """The official random init: truncated normal (std 0.02) for linear weights, zero
        biases, LayerNorm weight 1 and bias 0, convolutions normal with std sqrt(2 / fan_out)
        (fan_out divided by the groups)."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Conv2d):
                fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels // m.groups
                nn.init.normal_(m.weight, 0, math.sqrt(2.0 / fan_out))
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward_features(self, x: Tensor) -> Tensor:
        """The last stage's map after its norm, (B, C_4, h, w); :meth:`forward_head` pools it."""
        for stage in self.stages:
            x = stage(x)
        return x

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        """The mean of the last stage's tokens (``pre_logits``), or the logits."""
        x = x.mean(dim=(2, 3))
        return x if pre_logits else self.head(x)


__all__ = ['PVTv2', 'PVTv2Stage', 'Block', 'ConvFFN', 'LinearSRA', 'OverlapPatchEmbed']
