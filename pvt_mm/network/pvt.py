"""Pyramid Vision Transformer (PVT v1) backbone.

Wang et al., "Pyramid Vision Transformer: A Versatile Backbone for Dense Prediction
without Convolutions", ICCV 2021 (arXiv 2102.12122). The code follows the paper's
Section 3 top to bottom: patch embedding (3.2), spatial-reduction attention (3.3,
Eq. 1-4), the feed-forward layer and the encoder block, one pyramid stage, and the
four-stage backbone of Table 1 (the table itself is :mod:`pvt_mm.network.arch`).

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

Faster CPU execution of the same block is :mod:`pvt_mm.network.cpu_fast_paths`, switched
by ``PVT(cpu_fast_paths=...)``; weights come in through :mod:`pvt_mm.network.checkpoint`.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmengine.model.weight_init import initialize
from timm.layers import DropPath, Mlp, trunc_normal_
from torch import Tensor, nn
from torch.fx import Proxy
from torch.utils.checkpoint import checkpoint

from ..registry import MODELS
from . import cpu_fast_paths
from . import lean_backward as lean
from .arch import ARCH_KEYS, ARCH_SETTINGS, resolve_arch
from .checkpoint import (PRETRAINED_FROM_BASE, CheckpointError, init_cfg_entries,
                         load_pretrained, pretrained_init_cfg)

PATCH_NORM_EPS = 1e-5  # official: nn.LayerNorm default in PatchEmbed and in Attention.norm
BLOCK_NORM_EPS = 1e-6  # official: partial(nn.LayerNorm, eps=1e-6) for Block.norm1/norm2


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
        return self.norm(x.permute(0, 2, 3, 1).flatten(1, 2)), hw


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

    lean_backward = True  # the backbone's switch: one low-precision copy of x under autocast

    def __init__(self, dim: int, num_heads: int, *, sr_ratio: int = 1, qkv_bias: bool = True,
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

    def reduce(self, x: Tensor, hw: tuple[int, int]) -> Tensor:
        """SR(x) (Eq. 3): the tokens the keys and values come from, R^2 times fewer."""
        if self.sr_ratio == 1:
            return x
        # (B, N, C) seen as a channels-last (B, C, H, W) map: the conv reads it in place.
        B, _, C = x.shape
        x_ = x.view(B, hw[0], hw[1], C).permute(0, 3, 1, 2)
        return self.norm(self.sr(x_).permute(0, 2, 3, 1).flatten(1, 2))

    def qkv(self, x: Tensor, hw: tuple[int, int]) -> tuple[Tensor, Tensor, Tensor]:
        """Queries from every token, keys and values from the reduced map (Eq. 2-3), each
        (B, heads, tokens, head_dim)."""
        B, N, C = x.shape
        x_q, x_kv = lean.cast_once(x) if self.sr_ratio > 1 and self.lean_backward else (x, x)
        q = self.q(x_q).view(B, N, self.num_heads, self.head_dim).transpose(1, 2)
        kv = self.kv(self.reduce(x_kv, hw))
        k, v = kv.view(B, -1, 2, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        return q, k, v

    def attend(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        """softmax(q k^T / sqrt(d)) v per head (Eq. 4)."""
        drop = self.attn_drop if self.training else 0.0
        if self.fused:
            return F.scaled_dot_product_attention(q, k, v, dropout_p=drop)
        attn = (q * self.scale) @ k.transpose(-2, -1)
        return F.dropout(attn.softmax(dim=-1), p=drop) @ v

    def project(self, out: Tensor, shape: torch.Size) -> Tensor:
        """Concatenates the heads back to (B, N, C) tokens and applies W^O (Eq. 1)."""
        return self.proj_drop(self.proj(out.transpose(1, 2).reshape(shape)))

    def forward(self, x: Tensor, hw: tuple[int, int]) -> Tensor:
        return self.project(self.attend(*self.qkv(x, hw)), x.shape)


class Block(nn.Module):
    """Encoder layer: x + SRA(LN(x)), then x + MLP(LN(x)), each with stochastic depth."""

    lean_backward = True  # the backbone's switch (PVT.lean_backward) sets it

    def __init__(self, dim: int, num_heads: int, *, mlp_ratio: float, sr_ratio: int,
                 qkv_bias: bool = True, drop: float = 0.0, attn_drop: float = 0.0,
                 drop_path: float = 0.0, fused_attn: bool = True) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=BLOCK_NORM_EPS)
        self.attn = SpatialReductionAttention(dim, num_heads, sr_ratio=sr_ratio, qkv_bias=qkv_bias,
                                              attn_drop=attn_drop, proj_drop=drop, fused=fused_attn)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=BLOCK_NORM_EPS)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act_layer=nn.GELU, drop=drop)

    def forward(self, x: Tensor, hw: tuple[int, int]) -> Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x), hw))
        return x + self.drop_path(self.ffn(self.norm2(x)))

    def ffn(self, x: Tensor) -> Tensor:
        """The MLP, holding only the GELU input for backward with ``lean_backward``."""
        return lean.mlp(self.mlp, x) if self.lean_backward else self.mlp(x)


def init_linears_and_norms(module: nn.Module) -> None:
    """The official random init of every linear layer and LayerNorm in ``module``: truncated
    normal (std 0.02) weights and zero biases, LayerNorm weight 1 and bias 0."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def _run_block(block: Block, x: Tensor, hw: tuple[int, int]) -> Tensor:
    return block(x, hw)


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

    def __init__(self, in_channels: int, dim: int, *, patch_size: int, pos_grid: tuple[int, int],
                 blocks: list[Block], drop_rate: float = 0.0) -> None:
        super().__init__()
        self.pos_grid = pos_grid
        self.patch_embed = PatchEmbed(in_channels, dim, patch_size)
        self.pos_embed = nn.Parameter(torch.zeros(1, pos_grid[0] * pos_grid[1], dim))
        self.pos_drop = nn.Dropout(drop_rate)
        self.blocks = nn.ModuleList(blocks)
        self.with_cp = False
        self.cpu_fast_paths = True
        self._pos_cache: tuple[tuple[Any, ...], Tensor] | None = None

    def resized_pos_embed(self, hw: tuple[int, int]) -> Tensor:
        """The position embedding bilinearly resized to the grid ``hw``, as (1, h*w, C).

        Without autograd (inference) the result is cached per grid size, device and dtype
        and dropped as soon as the parameter changes (its version counter moves). While
        ``torch.compile`` or ``torch.export`` (hence ONNX export) traces, it always resizes,
        without cache or shortcut: ``hw`` is then symbolic, and the graph must resize to
        the sizes it meets at run time (at the learned size the resize is the identity).
        """
        pos = self.pos_embed
        tracing = torch.compiler.is_compiling()
        if not tracing and hw == self.pos_grid:
            return pos
        caching = not (torch.is_grad_enabled() and pos.requires_grad) and not tracing
        if caching:
            key = (hw, pos._version, pos.device, pos.dtype, pos.data_ptr())
            if self._pos_cache is not None and self._pos_cache[0] == key:
                return self._pos_cache[1]
        grid = pos.reshape(1, *self.pos_grid, -1).permute(0, 3, 1, 2)
        out = F.interpolate(grid, size=hw, mode='bilinear', align_corners=False)
        out = out.permute(0, 2, 3, 1).flatten(1, 2)
        if caching:
            self._pos_cache = (key, out)
        return out

    def uses_cpu_fast_paths(self, x: Tensor) -> bool:
        """The switch: the CPU paths run for CPU tensors in eager mode when enabled."""
        return self.cpu_fast_paths and x.device.type == 'cpu' and \
            not torch.compiler.is_compiling()

    def forward(self, x: Tensor, cls_token: Tensor | None = None) -> Tensor | tuple[Tensor, Tensor]:
        """Maps (B, C_in, H, W) to (B, C_i, floor(H/P_i), floor(W/P_i)).

        With ``cls_token`` (1, 1, C_i), its position embedding already added, the class token
        is put before the patch tokens and attends with them (the classifier's last stage);
        then the map and every token's output, (B, 1 + h*w, C_i) with the class token first,
        are returned.
        """
        B = x.shape[0]
        x, hw = self.patch_embed(x)
        x = x + self.resized_pos_embed(hw)
        if cls_token is not None:
            x = torch.cat([cls_token.expand(B, -1, -1), x], dim=1)
        x = self.pos_drop(x)
        run = cpu_fast_paths.block_forward if self.uses_cpu_fast_paths(x) else _run_block
        for block in self.blocks:
            if self.with_cp and self.training and x.requires_grad:
                x = checkpoint(run, block, x, hw, use_reentrant=False)
            else:
                x = run(block, x, hw)
        if cls_token is not None:
            return x[:, 1:].reshape(B, hw[0], hw[1], -1).permute(0, 3, 1, 2), x
        # A channels-last NCHW view, no copy: the next stage's patch embedding reads it as
        # is. reshape(B, C, h, w) of the transpose gives the same view except that, for
        # B = 1, the batch stride is not recognised as channels-last and the convolution
        # first copies the map to NCHW.
        return x.view(B, hw[0], hw[1], -1).permute(0, 3, 1, 2)


@MODELS.register_module()
class PVT(BaseModule):
    """Pyramid Vision Transformer (v1): the feature pyramid F1..F4, or the paper's classifier.

    With ``num_classes > 0`` it is the ImageNet classifier of the paper (Section 5.1): a
    class token (with its own position-embedding row) joins the last stage's tokens, and a
    final LayerNorm and a linear head turn its output into logits, returned as ``(logits,)``
    (mmpretrain's ``ClsHead`` reads them). Official classification checkpoints load whole.

    Args:
        arch: ``'tiny'``, ``'small'``, ``'medium'``, ``'large'`` (paper Table 1), or a dict
            with keys :data:`pvt_mm.network.arch.ARCH_KEYS`, one value per stage.
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
        cpu_fast_paths: run the blocks of CPU inputs through
            :mod:`pvt_mm.network.cpu_fast_paths` (same results, less time and memory);
            ``False`` keeps the plain blocks everywhere.
        lean_backward: on every device, the feed-forward networks hold only what cannot be
            recomputed cheaply for backward, and under autocast SRA's input is cast once
            for its two products (:mod:`pvt_mm.network.lean_backward`; bit-equal
            gradients); ``False`` gives autograd's own chain, e.g. for double backward.
        init_cfg: ``dict(type='Pretrained', checkpoint=PATH_OR_URL)`` (alone or in a list)
            loads weights in :meth:`init_weights` (official PVT, mmdet PVT, pvt_mm, or
            whole detector / segmentor checkpoints), strictly: any mismatch raises.
            Other entries are mmengine weight initializers applied after the official
            random init. Anything that cannot be honoured raises.
        pretrained: deprecated spelling of ``init_cfg=dict(type='Pretrained', checkpoint=...)``
            that mmseg's ``EncoderDecoder`` and older configs pass; a path or URL.
        num_classes: 0 (default) for the backbone; N > 0 for the classifier with N classes.
            A checkpoint whose head has another class count loads all but the head (one log
            line says so): fine-tuning on one's own classes.
    """

    family = 'PVT'  # the network family, as checkpoint messages and layouts name it

    def __init__(self,
                 arch: str | dict[str, Sequence[int]] = 'small',
                 *,
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
                 cpu_fast_paths: bool = True,
                 lean_backward: bool = True,
                 init_cfg: dict | list[dict] | None = None,
                 pretrained: str | None = None,
                 num_classes: int = 0) -> None:
        self._set_up(resolve_arch(arch), in_channels=in_channels, out_indices=out_indices,
                     frozen_stages=frozen_stages, init_cfg=init_cfg, pretrained=pretrained,
                     num_classes=num_classes)
        self.with_cls_token = num_classes > 0  # the classifier's path (its head may change)
        num_stages = self.num_stages
        if num_classes and self.arch['sr_ratios'][-1] != 1:
            raise ValueError('the class token joins the last stage, whose attention must see '
                             f'every token: its sr_ratio must be 1, got {self.arch["sr_ratios"][-1]}.')
        pretrain = (pretrain_img_size, pretrain_img_size) if isinstance(
            pretrain_img_size, int) else tuple(pretrain_img_size)
        depths = self.arch['depths']
        dpr = torch.linspace(0, drop_path_rate, sum(depths), device='cpu').tolist()  # meta too
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
            blocks = [Block(dim, self.arch['num_heads'][i], mlp_ratio=self.arch['mlp_ratios'][i],
                            sr_ratio=sr, qkv_bias=qkv_bias, drop=drop_rate,
                            attn_drop=attn_drop_rate, drop_path=dpr[cur + j],
                            fused_attn=fused_attn)
                      for j in range(depths[i])]
            stages.append(PVTStage(cin, dim, patch_size=p, pos_grid=grid, blocks=blocks,
                                   drop_rate=drop_rate))
            self.strides.append(stride)
            cin, cur = dim, cur + depths[i]
        self.stages = nn.ModuleList(stages)
        if self.with_cls_token:
            dim = self.arch['embed_dims'][-1]
            self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
            self.cls_pos_embed = nn.Parameter(torch.zeros(1, 1, dim))  # its row of pos_embed4
            self.norm = nn.LayerNorm(dim, eps=BLOCK_NORM_EPS)
            self.head = nn.Linear(dim, num_classes)
        self._finish(with_cp=with_cp, cpu_fast_paths=cpu_fast_paths, lean_backward=lean_backward)

    def _set_up(self, arch: dict, *, in_channels: int, out_indices: Any, frozen_stages: int,
                init_cfg: Any, pretrained: Any, num_classes: int) -> None:
        """What every pvt_mm backbone checks and keeps before it builds its stages."""
        if pretrained is not None:
            init_cfg = pretrained_init_cfg(pretrained, init_cfg)
        init_cfg_entries(init_cfg)  # a config that cannot be honoured fails when built
        BaseModule.__init__(self, init_cfg=init_cfg)
        self._pretrained_arg = pretrained
        self.arch = arch
        num_stages = len(self.arch['depths'])
        self.num_stages = num_stages
        if not isinstance(in_channels, int) or in_channels <= 0:
            raise ValueError(f'in_channels must be a positive int, got {in_channels!r}.')
        self.in_channels = in_channels
        name = type(self).__name__
        if not isinstance(num_classes, int) or num_classes < 0:
            raise ValueError(f'num_classes must be an int >= 0 (0 = backbone), got {num_classes!r}.')
        self.num_classes = num_classes
        if num_classes and out_indices is not None:
            raise ValueError(f'{name}(num_classes={num_classes}) is a classifier returning '
                             f'logits; out_indices={out_indices} selects pyramid maps, which '
                             'only the backbone (num_classes=0) returns.')
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

    def _finish(self, *, with_cp: bool, cpu_fast_paths: bool, lean_backward: bool) -> None:
        """What every pvt_mm backbone sets once its stages are built."""
        self.with_cp = with_cp
        self.cpu_fast_paths = cpu_fast_paths
        self.lean_backward = lean_backward
        self.feature_info = [
            dict(num_chs=self.arch['embed_dims'][i], reduction=self.strides[i],
                 module=f'stages.{i}') for i in self.out_indices
        ]
        self._freeze_stages()

    @property
    def is_classifier(self) -> bool:
        """Whether the model holds a classifier (and its checkpoint keys)."""
        return self.with_cls_token

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
    def cpu_fast_paths(self) -> bool:
        return self._cpu_fast_paths

    @cpu_fast_paths.setter
    def cpu_fast_paths(self, value: bool) -> None:
        self._cpu_fast_paths = bool(value)
        for stage in getattr(self, 'stages', []):
            stage.cpu_fast_paths = self._cpu_fast_paths

    @property
    def lean_backward(self) -> bool:
        return self._lean_backward

    @lean_backward.setter
    def lean_backward(self, value: bool) -> None:
        self._lean_backward = bool(value)
        for stage in getattr(self, 'stages', []):
            for block in stage.blocks:
                block.lean_backward = block.attn.lean_backward = self._lean_backward

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
        if self.frozen_stages == 0 and hasattr(self.stages[0], 'pos_embed'):
            self.stages[0].pos_embed.requires_grad = False

    def train(self, mode: bool = True) -> 'PVT':
        super().train(mode)
        self._freeze_stages()
        return self

    def init_weights(self) -> None:
        """Initialises as ``init_cfg`` says: a ``Pretrained`` entry loads its checkpoint
        strictly; otherwise the official random init (:meth:`random_init`), then any
        mmengine initializers listed."""
        entries = init_cfg_entries(self.init_cfg)
        pretrained = [c for c in entries if c['type'] == 'Pretrained']
        if pretrained:
            cfg = pretrained[0]
            try:
                load_pretrained(self, cfg['checkpoint'], prefix=cfg.get('prefix'),
                                map_location=cfg.get('map_location', 'cpu'))
            except CheckpointError as e:
                if self._pretrained_arg is None:
                    raise
                raise CheckpointError(f'{e}\n  {self.family} got it as pretrained='
                                      f'{self._pretrained_arg!r}. '
                                      f'{PRETRAINED_FROM_BASE}') from None
        else:
            self.random_init()
            if entries:
                initialize(self, entries)
        self._is_init = True

    def random_init(self) -> None:
        """The official random init: truncated normal (std 0.02) for linear weights and
        position embeddings, zero biases, LayerNorm weight 1 and bias 0."""
        init_linears_and_norms(self)
        for stage in self.stages:
            trunc_normal_(stage.pos_embed, std=0.02)
        if self.with_cls_token:
            trunc_normal_(self.cls_token, std=0.02)
            trunc_normal_(self.cls_pos_embed, std=0.02)

    def check_input(self, x: Any) -> None:
        """Raises a clear error for an input the backbone cannot take. Symbolic inputs
        (``torch.fx`` tracing) pass unchecked: their values exist only at run time.

        Raises:
            TypeError: not a floating-point tensor.
            ValueError: not 4-D, wrong channel count, smaller than :attr:`min_input_size`
                on a side, or holding NaN or infinite values. The finiteness check reads
                the input once (a device sync on GPU); it is skipped while
                ``torch.compile`` traces, where data-dependent branches break the graph.
        """
        if isinstance(x, Proxy):
            return
        if not isinstance(x, Tensor):
            raise TypeError(f'{self.family} expects a torch.Tensor of shape (B, {self.in_channels}, H, W), '
                            f'got {type(x).__name__}.')
        if x.ndim != 4:
            raise ValueError(f'{self.family} expects a 4-D input (B, {self.in_channels}, H, W), got a '
                             f'{x.ndim}-D tensor of shape {tuple(x.shape)}.')
        if not x.is_floating_point():
            raise TypeError(f'{self.family} expects a floating-point input, got {x.dtype}; convert it '
                            '(and normalize it) first, e.g. x.float().')
        if x.shape[1] != self.in_channels:
            raise ValueError(f'{self.family} was built for {self.in_channels} input channels, got '
                             f'{x.shape[1]} (input shape {tuple(x.shape)}).')
        h, w = x.shape[2], x.shape[3]
        if min(h, w) < self.min_input_size:
            raise ValueError(f'Input of {h}x{w} is too small for '
                             f'{self.family}: both sides must be at least '
                             f'{self.min_input_size} pixels (every stage\'s spatial reduction '
                             'needs a grid of at least its ratio).')
        if not torch.compiler.is_compiling() and not bool(torch.isfinite(x).all()):
            nan, inf = x.isnan(), x.isinf()
            first = tuple((nan | inf).nonzero()[0].tolist())
            raise ValueError(f'{self.family} expects finite input values, got {int(nan.sum())} NaN and '
                             f'{int(inf.sum())} infinite values in the input of shape '
                             f'{tuple(x.shape)} (the first at index {first}); check the image '
                             'loading and normalization.')

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        """Returns the maps of ``out_indices`` as contiguous NCHW tensors, F_i at stride
        2^(i+1).

        Stages pass each other channels-last views; the maps handed out are contiguous
        NCHW, the layout mmdet's and mmseg's necks expect: fed channels-last, a neck and
        head run their convolutions channels-last, slower on the CPU, and mmcv's CPU
        RoIAlign misreads such maps.
        """
        self.check_input(x)
        if self.is_classifier:
            return (self.forward_head(self.forward_features(x)),)
        feats = {}
        for i, stage in enumerate(self.stages[:max(self.out_indices) + 1]):
            x = stage(x)
            if i in self.out_indices:
                feats[i] = x.contiguous()
        return tuple(feats[i] for i in self.out_indices)

    def forward_features(self, x: Tensor) -> Tensor:
        """The classifier's features: the last stage's tokens after the final norm,
        (B, 1 + h*w, C_4), the class token first; :meth:`forward_head` pools them."""
        if not self.with_cls_token:
            raise RuntimeError('forward_features is the classifier path: build PVT(num_classes=N).')
        for stage in self.stages[:-1]:
            x = stage(x)
        _, tokens = self.stages[-1](x, cls_token=self.cls_token + self.cls_pos_embed)
        return self.norm(tokens)

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        """The class token's features (``pre_logits``), or the logits (B, num_classes)."""
        x = x[:, 0]
        return x if pre_logits else self.head(x)


__all__ = ['PVT', 'PVTStage', 'Block', 'SpatialReductionAttention', 'PatchEmbed', 'Mlp',
           'DropPath', 'ARCH_SETTINGS', 'ARCH_KEYS', 'resolve_arch']
