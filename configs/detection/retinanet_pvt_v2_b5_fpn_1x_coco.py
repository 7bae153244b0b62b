# RetinaNet + PVTv2-b5, 1x schedule (official COCO box AP 46.2, not reproduced here);
# the recipe of ./retinanet_pvt_v2_b0_fpn_1x_coco.py.
_base_ = ['./retinanet_pvt_v2_b0_fpn_1x_coco.py']
model = dict(
    backbone=dict(arch='b5', init_cfg=dict(checkpoint='https://github.com/whai362/PVT/releases/download/v2/pvt_v2_b5.pth')),
    neck=dict(in_channels=[64, 128, 320, 512]))
# 8 GPUs x 1 image for b4 and b5, lr 1e-4 / 1.4 (the official config).
optim_wrapper = dict(optimizer=dict(lr=1e-4 / 1.4))
train_dataloader = dict(batch_size=1)
auto_scale_lr = dict(base_batch_size=8)
