# DETR + PVT-Small, the paper's convolution-free detector (Table 6: 34.7 AP).
# 50 epochs, AdamW lr 1e-4 divided by 10 at epoch 33, random flip and random scale; the
# rest (transformer, Hungarian matching, backbone lr x0.1, grad clip 0.1) is mmdet's DETR.
# PVT's F4 (stride 32, 512 channels) feeds DETR through mmdet's ChannelMapper.
_base_ = ['mmdet::detr/detr_r50_8xb2-150e_coco.py', '../_base_/pvt_mm_hooks.py']
custom_imports = dict(imports=['pvt_mm'], allow_failed_imports=False)

# Checkpoints written atomically; the other pvt_mm hooks come from ../_base_/pvt_mm_hooks.py.
default_hooks = dict(checkpoint=dict(type='pvt_mm.AtomicCheckpointHook'))

model = dict(
    backbone=dict(
        _delete_=True,
        type='pvt_mm.PVT',
        arch='small',
        out_indices=(3, ),
        drop_path_rate=0.1,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://github.com/whai362/PVT/releases/download/v2/pvt_small.pth')),
    neck=dict(in_channels=[512]))

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomChoiceResize',
         scales=[(1333, s) for s in range(480, 801, 32)], keep_ratio=True),
    dict(type='PackDetInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))

max_epochs = 50
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[33], gamma=0.1)
]
auto_scale_lr = dict(enable=True, base_batch_size=16)
