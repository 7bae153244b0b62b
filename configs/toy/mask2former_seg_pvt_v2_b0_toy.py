# Mask2Former (mmseg) + PVTv2-b0 on the bundled toy set:
# ../segmentation/mask2former_pvt_v2_b0_ade20k_160k.py shrunk to a CPU. Random init (no
# downloads), 4 classes (the background one of them), 160x128 images, batch 4; a lighter head:
# 20 queries (100 upstream), 3 decoder layers (9), 2 pixel-decoder encoder layers (6), FFN 512
# (2048 and 1024), 2,048 sampled points per mask (12,544). The recipe's optimizer and rules
# (AdamW, the backbone at 0.1x the learning rate, no decay on norms and embeddings, clipping at
# 0.01) with the backbone at the full learning rate (it starts random; its norms keep the 0.1x).
_base_ = ['../segmentation/mask2former_pvt_v2_b0_ade20k_160k.py', '../_base_/toy_ade.py']
num_classes = 4
ffn = dict(feedforward_channels=512)
model = dict(
    data_preprocessor=dict(size=None, size_divisor=32),
    backbone=dict(_delete_=True, type='pvt_mm.PVTv2', arch='b0', drop_path_rate=0.1),
    decode_head=dict(
        num_classes=num_classes,
        num_queries=20,
        pixel_decoder=dict(encoder=dict(num_layers=2, layer_cfg=dict(ffn_cfg=ffn))),
        transformer_decoder=dict(num_layers=3, layer_cfg=dict(ffn_cfg=ffn)),
        loss_cls=dict(class_weight=[1.0] * num_classes + [0.1]),
        train_cfg=dict(num_points=2048)))

train_dataloader = {{_base_.toy_ade_train_dataloader}}
val_dataloader = {{_base_.toy_ade_val_dataloader}}
test_dataloader = val_dataloader

max_iters = 200
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
optim_wrapper = dict(
    optimizer=dict(lr=3e-4),
    paramwise_cfg=dict(custom_keys={'backbone': dict(lr_mult=1.0, decay_mult=1.0)}))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=20),
    dict(type='PolyLR', eta_min=0.0, power=0.9, begin=20, end=max_iters, by_epoch=False),
]
auto_scale_lr = dict(enable=False)
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=max_iters // 2, max_keep_ckpts=2, save_best=None))

randomness = dict(seed=0)
