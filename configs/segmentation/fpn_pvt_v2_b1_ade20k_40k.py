# Semantic FPN + PVTv2-b1 on ADE20K (no official figure); the recipe of
# ./fpn_pvt_v2_b0_ade20k_40k.py.
_base_ = ['./fpn_pvt_v2_b0_ade20k_40k.py']
model = dict(
    backbone=dict(arch='b1', init_cfg=dict(checkpoint='https://github.com/whai362/PVT/releases/download/v2/pvt_v2_b1.pth')),
    neck=dict(in_channels=[64, 128, 320, 512]))
