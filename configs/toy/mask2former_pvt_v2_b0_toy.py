# Mask2Former (mmdet, instance) + PVTv2-b0 on the bundled toy set:
# ../detection/mask2former_pvt_v2_b0_lsj_50e_coco.py shrunk to a CPU. Random init (no downloads),
# 3 classes, 160x128 images (no 1024x1024 jitter crops), batch 4; a lighter head: 20 queries
# (100 upstream), 3 decoder layers (9), 2 pixel-decoder encoder layers (6), FFN 512 (2048 and
# 1024), 2,048 sampled points per mask (12,544). The recipe's optimizer and rules (AdamW, no
# decay on norms and embeddings, clipping at 0.01) with the backbone at the full learning rate
# (it starts random; its norms keep the 0.1x); iterations, not epochs, as the COCO config.
_base_ = ['../detection/mask2former_pvt_v2_b0_lsj_50e_coco.py', '../_base_/toy_coco.py']
num_classes = 3
ffn = dict(feedforward_channels=512)
model = dict(
    data_preprocessor=dict(batch_augments=None),
    backbone=dict(_delete_=True, type='pvt_mm.PVTv2', arch='b0', drop_path_rate=0.1),
    panoptic_head=dict(
        num_things_classes=num_classes,
        num_queries=20,
        pixel_decoder=dict(encoder=dict(num_layers=2, layer_cfg=dict(ffn_cfg=ffn))),
        transformer_decoder=dict(num_layers=3, layer_cfg=dict(ffn_cfg=ffn)),
        loss_cls=dict(class_weight=[1.0] * num_classes + [0.1])),
    panoptic_fusion_head=dict(num_things_classes=num_classes),
    train_cfg=dict(num_points=2048),
    test_cfg=dict(max_per_image=20))

train_dataloader = {{_base_.toy_train_dataloader}}
val_dataloader = {{_base_.toy_val_dataloader}}
test_dataloader = val_dataloader
val_evaluator = {{_base_.toy_evaluator}}
test_evaluator = val_evaluator

max_iters = 400
train_cfg = dict(max_iters=max_iters, val_interval=max_iters, dynamic_intervals=None)
optim_wrapper = dict(
    optimizer=dict(lr=3e-4),
    paramwise_cfg=dict(custom_keys={'backbone': dict(lr_mult=1.0, decay_mult=1.0)}))
param_scheduler = dict(milestones=[int(max_iters * 0.9)], end=max_iters)
auto_scale_lr = dict(enable=False)
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=max_iters // 2, max_keep_ckpts=2))

randomness = dict(seed=0)
