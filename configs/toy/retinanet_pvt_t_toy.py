# RetinaNet + PVT-Tiny on the bundled toy set (tools/data/make_toy_data.py): the COCO recipe of
# ../detection/retinanet_pvt_t_fpn_1x_coco.py shrunk to train and evaluate on a CPU in minutes.
# Random init (no downloads), 160x128 images, 3 shape classes, batch 4, and a 128-channel
# neck and head with 2 stacked convs (the 256-channel head's convolutions dominate on a CPU).
_base_ = ['../detection/retinanet_pvt_t_fpn_1x_coco.py']

data_root = 'data/toy/coco/'
metainfo = dict(classes=('rectangle', 'ellipse', 'triangle'),
                palette=[(220, 60, 60), (60, 180, 75), (60, 90, 220)])
img_scale = (160, 128)

model = dict(
    # The paper config's backbone without its ImageNet checkpoint: random init, no download.
    backbone=dict(_delete_=True, type='pvt_mm.PVT', arch='tiny', drop_path_rate=0.1),
    neck=dict(out_channels=128),
    bbox_head=dict(num_classes=3, in_channels=128, feat_channels=128, stacked_convs=2))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(
    batch_size=4, num_workers=2, persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=metainfo, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=4, num_workers=2, persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=metainfo, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator

max_epochs = 12
lr = 3e-4
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=20),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True,
         milestones=[int(max_epochs * 0.75)], gamma=0.1),
]
optim_wrapper = dict(optimizer=dict(lr=lr), clip_grad=dict(max_norm=5.0))
auto_scale_lr = dict(enable=False)
default_hooks = dict(
    logger=dict(interval=5),
    checkpoint=dict(interval=1, max_keep_ckpts=2))

randomness = dict(seed=0)
