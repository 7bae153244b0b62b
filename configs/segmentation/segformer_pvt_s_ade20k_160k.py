# SegFormer's head on PVT-Small (v1), ADE20K (no official or upstream figure); the recipe of
# ./segformer_pvt_v2_b0_ade20k_160k.py, whose decay rules also keep the position embeddings out
# of weight decay.
_base_ = ['./segformer_pvt_v2_b0_ade20k_160k.py']
pvt_checkpoint = 'https://github.com/whai362/PVT/releases/download/v2/pvt_small.pth'
model = dict(
    backbone=dict(_delete_=True, type='pvt_mm.PVT', arch='small', drop_path_rate=0.1,
                  init_cfg=dict(type='Pretrained', checkpoint=pvt_checkpoint)),
    decode_head=dict(in_channels=[64, 128, 320, 512]))
