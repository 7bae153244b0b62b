# UPerNet + PVTv2-b0 on ADE20K, 160k iterations, 512x512 crops (no official or upstream figure
# exists for this pair). mmseg's UPerNet (decode head on the four levels, FCN auxiliary head on
# the third) with the backbone swapped, and the recipe mmseg gives its transformer backbone in
# the same head (swin/swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512.py):
# AdamW lr 6e-5, betas (0.9, 0.999), weight decay 0.01 with none on norms (and, for PVT v1, on
# the position embeddings, as Swin's absolute ones), 1500 linear warm-up iterations then poly
# decay (power 1), 8 GPUs x 2 images (auto_scale_lr rescales for other totals). That file sets no
# backbone lr multiplier, no with_cp, no gradient clipping and no fp16: neither does this one
# (--amp is the switch). drop_path_rate 0.1 is PVT's segmentation value (Swin-T's is 0.3).
_base_ = [
    'mmseg::upernet/upernet_r50_4xb4-160k_ade20k-512x512.py',
    '../_base_/pvt_mm_hooks.py',
]
custom_imports = dict(imports=['pvt_mm'], allow_failed_imports=False)
default_hooks = dict(checkpoint=dict(type='pvt_mm.AtomicCheckpointHook'))

pvt_checkpoint = 'https://github.com/whai362/PVT/releases/download/v2/pvt_v2_b0.pth'
model = dict(
    pretrained=None,  # the base's ResNet weights are not this backbone's
    backbone=dict(
        _delete_=True,
        type='pvt_mm.PVTv2',
        arch='b0',
        drop_path_rate=0.1,
        init_cfg=dict(type='Pretrained', checkpoint=pvt_checkpoint)),
    decode_head=dict(in_channels=[32, 64, 160, 256]),
    auxiliary_head=dict(in_channels=160))

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=6e-5, betas=(0.9, 0.999), weight_decay=0.01),
    paramwise_cfg=dict(custom_keys={'norm': dict(decay_mult=0.0),
                                    'pos_embed': dict(decay_mult=0.0)}))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=1500, end=160000, by_epoch=False),
]
train_dataloader = dict(batch_size=2)
val_dataloader = dict(batch_size=1)
test_dataloader = val_dataloader
auto_scale_lr = dict(enable=True, base_batch_size=16)
