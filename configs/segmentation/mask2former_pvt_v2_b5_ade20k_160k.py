# Mask2Former + PVTv2-b5 on ADE20K (no official or upstream figure); the recipe of
# ./mask2former_pvt_v2_b0_ade20k_160k.py.
_base_ = ['./mask2former_pvt_v2_b0_ade20k_160k.py']
pvt_checkpoint = 'https://github.com/whai362/PVT/releases/download/v2/pvt_v2_b5.pth'
model = dict(
    backbone=dict(arch='b5', init_cfg=dict(checkpoint=pvt_checkpoint)),
    decode_head=dict(in_channels=[64, 128, 320, 512]))
