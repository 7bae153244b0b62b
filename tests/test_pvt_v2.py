"""PVTv2 (b0-b5, b2-li): the official forward to rounding at sizes that are not multiples of
32, tall and wide; the classifier's logits; the official parameter counts; the output-size
rule and the smallest input; weights from the official files and from timm's own models,
strictly, and the other family's files refused naming what they hold."""
import math

import pytest
import torch

from conftest import official_state_dict, official_v2_state_dict, rounding_atol, train_step
from official_reference import official_v2_features, official_v2_logits
from pvt_mm import PVT, CheckpointError, PVTv2
from pvt_mm.network.weight_layouts import convert_state_dict

SIZES = [(250, 333), (96, 416), (416, 96)]  # no multiple of 32; wide; tall


def saved(tmp_path, sd, name='pvt_v2.pth'):
    path = tmp_path / name
    torch.save(sd, path)
    return str(path)


def loaded(arch, path, **kwargs):
    model = PVTv2(arch, init_cfg=dict(type='Pretrained', checkpoint=path), **kwargs)
    model.init_weights()
    return model.eval()


@pytest.mark.parametrize('arch', ['b0', 'b2_li'])
def test_official_weights_give_the_official_pyramid(tmp_path, arch):
    sd = official_v2_state_dict(arch, seed=1)
    model = loaded(arch, saved(tmp_path, sd))  # a backbone leaves the head, logged
    for shape in SIZES:
        x = torch.randn(1, 3, *shape, generator=torch.Generator().manual_seed(2))
        with torch.no_grad():
            ours = model(x)
        ref = official_v2_features(sd, x, arch)
        for level, (o, r) in enumerate(zip(ours, ref)):
            assert o.shape == r.shape and o.is_contiguous()
            torch.testing.assert_close(o, r, rtol=0, atol=rounding_atol(r),
                                       msg=f'{arch} {shape} F{level + 1}')


@pytest.mark.parametrize('arch', ['b0', 'b2_li'])
def test_official_classifier_loads_whole_and_gives_the_official_logits(tmp_path, arch):
    sd = official_v2_state_dict(arch, seed=3)
    model = loaded(arch, saved(tmp_path, {'state_dict': sd}), num_classes=1000)
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        ours = model(x)[0]
    ref = official_v2_logits(sd, x, arch)
    torch.testing.assert_close(ours, ref, rtol=0, atol=rounding_atol(ref))
    tuned = loaded(arch, saved(tmp_path, sd, 'again.pth'), num_classes=7)  # all but the head
    torch.testing.assert_close(tuned.stages[0].patch_embed.proj.weight,
                               sd['patch_embed1.proj.weight'], rtol=0, atol=0)


# Official models with their heads, in millions (from the official code); backbones to the
# parameter, from the official detection backbone (b3's and b4's: the classifier's exact count
# less the 512 x 1000 + 1000 head).
CLASSIFIER_M = dict(b0=3.67, b1=14.01, b2=25.36, b2_li=22.55, b3=45.24, b4=62.56, b5=81.96)
BACKBONE = dict(b0=3_409_760, b1=13_496_000, b2=24_849_856, b2_li=22_040_512, b3=44_725_696,
                b4=62_043_072, b5=81_443_008)


@pytest.mark.parametrize('arch', sorted(CLASSIFIER_M))
def test_parameter_counts_are_the_official_ones(arch):
    with torch.device('meta'):
        classifier = PVTv2(arch, num_classes=1000)
        backbone = PVTv2(arch)
    assert round(sum(p.numel() for p in classifier.parameters()) / 1e6, 2) == CLASSIFIER_M[arch]
    if arch in BACKBONE:
        assert sum(p.numel() for p in backbone.parameters()) == BACKBONE[arch]


def test_output_size_rule_and_smallest_input():
    model = PVTv2('b0').eval()
    for h, w in [(333, 250), (29, 29), (64, 97)]:
        with torch.no_grad():
            outs = model(torch.randn(1, 3, h, w))
        assert [tuple(o.shape[2:]) for o in outs] == [
            (math.ceil(h / s), math.ceil(w / s)) for s in (4, 8, 16, 32)]
    assert model.min_input_size == 29
    with pytest.raises(ValueError, match='too small for PVTv2.*at least 29'):
        model(torch.randn(1, 3, 28, 64))
    linear = PVTv2('b2_li').eval()  # linear SRA pools to 7x7 from any grid
    assert linear.min_input_size == 1
    with torch.no_grad():
        assert linear(torch.randn(1, 3, 8, 12))[3].shape == (1, 512, 1, 1)
    with pytest.raises(ValueError, match='finite'):
        model(torch.full((1, 3, 64, 64), float('nan')))
    with pytest.raises(ValueError, match='3 input channels'):
        model(torch.randn(1, 4, 64, 64))


def test_timm_models_load_and_agree(tmp_path):
    """timm's own pvt_v2 (random weights) written in timm's layout loads strictly; its
    forward_intermediates equal pvt_mm's pyramid to rounding, its logits the classifier's."""
    timm = pytest.importorskip('timm')
    ref_model = timm.create_model('pvt_v2_b0').eval()
    path = saved(tmp_path, ref_model.state_dict(), 'timm_pvt_v2_b0.pth')
    assert convert_state_dict(torch.load(path))[1] == 'timm_v2'
    ours = loaded('b0', path)
    classifier = loaded('b0', path, num_classes=1000)
    x = torch.randn(1, 3, 250, 333, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        ref = ref_model.forward_intermediates(x, intermediates_only=True)
        feats = ours(x)
        torch.testing.assert_close(classifier(x)[0], ref_model(x), rtol=0,
                                   atol=rounding_atol(ref_model(x)))
    for o, r in zip(feats, ref):
        torch.testing.assert_close(o, r, rtol=0, atol=rounding_atol(r))


def test_the_other_familys_weights_are_refused_naming_them(tmp_path):
    v2_file = saved(tmp_path, official_v2_state_dict('b0', seed=6), 'pvt_v2_b0.pth')
    with pytest.raises(CheckpointError, match=r'holds PVTv2 weights \(PVTv2-b0.*build pvt_mm\.PVTv2'):
        PVT('tiny', init_cfg=dict(type='Pretrained', checkpoint=v2_file)).init_weights()
    v1_file = saved(tmp_path, official_state_dict('small', seed=7), 'pvt_small.pth')
    with pytest.raises(CheckpointError, match=r'holds PVT weights \(PVT-small.*build pvt_mm\.PVT\b'):
        PVTv2('b2', init_cfg=dict(type='Pretrained', checkpoint=v1_file)).init_weights()
    with pytest.raises(CheckpointError, match=r'does not fit this PVTv2 \(PVTv2-b1.*\n.*PVTv2-b0'):
        PVTv2('b1', init_cfg=dict(type='Pretrained', checkpoint=v2_file)).init_weights()


def test_backbone_options_and_the_registry():
    from mmengine.registry import MODELS
    model = PVTv2('b0', out_indices=(1, 3), frozen_stages=1, with_cp=True).train()
    assert model.out_channels == [64, 256] and model.strides == [4, 8, 16, 32]
    assert not any(p.requires_grad for p in model.stages[0].parameters())
    assert all(p.requires_grad for p in model.stages[1].parameters())
    assert not model.stages[0].training and model.stages[1].training
    x = torch.randn(2, 3, 64, 96, requires_grad=True)
    sum(o.sum() for o in model(x)).backward()
    assert model.stages[1].blocks[0].mlp.dwconv.weight.grad is not None
    built = MODELS.build(dict(type='pvt_mm.PVTv2', arch='b2_li'))
    assert isinstance(built, PVTv2) and built.arch['linear']
    explicit = PVTv2('b0', fused_attn=False).eval()
    fused = PVTv2('b0').eval()
    fused.load_state_dict(explicit.state_dict())
    x = torch.randn(1, 3, 96, 128)
    with torch.no_grad():
        for a, b in zip(explicit(x), fused(x)):
            torch.testing.assert_close(a, b, rtol=0, atol=rounding_atol(b))


@pytest.mark.parametrize('arch', ['b0', 'b2_li'])
@pytest.mark.parametrize('autocast', [False, True], ids=['fp32', 'bf16_autocast'])
def test_lean_conv_ffn_gives_autograds_gradients_bit_for_bit(monkeypatch, arch, autocast):
    """ConvFFNFunction (on every device: the blocks a GPU runs, here with the CPU paths off)
    and the CPU path give the outputs and gradients of autograd's own chain, bit for bit,
    through every block; ``lean_backward=False`` is that chain. Under bf16 autocast too,
    where the function runs in bf16 on autocast's casts."""
    import contextlib
    import pvt_mm.network.lean_backward as lean
    calls = []
    apply = lean.ConvFFNFunction.apply
    monkeypatch.setattr(lean.ConvFFNFunction, 'apply',
                        lambda *a: calls.append(a[0].dtype) or apply(*a))
    torch.manual_seed(0)
    model = PVTv2(arch, drop_path_rate=0.0).train()
    model.init_weights()
    x = torch.randn(2, 3, 96, 128)
    dtype = torch.bfloat16 if autocast else torch.float32

    def step():
        with torch.autocast('cpu', dtype=dtype) if autocast else contextlib.nullcontext():
            return train_step(model, x)

    model.cpu_fast_paths, model.lean_backward = False, False
    ref_outs, ref_grads = step()
    assert not calls
    blocks = sum(len(s.blocks) for s in model.stages)
    for fast in (False, True):
        model.cpu_fast_paths, model.lean_backward = fast, True
        outs, grads = step()
        assert calls == [dtype] * blocks
        calls.clear()
        assert all(torch.equal(a, b) for a, b in zip(outs, ref_outs))
        for name, g in ref_grads.items():
            assert torch.equal(grads[name], g), (fast, name)


def test_lean_conv_ffn_holds_only_the_conv_input():
    """Autograd's ConvFFN keeps fc1's input and three hidden-size tensors (the conv's input,
    GELU's input, fc2's input); ConvFFNFunction keeps fc1's input and the conv's input, in
    fp32 and under autocast. Double backward is refused loudly; the plain chain supports it."""
    from pvt_mm.network.pvt_v2 import ConvFFN
    import pvt_mm.network.lean_backward as lean
    from pvt_mm.run.analysis.activation_memory import SavedTensorBytes
    ffn = ConvFFN(8, 32)
    x = torch.randn(2, 6 * 5, 8, requires_grad=True)
    tokens, hidden = 2 * 30 * 8 * 4, 2 * 30 * 32 * 4
    with SavedTensorBytes(ffn) as count:
        ffn(x, (6, 5))
    assert count.total == tokens + 3 * hidden
    with SavedTensorBytes(ffn) as count:
        lean.conv_ffn(ffn, x, (6, 5))
    assert count.total == tokens + hidden
    (g,) = torch.autograd.grad(lean.conv_ffn(ffn, x, (6, 5)).square().sum(), x,
                               create_graph=True)
    with pytest.raises(RuntimeError, match='differentiate twice'):
        g.sum().backward()
    (g,) = torch.autograd.grad(ffn(x, (6, 5)).square().sum(), x, create_graph=True)
    g.sum().backward()
    assert x.grad is not None
    held = {}
    for name, run in (('lean', lambda: lean.conv_ffn(ffn, x, (6, 5))),
                      ('plain', lambda: ffn(x, (6, 5)))):
        with torch.autocast('cpu', dtype=torch.bfloat16), SavedTensorBytes(ffn) as count:
            assert run().dtype == torch.bfloat16
        held[name] = count.total
    # In bf16, two hidden-size tensors less, for one bf16 copy of the conv's bias kept to
    # recompute the conv (autocast's copies of the weights are held either way).
    assert held['plain'] - held['lean'] == 2 * hidden // 2 - 32 * 2


def test_fused_inference_ffn_matches_the_plain_path(monkeypatch):
    """Without autograd on the CPU the ConvFFN runs through oneDNN with its elementwise steps
    fused (b2-li's ReLU too); switched off, as written. Equal within rounding."""
    import pvt_mm.network.cpu_fast_paths as fast
    if not torch.backends.mkldnn.is_available():
        pytest.skip('this PyTorch build has no oneDNN: the fused path is not taken')
    calls = []
    original = fast.conv_ffn_infer
    monkeypatch.setattr(fast, 'conv_ffn_infer',
                        lambda ffn, x, hw: calls.append(1) or original(ffn, x, hw))
    for arch in ('b0', 'b2_li'):
        torch.manual_seed(0)
        model = PVTv2(arch).eval()
        model.init_weights()
        x = torch.randn(1, 3, 160, 224)
        with torch.no_grad():
            with torch.profiler.profile() as prof:
                fused = model(x)
            ops = {e.key for e in prof.key_averages()}
            model.cpu_fast_paths = False
            plain = model(x)
        assert 'mkldnn::_convolution_pointwise' in ops and 'mkldnn::_linear_pointwise' in ops
        assert len(calls) == sum(len(s.blocks) for s in model.stages)
        calls.clear()
        for a, b in zip(fused, plain):
            torch.testing.assert_close(a, b, rtol=0, atol=rounding_atol(b))
