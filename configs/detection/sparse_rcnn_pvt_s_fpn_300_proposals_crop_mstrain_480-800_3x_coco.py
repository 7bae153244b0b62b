# Sparse R-CNN + PVT-Small (v1), 300 proposals, 3x + multi-scale and crop: on the official
# README's to-do list ("PVT + DETR/Sparse R-CNN config & models") and never released, so no
# official figure exists. ./sparse_rcnn_pvt_v2_b2_fpn_300_proposals_crop_mstrain_480-800_3x_coco.py's recipe with PVT-Small's backbone
# (stochastic depth 0.1, as the v1 detectors).
_base_ = ['./sparse_rcnn_pvt_v2_b2_fpn_300_proposals_crop_mstrain_480-800_3x_coco.py']
model = dict(
    backbone=dict(
        _delete_=True,
        type='pvt_mm.PVT',
        arch='small',
        drop_path_rate=0.1,
        init_cfg=dict(type='Pretrained',
                      checkpoint='https://github.com/whai362/PVT/releases/download/v2/pvt_small.pth')))
