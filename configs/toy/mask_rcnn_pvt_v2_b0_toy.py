# Mask R-CNN + PVTv2-b0 on the bundled toy set: the toy PVT-Tiny Mask R-CNN
# (./mask_rcnn_pvt_t_toy.py: 160x128 images, 3 classes, batch 4, 12 epochs, 128-channel neck
# and heads, fewer proposals, random init) with ../detection/mask_rcnn_pvt_v2_b0_fpn_1x_coco.py's
# backbone, without its ImageNet checkpoint, at lr 2e-4 (the paper config's; measured on the
# toy set of seed 0: box / mask mAP 0.385 / 0.516 against 0.260 / 0.347 at PVT-Tiny's 1e-4).
_base_ = ['./mask_rcnn_pvt_t_toy.py']
model = dict(
    backbone=dict(_delete_=True, type='pvt_mm.PVTv2', arch='b0', drop_path_rate=0.1),
    neck=dict(in_channels=[32, 64, 160, 256]))
optim_wrapper = dict(optimizer=dict(lr=2e-4))
