# RetinaNet + PVTv2-b2, 1x schedule (official COCO box AP 44.6, not reproduced here);
# the recipe of ./retinanet_pvt_v2_b0_fpn_1x_coco.py.
_base_ = ['./retinanet_pvt_v2_b0_fpn_1x_coco.py']
model = dict(
    backbone=dict(arch='b2', init_cfg=dict(checkpoint='https://github.com/whai362/PVT/releases/download/v2/pvt_v2_b2.pth')),
    neck=dict(in_channels=[64, 128, 320, 512]))
