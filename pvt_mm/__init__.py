"""pvt_mm: the Pyramid Vision Transformer (PVT v1) as a backbone for MMDetection and MMSegmentation.

``import pvt_mm`` (or ``custom_imports=dict(imports=['pvt_mm'])`` in a config) registers
:class:`pvt_mm.PVT` and the training hooks of :mod:`pvt_mm.engine` in pvt_mm's registry nodes,
so configs say ``type='pvt_mm.PVT'``, and applies the fixes of :mod:`pvt_mm.compat` to the
installed OpenMMLab stack.
"""
from . import compat
from .arch import ARCH_SETTINGS
from .checkpoint import CheckpointError, load_pretrained, load_pvt_state_dict
from .engine import NonFiniteLossError
from .models import PVT
from .registry import HOOKS, MODELS
from .version import __version__

compat.apply()

__all__ = ['PVT', 'ARCH_SETTINGS', 'MODELS', 'HOOKS', 'CheckpointError', 'NonFiniteLossError',
           'load_pretrained', 'load_pvt_state_dict', '__version__']
