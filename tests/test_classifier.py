"""The paper's ImageNet classifier: PVT(num_classes=N), timm's pvt_tiny..pvt_large, and
mmpretrain's ImageClassifier around it.

The oracle for the logits is tests/official_reference.py, the official classifier's forward
restated on the official key layout, independent of pvt_mm's modules and converter.
"""
import logging

import pytest
import torch

from conftest import official_state_dict, rounding_atol
from official_reference import official_logits
from pvt_mm import PVT, CheckpointError
from pvt_mm.network.weight_layouts import convert_official, to_official

# Paper Table 2, #Param (M).
TABLE2_PARAMS_M = dict(tiny=13.2, small=24.5, medium=44.2, large=61.4)


def saved(tmp_path, sd, name='pvt_tiny.pth', wrap=None):
    path = tmp_path / name
    torch.save(sd if wrap is None else {wrap: sd}, path)
    return str(path)


def classifier(arch, path=None, **kwargs):
    init = None if path is None else dict(type='Pretrained', checkpoint=path)
    model = PVT(arch, init_cfg=init, **kwargs)
    model.init_weights()
    return model.eval()


class LogLines:
    """Collects what pvt_mm logs through mmengine's current logger."""

    def __enter__(self):
        from mmengine.logging import MMLogger
        self.logger = MMLogger.get_current_instance()
        self.records = []
        self.handler = logging.Handler()
        self.handler.emit = self.records.append
        self.logger.addHandler(self.handler)
        return self

    def __exit__(self, *exc):
        self.logger.removeHandler(self.handler)

    def matching(self, text):
        return [r.getMessage() for r in self.records if text in r.getMessage()]


@pytest.mark.parametrize('arch', sorted(TABLE2_PARAMS_M))
def test_table2_parameters(arch):
    params = sum(p.numel() for p in PVT(arch, num_classes=1000).parameters()) / 1e6
    assert abs(params - TABLE2_PARAMS_M[arch]) < 0.05, params


@pytest.mark.parametrize('wrap', [None, 'model', 'state_dict'])
def test_official_classifier_loads_whole_and_gives_the_official_logits(tmp_path, wrap):
    sd = official_state_dict('tiny', seed=11)
    model = classifier('tiny', saved(tmp_path, sd, wrap=wrap), num_classes=1000)
    # Every tensor of the file is in the model, head and class-token row included.
    back = to_official(model.state_dict())
    assert set(back) == set(sd)
    for k, v in sd.items():
        torch.testing.assert_close(back[k], v, rtol=0, atol=0, msg=k)
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    ref = official_logits(sd, x, 'tiny')
    with torch.no_grad():
        for fused in (True, False):
            model.fused_attn = fused
            out = model(x)[0]
            torch.testing.assert_close(out, ref, rtol=0, atol=rounding_atol(ref))


def test_another_resolution_resizes_the_grid_and_keeps_the_class_token_row(tmp_path):
    """384x384 from 224 weights: the grids are resized, the class row is used as learned,
    as the official code does."""
    sd = official_state_dict('tiny', seed=12)
    model = classifier('tiny', saved(tmp_path, sd), num_classes=1000)
    x = torch.randn(1, 3, 384, 384, generator=torch.Generator().manual_seed(1))
    ref = official_logits(sd, x, 'tiny')
    with torch.no_grad():
        out = model(x)[0]
    torch.testing.assert_close(out, ref, rtol=0, atol=rounding_atol(ref))
    torch.testing.assert_close(model.cls_pos_embed, sd['pos_embed4'][:, :1], rtol=0, atol=0)


def test_fine_tuning_on_other_classes_loads_all_but_the_head_and_says_so(tmp_path):
    sd = official_state_dict('tiny', seed=13)
    path = saved(tmp_path, sd)
    torch.manual_seed(0)
    with LogLines() as log:
        model = classifier('tiny', path, num_classes=10)
    assert len(log.matching('its head has 1000 classes and this classifier 10')) == 1
    assert model.head.weight.shape == (10, 512)
    expected = {k: v for k, v in convert_official(sd).items() if not k.startswith('head.')}
    state = model.state_dict()
    for k, v in expected.items():
        torch.testing.assert_close(state[k], v, rtol=0, atol=0, msg=k)


def test_detection_backbone_from_a_fine_tuned_classifier(tmp_path):
    """A classifier fine-tuned in mmpretrain (its checkpoint: backbone.* keys) initialises
    the detection backbone; the classifier's keys are left, with one log line."""
    fine_tuned = classifier('tiny', saved(tmp_path, official_state_dict('tiny', seed=14)),
                            num_classes=10)
    ckpt = {'state_dict': {f'backbone.{k}': v for k, v in fine_tuned.state_dict().items()},
            'meta': {'epoch': 3}}
    path = saved(tmp_path, ckpt, name='epoch_3.pth')
    with LogLines() as log:
        backbone = classifier('tiny', path)
    assert log.matching('skipped the ImageNet classifier keys')
    for k, v in backbone.state_dict().items():
        torch.testing.assert_close(v, fine_tuned.state_dict()[k], rtol=0, atol=0, msg=k)


def test_a_classifier_from_a_backbone_checkpoint_is_refused_clearly(tmp_path):
    path = saved(tmp_path, PVT('tiny').state_dict(), name='backbone.pth')
    with pytest.raises(CheckpointError, match='holds a backbone without the ImageNet classifier'):
        classifier('tiny', path, num_classes=1000)


def test_a_checkpoint_of_another_size_is_refused_clearly(tmp_path):
    path = saved(tmp_path, official_state_dict('small', seed=15), name='pvt_small.pth')
    with pytest.raises(CheckpointError, match=r'does not fit this PVT.*\n.*depths \(3, 4, 6, 3\)'):
        classifier('tiny', path, num_classes=1000)


def test_classifier_set_up_errors():
    with pytest.raises(ValueError, match='out_indices'):
        PVT('tiny', num_classes=5, out_indices=(0, ))
    arch = dict(PVT('tiny').arch, sr_ratios=[8, 4, 2, 2])
    with pytest.raises(ValueError, match='sr_ratio must be 1'):
        PVT(arch, num_classes=5)
    with pytest.raises(RuntimeError, match='classifier path'):
        PVT('tiny').forward_features(torch.zeros(1, 3, 64, 64))


# ------------------------------------------------------------------------------------ timm

def test_timm_names_checkpoint_path_and_fine_tuning(tmp_path):
    import timm
    from timm.data import resolve_data_config

    from pvt_mm.network import TimmPVT
    assert {'pvt_tiny', 'pvt_small', 'pvt_medium', 'pvt_large'} <= set(timm.list_models('pvt_*'))
    sd = official_state_dict('tiny', seed=16)
    path = saved(tmp_path, sd, wrap='model')
    model = timm.create_model('pvt_tiny', pretrained=False, checkpoint_path=path).eval()
    assert isinstance(model, TimmPVT) and isinstance(model, PVT)
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        out = model(x)
    assert isinstance(out, torch.Tensor)  # timm's scripts expect a tensor, not a tuple
    ref = official_logits(sd, x, 'tiny')
    torch.testing.assert_close(out, ref, rtol=0, atol=rounding_atol(ref))
    tuned = timm.create_model('pvt_tiny', num_classes=7, checkpoint_path=path,
                              drop_path_rate=0.2)
    assert tuned.head.out_features == 7 and tuned.num_classes == 7
    torch.testing.assert_close(tuned.cls_token, sd['cls_token'], rtol=0, atol=0)
    config = resolve_data_config({}, model=model)
    assert config['interpolation'] == 'bicubic' and config['crop_pct'] == 0.875
    assert {'cls_token', 'stages.0.pos_embed'} <= model.no_weight_decay()
    model.reset_classifier(3)
    assert model(x).shape == (1, 3)
    model.reset_classifier(0)
    assert model(x).shape == (1, 512)
    overlay = timm.create_model('pvt_tiny', pretrained=True,
                                pretrained_cfg_overlay=dict(file=path))
    torch.testing.assert_close(overlay.head.weight, sd['head.weight'], rtol=0, atol=0)


def test_timm_refuses_a_wrong_checkpoint_clearly(tmp_path):
    import timm
    path = saved(tmp_path, official_state_dict('small', seed=17))
    with pytest.raises(CheckpointError, match='does not fit this PVT'):
        timm.create_model('pvt_tiny', checkpoint_path=path)


# ------------------------------------------------------------------------------ mmpretrain

def test_mmpretrain_image_classifier_with_its_own_head_and_loss():
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS
    from mmpretrain.structures import DataSample

    from pvt_mm.run.config import load_config
    import os.path as osp
    from conftest import ROOT
    cfg, task = load_config(osp.join(ROOT, 'configs', 'classification', 'pvt_t_8xb128_in1k.py'))
    assert task.name == 'cls'
    DefaultScope.get_instance('pvt_mm_test_cls', scope_name='mmpretrain')
    cfg.model.backbone.num_classes = 5
    cfg.model.data_preprocessor = dict(type='ClsDataPreprocessor', num_classes=5)
    model = MODELS.build(cfg.model)
    assert isinstance(model.backbone, PVT) and type(model.head).__name__ == 'ClsHead'
    samples = [DataSample().set_gt_label(i % 5) for i in range(4)]
    data = model.data_preprocessor(
        dict(inputs=[torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8)] * 4,
             data_samples=samples), training=True)
    losses = model(**data, mode='loss')
    assert torch.isfinite(losses['loss']) and losses['loss'] > 0
    losses['loss'].backward()
    assert model.backbone.head.weight.grad is not None  # the loss reaches the PVT's head
    model.eval()
    with torch.no_grad():
        preds = model(data['inputs'], data['data_samples'], mode='predict')
    assert preds[0].pred_score.shape == (5, ) and abs(float(preds[0].pred_score.sum()) - 1) < 1e-5


def test_timm_scripts_run_through_timm_run(tmp_path):
    """tools/timm_run.py: a timm-style script, unchanged, resolves --model pvt_tiny."""
    from conftest import PY, run
    script = tmp_path / 'train.py'
    script.write_text(
        'import argparse, timm, torch\n'
        'p = argparse.ArgumentParser(); p.add_argument("--model"); p.add_argument("--num-classes", type=int)\n'
        'a = p.parse_args()\n'
        'm = timm.create_model(a.model, num_classes=a.num_classes)\n'
        'print(type(m).__name__, tuple(m(torch.zeros(1, 3, 64, 64)).shape))\n')
    out = run([PY, 'tools/timm_run.py', str(script), '--model', 'pvt_tiny', '--num-classes', '4'])
    assert 'TimmPVT (1, 4)' in out, out[-2000:]
