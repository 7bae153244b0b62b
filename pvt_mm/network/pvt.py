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

What every family shares (the stage loop, ``out_indices``, freezing, weights, input checks)
is :mod:`pvt_mm.network.pyramid`; how the blocks run (the plain modules here, or the speed
paths beside them) is chosen in :mod:`pvt_mm.network.dispatch`; weights come in through
:mod:`pvt_mm.network.weights`.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from timm.layers import DropPath, Mlp, trunc_normal_
from torch import Tensor, nn

from ..registry import MODELS
from .arch import ARCH_KEYS, ARCH_SETTINGS, resolve_arch
from .inference_cache import InferenceCache
from .pyramid import PyramidBackbone, PyramidStage

PATCH_NORM_EPS = 1e-5  # official: nn.LayerNorm default in PatchEmbed and in Attention.norm
BLOCK_NORM_EPS = 1e-6  # official: partial(nn.LayerNorm, eps=1e-6) for Block.norm1/norm2


class PatchEmbed(nn.Module):
    """Patch embedding: Conv2d + LayerNorm. PVT v1's patches do not overlap (kernel = stride =
    patch size, no padding); PVTv2's :class:`~pvt_mm.network.pvt_v2.OverlapPatchEmbed` passes
    a smaller stride and padding."""

    def __init__(self, in_channels: int, embed_dim: int, patch_size: int, *,
                 stride: int | None = None, padding: int = 0) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_channels, embed_dim, kernel_size=patch_size,
                              stride=stride or patch_size, padding=padding)
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

    def qkv(self, x: Tensor, hw: tuple[int, int],
            source: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """Queries from every token, keys and values from the reduced map (Eq. 2-3), each
        (B, heads, tokens, head_dim). ``source`` is the same tokens as ``x`` in another
        tensor (a cast copy, :func:`pvt_mm.network.lean_backward.qkv`); default ``x``."""
        B, N, C = x.shape
        q = self.q(x).view(B, N, self.num_heads, self.head_dim).transpose(1, 2)
        kv = self.kv(self.reduce(x if source is None else source, hw))
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
        return x + self.drop_path(self.mlp(self.norm2(x)))


def resize_pos_embed(pos: Tensor, grid: tuple[int, int], hw: tuple[int, int]) -> Tensor:
    """A (1, h*w, C) position embedding learned on ``grid``, bilinearly resized to ``hw``
    (``align_corners=False``, as the official code resizes it)."""
    out = F.interpolate(pos.reshape(1, *grid, -1).permute(0, 3, 1, 2), size=hw,
                        mode='bilinear', align_corners=False)
    return out.permute(0, 2, 3, 1).flatten(1, 2)


class PVTStage(PyramidStage):
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
        super().__init__(PatchEmbed(in_channels, dim, patch_size), blocks)
        self.pos_grid = pos_grid
        self.pos_embed = nn.Parameter(torch.zeros(1, pos_grid[0] * pos_grid[1], dim))
        self.pos_drop = nn.Dropout(drop_rate)
        self._pos_cache = InferenceCache()

    def resized_pos_embed(self, hw: tuple[int, int]) -> Tensor:
        """The position embedding resized to the grid ``hw``, as (1, h*w, C).

        While ``torch.compile`` or ``torch.export`` (hence ONNX export) traces, it always
        resizes: ``hw`` is then symbolic, and the graph must resize to the sizes it meets at
        run time (at the learned size the resize is the identity). Without autograd the
        result is kept per grid size (:class:`~pvt_mm.network.inference_cache.InferenceCache`).
        """
        pos = self.pos_embed
        if not torch.compiler.is_compiling() and hw == self.pos_grid:
            return pos
        return self._pos_cache.get(pos, hw, lambda: resize_pos_embed(pos, self.pos_grid, hw))

    def embed(self, x: Tensor, cls_token: Tensor | None = None) -> tuple[Tensor, tuple[int, int]]:
        """Patch tokens plus the position embedding; with ``cls_token`` (1, 1, C_i), its
        position embedding already added, the class token goes first (the classifier's last
        stage)."""
        tokens, hw = self.patch_embed(x)
        tokens = tokens + self.resized_pos_embed(hw)
        if cls_token is not None:
            tokens = torch.cat([cls_token.expand(x.shape[0], -1, -1), tokens], dim=1)
        return self.pos_drop(tokens), hw


@MODELS.register_module()
class PVT(PyramidBackbone):
    """Pyramid Vision Transformer (v1): the feature pyramid F1..F4, or the paper's classifier.

    Example::

        >>> import torch, pvt_mm
        >>> model = pvt_mm.PVT('small', init_cfg=dict(
        ...     type='Pretrained', checkpoint='https://github.com/whai362/PVT/releases/'
        ...                                   'download/v2/pvt_small.pth'))
        >>> model.init_weights()  # strict: a file that does not fit raises CheckpointError
        >>> [tuple(f.shape) for f in model(torch.randn(1, 3, 800, 1333))]
        [(1, 64, 200, 333), (1, 128, 100, 166), (1, 320, 50, 83), (1, 512, 25, 41)]

    **Input and output sizes.** Any (B, 3, H, W) float input with H and W of at least
    :attr:`min_input_size` (32 px for the paper's arches: stage 1's 4x4 patches and its
    8x spatial reduction need an 8x8 grid; smaller raises ``ValueError`` naming the bound).
    F_i has ``floor(H / 2^(i+1)) x floor(W / 2^(i+1))`` cells (strides 4, 8, 16, 32) and
    :attr:`out_channels` channels (64, 128, 320, 512); the position embeddings are resized to
    the grid.

    **Weights** (``init_cfg`` below, or :func:`pvt_mm.load_pretrained`), read from a path or
    an http(s) URL without running code in the file, in any of these layouts: the official
    files (``pvt_tiny.pth`` ... ``pvt_large.pth``, flat or wrapped); mmdet's
    ``PyramidVisionTransformer`` (its model-zoo detectors, under ``backbone.``); HF
    transformers' ``PvtModel`` / ``PvtForImageClassification`` (``model.safetensors``);
    pvt_mm's own; whole detector, segmentor or classifier checkpoints (the ``backbone.``
    keys); ``.safetensors`` or ``.pth``. Every key and shape must fit, or nothing loads.

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

    family = 'PVT'  # its entry in pvt_mm.network.families.FAMILIES

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
        super().__init__(
            resolve_arch(arch), in_channels=in_channels, out_indices=out_indices,
            frozen_stages=frozen_stages, with_cp=with_cp, cpu_fast_paths=cpu_fast_paths,
            lean_backward=lean_backward, init_cfg=init_cfg, pretrained=pretrained,
            num_classes=num_classes,
            layers=dict(pretrain_img_size=pretrain_img_size, qkv_bias=qkv_bias,
                        drop_rate=drop_rate, attn_drop_rate=attn_drop_rate,
                        drop_path_rate=drop_path_rate, fused_attn=fused_attn))

    def build_stages(self, *, pretrain_img_size: int | tuple[int, int], qkv_bias: bool,
                     drop_rate: float, attn_drop_rate: float, drop_path_rate: float,
                     fused_attn: bool) -> list[PVTStage]:
        """Table 1's four stages: patch sizes 4, 2, 2, 2 without overlap, position
        embeddings learned on the pretraining grid."""
        if self.num_classes and self.arch['sr_ratios'][-1] != 1:
            raise ValueError('the class token joins the last stage, whose attention must see '
                             f'every token: its sr_ratio must be 1, got {self.arch["sr_ratios"][-1]}.')
        self.with_cls_token = False  # build_head adds the class token to a classifier
        pretrain = (pretrain_img_size, pretrain_img_size) if isinstance(
            pretrain_img_size, int) else tuple(pretrain_img_size)
        depths = self.arch['depths']
        dpr = torch.linspace(0, drop_path_rate, sum(depths), device='cpu').tolist()  # meta too
        stages, stride, cin, grid, cur = [], 1, self.in_channels, pretrain, 0
        for i in range(self.num_stages):
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
        return stages

    def build_head(self, num_classes: int) -> None:
        """The paper's classifier: a class token (with its own position-embedding row) in
        the last stage, a final LayerNorm, a linear head."""
        dim = self.arch['embed_dims'][-1]
        self.with_cls_token = True  # the classifier's path (timm's pruning turns it off)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.cls_pos_embed = nn.Parameter(torch.zeros(1, 1, dim))  # its row of pos_embed4
        self.norm = nn.LayerNorm(dim, eps=BLOCK_NORM_EPS)
        self.head = nn.Linear(dim, num_classes)

    @property
    def is_classifier(self) -> bool:
        return self.with_cls_token

    def random_init(self) -> None:
        """The official random init: truncated normal (std 0.02) for linear weights and
        position embeddings, zero biases, LayerNorm weight 1 and bias 0."""
        super().random_init()
        for stage in self.stages:
            trunc_normal_(stage.pos_embed, std=0.02)
        if self.with_cls_token:
            trunc_normal_(self.cls_token, std=0.02)
            trunc_normal_(self.cls_pos_embed, std=0.02)

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
