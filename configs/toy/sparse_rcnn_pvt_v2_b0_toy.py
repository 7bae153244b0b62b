# Sparse R-CNN + PVTv2-b0 on the bundled toy set:
# ../detection/sparse_rcnn_pvt_v2_b2_fpn_300_proposals_crop_mstrain_480-800_3x_coco.py shrunk
# to a CPU. A toy head: 50 learned proposals (the toy images hold at most a few shapes) and 3
# iterative stages instead of 300 and 6, at width 128 (4 attention heads, a 512-wide FFN, a
# 32-wide dynamic conv); the losses, matching costs and box coder are the paper config's.
# PVTv2-b0 with random init, the toy data of ../_base_/toy_coco.py at one scale, AdamW lr
# 2.5e-4 with gradient clipping at 1, 24 epochs.
_base_ = [
    '../detection/sparse_rcnn_pvt_v2_b2_fpn_300_proposals_crop_mstrain_480-800_3x_coco.py',
    '../_base_/toy_coco.py',
]
ch, stages, proposals = 128, 3, 50
model = dict(
    backbone=dict(_delete_=True, type='pvt_mm.PVTv2', arch='b0', drop_path_rate=0.1),
    neck=dict(in_channels=[32, 64, 160, 256], out_channels=ch),
    rpn_head=dict(num_proposals=proposals, proposal_feature_channel=ch),
    roi_head=dict(
        num_stages=stages,
        stage_loss_weights=[1] * stages,
        proposal_feature_channel=ch,
        bbox_roi_extractor=dict(out_channels=ch),
        bbox_head=[
            dict(type='DIIHead', num_classes=3, num_ffn_fcs=2, num_heads=4, num_cls_fcs=1,
                 num_reg_fcs=3, feedforward_channels=4 * ch, in_channels=ch, dropout=0.0,
                 ffn_act_cfg=dict(type='ReLU', inplace=True),
                 dynamic_conv_cfg=dict(type='DynamicConv', in_channels=ch, feat_channels=32,
                                       out_channels=ch, input_feat_shape=7,
                                       act_cfg=dict(type='ReLU', inplace=True),
                                       norm_cfg=dict(type='LN')),
                 loss_bbox=dict(type='L1Loss', loss_weight=5.0),
                 loss_iou=dict(type='GIoULoss', loss_weight=2.0),
                 loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25,
                               loss_weight=2.0),
                 bbox_coder=dict(type='DeltaXYWHBBoxCoder', clip_border=False,
                                 target_means=[0., 0., 0., 0.], target_stds=[0.5, 0.5, 1., 1.]))
            for _ in range(stages)
        ]),
    train_cfg=dict(rcnn=[
        dict(assigner=dict(type='HungarianAssigner', match_costs=[
            dict(type='FocalLossCost', weight=2.0),
            dict(type='BBoxL1Cost', weight=5.0, box_format='xyxy'),
            dict(type='IoUCost', iou_mode='giou', weight=2.0)]),
            sampler=dict(type='PseudoSampler'), pos_weight=1)
        for _ in range(stages)
    ]),
    test_cfg=dict(rcnn=dict(max_per_img=proposals)))

train_dataloader = {{_base_.toy_train_dataloader}}
val_dataloader = {{_base_.toy_val_dataloader}}
test_dataloader = val_dataloader
val_evaluator = {{_base_.toy_evaluator}}
test_evaluator = val_evaluator

max_epochs = 24
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=20),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True,
         milestones=[int(max_epochs * 0.75)], gamma=0.1),
]
optim_wrapper = dict(optimizer=dict(lr=2.5e-4))
auto_scale_lr = dict(enable=False)
default_hooks = dict(logger=dict(interval=5), checkpoint=dict(interval=1, max_keep_ckpts=2))
randomness = dict(seed=0)
