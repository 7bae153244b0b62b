"""pvt_mm's timm models as timm's own model tests see a model: built by timm's builder from
complete pretrained cfgs, timm's class-token conventions for forward_features / forward_head,
features_only and forward_intermediates, gradients for every parameter, and torch.fx tracing
through timm's feature extraction (what timm's tests/test_models.py checks, restated here)."""
import math

import pytest
import torch

import pvt_mm  # noqa: F401  (registers the models)
from conftest import official_state_dict

timm = pytest.importorskip('timm')
SIZE = (3, 96, 128)


def test_default_cfgs_are_complete_and_name_real_modules():
    names = timm.list_models('pvt_*', pretrained=True)
    assert {'pvt_tiny.in1k', 'pvt_small.in1k', 'pvt_medium.in1k', 'pvt_large.in1k'} <= set(names)
    model = timm.create_model('pvt_tiny')
    cfg = model.pretrained_cfg
    for key in ('url', 'input_size', 'pool_size', 'crop_pct', 'interpolation', 'mean', 'std',
                'first_conv', 'classifier', 'num_classes', 'license'):
        assert key in cfg, key
    assert cfg['url'].endswith('pvt_tiny.pth') and cfg['input_size'] == (3, 224, 224)
    state = model.state_dict()
    assert cfg['first_conv'] + '.weight' in state and cfg['classifier'] + '.weight' in state
    assert model.default_cfg is model.pretrained_cfg
    assert model.num_classes == 1000 and model.num_features == model.head_hidden_size == 512


def test_forward_features_are_tokens_and_the_head_pools_them():
    model = timm.create_model('pvt_tiny').eval()
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        tokens = model.forward_features(x)
        pre = model.forward_head(tokens, pre_logits=True)
        logits = model(x)
    assert tokens.shape == (1, 1 + 7 * 7, 512)  # class token first, then stage 4's grid
    assert pre.shape == (1, model.head_hidden_size)
    torch.testing.assert_close(pre, tokens[:, 0], rtol=0, atol=0)
    torch.testing.assert_close(logits, model.head(pre), rtol=0, atol=0)
    model.reset_classifier(0)
    assert model.num_classes == 0
    with torch.no_grad():
        torch.testing.assert_close(model(x), pre, rtol=0, atol=0)
    model.reset_classifier(0, '')
    with torch.no_grad():
        assert model(x).shape == tokens.shape
    model.reset_classifier(0, 'avg')
    with torch.no_grad():
        torch.testing.assert_close(model(x), tokens[:, 1:].mean(1), rtol=0, atol=0)
    headless = timm.create_model('pvt_tiny', num_classes=0).eval()
    with torch.no_grad():
        assert headless(x).shape == (1, 512)
    with pytest.raises(ValueError, match='global_pool'):
        timm.create_model('pvt_tiny', global_pool='max')


def test_features_only_is_the_backbones_pyramid():
    """features_only=True prunes the classifier: the maps are pvt_mm.PVT's, weights alike."""
    features = timm.create_model('pvt_tiny', features_only=True).eval()
    assert features.feature_info.channels() == [64, 128, 320, 512]
    assert features.feature_info.reduction() == [4, 8, 16, 32]
    backbone = pvt_mm.PVT('tiny').eval()
    backbone.load_state_dict(features.model.state_dict())
    x = torch.randn(1, *SIZE)
    with torch.no_grad():
        outs, ref = features(x), backbone(x)
    assert [tuple(o.shape) for o in outs] == [(1, c, math.ceil(96 / r), math.ceil(128 / r))
                                              for c, r in zip([64, 128, 320, 512],
                                                              [4, 8, 16, 32])]
    for o, r in zip(outs, ref):
        torch.testing.assert_close(o, r, rtol=0, atol=0)
    first_two = timm.create_model('pvt_tiny', features_only=True, out_indices=(0, 1))
    assert first_two.feature_info.channels() == [64, 128] and len(first_two.model.stages) == 2
    # An official ImageNet file loads into the pyramid, its classifier keys left.
    path_sd = official_state_dict('tiny', seed=3)
    pruned = timm.create_model('pvt_tiny', features_only=True)
    pruned.model.load_state_dict(path_sd)


def test_forward_intermediates_and_grad_checkpointing():
    model = timm.create_model('pvt_tiny').eval()
    x = torch.randn(1, *SIZE)
    with torch.no_grad():
        final, maps = model.forward_intermediates(x)
        torch.testing.assert_close(final, model.forward_features(x), rtol=0, atol=0)
        assert [m.shape[1] for m in maps] == [64, 128, 320, 512]
        assert [tuple(m.shape[2:]) for m in maps] == [(24, 32), (12, 16), (6, 8), (3, 4)]
        last_two = model.forward_intermediates(x, indices=2, intermediates_only=True)
        assert [m.shape[1] for m in last_two] == [320, 512]
        model.set_grad_checkpointing()
        final_cp, _ = model.forward_intermediates(x)
    torch.testing.assert_close(final_cp, final, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match='NCHW'):
        model.forward_intermediates(x, output_fmt='NHWC')


def test_backward_reaches_every_parameter():
    model = timm.create_model('pvt_tiny', num_classes=42).train()
    out = model(torch.randn(2, *SIZE))
    assert out.shape == (2, 42)
    out.mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, missing


def test_fx_tracing_through_timms_feature_extraction():
    """timm's fx feature extraction (its leaf modules and autowrapped functions) traces the
    classifier; the graph's output equals the eager one bit for bit. Real tensors still get
    the input check's messages."""
    from timm.models import get_notrace_functions, get_notrace_modules
    from torchvision.models.feature_extraction import (create_feature_extractor,
                                                       get_graph_node_names)
    model = timm.create_model('pvt_tiny').eval()
    tracer_kwargs = dict(leaf_modules=get_notrace_modules(),
                         autowrap_functions=get_notrace_functions())
    _, eval_nodes = get_graph_node_names(model, tracer_kwargs=tracer_kwargs)
    fx_model = create_feature_extractor(model, return_nodes=[eval_nodes[-1]],
                                        tracer_kwargs=tracer_kwargs)
    x = torch.randn(1, *SIZE)
    with torch.inference_mode():
        eager = model(x)
        traced = tuple(fx_model(x).values())[0]
    assert torch.equal(traced, eager)
    with pytest.raises(ValueError, match='too small'):
        model(torch.randn(1, 3, 16, 16))
    with pytest.raises(TypeError, match='torch.Tensor'):
        model([1, 2, 3])
