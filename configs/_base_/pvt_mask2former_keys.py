# PVT's part of the Mask2Former recipe, restated from the Swin variants of mmdet
# (mask2former/mask2former_swin-t-p4-w7-224_8xb2-lsj-50e_coco.py) and mmseg
# (mask2former/mask2former_swin-t_8xb2-160k_ade20k-512x512.py): their base puts the backbone at
# 0.1x the learning rate (key 'backbone'), which would also match the backbone's norms and keep
# weight decay on them (mmengine applies the longest matching key alone, and a matched
# parameter skips norm_decay_mult); so, as Swin's files list every norm of theirs, these keys
# name every norm of PVT and PVTv2 (block norms, SRA's norm, patch-embedding norms, stage
# norms) and PVT v1's position embeddings (as Swin's absolute_pos_embed): 0.1x lr, no decay.
# Keys for blocks a size lacks match nothing; the depths are the deepest of each stage over
# PVT v1 tiny..large and PVTv2 b0..b5 (b4: 8 in stage 2, b5: 40 in stage 3). A config takes
# them with custom_keys={{_base_.pvt_backbone_keys}}.
pvt_backbone_keys = {
    **{f'backbone.stages.{stage}.blocks.{block}.{norm}': dict(lr_mult=0.1, decay_mult=0.0)
       for stage, depth in enumerate((3, 8, 40, 3)) for block in range(depth)
       for norm in ('norm', 'attn.norm')},
    **{f'backbone.stages.{stage}.{norm}': dict(lr_mult=0.1, decay_mult=0.0)
       for stage in range(4) for norm in ('norm', 'patch_embed.norm')},
    'pos_embed': dict(lr_mult=0.1, decay_mult=0.0),
}
