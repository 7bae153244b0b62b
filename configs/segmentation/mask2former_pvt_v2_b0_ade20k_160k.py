# Mask2Former + PVTv2-b0 on ADE20K, 160k iterations, 512x512 crops (no official or upstream figure
# exists for this pair). mmseg's mask2former/mask2former_r50_8xb2-160k_ade20k-512x512.py (its head
# is mmdet's Mask2Former head: mmdet must be installed, as for mmseg's own) with the ResNet swapped
# for PVTv2: all four levels into the pixel decoder. Recipe: that file's (AdamW lr 1e-4, weight
# decay 0.05, the backbone at 0.1x the learning rate, no decay on norms nor on the query and level
# embeddings, gradient clipping at norm 0.01, poly decay (power 0.9), 8 GPUs x 2 images) and what
# its Swin variant (mask2former_swin-t_8xb2-160k_ade20k-512x512.py) adds for a transformer
# backbone: every norm of the backbone (and PVT v1's position embeddings) at 0.1x lr without decay
# (../_base_/pvt_mask2former_keys.py). That file keeps with_cp=False and sets no fp16 (--amp is the
# switch); drop_path_rate is PVT's segmentation 0.1 (Swin-T's 0.3).
_base_ = [
    'mmseg::mask2former/mask2former_r50_8xb2-160k_ade20k-512x512.py',
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
    decode_head=dict(in_channels=[32, 64, 160, 256]))
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={{_base_.pvt_backbone_keys}}))
