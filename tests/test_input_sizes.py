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


@pytest.mark.slow
def test_pvt_v1_under_dino_takes_unpadded_odd_sizes():
    """DINO's recipe feeds its backbone unpadded batches (pad_size_divisor=1): the PVT-Small
    DINO config's own model, as built (random weights, no download), predicts on an image of
    257x331 handed over as it is, and on a batch of it with a 203x290 one (padded to the batch's
    largest, the padding masked by DINO), each image's boxes inside the image. (DINO's 900
    queries are chosen from the 4 levels' cells: an image needs at least 900 of them.)"""
    import os.path as osp

    from mmdet.structures import DetDataSample

    from conftest import ROOT
    from pvt_mm.run.config import load_config
    config = osp.join(ROOT, 'configs', 'detection', 'dino_4scale_pvt_s_12e_coco.py')
    cfg, task = load_config(config, {'model.backbone.init_cfg': None})
    torch.manual_seed(0)
    model = task.build_eval_model(cfg)
    assert model.data_preprocessor.pad_size_divisor == 1
    images = [torch.randint(0, 256, (3, h, w), dtype=torch.uint8)
              for h, w in ((257, 331), (203, 290))]
    for batch in (images[:1], images):
        samples = [DetDataSample(metainfo=dict(img_shape=tuple(i.shape[1:]),
                                               ori_shape=tuple(i.shape[1:]),
                                               scale_factor=(1.0, 1.0))) for i in batch]
        data = model.data_preprocessor(dict(inputs=batch, data_samples=samples))
        assert tuple(data['inputs'].shape[-2:]) == (257, 331)  # no size divisor: odd, as given
        with torch.no_grad():
            results = model.predict(data['inputs'], data['data_samples'], rescale=True)
        for image, result in zip(batch, results):
            boxes = result.pred_instances.bboxes
            assert len(boxes) == cfg.model.test_cfg.max_per_img and torch.isfinite(boxes).all()
            assert (boxes[:, 2] <= image.shape[2]).all() and (boxes[:, 3] <= image.shape[1]).all()
