# Mask2Former (instance) + PVTv2-b2 on COCO (no official or upstream figure); the recipe of
# ./mask2former_pvt_v2_b0_lsj_50e_coco.py.
_base_ = ['./mask2former_pvt_v2_b0_lsj_50e_coco.py']
pvt_checkpoint = 'https://github.com/whai362/PVT/releases/download/v2/pvt_v2_b2.pth'
model = dict(
    backbone=dict(arch='b2', init_cfg=dict(checkpoint=pvt_checkpoint)),
    panoptic_head=dict(in_channels=[64, 128, 320, 512]))
