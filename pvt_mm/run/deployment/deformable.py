"""An exportable form of mmdet's deformable-attention detectors (Deformable DETR, DINO) for
``torch.export`` with a symbolic input size.

mmdet keeps the feature levels' sizes in a tensor (``spatial_shapes``, made by
``torch._shape_as_tensor`` in ``DeformableDETR.pre_transformer``) and reads them back as
numbers: ``linspace`` for the reference points and the two-stage proposals, ``split`` and
``reshape`` in mmcv's ``multi_scale_deformable_attn_pytorch``, and mmcv's assert that they add
up to the token count. Under a symbolic size each read is a data-dependent value that the
exporter cannot trace. While :func:`level_sizes_as_numbers` is active:

* ``pre_transformer`` hands the encoder and decoder the sizes as :class:`LevelSizes`, (h, w)
  pairs of the traced (symbolic) ints, which mmdet's reference-point and proposal code
  iterates exactly as it iterates the tensor;
* mmcv's ``MultiScaleDeformableAttention`` given :class:`LevelSizes` normalises the sampling
  offsets by those sizes and runs its own PyTorch path, ``multi_scale_deformable_attn_pytorch``
  (``grid_sample``: ONNX ``GridSample``), which is what it runs on a CPU anyway;
* the two-stage proposals (``gen_encoder_output_proposals``) are given an all-valid memory
  mask where mmdet passes none: its mask branch measures each level's valid size from the
  mask as (h, w) tensors, where the unmasked branch copies the numbers into a tensor
  (``new_tensor``), which torch.export fixes at the example's values; all-valid, both branches
  give the same numbers;
* ``torch.linspace`` with a symbolic number of steps, which torch.export fixes at the example's
  value, is written as ``start + arange(steps) * step`` (mmdet's grids are unit-spaced:
  ``linspace(0.5, H - 0.5, H)`` and ``linspace(0, H - 1, H)``, where both forms give the same
  numbers exactly).

The arithmetic is mmdet's and mmcv's, step for step; a ``spatial_shapes`` tensor (Mask2Former's
pixel decoder, or any call outside the context) goes to mmcv's forward unchanged.
"""
from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any
from unittest import mock

import torch
from torch import Tensor, nn


class LevelSizes(tuple):
    """The (h, w) of each feature level as ints (symbolic while tracing), where mmdet keeps a
    ``(num_levels, 2)`` tensor."""


def _deformable_attention(self: nn.Module, query: Tensor, value: Tensor | None,
                          identity: Tensor | None, query_pos: Tensor | None,
                          key_padding_mask: Tensor | None, reference_points: Tensor,
                          sizes: LevelSizes) -> Tensor:
    """mmcv's ``MultiScaleDeformableAttention.forward`` with the level sizes as numbers."""
    from mmcv.ops.multi_scale_deform_attn import multi_scale_deformable_attn_pytorch
    value = query if value is None else value
    identity = query if identity is None else identity
    if query_pos is not None:
        query = query + query_pos
    if not self.batch_first:
        query, value = query.permute(1, 0, 2), value.permute(1, 0, 2)
    bs, num_query, _ = query.shape
    num_value = value.shape[1]
    value = self.value_proj(value)
    if key_padding_mask is not None:
        value = value.masked_fill(key_padding_mask[..., None], 0.0)
    value = value.view(bs, num_value, self.num_heads, -1)
    offsets = self.sampling_offsets(query).view(
        bs, num_query, self.num_heads, self.num_levels, self.num_points, 2)
    weights = self.attention_weights(query).view(
        bs, num_query, self.num_heads, self.num_levels * self.num_points).softmax(-1)
    weights = weights.view(bs, num_query, self.num_heads, self.num_levels, self.num_points)
    if reference_points.shape[-1] == 2:  # offsets in pixels of each level: divided by (w, h)
        normalizer = torch.stack([torch.stack([torch.scalar_tensor(w), torch.scalar_tensor(h)])
                                  for h, w in sizes]).to(offsets)
        locations = reference_points[:, :, None, :, None, :] + \
            offsets / normalizer[None, None, None, :, None, :]
    elif reference_points.shape[-1] == 4:
        locations = reference_points[:, :, None, :, None, :2] + \
            offsets / self.num_points * reference_points[:, :, None, :, None, 2:] * 0.5
    else:
        raise ValueError(f'Last dim of reference_points must be 2 or 4, but get '
                         f'{reference_points.shape[-1]} instead.')
    output = self.output_proj(
        multi_scale_deformable_attn_pytorch(value, sizes, locations, weights))
    if not self.batch_first:
        output = output.permute(1, 0, 2)
    return self.dropout(output) + identity


@contextlib.contextmanager
def level_sizes_as_numbers() -> Iterator[None]:
    """While active, mmdet's Deformable DETR family carries its level sizes as
    :class:`LevelSizes` and mmcv's deformable attention takes them (module docstring). A no-op
    where mmdet is not imported."""
    if 'mmdet' not in sys.modules:
        yield
        return
    from mmcv.ops import MultiScaleDeformableAttention
    from mmdet.models.detectors import DeformableDETR
    original_pre, original_proposals, original_attn, linspace = (
        DeformableDETR.pre_transformer, DeformableDETR.gen_encoder_output_proposals,
        MultiScaleDeformableAttention.forward, torch.linspace)

    def symbolic_linspace(start: Any, end: Any, steps: Any, **kwargs: Any) -> Tensor:
        if not isinstance(steps, torch.SymInt):
            return linspace(start, end, steps, **kwargs)
        return start + torch.arange(steps, **kwargs) * ((end - start) / (steps - 1))

    def pre_transformer(self: nn.Module, mlvl_feats: tuple[Tensor, ...],
                        batch_data_samples: Any = None) -> tuple[dict, dict]:
        # mmdet's own, its size tensor built from the traced sizes (no data read), then the
        # sizes handed on as numbers.
        with mock.patch.object(torch, '_shape_as_tensor', lambda t: torch.stack(
                [torch.scalar_tensor(s, dtype=torch.long) for s in t.shape])):
            encoder, decoder = original_pre(self, mlvl_feats, batch_data_samples)
        sizes = LevelSizes((f.shape[-2], f.shape[-1]) for f in mlvl_feats)
        encoder['spatial_shapes'] = decoder['spatial_shapes'] = sizes
        return encoder, decoder

    def forward(self: nn.Module, query: Tensor, key: Tensor | None = None,
                value: Tensor | None = None, identity: Tensor | None = None,
                query_pos: Tensor | None = None, key_padding_mask: Tensor | None = None,
                reference_points: Tensor | None = None, spatial_shapes: Any = None,
                level_start_index: Tensor | None = None, **kwargs: Any) -> Tensor:
        if not isinstance(spatial_shapes, LevelSizes):
            return original_attn(self, query, key, value, identity, query_pos,
                                 key_padding_mask, reference_points, spatial_shapes,
                                 level_start_index, **kwargs)
        return _deformable_attention(self, query, value, identity, query_pos,
                                     key_padding_mask, reference_points, spatial_shapes)

    def gen_encoder_output_proposals(self: nn.Module, memory: Tensor, memory_mask: Tensor | None,
                                     spatial_shapes: Any) -> tuple[Tensor, Tensor]:
        if memory_mask is None:
            memory_mask = memory.new_zeros(memory.shape[:2], dtype=torch.bool)
        return original_proposals(self, memory, memory_mask, spatial_shapes)

    with contextlib.ExitStack() as patches:
        for owner, name, form in (
                (DeformableDETR, 'pre_transformer', pre_transformer),
                (DeformableDETR, 'gen_encoder_output_proposals', gen_encoder_output_proposals),
                (MultiScaleDeformableAttention, 'forward', forward),
                (torch, 'linspace', symbolic_linspace)):
            patches.enter_context(mock.patch.object(owner, name, form))
        yield


__all__ = ['LevelSizes', 'level_sizes_as_numbers']
