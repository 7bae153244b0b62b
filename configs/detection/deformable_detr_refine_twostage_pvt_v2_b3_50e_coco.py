# Deformable DETR (refine, two-stage) + PVTv2-b3 on COCO (no official or upstream figure); the
# recipe of ./deformable_detr_refine_twostage_pvt_v2_b0_50e_coco.py.
_base_ = ['./deformable_detr_refine_twostage_pvt_v2_b0_50e_coco.py']
pvt_checkpoint = 'https://github.com/whai362/PVT/releases/download/v2/pvt_v2_b3.pth'
model = dict(
    backbone=dict(arch='b3', init_cfg=dict(checkpoint=pvt_checkpoint)),
    neck=dict(in_channels=[128, 320, 512]))
