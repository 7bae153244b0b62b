# PVTv2-b1 ImageNet classifier (official README: 14.0 M, 2.1 GFLOPs, 78.7 top-1, not
# reproduced here): PVTv2-b0's recipe (./pvt_v2_b0_8xb128_in1k.py), stochastic depth 0.1.
_base_ = ['./pvt_v2_b0_8xb128_in1k.py']
model = dict(backbone=dict(arch='b1'))
