# Mask2Former + PVT-Small (v1) on ADE20K (no official or upstream figure); the recipe of
# ./mask2former_pvt_v2_b0_ade20k_160k.py, PVT v1's position embeddings out of weight decay, as the
# keys of ../_base_/pvt_mask2former_keys.py give them.
_base_ = ['./mask2former_pvt_v2_b0_ade20k_160k.py']
pvt_checkpoint = 'https://github.com/whai362/PVT/releases/download/v2/pvt_small.pth'
model = dict(
    backbone=dict(_delete_=True, type='pvt_mm.PVT', arch='small',
                  drop_path_rate=0.1,
                  init_cfg=dict(type='Pretrained', checkpoint=pvt_checkpoint)),
    decode_head=dict(in_channels=[64, 128, 320, 512]))
