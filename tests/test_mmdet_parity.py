"""pvt_mm against mmdet's own PyramidVisionTransformer carrying the same weights.

mmdet converts the official weights with its own ``pvt_convert``; pvt_mm with its loader.
mmdet's copy uses LayerNorm eps 1e-6 everywhere, the official code 1e-5 in the patch
embedding and spatial-reduction norms: that alone explains the drift, so with those eps set
to the official value in mmdet's model the two must agree to float rounding
(:func:`conftest.rounding_atol`: mmdet runs explicit attention through
``nn.MultiheadAttention`` and its MLP as 1x1 convolutions, pvt_mm fused attention and
chunked products, so only the summation order differs). The explicit attention path is
tied to the fused one in tests/test_backbone.py, hence to mmdet's through this file.
"""
import pytest
import torch
from mmdet.models.backbones.pvt import PyramidVisionTransformer, pvt_convert

from pvt_mm import PVT

from conftest import official_state_dict, rounding_atol

MMDET_ARCH = {
    'tiny': dict(num_layers=[2, 2, 2, 2]),
    'small': dict(num_layers=[3, 4, 6, 3]),
}


def build_pair(arch, tmp_path, seed=0):
    sd = official_state_dict(arch, seed=seed)
    path = tmp_path / f'pvt_{arch}.pth'
    torch.save(sd, path)
    ours = PVT(arch, init_cfg=dict(type='Pretrained', checkpoint=str(path))).eval()
    ours.init_weights()
    ref = PyramidVisionTransformer(**MMDET_ARCH[arch]).eval()
    ref.load_state_dict(pvt_convert(sd), strict=True)
    return ours, ref


def official_eps(mmdet_model):
    """Sets mmdet's patch-embedding and spatial-reduction LayerNorm eps to the official 1e-5."""
    changed = 0
    for name, m in mmdet_model.named_modules():
        if isinstance(m, torch.nn.LayerNorm) and (name.endswith('.0.norm') or name.endswith('attn.norm')):
            m.eps = 1e-5
            changed += 1
    return changed


@pytest.mark.parametrize('arch, shape', [('tiny', (1, 3, 333, 517)), ('small', (2, 3, 224, 320))])
def test_features_match_mmdet(arch, shape, tmp_path):
    ours, ref = build_pair(arch, tmp_path)
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        a = ours(x)
        b = ref(x)
        drift = max((p - q).abs().max().item() for p, q in zip(a, b))
        n = official_eps(ref)
        b_eps = ref(x)
    assert n == 4 + sum(1 for s in ours.stages for blk in s.blocks if blk.attn.sr_ratio > 1)
    for p, q in zip(a, b_eps):
        assert p.shape == q.shape
        torch.testing.assert_close(p, q, rtol=0, atol=rounding_atol(q))
    # The eps difference is real but small: it is the only gap between the two.
    assert 0 < drift < 5e-3, drift


def test_training_gradients_match_mmdet(tmp_path, monkeypatch):
    """The training paths (buffer-reusing MLP backward in every block, query groups in the
    attention backward: one image, two threads) give mmdet's input gradient and loss."""
    from pvt_mm.network import cpu_fast_paths
    monkeypatch.setattr(cpu_fast_paths, 'MLP_REUSE_MIN_BYTES', 0)
    ours, ref = build_pair('tiny', tmp_path, seed=3)
    official_eps(ref)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        grads = []
        for model in (ours, ref):
            x = torch.randn(1, 3, 160, 224, generator=torch.Generator().manual_seed(1),
                            requires_grad=True)
            outs = model(x)  # eval mode (no drop path) with autograd on
            sum((o.double() ** 2).mean() for o in outs).backward()
            grads.append(x.grad)
    finally:
        torch.set_num_threads(threads)
    assert grads[0].abs().max() > 0
    blocks = sum(len(s.blocks) for s in ours.stages)  # the gradient crosses every block
    torch.testing.assert_close(grads[0], grads[1], rtol=0,
                               atol=rounding_atol(grads[1], chained=blocks))
