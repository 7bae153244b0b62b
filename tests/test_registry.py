"""Building the backbone from config files through mmdet's and mmseg's registries, as users do."""
import json
import subprocess
import sys
import textwrap

import pytest


BUILD = textwrap.dedent('''
    import json, sys
    import torch
    from mmengine.config import Config
    from {pkg}.registry import MODELS
    {init}
    cfg = Config.fromfile(sys.argv[1])
    model = MODELS.build(cfg.model)
    backbone = getattr(model, 'backbone', model)
    if len(sys.argv) > 2:
        model.init_weights()
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        shapes = [list(o.shape) for o in backbone(x)]
    print(json.dumps(dict(cls=type(backbone).__module__ + '.' + type(backbone).__name__,
                          model=type(model).__name__, shapes=shapes)))
''')


def run_build(tmp_path, pkg, config_text, *extra, first='', check=True):
    """Builds the config's model in a fresh process as mmdet's or mmseg's tools would (the
    config read before anything of pvt_mm is imported, unless ``first`` imports it)."""
    cfg = tmp_path / 'cfg.py'
    cfg.write_text(textwrap.dedent(config_text))
    init = ('from mmdet.utils import register_all_modules; register_all_modules()' if pkg == 'mmdet'
            else 'from mmseg.utils import register_all_modules; register_all_modules()')
    proc = subprocess.run([sys.executable, '-c', first + BUILD.format(pkg=pkg, init=init),
                           str(cfg), *extra], capture_output=True, text=True, cwd=tmp_path,
                          timeout=300)
    if not check:
        return proc
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def onedl_line() -> bool:
    """VBTI's fork installs mmseg as onedl-mmsegmentation, which its mmengine's scope table
    does not name (docs/troubleshooting.md)."""
    from importlib.metadata import packages_distributions
    return packages_distributions().get('mmseg') == ['onedl-mmsegmentation']


@pytest.mark.slow
@pytest.mark.parametrize('pkg', ['mmdet', 'mmseg'])
def test_backbone_from_config_file(tmp_path, pkg):
    out = run_build(tmp_path, pkg, '''
        custom_imports = dict(imports=['pvt_mm'], allow_failed_imports=False)
        model = dict(type='pvt_mm.PVT', arch='tiny', out_indices=(0, 1, 2, 3))
    ''')
    assert out['cls'] == 'pvt_mm.network.pvt.PVT'
    assert out['shapes'] == [[1, 64, 16, 24], [1, 128, 8, 12], [1, 320, 4, 6], [1, 512, 2, 3]]


def test_retinanet_with_pvt_backbone_through_mmdet(tmp_path):
    out = run_build(tmp_path, 'mmdet', '''
        _base_ = ['mmdet::_base_/models/retinanet_r50_fpn.py']
        custom_imports = dict(imports=['pvt_mm'], allow_failed_imports=False)
        model = dict(
            backbone=dict(_delete_=True, type='pvt_mm.PVT', arch='tiny'),
            neck=dict(in_channels=[64, 128, 320, 512]))
    ''')
    assert out['model'] == 'RetinaNet' and out['cls'] == 'pvt_mm.network.pvt.PVT'


SEMANTIC_FPN_WITH_PVT = '''
    _base_ = ['mmseg::_base_/models/fpn_r50.py']
    custom_imports = dict(imports=['pvt_mm'], allow_failed_imports=False)
    model = dict(
        data_preprocessor=dict(size=(64, 96)),
        backbone=dict(_delete_=True, type='pvt_mm.PVT', arch='tiny'),
        neck=dict(in_channels=[64, 128, 320, 512]))
    norm_cfg = dict(type='BN', requires_grad=True)
'''


def test_semantic_fpn_with_pvt_backbone_through_mmseg(tmp_path):
    """On OpenMMLab's own line the config reads as mmseg's tools read it. On the onedl fork
    an mmseg:: base resolves only once pvt_mm is imported (its scope-table fix); read first,
    it fails as the fork's mmengine fails it."""
    first = ''
    if onedl_line():
        proc = run_build(tmp_path, 'mmseg', SEMANTIC_FPN_WITH_PVT, check=False)
        assert 'mmsegmentation is not installed' in proc.stderr, proc.stderr[-2000:]
        first = 'import pvt_mm\n'
    out = run_build(tmp_path, 'mmseg', SEMANTIC_FPN_WITH_PVT, first=first)
    assert out['model'] == 'EncoderDecoder' and out['cls'] == 'pvt_mm.network.pvt.PVT'


def test_no_clash_with_mmdets_own_pvt():
    import pvt_mm  # noqa: F401
    from mmdet.models.backbones.pvt import PyramidVisionTransformer
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules()
    assert MODELS.get('PyramidVisionTransformer') is PyramidVisionTransformer
    assert MODELS.get('pvt_mm.PVT') is pvt_mm.PVT
    assert pvt_mm.MODELS.scope == 'pvt_mm'


UPERNET_WITH_PVT = '''
    _base_ = ['mmseg::upernet/upernet_r50_4xb4-80k_ade20k-512x512.py']
    custom_imports = dict(imports=['pvt_mm'], allow_failed_imports=False)
    model = dict(
        {pretrained}
        data_preprocessor=dict(size=(64, 96)),
        backbone=dict(_delete_=True, type='pvt_mm.PVT', arch='tiny'),
        decode_head=dict(in_channels=[64, 128, 320, 512]),
        auxiliary_head=dict(in_channels=320))
'''


@pytest.mark.slow
def test_an_mmseg_base_for_another_backbone_says_what_to_write(tmp_path):
    """upernet_r50's base sets model.pretrained to ResNet weights, which mmseg hands to the
    backbone: loading them fails, naming the value, where it came from and the line to write
    (building alone, as for testing a whole checkpoint, does not read it)."""
    cfg = tmp_path / 'cfg.py'
    cfg.write_text(textwrap.dedent(UPERNET_WITH_PVT.format(pretrained='')))
    init = 'from mmseg.utils import register_all_modules; register_all_modules()'
    proc = subprocess.run([sys.executable, '-c', BUILD.format(pkg='mmseg', init=init), str(cfg),
                           'init_weights'], capture_output=True, text=True, cwd=tmp_path,
                          timeout=300)
    assert proc.returncode != 0
    err = proc.stderr
    assert "Unsupported checkpoint location 'open-mmlab://resnet50_v1c'" in err, err[-3000:]
    assert "PVT got it as pretrained='open-mmlab://resnet50_v1c'" in err
    assert "EncoderDecoder hands model.pretrained to the backbone" in err
    assert 'model = dict(pretrained=None' in err and '--cfg-options model.pretrained=None' in err
    out = run_build(tmp_path, 'mmseg', UPERNET_WITH_PVT.format(pretrained='pretrained=None,'),
                    'init_weights')
    assert out['model'] == 'EncoderDecoder' and out['cls'] == 'pvt_mm.network.pvt.PVT'
