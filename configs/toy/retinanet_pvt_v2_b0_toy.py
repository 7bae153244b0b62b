# RetinaNet + PVTv2-b0 on the bundled toy set: the toy PVT-Tiny RetinaNet (./retinanet_pvt_t_toy.py:
# 160x128 images, 3 classes, batch 4, 12 epochs, a 128-channel neck and head, random init) with
# ../detection/retinanet_pvt_v2_b0_fpn_1x_coco.py's backbone, without its ImageNet checkpoint.
_base_ = ['./retinanet_pvt_t_toy.py']
model = dict(
    backbone=dict(_delete_=True, type='pvt_mm.PVTv2', arch='b0', drop_path_rate=0.1),
    neck=dict(in_channels=[32, 64, 160, 256]))
