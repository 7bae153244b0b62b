# PVTv2-b0 ImageNet classifier (v2 paper Table 1 and the official README: 3.7 M, 0.6 GFLOPs,
# 70.5 top-1, the official result, not reproduced here). The official recipe
# (classification/configs/pvt_v2/ of whai362/PVT, branch v2) is PVT v1's, DeiT's
# (./pvt_t_8xb128_in1k.py: 300 epochs, AdamW 1e-3 at 1024 images, weight decay 0.05 but none
# on norms and biases, cosine decay, label smoothing, Mixup/CutMix, RandAugment, erasing),
# with stochastic depth 0.1 for b0-b2-li and 0.3 with gradient clipping 1.0 for b3-b5.
# The classifier is pvt_mm.PVTv2 with num_classes: the mean of the last stage's tokens through
# a linear head, so the official checkpoints load whole.
_base_ = ['./pvt_t_8xb128_in1k.py']
model = dict(backbone=dict(type='pvt_mm.PVTv2', arch='b0', drop_path_rate=0.1))
