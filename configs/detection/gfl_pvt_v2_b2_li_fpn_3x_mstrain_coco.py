# GFL + PVTv2-b2-li, 3x + multi-scale and crop (official COCO box AP 49.2, not
# reproduced here); everything else as ./gfl_pvt_v2_b2_fpn_3x_mstrain_coco.py.
_base_ = ['./gfl_pvt_v2_b2_fpn_3x_mstrain_coco.py']
model = dict(
    backbone=dict(arch='b2_li', init_cfg=dict(checkpoint='https://github.com/whai362/PVT/releases/download/v2/pvt_v2_b2_li.pth')))
