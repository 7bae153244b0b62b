# GFL + PVTv2-b0 on the bundled toy set: ../detection/gfl_pvt_v2_b2_fpn_3x_mstrain_coco.py
# (its head, assigner and test settings) shrunk to a CPU as the toy RetinaNet is: PVTv2-b0
# with random init, a 128-channel neck and head with 2 stacked convs, the toy data of
# ../_base_/toy_coco.py at one scale, 12 epochs at lr 3e-4, fp32.
_base_ = ['../detection/gfl_pvt_v2_b2_fpn_3x_mstrain_coco.py', '../_base_/toy_coco.py']

model = dict(
    backbone=dict(_delete_=True, type='pvt_mm.PVTv2', arch='b0', drop_path_rate=0.1),
    neck=dict(in_channels=[32, 64, 160, 256], out_channels=128),
    bbox_head=dict(num_classes=3, in_channels=128, feat_channels=128, stacked_convs=2))

train_dataloader = {{_base_.toy_train_dataloader}}
val_dataloader = {{_base_.toy_val_dataloader}}
test_dataloader = val_dataloader
val_evaluator = {{_base_.toy_evaluator}}
test_evaluator = val_evaluator

max_epochs = 12
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=20),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True,
         milestones=[int(max_epochs * 0.75)], gamma=0.1),
]
optim_wrapper = dict(_delete_=True, type='OptimWrapper',
                     optimizer=dict(type='AdamW', lr=3e-4, weight_decay=0.05),
                     paramwise_cfg=dict(custom_keys={'norm': dict(decay_mult=0.0)}),
                     clip_grad=dict(max_norm=5.0))
auto_scale_lr = dict(enable=False)
default_hooks = dict(logger=dict(interval=5), checkpoint=dict(interval=1, max_keep_ckpts=2))
randomness = dict(seed=0)
