# DINO 4-scale + PVTv2-b0 on the bundled toy set: ../detection/dino_4scale_pvt_v2_b0_12e_coco.py
# shrunk to a CPU. Random init (no downloads, no with_cp), a 256-wide transformer (as DINO's own;
# its decoder fixes it) with 2 encoder and 2 decoder layers (FFN 512, not 2048), 30 queries and 30
# denoising queries, 160x128 images, 3 classes, batch 4, 12 epochs. DINO's denoising queries make it
# localise within a CPU schedule where DETR's toy does not (docs/configs.md gives what it reaches
# per toy seed). The backbone trains at the full learning rate (the COCO config's 0.1x is for an
# ImageNet backbone; this one starts random).
_base_ = ['../detection/dino_4scale_pvt_v2_b0_12e_coco.py']

data_root = 'data/toy/coco/'
metainfo = dict(classes=('rectangle', 'ellipse', 'triangle'),
                palette=[(220, 60, 60), (60, 180, 75), (60, 90, 220)])
img_scale = (160, 128)
dim = 256  # mmdet's DINO decoder encodes reference points at 4 x 128 = 2 x 256 (fixed)
ffn = dict(embed_dims=dim, feedforward_channels=2 * dim, ffn_drop=0.0)
deformable = dict(embed_dims=dim, num_levels=4, dropout=0.0)

model = dict(
    num_queries=30,
    backbone=dict(_delete_=True, type='pvt_mm.PVTv2', arch='b0', out_indices=(1, 2, 3),
                  drop_path_rate=0.1),
    neck=dict(out_channels=dim),
    encoder=dict(num_layers=2, layer_cfg=dict(self_attn_cfg=deformable, ffn_cfg=ffn)),
    decoder=dict(num_layers=2,
                 layer_cfg=dict(self_attn_cfg=dict(embed_dims=dim, num_heads=8, dropout=0.0),
                                cross_attn_cfg=deformable, ffn_cfg=ffn)),
    positional_encoding=dict(num_feats=dim // 2),
    bbox_head=dict(num_classes=3, embed_dims=dim),
    dn_cfg=dict(group_cfg=dict(num_dn_queries=30)),
    test_cfg=dict(max_per_img=30))

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

max_epochs = 12  # the COCO config's 12 epochs, its lr step after the 11th
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
optim_wrapper = dict(
    optimizer=dict(lr=2e-4),
    paramwise_cfg=dict(custom_keys={'backbone': dict(lr_mult=1.0, decay_mult=1.0)}))
param_scheduler = [
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True,
         milestones=[max_epochs - 1], gamma=0.1)
]
auto_scale_lr = dict(enable=False)
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=max_epochs // 2, max_keep_ckpts=2))

randomness = dict(seed=0)
