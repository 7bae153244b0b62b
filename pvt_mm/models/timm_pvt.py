"""PVT v1 classifiers in timm's model registry: ``pvt_tiny``, ``pvt_small``, ``pvt_medium``, ``pvt_large``.

The names the official classification code registered, so its command lines and timm's own
``train.py`` / ``validate.py`` run unchanged once ``pvt_mm`` is imported::

    import pvt_mm, timm
    model = timm.create_model('pvt_small', num_classes=10, checkpoint_path='pvt_small.pth')

:class:`TimmPVT` is :class:`pvt_mm.PVT` in classifier mode with timm's model interface:
``forward`` returns the logits tensor (not a tuple), ``forward_features`` / ``forward_head``,
``get_classifier`` / ``reset_classifier``, ``no_weight_decay``, ``set_grad_checkpointing``
and ``pretrained_cfg`` (the official evaluation transform: bicubic resize, crop 0.875,
ImageNet mean and std). Its ``load_state_dict`` takes the official, mmdet and pvt_mm key
layouts, strictly; a head made for another class count is left for the new one, and a log
line says so (timm's ``checkpoint_path`` calls it).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mmengine.logging import print_log
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.layers import trunc_normal_
from timm.models import register_model
from torch import Tensor, nn

from ..checkpoint import check_state_dict, fit_classifier_keys, load_pretrained
from ..weight_layouts import LayoutError, convert_state_dict
from .pvt import PVT

OFFICIAL_URL = 'https://github.com/whai362/PVT/releases/download/v2/pvt_{}.pth'
# What timm passes to every model function and pvt_mm does not use.
_TIMM_ONLY = ('pretrained_cfg', 'cache_dir')


class TimmPVT(PVT):
    """:class:`pvt_mm.PVT` as a timm classifier (same modules, same weights, logits out)."""

    def __init__(self, arch: str = 'small', *, num_classes: int = 1000, **kwargs: Any) -> None:
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f'{type(self).__name__} is a classifier: num_classes must be >= 1, '
                             f'got {num_classes!r} (reset_classifier(0) then drops the head; '
                             'pvt_mm.PVT(num_classes=0) is the feature pyramid).')
        super().__init__(arch, num_classes=num_classes, **kwargs)
        self.pretrained_cfg = dict(
            input_size=(3, 224, 224), interpolation='bicubic', crop_pct=0.875, crop_mode='center',
            mean=IMAGENET_DEFAULT_MEAN, std=IMAGENET_DEFAULT_STD, num_classes=num_classes,
            first_conv='stages.0.patch_embed.proj', classifier='head')
        self.default_cfg = self.pretrained_cfg
        self.num_features = self.head_hidden_size = self.arch['embed_dims'][-1]
        self.init_weights()

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        return x if pre_logits else self.head(x)

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int, global_pool: Any = None) -> None:
        """A new head for ``num_classes`` (0: none, ``forward`` returns the features)."""
        self.num_classes = num_classes
        self.head = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()
        if num_classes > 0:
            trunc_normal_(self.head.weight, std=0.02)
            nn.init.zeros_(self.head.bias)

    def no_weight_decay(self) -> set[str]:
        """The class token and the position embeddings stay out of weight decay."""
        return {'cls_token', 'cls_pos_embed',
                *(f'stages.{i}.pos_embed' for i in range(len(self.stages)))}

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.with_cp = enable

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True,
                        assign: bool = False):
        """Loads official, mmdet or pvt_mm weights (converted to pvt_mm's keys), strictly.

        A head for another number of classes stays behind (logged) and the model's own head
        is kept. Anything else that does not fit raises :class:`pvt_mm.CheckpointError`.
        """
        try:
            sd, layout = convert_state_dict(dict(state_dict))
        except LayoutError:
            if strict:
                raise
            return super().load_state_dict(state_dict, strict=False, assign=assign)
        sd = fit_classifier_keys(self, sd, f'<{layout} state dict>')
        if strict:
            check_state_dict(self, sd, f'<{layout} state dict>')
        return super().load_state_dict(sd, strict=strict, assign=assign)


def _create(arch: str, pretrained: bool = False, pretrained_cfg_overlay: dict | None = None,
            in_chans: int = 3, drop_rate: float = 0.0, drop_path_rate: float = 0.1,
            **kwargs: Any) -> TimmPVT:
    for key in _TIMM_ONLY:
        kwargs.pop(key, None)
    model = TimmPVT(arch, in_channels=in_chans, drop_rate=drop_rate,
                    drop_path_rate=drop_path_rate, **kwargs)
    if pretrained:
        source = (pretrained_cfg_overlay or {}).get('file') or OFFICIAL_URL.format(arch)
        load_pretrained(model, source)
        print_log(f'timm pvt_{arch}: ImageNet weights from {source}', logger='current')
    return model


@register_model
def pvt_tiny(pretrained: bool = False, **kwargs: Any) -> TimmPVT:
    """PVT-Tiny classifier (paper Table 2: 13.2 M, 1.9 GFLOPs, 75.1 top-1)."""
    return _create('tiny', pretrained, **kwargs)


@register_model
def pvt_small(pretrained: bool = False, **kwargs: Any) -> TimmPVT:
    """PVT-Small classifier (paper Table 2: 24.5 M, 3.8 GFLOPs, 79.8 top-1)."""
    return _create('small', pretrained, **kwargs)


@register_model
def pvt_medium(pretrained: bool = False, **kwargs: Any) -> TimmPVT:
    """PVT-Medium classifier (paper Table 2: 44.2 M, 6.7 GFLOPs, 81.2 top-1)."""
    return _create('medium', pretrained, **kwargs)


@register_model
def pvt_large(pretrained: bool = False, **kwargs: Any) -> TimmPVT:
    """PVT-Large classifier (paper Table 2: 61.4 M, 9.8 GFLOPs, 81.7 top-1)."""
    return _create('large', pretrained, **kwargs)


__all__ = ['TimmPVT', 'pvt_tiny', 'pvt_small', 'pvt_medium', 'pvt_large']
