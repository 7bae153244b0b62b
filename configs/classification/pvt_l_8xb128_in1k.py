# PVT-Large ImageNet classifier (Table 2: 61.4 M, 9.8 GFLOPs, 81.7 top-1 official, not
# reproduced here): PVT-Tiny's recipe with stochastic depth 0.3 and gradient clipping at 1.0
# (the official configs/pvt/pvt_large.py).
_base_ = ['./pvt_t_8xb128_in1k.py']
model = dict(backbone=dict(arch='large', drop_path_rate=0.3))
optim_wrapper = dict(clip_grad=dict(max_norm=1.0))
