"""The run layer: what the tools and your own scripts do with pvt_mm's networks in OpenMMLab.

Configs read as the tools read them (:mod:`.config`), the table of tasks (:mod:`.tasks`:
detection, segmentation, classification), training and testing (:mod:`.training`,
:mod:`.testing`), one image's prediction drawn (:mod:`.inference`), data checks
(:mod:`.datacheck`), atomic files (:mod:`.fileio`), the training hooks (:mod:`.hooks`),
mixed precision and CPU distributed start-up (:mod:`.amp`, :mod:`.distributed`), the fixes
for the pinned stack (:mod:`.compat`), ONNX deployment (:mod:`.deployment`), measurements
(:mod:`.analysis`) and the heads that subclass an OpenMMLab class (:mod:`.trans2seg_head`).
Everything here that needs mmcv, mmdet, mmseg or mmpretrain imports it when it runs.
"""
