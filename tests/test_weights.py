"""Loading weights: the official layout in every wrapper, mmdet's layout, whole-model files,
safetensors, and the clear, lossless failure for everything that does not fit."""
import os
import pickle

import pytest
import torch

from pvt_mm import PVT, CheckpointError
from pvt_mm.network.weights import load_pretrained, load_pvt_state_dict

from conftest import official_state_dict


def pretrained(arch, path, **kwargs):
    model = PVT(arch, init_cfg=dict(type='Pretrained', checkpoint=str(path), **kwargs))
    model.init_weights()
    return model


def assert_holds_official(model, sd):
    """Spot-checks every kind of tensor against the official keys it came from."""
    last = len(model.stages)
    for i, stage in enumerate(model.stages, start=1):
        torch.testing.assert_close(stage.patch_embed.proj.weight, sd[f'patch_embed{i}.proj.weight'])
        torch.testing.assert_close(stage.patch_embed.norm.bias, sd[f'patch_embed{i}.norm.bias'])
        pos = sd[f'pos_embed{i}']
        torch.testing.assert_close(stage.pos_embed, pos[:, 1:] if i == last else pos)
        for j, block in enumerate(stage.blocks):
            b = f'block{i}.{j}.'
            torch.testing.assert_close(block.attn.q.weight, sd[b + 'attn.q.weight'])
            torch.testing.assert_close(block.attn.kv.bias, sd[b + 'attn.kv.bias'])
            torch.testing.assert_close(block.attn.proj.weight, sd[b + 'attn.proj.weight'])
            torch.testing.assert_close(block.mlp.fc2.weight, sd[b + 'mlp.fc2.weight'])
            torch.testing.assert_close(block.norm2.weight, sd[b + 'norm2.weight'])
            if block.attn.sr_ratio > 1:
                torch.testing.assert_close(block.attn.sr.weight, sd[b + 'attn.sr.weight'])
                torch.testing.assert_close(block.attn.norm.weight, sd[b + 'attn.norm.weight'])


@pytest.mark.parametrize('wrapper', ['flat', 'model', 'state_dict'])
def test_official_checkpoint_in_every_wrapper(tmp_path, wrapper, caplog):
    sd = official_state_dict('tiny', seed=1)
    obj = sd if wrapper == 'flat' else {wrapper: sd, 'epoch': 300}
    path = tmp_path / 'pvt_tiny.pth'
    torch.save(obj, path)
    model = pretrained('tiny', path)
    assert_holds_official(model, sd)


def test_a_backbone_skips_the_classifier_keys_with_one_log_line(tmp_path):
    from mmengine.logging import MMLogger
    path = tmp_path / 'pvt_tiny.pth'
    torch.save(official_state_dict('tiny'), path)
    logger = MMLogger.get_instance('pvt_mm_test_skip', log_level='INFO')
    records = []
    handler = __import__('logging').Handler()
    handler.emit = records.append
    logger.addHandler(handler)
    try:
        _, layout = load_pvt_state_dict(str(path))
        assert not [r for r in records if 'classifier' in r.getMessage()]  # reading decides nothing
        load_pretrained(PVT('tiny'), str(path))
    finally:
        logger.removeHandler(handler)
    assert layout == 'official'
    skipped = [r.getMessage() for r in records if 'classifier' in r.getMessage()]
    assert len(skipped) == 1
    assert all(k in skipped[0] for k in ('cls_token', 'cls_pos_embed', 'head.weight', 'norm.bias'))


def test_detector_checkpoint_with_backbone_prefix(tmp_path):
    src = PVT('tiny')
    src.init_weights()
    sd = {f'backbone.{k}': v for k, v in src.state_dict().items()}
    sd['neck.lateral_convs.0.conv.weight'] = torch.zeros(256, 64, 1, 1)
    sd['bbox_head.retina_cls.bias'] = torch.zeros(9)
    path = tmp_path / 'retinanet.pth'
    torch.save({'meta': {'epoch': 12}, 'state_dict': sd}, path)
    model = pretrained('tiny', path)
    for k, v in src.state_dict().items():
        torch.testing.assert_close(model.state_dict()[k], v)


def test_ddp_module_prefix_on_official_keys(tmp_path):
    sd = official_state_dict('tiny', seed=2)
    path = tmp_path / 'ddp.pth'
    torch.save({'model': {f'module.{k}': v for k, v in sd.items()}}, path)
    assert_holds_official(pretrained('tiny', path), sd)


def test_mmdet_layout_is_converted(tmp_path):
    from mmdet.models.backbones.pvt import pvt_convert
    sd = official_state_dict('small', seed=3)
    path = tmp_path / 'mmdet_pvt_s.pth'
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in pvt_convert(sd).items()}}, path)
    model = pretrained('small', path)
    assert_holds_official(model, sd)


def test_safetensors_file(tmp_path):
    from safetensors.torch import save_file
    sd = official_state_dict('tiny', seed=4)
    path = tmp_path / 'pvt_tiny.safetensors'
    save_file({k: v.contiguous() for k, v in sd.items()}, str(path))
    assert_holds_official(pretrained('tiny', path), sd)


def unchanged(model, before):
    return all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def failing_load(arch, path, match):
    model = PVT(arch, init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises((CheckpointError, FileNotFoundError), match=match) as info:
        model.init_weights()
    assert unchanged(model, before), 'a failed load changed the weights'
    return str(info.value)


def test_other_size_is_refused_with_names(tmp_path):
    path = tmp_path / 'pvt_small.pth'
    torch.save(official_state_dict('small'), path)
    msg = failing_load('tiny', path, 'does not fit')
    assert str(path) in msg
    assert 'depths (3, 4, 6, 3) (PVT-small)' in msg
    assert 'stages.0.blocks.2.' in msg  # an unexpected key is named


def test_missing_key_is_named(tmp_path):
    sd = official_state_dict('tiny')
    del sd['block2.1.attn.kv.weight']
    path = tmp_path / 'broken.pth'
    torch.save(sd, path)
    msg = failing_load('tiny', path, 'Missing in the file')
    assert 'stages.1.blocks.1.attn.kv.weight' in msg and str(path) in msg


def test_pretrain_size_mismatch_is_explained(tmp_path):
    path = tmp_path / 'pvt_tiny_384.pth'
    torch.save(official_state_dict('tiny', img_size=384), path)
    msg = failing_load('tiny', path, 'pretrain_img_size')
    assert 'stages.0.pos_embed: file (1, 9216, 64) vs model (1, 3136, 64)' in msg


def test_pvt_v2_is_refused(tmp_path):
    sd = {k: v for k, v in official_state_dict('tiny').items() if 'pos_embed' not in k}
    sd['block1.0.mlp.dwconv.dwconv.weight'] = torch.zeros(512, 1, 3, 3)
    path = tmp_path / 'pvt_v2_b0.pth'
    torch.save(sd, path)
    failing_load('tiny', path, 'PVTv2')


def test_not_a_checkpoint(tmp_path):
    path = tmp_path / 'notes.pth'
    path.write_text('these are not weights\n')
    msg = failing_load('tiny', path, 'not a PyTorch checkpoint')
    assert str(path) in msg


def test_truncated_checkpoint(tmp_path):
    path = tmp_path / 'cut.pth'
    torch.save(official_state_dict('tiny'), path)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    failing_load('tiny', path, 'truncated')


def test_missing_file(tmp_path):
    failing_load('tiny', tmp_path / 'nowhere.pth', 'does not exist')


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}',))


def test_malicious_pickle_does_not_run(tmp_path):
    marker = tmp_path / 'pwned'
    path = tmp_path / 'evil.pth'
    sd = official_state_dict('tiny')
    with open(path, 'wb') as f:
        pickle.dump({'model': sd, 'payload': _Exploit(marker)}, f)
    failing_load('tiny', path, 'refuses to unpickle')
    assert not marker.exists()
    torch.save({'model': sd, 'payload': _Exploit(marker)}, path)
    failing_load('tiny', path, 'refuses to unpickle')
    assert not marker.exists()


@pytest.mark.parametrize('classifier', [False, True])
def test_to_official_inverts_the_conversion(classifier):
    from pvt_mm.network.weight_layouts import convert_official, to_official
    sd = official_state_dict('tiny', seed=6, classifier=classifier)
    back = to_official(convert_official(sd))
    assert set(back) == set(sd)
    for k, v in sd.items():
        torch.testing.assert_close(back[k], v, rtol=0, atol=0, msg=k)


def test_a_backbones_weights_get_a_zero_class_token_row_in_the_official_layout():
    from pvt_mm.network.weight_layouts import to_official
    backbone = PVT('tiny').state_dict()
    official = to_official(backbone)
    assert official['pos_embed4'].shape == (1, 50, 512)
    assert not official['pos_embed4'][:, 0].any()
    torch.testing.assert_close(official['pos_embed4'][:, 1:], backbone['stages.3.pos_embed'])


# ---------------------------------------------------------------- init_cfg forms

def test_pretrained_inside_an_init_cfg_list_loads_strictly(tmp_path):
    sd = official_state_dict('tiny', seed=7)
    path = tmp_path / 'pvt_tiny.pth'
    torch.save(sd, path)
    model = PVT('tiny', init_cfg=[dict(type='Pretrained', checkpoint=str(path))])
    model.init_weights()
    assert_holds_official(model, sd)
    missing = PVT('tiny', init_cfg=[dict(type='Pretrained', checkpoint='/nonexistent.pth')])
    before = {k: v.clone() for k, v in missing.state_dict().items()}
    with pytest.raises(FileNotFoundError, match='/nonexistent.pth'):
        missing.init_weights()
    assert unchanged(missing, before)


@pytest.mark.parametrize('init_cfg, match', [
    ([dict(type='Pretrained', checkpoint='a.pth'), dict(type='Pretrained', checkpoint='b.pth')],
     'names 2 Pretrained checkpoints'),
    ([dict(type='Pretrained', checkpoint='a.pth'), dict(type='Constant', layer='Linear', val=0)],
     'mixes a Pretrained checkpoint'),
    (dict(type='Pretrained', checkpiont='a.pth'), r"unknown \['checkpiont'\]"),
    (dict(type='Pretrained'), 'checkpoint missing'),
    (dict(type='Constant', val=1.0), 'names no layer or override'),
    (['pvt_tiny.pth'], 'must be dicts with a type'),
])
def test_init_cfg_that_cannot_be_honoured_fails_when_built(init_cfg, match):
    with pytest.raises(ValueError, match=match):
        PVT('tiny', init_cfg=init_cfg)


def test_a_pretrained_checkpoint_that_is_not_a_path_is_refused():
    model = PVT('tiny', init_cfg=dict(type='Pretrained', checkpoint=None))
    with pytest.raises(CheckpointError, match=r'must be a path, an http\(s\) URL or an hf-hub: id'):
        model.init_weights()


def test_other_initializers_apply_after_the_official_init():
    torch.manual_seed(0)
    model = PVT('tiny', init_cfg=[dict(type='Constant', layer='LayerNorm', val=2.0, bias=0.5)])
    model.init_weights()
    norms = [m for m in model.modules() if isinstance(m, torch.nn.LayerNorm)]
    assert norms and all(bool((m.weight == 2.0).all() and (m.bias == 0.5).all()) for m in norms)
    linear = model.stages[0].blocks[0].attn.q
    assert 0.015 < linear.weight.std().item() < 0.025  # the official trunc-normal init


def test_a_checkpoint_mmengine_wrote_loads_as_weights(tmp_path):
    """A training checkpoint (message hub with HistoryBuffer, numpy scalars) loads its
    backbone with weights_only=True kept on."""
    import numpy as np
    from mmengine.logging import HistoryBuffer
    src = PVT('tiny')
    src.init_weights()
    path = tmp_path / 'epoch_12.pth'
    torch.save({'meta': {'epoch': 12, 'seed': np.int64(0)},
                'state_dict': {**{f'backbone.{k}': v for k, v in src.state_dict().items()},
                               'bbox_head.retina_cls.bias': torch.zeros(9)},
                'message_hub': {'log_scalars': {'train/loss': HistoryBuffer([0.5], [1])}}},
               path)
    model = pretrained('tiny', path)
    assert unchanged(model, src.state_dict())


@pytest.fixture
def http_dir(tmp_path, monkeypatch):
    """A folder served over http on the loopback address, and torch's hub cache in tmp."""
    import functools
    import http.server
    import threading
    served = tmp_path / 'served'
    served.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    hub = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / 'hub'))
    yield served, f'http://127.0.0.1:{server.server_address[1]}'
    torch.hub.set_dir(hub)
    server.shutdown()


def test_checkpoint_over_http_is_read_as_safely_as_a_file(http_dir, tmp_path):
    served, url = http_dir
    sd = official_state_dict('tiny', seed=8)
    torch.save({'model': sd}, served / 'pvt_tiny.pth')
    assert_holds_official(pretrained('tiny', f'{url}/pvt_tiny.pth'), sd)
    marker = tmp_path / 'pwned'
    torch.save({'model': sd, 'payload': _Exploit(marker)}, served / 'evil.pth')
    failing_load('tiny', f'{url}/evil.pth', 'refuses to unpickle')
    assert not marker.exists()


def test_pretrained_argument_naming_another_network_says_where_it_came_from(tmp_path):
    path = tmp_path / 'resnet50.pth'
    torch.save({'state_dict': {'conv1.weight': torch.zeros(64, 3, 7, 7),
                               'layer1.0.conv1.weight': torch.zeros(64, 64, 1, 1)}}, path)
    model = PVT('tiny', pretrained=str(path))
    with pytest.raises(CheckpointError, match='no PVT weights recognised') as info:
        model.init_weights()
    assert f'PVT got it as pretrained={str(path)!r}' in str(info.value)
    assert 'model = dict(pretrained=None' in str(info.value)
    with pytest.raises(ValueError, match='beside init_cfg'):
        PVT('tiny', pretrained=str(path), init_cfg=dict(type='Pretrained', checkpoint='x.pth'))
