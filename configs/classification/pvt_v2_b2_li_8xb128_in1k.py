# PVTv2-b2-li ImageNet classifier (official README: 22.6 M, 3.9 GFLOPs, 82.1 top-1, not
# reproduced here): PVTv2-b0's recipe (./pvt_v2_b0_8xb128_in1k.py), stochastic depth 0.1.
_base_ = ['./pvt_v2_b0_8xb128_in1k.py']
model = dict(backbone=dict(arch='b2_li'))
