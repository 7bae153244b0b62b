"""What every pvt_mm network shares, whatever its family: a stage (patch embedding, encoder
blocks, an optional closing norm) and the four-stage pyramid backbone around the stages
(``out_indices``, ``frozen_stages``, ``with_cp``, ``init_cfg`` and weights, input checks,
the classifier head, the speed switches).

:class:`pvt_mm.PVT` and :class:`pvt_mm.PVTv2` are plain subclasses of
:class:`PyramidBackbone`: each calls ``super().__init__`` with its resolved arch and builds
its own stages in :meth:`PyramidBackbone.build_stages`. How a block is run (the plain
modules, or the CPU and lean-backward paths) is decided in one place,
:func:`pvt_mm.network.dispatch.block_runner`; the families' entries in
:mod:`pvt_mm.network.families` say which paths are theirs.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from mmengine.model import BaseModule
from mmengine.model.weight_init import initialize
from timm.layers import trunc_normal_
from torch import Tensor, nn
from torch.fx import Proxy
from torch.utils.checkpoint import checkpoint as gradient_checkpoint

from .weights import (PRETRAINED_FROM_BASE, CheckpointError, init_cfg_entries,
                         load_pretrained, pretrained_init_cfg)
from .dispatch import SpeedSwitches, block_runner


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


class PyramidStage(nn.Module):
    """One pyramid level: a patch embedding, encoder blocks, and optionally a closing norm.

    How its blocks run is the backbone's choice: the backbone hands every stage its one
    :class:`~pvt_mm.network.dispatch.SpeedSwitches` (``switches``), which
    :func:`~pvt_mm.network.dispatch.block_runner` reads on every forward. A stage alone
    runs its blocks' own forward.

    Args:
        patch_embed: maps (B, C_in, H, W) to tokens (B, h*w, C) and the grid (h, w).
        blocks: the encoder layers, each ``block(tokens, hw)``.
        norm: a LayerNorm over the stage's output tokens (PVTv2), or None (PVT v1).
    """

    def __init__(self, patch_embed: nn.Module, blocks: Sequence[nn.Module],
                 norm: nn.Module | None = None) -> None:
        super().__init__()
        self.patch_embed = patch_embed
        self.blocks = nn.ModuleList(blocks)
        if norm is not None:
            self.norm = norm
        self.switches = SpeedSwitches()

    def embed(self, x: Tensor, cls_token: Tensor | None = None) -> tuple[Tensor, tuple[int, int]]:
        """The stage's input tokens and grid (PVT v1 adds its position embedding here)."""
        if cls_token is not None:
            raise ValueError(f'{type(self).__name__} takes no class token.')
        return self.patch_embed(x)

    def forward(self, x: Tensor, cls_token: Tensor | None = None) -> Tensor | tuple[Tensor, Tensor]:
        """Maps (B, C_in, H, W) to the stage's map (B, C_i, h, w), a channels-last view.

        Each block runs as :func:`~pvt_mm.network.dispatch.block_runner` chooses; with
        ``with_cp``, while training, it is checkpointed when its input needs a gradient.
        With ``cls_token`` (PVT v1's classifier), the map and every token's output, the class
        token first, are returned.
        """
        B = x.shape[0]
        tokens, hw = self.embed(x, cls_token)
        run = block_runner(self.switches, tokens)
        with_cp = self.switches.with_cp and self.training
        for block in self.blocks:
            if with_cp and tokens.requires_grad:
                tokens = gradient_checkpoint(run, block, tokens, hw, use_reentrant=False)
            else:
                tokens = run(block, tokens, hw)
        if hasattr(self, 'norm'):
            tokens = self.norm(tokens)
        if cls_token is not None:
            return tokens[:, 1:].reshape(B, hw[0], hw[1], -1).permute(0, 3, 1, 2), tokens
        # A channels-last NCHW view, no copy: the next stage's patch embedding reads it as
        # is. reshape(B, C, h, w) of the transpose gives the same view except that, for
        # B = 1, the batch stride is not recognised as channels-last and the convolution
        # first copies the map to NCHW.
        return tokens.view(B, hw[0], hw[1], -1).permute(0, 3, 1, 2)


def _switch(name: str, doc: str) -> property:
    """A backbone attribute that reads and sets ``name`` of its shared ``switches``."""
    return property(lambda self: getattr(self.switches, name),
                    lambda self, value: setattr(self.switches, name, bool(value)), doc=doc)


class PyramidBackbone(BaseModule):
    """The four-stage pyramid around a family's stages (not registered: build
    :class:`pvt_mm.PVT` or :class:`pvt_mm.PVTv2`).

    A subclass resolves its arch, calls ``super().__init__(arch, ..., layers=...)`` and
    builds its stages in :meth:`build_stages` (called here with ``layers``), which also sets
    :attr:`strides` and :attr:`min_input_size`; its classifier head, when it differs from a
    linear layer on the pooled last stage, in :meth:`build_head`.

    Args:
        arch: the resolved arch dict (one value per stage for each key).
        in_channels, out_indices, frozen_stages, with_cp, cpu_fast_paths, lean_backward,
        init_cfg, pretrained, num_classes: as :class:`pvt_mm.PVT` documents them.
        layers: the family's own keyword arguments for :meth:`build_stages`.
    """

    family = ''  # the family's name in pvt_mm.network.families.FAMILIES

    def __init__(self, arch: dict, *, in_channels: int = 3,
                 out_indices: Sequence[int] | int | None = None, frozen_stages: int = -1,
                 with_cp: bool = False, cpu_fast_paths: bool = True, lean_backward: bool = True,
                 init_cfg: dict | list[dict] | None = None, pretrained: str | None = None,
                 num_classes: int = 0, layers: dict | None = None) -> None:
        if pretrained is not None:
            init_cfg = pretrained_init_cfg(pretrained, init_cfg, self.family)
        init_cfg_entries(init_cfg, self.family)  # a config that cannot be honoured fails when built
        super().__init__(init_cfg=init_cfg)
        self._pretrained_arg = pretrained
        self.arch = arch
        self.num_stages = num_stages = len(arch['depths'])
        if not isinstance(in_channels, int) or in_channels <= 0:
            raise ValueError(f'in_channels must be a positive int, got {in_channels!r}.')
        self.in_channels = in_channels
        if not isinstance(num_classes, int) or num_classes < 0:
            raise ValueError(f'num_classes must be an int >= 0 (0 = backbone), got {num_classes!r}.')
        self.num_classes = num_classes
        if num_classes and out_indices is not None:
            raise ValueError(f'{type(self).__name__}(num_classes={num_classes}) is a classifier '
                             f'returning logits; out_indices={out_indices} selects pyramid maps, '
                             'which only the backbone (num_classes=0) returns.')
        self.out_indices = self._check_out_indices(out_indices, num_stages)
        if not isinstance(frozen_stages, int) or not -1 <= frozen_stages <= num_stages:
            raise ValueError(f'frozen_stages={frozen_stages!r} invalid: must be an int in '
                             f'[-1, {num_stages}] (-1 = none, 0 = stem, k = stages 1..k).')
        self.frozen_stages = frozen_stages
        self.strides: list[int] = []
        self.min_input_size = 1
        self.stages = nn.ModuleList(self.build_stages(**(layers or {})))
        if num_classes:
            self.build_head(num_classes)
        # The model's switches: one object its stages share, read on every forward.
        self.switches = SpeedSwitches(family=self.family, with_cp=bool(with_cp),
                                      cpu_fast_paths=bool(cpu_fast_paths),
                                      lean_backward=bool(lean_backward))
        for stage in self.stages:
            stage.switches = self.switches
        self.feature_info = [
            dict(num_chs=arch['embed_dims'][i], reduction=self.strides[i], module=f'stages.{i}')
            for i in self.out_indices
        ]
        self._freeze_stages()

    @staticmethod
    def _check_out_indices(out_indices: Any, num_stages: int) -> tuple[int, ...]:
        if out_indices is None:
            out_indices = tuple(range(num_stages))
        if isinstance(out_indices, int):
            out_indices = (out_indices,)
        out_indices = tuple(out_indices)
        bad = [i for i in out_indices if not isinstance(i, int) or not -num_stages <= i < num_stages]
        if not out_indices or bad:
            raise ValueError(f'out_indices {out_indices} invalid: each must be one of '
                             f'{list(range(num_stages))} (or negative from the end).')
        return tuple(i % num_stages for i in out_indices)

    # -- what a family fills in ----------------------------------------------------------
    def build_stages(self, **layers: Any) -> list[PyramidStage]:
        """The family's stages from :attr:`arch`; sets :attr:`strides` (each stage's output
        stride) and :attr:`min_input_size`."""
        raise NotImplementedError

    def build_head(self, num_classes: int) -> None:
        """The classifier's head: a linear layer on the pooled last stage."""
        self.head = nn.Linear(self.arch['embed_dims'][-1], num_classes)

    def forward_features(self, x: Tensor) -> Tensor:
        """The classifier's features (:meth:`forward_head` pools them): the last stage's
        map."""
        for stage in self.stages:
            x = stage(x)
        return x

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        """The mean of the last stage's tokens (``pre_logits``), or the logits."""
        x = x.mean(dim=(2, 3))
        return x if pre_logits else self.head(x)

    # -- shared behaviour ----------------------------------------------------------------
    @property
    def is_classifier(self) -> bool:
        """Whether the model holds a classifier (and its checkpoint keys)."""
        return self.num_classes > 0

    @property
    def out_channels(self) -> list[int]:
        """Channels of each returned feature map, in output order."""
        return [self.arch['embed_dims'][i] for i in self.out_indices]

    with_cp = _switch('with_cp', 'Gradient checkpointing of every block while training '
                      '(less memory).')
    cpu_fast_paths = _switch('cpu_fast_paths', 'The CPU paths (:mod:`pvt_mm.network.'
                             'cpu_fast_paths`) for CPU tensors in eager mode.')
    lean_backward = _switch('lean_backward', 'The lean-backward path (:mod:`pvt_mm.network.'
                            'lean_backward`) on every device.')

    def attention_modules(self) -> list[nn.Module]:
        return [block.attn for stage in self.stages for block in stage.blocks]

    @property
    def fused_attn(self) -> bool:
        """Attention through ``F.scaled_dot_product_attention`` in every block (``False``:
        the explicit softmax path, e.g. for export)."""
        return all(m.fused for m in self.attention_modules())

    @fused_attn.setter
    def fused_attn(self, value: bool) -> None:
        for m in self.attention_modules():
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

    def train(self, mode: bool = True) -> 'PyramidBackbone':
        super().train(mode)
        self._freeze_stages()
        return self

    def init_weights(self) -> None:
        """Initialises as ``init_cfg`` says: a ``Pretrained`` entry loads its checkpoint
        strictly; otherwise the official random init (:meth:`random_init`), then any
        mmengine initializers listed."""
        entries = init_cfg_entries(self.init_cfg, self.family)
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
        """The official random init: truncated normal (std 0.02) for linear weights, zero
        biases, LayerNorm weight 1 and bias 0."""
        init_linears_and_norms(self)

    def check_input(self, x: Any) -> None:
        """Raises a clear error for an input the backbone cannot take. Symbolic inputs
        (``torch.fx`` tracing) pass unchecked: their values exist only at run time.

        Raises:
            TypeError: not a floating-point tensor.
            ValueError: not 4-D, wrong channel count, smaller than :attr:`min_input_size`
                on a side, or, for a tensor on the CPU, holding NaN or infinite values.
                The values are read only where they already are on the host: on another
                device the read would stall every step (the run layer's data check reads
                a batch before it moves there), and while ``torch.compile`` traces a
                data-dependent branch would break the graph.
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
        if x.device.type == 'cpu' and not torch.compiler.is_compiling():
            check_finite(x, self.family)

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        """The feature pyramid, or a classifier's logits.

        Args:
            x: (B, in_channels, H, W) float images (normalised), H and W at least
                :attr:`min_input_size`.

        Returns:
            A backbone (``num_classes=0``): the maps of ``out_indices``, in that order, F_i
            of shape (B, ``out_channels[i]``, h_i, w_i) at stride ``strides[i]``. A
            classifier (``num_classes=N``): ``(logits,)``, logits of shape (B, N).

        Raises:
            ValueError: not 4-D, another channel count, smaller than
                :attr:`min_input_size`, or (on the CPU) NaN or infinite values.
        """
        # Stages pass each other channels-last views; the maps handed out are contiguous
        # NCHW, the layout mmdet's and mmseg's necks expect (fed channels-last, their
        # convolutions run slower on the CPU, and mmcv's CPU RoIAlign misreads the maps).
        self.check_input(x)
        if self.is_classifier:
            return (self.forward_head(self.forward_features(x)),)
        feats = {}
        for i, stage in enumerate(self.stages[:max(self.out_indices) + 1]):
            x = stage(x)
            if i in self.out_indices:
                feats[i] = x.contiguous()
        return tuple(feats[i] for i in self.out_indices)


def check_finite(x: Tensor, what: str) -> None:
    """Raises ValueError, saying how many NaN and infinite values and where the first is,
    unless every value of ``x`` is finite (reads ``x``: call it where ``x`` is on the host)."""
    if bool(torch.isfinite(x).all()):
        return
    nan, inf = x.isnan(), x.isinf()
    first = tuple((nan | inf).nonzero()[0].tolist())
    raise ValueError(f'{what} expects finite input values, got {int(nan.sum())} NaN and '
                     f'{int(inf.sum())} infinite values in the input of shape '
                     f'{tuple(x.shape)} (the first at index {first}); check the image '
                     'loading and normalization.')


__all__ = ['PyramidBackbone', 'PyramidStage', 'init_linears_and_norms', 'check_finite']
