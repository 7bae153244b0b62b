# PVT-Small + Trans2Seg on ADE20K (paper Table 7: 32.1 M, 31.6 GFLOPs, 42.6 mIoU), the paper's
# pure-Transformer segmentation pipeline. Section 5.4 trains it with Section 5.3's recipe, 40k
# iterations: the Semantic FPN config's data (random resize 0.5-2.0, 512x512 crops, whole-image
# test at shorter side 512), backbone and poly decay, with the paper's AdamW lr 1e-4 at 16
# images per iteration (4 GPUs x 4; auto_scale_lr rescales other totals). The head is
# Trans2Seg's "small" one (width 256, depth 4, 8 heads, MLP ratio 3, mask width 64) reading
# PVT's F1 and F4; see pvt_mm/run/trans2seg_head.py for what differs from Trans2Seg's code
# (the attention-map refinement runs at a 16x16 reference grid, so any test size works).
_base_ = ['./fpn_pvt_s_ade20k_40k.py']

crop_size = (512, 512)
model = dict(
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
        norm_cfg=dict(type='SyncBN', requires_grad=True),
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)))

optim_wrapper = dict(
    optimizer=dict(lr=1e-4),
    # Trans2Seg keeps its position embedding, class token and class queries out of decay.
    paramwise_cfg=dict(custom_keys={
        'decode_head.pos_embed': dict(decay_mult=0.0),
        'decode_head.cls_token': dict(decay_mult=0.0),
        'decode_head.class_embed': dict(decay_mult=0.0)}))
auto_scale_lr = dict(base_batch_size=16)
