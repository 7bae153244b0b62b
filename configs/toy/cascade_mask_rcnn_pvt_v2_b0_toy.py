# Cascade Mask R-CNN + PVTv2-b0 on the bundled toy set:
# ../detection/cascade_mask_rcnn_pvt_v2_b2_fpn_3x_mstrain_coco.py (its three 4conv1fc GIoU box
# heads, BN without distributed training) shrunk to a CPU as the toy Mask R-CNN is: PVTv2-b0
# with random init, 128-channel neck and heads (2 shared convs in the box heads), fewer
# proposals and sampled RoIs, the toy data of ../_base_/toy_coco.py at one scale, 12 epochs at
# lr 1e-4, fp32.
_base_ = ['../detection/cascade_mask_rcnn_pvt_v2_b2_fpn_3x_mstrain_coco.py',
          '../_base_/toy_coco.py']
ch = 128
# The paper config's three box heads at the toy's width, 2 shared convs instead of 4.
toy_box_head = dict(
    type='ConvFCBBoxHead', num_shared_convs=2, num_shared_fcs=1, in_channels=ch,
    conv_out_channels=ch, fc_out_channels=256, roi_feat_size=7, num_classes=3,
    reg_class_agnostic=False, reg_decoded_bbox=True, norm_cfg=dict(type='BN', requires_grad=True),
    loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
    loss_bbox=dict(type='GIoULoss', loss_weight=10.0))
toy_stds = ([0.1, 0.1, 0.2, 0.2], [0.05, 0.05, 0.1, 0.1], [0.033, 0.033, 0.067, 0.067])
model = dict(
    backbone=dict(_delete_=True, type='pvt_mm.PVTv2', arch='b0', drop_path_rate=0.1),
    neck=dict(in_channels=[32, 64, 160, 256], out_channels=ch),
    rpn_head=dict(in_channels=ch, feat_channels=ch),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=ch),
        bbox_head=[dict(toy_box_head, bbox_coder=dict(type='DeltaXYWHBBoxCoder',
                                                      target_means=[0.0] * 4, target_stds=s))
                   for s in toy_stds],
        mask_roi_extractor=dict(out_channels=ch),
        mask_head=dict(num_convs=2, in_channels=ch, conv_out_channels=ch, num_classes=3)),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=500, max_per_img=200),
        # mmdet's three stages (IoU 0.5, 0.6, 0.7) with 64 sampled RoIs instead of 512.
        rcnn=[dict(assigner=dict(type='MaxIoUAssigner', pos_iou_thr=iou, neg_iou_thr=iou,
                                 min_pos_iou=iou, match_low_quality=False, ignore_iof_thr=-1),
                   sampler=dict(type='RandomSampler', num=64, pos_fraction=0.25,
                                neg_pos_ub=-1, add_gt_as_proposals=True),
                   mask_size=28, pos_weight=-1, debug=False)
              for iou in (0.5, 0.6, 0.7)]),
    test_cfg=dict(rpn=dict(nms_pre=500, max_per_img=100)))

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
                     optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.05),
                     paramwise_cfg=dict(custom_keys={'norm': dict(decay_mult=0.0)}),
                     clip_grad=dict(max_norm=5.0))
auto_scale_lr = dict(enable=False)
default_hooks = dict(logger=dict(interval=5), checkpoint=dict(interval=1, max_keep_ckpts=2))
randomness = dict(seed=0)
