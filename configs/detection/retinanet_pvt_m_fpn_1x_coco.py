# RetinaNet + PVT-Medium, 1x schedule (paper Table 3); everything else as the Tiny config.
_base_ = ['./retinanet_pvt_t_fpn_1x_coco.py']
model = dict(
    backbone=dict(
        arch='medium',
        init_cfg=dict(
            checkpoint='https://github.com/whai362/PVT/releases/download/v2/pvt_medium.pth')))
