"""pvt_mm's own nodes in the OpenMMLab registry tree.

Children of mmengine's root ``MODELS`` and ``HOOKS`` with the scope ``pvt_mm``: mmdet and
mmseg configs alike reach them as ``type='pvt_mm.PVT'`` or ``type='pvt_mm.NonFiniteLossHook'``
(the scope prefix tells mmengine which node to search), and they never clash with mmdet's
own ``PyramidVisionTransformer``. ``locations`` lets mmengine import the classes on first use
of the scope (the Trans2Seg head, which imports mmseg's models, only then).
"""
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import Registry

MODELS = Registry('model', parent=MMENGINE_MODELS, scope='pvt_mm',
                  locations=['pvt_mm.network', 'pvt_mm.run.trans2seg_head'])
HOOKS = Registry('hook', parent=MMENGINE_HOOKS, scope='pvt_mm', locations=['pvt_mm.run.hooks'])
