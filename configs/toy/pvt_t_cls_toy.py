# PVT-Tiny classifier on the bundled toy classification set (tools/data/make_toy_data.py:
# one shape per 64x64 image, 3 classes, ImageNet folder layout): ../classification/
# pvt_t_8xb128_in1k.py shrunk to a CPU. Random init (no downloads), 64x64 inputs, batch 16,
# 30 epochs; no Mixup/CutMix, RandAugment or erasing (they slow learning on 64 images).
_base_ = ['../classification/pvt_t_8xb128_in1k.py']

data_root = 'data/toy/imagenet'
size = 64
model = dict(backbone=dict(num_classes=3), train_cfg=None)
data_preprocessor = dict(num_classes=3)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=size, crop_ratio_range=(0.5, 1.0), backend='pillow',
         interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=size, edge='short', backend='pillow', interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=size),
    dict(type='PackInputs'),
]
dataset = dict(type='CustomDataset', data_root=data_root)
train_dataloader = dict(
    batch_size=16, num_workers=2, persistent_workers=False,
    dataset=dict(_delete_=True, **dataset, data_prefix='train', pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=16, num_workers=2, persistent_workers=False,
    dataset=dict(_delete_=True, **dataset, data_prefix='val', pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_evaluator = val_evaluator

max_epochs = 30
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
optim_wrapper = dict(optimizer=dict(lr=3e-4))  # 1e-3 plateaued at 56% top-1
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-2, by_epoch=True, end=2, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=True, begin=2),
]
auto_scale_lr = dict(enable=False)
default_hooks = dict(
    logger=dict(interval=4),
    checkpoint=dict(interval=max_epochs // 2, max_keep_ckpts=2))

randomness = dict(seed=0)
