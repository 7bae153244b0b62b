# Semantic FPN + PVT-Tiny on the bundled toy set in the ADE20K layout (label PNGs with 0 =
# background): ../segmentation/fpn_pvt_t_ade20k_40k.py shrunk to a CPU: random init (no
# downloads), 160x128 images, BN instead of SyncBN, and 4 classes: the background is learned
# as a class (reduce_zero_label=False), so predictions and drawings name it; ADE20K's configs
# keep ignoring label 0, its "other".
_base_ = ['../segmentation/fpn_pvt_t_ade20k_40k.py']

data_root = 'data/toy/ade/ADEChallengeData2016'
metainfo = dict(classes=('background', 'rectangle', 'ellipse', 'triangle'),
                palette=[[0, 0, 0], [220, 60, 60], [60, 180, 75], [60, 90, 220]])
img_scale = (160, 128)
norm_cfg = dict(type='BN', requires_grad=True)

model = dict(
    data_preprocessor=dict(size=None, size_divisor=32),
    # The paper config's backbone without its ImageNet checkpoint: random init, no download.
    backbone=dict(_delete_=True, type='pvt_mm.PVT', arch='tiny', drop_path_rate=0.1),
    decode_head=dict(num_classes=4, norm_cfg=norm_cfg))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=False),
    dict(type='RandomResize', scale=img_scale, ratio_range=(0.8, 1.25), keep_ratio=True),
    dict(type='RandomCrop', crop_size=(128, 160), cat_max_ratio=1.0),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=False),
    dict(type='PackSegInputs'),
]
dataset = dict(type='BaseSegDataset', data_root=data_root, metainfo=metainfo,
               img_suffix='.jpg', seg_map_suffix='.png', reduce_zero_label=False)
train_dataloader = dict(
    batch_size=4, num_workers=2, persistent_workers=False,
    dataset=dict(_delete_=True, **dataset, pipeline=train_pipeline,
                 data_prefix=dict(img_path='images/training', seg_map_path='annotations/training')))
val_dataloader = dict(
    batch_size=1, num_workers=2, persistent_workers=False,
    dataset=dict(_delete_=True, **dataset, pipeline=test_pipeline,
                 data_prefix=dict(img_path='images/validation',
                                  seg_map_path='annotations/validation')))
test_dataloader = val_dataloader

max_iters = 200
lr = 5e-4
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
optim_wrapper = dict(optimizer=dict(lr=lr))
param_scheduler = [dict(type='PolyLR', power=0.9, eta_min=0.0, begin=0, end=max_iters,
                        by_epoch=False)]
auto_scale_lr = dict(enable=False)
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=max_iters // 2, max_keep_ckpts=2))

randomness = dict(seed=0)
