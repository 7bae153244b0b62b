# Mask R-CNN + PVT-Small, 3x + multi-scale (paper Table 4); everything else as the Tiny config.
_base_ = ['./mask_rcnn_pvt_t_fpn_3x_mstrain_coco.py']
model = dict(
    backbone=dict(
        arch='small',
        init_cfg=dict(
            checkpoint='https://github.com/whai362/PVT/releases/download/v2/pvt_small.pth')))
