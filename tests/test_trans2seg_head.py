"""pvt_mm.Trans2SegHead: mmseg decode head of the paper's PVT + Trans2Seg (Table 7).

Built through mmseg's registry as configs name it; checked for any input size, for the
design's invariants (one shared mask head, classes entering only through their queries), for
gradients reaching every parameter, and for clear errors on a wrong set-up.
"""
import pytest
import torch

from conftest import rounding_atol
from pvt_mm import PVT
from pvt_mm.run.trans2seg_head import AttentionMapRefiner, Trans2SegHead

SMALL_HEAD = dict(type='pvt_mm.Trans2SegHead', in_channels=[64, 512], in_index=[0, 3],
                  input_transform='multiple_select', channels=16, embed_dim=32, depth=2,
                  num_heads=4, mlp_ratio=2.0, token_grid=(4, 4), num_classes=5,
                  norm_cfg=dict(type='BN', requires_grad=True))


def build_head(**overrides):
    from mmengine.registry import DefaultScope
    from mmseg.registry import MODELS
    DefaultScope.get_instance('pvt_mm_test_trans2seg', scope_name='mmseg')
    return MODELS.build({**SMALL_HEAD, **overrides})


def features(b, c4_hw, c1_hw, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(b, 64, *c1_hw, generator=g), None, None,
            torch.randn(b, 512, *c4_hw, generator=g)]


def test_built_from_mmsegs_registry_by_its_scoped_name():
    head = build_head()
    assert type(head) is Trans2SegHead
    assert not hasattr(head, 'conv_seg')  # one logit per class comes from the mask head


@pytest.mark.parametrize('hw', [(128, 128), (97, 300), (300, 97), (512, 683), (33, 33)])
def test_any_input_size_through_pvt(hw):
    """Inputs of sizes not divisible by 32, tall and wide ones, and F4 grids other than the
    reference 4x4 (down to 1x1 at 33x33): logits at F1's stride, finite."""
    backbone = PVT('tiny').eval()
    head = build_head().eval()
    with torch.no_grad():
        out = head(backbone(torch.randn(1, 3, *hw)))
    assert out.shape == (1, 5, hw[0] // 4, hw[1] // 4)
    assert torch.isfinite(out).all()


def test_refinement_at_the_reference_grid_is_trans2segs_spatial_mlp():
    """At the reference grid no resize happens: maps + MLP(LayerNorm(maps over positions))."""
    refine = AttentionMapRefiner((4, 6)).eval()
    maps = torch.randn(10, 4, 6)
    expected = maps + refine.mlp(refine.norm(maps.flatten(1))).reshape(10, 4, 6)
    torch.testing.assert_close(refine(maps), expected, rtol=0, atol=0)
    other = refine(torch.randn(10, 7, 3))  # another grid: resized to 4x6 and back
    assert other.shape == (10, 7, 3) and torch.isfinite(other).all()


def test_images_of_a_batch_do_not_mix():
    head = build_head().eval()
    feats = features(2, (5, 7), (20, 28))
    with torch.no_grad():
        both = head(feats)
        first = head([f[:1] if f is not None else None for f in feats])
    torch.testing.assert_close(both[:1], first, rtol=0, atol=rounding_atol(first, 512))


def test_classes_differ_only_by_their_queries():
    """The mask head is shared: permuting the class embeddings permutes the output channels."""
    head = build_head().eval()
    feats = features(1, (4, 4), (16, 16))
    perm = torch.tensor([3, 0, 4, 1, 2])
    with torch.no_grad():
        out = head(feats)
        head.class_embed.copy_(head.class_embed[:, perm])
        permuted = head(feats)
    torch.testing.assert_close(permuted, out[:, perm], rtol=0, atol=rounding_atol(out, 512))


def test_mmsegs_loss_reaches_every_parameter():
    """Every parameter gets a gradient (DDP rejects unused ones): mmseg's own loss path."""
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    head = build_head().train()
    feats = features(2, (4, 4), (16, 16))
    samples = []
    for _ in range(2):
        s = SegDataSample()
        s.gt_sem_seg = PixelData(data=torch.randint(0, 5, (1, 64, 64)))
        s.set_metainfo(dict(img_shape=(64, 64), pad_shape=(64, 64)))
        samples.append(s)
    losses = head.loss(feats, samples, train_cfg={})
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    missing = [n for n, p in head.named_parameters() if p.grad is None or not p.grad.abs().sum()]
    assert not missing, missing


@pytest.mark.parametrize('overrides, words', [
    (dict(in_channels=512, in_index=3, input_transform=None), 'reads two maps'),
    (dict(token_grid=(0, 4)), 'token_grid'),
    (dict(embed_dim=30), 'not divisible by num_heads'),
])
def test_wrong_setups_are_named(overrides, words):
    with pytest.raises(ValueError, match=words):
        build_head(**overrides)
