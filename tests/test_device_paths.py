"""What a GPU runs, as far as a CPU can show it: no host read in the forward (the meta device
has no values to read), fp16 autocast with a scaled loss through the lean functions, and a
training step that ``torch.compile(fullgraph=True)`` traces whole."""
import contextlib
import math

import pytest
import torch

from conftest import FP32_EPS, rounding_atol
from pvt_mm import PVT
from pvt_mm.network.families import FAMILIES

ALL_ARCHS = [(f.name, arch) for f in FAMILIES.values() for arch in f.archs]


def _network(family, arch, **kwargs):
    return FAMILIES[family].network(arch, drop_path_rate=0.0, **kwargs)


@pytest.mark.parametrize('family,arch', ALL_ARCHS)
def test_forward_on_the_meta_device_reads_no_value(family, arch):
    """A forward on the meta device (inference and training, with its backward graph) fails on
    any data-dependent host read (``bool(tensor)``, ``.item()``, ``.tolist()``): this one has
    none, so a GPU step never waits for the device."""
    with torch.device('meta'):
        model = _network(family, arch)
        x = torch.randn(2, 3, 224, 320)
    with torch.no_grad():
        outs = model.eval()(x)
    assert [tuple(o.shape[1:]) for o in outs] == [
        (c, -(-224 // s), -(-320 // s)) if family == 'PVTv2' else (c, 224 // s, 320 // s)
        for c, s in zip(model.out_channels, model.strides)]
    outs = model.train()(x.requires_grad_())
    sum(o.sum() for o in outs).backward()
    assert all(p.grad is not None and p.grad.is_meta for p in model.parameters())


def test_non_finite_input_is_refused_on_the_cpu_only():
    """A direct call on a CPU tensor still says where the NaN is; on another device (meta here)
    the values are not read (the run layer's data check reads a batch on the host)."""
    model = PVT('tiny')
    x = torch.randn(1, 3, 64, 64)
    x[0, 1, 2, 3] = float('nan')
    with pytest.raises(ValueError, match=r'1 NaN and 0 infinite .* index \(0, 1, 2, 3\)'):
        model(x)
    with torch.device('meta'):
        meta_model = PVT('tiny')
    assert len(meta_model(torch.empty(1, 3, 64, 64, device='meta'))) == 4


@pytest.mark.parametrize('family,arch', [('PVT', 'tiny'), ('PVTv2', 'b0'), ('PVTv2', 'b2_li')])
def test_fp16_autocast_with_a_scaled_loss_gives_autograds_gradients(monkeypatch, family, arch):
    """Under fp16 autocast, with the loss scaled as ``GradScaler`` scales it (2^16) and the
    gradients unscaled, the lean functions (what a GPU runs) and the CPU paths give the
    outputs and gradients of autograd's own chain under the same autocast, bit for bit: the
    same kernels on the same fp16 operands."""
    import pvt_mm.network.cpu_fast_paths as fast
    import pvt_mm.network.lean_backward as lean
    monkeypatch.setattr(fast, 'MLP_REUSE_MIN_BYTES', 0)  # v1's CPU path: every block's MLP too
    function = lean.MlpFunction if family == 'PVT' else lean.ConvFFNFunction
    calls, apply = [], function.apply
    monkeypatch.setattr(function, 'apply', lambda *a: calls.append(a[0].dtype) or apply(*a))
    torch.manual_seed(0)
    model = _network(family, arch).train()
    model.init_weights()
    x = torch.randn(2, 3, 64, 96)
    scale = 2.0 ** 16

    def step():
        with torch.autocast('cpu', dtype=torch.float16):
            outs = model(x)
            loss = sum(o.float().square().mean() for o in outs)
        (loss * scale).backward()
        grads = {n: p.grad / scale for n, p in model.named_parameters()}
        model.zero_grad(set_to_none=True)
        return [o.detach() for o in outs], grads

    model.cpu_fast_paths, model.lean_backward = False, False
    ref_outs, ref_grads = step()
    assert all(torch.isfinite(g).all() for g in ref_grads.values())  # nothing overflowed
    blocks = sum(len(s.blocks) for s in model.stages)
    for on_cpu_paths in (False, True):
        model.cpu_fast_paths, model.lean_backward = on_cpu_paths, True
        outs, grads = step()
        assert calls == [torch.float16] * blocks  # the lean function, in fp16, in every block
        calls.clear()
        assert all(torch.equal(a, b) for a, b in zip(outs, ref_outs)), on_cpu_paths
        for name, g in ref_grads.items():
            assert torch.equal(grads[name], g), (on_cpu_paths, name)


@pytest.mark.parametrize('family,arch', [('PVT', 'tiny'), ('PVTv2', 'b0'),
                                         pytest.param('PVTv2', 'b2_li', marks=pytest.mark.slow)])
def test_training_step_compiles_to_one_graph(family, arch):
    """``torch.compile(fullgraph=True)`` traces the training forward whole (a graph break
    raises), through the lean functions and the position-embedding resize, and its backward
    (AOT autograd's) gives eager's gradients within float32 rounding."""
    torch._dynamo.reset()
    torch.manual_seed(0)
    model = _network(family, arch).train()
    model.init_weights()
    x = torch.randn(2, 3, 96, 128)

    def grads_of(fn):
        loss = sum(o.square().mean() for o in fn(x))
        loss.backward()
        out = {n: p.grad.clone() for n, p in model.named_parameters()}
        model.zero_grad(set_to_none=True)
        return loss.detach(), out

    compiled = torch.compile(model, fullgraph=True, backend='aot_eager')
    loss, grads = grads_of(compiled)
    with torch.compiler.set_stance('force_eager') if hasattr(torch.compiler, 'set_stance') \
            else contextlib.nullcontext():
        model.cpu_fast_paths = False  # eager on the lean path, as the compiled graph runs
        ref_loss, ref_grads = grads_of(model)
    torch.testing.assert_close(loss, ref_loss, rtol=16 * FP32_EPS, atol=0)
    blocks = sum(len(s.blocks) for s in model.stages)
    for name, g in ref_grads.items():
        # Reordered sums only (the graph's fusions), through at most every block.
        torch.testing.assert_close(grads[name], g, rtol=0,
                                   atol=rounding_atol(g, chained=blocks) + math.ulp(0.0), msg=name)
