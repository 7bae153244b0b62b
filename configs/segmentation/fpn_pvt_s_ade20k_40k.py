# Semantic FPN + PVT-Small on ADE20K (paper Table 5); everything else as the Tiny config.
_base_ = ['./fpn_pvt_t_ade20k_40k.py']
model = dict(
    backbone=dict(
        arch='small',
        init_cfg=dict(
            checkpoint='https://github.com/whai362/PVT/releases/download/v2/pvt_small.pth')))
