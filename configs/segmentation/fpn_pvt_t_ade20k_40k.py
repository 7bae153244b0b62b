# Semantic FPN + PVT-Tiny on ADE20K (paper Table 5; recipe of the official PVT segmentation code).
# FPN with 4 outputs, FPN head with 128 channels, 150 classes (mmseg's fpn_r50 base).
# AdamW lr 2e-4, weight decay 1e-4, poly decay with power 0.9; 40k iterations at 32 images
# per iteration = 8 GPUs x 4 (the paper's 80k at 16), rescaled by auto_scale_lr for other
# totals; random resize with ratio 0.5-2.0 and 512x512 crops; test at shorter side 512.
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
pvt_checkpoint = 'https://github.com/whai362/PVT/releases/download/v2/pvt_tiny.pth'
model = dict(
    data_preprocessor=dict(size=crop_size),
    pretrained=None,
    backbone=dict(
        _delete_=True,
        type='pvt_mm.PVT',
        arch='tiny',
        drop_path_rate=0.1,
        init_cfg=dict(type='Pretrained', checkpoint=pvt_checkpoint)),
    neck=dict(in_channels=[64, 128, 320, 512]),
    decode_head=dict(num_classes=150))

train_dataloader = dict(batch_size=4)
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-4, weight_decay=1e-4),
    clip_grad=None)
param_scheduler = [
    dict(type='PolyLR', power=0.9, eta_min=0.0, begin=0, end=40000, by_epoch=False)
]
auto_scale_lr = dict(enable=True, base_batch_size=32)
