# DINO 4-scale + PVTv2-b0 on COCO, 12 epochs (no official or upstream figure exists for this
# pair). mmdet's dino/dino-4scale_r50_8xb2-12e_coco.py with its ResNet swapped for PVTv2: the last
# three stages (strides 8/16/32) into the ChannelMapper, which adds the fourth level (stride 64)
# as mmdet's 4-scale DINO does. Recipe: that file's (AdamW lr 1e-4, weight decay 1e-4, the
# backbone at 0.1x the learning rate, gradient clipping at norm 0.1, lr /10 after epoch 11, 8 GPUs
# x 2 images, inputs padded to no multiple: pad_size_divisor=1), and what mmdet's Swin DINO
# (dino/dino-5scale_swin-l_8xb2-12e_coco.py) adds for a transformer backbone: with_cp=True. That
# file sets no weight-decay exception and no fp16 (--amp is the switch); PVT v1's position
# embeddings get no weight decay (./dino_4scale_pvt_s_12e_coco.py). drop_path_rate is PVTv2's
# detection 0.1 (Swin-L's is 0.2).
_base_ = [
    'mmdet::dino/dino-4scale_r50_8xb2-12e_coco.py',
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
    neck=dict(in_channels=[64, 160, 256], num_outs=4))
