# Sparse R-CNN + PVTv2-b2-li, 300 proposals, 3x + multi-scale and crop (official COCO box AP
# 48.9, not reproduced here); everything else as ./sparse_rcnn_pvt_v2_b2_fpn_300_proposals_crop_mstrain_480-800_3x_coco.py.
_base_ = ['./sparse_rcnn_pvt_v2_b2_fpn_300_proposals_crop_mstrain_480-800_3x_coco.py']
model = dict(
    backbone=dict(arch='b2_li', init_cfg=dict(checkpoint='https://github.com/whai362/PVT/releases/download/v2/pvt_v2_b2_li.pth')))
