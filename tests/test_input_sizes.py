"""Property test over input sizes: every size gives the documented pyramid or a clear error.

PVT v1's rule (module docstring of pvt_mm/network/pvt.py): an input of H x W >= 32 x 32 gives F_i of
floor(H / 2**(i+1)) x floor(W / 2**(i+1)) for i = 1..4, the remainder dropped as the
official code does; a side under 32 raises ValueError naming 32. Shapes depend only on the
patch sizes and spatial-reduction ratios, so the wide sweep runs a PVT with the paper's
strides and ratios but narrow channels and one block a stage; a shorter sweep runs PVT-Tiny.

PVTv2's (pvt_mm/network/pvt_v2.py): F_i has ceil(H / 2**(i+1)) x ceil(W / 2**(i+1)) cells
(padded overlapping patch embeddings); a side under 29 raises ValueError naming 29, except
with linear SRA, which takes any size.
"""
import math

import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pvt_mm import PVT, PVTv2

NARROW = dict(patch_sizes=(4, 2, 2, 2), embed_dims=(16, 32, 40, 64), depths=(1, 1, 1, 1),
              num_heads=(1, 2, 5, 8), mlp_ratios=(2, 2, 2, 2), sr_ratios=(8, 4, 2, 1))
sides = st.integers(min_value=1, max_value=1400)
batches = st.integers(min_value=1, max_value=3)
scales = st.sampled_from([1e-3, 1.0, 1e3])


@pytest.fixture(scope='module')
def models():
    torch.manual_seed(0)
    narrow_v2 = {k: v for k, v in NARROW.items() if k != 'patch_sizes'}
    built = {'narrow': PVT(NARROW).eval(), 'tiny': PVT('tiny').eval(),
             'narrow_v2': PVTv2(narrow_v2).eval(),
             'narrow_v2_linear': PVTv2(dict(narrow_v2, linear=True)).eval()}
    for model in built.values():
        model.init_weights()
    return built


def check_size(model, b, h, w, scale):
    x = torch.randn(b, 3, h, w) * scale
    if min(h, w) < 32:
        assert model.min_input_size == 32
        with pytest.raises(ValueError, match=f'Input of {h}x{w} is too small.*at least 32 pix'):
            model(x)
        return
    with torch.no_grad():
        outs = model(x)
    assert len(outs) == 4
    for i, (out, ch) in enumerate(zip(outs, model.out_channels), start=1):
        stride = 2 ** (i + 1)
        assert out.shape == (b, ch, h // stride, w // stride), (h, w, i)
        assert torch.isfinite(out).all(), f'non-finite F{i} at {b}x{h}x{w}, scale {scale}'


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(b=batches, h=sides, w=sides, scale=scales)
@example(b=1, h=1, w=1, scale=1.0)
@example(b=2, h=31, w=1400, scale=1.0)
@example(b=1, h=32, w=32, scale=1.0)
@example(b=3, h=33, w=63, scale=1e3)
@example(b=3, h=1400, w=1400, scale=1.0)
def test_every_size_gives_the_pyramid_or_names_the_minimum(models, b, h, w, scale):
    check_size(models['narrow'], b, h, w, scale)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(b=batches, h=st.integers(1, 700), w=st.integers(1, 700), scale=scales)
@example(b=1, h=17, w=600, scale=1.0)
@example(b=2, h=97, w=161, scale=1.0)
def test_pvt_tiny_on_sampled_sizes(models, b, h, w, scale):
    check_size(models['tiny'], b, h, w, scale)


def check_size_v2(model, b, h, w, scale):
    x = torch.randn(b, 3, h, w) * scale
    smallest = 1 if model.arch['linear'] else 29
    assert model.min_input_size == smallest
    if min(h, w) < smallest:
        with pytest.raises(ValueError, match=f'Input of {h}x{w} is too small for PVTv2.*at least 29'):
            model(x)
        return
    with torch.no_grad():
        outs = model(x)
    for i, (out, ch) in enumerate(zip(outs, model.out_channels), start=1):
        stride = 2 ** (i + 1)
        assert out.shape == (b, ch, math.ceil(h / stride), math.ceil(w / stride)), (h, w, i)
        assert torch.isfinite(out).all(), f'non-finite F{i} at {b}x{h}x{w}, scale {scale}'


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(b=batches, h=sides, w=sides, scale=scales, linear=st.booleans())
@example(b=1, h=1, w=1, scale=1.0, linear=True)
@example(b=1, h=28, w=900, scale=1.0, linear=False)
@example(b=1, h=29, w=29, scale=1.0, linear=False)
@example(b=2, h=33, w=97, scale=1e3, linear=True)
def test_pvt_v2_every_size_gives_the_ceiling_pyramid_or_names_the_minimum(models, b, h, w, scale,
                                                                          linear):
    check_size_v2(models['narrow_v2_linear' if linear else 'narrow_v2'], b, h, w, scale)
