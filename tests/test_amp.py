"""--amp without a GPU: the network under bf16 autocast (pvt_mm.CpuBf16Hook and
autocast_network), post-processing in fp32; on a CPU without native bf16, fp32 as before."""
import os.path as osp

import pytest
import torch

from conftest import TOY
from pvt_mm.run import amp as amp_switch
from pvt_mm.run.hooks import autocast_network


def _toy_retinanet():
    from pvt_mm.run.config import load_config
    cfg, task = load_config(osp.join(TOY, 'retinanet_pvt_t_toy.py'))
    torch.manual_seed(0)
    model = task.build_model(cfg)
    model.init_weights()
    return cfg, model.eval()


def test_network_runs_in_bf16_and_hands_on_fp32():
    _, model = _toy_retinanet()
    x = torch.randn(1, 3, 128, 160)
    with torch.no_grad():
        ref = model._forward(x)
    seen = []
    model.backbone.stages[0].blocks[0].attn.q.register_forward_hook(
        lambda m, a, o: seen.append(o.dtype))
    assert autocast_network(model) == ['backbone', 'neck', 'bbox_head']
    with torch.no_grad():
        out = model._forward(x)
    assert seen == [torch.bfloat16]  # the inner products ran in bf16 ...
    for level_ref, level in zip(ref[0] + ref[1], out[0] + out[1]):
        assert level.dtype == torch.float32  # ... and the head's outputs come back fp32
        scale = level_ref.abs().max().item()
        # bf16 keeps 8 significant bits (relative step 2^-8 = 0.4%); through the network the
        # outputs moved by at most 1.2% of their scale (measured with the default and with
        # AVX2 kernels), and they did move.
        assert 0 < (level - level_ref).abs().max().item() <= 0.05 * scale


def test_wrapping_is_idempotent_and_needs_a_network():
    _, model = _toy_retinanet()
    autocast_network(model)
    forward = model.backbone.forward
    autocast_network(model)
    assert model.backbone.forward is forward
    with pytest.raises(ValueError, match='none of'):
        autocast_network(torch.nn.Linear(2, 2))


def test_amp_switch_picks_by_device(monkeypatch):
    from mmengine.config import Config
    cfg = Config(dict(optim_wrapper=dict(type='AmpOptimWrapper', loss_scale='dynamic',
                                         optimizer=dict(type='AdamW', lr=1e-4))))
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    monkeypatch.setattr(amp_switch, 'cpu_has_native_bf16', lambda: True)
    assert 'bf16 autocast' in amp_switch.enable_amp(cfg)
    assert cfg.optim_wrapper.type == 'OptimWrapper' and 'loss_scale' not in cfg.optim_wrapper
    assert cfg.custom_hooks == [dict(type='pvt_mm.CpuBf16Hook')]
    assert 'bf16 autocast' in amp_switch.enable_amp_test(cfg)
    assert cfg.custom_hooks == [dict(type='pvt_mm.CpuBf16Hook')]  # added once
    cfg = Config(dict(optim_wrapper=dict(type='OptimWrapper')))
    monkeypatch.setattr(amp_switch, 'cpu_has_native_bf16', lambda: False)
    assert 'running in fp32' in amp_switch.enable_amp(cfg)
    assert 'custom_hooks' not in cfg
    assert 'running in fp32' in amp_switch.enable_amp_test(cfg)
