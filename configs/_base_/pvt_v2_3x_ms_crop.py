# The 3x recipe of the official PVTv2 detectors trained with multi-scale and crop (Mask R-CNN
# 3x, Cascade Mask R-CNN, ATSS, GFL), as variables the configs take with {{_base_.name}}:
# mmengine refuses keys (optim_wrapper, param_scheduler) that two bases both define.
# ms_crop_aug: DETR's augmentation, as mmdet's own Sparse R-CNN crop config writes it: either a
# shorter side from 480 to 800 (longer at most 1333), or a shorter side from 400 to 600, a
# random 384-600 crop, then 480 to 800.
ms_scales = [(480, 1333), (512, 1333), (544, 1333), (576, 1333), (608, 1333), (640, 1333),
             (672, 1333), (704, 1333), (736, 1333), (768, 1333), (800, 1333)]
ms_crop_aug = dict(
    type='RandomChoice',
    transforms=[
        [dict(type='RandomChoiceResize', scales=ms_scales, keep_ratio=True)],
        [
            dict(type='RandomChoiceResize', scales=[(400, 1333), (500, 1333), (600, 1333)],
                 keep_ratio=True),
            dict(type='RandomCrop', crop_type='absolute_range', crop_size=(384, 600),
                 allow_negative_crop=True),
            dict(type='RandomChoiceResize', scales=ms_scales, keep_ratio=True),
        ],
    ])
# AdamW lr 1e-4 (16 images), weight decay 0.05 but none on the norms (the official
# paramwise custom_keys 'norm'); 36 epochs, steps at 27 and 33, 500-iteration linear warm-up.
adamw_3x = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(custom_keys={'norm': dict(decay_mult=0.0)}))
# The official Cascade, ATSS and GFL configs train in fp16: mixed precision on a GPU (fp32,
# or bf16 with --amp, without one).
adamw_3x_amp = dict(adamw_3x, type='AmpOptimWrapper', loss_scale='dynamic')
max_epochs_3x = 36
schedule_3x = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=36, by_epoch=True, milestones=[27, 33], gamma=0.1),
]
