"""tools/test.py on whole-model checkpoints: an mmdet-2 detector file with its backbone in the
official layout (what the official detection code saved) is converted and loaded strictly, and
predicts exactly what the same weights in pvt_mm's layout predict; a file that does not fit
the config's model raises before any image is run, naming the keys."""
import os.path as osp
import pickle

import numpy as np
import pytest
import torch

from conftest import (PY, TOY, load_tool, mim_file, official_state_dict,
                      official_v2_state_dict, run)
from pvt_mm import CheckpointError
from pvt_mm.network.model_weights import read_model_checkpoint
from pvt_mm.network.weights import load_pretrained
from pvt_mm.run.config import load_config

CONFIG = osp.join(TOY, 'retinanet_pvt_v2_b0_toy.py')
# Every random box kept, so that the two runs have predictions to compare.
ALL_BOXES = ['--cfg-options', 'model.test_cfg.score_thr=0.0']


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    """The toy PVTv2-b0 RetinaNet's weights twice: mmdet 2's file layout (``meta``,
    ``state_dict``, ``optimizer``; official backbone keys) and mmengine's in pvt_mm's."""
    from mmengine.registry import DefaultScope
    root = tmp_path_factory.mktemp('whole')
    torch.manual_seed(0)
    cfg, task = load_config(CONFIG)
    DefaultScope.get_instance('pvt_mm_test_whole_checkpoints', scope_name=cfg.default_scope)
    model = task.build_model(cfg)
    official = official_v2_state_dict('b0', seed=3, num_classes=0)
    torch.save(official, root / 'backbone.pth')
    load_pretrained(model.backbone, str(root / 'backbone.pth'))
    native = model.state_dict()
    torch.save({'meta': dict(epoch=12), 'state_dict': native}, root / 'pvt_mm.pth')
    heads = {k: v for k, v in native.items() if not k.startswith('backbone.')}
    mmdet2 = {**{f'backbone.{k}': v for k, v in official.items()}, **heads}
    torch.save({'meta': dict(mmdet_version='2.13.0', CLASSES=('circle', 'square', 'triangle'),
                             epoch=12, iter=300),
                'state_dict': mmdet2, 'optimizer': dict(state={}, param_groups=[])},
               root / 'mmdet2.pth')
    no_head = {k: v for k, v in mmdet2.items() if not k.startswith('bbox_head.retina_cls.')}
    torch.save({'state_dict': no_head}, root / 'no_head.pth')
    return dict(root=root, model=model, native=native, official=official)


def predictions(path):
    with open(path, 'rb') as f:
        return pickle.load(f)


@pytest.mark.slow
def test_official_mmdet2_file_predicts_what_the_converted_weights_do(files, mini_data, tmp_path):
    data = str(mini_data / 'coco') + '/'
    outs = {}
    for name in ('pvt_mm', 'mmdet2'):
        out = run([PY, 'tools/test.py', CONFIG, str(files['root'] / f'{name}.pth'),
                   '--work-dir', str(tmp_path / name), '--data-root', data,
                   '--out', str(tmp_path / f'{name}.pkl'), *ALL_BOXES])
        outs[name] = out
    assert 'backbone keys converted from the official_v2 layout' in outs['mmdet2']
    ours, theirs = predictions(tmp_path / 'pvt_mm.pkl'), predictions(tmp_path / 'mmdet2.pkl')
    assert len(ours) == len(theirs) == 4
    for a, b in zip(ours, theirs):
        assert len(a['pred_instances']['scores']) > 0
        for key in ('bboxes', 'scores', 'labels'):
            assert torch.equal(a['pred_instances'][key], b['pred_instances'][key]), key


@pytest.mark.slow
def test_a_file_that_does_not_fit_fails_before_any_image(files, mini_data, tmp_path):
    out = run([PY, 'tools/test.py', CONFIG, str(files['root'] / 'no_head.pth'),
               '--work-dir', str(tmp_path), '--data-root', str(mini_data / 'coco') + '/'],
              check=False)
    assert 'CheckpointError' in out and 'nothing was loaded' in out, out[-3000:]
    assert 'Missing in the file (2): bbox_head.retina_cls.weight, bbox_head.retina_cls.bias' \
        in out, out[-3000:]
    assert 'pvt_mm metrics' not in out


def test_read_model_checkpoint_converts_the_backbone_alone(files):
    read = read_model_checkpoint(str(files['root'] / 'mmdet2.pth'))
    assert read.layout == 'official_v2' and not read.network_alone
    assert read.state_dict.keys() == files['native'].keys()
    for key, value in files['native'].items():
        assert torch.equal(read.state_dict[key], value), key
    assert read.fitted(files['model']).keys() == files['native'].keys()
    assert read.dataset_meta == dict(classes=('circle', 'square', 'triangle'))
    assert read_model_checkpoint(str(files['root'] / 'pvt_mm.pth')).layout is None


def test_the_converter_writes_a_whole_detector_file_whole(files, tmp_path, capsys):
    """An official mmdet-2 detector file becomes mmengine's checkpoint of the same detector
    in pvt_mm's layout: the state dict tools/test.py converts it to, its meta kept; checked
    against the config first. A .safetensors destination is refused for a whole model."""
    converter = load_tool('tools/model_converters/pvt_to_pvt_mm.py')
    dst = str(tmp_path / 'retinanet_pvt_v2_b0_pvt_mm.pth')
    converter.main([str(files['root'] / 'mmdet2.pth'), dst, '--config', CONFIG])
    assert 'whole model, official_v2 layout, PVTv2-b0, backbone from the official_v2 layout, ' \
        f'checked against {CONFIG}' in capsys.readouterr().out
    read = read_model_checkpoint(dst)
    assert read.layout is None and read.meta['CLASSES'] == ('circle', 'square', 'triangle')
    assert read.state_dict.keys() == files['native'].keys()
    assert all(torch.equal(read.state_dict[k], v) for k, v in files['native'].items())
    with pytest.raises(ValueError, match=r'holds a whole model .* a \.pth file'):
        converter.main([str(files['root'] / 'mmdet2.pth'), str(tmp_path / 'whole.safetensors')])
    with pytest.raises(CheckpointError, match=r'Missing in the file \(2\): bbox_head'):
        converter.main([str(files['root'] / 'no_head.pth'), str(tmp_path / 'no.pth'),
                        '--config', CONFIG])
    assert not (tmp_path / 'no.pth').exists()


def test_a_classifier_takes_the_official_classification_file_whole(tmp_path):
    """pvt_mm's ImageNet configs keep the head inside the PVT: the official pvt_tiny.pth (no
    backbone. prefix) is that whole classifier; a 3-class toy takes all but the head."""
    from conftest import official_state_dict
    torch.save({'model': official_state_dict('tiny', seed=6)}, tmp_path / 'pvt_tiny.pth')
    read = read_model_checkpoint(str(tmp_path / 'pvt_tiny.pth'))
    assert read.network_alone == 'PVT' and read.layout == 'official'
    for name, classes in (('pvt_t_cls_toy.py', 3),
                          ('../classification/pvt_t_8xb128_in1k.py', 1000)):
        cfg, task = load_config(osp.join(TOY, name))
        with torch.device('meta'):
            model = task.build_model(cfg)
        fitted = read.fitted(model)
        assert fitted.keys() == model.state_dict().keys()
        kept = torch.equal(fitted['backbone.head.weight'], read.state_dict['head.weight']) \
            if classes == 1000 else fitted['backbone.head.weight'].shape[0] == 3
        assert kept, name


def test_a_backbone_file_given_as_a_whole_model_is_named(files):
    read = read_model_checkpoint(str(files['root'] / 'backbone.pth'))
    assert read.network_alone == 'PVTv2' and read.layout == 'official_v2'
    with pytest.raises(CheckpointError, match=r"holds a PVTv2 network alone, not a whole model: "
                                              r"load it through the backbone's init_cfg"):
        read.fitted(files['model'])


def test_backbone_keys_in_no_pvt_layout_are_refused(tmp_path):
    torch.save({'state_dict': {'backbone.conv1.weight': torch.zeros(64, 3, 7, 7),
                               'backbone.bn1.weight': torch.zeros(64)}}, tmp_path / 'r50.pth')
    with pytest.raises(CheckpointError, match=r'r50\.pth: its backbone\. keys: no PVT weights '
                                              r'recognised'):
        read_model_checkpoint(str(tmp_path / 'r50.pth'))


def test_an_official_v1_detector_file_leaves_the_class_tokens_row(tmp_path):
    """The official PVT v1 detection code keeps the class token's row in its last position
    embedding: the converted file's backbone.cls_pos_embed is left out (and said), the rest
    loads strictly into the toy PVT-Tiny RetinaNet."""
    from mmengine.registry import DefaultScope
    cfg, task = load_config(osp.join(TOY, 'retinanet_pvt_t_toy.py'))
    DefaultScope.get_instance('pvt_mm_test_whole_v1', scope_name=cfg.default_scope)
    model = task.build_model(cfg)
    official = official_state_dict('tiny', seed=4, classifier=False)
    heads = {k: v for k, v in model.state_dict().items() if not k.startswith('backbone.')}
    torch.save({'state_dict': {**{f'backbone.{k}': v for k, v in official.items()}, **heads}},
               tmp_path / 'retinanet_pvt_t.pth')
    read = read_model_checkpoint(str(tmp_path / 'retinanet_pvt_t.pth'))
    assert read.layout == 'official' and 'backbone.cls_pos_embed' in read.state_dict
    assert 'backbone.cls_pos_embed' not in read.fitted(model)
    read.load_into(model)
    torch.testing.assert_close(model.backbone.stages[3].pos_embed, official['pos_embed4'][:, 1:],
                               rtol=0, atol=0)


# ---- mmdet's own PVTv2 detector file through demo, export and the runner without torch ----

def mmdets_retinanet_pvt_v2_b0(cfg, task):
    """The toy RetinaNet config built with mmdet's own PyramidVisionTransformerV2 (what
    mmdet's model-zoo retinanet_pvtv2 files hold), every tensor random but scaled like a
    trained network's."""
    import copy
    from conftest import randomised

    from pvt_mm.network.arch import ARCH_SETTINGS_V2
    a = ARCH_SETTINGS_V2['b0']
    reference = copy.deepcopy(cfg)
    reference.model.backbone = dict(
        type='mmdet.PyramidVisionTransformerV2', embed_dims=a['embed_dims'][0],
        num_layers=list(a['depths']), num_heads=list(a['num_heads']),
        mlp_ratios=list(a['mlp_ratios']), sr_ratios=list(a['sr_ratios']))
    return randomised(task.build_eval_model(reference), seed=7)


def with_official_eps(model):
    """mmdet's PVTv2 with the official LayerNorm eps (1e-5 in the patch embeddings and the
    spatial reduction; the weights do not record it), so that it computes what pvt_mm's
    PVTv2 computes from the same weights."""
    import re
    for name, m in model.backbone.named_modules():
        if isinstance(m, torch.nn.LayerNorm) and re.search(r'layers\.\d+\.0\.norm$|attn\.norm$',
                                                           name):
            m.eps = 1e-5
    return model


@pytest.mark.slow
def test_mmdets_pvt_v2_detector_file_through_demo_export_and_pvt_deploy(mini_data, tmp_path):
    """mmdet's RetinaNet-PVTv2-b0 checkpoint (mmengine's file: meta.dataset_meta and the
    state dict, backbone in mmdet's layout) with pvt_mm's config of the same detector:
    demo.py predicts what mmdet's own model predicts from the file, export_onnx.py --end2end
    exports it (verified against PyTorch, the file's classes in the graph), and pvt_deploy,
    without torch, predicts the same detections again."""
    import json

    from mmdet.apis import inference_detector
    from test_end2end import run_without_torch
    from pvt_deploy.model import read_metadata

    cfg, task = load_config(CONFIG)
    mmdet_model = mmdets_retinanet_pvt_v2_b0(cfg, task)
    classes = ('disc', 'box', 'wedge')
    path = str(tmp_path / 'retinanet_pvtv2-b0_mmdet.pth')
    torch.save({'meta': dict(dataset_meta=dict(classes=classes), mmdet_version='3.3.0',
                             epoch=12), 'state_dict': mmdet_model.state_dict()}, path)
    assert read_model_checkpoint(path).layout == 'mmdet_v2'
    image = str(sorted((mini_data / 'coco' / 'val2017').iterdir())[0])

    demo = load_tool('tools/demo.py').main([image, CONFIG, path, '--out',
                                            str(tmp_path / 'demo.png'), '--device', 'cpu'])
    mmdet_model.cfg = cfg
    with torch.no_grad():
        reference = inference_detector(with_official_eps(mmdet_model), image)
    expected = dict(pred_instances={k: v.numpy() for k, v in reference.pred_instances.items()})
    _same_detections(dict(pred_instances={k: v.numpy()
                                          for k, v in demo.pred_instances.items()}), expected)

    onnx_file = str(tmp_path / 'retinanet_e2e.onnx')
    load_tool('tools/deployment/export_onnx.py').main(
        [CONFIG, path, '--out', onnx_file, '--end2end', '--repeat', '1'])
    assert tuple(read_metadata(onnx_file)['classes']) == classes  # the file's, not the config's
    result = tmp_path / 'runner.json'
    run_without_torch([onnx_file, image, '--json', str(result), '--out-dir',
                       str(tmp_path / 'runner')])
    (pred,) = json.load(open(result))
    _same_detections(dict(pred_instances={k: np.asarray(pred[k])
                                          for k in ('bboxes', 'scores', 'labels')}), expected)


def test_demo_refuses_a_file_that_does_not_fit(files, mini_data, tmp_path):
    """demo.py (mmdet's init_detector would load it leniently and keep a random head) stops
    before predicting, naming the keys."""
    image = str(sorted((mini_data / 'coco' / 'val2017').iterdir())[0])
    with pytest.raises(CheckpointError, match=r'Missing in the file \(2\): '
                                              r'bbox_head\.retina_cls\.weight'):
        load_tool('tools/demo.py').main([image, CONFIG, str(files['root'] / 'no_head.pth'),
                                         '--out', str(tmp_path / 'demo.png')])


def _same_detections(got, expected):
    """Every expected box has a box of the same label, its score within 1e-4 and its corners
    within 1e-2 px, one to one, and no more boxes (the two compute the same function in
    float32; the differences are rounding)."""
    (b1, s1, l1), (b2, s2, l2) = ([np.asarray(p['pred_instances'][k])
                                   for k in ('bboxes', 'scores', 'labels')]
                                  for p in (got, expected))
    assert len(s1) == len(s2) > 0, (len(s1), len(s2))
    free = np.ones(len(s1), bool)
    for box, score, label in zip(b2, s2, l2):
        match = free & (l1 == label) & (np.abs(s1 - score) <= 1e-4) & \
            (np.abs(b1 - box).max(1) <= 1e-2)
        assert match.any(), (box, score, label)
        free[np.argmax(match)] = False


@pytest.mark.parametrize('mmdet_name, ours', [
    ('retinanet_pvt-t_fpn_1x_coco', 'retinanet_pvt_t_fpn_1x_coco'),
    ('retinanet_pvtv2-b2_fpn_1x_coco', 'retinanet_pvt_v2_b2_fpn_1x_coco'),
])
def test_mmdets_model_zoo_configs_fit_pvt_mms_configs(mmdet_name, ours, tmp_path):
    """The files mmdet's model zoo publishes for its PVT RetinaNets are state dicts of its own
    configs (configs/pvt/ in mmdet): one of each, random, fits the pvt_mm config of the same
    detector key for key once its backbone is converted."""
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    mmdet_cfg = Config.fromfile(mim_file('mmdet', 'configs', 'pvt', f'{mmdet_name}.py'))
    cfg, task = load_config(osp.join(osp.dirname(TOY), 'detection', f'{ours}.py'))
    DefaultScope.get_instance(f'pvt_mm_test_zoo_{mmdet_name}', scope_name='mmdet')
    path = str(tmp_path / f'{mmdet_name}.pth')
    torch.save({'meta': {}, 'state_dict': task.build_model(mmdet_cfg).state_dict()}, path)
    read = read_model_checkpoint(path)
    assert read.layout in ('mmdet', 'mmdet_v2')
    with torch.device('meta'):
        model = task.build_model(cfg)
    assert read.fitted(model).keys() == model.state_dict().keys()
