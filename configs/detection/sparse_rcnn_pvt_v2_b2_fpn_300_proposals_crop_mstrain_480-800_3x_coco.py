# Sparse R-CNN + PVTv2-b2, 300 proposals, 3x + multi-scale and crop (official COCO box AP 50.1,
# not reproduced here): the official detection/configs/sparse_rcnn_pvt_v2_b2_fpn_300_proposals_crop_mstrain_480-800_3x_coco.py on mmdet's own
# sparse-rcnn_r50_fpn_300-proposals_crop-ms-480-800-3x_coco (the same six-stage head, 300
# learned proposals, DETR's augmentation, 36 epochs, gradient clipping at 1), with AdamW lr
# 2.5e-5 / 1.4 at 8 GPUs x 1 image.
_base_ = [
    'mmdet::sparse_rcnn/sparse-rcnn_r50_fpn_300-proposals_crop-ms-480-800-3x_coco.py',
    '../_base_/pvt_mm_hooks.py',
]
custom_imports = dict(imports=['pvt_mm'], allow_failed_imports=False)

# Checkpoints written atomically; the other pvt_mm hooks come from ../_base_/pvt_mm_hooks.py.
default_hooks = dict(checkpoint=dict(type='pvt_mm.AtomicCheckpointHook'))

pvt_checkpoint = 'https://github.com/whai362/PVT/releases/download/v2/pvt_v2_b2.pth'
model = dict(
    backbone=dict(
        _delete_=True,
        type='pvt_mm.PVTv2',
        arch='b2',
        drop_path_rate=0.1,
        init_cfg=dict(type='Pretrained', checkpoint=pvt_checkpoint)),
    neck=dict(in_channels=[64, 128, 320, 512]))

optim_wrapper = dict(optimizer=dict(lr=2.5e-5 / 1.4))
train_dataloader = dict(batch_size=1)
auto_scale_lr = dict(enable=True, base_batch_size=8)
