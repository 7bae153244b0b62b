# SegFormer's all-MLP head on PVTv2-b0, ADE20K, 160k iterations, 512x512 crops (no official or
# upstream figure exists for this pair). mmseg's SegFormer config
# (segformer/segformer_mit-b0_8xb2-160k_ade20k-512x512.py) with its MiT backbone swapped for
# PVTv2, and that file's recipe as it stands: AdamW lr 6e-5, betas (0.9, 0.999), weight decay
# 0.01, none on norms (nor on PVT v1's position embeddings, where MiT names its pos_block), the
# head at 10x the learning rate, 1500 linear warm-up iterations then poly decay (power 1), 8 GPUs
# x 2 images; the head's 256 channels for every size, as mmseg's MiT-b1..b5 configs keep them.
# That file sets no with_cp, no gradient clipping and no fp16 (--amp is the switch).
# PVTv2's stages are MiT's design (overlapping patch embeddings, spatial-reduction attention with
# a conv and a LayerNorm, a depth-wise conv in the FFN) with the same widths, heads, SR ratios and,
# from b2 on, depths; they differ in the FFN width of the first two stages (ratio 8 in PVTv2
# b0-b4, 4 in MiT and PVTv2-b5), b2-li's pooled linear SRA, and LayerNorm eps 1e-5 in the patch
# embeddings and the SRA (MiT: 1e-6 throughout).
_base_ = [
    'mmseg::segformer/segformer_mit-b0_8xb2-160k_ade20k-512x512.py',
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
        drop_path_rate=0.1,  # MiT's in the base
        init_cfg=dict(type='Pretrained', checkpoint=pvt_checkpoint)),
    decode_head=dict(in_channels=[32, 64, 160, 256]))

# The base's custom_keys (pos_block and norm without decay, head at 10x) stay; PVT v1's
# position embeddings join them.
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={'pos_embed': dict(decay_mult=0.0)}))
auto_scale_lr = dict(enable=True, base_batch_size=16)
