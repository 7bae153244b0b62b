# Mask2Former (instance segmentation) + PVTv2-b0 on COCO, large-scale jitter, 50 epochs (no
# official or upstream figure exists for this pair). mmdet's
# mask2former/mask2former_r50_8xb2-lsj-50e_coco.py with its ResNet swapped for PVTv2: all four
# levels (strides 4/8/16/32) into the pixel decoder. Recipe: that file's (AdamW lr 1e-4, weight
# decay 0.05, the backbone at 0.1x the learning rate, no decay on norms nor on the query and level
# embeddings, gradient clipping at norm 0.01, 368,750 iterations with lr /10 at 327,778 and
# 355,092, 8 GPUs x 2 images, 1024x1024 crops), and what its Swin variant
# (mask2former_swin-t-p4-w7-224_8xb2-lsj-50e_coco.py) adds for a transformer backbone: every norm
# of the backbone (and PVT v1's position embeddings) at 0.1x lr without decay
# (../_base_/pvt_mask2former_keys.py), init_cfg=None on the model. That file keeps with_cp=False
# and sets no fp16 (--amp is the switch); drop_path_rate is PVTv2's detection 0.1 (Swin-T's 0.3).
_base_ = [
    'mmdet::mask2former/mask2former_r50_8xb2-lsj-50e_coco.py',
    '../_base_/pvt_mm_hooks.py',
    '../_base_/pvt_mask2former_keys.py',
]
custom_imports = dict(imports=['pvt_mm'], allow_failed_imports=False)
default_hooks = dict(checkpoint=dict(type='pvt_mm.AtomicCheckpointHook'))

pvt_checkpoint = 'https://github.com/whai362/PVT/releases/download/v2/pvt_v2_b0.pth'
model = dict(
    backbone=dict(
        _delete_=True,
        type='pvt_mm.PVTv2',
        arch='b0',
        drop_path_rate=0.1,
        init_cfg=dict(type='Pretrained', checkpoint=pvt_checkpoint)),
    panoptic_head=dict(in_channels=[32, 64, 160, 256]),
    init_cfg=None)
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={{_base_.pvt_backbone_keys}}))
# mmdet's instance config sets data_prefix=dict(img=...) over its panoptic base's, whose seg
# prefix (annotations/panoptic_*2017/) then stays in the merged config though instance
# training reads no panoptic PNGs; it is dropped here, so that a COCO copy without the
# panoptic annotations passes pvt_mm's check of the data files.
train_dataloader = dict(dataset=dict(data_prefix=dict(_delete_=True, img='train2017/')))
val_dataloader = dict(dataset=dict(data_prefix=dict(_delete_=True, img='val2017/')))
test_dataloader = val_dataloader
