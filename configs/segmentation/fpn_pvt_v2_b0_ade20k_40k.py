# Semantic FPN + PVTv2-b0 on ADE20K: PVT v1's Semantic FPN recipe (./fpn_pvt_t_ade20k_40k.py:
# AdamW lr 2e-4, weight decay 1e-4, poly decay, 40k iterations at 32 images, 512x512 crops)
# with the PVTv2 backbone. The official code has no PVTv2 segmentation config or figure.
_base_ = ['./fpn_pvt_t_ade20k_40k.py']
pvt_checkpoint = 'https://github.com/whai362/PVT/releases/download/v2/pvt_v2_b0.pth'
model = dict(
    backbone=dict(
        _delete_=True,
        type='pvt_mm.PVTv2',
        arch='b0',
        drop_path_rate=0.1,
        init_cfg=dict(type='Pretrained', checkpoint=pvt_checkpoint)),
    neck=dict(in_channels=[32, 64, 160, 256]))
