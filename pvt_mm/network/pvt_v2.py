"""Pyramid Vision Transformer v2 backbone.

Wang et al., "PVT v2: Improved Baselines with Pyramid Vision Transformer", Computational
Visual Media 2022 (arXiv 2106.13797). Section 3 changes three things in PVT v1
(:mod:`pvt_mm.network.pvt`, whose patch embedding, spatial-reduction attention and block
this file builds on; the pyramid around the stages is :mod:`pvt_mm.network.pyramid`, shared): linear spatial-reduction attention (3.1: keys and values from
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
from timm.layers import DropPath
from torch import Tensor, nn

from ..registry import MODELS
from .arch import resolve_arch_v2
from .exportable import AdaptiveAvgPool2d
from .pvt import BLOCK_NORM_EPS, PATCH_NORM_EPS, PatchEmbed, SpatialReductionAttention
from .pyramid import PyramidBackbone, PyramidStage

LINEAR_SRA_POOL = 7  # linear SRA's keys and values: a 7x7 grid whatever the input


class OverlapPatchEmbed(PatchEmbed):
    """Overlapping patch embedding (3.2): Conv2d(kernel k, stride s, padding k // 2) + LayerNorm."""

    def __init__(self, in_channels: int, embed_dim: int, *, patch_size: int, stride: int) -> None:
        super().__init__(in_channels, embed_dim, patch_size, stride=stride,
                         padding=patch_size // 2)


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
    """Encoder layer: x + SRA(LN(x)), then x + ConvFFN(LN(x)), each with stochastic depth;
    SRA is linear (:class:`LinearSRA`) in b2-li."""

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
        return x + self.drop_path(self.mlp(self.norm2(x), hw))


def v2_stage(in_channels: int, dim: int, *, patch_size: int, stride: int,
             blocks: list[Block]) -> PyramidStage:
    """One pyramid level: overlapping patch embedding, encoder blocks, a closing LayerNorm
    (no position embedding: the depth-wise convolutions' padding carries position)."""
    return PyramidStage(OverlapPatchEmbed(in_channels, dim, patch_size=patch_size, stride=stride),
                        blocks, norm=nn.LayerNorm(dim, eps=BLOCK_NORM_EPS))


@MODELS.register_module()
class PVTv2(PyramidBackbone):
    """Pyramid Vision Transformer v2: the feature pyramid F1..F4, or the official classifier.

    Example::

        >>> import torch, pvt_mm
        >>> model = pvt_mm.PVTv2('b2', init_cfg=dict(
        ...     type='Pretrained', checkpoint='https://github.com/whai362/PVT/releases/'
        ...                                   'download/v2/pvt_v2_b2.pth'))
        >>> model.init_weights()  # strict: a file that does not fit raises CheckpointError
        >>> [tuple(f.shape) for f in model(torch.randn(1, 3, 800, 1333))]
        [(1, 64, 200, 334), (1, 128, 100, 167), (1, 320, 50, 84), (1, 512, 25, 42)]

    **Input and output sizes.** Any (B, 3, H, W) float input with H and W of at least
    :attr:`min_input_size`: 29 px for the arches with spatial reduction (stage 1's 8x
    reduction needs a grid of 8), any size for ``b2_li`` (its pooling takes any grid);
    smaller raises ``ValueError`` naming the bound. The overlapping patch embeddings pad, so
    F_i has ``ceil(H / 2^(i+1)) x ceil(W / 2^(i+1))`` cells (strides 4, 8, 16, 32) and
    :attr:`out_channels` channels (64, 128, 320, 512; b0: 32, 64, 160, 256).

    **Weights** (``init_cfg``, or :func:`pvt_mm.load_pretrained`), read from a path or an
    http(s) URL without running code in the file, in any of these layouts: the official
    files (``pvt_v2_b0.pth`` ... ``pvt_v2_b5.pth``, ``pvt_v2_b2_li.pth``, flat or wrapped);
    timm's ``pvt_v2_*`` (the hub's ``.in1k`` safetensors files); mmdet's
    ``PyramidVisionTransformerV2`` (its model-zoo RetinaNet files, under ``backbone.``); HF
    transformers' ``PvtV2Model`` / ``PvtV2Backbone`` / ``PvtV2ForImageClassification``;
    pvt_mm's own; whole detector, segmentor or classifier checkpoints (the ``backbone.``
    keys); ``.safetensors`` or ``.pth``. Every key and shape must fit, or nothing loads.

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
        super().__init__(
            resolve_arch_v2(arch), in_channels=in_channels, out_indices=out_indices,
            frozen_stages=frozen_stages, with_cp=with_cp, cpu_fast_paths=cpu_fast_paths,
            lean_backward=lean_backward, init_cfg=init_cfg, pretrained=pretrained,
            num_classes=num_classes,
            layers=dict(qkv_bias=qkv_bias, drop_rate=drop_rate, attn_drop_rate=attn_drop_rate,
                        drop_path_rate=drop_path_rate, fused_attn=fused_attn))

    def build_stages(self, *, qkv_bias: bool, drop_rate: float, attn_drop_rate: float,
                     drop_path_rate: float, fused_attn: bool) -> list[PyramidStage]:
        """The official four stages: a 7x7 stride-4 embedding, then 3x3 stride 2."""
        depths, linear = self.arch['depths'], self.arch['linear']
        dpr = torch.linspace(0, drop_path_rate, sum(depths), device='cpu').tolist()  # meta too
        stages, cin, cur, stride = [], self.in_channels, 0, 1
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
            stages.append(v2_stage(cin, dim, patch_size=7 if i == 0 else 3, stride=step,
                                   blocks=blocks))
            self.strides.append(stride)
            cin, cur = dim, cur + depths[i]
        return stages

    def random_init(self) -> None:
        """The official random init: truncated normal (std 0.02) for linear weights, zero
        biases, LayerNorm weight 1 and bias 0, convolutions normal with std sqrt(2 / fan_out)
        (fan_out divided by the groups)."""
        super().random_init()
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels // m.groups
                nn.init.normal_(m.weight, 0, math.sqrt(2.0 / fan_out))
                if m.bias is not None:
                    nn.init.zeros_(m.bias)


__all__ = ['PVTv2', 'v2_stage', 'Block', 'ConvFFN', 'LinearSRA', 'OverlapPatchEmbed']
