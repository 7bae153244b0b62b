# PVTv2-b0 classifier on the bundled toy classification set: the toy PVT-Tiny classifier
# (./pvt_t_cls_toy.py: 64x64 inputs, 3 classes, batch 16, 30 epochs, random init) with the
# backbone swapped for PVTv2-b0 (../classification/pvt_v2_b0_8xb128_in1k.py's network; the
# ImageNet recipes of the two families are the same).
_base_ = ['./pvt_t_cls_toy.py']
model = dict(backbone=dict(type='pvt_mm.PVTv2', arch='b0'))
