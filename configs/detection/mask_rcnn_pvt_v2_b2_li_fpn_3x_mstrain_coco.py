# Mask R-CNN + PVTv2-b2-li, 3x + multi-scale and crop (the official
# mask_rcnn_pvt_v2_b2_li_fpn_3x_mstrain.py); everything else as the b2 config.
_base_ = ['./mask_rcnn_pvt_v2_b2_fpn_3x_mstrain_coco.py']
model = dict(
    backbone=dict(arch='b2_li', init_cfg=dict(checkpoint='https://github.com/whai362/PVT/releases/download/v2/pvt_v2_b2_li.pth')))
