"""The network itself: shapes, parameter counts, attention paths, checkpointing, freezing."""
import pytest
import torch

from pvt_mm import PVT, PVTv2
from pvt_mm.network.arch import ARCH_SETTINGS
from pvt_mm.network import cpu_fast_paths as fast
from pvt_mm.network import lean_backward as lean
from pvt_mm.network.dispatch import block_runner, run_plain, uses_cpu_fast_paths

from conftest import official_shapes, rounding_atol, train_step

SIZES = ['tiny', 'small', 'medium', 'large']
# Paper Table 2: #Param (M) of the ImageNet classifiers.
TABLE2_PARAMS_M = {'tiny': 13.2, 'small': 24.5, 'medium': 44.2, 'large': 61.4}
# 448x448 gives stage 2 the 56x56 tokens that the official code compares every stage's
# count with (its position-embedding shortcut then crashes); pvt_mm must not care.
INPUTS = [(1, 333, 517), (2, 64, 96), (1, 448, 448), (1, 800, 1344)]


@pytest.mark.parametrize('arch', ['tiny', 'small', *(pytest.param(a, marks=pytest.mark.slow)
                                                      for a in ('medium', 'large'))])
def test_shapes_and_strides_at_odd_sizes(arch):
    torch.manual_seed(0)
    model = PVT(arch).eval()
    model.init_weights()
    assert model.strides == [4, 8, 16, 32]
    assert model.out_channels == [64, 128, 320, 512]
    for b, h, w in INPUTS:
        with torch.no_grad():
            outs = model(torch.randn(b, 3, h, w))
        assert len(outs) == 4
        for out, stride, ch in zip(outs, (4, 8, 16, 32), (64, 128, 320, 512)):
            assert out.shape == (b, ch, h // stride, w // stride), (arch, h, w, stride)
            assert torch.isfinite(out).all()


@pytest.mark.parametrize('arch', SIZES)
def test_table2_parameter_counts(arch):
    """Backbone + class token + its position-embedding row + final norm + 1000-way head."""
    model = PVT(arch)
    c = model.arch['embed_dims'][-1]
    classifier = c + c + 2 * c + (c * 1000 + 1000)
    total = sum(p.numel() for p in model.parameters()) + classifier
    assert abs(total / 1e6 - TABLE2_PARAMS_M[arch]) <= 0.05, total
    # The same count from the official layout, written independently in conftest.
    official = sum(torch.Size(s).numel() for s in official_shapes(arch).values())
    assert official == total


def test_arch_table_matches_paper_table1():
    for arch, depths in zip(SIZES, [(2, 2, 2, 2), (3, 4, 6, 3), (3, 4, 18, 3), (3, 8, 27, 3)]):
        a = ARCH_SETTINGS[arch]
        assert a['depths'] == depths
        assert a['patch_sizes'] == (4, 2, 2, 2)
        assert a['embed_dims'] == (64, 128, 320, 512)
        assert a['num_heads'] == (1, 2, 5, 8)
        assert a['mlp_ratios'] == (8, 8, 4, 4)
        assert a['sr_ratios'] == (8, 4, 2, 1)


def test_layer_norm_eps_matches_official():
    model = PVT('tiny')
    sd_names = dict(model.named_modules())
    assert sd_names['stages.0.patch_embed.norm'].eps == 1e-5
    assert sd_names['stages.0.blocks.0.attn.norm'].eps == 1e-5
    assert sd_names['stages.0.blocks.0.norm1'].eps == 1e-6
    assert sd_names['stages.3.blocks.1.norm2'].eps == 1e-6
    assert 'stages.3.blocks.0.attn.sr' not in sd_names  # R4 = 1: no reduction


def test_fused_and_explicit_attention_agree():
    torch.manual_seed(0)
    model = PVT('small').eval()
    model.init_weights()
    x = torch.randn(2, 3, 160, 224)
    with torch.no_grad():
        fused = model(x)
        model.fused_attn = False
        explicit = model(x)
    assert not model.fused_attn
    for a, b in zip(fused, explicit):
        torch.testing.assert_close(a, b, rtol=0, atol=rounding_atol(b))


def test_position_embedding_is_resized_bilinearly_per_stage():
    torch.manual_seed(0)
    model = PVT('tiny').eval()
    model.init_weights()
    stage = model.stages[1]
    # At the pretraining grid the embedding is used as is.
    assert stage.resized_pos_embed((28, 28)) is stage.pos_embed
    grid = stage.pos_embed.detach().reshape(1, 28, 28, -1).permute(0, 3, 1, 2)
    ref = torch.nn.functional.interpolate(grid, size=(56, 40), mode='bilinear',
                                          align_corners=False).flatten(2).transpose(1, 2)
    with torch.no_grad():
        got = stage.resized_pos_embed((56, 40))
        again = stage.resized_pos_embed((56, 40))
    torch.testing.assert_close(got, ref)
    assert again is got  # cached while the parameter is unchanged
    with torch.no_grad():
        stage.pos_embed.add_(1.0)
        moved = stage.resized_pos_embed((56, 40))
    torch.testing.assert_close(moved, ref + 1.0)


def test_out_indices_select_and_order():
    model = PVT('tiny', out_indices=(1, 3)).eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 64, 64))
    assert [o.shape[1] for o in outs] == [128, 512]
    assert model.out_channels == [128, 512]
    assert [f['reduction'] for f in model.feature_info] == [8, 32]


def test_with_cp_gives_same_outputs_and_gradients():
    torch.manual_seed(0)
    ref = PVT('tiny', drop_path_rate=0.0)
    ref.init_weights()
    cp = PVT('tiny', drop_path_rate=0.0, with_cp=True)
    cp.load_state_dict(ref.state_dict())
    x = torch.randn(2, 3, 96, 128)
    outs_ref, outs_cp = ref.train()(x), cp.train()(x)
    sum(o.square().mean() for o in outs_ref).backward()
    sum(o.square().mean() for o in outs_cp).backward()
    # The same kernels on the same operands, only recomputed: equal up to rounding.
    for a, b in zip(outs_ref, outs_cp):
        torch.testing.assert_close(a, b, rtol=0, atol=rounding_atol(b))
    grads_ref = dict((n, p.grad) for n, p in ref.named_parameters())
    blocks = sum(len(s.blocks) for s in ref.stages)
    for n, p in cp.named_parameters():
        assert p.grad is not None, n
        torch.testing.assert_close(p.grad, grads_ref[n], rtol=0,
                                   atol=rounding_atol(grads_ref[n], chained=blocks), msg=n)


@pytest.mark.parametrize('frozen', [-1, 0, 1, 2, 4])
def test_frozen_stages_freeze_exactly_what_they_say(frozen):
    model = PVT('tiny', frozen_stages=frozen, drop_rate=0.1)
    model.train()
    for name, p in model.named_parameters():
        stage = int(name.split('.')[1])
        if frozen == 0:
            should_freeze = name.startswith(('stages.0.patch_embed.', 'stages.0.pos_embed'))
        else:
            should_freeze = stage < frozen
        assert p.requires_grad == (not should_freeze), name
    for name, m in model.named_modules():
        if name.startswith('stages.') and name.count('.') >= 1:
            stage = int(name.split('.')[1])
            frozen_here = (stage < frozen) or (
                frozen == 0 and name.startswith('stages.0.patch_embed'))
            assert m.training == (not frozen_here), name
    # Gradients reach exactly the trainable parameters.
    loss = sum(o.mean() for o in model(torch.randn(1, 3, 64, 64)))
    if frozen == len(model.stages):
        assert not loss.requires_grad
        return
    loss.backward()
    for name, p in model.named_parameters():
        assert (p.grad is not None) == p.requires_grad, name


def test_drop_path_rate_rises_linearly():
    model = PVT('small', drop_path_rate=0.1)
    rates = [b.drop_path.drop_prob if hasattr(b.drop_path, 'drop_prob') else 0.0
             for s in model.stages for b in s.blocks]
    assert rates[0] == 0.0
    assert rates[-1] == pytest.approx(0.1)
    assert all(b > a for a, b in zip(rates, rates[1:]))


def test_custom_arch_dict():
    arch = dict(patch_sizes=[4, 2], embed_dims=[32, 64], depths=[1, 1], num_heads=[1, 2],
                mlp_ratios=[2, 2], sr_ratios=[2, 1])
    model = PVT(arch).eval()
    assert model.min_input_size == 8
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 37, 50))
    assert [tuple(o.shape) for o in outs] == [(1, 32, 9, 12), (1, 64, 4, 6)]


@pytest.mark.parametrize('kwargs, match', [
    (dict(arch='huge'), r"Unknown PVT arch 'huge'.*'large', 'medium', 'small', 'tiny'"),
    (dict(arch=dict(patch_sizes=[4], embed_dims=[64, 128], depths=[1, 1], num_heads=[1, 2],
                    mlp_ratios=[8, 8], sr_ratios=[8, 4])), 'one entry per stage'),
    (dict(arch=dict(patch_sizes=[4], embed_dims=[60], depths=[1], num_heads=[7],
                    mlp_ratios=[8], sr_ratios=[8])), 'num_heads=7 does not divide embed_dims=60'),
    (dict(arch=dict(embed_dims=[64])), 'missing'),
    (dict(out_indices=(0, 4)), r'out_indices.*\[0, 1, 2, 3\]'),
    (dict(frozen_stages=5), r'frozen_stages=5.*\[-1, 4\]'),
])
def test_construction_errors_list_valid_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PVT(**kwargs)


def with_value_at(x, index, value):
    x[index] = value
    return x


# Each case as a function of the backbone's smallest input (PVT 32 px, PVTv2 29 px).
BAD_INPUTS = [
    (lambda m: torch.randn(1, 1, 64, 64), ValueError, 'built for 3 input channels, got 1'),
    (lambda m: torch.randn(3, 64, 64), ValueError, '4-D input'),
    (lambda m: torch.randn(1, 1, 3, 64, 64), ValueError, '4-D input'),
    (lambda m: [[0.0]], TypeError, 'expects a torch.Tensor'),
    (lambda m: torch.zeros(1, 3, 64, 64, dtype=torch.uint8), TypeError, 'floating-point'),
    (lambda m: torch.randn(1, 3, m - 1, 64), ValueError, 'at least {m} pixels'),
    (lambda m: with_value_at(torch.randn(2, 3, 64, 64), (1, 2, 5, 7), float('nan')), ValueError,
     r'finite input values, got 1 NaN and 0 infinite .* index \(1, 2, 5, 7\)'),
    (lambda m: torch.full((1, 3, 64, 64), float('-inf')), ValueError, '0 NaN and 12288 infinite'),
]


@pytest.mark.parametrize('network, arch, smallest', [(PVT, 'tiny', 32), (PVTv2, 'b0', 29)],
                         ids=['PVT', 'PVTv2'])
@pytest.mark.parametrize('make, exc, match', BAD_INPUTS, ids=range(len(BAD_INPUTS)))
def test_bad_inputs_fail_clearly(network, arch, smallest, make, exc, match):
    model = network(arch)
    with pytest.raises(exc, match=match.format(m=smallest)) as info:
        model(make(smallest))
    assert network.family in str(info.value)


@pytest.mark.parametrize('kwargs, match', [
    (dict(arch='b6'), r"Unknown PVTv2 arch 'b6'.*'b0', 'b1', 'b2', 'b2_li'"),
    (dict(arch=dict(embed_dims=[32, 64], depths=[1], num_heads=[1, 2], mlp_ratios=[8, 8],
                    sr_ratios=[8, 4])), 'one entry per stage'),
    (dict(arch=dict(embed_dims=[60], depths=[1], num_heads=[7], mlp_ratios=[8],
                    sr_ratios=[8])), 'num_heads=7 does not divide embed_dims=60'),
    (dict(arch=dict(embed_dims=[64])), 'missing'),
    (dict(out_indices=(0, 4)), r'out_indices.*\[0, 1, 2, 3\]'),
    (dict(frozen_stages=5), r'frozen_stages=5.*\[-1, 4\]'),
])
def test_pvt_v2_construction_errors_list_valid_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PVTv2(**kwargs)


def test_fused_inference_mlp_matches_the_plain_path(monkeypatch):
    """Without autograd on the CPU the MLP runs chunked into the residual; with the fast
    paths switched off, as written."""
    torch.manual_seed(0)
    model = PVT('tiny').eval()
    model.init_weights()
    x = torch.randn(1, 3, 224, 320)
    calls = []
    original = fast.mlp_add_
    monkeypatch.setattr(fast, 'mlp_add_', lambda mlp, r, h, chunk_bytes=1 << 16:
                        calls.append(1) or original(mlp, r, h, chunk_bytes))
    with torch.no_grad():
        fused = model(x)
        assert len(calls) == sum(len(s.blocks) for s in model.stages)  # every block, many chunks
        model.cpu_fast_paths = False
        plain = model(x)
    assert len(calls) == sum(len(s.blocks) for s in model.stages)  # not used again
    for a, b in zip(fused, plain):
        torch.testing.assert_close(a, b, rtol=0, atol=rounding_atol(b))


def test_cpu_fast_paths_switch():
    """One switch per model, shared by its stages: the fast block runs for CPU tensors in
    eager mode when enabled, the lean block on other devices, the plain one with both off."""
    model = PVT('tiny')
    cpu, meta = torch.empty(1), torch.empty(1, device='meta')
    assert model.cpu_fast_paths and uses_cpu_fast_paths(model.stages[0].switches, cpu)
    assert block_runner(model.switches, cpu).func is fast.block_forward
    assert not uses_cpu_fast_paths(model.switches, meta)  # any device but the CPU
    assert block_runner(model.switches, meta) is lean.block_v1
    model.cpu_fast_paths = False
    assert not any(uses_cpu_fast_paths(s.switches, cpu) for s in model.stages)
    assert not uses_cpu_fast_paths(PVT('tiny', cpu_fast_paths=False).stages[3].switches, cpu)
    model.lean_backward = False
    assert block_runner(model.switches, cpu) is run_plain


@pytest.mark.parametrize('training', [False, True])
def test_torch_compile_traces_without_graph_breaks(training):
    torch._dynamo.reset()
    model = PVT('tiny').train(training)
    with torch.set_grad_enabled(training):
        explained = torch._dynamo.explain(model)(torch.randn(1, 3, 96, 128))
    assert explained.graph_count == 1 and explained.graph_break_count == 0, \
        [str(b.reason) for b in explained.break_reasons]


def test_buffer_reusing_mlp_backward_equals_autograds(monkeypatch):
    """Training through MlpFunction gives autograd's outputs and gradients bit for bit."""
    monkeypatch.setattr(fast, 'MLP_REUSE_MIN_BYTES', 0)  # every block, at this small size
    torch.manual_seed(0)
    model = PVT('tiny', drop_path_rate=0.0).train()
    model.init_weights()
    x = torch.randn(2, 3, 96, 128)
    calls = []
    apply = fast.MlpFunction.apply
    monkeypatch.setattr(fast.MlpFunction, 'apply', lambda *a: calls.append(1) or apply(*a))
    outs, grads = train_step(model, x)
    assert len(calls) == sum(len(s.blocks) for s in model.stages)
    model.lean_backward = False  # autograd's own chain, on the CPU path too
    ref_outs, ref_grads = train_step(model, x)
    assert len(calls) == sum(len(s.blocks) for s in model.stages)  # not used again
    assert all(torch.equal(a, b) for a, b in zip(outs, ref_outs))
    for name, g in ref_grads.items():
        assert torch.equal(grads[name], g), name


def test_buffer_reusing_mlp_refuses_double_backward(monkeypatch):
    """A second backward through its graph gives the first's gradients again (its saved GELU
    input is never overwritten); differentiating the gradients fails loudly, and
    ``lean_backward=False`` gives autograd's own chain, which supports both."""
    from pvt_mm.network.pvt import Mlp
    monkeypatch.setattr(fast, 'MLP_REUSE_MIN_BYTES', 0)
    mlp = Mlp(8, 32)
    x = torch.randn(2, 5, 8, requires_grad=True)
    loss = lean.mlp(mlp, x, min_bytes=fast.MLP_REUSE_MIN_BYTES).square().sum()
    loss.backward(retain_graph=True)
    first = x.grad.clone()
    x.grad = None
    loss.backward()
    assert torch.equal(x.grad, first)
    x.grad = None
    (g,) = torch.autograd.grad(lean.mlp(mlp, x).square().sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match='differentiate twice'):
        g.sum().backward()
    (g,) = torch.autograd.grad(mlp(x).square().sum(), x, create_graph=True)  # the plain MLP
    g.sum().backward()
    assert x.grad is not None
    model = PVT('tiny', drop_path_rate=0.0, cpu_fast_paths=False)
    loss = sum(o.mean() for o in model(torch.randn(1, 3, 64, 64)))
    loss.backward(retain_graph=True)
    loss.backward()  # a second backward through the plain blocks works
    model = PVT('tiny', drop_path_rate=0.0, cpu_fast_paths=False, lean_backward=False,
                fused_attn=False)  # the fused attention's backward is not differentiable
    x = torch.randn(1, 3, 64, 64, requires_grad=True)
    (g,) = torch.autograd.grad(sum(o.mean() for o in model(x)), x, create_graph=True)
    g.square().sum().backward()  # double backward through autograd's own chain


def test_gpu_blocks_hold_only_the_gelu_input(monkeypatch):
    """The plain blocks (any device but the CPU; here the CPU paths off) train through
    MlpFunction in every block, whatever its size, bit-equal to autograd's chain
    (``lean_backward=False``)."""
    calls = []
    apply = fast.MlpFunction.apply
    monkeypatch.setattr(fast.MlpFunction, 'apply', lambda *a: calls.append(1) or apply(*a))
    torch.manual_seed(0)
    model = PVT('tiny', drop_path_rate=0.0, cpu_fast_paths=False).train()
    model.init_weights()
    x = torch.randn(2, 3, 64, 96)
    outs, grads = train_step(model, x)
    assert len(calls) == sum(len(s.blocks) for s in model.stages)
    model.lean_backward = False
    assert all(s.switches is model.switches for s in model.stages)  # one switch per model
    assert block_runner(model.switches, x) is run_plain
    ref_outs, ref_grads = train_step(model, x)
    assert len(calls) == sum(len(s.blocks) for s in model.stages)  # not used again
    assert all(torch.equal(a, b) for a, b in zip(outs, ref_outs))
    for name, g in ref_grads.items():
        assert torch.equal(grads[name], g), name


def test_lean_blocks_under_bf16_autocast(monkeypatch):
    """Under autocast the lean blocks take autocast's casts once and run MlpFunction in bf16
    in every block, and SRA's input is cast once for its query and its reduction conv
    (SharedCast): outputs and gradients bit-equal to autograd's chain under autocast, on the
    plain blocks and on the CPU path. Held for backward: per block, exactly one bf16
    hidden-size tensor less, and one bf16 copy of the tokens less where SRA reduces."""
    import pvt_mm.network.lean_backward as lean
    from pvt_mm.run.analysis.activation_memory import SavedTensorBytes
    monkeypatch.setattr(fast, 'MLP_REUSE_MIN_BYTES', 0)
    calls = []
    for function in (lean.MlpFunction, lean.SharedCast):
        apply = function.apply
        monkeypatch.setattr(function, 'apply', (lambda f, ap: lambda *a: calls.append(
            (f, a[0].dtype)) or ap(*a))(function.__name__, apply))
    torch.manual_seed(0)
    model = PVT('tiny', drop_path_rate=0.0).train()
    model.init_weights()
    x = torch.randn(2, 3, 64, 96)
    blocks = [b for s in model.stages for b in s.blocks]

    def step():
        with torch.autocast('cpu', dtype=torch.bfloat16):
            return train_step(model, x)

    model.lean_backward = False
    ref_outs, ref_grads = step()
    assert not calls
    for fast_paths in (False, True):
        model.cpu_fast_paths, model.lean_backward = fast_paths, True
        outs, grads = step()
        reduced = sum(b.attn.sr_ratio > 1 for b in blocks)
        assert sorted(calls) == sorted([('MlpFunction', torch.bfloat16)] * len(blocks)
                                       + [('SharedCast', torch.float32)] * reduced)
        calls.clear()
        assert all(torch.equal(a, b) for a, b in zip(outs, ref_outs))
        for name, g in ref_grads.items():
            assert torch.equal(grads[name], g), (fast_paths, name)
    model.cpu_fast_paths = False
    held = {}
    for lean_on in (True, False):
        model.lean_backward = lean_on
        with SavedTensorBytes(model) as count, torch.autocast('cpu', dtype=torch.bfloat16):
            model(x)
        held[lean_on] = count.total
    with torch.no_grad():
        tokens = [o.shape[2] * o.shape[3] for o in model(x)]
    saved_less = 0
    for stage, n in zip(model.stages, tokens):
        for b in stage.blocks:
            rows = x.shape[0] * n
            saved_less += 2 * rows * b.mlp.fc1.out_features  # the GELU output, bf16
            saved_less += 2 * rows * b.attn.q.in_features * (b.attn.sr_ratio > 1)
    assert held[False] - held[True] == saved_less


def test_inference_cpu_paths_stand_aside_under_autocast(monkeypatch):
    """v1's chunked MLP and PVTv2's oneDNN FFN call kernels autocast does not cast, so under
    autocast inference runs the plain blocks' bf16 products, equal to them bit for bit."""
    calls = []
    for name in ('mlp_add_', '_linear'):
        original = getattr(fast, name)
        monkeypatch.setattr(fast, name, (lambda f: lambda *a: calls.append(1) or f(*a))(original))
    x = torch.randn(1, 3, 64, 96)
    for model in (PVT('tiny').eval(), PVTv2('b0').eval()):
        with torch.no_grad():
            model(x)
        assert calls  # fp32: the CPU paths run
        calls.clear()
        with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16):
            outs = model(x)
            model.cpu_fast_paths = False
            ref = model(x)
        assert not calls
        assert all(torch.equal(a, b) for a, b in zip(outs, ref))


def test_buffer_reusing_mlp_only_where_the_hidden_activation_is_large(monkeypatch):
    """Below MLP_REUSE_MIN_BYTES of hidden activation autograd's chain was faster (224x224),
    so MlpFunction runs only from that size on."""
    from pvt_mm.network.pvt import Mlp
    calls = []
    apply = fast.MlpFunction.apply
    monkeypatch.setattr(fast.MlpFunction, 'apply', lambda *a: calls.append(1) or apply(*a))
    mlp = Mlp(8, 32)  # hidden activation: tokens x 32 x 4 bytes
    rows = fast.MLP_REUSE_MIN_BYTES // (32 * 4)
    lean.mlp(mlp, torch.randn(rows - 1, 8, requires_grad=True), min_bytes=fast.MLP_REUSE_MIN_BYTES)
    assert not calls
    lean.mlp(mlp, torch.randn(rows, 8, requires_grad=True), min_bytes=fast.MLP_REUSE_MIN_BYTES)
    assert len(calls) == 1


def test_query_groups_fill_the_threads():
    _query_groups = fast.query_groups
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        q = lambda b, h, n: torch.empty(b, h, n, 4)  # noqa: E731
        assert _query_groups(q(1, 1, 100)) == 2      # one (image, head) pair: split
        assert _query_groups(q(1, 5, 100)) == 2      # 5 pairs on 2 threads -> 10
        assert _query_groups(q(2, 1, 100)) == 1      # already one pair per thread
        assert _query_groups(q(1, 1, 101)) == 1      # no even split of 101 queries
        torch.set_num_threads(4)
        assert _query_groups(q(1, 1, 6)) == 3        # largest divisor of 6 up to 4
        assert _query_groups(q(1, 2, 100)) == 2
    finally:
        torch.set_num_threads(threads)


def test_attention_with_query_groups_matches_the_plain_call(monkeypatch):
    """Outputs and gradients agree with and without folding queries into the batch."""
    torch.manual_seed(0)
    model = PVT('tiny', drop_path_rate=0.0).train()
    model.init_weights()
    x = torch.randn(1, 3, 96, 128)
    seen = []  # 3 groups divide every stage's token count at 96 x 128
    monkeypatch.setattr(fast, 'query_groups', lambda q: seen.append(q.shape) or 3)
    outs, grads = train_step(model, x)
    assert len(seen) == sum(len(s.blocks) for s in model.stages)
    monkeypatch.setattr(fast, 'query_groups', lambda q: 1)
    ref_outs, ref_grads = train_step(model, x)
    blocks = sum(len(s.blocks) for s in model.stages)
    for a, b in zip(outs, ref_outs):
        torch.testing.assert_close(a, b, rtol=0, atol=rounding_atol(b))
    for name, g in ref_grads.items():
        torch.testing.assert_close(grads[name], g, rtol=0,
                                   atol=rounding_atol(g, chained=blocks), msg=name)


@pytest.mark.parametrize('batch', [1, 2])
def test_stages_hand_on_channels_last_views_and_return_nchw(batch):
    """A stage's output is its token tensor seen as NCHW without a copy, recognisably
    channels-last at any batch size (the next patch embedding reads it in place); the
    pyramid handed to the neck is contiguous NCHW with the same values."""
    model = PVT('tiny').eval()
    x = torch.randn(batch, 3, 64, 96)
    with torch.no_grad():
        outs = model(x)
        stage_out = model.stages[0](x)
    assert stage_out.is_contiguous(memory_format=torch.channels_last), stage_out.stride()
    assert torch.equal(stage_out, outs[0])
    for out in outs:
        assert out.is_contiguous(), out.stride()


def test_builds_on_the_meta_device():
    """Counting parameters needs no memory: the model builds on the meta device, with the
    same parameters as on the CPU."""
    with torch.device('meta'):
        meta = PVT('small', num_classes=1000)
    assert all(p.is_meta for p in meta.parameters())
    assert sum(p.numel() for p in meta.parameters()) == \
        sum(p.numel() for p in PVT('small', num_classes=1000).parameters())


@pytest.mark.parametrize('name', ['PVT', 'PVTv2'])
def test_the_class_docstrings_example_gives_the_shapes_it_shows(name):
    """help(pvt_mm.PVT) / help(pvt_mm.PVTv2) show an example with its output shapes, the
    smallest input, the output-size rule and every weights layout: the shapes are what the
    network gives (on the meta device: shapes only), the bound is min_input_size's."""
    import ast
    import re

    import pvt_mm
    from pvt_mm.network.families import FAMILIES
    cls = getattr(pvt_mm, name)
    doc = cls.__doc__
    arch = re.search(rf"pvt_mm\.{name}\('(\w+)'", doc).group(1)
    shape = tuple(int(v) for v in re.search(r'torch\.randn\(([\d, ]+)\)', doc).group(1).split(','))
    shown = ast.literal_eval(re.search(r'\n\s+(\[\(1, .*\)\])\n', doc).group(1))
    with torch.device('meta'):
        model = cls(arch)
        got = [tuple(f.shape) for f in model(torch.empty(shape))]
    assert got == shown
    assert f'{model.min_input_size} px' in doc
    for layout in FAMILIES[model.family].layouts:
        what = {'pvt_mm': "pvt_mm's own", 'official': 'official', 'mmdet': 'mmdet',
                'hf': 'HF', 'timm': 'timm'}[layout.replace('_v2', '')]
        assert what in doc, layout
