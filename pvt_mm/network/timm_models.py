"""PVT v1 classifiers in timm's model registry: ``pvt_tiny``, ``pvt_small``, ``pvt_medium``, ``pvt_large``.

The names the official classification code registered, so its command lines and timm's own
``train.py`` / ``validate.py`` run unchanged once ``pvt_mm`` is imported::

    import pvt_mm, timm
    model = timm.create_model('pvt_small', num_classes=10, checkpoint_path='pvt_small.pth')
    pyramid = timm.create_model('pvt_small', features_only=True)  # F1..F4

They are built by timm's ``build_model_with_cfg`` from complete pretrained cfgs (the
official evaluation transform: bicubic resize, crop 0.875, ImageNet mean and std; the
official weights: HF's hub copies ``Zetatech/pvt-{size}-224``, which ``pretrained=True``
reads through huggingface_hub, and the release URLs). :class:`TimmPVT` is
:class:`pvt_mm.PVT` in classifier mode with timm's model interface: ``forward`` returns
the logits tensor (not a tuple); ``forward_features`` returns the last stage's normed tokens, class token first, and
``forward_head`` pools them (``global_pool='token'``, the official head; ``'avg'`` the mean
of the patch tokens; ``''`` none); ``forward_intermediates`` and ``features_only=True``
give the four stage maps; ``get_classifier`` / ``reset_classifier``, ``no_weight_decay``,
``group_matcher``, ``set_grad_checkpointing``. Its ``load_state_dict`` takes every key
layout :mod:`pvt_mm.network.weight_layouts` knows, strictly; a head made for another class
count is left for the new one, and a log line says so (timm's ``checkpoint_path`` and
``pretrained`` both go through it). Each stage is a leaf for timm's ``torch.fx`` tracer.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.layers import register_notrace_module, trunc_normal_
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from timm.models._features import feature_take_indices
from torch import Tensor, nn

from .weights import check_family, check_state_dict, fit_classifier_keys
from .pvt import PVT, PVTStage
from .weight_layouts import LayoutError, convert_state_dict

OFFICIAL_URL = 'https://github.com/whai362/PVT/releases/download/v2/pvt_{}.pth'
# HF transformers' ports of the same official weights, one hub repository per size: what
# timm's pretrained=True reads first (through huggingface_hub's cache, safetensors first),
# the release URL where huggingface_hub is missing.
HF_HUB_ID = 'Zetatech/pvt-{}-224'
POOLS = ('token', 'avg', '')

# A stage's Python (grid sizes, the position-embedding resize, its CPU paths) is not
# symbolically traceable; timm's fx tracer calls it as one module.
register_notrace_module(PVTStage)


class TimmPVT(PVT):
    """:class:`pvt_mm.PVT` as a timm classifier (same modules, same weights, logits out).

    Args:
        arch: as :class:`pvt_mm.PVT`.
        num_classes: classes of the head; 0 for none (``forward`` returns the pooled features).
        global_pool: ``'token'`` (the class token, as the official model), ``'avg'`` (the
            mean of the patch tokens) or ``''`` (the tokens unpooled).
        in_chans, drop_rate, drop_path_rate: timm's names for PVT's ``in_channels``,
            ``drop_rate`` and ``drop_path_rate``; other keywords go to :class:`pvt_mm.PVT`.
    """

    def __init__(self, arch: str = 'small', *, num_classes: int = 1000, global_pool: str = 'token',
                 in_chans: int = 3, drop_rate: float = 0.0, drop_path_rate: float = 0.1,
                 **kwargs: Any) -> None:
        if not isinstance(num_classes, int) or num_classes < 0:
            raise ValueError(f'{type(self).__name__}: num_classes must be an int >= 0, got '
                             f'{num_classes!r} (pvt_mm.PVT(num_classes=0) is the feature '
                             'pyramid).')
        if global_pool not in POOLS:
            raise ValueError(f'global_pool must be one of {POOLS}, got {global_pool!r}.')
        # The class token, final norm and head are built with PVT's classifier; a model
        # without classes keeps the first two and drops the head.
        super().__init__(arch, num_classes=max(1, num_classes), in_channels=in_chans,
                         drop_rate=drop_rate, drop_path_rate=drop_path_rate, **kwargs)
        self.global_pool = global_pool
        self.num_features = self.head_hidden_size = self.arch['embed_dims'][-1]
        self.init_weights()
        if num_classes == 0:
            self.reset_classifier(0)

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        if self.global_pool == 'token':
            x = x[:, 0]
        elif self.global_pool == 'avg':
            x = x[:, 1:].mean(dim=1)
        return x if pre_logits else self.head(x)

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        return self.forward_head(self.forward_features(x))

    def forward_intermediates(self, x: Tensor, indices: int | list[int] | None = None,
                              norm: bool = False, stop_early: bool = False,
                              output_fmt: str = 'NCHW', intermediates_only: bool = False
                              ) -> list[Tensor] | tuple[Tensor, list[Tensor]]:
        """The stage maps (NCHW, F_i at stride 2^(i+1)) of ``indices`` (the last n stages for
        an int, all for None), and unless ``intermediates_only`` the final features as
        :meth:`forward_features` returns them. The classifier's last stage attends with the
        class token; ``features_only=True`` prunes the classifier, which makes the maps the
        backbone's (``pvt_mm.PVT(num_classes=0)``). ``norm`` is accepted for timm's
        interface: the final norm belongs to the tokens, not to stage maps."""
        if output_fmt != 'NCHW':
            raise ValueError(f"{type(self).__name__} gives NCHW stage maps, not {output_fmt!r}.")
        self.check_input(x)
        take, last = feature_take_indices(len(self.stages), indices)
        stages = self.stages[:last + 1] if stop_early or intermediates_only else self.stages
        maps, final = [], None
        for i, stage in enumerate(stages):
            if i == len(self.stages) - 1 and self.with_cls_token:
                x, tokens = stage(x, cls_token=self.cls_token + self.cls_pos_embed)
                final = self.norm(tokens)
            else:
                x = stage(x)
            if i in take:
                maps.append(x.contiguous())
        if intermediates_only:
            return maps
        return (x.contiguous() if final is None else final), maps

    def prune_intermediate_layers(self, indices: int | list[int] = 1, prune_norm: bool = False,
                                  prune_head: bool = True) -> list[int]:
        """Drops what the stage maps of ``indices`` do not need: later stages and, with
        ``prune_head``, the classifier (class token, final norm, head)."""
        take, last = feature_take_indices(len(self.stages), indices)
        self.stages = self.stages[:last + 1]
        if prune_head or last < len(self.arch['depths']) - 1:
            self.reset_classifier(0, '')
            self.with_cls_token = False
            del self.cls_token, self.cls_pos_embed
            self.norm = nn.Identity()
        elif prune_norm:
            self.norm = nn.Identity()
        return take

    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """A new head for ``num_classes`` (0: none, ``forward`` returns the pooled features)."""
        if global_pool is not None:
            if global_pool not in POOLS:
                raise ValueError(f'global_pool must be one of {POOLS}, got {global_pool!r}.')
            self.global_pool = global_pool
        self.num_classes = num_classes
        self.head = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()
        if num_classes > 0:
            trunc_normal_(self.head.weight, std=0.02)
            nn.init.zeros_(self.head.bias)

    @torch.jit.ignore
    def no_weight_decay(self) -> set[str]:
        """The class token and the position embeddings stay out of weight decay."""
        return {'cls_token', 'cls_pos_embed',
                *(f'stages.{i}.pos_embed' for i in range(len(self.stages)))}

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> dict[str, Any]:
        return dict(stem=r'^stages\.0\.(patch_embed|pos_embed)|^cls_',
                    blocks=r'^stages\.(\d+)' if coarse else
                    [(r'^stages\.(\d+)\.blocks\.(\d+)', None), (r'^norm', (99999,))])

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.with_cp = enable

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True,
                        assign: bool = False):
        """Loads weights of any known PVT layout (converted to pvt_mm's keys), strictly.

        A head for another number of classes stays behind (logged) and the model's own head
        is kept. Anything else that does not fit raises :class:`pvt_mm.CheckpointError`.
        """
        try:
            sd, layout = convert_state_dict(dict(state_dict))
        except LayoutError:
            if strict:
                raise
            return super().load_state_dict(state_dict, strict=False, assign=assign)
        check_family(self, sd, layout, f'<{layout} state dict>')
        sd = fit_classifier_keys(self, sd, f'<{layout} state dict>')
        if strict:
            check_state_dict(self, sd, f'<{layout} state dict>')
        return super().load_state_dict(sd, strict=strict, assign=assign)


def checkpoint_filter_fn(state_dict: dict[str, Tensor], model: TimmPVT) -> dict[str, Tensor]:
    """timm's ``pretrained_filter_fn``: any known layout to pvt_mm's keys, before timm looks
    for the classifier and the first convolution by their cfg names."""
    return convert_state_dict(state_dict)[0]


def _cfg(size: str, **kwargs: Any) -> dict[str, Any]:
    return dict(url=OFFICIAL_URL.format(size), hf_hub_id=HF_HUB_ID.format(size),
                num_classes=1000, input_size=(3, 224, 224),
                pool_size=None, crop_pct=0.875, interpolation='bicubic', fixed_input_size=False,
                mean=IMAGENET_DEFAULT_MEAN, std=IMAGENET_DEFAULT_STD,
                first_conv='stages.0.patch_embed.proj', classifier='head',
                license='apache-2.0', **kwargs)


SIZES = ('tiny', 'small', 'medium', 'large')
default_cfgs = generate_default_cfgs({f'pvt_{size}.in1k': _cfg(size) for size in SIZES})


def _create(variant: str, pretrained: bool = False, **kwargs: Any) -> TimmPVT:
    return build_model_with_cfg(TimmPVT, variant, pretrained, arch=variant[len('pvt_'):],
                                pretrained_filter_fn=checkpoint_filter_fn,
                                feature_cfg=dict(feature_cls='getter', out_indices=(0, 1, 2, 3)),
                                **kwargs)


@register_model
def pvt_tiny(pretrained: bool = False, **kwargs: Any) -> TimmPVT:
    """PVT-Tiny classifier (paper Table 2)."""
    return _create('pvt_tiny', pretrained, **kwargs)


@register_model
def pvt_small(pretrained: bool = False, **kwargs: Any) -> TimmPVT:
    """PVT-Small classifier (paper Table 2)."""
    return _create('pvt_small', pretrained, **kwargs)


@register_model
def pvt_medium(pretrained: bool = False, **kwargs: Any) -> TimmPVT:
    """PVT-Medium classifier (paper Table 2)."""
    return _create('pvt_medium', pretrained, **kwargs)


@register_model
def pvt_large(pretrained: bool = False, **kwargs: Any) -> TimmPVT:
    """PVT-Large classifier (paper Table 2)."""
    return _create('pvt_large', pretrained, **kwargs)


__all__ = ['TimmPVT', 'pvt_tiny', 'pvt_small', 'pvt_medium', 'pvt_large', 'default_cfgs',
           'checkpoint_filter_fn']
