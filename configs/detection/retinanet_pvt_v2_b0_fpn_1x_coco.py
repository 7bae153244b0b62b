# RetinaNet + PVTv2-b0, 1x schedule (official COCO box AP 37.2, not reproduced here): the
# official detection/configs/retinanet_pvt_v2_b0_fpn_1x_coco.py, which is PVT v1's RetinaNet
# recipe (./retinanet_pvt_t_fpn_1x_coco.py: AdamW lr 1e-4, weight decay 1e-4, 12 epochs,
# 800x1333, 16 images per iteration) with the PVTv2 backbone (stochastic depth 0.1).
_base_ = ['./retinanet_pvt_t_fpn_1x_coco.py']
pvt_checkpoint = 'https://github.com/whai362/PVT/releases/download/v2/pvt_v2_b0.pth'
model = dict(
    backbone=dict(
        _delete_=True,
        type='pvt_mm.PVTv2',
        arch='b0',
        drop_path_rate=0.1,
        init_cfg=dict(type='Pretrained', checkpoint=pvt_checkpoint)),
    neck=dict(in_channels=[32, 64, 160, 256]))
