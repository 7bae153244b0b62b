# PVT-Tiny + Trans2Seg on the bundled toy set in the ADE20K layout: the pipeline of
# ../segmentation/trans2seg_pvt_s_ade20k_40k.py shrunk to a CPU. Random init (no downloads),
# PVT-Tiny, Trans2Seg's smaller published head (width 128, depth 1, 4 heads, MLP ratio 2,
# mask width 32), 160x128 images (F4 is 5x4 tokens, the head's reference grid), BN instead
# of SyncBN; data (the background and 3 shape classes) as ./fpn_pvt_t_toy.py, 400 iterations
# at lr 1e-3 (with the background a class, 200 at 5e-4 reached mIoU 36.0 on the toy set of
# seed 0, 400 at 1e-3 88.7).
_base_ = ['./fpn_pvt_t_toy.py']

norm_cfg = dict(type='BN', requires_grad=True)

model = dict(
    neck=None,
    decode_head=dict(
        _delete_=True,
        type='pvt_mm.Trans2SegHead',
        in_channels=[64, 512],
        in_index=[0, 3],
        input_transform='multiple_select',
        channels=32,
        embed_dim=128,
        depth=1,
        num_heads=4,
        mlp_ratio=2.0,
        token_grid=(4, 5),
        num_classes=4,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)))
optim_wrapper = dict(
    optimizer=dict(lr=1e-3),
    paramwise_cfg=dict(custom_keys={
        'decode_head.pos_embed': dict(decay_mult=0.0),
        'decode_head.cls_token': dict(decay_mult=0.0),
        'decode_head.class_embed': dict(decay_mult=0.0)}))

max_iters = 400
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [dict(type='PolyLR', power=0.9, eta_min=0.0, begin=0, end=max_iters,
                        by_epoch=False)]
default_hooks = dict(checkpoint=dict(interval=max_iters // 2))
