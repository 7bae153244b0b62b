"""Whole-model checkpoints: a detector, segmentor or classifier with a PVT backbone, as
mmengine, mmdet 2 / mmcv 1 or mmpretrain wrote it, read safely, its backbone converted from
any published layout, checked strictly against the model, loaded.

Every tool that takes a CHECKPOINT (test, demo, export, runtime_speed, the converter) reads
it here: :func:`load_model_checkpoint` reads and loads in one call;
:func:`read_model_checkpoint` and :meth:`ModelCheckpoint.fitted` are its two halves, for a
caller that decides between them (``tools/test.py`` lets mmengine's Runner load a file that
needs no conversion, so that the Runner's hooks see it).

The ``backbone.`` keys may be in any layout :mod:`pvt_mm.network.weight_layouts` knows
(the official mmdet-2 detection files hold the official layout, mmdet's model zoo its own);
every other key is kept as it is. A classifier whose network is its backbone (pvt_mm's
ImageNet configs: the PVT holds the class token, final norm and head) also takes a file
of the network alone, without the ``backbone.`` prefix (the official ``pvt_small.pth``).
Nothing is loaded unless every key fits: :class:`~pvt_mm.network.weights.CheckpointError`
names the file and the keys.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
from mmengine.logging import print_log
from torch import Tensor, nn

from .families import LAYOUT_FAMILY
from .weight_layouts import LayoutError, convert_state_dict
from .weights import (CheckpointError, fit_classifier_keys, mismatch_lines, mismatches,
                      read_checkpoint, unwrap_state_dict)

NATIVE_LAYOUTS = ('pvt_mm', 'pvt_mm_v2')


def split_backbone(state_dict: Mapping[str, Tensor]
                   ) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """A whole model's keys as (its ``backbone.`` part without the prefix, the rest)."""
    part = {k[len('backbone.'):]: v for k, v in state_dict.items() if k.startswith('backbone.')}
    rest = {k: v for k, v in state_dict.items() if not k.startswith('backbone.')}
    return part, rest


def with_backbone(part: Mapping[str, Tensor], rest: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """The inverse of :func:`split_backbone`."""
    return {**{f'backbone.{k}': v for k, v in part.items()}, **rest}


@dataclass
class ModelCheckpoint:
    """A whole-model checkpoint as read: its state dict with the backbone in pvt_mm's layout.

    Attributes:
        source: the file it was read from.
        state_dict: the tensors, a ``module.`` wrapper prefix removed (as mmengine's loader
            removes it), the ``backbone.`` keys in pvt_mm's layout.
        layout: the layout the backbone was converted from; None when nothing was converted.
        meta: the file's ``meta`` (what mmengine or mmdet 2 saved beside the weights).
        network_alone: the family (``'PVT'``, ``'PVTv2'``) of a file that holds a network
            without the ``backbone.`` prefix (an ImageNet classification file, or a
            backbone's weights); None for a whole model.
    """
    source: str
    state_dict: dict[str, Tensor]
    layout: str | None = None
    meta: dict = field(default_factory=dict)
    network_alone: str | None = None

    @property
    def dataset_meta(self) -> dict:
        """The class names (and palette) the file was saved with, lower-case keys as
        mmengine writes them (``meta.dataset_meta``), or mmdet 2 / mmseg 0.x's
        ``meta.CLASSES`` / ``meta.PALETTE``; ``{}`` when it has none."""
        saved = self.meta.get('dataset_meta')
        if isinstance(saved, Mapping):
            return {str(k).lower(): v for k, v in saved.items()}
        old = {k.lower(): self.meta[k] for k in ('CLASSES', 'PALETTE') if self.meta.get(k)}
        return old

    def fitted(self, model: nn.Module) -> dict[str, Tensor]:
        """The state dict that ``model`` takes, checked key for key and shape for shape.

        What a pvt_mm backbone has no use for is left out, and logged (the official v1
        detection files keep the class token's row of the last position embedding; a
        classification file's head in a detector's backbone).

        Raises:
            CheckpointError: a key missing, unexpected or mis-shaped (all of them named), or
                a backbone's weights given where a whole model is needed.
        """
        state_dict = self.state_dict
        if self.network_alone and _is_network_classifier(model):
            state_dict = with_backbone(state_dict, {})
        state_dict = fit_backbone_keys(model, state_dict, self.source)
        missing, unexpected, shapes = mismatches(model, state_dict)
        if not (missing or unexpected or shapes):
            return state_dict
        lines = [f'Checkpoint {self.source} does not fit this config\'s model '
                 f'({type(model).__name__}); nothing was loaded.']
        if self.network_alone:
            lines.append(
                f'The file holds a {self.network_alone} network alone, not a whole model: '
                'load it through the '
                "backbone's init_cfg (dict(type='Pretrained', checkpoint=...)) and train, or "
                'give a checkpoint of this whole model.')
        raise CheckpointError('\n  '.join(lines + mismatch_lines(missing, unexpected, shapes)))

    def load_into(self, model: nn.Module) -> None:
        """Loads :meth:`fitted` into ``model`` strictly and logs what was loaded."""
        state_dict = self.fitted(model)
        model.load_state_dict(state_dict, strict=True)
        how = f'backbone keys converted from the {self.layout} layout; ' if self.layout else ''
        print_log(f'{self.source}: {how}all {len(state_dict)} tensors loaded strictly.',
                  logger='current')


def _is_network_classifier(model: nn.Module) -> bool:
    """A classifier whose every tensor is its backbone's (the head inside the PVT)."""
    keys = list(model.state_dict())
    return bool(keys) and all(k.startswith('backbone.') for k in keys) and \
        getattr(getattr(model, 'backbone', None), 'is_classifier', False)


def read_model_checkpoint(source: str, map_location: str | torch.device = 'cpu'
                          ) -> ModelCheckpoint:
    """Reads a whole model's checkpoint with its backbone in pvt_mm's layout.

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: unreadable, or ``backbone.`` keys in no PVT layout.
    """
    raw = read_checkpoint(source, map_location)
    meta = raw.get('meta') if isinstance(raw, Mapping) else None
    meta = dict(meta) if isinstance(meta, Mapping) else {}
    state_dict = unwrap_state_dict(raw, source)
    state_dict = {k[len('module.'):] if k.startswith('module.') else k: v
                  for k, v in state_dict.items()}
    backbone, rest = split_backbone(state_dict)
    if not backbone:
        try:
            converted, layout = convert_state_dict(state_dict)
        except LayoutError:  # no PVT network: whatever model it is, the check names its keys
            return ModelCheckpoint(source, state_dict, None, meta)
        return ModelCheckpoint(source, converted, None if layout in NATIVE_LAYOUTS else layout,
                               meta, network_alone=LAYOUT_FAMILY[layout])
    try:
        converted, layout = convert_state_dict(backbone)
    except LayoutError as e:
        raise CheckpointError(f'{source}: its backbone. keys: {e}') from None
    if layout in NATIVE_LAYOUTS:
        return ModelCheckpoint(source, state_dict, None, meta)
    return ModelCheckpoint(source, with_backbone(converted, rest), layout, meta)


def load_model_checkpoint(model: nn.Module, source: str,
                          map_location: str | torch.device = 'cpu') -> ModelCheckpoint:
    """Reads ``source`` and loads it into ``model`` strictly (every key converted, fitted
    and checked first); returns what was read (its ``dataset_meta`` among it)."""
    checkpoint = read_model_checkpoint(source, map_location)
    checkpoint.load_into(model)
    return checkpoint


def fit_backbone_keys(model: nn.Module, state_dict: dict[str, Tensor],
                      source: str) -> dict[str, Tensor]:
    """A whole model's converted checkpoint with what its pvt_mm backbone has no use for
    left out, as :func:`~pvt_mm.network.weights.fit_classifier_keys` leaves it, each thing
    left out logged."""
    backbone = getattr(model, 'backbone', None)
    if not hasattr(backbone, 'is_classifier'):  # no pvt_mm backbone: nothing to fit
        return state_dict
    part, rest = split_backbone(state_dict)
    return with_backbone(fit_classifier_keys(backbone, part, source), rest)


__all__ = ['ModelCheckpoint', 'read_model_checkpoint', 'load_model_checkpoint',
           'fit_backbone_keys', 'split_backbone', 'with_backbone']
