# RetinaNet + PVT-Large, 3x + multi-scale (paper Table 3); everything else as the Tiny config.
_base_ = ['./retinanet_pvt_t_fpn_3x_mstrain_coco.py']
model = dict(
    backbone=dict(
        arch='large',
        init_cfg=dict(
            checkpoint='https://github.com/whai362/PVT/releases/download/v2/pvt_large.pth')))
# Mixed precision, as the official recipe trains PVT-Large (fp32 on a machine without GPU).
optim_wrapper = dict(type='AmpOptimWrapper', loss_scale='dynamic')
