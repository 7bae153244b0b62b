# DINO 4-scale + PVTv2-b1 on COCO, 12 epochs (no official or upstream figure); the recipe of
# ./dino_4scale_pvt_v2_b0_12e_coco.py.
_base_ = ['./dino_4scale_pvt_v2_b0_12e_coco.py']
pvt_checkpoint = 'https://github.com/whai362/PVT/releases/download/v2/pvt_v2_b1.pth'
model = dict(
    backbone=dict(arch='b1', init_cfg=dict(checkpoint=pvt_checkpoint)),
    neck=dict(in_channels=[128, 320, 512]))
