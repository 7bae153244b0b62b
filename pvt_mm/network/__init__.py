"""The network layer: PVT and PVTv2, their arch tables, its CPU paths, reading its weights (every key
layout, strictly) and its timm registration. Depends on torch, timm and mmengine only, and
never on :mod:`pvt_mm.run`."""
from .arch import ARCH_KEYS, ARCH_SETTINGS, resolve_arch
from .weights import CheckpointError, load_pretrained, load_pvt_state_dict
from .pvt import PVT
from .pvt_v2 import PVTv2
from .timm_models import TimmPVT

__all__ = ['PVT', 'PVTv2', 'TimmPVT', 'ARCH_KEYS', 'ARCH_SETTINGS', 'resolve_arch', 'CheckpointError',
           'load_pretrained', 'load_pvt_state_dict']
