"""tools/test.py on whole-model checkpoints: an mmdet-2 detector file with its backbone in the
official layout (what the official detection code saved) is converted and loaded strictly, and
predicts exactly what the same weights in pvt_mm's layout predict; a file that does not fit
the config's model raises before any image is run, naming the keys."""
import os.path as osp
import pickle

import pytest
import torch

from conftest import PY, TOY, official_state_dict, official_v2_state_dict, run
from pvt_mm import CheckpointError
from pvt_mm.network.weights import (check_model_state_dict, fit_backbone_keys,
                                       load_pretrained, read_model_checkpoint)
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


def test_a_file_that_does_not_fit_fails_before_any_image(files, mini_data, tmp_path):
    out = run([PY, 'tools/test.py', CONFIG, str(files['root'] / 'no_head.pth'),
               '--work-dir', str(tmp_path), '--data-root', str(mini_data / 'coco') + '/'],
              check=False)
    assert 'CheckpointError' in out and 'nothing was loaded' in out, out[-3000:]
    assert 'Missing in the file (2): bbox_head.retina_cls.weight, bbox_head.retina_cls.bias' \
        in out, out[-3000:]
    assert 'pvt_mm metrics' not in out


def test_read_model_checkpoint_converts_the_backbone_alone(files):
    state_dict, layout = read_model_checkpoint(str(files['root'] / 'mmdet2.pth'))
    assert layout == 'official_v2'
    assert state_dict.keys() == files['native'].keys()
    for key, value in files['native'].items():
        assert torch.equal(state_dict[key], value), key
    check_model_state_dict(files['model'], state_dict, 'mmdet2.pth')
    assert read_model_checkpoint(str(files['root'] / 'pvt_mm.pth'))[1] is None


def test_a_backbone_file_given_as_a_whole_model_is_named(files):
    with pytest.raises(CheckpointError, match=r'holds a PVTv2 backbone alone \(official_v2 '
                       r"layout\), not a whole model: load it through the backbone's init_cfg"):
        check_model_state_dict(files['model'], files['official'], 'backbone.pth')


def test_backbone_keys_in_no_pvt_layout_are_refused(tmp_path):
    torch.save({'state_dict': {'backbone.conv1.weight': torch.zeros(64, 3, 7, 7),
                               'backbone.bn1.weight': torch.zeros(64)}}, tmp_path / 'r50.pth')
    with pytest.raises(CheckpointError, match=r'r50\.pth: its backbone\. keys: no PVT weights '
                                              r'recognised'):
        read_model_checkpoint(str(tmp_path / 'r50.pth'))


def test_an_official_v1_detector_file_leaves_the_class_tokens_row(tmp_path, capsys):
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
    state_dict, layout = read_model_checkpoint(str(tmp_path / 'retinanet_pvt_t.pth'))
    assert layout == 'official' and 'backbone.cls_pos_embed' in state_dict
    with pytest.raises(CheckpointError, match=r'Unexpected in the file \(1\): '
                                              r'backbone\.cls_pos_embed'):
        check_model_state_dict(model, state_dict, 'retinanet_pvt_t.pth')
    fitted = fit_backbone_keys(model, state_dict, 'retinanet_pvt_t.pth')
    check_model_state_dict(model, fitted, 'retinanet_pvt_t.pth')
    model.load_state_dict(fitted, strict=True)
    torch.testing.assert_close(model.backbone.stages[3].pos_embed, official['pos_embed4'][:, 1:],
                               rtol=0, atol=0)
