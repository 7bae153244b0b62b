# DINO 4-scale + PVT-Small (v1) on COCO, 12 epochs (no official or upstream figure); the recipe
# of ./dino_4scale_pvt_v2_b0_12e_coco.py, with PVT v1's position embeddings out of weight decay
# (still at the backbone's 0.1x learning rate). PVT v1 takes any input size (its position
# embeddings are resized per stage), so DINO's unpadded batches (pad_size_divisor=1) run as
# they are.
_base_ = ['./dino_4scale_pvt_v2_b0_12e_coco.py']
pvt_checkpoint = 'https://github.com/whai362/PVT/releases/download/v2/pvt_small.pth'
model = dict(
    backbone=dict(_delete_=True, type='pvt_mm.PVT', arch='small', out_indices=(1, 2, 3),
                  drop_path_rate=0.1, with_cp=True,
                  init_cfg=dict(type='Pretrained', checkpoint=pvt_checkpoint)),
    neck=dict(in_channels=[128, 320, 512]))
# Beside the base's 'backbone' key (lr_mult 0.1); mmengine applies the longest matching key
# alone, so this one carries the backbone's multiplier too.
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={
    'pos_embed': dict(lr_mult=0.1, decay_mult=0.0)}))
