# Mask R-CNN + PVTv2-b2, 3x schedule with DETR's multi-scale and crop augmentation (the
# official detection/configs/mask_rcnn_pvt_v2_b2_fpn_3x_mstrain.py; no official COCO figure):
# ./mask_rcnn_pvt_v2_b2_fpn_1x_coco.py's model, the 3x recipe of ../_base_/pvt_v2_3x_ms_crop.py
# (AdamW lr 1e-4, weight decay 0.05 but none on norms, 36 epochs, steps at 27 and 33).
_base_ = ['./mask_rcnn_pvt_v2_b2_fpn_1x_coco.py', '../_base_/pvt_v2_3x_ms_crop.py']
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomFlip', prob=0.5),
    {{_base_.ms_crop_aug}},
    dict(type='PackDetInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))

optim_wrapper = {{_base_.adamw_3x}}
max_epochs = {{_base_.max_epochs_3x}}
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = {{_base_.schedule_3x}}
auto_scale_lr = dict(enable=True, base_batch_size=16)
