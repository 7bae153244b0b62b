# PVTv2-b3 ImageNet classifier (official README: 45.2 M, 6.9 GFLOPs, 83.1 top-1, not reproduced
# here): PVTv2-b0's recipe (./pvt_v2_b0_8xb128_in1k.py) with stochastic depth 0.3 and
# gradient clipping at 1.0 (the official configs/pvt_v2/pvt_v2_b3.py).
_base_ = ['./pvt_v2_b0_8xb128_in1k.py']
model = dict(backbone=dict(arch='b3', drop_path_rate=0.3))
optim_wrapper = dict(clip_grad=dict(max_norm=1.0))
