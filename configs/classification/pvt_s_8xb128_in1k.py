# PVT-Small ImageNet classifier (Table 2: 24.5 M, 3.8 GFLOPs, 79.8 top-1 official, not reproduced
# here); the recipe is PVT-Tiny's (./pvt_t_8xb128_in1k.py).
_base_ = ['./pvt_t_8xb128_in1k.py']
model = dict(backbone=dict(arch='small'))
