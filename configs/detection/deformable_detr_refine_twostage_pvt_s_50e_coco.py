# Deformable DETR (refine, two-stage) + PVT-Small (v1) on COCO (no official or upstream figure); the
# recipe of ./deformable_detr_refine_twostage_pvt_v2_b0_50e_coco.py, PVT v1's position embeddings
# out of weight decay (at the backbone's 0.1x lr).
_base_ = ['./deformable_detr_refine_twostage_pvt_v2_b0_50e_coco.py']
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
