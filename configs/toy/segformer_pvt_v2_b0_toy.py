# SegFormer's all-MLP head + PVTv2-b0 on the bundled toy set:
# ../segmentation/segformer_pvt_v2_b0_ade20k_160k.py shrunk to a CPU. Random init (no
# downloads), BN instead of SyncBN, 4 classes (the background one of them), 160x128 images,
# batch 4, 200 iterations. The recipe's optimizer and rules (AdamW, the head at 10x, no decay on
# norms) with a learning rate for a random start (3e-4, the head 3e-3; 6e-5 is for an ImageNet
# backbone over 160k iterations), 20 warm-up iterations then poly decay.
_base_ = ['../segmentation/segformer_pvt_v2_b0_ade20k_160k.py', '../_base_/toy_ade.py']
model = dict(
    data_preprocessor=dict(size=None, size_divisor=32),
    backbone=dict(_delete_=True, type='pvt_mm.PVTv2', arch='b0', drop_path_rate=0.1),
    decode_head=dict(num_classes=4, norm_cfg=dict(type='BN', requires_grad=True)))

train_dataloader = {{_base_.toy_ade_train_dataloader}}
val_dataloader = {{_base_.toy_ade_val_dataloader}}
test_dataloader = val_dataloader

max_iters = 200
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
optim_wrapper = dict(optimizer=dict(lr=3e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=20),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=20, end=max_iters, by_epoch=False),
]
auto_scale_lr = dict(enable=False)
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=max_iters // 2, max_keep_ckpts=2))

randomness = dict(seed=0)
