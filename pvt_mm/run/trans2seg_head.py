"""Trans2Seg's transformer decode head, as the PVT paper pairs it with PVT (Section 5.4, Table 7).

Xie et al., "Segmenting Transparent Objects in the Wild with Transformer" (arXiv 2101.08461).
No PVT + Trans2Seg code was released; this head is written from that paper and its design:

1. Encoder over the last backbone map F4: a linear embedding to the head width, a class
   token, a learnable position embedding at a reference grid (bilinearly resized to the real
   grid, as PVT resizes its own), pre-norm blocks of multi-head self-attention (q/k/v without
   bias) and a GELU MLP, a final LayerNorm; the class token is dropped afterwards.
2. Decoder: one learnable query per class, re-added at every layer, crossing the encoded
   tokens. Each layer's query-key logits are per class and head "attention maps" over the grid.
3. Mask head, per class: the encoded map concatenated with that class's attention maps (one
   channel per head), two depthwise-separable convs, upsampled to F1 (stride 4) and added to
   a 1x1 conv of F1, one more separable conv and a 1x1 conv to one logit. mmseg resizes the
   stride-4 logits to the label / input size.

Where this differs from the original code, and why:

- The original refines the attention maps with an MLP over the *spatial* axis (length h*w,
  with a LayerNorm of that length), which fixes the token count: its model asserts one input
  size. Here that refinement runs at the reference grid ``token_grid``: the maps are resized
  to it, refined, and resized back (the identity resize at the training crop, where the
  original is reproduced). Every part of the head therefore takes any grid of at least 1x1,
  so whole-image inference at any test size works.
- The original builds parameters that never reach the output, so never get a gradient (and
  DDP rejects parameters without one): the refinement of every decoder layer but the last
  (only the last layer's maps are read) and the last layer's query and token updates. Here
  they are not built: 2.1 M fewer parameters with the "small" head at a 16x16 grid
  (3 x 0.39 M of spatial MLPs, 0.92 M of the last layer), the same function.
- The original's decoder branches read ``x = x + drop_path(x)`` (doubling the branch output,
  no skip from the layer's input); here they are ordinary pre-norm residual branches.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule, DepthwiseSeparableConvModule
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from timm.layers import DropPath, Mlp, trunc_normal_
from torch import Tensor, nn

from ..network.pyramid import init_linears_and_norms
from ..registry import MODELS


def _resize_grid(x: Tensor, hw: tuple[int, int]) -> Tensor:
    """Bilinear resize of (N, C, h, w) maps to ``hw``; the identity when the size already fits."""
    if tuple(x.shape[-2:]) == tuple(hw):
        return x
    return F.interpolate(x, size=hw, mode='bilinear', align_corners=False)


class EncoderLayer(nn.Module):
    """Pre-norm transformer block: multi-head self-attention and a GELU MLP."""

    def __init__(self, dim: int, num_heads: int, *, mlp_ratio: float, drop_path: float) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f'Trans2SegHead: embed_dim={dim} is not divisible by '
                             f'num_heads={num_heads}')
        self.num_heads = num_heads
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(self.norm1(x)).reshape(b, n, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
        attn = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, c)
        x = x + self.drop_path(self.proj(attn))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class DecoderLayer(nn.Module):
    """Class queries crossing the encoded tokens; returns the queries, the tokens and the logits.

    The logits ``q k^T / sqrt(d)`` (B, heads, classes, tokens) are what the mask head reads
    as per class attention maps; the softmax of them weighs the values for the queries. The
    last layer (``last=True``) only makes the logits: its query and token updates would reach
    nothing, so they are not built.
    """

    def __init__(self, dim: int, num_heads: int, *, mlp_ratio: float, drop_path: float,
                 last: bool = False) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.last = last
        self.norm_query = nn.LayerNorm(dim)
        self.norm_tokens = nn.LayerNorm(dim)
        self.q = nn.Linear(dim, dim, bias=False)
        self.kv = nn.Linear(dim, dim if last else 2 * dim, bias=False)
        if last:
            return
        self.proj = nn.Linear(dim, dim)
        self.norm_query_mlp = nn.LayerNorm(dim)
        self.query_mlp = Mlp(dim, int(dim * mlp_ratio))
        self.norm_token_mlp = nn.LayerNorm(dim)
        self.token_mlp = Mlp(dim, int(dim * mlp_ratio))
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, query: Tensor, tokens: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        b, n, c = tokens.shape
        k_cls = query.shape[1]
        q = self.q(self.norm_query(query)).reshape(b, k_cls, self.num_heads, -1).transpose(1, 2)
        kv = self.kv(self.norm_tokens(tokens)).reshape(b, n, -1, self.num_heads, c // self.num_heads)
        k = kv[:, :, 0].transpose(1, 2)
        logits = (q @ k.transpose(-2, -1)) * self.scale  # (B, heads, classes, N)
        if self.last:
            return query, tokens, logits
        v = kv[:, :, 1].transpose(1, 2)
        out = (logits.softmax(dim=-1) @ v).transpose(1, 2).reshape(b, k_cls, c)
        query = query + self.drop_path(self.proj(out))
        query = query + self.drop_path(self.query_mlp(self.norm_query_mlp(query)))
        tokens = tokens + self.drop_path(self.token_mlp(self.norm_token_mlp(tokens)))
        return query, tokens, logits


class AttentionMapRefiner(nn.Module):
    """Residual MLP over the spatial axis of each attention map, run at a fixed reference grid.

    Maps of any grid are bilinearly resized to ``grid``, refined by LayerNorm + MLP over the
    ``grid`` positions (hidden 3x, as in Trans2Seg), and the refinement is resized back.
    """

    def __init__(self, grid: tuple[int, int]) -> None:
        super().__init__()
        self.grid = tuple(grid)
        n = self.grid[0] * self.grid[1]
        self.norm = nn.LayerNorm(n)
        self.mlp = Mlp(n, 3 * n)

    def forward(self, maps: Tensor) -> Tensor:
        """(N, h, w) maps -> refined (N, h, w)."""
        hw = tuple(maps.shape[-2:])
        x = _resize_grid(maps[:, None], self.grid).flatten(1)
        x = self.mlp(self.norm(x)).reshape(-1, 1, *self.grid)
        return maps + _resize_grid(x, hw)[:, 0]


@MODELS.register_module()
class Trans2SegHead(BaseDecodeHead):
    """Trans2Seg decode head for mmseg: transformer encoder-decoder over F4, per-class masks at F1.

    Reads two backbone maps, chosen by ``in_index`` (default F1 and F4 of PVT:
    ``in_channels=[64, 512], in_index=[0, 3]`` for PVT-Small). The defaults are Trans2Seg's
    published "small" head: width 256, depth 4, 8 heads, MLP ratio 3, mask width
    (``channels``) 64.

    Args:
        embed_dim: width of the transformer encoder and decoder.
        depth: encoder layers; the decoder has as many.
        num_heads: attention heads (also the attention-map channels per class).
        mlp_ratio: MLP hidden width / ``embed_dim``.
        token_grid: (h, w) reference grid of the F4 tokens: the position embedding is learned
            at it and the attention-map refinement runs at it. (16, 16) is F4 of a 512x512 crop.
        drop_path_rate: stochastic depth, rising linearly over the layers.
        **kwargs: :class:`BaseDecodeHead`'s arguments (``in_channels``, ``channels`` = mask
            width, ``num_classes``, ``norm_cfg``, ``loss_decode``, ``align_corners``...).
    """

    def __init__(self, *, embed_dim: int = 256, depth: int = 4, num_heads: int = 8,
                 mlp_ratio: float = 3.0, token_grid: Sequence[int] = (16, 16),
                 drop_path_rate: float = 0.0, **kwargs) -> None:
        kwargs.setdefault('in_index', [0, 3])
        kwargs.setdefault('input_transform', 'multiple_select')
        kwargs.setdefault('channels', 64)
        kwargs.setdefault('dropout_ratio', 0.0)
        kwargs.setdefault('init_cfg', None)
        super().__init__(**kwargs)
        if self.input_transform != 'multiple_select' or len(self.in_channels) != 2:
            raise ValueError('Trans2SegHead reads two maps, the stride-4 one and the last one: '
                             "give in_channels=[C1, C4], in_index=[i1, i4] and "
                             f"input_transform='multiple_select' (got in_channels="
                             f'{self.in_channels}, input_transform={self.input_transform!r})')
        if self.out_channels != self.num_classes:
            raise ValueError('Trans2SegHead predicts one mask per class: out_channels must equal '
                             f'num_classes (got {self.out_channels} and {self.num_classes})')
        if len(token_grid) != 2 or min(token_grid) < 1:
            raise ValueError(f'Trans2SegHead: token_grid must be (h, w) >= 1, got {token_grid}')
        # One logit per class comes out of the mask head: BaseDecodeHead's 1x1 classifier
        # (channels -> classes) has no role here.
        del self.conv_seg
        c1_channels, c4_channels = self.in_channels
        self.token_grid = tuple(int(s) for s in token_grid)
        self.embed_dim = embed_dim
        self.num_heads = num_heads

        self.embed = nn.Linear(c4_channels, embed_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(
            torch.zeros(1, 1 + self.token_grid[0] * self.token_grid[1], embed_dim))
        rates = torch.linspace(0, drop_path_rate, depth, device='cpu').tolist()  # meta too
        self.encoder = nn.ModuleList(
            EncoderLayer(embed_dim, num_heads, mlp_ratio=mlp_ratio, drop_path=r) for r in rates)
        self.encoder_norm = nn.LayerNorm(embed_dim)
        self.class_embed = nn.Parameter(torch.zeros(1, self.num_classes, embed_dim))
        self.decoder = nn.ModuleList(
            DecoderLayer(embed_dim, num_heads, mlp_ratio=mlp_ratio, drop_path=r,
                         last=i == depth - 1) for i, r in enumerate(rates))
        self.refine = AttentionMapRefiner(self.token_grid)

        conv = dict(norm_cfg=self.norm_cfg, act_cfg=self.act_cfg)
        self.mask_convs = nn.Sequential(
            DepthwiseSeparableConvModule(embed_dim + num_heads, self.channels, 3, padding=1,
                                         **conv),
            DepthwiseSeparableConvModule(self.channels, self.channels, 3, padding=1, **conv))
        self.skip = ConvModule(c1_channels, self.channels, 1, **conv)
        self.fuse = DepthwiseSeparableConvModule(self.channels, self.channels, 3, padding=1,
                                                 **conv)
        self.mask_logit = nn.Conv2d(self.channels, 1, 1)
        self._init_transformer()

    def _init_transformer(self) -> None:
        """Trans2Seg's initialisation of the transformer (truncated normal, std 0.02).

        Done at construction, like the convolutions' own; ``init_cfg`` (e.g. a Pretrained
        head) is applied over it by ``init_weights``.
        """
        for p in (self.pos_embed, self.cls_token, self.class_embed):
            trunc_normal_(p, std=0.02)
        init_linears_and_norms(self)

    def resized_pos_embed(self, hw: tuple[int, int]) -> Tensor:
        """The class-token row and the grid rows resized to ``hw``, as (1, 1 + h*w, D)."""
        cls_row, grid = self.pos_embed[:, :1], self.pos_embed[:, 1:]
        grid = grid.reshape(1, *self.token_grid, -1).permute(0, 3, 1, 2)
        grid = _resize_grid(grid, hw).flatten(2).transpose(1, 2)
        return torch.cat([cls_row, grid], dim=1)

    def encode(self, c4: Tensor) -> Tensor:
        """(B, C4, h, w) -> encoded tokens (B, h*w, D)."""
        b, _, h, w = c4.shape
        x = self.embed(c4.flatten(2).transpose(1, 2))
        x = torch.cat([self.cls_token.expand(b, -1, -1), x], dim=1) + self.resized_pos_embed((h, w))
        for layer in self.encoder:
            x = layer(x)
        return self.encoder_norm(x)[:, 1:]

    def attention_maps(self, tokens: Tensor, hw: tuple[int, int]) -> Tensor:
        """Decoder over the encoded tokens -> the last layer's refined maps (B, K, heads, h, w)."""
        b = tokens.shape[0]
        # A copy, not an expanded view: a view of a parameter made under no_grad trips the
        # module hooks of torch's FLOP counter (tools/analysis/get_flops.py).
        queries = self.class_embed.repeat(b, 1, 1)
        query = queries
        for i, layer in enumerate(self.decoder):
            if i:
                query = query + queries
            query, tokens, logits = layer(query, tokens)
        maps = logits.transpose(1, 2).reshape(-1, *hw)  # (B*K*heads, h, w)
        return self.refine(maps).reshape(b, self.num_classes, self.num_heads, *hw)

    def forward(self, inputs: Sequence[Tensor]) -> Tensor:
        """Backbone maps -> per-class logits (B, num_classes, H1, W1) at F1's stride."""
        c1, c4 = self._transform_inputs(inputs)
        b, _, h, w = c4.shape
        k = self.num_classes
        tokens = self.encode(c4)
        maps = self.attention_maps(tokens, (h, w))
        feat = tokens.transpose(1, 2).reshape(b, 1, self.embed_dim, h, w).expand(-1, k, -1, -1, -1)
        x = torch.cat([feat, maps], dim=2).flatten(0, 1)  # (B*K, D + heads, h, w)
        x = self.mask_convs(x)
        x = F.interpolate(x, size=c1.shape[-2:], mode='bilinear', align_corners=self.align_corners)
        x = (x.unflatten(0, (b, k)) + self.skip(c1)[:, None]).flatten(0, 1)
        x = self.mask_logit(self.fuse(x))
        return x.reshape(b, k, *c1.shape[-2:])
