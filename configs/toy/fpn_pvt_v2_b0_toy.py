# Semantic FPN + PVTv2-b0 on the bundled toy set: the toy PVT-Tiny Semantic FPN
# (./fpn_pvt_t_toy.py: 160x128 images, background and 3 shape classes, 200 iterations, random
# init) with ../segmentation/fpn_pvt_v2_b0_ade20k_40k.py's backbone, without its checkpoint.
_base_ = ['./fpn_pvt_t_toy.py']
model = dict(
    backbone=dict(_delete_=True, type='pvt_mm.PVTv2', arch='b0', drop_path_rate=0.1),
    neck=dict(in_channels=[32, 64, 160, 256]))
