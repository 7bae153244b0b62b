"""pvt_mm: the Pyramid Vision Transformer for MMDetection, MMSegmentation, MMPretrain and timm.

``import pvt_mm`` (or ``custom_imports=dict(imports=['pvt_mm'])`` in a config) registers
:class:`pvt_mm.PVT` and :class:`pvt_mm.PVTv2` in pvt_mm's registry node (configs say
``type='pvt_mm.PVT'`` or ``type='pvt_mm.PVTv2'``), the
training hooks of :mod:`pvt_mm.run.hooks`, and timm's ``pvt_tiny`` ... ``pvt_large``, and
applies the fixes of :mod:`pvt_mm.run.compat`. It imports none of mmcv, mmdet, mmseg or
mmpretrain; they come in when a config or a tool needs them.

Two layers: :mod:`pvt_mm.network` (the networks and their weights; torch, timm and mmengine
only) and :mod:`pvt_mm.run` (configs, the task table, hooks, deployment: everything that
knows mmcv, mmdet, mmseg or mmpretrain). The network layer never imports the run layer.
"""
import sys as _sys

try:
    import mmengine as _mmengine  # noqa: F401
    import timm as _timm  # noqa: F401
    import torch as _torch  # noqa: F401
except ModuleNotFoundError as _err:
    raise ModuleNotFoundError(
        f'pvt_mm needs {_err.name}, which {_sys.executable} cannot import. Set up first: '
        '`make setup` in the pvt_mm checkout makes .venv/ with the pinned stack; to install '
        'into an environment of your own, see docs/install.md.', name=_err.name) from None

from .network import (ARCH_SETTINGS, PVT, CheckpointError, PVTv2, TimmPVT,  # noqa: E402
                      load_pretrained, load_pvt_state_dict)
from .registry import HOOKS, MODELS  # noqa: E402
from .run import compat as _compat  # noqa: E402
from .run.hooks import NonFiniteLossError  # noqa: E402
from .version import __version__  # noqa: E402

_compat.apply()

__all__ = ['PVT', 'PVTv2', 'TimmPVT', 'ARCH_SETTINGS', 'MODELS', 'HOOKS', 'CheckpointError',
           'NonFiniteLossError', 'load_pretrained', 'load_pvt_state_dict', '__version__']
