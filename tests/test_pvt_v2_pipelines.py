"""The PVTv2-b0 toys learn on the toy set as their PVT-Tiny counterparts do: tools/train.py,
then tools/test.py (with --out and --show-dir) and tools/demo.py on the checkpoint, each a
real subprocess. Bars sit below every figure measured on toy sets of generator seeds 0, 1, 2
(docs/configs.md)."""
import os
import os.path as osp
import re

import pytest

from conftest import PY, ROOT, TOY, metrics_of, run

pytestmark = pytest.mark.slow

# Measured with tools/train.py + tools/test.py, 12 epochs (Intel Xeon, 2 cores), toy sets of
# generator seeds 0, 1, 2: RetinaNet box mAP 0.549, 0.478, 0.536; Mask R-CNN box / mask mAP
# 0.385 / 0.516, 0.395 / 0.453, 0.450 / 0.536.
RETINANET_V2_BOX_BAR = 0.35
MASK_RCNN_V2_BOX_BAR, MASK_RCNN_V2_MASK_BAR = 0.20, 0.25
# 60 of the config's 200 iterations, as the PVT-Tiny segmentation test runs: mIoU 61.5, 58.1,
# 62.6 on seeds 0, 1, 2 (85.1 after 200 on seed 0), the background one of the 4 classes.
FPN_V2_MIOU_BAR = 50.0


@pytest.fixture(scope='module')
def toy(toy_data):
    return toy_data


def test_retinanet_v2_toy_learns_then_test_show_dir_and_demo(toy, tmp_path):
    config = osp.join(TOY, 'retinanet_pvt_v2_b0_toy.py')
    work, data = str(tmp_path / 'work'), str(toy / 'coco') + '/'
    run([PY, 'tools/train.py', config, '--work-dir', work, '--data-root', data])
    ckpt = osp.join(work, 'epoch_12.pth')
    metrics = metrics_of(run([PY, 'tools/test.py', config, ckpt, '--work-dir', work,
                              '--data-root', data, '--out', str(tmp_path / 'preds.pkl'),
                              '--show-dir', 'vis']))
    assert metrics['coco/bbox_mAP'] >= RETINANET_V2_BOX_BAR, metrics
    assert (tmp_path / 'preds.pkl').stat().st_size > 0
    drawn = [p for p in os.listdir(work) if osp.isdir(osp.join(work, p, 'vis'))]
    assert drawn and os.listdir(osp.join(work, drawn[-1], 'vis'))
    image = osp.join(toy, 'coco', 'val2017', sorted(os.listdir(osp.join(toy, 'coco', 'val2017')))[0])
    out = run([PY, 'tools/demo.py', image, config, ckpt, '--out', str(tmp_path / 'demo.png')])
    assert re.search(r'[1-9][0-9]* detections above 0\.3: ', out), out[-1000:]
    assert (tmp_path / 'demo.png').stat().st_size > 0


def test_mask_rcnn_v2_toy_learns(toy, tmp_path):
    config = osp.join(TOY, 'mask_rcnn_pvt_v2_b0_toy.py')
    work, data = str(tmp_path / 'work'), str(toy / 'coco') + '/'
    run([PY, 'tools/train.py', config, '--work-dir', work, '--data-root', data])
    metrics = metrics_of(run([PY, 'tools/test.py', config, osp.join(work, 'epoch_12.pth'),
                              '--work-dir', work, '--data-root', data]))
    assert metrics['coco/bbox_mAP'] >= MASK_RCNN_V2_BOX_BAR, metrics
    assert metrics['coco/segm_mAP'] >= MASK_RCNN_V2_MASK_BAR, metrics


def test_semantic_fpn_v2_toy_learns_the_background_too(toy, tmp_path):
    """Four classes, the background one of them: its IoU is reported and learned."""
    config = osp.join(TOY, 'fpn_pvt_v2_b0_toy.py')
    work = str(tmp_path / 'work')
    data = str(toy / 'ade' / 'ADEChallengeData2016')
    run([PY, 'tools/train.py', config, '--work-dir', work, '--data-root', data,
         '--cfg-options', 'train_cfg.max_iters=60', 'train_cfg.val_interval=60',
         'default_hooks.checkpoint.interval=60', 'param_scheduler.0.end=60'])
    out = run([PY, 'tools/test.py', config, osp.join(work, 'iter_60.pth'), '--work-dir', work,
               '--data-root', data, '--show-dir', 'vis'])
    assert re.search(r'\|\s*background\s*\|\s*[0-9.]+', out), out[-2000:]
    assert metrics_of(out)['mIoU'] >= FPN_V2_MIOU_BAR, out[-2000:]


# The 3x pipelines' toys, a few of their epochs (toy set of seed 0): the logged loss falls
# (mean of the last two logs over the first two), tools/test.py evaluates the checkpoint with
# COCO's metric, and ATSS and GFL already localise. Measured after 4 epochs: ATSS loss ratio
# 0.60, box mAP 0.318; GFL 0.53, 0.335; Cascade Mask R-CNN 0.57, 0.097 (176 s; CI runs it 3
# epochs: ratio 0.71 at that point of the same run). Sparse R-CNN localises after its 24
# epochs (box mAP 0.145, 386 s, more than CI can spend on it); CI runs 3, after which its loss
# is 0.45 of its start in the same run. No learning-rate step in CI's runs.
THREE_X_TOYS = {'atss_pvt_v2_b0_toy': (4, 0.15), 'gfl_pvt_v2_b0_toy': (4, 0.15),
                'cascade_mask_rcnn_pvt_v2_b0_toy': (3, 0.0), 'sparse_rcnn_pvt_v2_b0_toy': (3, 0.0)}
LOSS_RATIO_BAR = 0.8


def epochs(n):
    return ['--cfg-options', f'train_cfg.max_epochs={n}', f'train_cfg.val_interval={n}',
            f'param_scheduler.1.end={n}', f'param_scheduler.1.milestones=[{n}]']


@pytest.mark.parametrize('name', sorted(THREE_X_TOYS))
def test_three_x_pipeline_toys_train_and_evaluate(toy, tmp_path, name):
    n, map_bar = THREE_X_TOYS[name]
    config = osp.join(TOY, f'{name}.py')
    work, data = str(tmp_path / 'work'), str(toy / 'coco') + '/'
    out = run([PY, 'tools/train.py', config, '--work-dir', work, '--data-root', data,
               *epochs(n)])
    losses = [float(v) for v in re.findall(r'Epoch\(train\).*?\sloss: ([0-9.]+)', out)]
    assert len(losses) >= 3 * n, out[-2000:]
    assert sum(losses[-2:]) / 2 <= LOSS_RATIO_BAR * sum(losses[:2]) / 2, losses
    metrics = metrics_of(run([PY, 'tools/test.py', config, osp.join(work, f'epoch_{n}.pth'),
                              '--work-dir', work, '--data-root', data]))
    assert map_bar <= metrics['coco/bbox_mAP'] <= 1.0, metrics


SPARSE_RCNN = ['sparse_rcnn_pvt_s_fpn_300_proposals_crop_mstrain_480-800_3x_coco',
               'sparse_rcnn_pvt_v2_b2_fpn_300_proposals_crop_mstrain_480-800_3x_coco',
               'sparse_rcnn_pvt_v2_b2_li_fpn_300_proposals_crop_mstrain_480-800_3x_coco']


@pytest.mark.parametrize('name', SPARSE_RCNN)
def test_sparse_rcnn_configs_train_one_toy_epoch(mini_data, tmp_path, name):
    """The COCO configs' own networks (300 proposals, 6 stages, PVT-S / PVTv2-b2 / b2-li) and
    optimiser, on the toy set's data and pipeline, three classes, no ImageNet file: one epoch
    of two images (one iteration: mmcv's CPU RoIAlign over 6 x 300 boxes an image takes most
    of its 5-10 s), its loss finite, then the COCO metric on two."""
    config = tmp_path / f'{name}_toy_data.py'
    config.write_text(
        f"_base_ = [{osp.join(ROOT, 'configs', 'detection', name + '.py')!r},\n"
        f"          {osp.join(ROOT, 'configs', '_base_', 'toy_coco.py')!r}]\n"
        "model = dict(backbone=dict(init_cfg=None))\n"
        "train_dataloader = {{_base_.toy_train_dataloader}}\n"
        "val_dataloader = {{_base_.toy_val_dataloader}}\n"
        "val_evaluator = {{_base_.toy_evaluator}}\n"
        "train_cfg = dict(max_epochs=1, val_interval=1)\n")
    options = [f'model.roi_head.bbox_head.{i}.num_classes=3' for i in range(6)]
    options += [f'{split}_dataloader.{key}=2' for split in ('train', 'val')
                for key in ('batch_size', 'dataset.indices')]
    out = run([PY, 'tools/train.py', str(config), '--work-dir', str(tmp_path / 'work'),
               '--data-root', str(mini_data / 'coco') + '/', '--cfg-options',
               'default_hooks.logger.interval=1', 'default_hooks.checkpoint=None', *options])
    losses = [float(v) for v in re.findall(r'Epoch\(train\) *\[1\]\[1/1\].*?\sloss: ([0-9.]+)', out)]
    assert len(losses) == 1 and 0 < losses[0] < 1e4, out[-2000:]
    assert re.search(r'Epoch\(val\) *\[1\]\[1/1\] +coco/bbox_mAP: ', out), out[-2000:]
