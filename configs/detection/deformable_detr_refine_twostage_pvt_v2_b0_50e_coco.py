# Deformable DETR (iterative box refinement, two-stage) + PVTv2-b0 on COCO, 50 epochs (no official
# or upstream figure exists for this pair; the PVTv2 paper's Deformable DETR rows use their own
# code). mmdet's deformable_detr/deformable-detr-refine-twostage_r50_16xb2-50e_coco.py with its
# ResNet swapped for PVTv2: the last three stages (strides 8/16/32) into the ChannelMapper, which
# adds the fourth level. Recipe: that file's (AdamW lr 2e-4, weight decay 1e-4, the backbone and
# the deformable attention's sampling offsets and reference points at 0.1x the learning rate,
# gradient clipping at norm 0.1, lr /10 after epoch 40, 16 GPUs x 2 images, unpadded batches:
# pad_size_divisor=1). mmdet has no transformer-backbone Deformable DETR; from its Swin DINO
# (dino/dino-5scale_swin-l_8xb2-12e_coco.py, the same encoder family) comes with_cp=True. No
# weight-decay exception and no fp16 upstream (--amp is the switch); PVT v1's position embeddings
# get no weight decay (./deformable_detr_refine_twostage_pvt_s_50e_coco.py).
_base_ = [
    'mmdet::deformable_detr/deformable-detr-refine-twostage_r50_16xb2-50e_coco.py',
    '../_base_/pvt_mm_hooks.py',
]
custom_imports = dict(imports=['pvt_mm'], allow_failed_imports=False)
default_hooks = dict(checkpoint=dict(type='pvt_mm.AtomicCheckpointHook'))

pvt_checkpoint = 'https://github.com/whai362/PVT/releases/download/v2/pvt_v2_b0.pth'
model = dict(
    backbone=dict(
        _delete_=True,
        type='pvt_mm.PVTv2',
        arch='b0',
        out_indices=(1, 2, 3),
        drop_path_rate=0.1,
        with_cp=True,
        init_cfg=dict(type='Pretrained', checkpoint=pvt_checkpoint)),
    neck=dict(in_channels=[64, 160, 256]))
