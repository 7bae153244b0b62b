# PVT-Medium ImageNet classifier (Table 2: 44.2 M, 6.7 GFLOPs, 81.2 top-1 official, not
# reproduced here): PVT-Tiny's recipe with stochastic depth 0.3 and gradient clipping at 1.0
# (the official configs/pvt/pvt_medium.py).
_base_ = ['./pvt_t_8xb128_in1k.py']
model = dict(backbone=dict(arch='medium', drop_path_rate=0.3))
optim_wrapper = dict(clip_grad=dict(max_norm=1.0))
