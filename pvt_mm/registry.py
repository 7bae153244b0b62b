"""pvt_mm's own node in the OpenMMLab registry tree.

A child of mmengine's root ``MODELS`` with the scope ``pvt_mm``: mmdet and mmseg configs
alike reach it as ``type='pvt_mm.PVT'`` (the scope prefix tells mmengine which node to
search), and it never clashes with mmdet's own ``PyramidVisionTransformer``. ``locations``
lets mmengine import the models on first use of the scope.
"""
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import Registry

MODELS = Registry('model', parent=MMENGINE_MODELS, scope='pvt_mm', locations=['pvt_mm.models'])
