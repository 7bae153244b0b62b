# Cascade Mask R-CNN + PVTv2-b2, 3x + multi-scale and crop, mixed precision (official COCO
# box / mask AP 51.1 / 44.4, not reproduced here): the official
# detection/configs/cascade_mask_rcnn_pvt_v2_b2_fpn_3x_mstrain_fp16.py on mmdet's Cascade Mask
# R-CNN: its three box heads are 4conv1fc with SyncBN (BN without distributed training) and a
# GIoU loss on decoded boxes; the 3x recipe of ../_base_/pvt_v2_3x_ms_crop.py; fp32 (or bf16
# with --amp) on a machine without GPU.
_base_ = [
    'mmdet::cascade_rcnn/cascade-mask-rcnn_r50_fpn_1x_coco.py',
    '../_base_/pvt_mm_hooks.py',
    '../_base_/pvt_v2_3x_ms_crop.py',
]
custom_imports = dict(imports=['pvt_mm'], allow_failed_imports=False)

# Checkpoints written atomically; the other pvt_mm hooks come from ../_base_/pvt_mm_hooks.py.
default_hooks = dict(checkpoint=dict(type='pvt_mm.AtomicCheckpointHook'))

# The official three box heads: 4 shared convs and 1 fc, SyncBN, GIoU on decoded boxes.
coder = dict(type='DeltaXYWHBBoxCoder', target_means=[0.0, 0.0, 0.0, 0.0])
box_head = dict(
    type='ConvFCBBoxHead',
    num_shared_convs=4,
    num_shared_fcs=1,
    in_channels=256,
    conv_out_channels=256,
    fc_out_channels=1024,
    roi_feat_size=7,
    num_classes=80,
    reg_class_agnostic=False,
    reg_decoded_bbox=True,
    norm_cfg=dict(type='SyncBN', requires_grad=True),
    loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
    loss_bbox=dict(type='GIoULoss', loss_weight=10.0))
pvt_checkpoint = 'https://github.com/whai362/PVT/releases/download/v2/pvt_v2_b2.pth'
model = dict(
    backbone=dict(
        _delete_=True,
        type='pvt_mm.PVTv2',
        arch='b2',
        drop_path_rate=0.1,
        init_cfg=dict(type='Pretrained', checkpoint=pvt_checkpoint)),
    neck=dict(in_channels=[64, 128, 320, 512]),
    roi_head=dict(bbox_head=[
        dict(box_head, bbox_coder=dict(coder, target_stds=[0.1, 0.1, 0.2, 0.2])),
        dict(box_head, bbox_coder=dict(coder, target_stds=[0.05, 0.05, 0.1, 0.1])),
        dict(box_head, bbox_coder=dict(coder, target_stds=[0.033, 0.033, 0.067, 0.067])),
    ]))

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomFlip', prob=0.5),
    {{_base_.ms_crop_aug}},
    dict(type='PackDetInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))

optim_wrapper = {{_base_.adamw_3x_amp}}
max_epochs = {{_base_.max_epochs_3x}}
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = {{_base_.schedule_3x}}
auto_scale_lr = dict(enable=True, base_batch_size=16)
