"""PVTv2 files written by HF transformers' classes (PvtV2ForImageClassification, PvtV2Model,
PvtV2Backbone) and by mmdet's PyramidVisionTransformerV2 load into pvt_mm.PVTv2, strictly,
through init_cfg and the converter; each compared with that library's own forward.

Both libraries use LayerNorm eps 1e-6 everywhere; the official code uses 1e-5 in the patch
embeddings and the spatial reduction. With those norms set to 1e-6 the outputs agree to
rounding (the mapping is exact); with the official eps the difference is the eps difference's.
"""
import pytest
import torch
from safetensors.torch import load_file

from conftest import (assert_eps_explains, load_tool, official_v2_state_dict, randomised,
                      rounding_atol, with_library_eps)
from pvt_mm import CheckpointError, PVTv2
from pvt_mm.network.weight_layouts import convert_state_dict

B0 = dict(embed_dims=(32, 64, 160, 256), depths=(2, 2, 2, 2), num_heads=(1, 2, 5, 8),
          mlp_ratios=(8, 8, 4, 4), sr_ratios=(8, 4, 2, 1))


def loaded(arch, path, library_eps=False, **kwargs):
    model = PVTv2(arch, init_cfg=dict(type='Pretrained', checkpoint=path), **kwargs)
    model.init_weights()
    return (with_library_eps(model) if library_eps else model).eval()


X = torch.randn(2, 3, 250, 333, generator=torch.Generator().manual_seed(1))


@pytest.fixture(scope='module')
def hf():
    transformers = pytest.importorskip('transformers')
    return transformers


@pytest.mark.parametrize('linear', [False, True])
def test_hf_classifier_gives_transformers_logits(hf, tmp_path, linear):
    """PvtV2Config() is b0; with linear_attention the same sizes with linear SRA."""
    model = randomised(hf.PvtV2ForImageClassification(hf.PvtV2Config(
        linear_attention=linear, num_labels=1000)), 0)
    model.save_pretrained(tmp_path)
    path = str(tmp_path / 'model.safetensors')
    arch = dict(B0, linear=linear)
    exact = loaded(arch, path, library_eps=True, num_classes=1000)
    with torch.no_grad():
        ref = model(pixel_values=X).logits
        torch.testing.assert_close(exact(X)[0], ref, rtol=0, atol=rounding_atol(ref))
    official_eps = loaded(arch, path, num_classes=1000)
    assert_eps_explains(official_eps, lambda: official_eps(X), lambda: (ref,))


def test_hf_backbone_gives_transformers_feature_maps(hf, tmp_path):
    config = hf.PvtV2Config(out_features=['stage1', 'stage2', 'stage3', 'stage4'])
    backbone = randomised(hf.PvtV2Backbone(config), 2)
    backbone.save_pretrained(tmp_path)
    path = str(tmp_path / 'model.safetensors')
    assert convert_state_dict(load_file(path))[1] == 'hf_v2'
    exact = loaded('b0', path, library_eps=True)
    with torch.no_grad():
        ref = backbone(pixel_values=X).feature_maps
        for level, (o, r) in enumerate(zip(exact(X), ref)):
            torch.testing.assert_close(o, r, rtol=0, atol=rounding_atol(r), msg=f'F{level + 1}')
    with pytest.raises(CheckpointError, match=r'does not fit this PVTv2 \(PVTv2-b1'):
        loaded('b1', path)


@pytest.fixture(scope='module')
def mmdet_b0():
    pytest.importorskip('mmdet')
    from mmdet.models.backbones import PyramidVisionTransformerV2
    return randomised(PyramidVisionTransformerV2(embed_dims=32, num_layers=[2, 2, 2, 2]), 3)


def test_mmdet_backbone_in_a_detector_file_gives_mmdets_pyramid(mmdet_b0, tmp_path):
    """A detector checkpoint of mmdet's RetinaNet-PVTv2 holds the backbone under backbone.,
    beside the neck's and head's keys."""
    state = {'backbone.' + k: v for k, v in mmdet_b0.state_dict().items()}
    state['neck.lateral_convs.0.conv.weight'] = torch.zeros(256, 32, 1, 1)
    path = tmp_path / 'retinanet_pvtv2_b0.pth'
    torch.save({'state_dict': state, 'meta': {}}, path)
    assert convert_state_dict(state)[1] == 'mmdet_v2'
    exact = loaded('b0', str(path), library_eps=True)
    with torch.no_grad():
        ref = mmdet_b0(X)
        for level, (o, r) in enumerate(zip(exact(X), ref)):
            torch.testing.assert_close(o, r, rtol=0, atol=rounding_atol(r), msg=f'F{level + 1}')
    official_eps = loaded('b0', str(path))
    assert_eps_explains(official_eps, lambda: official_eps(X), lambda: mmdet_b0(X))


def test_the_converter_writes_every_v2_layout_in_pvt_mms(mmdet_b0, tmp_path):
    converter = load_tool('tools/model_converters/pvt_to_pvt_mm.py')
    sources = {'official_v2.pth': {'model': official_v2_state_dict('b2_li', seed=4)},
               'mmdet_v2.pth': {'state_dict': {'backbone.' + k: v
                                               for k, v in mmdet_b0.state_dict().items()}}}
    for name, content in sources.items():
        torch.save(content, tmp_path / name)
        dst = str(tmp_path / ('pvt_mm_' + name.replace('.pth', '.safetensors')))
        converter.main([str(tmp_path / name), dst])
        arch = 'b2_li' if name.startswith('official') else 'b0'
        kwargs = dict(num_classes=1000) if arch == 'b2_li' else {}
        direct, converted = (loaded(arch, p, **kwargs) for p in (str(tmp_path / name), dst))
        for (k, a), b in zip(converted.state_dict().items(), direct.state_dict().values()):
            assert torch.equal(a, b), (name, k)
    assert convert_state_dict(load_file(dst))[1] == 'pvt_mm_v2'


def test_an_official_mmdet2_detector_checkpoint_gives_its_backbone(tmp_path):
    """The official detection code (mmdet 2) keeps the official keys under backbone.,
    beside the neck's and heads' (and an optimizer's): init_cfg takes the backbone."""
    sd = official_v2_state_dict('b0', seed=5)
    sd.pop('head.weight'), sd.pop('head.bias')  # detection/pvt_v2.py has no classifier
    state = {'backbone.' + k: v for k, v in sd.items()}
    state.update({'neck.fpn_convs.0.conv.weight': torch.zeros(256, 256, 3, 3),
                  'bbox_head.retina_cls.weight': torch.zeros(9, 256, 3, 3)})
    path = tmp_path / 'retinanet_pvt_v2_b0_fpn_1x_coco.pth'
    torch.save({'meta': {'mmdet_version': '2.13.0'}, 'state_dict': state,
                'optimizer': {'state': {}, 'param_groups': []}}, path)
    model = loaded('b0', str(path))
    torch.testing.assert_close(model.stages[3].blocks[1].mlp.dwconv.weight,
                               sd['block4.1.mlp.dwconv.dwconv.weight'], rtol=0, atol=0)
    torch.testing.assert_close(model.stages[2].norm.weight, sd['norm3.weight'], rtol=0, atol=0)
