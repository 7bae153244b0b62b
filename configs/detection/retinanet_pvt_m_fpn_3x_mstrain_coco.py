# RetinaNet + PVT-Medium, 3x + multi-scale (paper Table 3); everything else as the Tiny config.
_base_ = ['./retinanet_pvt_t_fpn_3x_mstrain_coco.py']
model = dict(
    backbone=dict(
        arch='medium',
        init_cfg=dict(
            checkpoint='https://github.com/whai362/PVT/releases/download/v2/pvt_medium.pth')))
