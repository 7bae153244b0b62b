# DETR + PVT-Tiny on the bundled toy set: ../detection/detr_pvt_s_8x2_50ep_coco.py shrunk to a
# CPU. Random init (no downloads), PVT-Tiny, a 128-wide transformer with 2 encoder and 2 decoder
# layers (FFN 512, no dropout), 20 queries, 160x128 images, 3 classes, 20 epochs (the lr drops
# x0.1 at 2/3, as the paper's 33 of 50). DETR converges slowly: in CPU minutes its loss halves
# but its mAP stays near 0 (measured: 0.015 after 20 epochs, 0.007 after 60; README, Configs).
# The backbone trains at the full learning rate (the paper config's x0.1 is for an ImageNet
# backbone; this one starts from random weights).
_base_ = ['../detection/detr_pvt_s_8x2_50ep_coco.py']

data_root = 'data/toy/coco/'
metainfo = dict(classes=('rectangle', 'ellipse', 'triangle'),
                palette=[(220, 60, 60), (60, 180, 75), (60, 90, 220)])
img_scale = (160, 128)
dim = 128
attn = dict(embed_dims=dim, num_heads=4, dropout=0.0, batch_first=True)
ffn = dict(embed_dims=dim, feedforward_channels=4 * dim, num_fcs=2, ffn_drop=0.0,
           act_cfg=dict(type='ReLU', inplace=True))

model = dict(
    num_queries=20,
    backbone=dict(_delete_=True, type='pvt_mm.PVT', arch='tiny', out_indices=(3, ),
                  drop_path_rate=0.1),
    neck=dict(out_channels=dim),
    encoder=dict(num_layers=2, layer_cfg=dict(self_attn_cfg=attn, ffn_cfg=ffn)),
    decoder=dict(num_layers=2,
                 layer_cfg=dict(self_attn_cfg=attn, cross_attn_cfg=attn, ffn_cfg=ffn)),
    positional_encoding=dict(num_feats=dim // 2),
    bbox_head=dict(num_classes=3, embed_dims=dim),
    test_cfg=dict(max_per_img=20))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomResize', scale=img_scale, ratio_range=(0.8, 1.25), keep_ratio=True),
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

max_epochs = 20
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
optim_wrapper = dict(  # the paper's lr 1e-4 (2e-4 and 5e-4 learned slower here)
    paramwise_cfg=dict(custom_keys={'backbone': dict(lr_mult=1.0, decay_mult=1.0)}))
param_scheduler = [
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True,
         milestones=[int(max_epochs * 2 / 3)], gamma=0.1)
]
auto_scale_lr = dict(enable=False)
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=max_epochs // 2, max_keep_ckpts=2))

randomness = dict(seed=0)
