"""Every config builds (model, datasets with lazy_init, optimizer wrapper), carries the paper's
recipe, and reproduces the paper's parameter counts."""
import copy
import functools
import importlib.util
import glob
import os.path as osp
import re

import pytest
import torch

from conftest import ROOT
from pvt_mm.run.config import load_config

from pvt_mm.run.amp import without_gpu_amp  # what tools/train.py does without a GPU

CONFIGS = sorted(p for p in glob.glob(osp.join(ROOT, 'configs', '*', '*.py'))
                 if '_base_' not in p)  # configs/_base_/ holds pieces, not configs
PANOPTICAPI = importlib.util.find_spec('panopticapi') is not None
NAMES = [osp.relpath(p, osp.join(ROOT, 'configs')) for p in CONFIGS]
_SIZE = re.compile(r'pvt_v2_(b0|b1|b2_li|b2|b3|b4|b5)(?=_)|pvt_(t|s|m|l)(?=_)')


def one_size_quick(names):
    """The names as pytest parameters: the first size of each pipeline (b0, PVT-Tiny, else
    the smallest there is) in the quick tier, the other sizes marked slow (`make test` runs
    them all)."""
    order = ['b0', 't', 's', 'b1', 'b2', 'b2_li', 'b3', 'b4', 'b5', 'm', 'l']
    first = {}
    for name in names:
        size = _SIZE.search(name)
        rank = order.index(size.group(1) or size.group(2)) if size else -1
        pipeline = _SIZE.sub(lambda m: 'pvt_v2_{}' if m.group(1) else 'pvt_{}', name)
        if pipeline not in first or rank < first[pipeline][0]:
            first[pipeline] = (rank, name)
    quick = {name for _, name in first.values()}
    return [n if n in quick else pytest.param(n, marks=pytest.mark.slow) for n in names]


# Paper Tables 3, 4 and 5: #Param (M).
PAPER_PARAMS_M = {
    'retinanet_pvt_{}_fpn_1x_coco': dict(t=23.0, s=34.2, m=53.9, l=71.1),
    'retinanet_pvt_{}_fpn_3x_mstrain_coco': dict(t=23.0, s=34.2, m=53.9, l=71.1),
    'mask_rcnn_pvt_{}_fpn_1x_coco': dict(t=32.9, s=44.1, m=63.9, l=81.0),
    'mask_rcnn_pvt_{}_fpn_3x_mstrain_coco': dict(t=32.9, s=44.1, m=63.9, l=81.0),
    'fpn_pvt_{}_ade20k_40k': dict(t=17.0, s=28.2, m=48.0, l=65.1),
}
EXPECTED = {pattern.format(k): v for pattern, sizes in PAPER_PARAMS_M.items()
            for k, v in sizes.items()}
EXPECTED['retinanet_pvt_s_fpn_1x_coco_640'] = 34.2


@functools.lru_cache(maxsize=None)
def _parsed(path):
    return load_config(path)


def load(path):
    """The config as the tools load it; parsed once (mmengine reads every base file again on
    each parse), a fresh copy each call."""
    cfg, task = _parsed(path)
    return copy.deepcopy(cfg), task


@pytest.mark.parametrize('name', one_size_quick(NAMES))
def test_config_builds(name):
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import DefaultScope

    from pvt_mm.network.families import FAMILIES, family_of
    path = osp.join(ROOT, 'configs', name)
    cfg, task = load(path)
    # As the Runner does: names in the config resolve in the config's default scope.
    DefaultScope.get_instance(f'pvt_mm_test_{osp.basename(path)}', scope_name=cfg.default_scope)
    with torch.device('meta'):  # what is built, without memory or init time
        model = task.build_model(cfg)
    assert family_of(model.backbone) is FAMILIES['PVTv2' if 'pvt_v2' in path else 'PVT']
    assert cfg.custom_imports['imports'] == ['pvt_mm']
    for split in ('train', 'val', 'test'):
        ds_cfg = copy.deepcopy(cfg[f'{split}_dataloader']['dataset'])
        ds_cfg['lazy_init'] = True
        if ds_cfg['type'] == 'CocoPanopticDataset' and not PANOPTICAPI:
            # mmdet's panoptic loading needs panopticapi (not on PyPI): its own message says so.
            with pytest.raises(ImportError, match='pip install git\\+https://github.com/'
                                                  'cocodataset/panopticapi.git'):
                task.registry('DATASETS').build(ds_cfg)
            continue
        dataset = task.registry('DATASETS').build(ds_cfg)
        assert dataset.pipeline is not None
    if cfg.optim_wrapper.get('type') == 'AmpOptimWrapper' and not torch.cuda.is_available():
        assert without_gpu_amp(cfg)
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    assert type(wrapper.optimizer).__name__ == 'AdamW'
    # pvt_mm's run-safety hooks, resolved in the config's scope as the Runner resolves them.
    from mmengine.registry import HOOKS

    from pvt_mm.run.hooks import AtomicCheckpointHook
    checkpoint_hook = HOOKS.build(cfg.default_hooks.checkpoint)
    assert isinstance(checkpoint_hook, AtomicCheckpointHook)
    assert [HOOKS.get(h['type']).__name__ for h in cfg.custom_hooks] == [
        'DataFilesHook', 'NonFiniteLossHook', 'StepSeedHook']


@pytest.mark.parametrize('name', one_size_quick(sorted(EXPECTED)))
def test_parameter_counts_match_the_paper(name):
    path = next(p for p in CONFIGS if osp.basename(p) == f'{name}.py')
    cfg, task = load(path)
    with torch.device('meta'):
        model = task.build_model(cfg)
    params = sum(p.numel() for p in model.parameters()) / 1e6
    assert abs(params - EXPECTED[name]) <= 0.1, f'{name}: {params:.2f}M vs paper {EXPECTED[name]}M'


# PVTv2 detectors and the segmentors under the newer heads: each equals, to the parameter, the same config built
# with mmdet's own PyramidVisionTransformerV2 of that size (mmdet has no linear SRA: a b2-li
# model is the b2 one less the two backbones' difference).
V2_DETECTORS = sorted(osp.basename(p)[:-3] for p in CONFIGS
                      if 'pvt_v2' in p and (osp.sep + 'detection' + osp.sep in p
                                            or osp.basename(p).startswith(('upernet_',
                                                                           'segformer_',
                                                                           'mask2former_'))))


def _meta_count(cfg, task):
    with torch.device('meta'):
        return sum(p.numel() for p in task.build_model(cfg).parameters())


@functools.lru_cache
def _mmdet_backbone_count(arch):
    """mmdet's PyramidVisionTransformerV2 of the size (on the CPU: it calls .item() while
    building, which the meta device cannot)."""
    from mmdet.models.backbones import PyramidVisionTransformerV2

    from pvt_mm.network.arch import ARCH_SETTINGS_V2
    a = ARCH_SETTINGS_V2[arch]
    model = PyramidVisionTransformerV2(
        embed_dims=a['embed_dims'][0], num_layers=list(a['depths']),
        num_heads=list(a['num_heads']), mlp_ratios=list(a['mlp_ratios']),
        sr_ratios=list(a['sr_ratios']))
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize('name', one_size_quick(V2_DETECTORS))
def test_pvt_v2_detectors_count_as_mmdets_own(name):
    """The detector less pvt_mm's backbone plus mmdet's: what the same config builds with
    mmdet's backbone (the neck and heads depend on the config alone)."""
    from pvt_mm import PVTv2
    cfg, task = load(next(p for p in CONFIGS if osp.basename(p) == f'{name}.py'))
    arch = cfg.model.backbone.arch
    with torch.device('meta'):
        ours = sum(p.numel() for p in task.build_model(cfg).parameters())
        backbone = sum(p.numel() for p in PVTv2(arch).parameters())
        b2_li_less = sum(p.numel() for p in PVTv2('b2').parameters()) - \
            sum(p.numel() for p in PVTv2('b2_li').parameters())
    if arch == 'b2_li':
        reference = ours - backbone + _mmdet_backbone_count('b2') - b2_li_less
    else:
        reference = ours - backbone + _mmdet_backbone_count(arch)
    assert ours == reference, (ours, reference)


@pytest.mark.parametrize('name', ['upernet_pvt_s_ade20k_160k', 'segformer_pvt_s_ade20k_160k',
                                  'mask2former_pvt_s_ade20k_160k', 'dino_4scale_pvt_s_12e_coco',
                                  'deformable_detr_refine_twostage_pvt_s_50e_coco',
                                  'mask2former_pvt_s_lsj_50e_coco',
                                  'mask2former_pvt_s_lsj_50e_coco_panoptic'])
def test_pvt_s_models_count_as_with_mmdets_pvt_small(name):
    """PVT v1 under the newer heads: the same config with mmdet's PyramidVisionTransformer
    (PVT-Small) of the same outputs, built through mmdet's registry (in mmseg configs too)."""
    cfg, task = load(next(p for p in CONFIGS if osp.basename(p) == f'{name}.py'))
    reference = copy.deepcopy(cfg)
    reference.model.backbone = dict(type='mmdet.PyramidVisionTransformer', num_layers=[3, 4, 6, 3],
                                    out_indices=tuple(cfg.model.backbone.get('out_indices',
                                                                             (0, 1, 2, 3))))
    built = task.build_model(reference)
    assert type(built.backbone).__name__ == 'PyramidVisionTransformer'
    assert _meta_count(cfg, task) == sum(p.numel() for p in built.parameters())


@pytest.mark.parametrize('name,lr', [('dino_4scale_pvt_s_12e_coco', 1e-4),
                                     ('dino_4scale_pvt_v2_b2_12e_coco', 1e-4),
                                     ('deformable_detr_refine_twostage_pvt_s_50e_coco', 2e-4),
                                     ('deformable_detr_refine_twostage_pvt_v2_b0_50e_coco', 2e-4)])
def test_detr_family_takes_the_upstream_recipe(name, lr):
    """mmdet's DINO and Deformable DETR recipes for the backbone: 0.1x learning rate,
    gradient clipping at 0.1, unpadded batches; with_cp as its Swin DINO; PVT v1's position
    embeddings without decay."""
    from mmengine.optim import build_optim_wrapper
    cfg, task = load(next(p for p in CONFIGS if osp.basename(p) == f'{name}.py'))
    model = task.build_model(cfg)
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    groups = {id(p): g for g in wrapper.optimizer.param_groups for p in g['params']}
    assert cfg.optim_wrapper.optimizer.lr == lr
    for key, param in model.backbone.named_parameters():
        assert groups[id(param)]['lr'] == pytest.approx(lr / 10), key
        assert groups[id(param)]['weight_decay'] == (0.0 if 'pos_embed' in key else 1e-4), key
    assert all(groups[id(p)]['lr'] == pytest.approx(lr) for p in model.neck.parameters())
    assert cfg.optim_wrapper.clip_grad == dict(max_norm=0.1, norm_type=2)
    assert cfg.model.data_preprocessor.pad_size_divisor == 1
    assert model.backbone.with_cp and tuple(cfg.model.backbone.out_indices) == (1, 2, 3)
    assert cfg.model.neck.num_outs == 4


@pytest.mark.parametrize('name', ['upernet_pvt_s_ade20k_160k', 'upernet_pvt_v2_b2_ade20k_160k',
                                  'segformer_pvt_s_ade20k_160k', 'segformer_pvt_v2_b0_ade20k_160k'])
def test_segmentors_keep_norms_and_position_embeddings_out_of_weight_decay(name):
    """mmseg's Swin UPerNet and MiT SegFormer rules: no decay on norms (nor on position
    embeddings); SegFormer's head at 10x the learning rate."""
    from mmengine.optim import build_optim_wrapper
    cfg, task = load(next(p for p in CONFIGS if osp.basename(p) == f'{name}.py'))
    model = task.build_model(cfg)
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    decay = {id(p): g['weight_decay'] for g in wrapper.optimizer.param_groups for p in g['params']}
    for key, param in model.backbone.named_parameters():
        no_decay = 'norm' in key or 'pos_embed' in key
        assert decay[id(param)] == (0.0 if no_decay else 0.01), key
    assert any('pos_embed' in k for k, _ in model.backbone.named_parameters()) == ('pvt_s' in name)
    lr = {id(p): g['lr'] for g in wrapper.optimizer.param_groups for p in g['params']}
    base_lr = cfg.optim_wrapper.optimizer.lr
    head_mult = 10.0 if name.startswith('segformer') else 1.0
    assert {lr[id(p)] / base_lr for p in model.decode_head.parameters()} == {head_mult}
    assert {lr[id(p)] / base_lr for p in model.backbone.parameters()} == {1.0}


@pytest.mark.parametrize('name', ['mask2former_pvt_s_lsj_50e_coco', 'mask2former_pvt_v2_b5_lsj_50e_coco',
                                  'mask2former_pvt_v2_b4_ade20k_160k',
                                  'mask2former_pvt_v2_b2_li_lsj_50e_coco_panoptic'])
def test_mask2former_takes_its_swin_recipe(name):
    """mmdet's and mmseg's Swin Mask2Former rules restated for PVT: the whole backbone at 0.1x
    the learning rate, every norm of it (and v1's position embeddings) without decay, the rest
    of the backbone with the full 0.05; the query and level embeddings without decay; gradient
    clipping at 0.01."""
    from mmengine.optim import build_optim_wrapper
    cfg, task = load(next(p for p in CONFIGS if osp.basename(p) == f'{name}.py'))
    with torch.device('meta'):
        model = task.build_model(cfg)
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    groups = {id(p): g for g in wrapper.optimizer.param_groups for p in g['params']}
    for key, param in model.backbone.named_parameters():
        assert groups[id(param)]['lr'] == pytest.approx(1e-5), key
        no_decay = 'norm' in key or 'pos_embed' in key
        assert groups[id(param)]['weight_decay'] == (0.0 if no_decay else 0.05), key
    head = model.panoptic_head if hasattr(model, 'panoptic_head') else model.decode_head
    for key, param in head.named_parameters():
        assert groups[id(param)]['lr'] == pytest.approx(1e-4), key
        if key.split('.')[-2] in ('query_embed', 'query_feat', 'level_embed'):
            assert groups[id(param)]['weight_decay'] == 0.0, key
    assert cfg.optim_wrapper.clip_grad == dict(max_norm=0.01, norm_type=2)


@pytest.mark.parametrize('name', ['retinanet_pvt_v2_b0_fpn_1x_coco',
                                  'mask_rcnn_pvt_v2_b0_fpn_1x_coco'])
def test_pvt_v2_b0_detectors_equal_the_same_config_on_mmdets_backbone(name):
    """Built whole, the reference way: the config with its backbone swapped for mmdet's."""
    from pvt_mm.network.arch import ARCH_SETTINGS_V2
    cfg, task = load(next(p for p in CONFIGS if osp.basename(p) == f'{name}.py'))
    a = ARCH_SETTINGS_V2['b0']
    reference = copy.deepcopy(cfg)
    reference.model.backbone = dict(
        type='mmdet.PyramidVisionTransformerV2', embed_dims=a['embed_dims'][0],
        num_layers=list(a['depths']), num_heads=list(a['num_heads']),
        mlp_ratios=list(a['mlp_ratios']), sr_ratios=list(a['sr_ratios']))
    built = task.build_model(reference)
    assert type(built.backbone).__name__ == 'PyramidVisionTransformerV2'
    assert _meta_count(cfg, task) == sum(p.numel() for p in built.parameters())


def test_trans2seg_parameters_against_the_paper():
    """Table 7: PVT-Small + Trans2Seg 32.1 M. pvt_mm builds only parameters that reach the
    output: 30.56 M (PVT-S 23.97 + head 6.59); Trans2Seg's code adds 2.11 M that never get a
    gradient (pvt_mm/run/trans2seg_head.py), 32.66 M in all."""
    path = next(p for p in CONFIGS if osp.basename(p) == 'trans2seg_pvt_s_ade20k_40k.py')
    cfg, task = load(path)
    model = task.build_model(cfg)
    params = sum(p.numel() for p in model.parameters()) / 1e6
    assert abs(params - 30.56) <= 0.01 and abs(params - 32.1) <= 1.6, params


class _ByName(dict):
    """Configs by file name, each parsed when first asked for."""

    def __missing__(self, name):
        path = next(p for p in CONFIGS if osp.basename(p) == f'{name}.py')
        self[name] = load(path)[0]
        return self[name]


def test_recipes_are_in_the_files():
    cfgs = _ByName()
    for size, arch in dict(t='tiny', s='small', m='medium', l='large').items():
        one = cfgs[f'retinanet_pvt_{size}_fpn_1x_coco']
        three = cfgs[f'retinanet_pvt_{size}_fpn_3x_mstrain_coco']
        mask = cfgs[f'mask_rcnn_pvt_{size}_fpn_1x_coco']
        seg = cfgs[f'fpn_pvt_{size}_ade20k_40k']
        for cfg in (one, three, mask, seg):
            assert cfg.model.backbone.arch == arch
            assert cfg.model.backbone.init_cfg.checkpoint == (
                f'https://github.com/whai362/PVT/releases/download/v2/pvt_{arch}.pth')
        assert one.optim_wrapper.optimizer == dict(type='AdamW', lr=1e-4, weight_decay=1e-4)
        assert mask.optim_wrapper.optimizer == dict(type='AdamW', lr=2e-4, weight_decay=1e-4)
        assert one.train_cfg.max_epochs == 12 and three.train_cfg.max_epochs == 36
        assert one.param_scheduler[1].milestones == [8, 11]
        assert three.param_scheduler[1].milestones == [27, 33]
        assert one.param_scheduler[0].end == 500
        assert one.auto_scale_lr == dict(enable=True, base_batch_size=16)
        assert one.train_dataloader.batch_size == 2
        assert dict(one.model.neck) == dict(
            type='FPN', in_channels=[64, 128, 320, 512], out_channels=256, start_level=1,
            add_extra_convs='on_input', num_outs=5)
        resize = [t for t in three.train_dataloader.dataset.pipeline if 'Resize' in t.type][0]
        assert resize.type == 'RandomResize' and resize.scale == [(1333, 640), (1333, 800)]
        test_resize = [t for t in three.test_dataloader.dataset.pipeline if 'Resize' in t.type][0]
        assert test_resize.scale == (1333, 800)
        amp = size == 'l'
        for cfg in (one, three, mask):
            assert (cfg.optim_wrapper.get('type') == 'AmpOptimWrapper') == amp
        # Semantic FPN
        assert seg.optim_wrapper.optimizer == dict(type='AdamW', lr=2e-4, weight_decay=1e-4)
        assert seg.param_scheduler[0].type == 'PolyLR' and seg.param_scheduler[0].power == 0.9
        assert seg.train_cfg.max_iters == 40000
        assert seg.train_dataloader.batch_size * 8 == seg.auto_scale_lr.base_batch_size == 32
        assert seg.model.decode_head.num_classes == 150 and seg.model.decode_head.channels == 128
        assert seg.model.neck.num_outs == 4
        crop = [t for t in seg.train_dataloader.dataset.pipeline if t.type == 'RandomCrop'][0]
        rr = [t for t in seg.train_dataloader.dataset.pipeline if t.type == 'RandomResize'][0]
        assert crop.crop_size == (512, 512) and rr.ratio_range == (0.5, 2.0)
    s640 = cfgs['retinanet_pvt_s_fpn_1x_coco_640']
    assert [t for t in s640.test_dataloader.dataset.pipeline if t.type == 'Resize'][0].scale == (
        1066, 640)
    t2s = cfgs['trans2seg_pvt_s_ade20k_40k']  # Section 5.4: the Semantic FPN recipe, 40k
    assert t2s.model.backbone.arch == 'small' and t2s.model.neck is None
    head = t2s.model.decode_head
    assert head.type == 'pvt_mm.Trans2SegHead' and head.num_classes == 150
    assert (head.embed_dim, head.depth, head.num_heads, head.mlp_ratio, head.channels) == (
        256, 4, 8, 3.0, 64)  # Trans2Seg's "small" head
    assert head.in_index == [0, 3] and head.token_grid == (16, 16)
    assert t2s.optim_wrapper.optimizer == dict(type='AdamW', lr=1e-4, weight_decay=1e-4)
    assert t2s.param_scheduler[0].type == 'PolyLR' and t2s.param_scheduler[0].power == 0.9
    assert t2s.train_cfg.max_iters == 40000
    assert t2s.train_dataloader.batch_size * 4 == t2s.auto_scale_lr.base_batch_size == 16
    crop = [t for t in t2s.train_dataloader.dataset.pipeline if t.type == 'RandomCrop'][0]
    assert crop.crop_size == (512, 512)
    test_resize = [t for t in t2s.test_dataloader.dataset.pipeline if t.type == 'Resize'][0]
    assert test_resize.scale == (2048, 512) and t2s.model.test_cfg.mode == 'whole'
    for size, arch in dict(t='tiny', s='small', m='medium', l='large').items():
        c = cfgs[f'pvt_{size}_8xb128_in1k']  # the official classification recipe
        assert c.model.type == 'ImageClassifier' and c.model.head.type == 'ClsHead'
        assert c.model.backbone == dict(type='pvt_mm.PVT', arch=arch, num_classes=1000,
                                        drop_path_rate=0.1 if size in 'ts' else 0.3)
        assert c.model.head.loss == dict(type='LabelSmoothLoss', label_smooth_val=0.1,
                                         mode='original')
        assert c.model.train_cfg.augments == [dict(type='Mixup', alpha=0.8),
                                              dict(type='CutMix', alpha=1.0)]
        assert c.train_cfg.max_epochs == 300 and c.train_dataloader.batch_size == 128
        assert c.optim_wrapper.optimizer.lr == 1e-3 and c.optim_wrapper.optimizer.weight_decay == 0.05
        assert c.auto_scale_lr.base_batch_size == 1024
        keys = c.optim_wrapper.paramwise_cfg.custom_keys
        assert keys['cls_token'] == keys['pos_embed'] == dict(decay_mult=0.0)
        assert c.param_scheduler[0].end == 5 and c.param_scheduler[1].type == 'CosineAnnealingLR'
        assert (c.optim_wrapper.get('clip_grad') or {}).get('max_norm') == (
            None if size in 'ts' else 1.0)
        steps = {t.type: t for t in c.train_dataloader.dataset.pipeline}
        assert steps['RandAugment'].magnitude_level == 9 and steps['RandAugment'].magnitude_std == 0.5
        assert steps['RandomErasing'].erase_prob == 0.25
        assert steps['RandomResizedCrop'].interpolation == 'bicubic'
    detr = cfgs['detr_pvt_s_8x2_50ep_coco']
    assert detr.train_cfg.max_epochs == 50 and detr.param_scheduler[0].milestones == [33]
    assert detr.optim_wrapper.optimizer.lr == 1e-4
    assert detr.model.backbone.out_indices == (3, ) and detr.model.neck.in_channels == [512]


# The official PVTv2 classifiers with their heads, in millions (official README and code).
PVT_V2_CLASSIFIER_M = dict(b0=3.67, b1=14.01, b2=25.36, b2_li=22.55, b3=45.24, b4=62.56,
                           b5=81.96)


@pytest.mark.parametrize('arch', sorted(PVT_V2_CLASSIFIER_M))
def test_pvt_v2_classification_recipes(arch):
    """The official recipe (classification/configs/pvt_v2/): PVT v1's, stochastic depth 0.1
    for b0-b2-li, 0.3 with gradient clipping at 1.0 for b3-b5; the model as the config builds
    it has the official model's parameters."""
    cfg, task = load(osp.join(ROOT, 'configs', 'classification', f'pvt_v2_{arch}_8xb128_in1k.py'))
    large = arch in ('b3', 'b4', 'b5')
    assert cfg.model.backbone == dict(type='pvt_mm.PVTv2', arch=arch, num_classes=1000,
                                      drop_path_rate=0.3 if large else 0.1)
    assert (cfg.optim_wrapper.get('clip_grad') or {}).get('max_norm') == (1.0 if large else None)
    assert cfg.optim_wrapper.optimizer.lr == 1e-3 and cfg.train_cfg.max_epochs == 300
    assert cfg.model.train_cfg.augments == [dict(type='Mixup', alpha=0.8),
                                            dict(type='CutMix', alpha=1.0)]
    with torch.device('meta'):
        model = task.build_model(cfg)
    params = sum(p.numel() for p in model.parameters()) / 1e6
    assert round(params, 2) == PVT_V2_CLASSIFIER_M[arch], params


def checkpoint_override(path):
    """The README's override, parsed by the tools' own --cfg-options flag."""
    import argparse

    from pvt_mm.run.cli import add_run_args
    parser = argparse.ArgumentParser()
    add_run_args(parser)
    return parser.parse_args(['--cfg-options', 'model.backbone.init_cfg.type=Pretrained',
                              f'model.backbone.init_cfg.checkpoint={path}']).cfg_options


@pytest.mark.parametrize('name', one_size_quick(NAMES))
def test_one_backbone_checkpoint_override_fits_every_config(name):
    cfg, _ = load(osp.join(ROOT, 'configs', name))
    cfg.merge_from_dict(checkpoint_override('/weights/pvt.pth'))  # as load_config merges it
    assert cfg.model.backbone.init_cfg == dict(type='Pretrained', checkpoint='/weights/pvt.pth')


def test_the_override_loads_the_weights_into_a_toy_model(tmp_path):
    from conftest import official_state_dict
    sd = official_state_dict('tiny', seed=9)
    torch.save(sd, tmp_path / 'pvt_tiny.pth')
    cfg, task = load_config(osp.join(ROOT, 'configs', 'toy', 'retinanet_pvt_t_toy.py'),
                            checkpoint_override(tmp_path / 'pvt_tiny.pth'))
    model = task.build_model(cfg)
    model.init_weights()
    torch.testing.assert_close(model.backbone.stages[1].blocks[1].attn.kv.weight,
                               sd['block2.1.attn.kv.weight'], rtol=0, atol=0)


def test_roi_heads_read_nchw_contiguous_maps():
    """mmcv's CPU RoIAlign indexes its input as contiguous NCHW whatever its strides: fed a
    channels-last map it returns other values (measured: up to 2.57 apart on unit-scale
    features, mmcv 2.1.0). A backbone that hands the neck channels-last views (batch > 1)
    makes the FPN's convolutions keep that layout, and the toy Mask R-CNN then does not
    learn (box mAP 0.002). The maps the RoI extractors read must be contiguous NCHW."""
    from mmengine.registry import DefaultScope
    cfg, task = load_config(osp.join(ROOT, 'configs', 'toy', 'mask_rcnn_pvt_t_toy.py'))
    DefaultScope.get_instance('pvt_mm_test_roi_layout', scope_name=cfg.default_scope)
    model = task.build_model(cfg).eval()
    with torch.no_grad():
        feats = model.extract_feat(torch.randn(2, 3, 128, 160))
    assert all(f.is_contiguous() for f in feats), [f.stride() for f in feats]


def test_the_readmes_own_config_snippets_build_pvt_mms_detector_and_segmentor(tmp_path):
    """README's PVTv2-b2 snippets on mmdet's and mmseg's own ResNet bases build the same
    networks as pvt_mm's configs of those pipelines (parameter for parameter), with the
    official AdamW, PVTv2 weights from the official release and no ResNet weights left."""
    import re
    text = open(osp.join(ROOT, 'README.md')).read()
    section = text.split('## Use from your own MMDetection')[1].split('\n## ')[0]
    snippets = [s for s in re.findall(r'```python\n(.*?)```', section, re.S) if '_base_' in s]
    assert len(snippets) == 2, snippets
    theirs = dict(mmdet='detection/retinanet_pvt_v2_b2_fpn_1x_coco.py',
                  mmseg='segmentation/fpn_pvt_v2_b2_ade20k_40k.py')
    for snippet in snippets:
        package = re.search(r"_base_ = \['(\w+)::", snippet).group(1)
        path = tmp_path / f'{package}_snippet.py'
        path.write_text(snippet)
        cfg, task = load_config(str(path))
        reference, _ = load_config(osp.join(ROOT, 'configs', theirs[package]))
        assert _meta_count(cfg, task) == _meta_count(reference, task), package
        backbone = cfg.model.backbone
        assert (backbone.type, backbone.arch) == ('pvt_mm.PVTv2', 'b2')
        assert backbone.init_cfg.checkpoint == reference.model.backbone.init_cfg.checkpoint
        assert cfg.optim_wrapper.optimizer == reference.optim_wrapper.optimizer, package
        assert cfg.model.get('pretrained') is None
