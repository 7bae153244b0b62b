"""The network families, one entry each: what the rest of pvt_mm asks instead of naming a
class or branching on a family's name.

An entry holds a family's arch table and how to read an arch off a pvt_mm-layout state
dict, the weight layouts that are its, the speed paths of its blocks
(:mod:`pvt_mm.network.dispatch` runs them) and where its network class lives. Adding a
family is a network module (a :class:`~pvt_mm.network.pyramid.PyramidBackbone` subclass with
``family = NAME``), its arch table, its layouts' conversions in
:mod:`pvt_mm.network.weight_layouts`, and one entry here (docs/development.md lists it).
"""
from __future__ import annotations

import importlib
import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn

from . import cpu_fast_paths, lean_backward
from .arch import (ARCH_KEYS, ARCH_SETTINGS, ARCH_SETTINGS_V2, V2_KEYS, arch_name, arch_name_v2,
                   resolve_arch, resolve_arch_v2)


def depths_of(state_dict: Mapping[str, Tensor]) -> tuple[int, ...]:
    """The blocks per stage of a pvt_mm-layout state dict."""
    blocks = {(int(m.group(1)), int(m.group(2))) for k in state_dict
              if (m := re.match(r'stages\.(\d+)\.blocks\.(\d+)\.', k))}
    counts = Counter(stage for stage, _ in blocks)
    return tuple(counts[i] for i in range(max(counts) + 1)) if counts else ()


def _v1_arch_of(state_dict: Mapping[str, Tensor]) -> dict[str, Any]:
    return dict(depths=depths_of(state_dict))


def _v2_arch_of(state_dict: Mapping[str, Tensor]) -> dict[str, Any]:
    """Depths, widths, MLP ratios and the SRA kind of a pvt_mm-layout PVTv2 state dict."""
    depths = depths_of(state_dict)
    dims = tuple(state_dict[f'stages.{i}.patch_embed.proj.weight'].shape[0]
                 for i in range(len(depths)))
    ratios = tuple(state_dict[f'stages.{i}.blocks.0.mlp.fc1.weight'].shape[0] // dims[i]
                   for i in range(len(depths)))
    linear = any(k.endswith('attn.sr.weight') and v.shape[-1] == 1 for k, v in state_dict.items())
    return dict(depths=depths, embed_dims=dims, mlp_ratios=ratios, linear=linear)


@dataclass(frozen=True)
class Family:
    """One network family.

    Attributes:
        name: the family's name, also its class's name and its registry type (``pvt_mm.NAME``).
        module: the module that defines the network class.
        archs: the size names and their arch dicts.
        arch_keys: the keys of a custom arch dict.
        resolve_arch: a size name or custom dict -> the arch dict (ValueError otherwise).
        arch_name: an arch dict (or what :attr:`arch_of` reads) -> its size name, or None.
        arch_of: a pvt_mm-layout state dict -> what it says of its arch (KeyError,
            IndexError or ZeroDivisionError where it is not a whole backbone).
        layouts: the weight layouts of this family (:mod:`pvt_mm.network.weight_layouts`).
        cpu_block: ``fn(block, tokens, hw, lean)``, the block on the CPU paths (None: none).
        lean_block: ``fn(block, tokens, hw)``, the block holding less for backward (None:
            none; the plain blocks run).
        timm_prefix: timm's own model names for this family's sizes (``PREFIX + arch``), or
            None where timm has none of its own (pvt_mm registers ``pvt_tiny`` ... itself).
    """
    name: str
    module: str
    archs: Mapping[str, dict]
    arch_keys: tuple[str, ...]
    resolve_arch: Callable[[Any], dict]
    arch_name: Callable[[Mapping[str, Any]], str | None]
    arch_of: Callable[[Mapping[str, Tensor]], dict]
    layouts: tuple[str, ...]
    cpu_block: Callable[..., Tensor] | None
    lean_block: Callable[..., Tensor] | None
    timm_prefix: str | None = None

    @property
    def network(self) -> type[nn.Module]:
        """The network class (imported on first use: the network modules import this one)."""
        return getattr(importlib.import_module(self.module), self.name)

    def describe(self, arch: Mapping[str, Any]) -> str:
        """A size as this family names it: ``PVT-small``, ``PVTv2-b2``, or a custom arch."""
        name = self.arch_name(arch)
        return f'{self.name}-{name}' if name else f'a custom {self.name} arch'


FAMILIES: dict[str, Family] = {f.name: f for f in (
    Family(name='PVT', module='pvt_mm.network.pvt', archs=ARCH_SETTINGS, arch_keys=ARCH_KEYS,
           resolve_arch=resolve_arch, arch_name=lambda arch: arch_name(arch['depths']),
           arch_of=_v1_arch_of, layouts=('pvt_mm', 'official', 'mmdet', 'hf'),
           cpu_block=cpu_fast_paths.block_forward, lean_block=lean_backward.block_v1),
    Family(name='PVTv2', module='pvt_mm.network.pvt_v2', archs=ARCH_SETTINGS_V2,
           arch_keys=V2_KEYS, resolve_arch=resolve_arch_v2, arch_name=arch_name_v2,
           arch_of=_v2_arch_of,
           layouts=('pvt_mm_v2', 'official_v2', 'timm_v2', 'mmdet_v2', 'hf_v2'),
           cpu_block=cpu_fast_paths.block_forward_v2, lean_block=lean_backward.block_v2,
           timm_prefix='pvt_v2_'),
)}

# Which family each weight layout is for.
LAYOUT_FAMILY: dict[str, str] = {layout: f.name for f in FAMILIES.values() for layout in f.layouts}


def family_of(model: Any) -> Family | None:
    """The family entry of a pvt_mm network (any object with its ``family`` name), else
    None: the one test for "a pvt_mm backbone"."""
    return FAMILIES.get(getattr(model, 'family', None) or '')


def family_of_arch(name: str) -> Family:
    """The family that has a size called ``name`` (``'small'``, ``'b2'``, ``'b2-li'``).

    Raises:
        ValueError: no family has it.
    """
    key = name.lower().replace('-', '_')
    for family in FAMILIES.values():
        if key in family.archs:
            return family
    known = {f.name: sorted(f.archs) for f in FAMILIES.values()}
    raise ValueError(f'Unknown arch {name!r}; the families have {known}.')


__all__ = ['Family', 'FAMILIES', 'LAYOUT_FAMILY', 'family_of', 'family_of_arch', 'depths_of']
