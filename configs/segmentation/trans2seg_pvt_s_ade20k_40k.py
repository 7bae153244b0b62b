# PVT-Small + Trans2Seg on ADE20K (paper Table 7: 32.1 M, 31.6 GFLOPs, 42.6 mIoU), the paper's
# pure-Transformer segmentation pipeline. Recipe of Section 5.3 with 40k iterations: AdamW lr
# 1e-4 at 16 images per iteration (4 GPUs x 4; auto_scale_lr rescales other totals), poly decay
# with power 0.9, random resize (ratio 0.5-2.0) and 512x512 crops, single-scale test at
# shorter side 512 (whole image). The head is Trans2Seg's "small" one (width 256, depth 4,
# 8 heads, MLP ratio 3, mask width 64) reading PVT's F1 and F4; see pvt_mm/models/trans2seg_head.py
# for what differs from Trans2Seg's code (the attention-map refinement runs at a 16x16 reference
# grid, so any test size works).
_base_ = [
    'mmseg::_base_/models/fpn_r50.py',
    'mmseg::_base_/datasets/ade20k.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_40k.py',
    '../_base_/pvt_mm_hooks.py',
]
custom_imports = dict(imports=['pvt_mm'], allow_failed_imports=False)

# Checkpoints written atomically; the other pvt_mm hooks come from ../_base_/pvt_mm_hooks.py.
default_hooks = dict(checkpoint=dict(type='pvt_mm.AtomicCheckpointHook'))

crop_size = (512, 512)
norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    data_preprocessor=dict(size=crop_size),
    pretrained=None,
    backbone=dict(
        _delete_=True,
        type='pvt_mm.PVT',
        arch='small',
        drop_path_rate=0.1,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://github.com/whai362/PVT/releases/download/v2/pvt_small.pth')),
    neck=None,
    decode_head=dict(
        _delete_=True,
        type='pvt_mm.Trans2SegHead',
        in_channels=[64, 512],
        in_index=[0, 3],
        input_transform='multiple_select',
        channels=64,
        embed_dim=256,
        depth=4,
        num_heads=8,
        mlp_ratio=3.0,
        token_grid=(crop_size[0] // 32, crop_size[1] // 32),
        num_classes=150,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)))

train_dataloader = dict(batch_size=4)
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, weight_decay=1e-4),
    # Trans2Seg keeps its position embedding, class token and class queries out of decay.
    paramwise_cfg=dict(custom_keys={
        'decode_head.pos_embed': dict(decay_mult=0.0),
        'decode_head.cls_token': dict(decay_mult=0.0),
        'decode_head.class_embed': dict(decay_mult=0.0)}),
    clip_grad=None)
param_scheduler = [
    dict(type='PolyLR', power=0.9, eta_min=0.0, begin=0, end=40000, by_epoch=False)
]
auto_scale_lr = dict(enable=True, base_batch_size=16)
