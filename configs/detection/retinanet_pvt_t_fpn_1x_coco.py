# RetinaNet + PVT-Tiny, 1x schedule (paper Table 3; recipe of the official PVT detection code).
# FPN 64/128/320/512 -> 256, start level 1, extra convs on input, 5 outputs (mmdet's base).
# AdamW lr 1e-4, weight decay 1e-4; 12 epochs, steps at 8 and 11, linear warm-up over 500
# iterations (mmdet's schedule_1x); shorter side 800, longer at most 1333 (coco_detection).
# 16 images per iteration = 8 GPUs x 2; auto_scale_lr rescales lr for other totals.
_base_ = [
    'mmdet::_base_/models/retinanet_r50_fpn.py',
    'mmdet::_base_/datasets/coco_detection.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    'mmdet::_base_/default_runtime.py',
    '../_base_/pvt_mm_hooks.py',
]
custom_imports = dict(imports=['pvt_mm'], allow_failed_imports=False)

# Checkpoints written atomically; the other pvt_mm hooks come from ../_base_/pvt_mm_hooks.py.
default_hooks = dict(checkpoint=dict(type='pvt_mm.AtomicCheckpointHook'))

pvt_checkpoint = 'https://github.com/whai362/PVT/releases/download/v2/pvt_tiny.pth'
model = dict(
    backbone=dict(
        _delete_=True,
        type='pvt_mm.PVT',
        arch='tiny',
        drop_path_rate=0.1,
        init_cfg=dict(type='Pretrained', checkpoint=pvt_checkpoint)),
    neck=dict(in_channels=[64, 128, 320, 512]))

optim_wrapper = dict(optimizer=dict(_delete_=True, type='AdamW', lr=1e-4, weight_decay=1e-4))
auto_scale_lr = dict(enable=True, base_batch_size=16)
