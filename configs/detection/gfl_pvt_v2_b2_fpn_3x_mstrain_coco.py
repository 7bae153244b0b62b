# GFL + PVTv2-b2, 3x + multi-scale and crop, mixed precision (official COCO box AP
# 50.2, not reproduced here): the official detection/configs/gfl_pvt_v2_b2_fpn_3x_mstrain_fp16.py
# on mmdet's GFL (its head, assigner and test settings are the official ones); the 3x
# recipe of ../_base_/pvt_v2_3x_ms_crop.py; fp32 (or bf16 with --amp) without a GPU.
_base_ = [
    'mmdet::gfl/gfl_r50_fpn_1x_coco.py',
    '../_base_/pvt_mm_hooks.py',
    '../_base_/pvt_v2_3x_ms_crop.py',
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

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='LoadAnnotations', with_bbox=True),
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
