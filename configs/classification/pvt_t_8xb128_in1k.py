# PVT-Tiny ImageNet classifier (paper Section 5.1, Table 2: 13.2 M, 1.9 GFLOPs, 75.1 top-1, the
# official result, not reproduced here). The official recipe (DeiT's): 300 epochs at 8 GPUs x
# 128 images, AdamW lr 5e-4 x 1024 / 512 = 1e-3 (auto_scale_lr rescales other totals), weight
# decay 0.05 (none on the class token, position embeddings, norms and biases), cosine decay to
# 1e-5 after 5 warm-up epochs, label smoothing 0.1, Mixup 0.8 / CutMix 1.0, RandAugment m9 mstd
# 0.5, random erasing 0.25, bicubic resize, stochastic depth 0.1; test at 224 after a 256 resize.
# The classifier is pvt_mm.PVT with num_classes (class token, final norm and linear head inside
# it, so the official checkpoints load whole); mmpretrain's ClsHead adds the loss and metrics.
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs64_swin_224.py',
    'mmpretrain::_base_/schedules/imagenet_bs1024_adamw_swin.py',
    'mmpretrain::_base_/default_runtime.py',
    '../_base_/pvt_mm_hooks.py',
]
custom_imports = dict(imports=['pvt_mm'], allow_failed_imports=False)

# Checkpoints written atomically; the other pvt_mm hooks come from ../_base_/pvt_mm_hooks.py.
default_hooks = dict(checkpoint=dict(type='pvt_mm.AtomicCheckpointHook'))

model = dict(
    type='ImageClassifier',
    backbone=dict(type='pvt_mm.PVT', arch='tiny', num_classes=1000, drop_path_rate=0.1),
    neck=None,
    head=dict(type='ClsHead',
              loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original')),
    train_cfg=dict(augments=[dict(type='Mixup', alpha=0.8), dict(type='CutMix', alpha=1.0)]))

train_dataloader = dict(batch_size=128)
val_dataloader = dict(batch_size=128)
test_dataloader = val_dataloader

optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=5e-4 * 1024 / 512, weight_decay=0.05),
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        flat_decay_mult=0.0,
        custom_keys={'cls_token': dict(decay_mult=0.0), 'pos_embed': dict(decay_mult=0.0)}))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, end=5, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=True, begin=5),
]
train_cfg = dict(max_epochs=300)
auto_scale_lr = dict(enable=True, base_batch_size=1024)
