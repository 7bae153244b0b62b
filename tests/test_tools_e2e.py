"""The tools end to end on generated toy data: train, test, resume, distributed, downstream, demo.

Every run is a real subprocess of the command a user types, with mmengine's Runner, mmdet's
and mmseg's models, datasets and metrics (pycocotools COCO mAP, mmseg IoU).
"""
import json
import os
import os.path as osp
import re
import subprocess
import textwrap

import pytest
import torch

from conftest import FEW_EPOCHS, PY, ROOT, TOY, metrics_of, mim_file, run

# Real tool runs as subprocesses: minutes in all; `make test-quick` leaves them out.
pytestmark = pytest.mark.slow

def test_generator_is_deterministic(tmp_path):
    for name in ('a', 'b'):
        run([PY, 'tools/data/make_toy_data.py', '--out', str(tmp_path / name), '--train', '3',
             '--val', '2', '--seed', '7'])
    for rel in ('coco/annotations/instances_train2017.json', 'coco/train2017/toy_train_00002.jpg',
                'ade/ADEChallengeData2016/annotations/validation/toy_val_00001.png'):
        assert (tmp_path / 'a' / rel).read_bytes() == (tmp_path / 'b' / rel).read_bytes(), rel
    ann = json.loads((tmp_path / 'a/coco/annotations/instances_train2017.json').read_text())
    assert [c['name'] for c in ann['categories']] == ['rectangle', 'ellipse', 'triangle']
    assert all(len(a['segmentation'][0]) >= 6 for a in ann['annotations'])


@pytest.mark.parametrize('config, keys', [
    pytest.param('retinanet_pvt_t_toy.py', ['coco/bbox_mAP', 'coco/bbox_mAP_50'],
                 marks=pytest.mark.xdist_group('demo')),
    pytest.param('mask_rcnn_pvt_t_toy.py', ['coco/bbox_mAP', 'coco/segm_mAP'],
                 marks=pytest.mark.xdist_group('mask_rcnn_pvt_t')),
])
def test_detection_train_then_test(tmp_path, request, config, keys):
    """The toy trained once per test run (RetinaNet: the README's demo run; Mask R-CNN: the
    run that test_mask_rcnn_toy_learns checks), then tools/test.py with --out and --show-dir,
    and the converter and init_cfg on its checkpoint."""
    if config.startswith('retinanet'):
        demo = request.getfixturevalue('demo_run')
        trained = dict(output=demo['output'], checkpoint=demo['checkpoint'],
                       data=str(demo['data'] / 'coco') + '/')
    else:
        trained = request.getfixturevalue('trained')(config)
    work, data, ckpt = str(tmp_path / 'work'), trained['data'], trained['checkpoint']
    assert 'pkg_resources' not in trained['output']  # mmengine's deprecated-API noise is filtered
    assert osp.basename(ckpt) == 'epoch_12.pth'
    out = run([PY, 'tools/test.py', osp.join(TOY, config), ckpt, '--work-dir', work,
               '--data-root', data, '--out', str(tmp_path / 'preds.pkl'),
               '--show-dir', 'shown'])
    metrics = metrics_of(out)
    for key in keys:
        assert 0.0 <= metrics[key] <= 1.0, metrics
    assert 'Average Precision' in out  # pycocotools' own summary
    assert (tmp_path / 'preds.pkl').stat().st_size > 0
    shown = [f for _, _, fs in os.walk(work) for f in fs if f.startswith('toy_val_')]
    assert len(shown) == 16  # one drawn prediction per validation image
    # The checkpoint mmengine wrote, through the converter: whole (checked against its
    # config), and its backbone alone (--prefix); and through init_cfg, weights_only kept on.
    converter = 'tools/model_converters/pvt_to_pvt_mm.py'
    out = run([PY, converter, ckpt, str(tmp_path / 'whole.pth'), '--config',
               osp.join(TOY, config)])
    assert "(whole model, pvt_mm layout, PVT-tiny, already in pvt_mm's layout, checked " \
        'against' in out, out[-2000:]
    whole = torch.load(tmp_path / 'whole.pth', weights_only=False)
    assert whole['meta']['dataset_meta']['classes'] == ('rectangle', 'ellipse', 'triangle')
    dst = tmp_path / 'backbone.pth'
    out = run([PY, converter, ckpt, str(dst), '--prefix', 'backbone.'])
    assert 'pvt_mm layout, PVT-tiny' in out, out[-2000:]
    from pvt_mm import PVT
    model = PVT('tiny', init_cfg=dict(type='Pretrained', checkpoint=ckpt, prefix='backbone.'))
    model.init_weights()
    saved = torch.load(dst, weights_only=True)
    assert all(torch.equal(v, saved[k]) for k, v in model.state_dict().items())


FPN_60 = ('fpn_pvt_t_toy.py', '--cfg-options', 'train_cfg.max_iters=60',
          'train_cfg.val_interval=60', 'default_hooks.checkpoint.interval=60',
          'param_scheduler.0.end=60')


@pytest.mark.xdist_group('fpn_pvt_t')
def test_segmentation_train_then_test(tmp_path, trained):
    """The toy Semantic FPN trained once per test run (60 iterations, what
    test_segmentation_toy_learns checks), then tools/test.py with --out and --show-dir."""
    run_ = trained(*FPN_60)
    work, data, ckpt = str(tmp_path / 'work'), run_['data'], run_['checkpoint']
    config = osp.join(TOY, 'fpn_pvt_t_toy.py')
    assert osp.basename(ckpt) == 'iter_60.pth'
    show_dir = 'shown_seg_e2e'
    metrics = metrics_of(run([PY, 'tools/test.py', config, ckpt, '--work-dir', work,
                              '--data-root', data, '--out', str(tmp_path / 'pred'),
                              '--show-dir', show_dir]))
    assert 0.0 <= metrics['mIoU'] <= 100.0 and 0.0 <= metrics['aAcc'] <= 100.0, metrics
    assert len(list((tmp_path / 'pred').glob('*.png'))) == 16  # mmseg's --out: label maps
    # --show-dir: mmdet's rule, <work_dir>/<timestamp>/<show_dir>/<image name>, not the cwd.
    drawn = sorted(p.name for p in (tmp_path / 'work').glob(f'*/{show_dir}/*'))
    assert drawn == [f'toy_val_{i:05d}.jpg' for i in range(16)], drawn
    assert not os.path.exists(osp.join(ROOT, show_dir))


def test_missing_data_root_stops_before_building(tmp_path):
    missing = str(tmp_path / 'no_coco') + '/'
    out = run([PY, 'tools/train.py', osp.join(TOY, 'retinanet_pvt_t_toy.py'), '--work-dir',
               str(tmp_path / 'w'), '--data-root', missing], check=False)
    assert 'DatasetNotFoundError' in out
    assert f"data_root '{missing}' does not exist" in out
    assert 'annotations/instances_train2017.json' in out  # the layout to lay out
    assert not (tmp_path / 'w').exists()  # stopped before the Runner made anything


def test_two_process_distributed_training_on_cpu(tmp_path, mini_data):
    work = tmp_path / 'work'
    out = run(['bash', 'tools/dist_train.sh', osp.join(TOY, 'retinanet_pvt_t_toy.py'), '2',
               '--work-dir', str(work), '--data-root', str(mini_data / 'coco') + '/',
               *FEW_EPOCHS, 'model.test_cfg.score_thr=0'], env={'OMP_NUM_THREADS': '1'})
    # mmengine logs the world size as "GPU number", also on CPU.
    assert 'Distributed training: True' in out and 'GPU number: 2' in out, out[-3000:]
    assert 'Distributed launcher: pytorch' in out
    # Workers from a fork server: forked beside gloo's threads, one hung in os.fork().
    assert "mp_start_method='forkserver'" in out, out[-3000:]
    assert re.search(r'coco/bbox_mAP: \d', out)  # evaluated with results gathered from both ranks
    # 8 images / (2 processes x 4) = 1 iteration per epoch.
    assert re.search(r'Epoch\(train\)\s+\[1\]\[1/1\]', out)
    from mmengine.runner.checkpoint import _load_checkpoint
    assert _load_checkpoint(str(work / 'epoch_1.pth'))['meta']['iter'] == 1


def test_downstream_config_with_mmdets_own_train_script(tmp_path, mini_data):
    """Another MM project: its own config, mmdet's own tools/train.py, only custom_imports added."""
    train_py = mim_file('mmdet', 'tools', 'train.py')
    data = str(mini_data / 'coco') + '/'
    cfg = tmp_path / 'my_project' / 'retinanet_with_pvt.py'
    cfg.parent.mkdir()
    cfg.write_text(textwrap.dedent(f'''
        _base_ = [
            'mmdet::_base_/models/retinanet_r50_fpn.py',
            'mmdet::_base_/datasets/coco_detection.py',
            'mmdet::_base_/schedules/schedule_1x.py',
            'mmdet::_base_/default_runtime.py',
        ]
        custom_imports = dict(imports=['pvt_mm'], allow_failed_imports=False)
        model = dict(
            backbone=dict(_delete_=True, type='pvt_mm.PVT', arch='tiny'),
            neck=dict(in_channels=[64, 128, 320, 512]),
            bbox_head=dict(num_classes=3))
        metainfo = dict(classes=('rectangle', 'ellipse', 'triangle'))
        train_pipeline = [
            dict(type='LoadImageFromFile'),
            dict(type='LoadAnnotations', with_bbox=True),
            dict(type='Resize', scale=(320, 256), keep_ratio=True),
            dict(type='PackDetInputs'),
        ]
        train_dataloader = dict(
            batch_size=2, num_workers=0, persistent_workers=False,
            sampler=dict(type='InfiniteSampler'),
            dataset=dict(data_root='{data}', metainfo=metainfo, pipeline=train_pipeline))
        train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=1)
        default_hooks = dict(checkpoint=dict(by_epoch=False, interval=1),
                             logger=dict(interval=1))
        log_processor = dict(by_epoch=False)
        param_scheduler = []
        optim_wrapper = dict(optimizer=dict(_delete_=True, type='AdamW', lr=1e-4))
        val_dataloader = None
        val_evaluator = None
        val_cfg = None
        test_dataloader = None
        test_evaluator = None
        test_cfg = None
    '''))
    out = run([PY, train_py, str(cfg), '--work-dir', str(tmp_path / 'work')],
              env={'PYTHONPATH': ROOT})
    assert re.search(r'Iter\(train\) \[1/1\].*loss_cls', out), out[-3000:]
    assert (tmp_path / 'work' / 'iter_1.pth').exists()


@pytest.mark.xdist_group('demo')
def test_readme_demo_learns(demo_run):
    """The README's main job (scripts/demo.sh): a 12-epoch toy RetinaNet clears a box-mAP bar.

    Measured on a 2-core CPU with seed 0: box mAP 0.522 (mAP@50 0.946) after 12 epochs,
    about 2.5 minutes. The bar is set well below that, far above an untrained model's 0.
    """
    work, out = demo_run['work'], demo_run['output']
    metrics = metrics_of((work / 'test_output.txt').read_text())
    assert metrics['coco/bbox_mAP'] >= 0.35, metrics
    assert metrics['coco/bbox_mAP_50'] >= 0.7, metrics
    from PIL import Image
    with Image.open(work / 'demo_prediction.png') as img:
        assert img.size == (640, 512)  # the 160x128 image drawn 4x, readable
    assert 'detections above' in out and '(drawn: the best of each overlapping group' in out
    with Image.open(work / 'training_curve.png') as img:
        assert img.format == 'PNG' and img.size[0] >= 1000  # two panels: loss, mAP
    assert re.search(r'curves of loss.*coco/bbox_mAP.* written to', out), out[-2000:]


@pytest.mark.xdist_group('demo')
def test_bf16_evaluation_matches_fp32(tmp_path, demo_run):
    """tools/test.py --amp on the demo's toy RetinaNet: on a CPU with native bf16 the network
    runs in bf16 (the scores move) and box mAP stays within 0.01 of fp32 (measured on an
    Intel Xeon with AMX: 0.537 both); on a CPU without it, fp32 again, said so."""
    import pickle
    from pvt_mm.run.amp import CPU_BF16, NO_BF16, cpu_has_native_bf16
    config = osp.join(TOY, 'retinanet_pvt_t_toy.py')
    data = str(demo_run['data'] / 'coco') + '/'
    runs = {}
    for name, extra in (('fp32', []), ('amp', ['--amp'])):
        out = run([PY, 'tools/test.py', config, demo_run['checkpoint'], '--work-dir',
                   str(tmp_path / name), '--data-root', data, '--out',
                   str(tmp_path / f'{name}.pkl'), *extra])
        runs[name] = (out, metrics_of(out)['coco/bbox_mAP'],
                      pickle.load(open(tmp_path / f'{name}.pkl', 'rb')))
    out, amp_map, amp_preds = runs['amp']
    fp32_map, fp32_preds = runs['fp32'][1:]
    if cpu_has_native_bf16():
        assert CPU_BF16 in out and 'bf16 autocast on the CPU for backbone, neck, bbox_head' in out
        assert abs(amp_map - fp32_map) <= 0.01, (amp_map, fp32_map)
        assert any(not torch.equal(a['pred_instances']['scores'], b['pred_instances']['scores'])
                   for a, b in zip(amp_preds, fp32_preds))
    else:
        assert NO_BF16 in out and amp_map == fp32_map


# Measured with tools/train.py + tools/test.py, 12 epochs, toy sets of generator seeds 0/1/2:
# box mAP 0.452 / 0.415 / 0.480 and mask mAP 0.552 / 0.510 / 0.565 (Intel Xeon); two AMD
# EPYC machines gave 0.458 / 0.544 and 0.454 / 0.498 (seed 0). The bars sit below all of them
# and far above the 0.002 / 0.000 of a backbone that hands the neck channels-last maps.
MASK_RCNN_BOX_BAR, MASK_RCNN_MASK_BAR = 0.25, 0.30


@pytest.mark.xdist_group('mask_rcnn_pvt_t')
def test_mask_rcnn_toy_learns(tmp_path, trained):
    """The toy Mask R-CNN, 12 epochs on the demo's toy set (seed 0): box and mask mAP clear
    bars set from measurement (docs/configs.md). With channels-last maps handed to the neck
    it does not learn (box 0.002): mmcv's CPU RoIAlign misreads them
    (tests/test_configs.py::test_roi_heads_read_nchw_contiguous_maps)."""
    config = 'mask_rcnn_pvt_t_toy.py'
    run_ = trained(config)
    work, data = str(tmp_path / 'work'), run_['data']
    metrics = metrics_of(run([PY, 'tools/test.py', osp.join(TOY, config), run_['checkpoint'],
                              '--work-dir', work, '--data-root', data]))
    assert metrics['coco/bbox_mAP'] >= MASK_RCNN_BOX_BAR, metrics
    assert metrics['coco/segm_mAP'] >= MASK_RCNN_MASK_BAR, metrics


@pytest.mark.xdist_group('fpn_pvt_t')
def test_segmentation_toy_learns(trained):
    """Semantic FPN on the toy set, the background one of its 4 classes: measured mIoU 89.4
    after the config's 200 iterations (seed 0); after the 60 run here 70.4, 57.9 and 58.8 on
    toy sets of generator seeds 0, 1, 2; the bar is 55."""
    out = trained(*FPN_60)['output']
    miou = float(re.findall(r'mIoU: ([0-9.]+)', out)[-1])
    assert miou >= 55.0, out[-2000:]


# Measured with tools/train.py, 400 iterations (about 2 minutes), the background one of the 4
# classes, toy sets of generator seeds 0, 1, 2: mIoU 88.7, 62.9, 69.4 (Intel Xeon, 2 cores).
TRANS2SEG_MIOU_BAR = 60.0


def test_trans2seg_toy_learns(tmp_path, toy_data):
    """PVT-Tiny + Trans2Seg on the demo's toy set (seed 0): train, then tools/test.py on the
    checkpoint, whose mIoU clears the bar."""
    config = osp.join(TOY, 'trans2seg_pvt_t_toy.py')
    work = str(tmp_path / 'work')
    data = str(toy_data / 'ade' / 'ADEChallengeData2016')
    run([PY, 'tools/train.py', config, '--work-dir', work, '--data-root', data])
    out = run([PY, 'tools/test.py', config, osp.join(work, 'iter_400.pth'), '--work-dir', work,
               '--data-root', data])
    miou = float(re.findall(r'mIoU: ([0-9.]+)', out)[-1])
    assert miou >= TRANS2SEG_MIOU_BAR, out[-2000:]


# Measured (lr 1e-4, toy set of seed 0, Intel Xeon): the logged loss falls from 12.5 (first
# log, epoch 1) to 6.5 by epoch 20 (ratio 0.52) and 5.8 by epoch 60; box mAP 0.015 after 20
# epochs, 0.007 after 60: DETR needs far more than CPU minutes to localise, so the learning
# asserted is the loss's fall, and the test only checks that tools/test.py evaluates it.
DETR_LOSS_RATIO_BAR = 0.7


def test_detr_toy_trains_and_evaluates(tmp_path, toy_data):
    config = osp.join(TOY, 'detr_pvt_t_toy.py')
    work, data = str(tmp_path / 'work'), str(toy_data / 'coco') + '/'
    out = run([PY, 'tools/train.py', config, '--work-dir', work, '--data-root', data])
    losses = [float(v) for v in re.findall(r'Epoch\(train\).*?\sloss: ([0-9.]+)', out)]
    assert len(losses) >= 20, out[-2000:]
    assert sum(losses[-2:]) / 2 <= DETR_LOSS_RATIO_BAR * sum(losses[:2]) / 2, losses
    metrics = metrics_of(run([PY, 'tools/test.py', config, osp.join(work, 'epoch_20.pth'),
                              '--work-dir', work, '--data-root', data]))
    assert 0.0 <= metrics['coco/bbox_mAP'] <= 1.0, metrics


# Measured with tools/train.py, 30 epochs (about 1 minute), toy sets of generator seeds 0/1/2:
# top-1 100.0 / 100.0 / 93.75 on the 16 validation images (Intel Xeon, 2 cores).
CLS_TOP1_BAR = 70.0


def test_classifier_toy_learns_then_test_and_demo(tmp_path, toy_data):
    """The toy PVT-Tiny classifier: tools/train.py, tools/test.py (top-1 over the bar, --out
    and --show-dir) and tools/demo.py (the top classes printed)."""
    config = osp.join(TOY, 'pvt_t_cls_toy.py')
    work, data = str(tmp_path / 'work'), str(toy_data / 'imagenet')
    run([PY, 'tools/train.py', config, '--work-dir', work, '--data-root', data])
    ckpt = osp.join(work, 'epoch_30.pth')
    metrics = metrics_of(run([PY, 'tools/test.py', config, ckpt, '--work-dir', work,
                              '--data-root', data, '--out', str(tmp_path / 'preds.pkl'),
                              '--show-dir', 'vis']))
    assert metrics['accuracy/top1'] >= CLS_TOP1_BAR, metrics
    assert (tmp_path / 'preds.pkl').stat().st_size > 0
    drawn = [p for p in os.listdir(work) if osp.isdir(osp.join(work, p, 'vis'))]
    assert drawn and len(os.listdir(osp.join(work, drawn[-1], 'vis'))) == 16
    image = osp.join(data, 'val', 'ellipse', sorted(os.listdir(osp.join(data, 'val', 'ellipse')))[0])
    out = run([PY, 'tools/demo.py', image, config, ckpt, '--out', str(tmp_path / 'demo.png'),
               '--topk', '3'])
    top = re.search(r'top 3 classes: (\w+) ([0-9.]+)', out)
    assert top and top.group(1) in ('rectangle', 'ellipse', 'triangle'), out[-1000:]
    assert (tmp_path / 'demo.png').stat().st_size > 0


# Measured as above with the toy PVTv2-b0 classifier (about 45 s): top-1 100.0 / 100.0 / 93.75.
def test_pvt_v2_classifier_toy_learns(tmp_path, toy_data):
    """configs/toy/pvt_v2_b0_cls_toy.py: tools/train.py then tools/test.py over the bar."""
    config = osp.join(TOY, 'pvt_v2_b0_cls_toy.py')
    work, data = str(tmp_path / 'work'), str(toy_data / 'imagenet')
    run([PY, 'tools/train.py', config, '--work-dir', work, '--data-root', data])
    trained = torch.load(osp.join(work, 'epoch_30.pth'), map_location='cpu', weights_only=False)
    assert 'backbone.stages.0.blocks.0.mlp.dwconv.weight' in trained['state_dict']  # PVTv2's
    metrics = metrics_of(run([PY, 'tools/test.py', config, osp.join(work, 'epoch_30.pth'),
                              '--work-dir', work, '--data-root', data]))
    assert metrics['accuracy/top1'] >= CLS_TOP1_BAR, metrics


def test_converter_tool(tmp_path):
    from conftest import official_state_dict
    src = tmp_path / 'pvt_small.pth'
    torch.save({'model': official_state_dict('small')}, src)
    for dst in (tmp_path / 'out' / 'pvt_s.pth', tmp_path / 'pvt_s.safetensors'):
        out = run([PY, 'tools/model_converters/pvt_to_pvt_mm.py', str(src), str(dst)])
        assert 'official layout, PVT-small' in out
        from pvt_mm import PVT
        model = PVT('small', init_cfg=dict(type='Pretrained', checkpoint=str(dst)))
        model.init_weights()
        torch.testing.assert_close(model.stages[2].blocks[5].attn.kv.weight,
                                   official_state_dict('small')['block3.5.attn.kv.weight'])


def test_tensorboard_switch_writes_events(tmp_path, mini_data):
    """docs/tools.md's three lines turn on mmengine's TensorboardVisBackend beside the local one."""
    cfg = tmp_path / 'with_tensorboard.py'
    cfg.write_text(textwrap.dedent(f'''
        _base_ = ['{osp.join(TOY, 'retinanet_pvt_t_toy.py')}']
        visualizer = dict(vis_backends=[dict(type='LocalVisBackend'),
                                        dict(type='TensorboardVisBackend')])
    '''))
    work = tmp_path / 'work'
    run([PY, 'tools/train.py', str(cfg), '--work-dir', str(work), '--data-root',
         str(mini_data / 'coco') + '/', *FEW_EPOCHS])
    events = list(work.glob('*/vis_data/events.out.tfevents.*'))
    assert len(events) == 1 and events[0].stat().st_size > 0
    assert list(work.glob('*/vis_data/scalars.json'))  # the local backend still writes


def test_mmsegs_browse_dataset_draws_a_pvt_config(tmp_path, mini_data):
    """mmseg's own tools/misc/browse_dataset.py on pvt_mm's ADE20K config: it used to stop in
    OpenCV ("Layout of the output array img is incompatible with cv::Mat")."""
    browse = mim_file('mmseg', 'tools', 'misc', 'browse_dataset.py')
    out = tmp_path / 'browse'
    run([PY, browse, osp.join(ROOT, 'configs', 'segmentation', 'fpn_pvt_t_ade20k_40k.py'),
         '--output-dir', str(out), '--not-show', '--cfg-options',
         f'train_dataloader.dataset.data_root={mini_data / "ade" / "ADEChallengeData2016"}'],
        env={'PYTHONPATH': ROOT})
    assert len(list(out.glob('vis_data/vis_image/toy_train_*.png'))) == 8


@pytest.mark.slow
def test_the_own_script_recipes_of_install_md_run_as_written(tmp_path, mini_data):
    """docs/install.md's two scripts (pvt_mm's prepare_config, and mmengine's plain
    Config.fromfile + Runner.from_cfg), unchanged, from a folder laid out as the checkout is
    (configs/, the toy set in data/toy/, here the small one): each trains the toy RetinaNet
    and writes its checkpoint where the script says."""
    text = open(osp.join(ROOT, 'docs', 'install.md')).read()
    section = text.split('## Running a config from your own script')[1].split('\n## ')[0]
    scripts = re.findall(r'```python\n(.*?)```', section, re.S)
    assert len(scripts) == 2 and 'Runner.from_cfg(cfg)' in scripts[1], scripts
    os.symlink(osp.join(ROOT, 'configs'), tmp_path / 'configs')
    (tmp_path / 'data').mkdir()
    os.symlink(mini_data, tmp_path / 'data' / 'toy')
    for i, script in enumerate(scripts):
        (tmp_path / f'recipe{i}.py').write_text(script)
    # Both in one process (one import of the stack), each as `python recipeN.py` runs it.
    both = ('import runpy\nfor i in (0, 1):\n'
            '    runpy.run_path(f"recipe{i}.py", run_name="__main__")')
    proc = subprocess.run([PY, '-c', both], cwd=tmp_path, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    for work in ('mine', 'retinanet_pvt_t_toy'):
        assert (tmp_path / 'work_dirs' / work / 'epoch_12.pth').is_file(), work
