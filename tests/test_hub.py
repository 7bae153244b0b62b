"""Weights named by a hub id (``hf-hub:REPO_ID[@REVISION]``) load through huggingface_hub
itself, from a hub on 127.0.0.1 (tests/local_hub.py; conftest points HF_ENDPOINT at it)
serving files that timm (``save_for_hf``) and transformers (``save_pretrained``) wrote, and an
official-layout file; then again offline from the client's cache. Each compared with the
writing library's own forward; each way an id can fail, named."""
import sys

import pytest
import torch

from conftest import (LOCAL_HUB, ROOT, assert_eps_explains, official_v2_state_dict, randomised,
                      rounding_atol, run, with_library_eps)
from pvt_mm import PVT, CheckpointError, PVTv2

timm = pytest.importorskip('timm')
transformers = pytest.importorskip('transformers')
from huggingface_hub import constants  # noqa: E402
from huggingface_hub.utils import reset_sessions  # noqa: E402

X = torch.randn(1, 3, 160, 224, generator=torch.Generator().manual_seed(0))
X224 = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(1))  # HF's v1: square
TOKEN = 'hf_pvt_mm_tests_token'


def _timm_b0(folder, seed, safe_serialization='both'):
    model = randomised(timm.create_model('pvt_v2_b0'), seed)
    timm.models.save_for_hf(model, str(folder), safe_serialization=safe_serialization)
    return model


@pytest.fixture(scope='module')
def hub(tmp_path_factory):
    """The repositories, and the models whose files they hold."""
    assert constants.ENDPOINT == LOCAL_HUB.url, 'huggingface_hub was imported before conftest'
    made = tmp_path_factory.mktemp('hub_files')
    models = {}
    models['timm'] = _timm_b0(made / 'timm', seed=0)
    LOCAL_HUB.repo('timm/pvt_v2_b0.in1k').commit_folder(str(made / 'timm'))
    models['timm_bin'] = _timm_b0(made / 'timm_bin', seed=1, safe_serialization=False)
    LOCAL_HUB.repo('pvt-mm-tests/pvt_v2_b0-bin').commit_folder(str(made / 'timm_bin'))
    models['hf_v2'] = randomised(transformers.PvtV2ForImageClassification(
        transformers.PvtV2Config(num_labels=1000)), 2)
    models['hf_v2'].save_pretrained(made / 'hf_v2')
    LOCAL_HUB.repo('OpenGVLab/pvt_v2_b0').commit_folder(str(made / 'hf_v2'))
    models['hf_v1'] = randomised(transformers.PvtForImageClassification(
        transformers.PvtConfig(num_labels=1000)), 3)
    models['hf_v1'].save_pretrained(made / 'hf_v1')
    LOCAL_HUB.repo('Zetatech/pvt-tiny-224').commit_folder(str(made / 'hf_v1'))
    official = official_v2_state_dict('b0', seed=4)
    models['official'] = official
    torch.save(official, made / 'pvt_v2_b0.pth')
    LOCAL_HUB.repo('pvt-mm-tests/official-b0').commit(
        {'README.md': b'# PVTv2-b0\n', 'pvt_v2_b0.pth': (made / 'pvt_v2_b0.pth').read_bytes()})
    LOCAL_HUB.repo('pvt-mm-tests/no-weights').commit(
        {'README.md': b'# nothing yet\n', 'config.json': b'{}'})
    LOCAL_HUB.repo('pvt-mm-tests/two-weights').commit(
        {'a.pth': (made / 'pvt_v2_b0.pth').read_bytes(),
         'b.pth': (made / 'pvt_v2_b0.pth').read_bytes()})
    revisions = LOCAL_HUB.repo('pvt-mm-tests/revisions')
    models['v1_tag'] = _timm_b0(made / 'rev1', seed=5, safe_serialization=True)
    models['first_commit'] = revisions.commit_folder(str(made / 'rev1'), tag='v1.0')
    models['main'] = _timm_b0(made / 'rev2', seed=6, safe_serialization=True)
    revisions.commit_folder(str(made / 'rev2'))
    LOCAL_HUB.repo('pvt-mm-tests/private', token=TOKEN).commit_folder(str(made / 'timm'))
    return models


@pytest.fixture
def cache(hub, tmp_path, monkeypatch):
    """A cache of the test's own (huggingface_hub reads the location at each call)."""
    monkeypatch.setattr(constants, 'HF_HUB_CACHE', str(tmp_path / 'hub_cache'))
    monkeypatch.setattr(constants, 'HF_HUB_OFFLINE', False)
    return tmp_path / 'hub_cache'


@pytest.fixture
def go_offline(cache):
    """Call to be offline as HF_HUB_OFFLINE=1 makes the client at start: the flag, and its HTTP
    sessions made anew (they carry the offline adapter); both undone after the test."""
    def offline():
        constants.HF_HUB_OFFLINE = True
        reset_sessions()
    yield offline
    constants.HF_HUB_OFFLINE = False
    reset_sessions()


def v2(source, library_eps=False, **kwargs):
    model = PVTv2('b0', init_cfg=dict(type='Pretrained', checkpoint=source), **kwargs)
    model.init_weights()
    return (with_library_eps(model) if library_eps else model).eval()


def timm_pyramid(model):
    with torch.no_grad():
        return model.forward_intermediates(X, intermediates_only=True)


def assert_pyramids_equal(ours, ref):
    for level, (o, r) in enumerate(zip(ours, ref)):
        torch.testing.assert_close(o, r, rtol=0, atol=rounding_atol(r), msg=f'F{level + 1}')


def test_timm_repository_loads_its_safetensors_strictly_and_gives_timms_features(hub, cache):
    LOCAL_HUB.requests.clear()
    model = v2('hf-hub:timm/pvt_v2_b0.in1k')
    with torch.no_grad():
        assert_pyramids_equal(model(X), timm_pyramid(hub['timm']))
    fetched = [p for m, p in LOCAL_HUB.requests if m == 'GET']
    assert fetched == ['/timm/pvt_v2_b0.in1k/resolve/main/model.safetensors']  # not the .bin
    classifier = v2('hf-hub:timm/pvt_v2_b0.in1k', num_classes=1000)
    with torch.no_grad():
        ref = hub['timm'](X)
        torch.testing.assert_close(classifier(X)[0], ref, rtol=0, atol=rounding_atol(ref))


def test_a_pytorch_model_bin_alone_is_read_with_the_safe_reader(hub, cache):
    with torch.no_grad():
        assert_pyramids_equal(v2('hf-hub:pvt-mm-tests/pvt_v2_b0-bin')(X),
                              timm_pyramid(hub['timm_bin']))


def test_transformers_repositories_give_transformers_outputs(hub, cache):
    """OpenGVLab's PVTv2 and the PVT v1 ports are transformers classifiers (config.json and
    model.safetensors); with transformers' eps the logits agree to rounding."""
    ours = v2('hf-hub:OpenGVLab/pvt_v2_b0', library_eps=True, num_classes=1000)
    v1 = with_library_eps(PVT('tiny', num_classes=1000, init_cfg=dict(
        type='Pretrained', checkpoint='hf-hub:Zetatech/pvt-tiny-224')))
    v1.init_weights()
    with torch.no_grad():
        for model, ref_model, x in ((ours, hub['hf_v2'], X), (v1.eval(), hub['hf_v1'], X224)):
            ref = ref_model(pixel_values=x).logits
            torch.testing.assert_close(model(x)[0], ref, rtol=0, atol=rounding_atol(ref))


def test_an_official_file_is_the_repositorys_one_weights_file(hub, cache):
    from official_reference import official_v2_features
    model = v2('hf-hub:pvt-mm-tests/official-b0')
    with torch.no_grad():
        assert_pyramids_equal(model(X), official_v2_features(hub['official'], X, 'b0'))


def test_revisions_pin_a_branch_a_tag_or_a_commit(hub, cache):
    with torch.no_grad():
        tagged = timm_pyramid(hub['v1_tag'])
        latest = timm_pyramid(hub['main'])
        assert_pyramids_equal(v2('hf-hub:pvt-mm-tests/revisions@v1.0')(X), tagged)
        assert_pyramids_equal(v2(f'hf-hub:pvt-mm-tests/revisions@{hub["first_commit"]}')(X),
                              tagged)
        assert_pyramids_equal(v2('hf-hub:pvt-mm-tests/revisions')(X), latest)
        assert_pyramids_equal(v2('hf-hub:pvt-mm-tests/revisions@main')(X), latest)
    with pytest.raises(CheckpointError, match=r"hf-hub:pvt-mm-tests/revisions \(revision v9\)"
                       r": the repository has no revision 'v9'"):
        v2('hf-hub:pvt-mm-tests/revisions@v9')


def test_offline_the_same_ids_load_from_the_cache_without_a_request(hub, go_offline):
    ids = ['hf-hub:timm/pvt_v2_b0.in1k', 'hf-hub:pvt-mm-tests/official-b0',
           'hf-hub:pvt-mm-tests/revisions@v1.0']
    online = [v2(i).state_dict() for i in ids]
    go_offline()
    LOCAL_HUB.requests.clear()
    for source, expected in zip(ids, online):
        loaded = v2(source).state_dict()
        assert all(torch.equal(loaded[k], expected[k]) for k in expected), source
    assert LOCAL_HUB.requests == []
    with pytest.raises(CheckpointError, match=r'hf-hub:OpenGVLab/pvt_v2_b0 \(revision main, the '
                       r'default\): HF_HUB_OFFLINE is set and the hub cache .* holds no weights'):
        v2('hf-hub:OpenGVLab/pvt_v2_b0')
    with pytest.raises(CheckpointError, match=r'revisions \(revision main, the default\): '
                       'HF_HUB_OFFLINE'):
        v2('hf-hub:pvt-mm-tests/revisions')  # v1.0 is cached, main is not


@pytest.mark.parametrize('source, message', [
    ('hf-hub:pvt-mm-tests/no-such-repo', r'pvt-mm-tests/no-such-repo \(revision main, the '
     r'default\): no such repository on http://127\.0\.0\.1:\d+, or it is private'),
    ('hf-hub:pvt-mm-tests/private', r'no such repository .* or it is private and no token'),
    ('hf-hub:pvt-mm-tests/no-weights', r'no-weights \(revision main, the default\) holds no '
     r'weights files \(model\.safetensors, pytorch_model\.bin or .*\): it has README\.md, '
     r'config\.json\.'),
    ('hf-hub:pvt-mm-tests/two-weights', r'holds 2 weights files .* it has a\.pth, b\.pth\. '
     'Download the one you mean'),
    ('hf-hub:', r'a hub id is hf-hub:REPO_ID or hf-hub:REPO_ID@REVISION'),
    ('hf-hub:pvt-mm-tests/revisions@', r'a hub id is hf-hub:REPO_ID'),
    ('hf-hub:not a/repo id', r"'not a/repo id' is not a hub repository id"),
])
def test_each_failure_names_the_id_and_the_problem(hub, cache, source, message):
    with pytest.raises(CheckpointError, match=message):
        v2(source)


def test_a_token_opens_a_private_repository(hub, cache, monkeypatch):
    monkeypatch.setenv('HF_TOKEN', TOKEN)
    with torch.no_grad():
        assert_pyramids_equal(v2('hf-hub:pvt-mm-tests/private')(X), timm_pyramid(hub['timm']))


def test_the_other_familys_repository_is_refused_naming_family_and_size(hub, cache):
    with pytest.raises(CheckpointError, match=r'hf-hub:Zetatech/pvt-tiny-224 holds PVT weights '
                       r'\(PVT-tiny.*build pvt_mm\.PVT\b'):
        v2('hf-hub:Zetatech/pvt-tiny-224')
    with pytest.raises(CheckpointError, match=r'hf-hub:timm/pvt_v2_b0\.in1k holds PVTv2 weights '
                       r'\(PVTv2-b0.*build pvt_mm\.PVTv2'):
        PVT('tiny', init_cfg=dict(type='Pretrained',
                                  checkpoint='hf-hub:timm/pvt_v2_b0.in1k')).init_weights()


def test_mmengine_reads_hub_ids_wherever_it_reads_a_checkpoint(hub, cache):
    """--cfg-options into a backbone's init_cfg, and load_from / load_checkpoint through
    mmengine's CheckpointLoader (where pvt_mm registers hf-hub:): a whole pvt_mm detector
    uploaded to the hub loads strictly."""
    from mmengine.runner.checkpoint import CheckpointLoader, load_checkpoint

    from pvt_mm.run.config import load_config
    raw = CheckpointLoader.load_checkpoint('hf-hub:timm/pvt_v2_b0.in1k')
    assert set(raw) == set(hub['timm'].state_dict())
    cfg, task = load_config(f'{ROOT}/configs/toy/retinanet_pvt_v2_b0_toy.py', {
        'model.backbone.init_cfg': dict(type='Pretrained', checkpoint='hf-hub:timm/pvt_v2_b0.in1k')})
    model = task.build_eval_model(cfg)
    model.init_weights()
    with torch.no_grad():
        assert_pyramids_equal(model.backbone(X), timm_pyramid(hub['timm']))
    path = cache.parent / 'whole.pth'
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, path)
    LOCAL_HUB.repo('pvt-mm-tests/whole-detector').commit({'pytorch_model.bin':
                                                           path.read_bytes()})
    fresh = task.build_eval_model(cfg)
    load_checkpoint(fresh, 'hf-hub:pvt-mm-tests/whole-detector', strict=True)
    assert all(torch.equal(fresh.state_dict()[k], v) for k, v in model.state_dict().items())


def test_timm_pretrained_resolves_its_cfgs_hub_id(hub, cache):
    """pvt_tiny's pretrained cfg names HF's port of the official weights; timm's own
    resolution downloads it (safetensors first) and pvt_mm's filter converts it."""
    model = timm.create_model('pvt_tiny', pretrained=True).eval()
    assert model.pretrained_cfg['hf_hub_id'] == 'Zetatech/pvt-tiny-224'
    with_library_eps(model)
    with torch.no_grad():
        ref = hub['hf_v1'](pixel_values=X224).logits
        torch.testing.assert_close(model(X224), ref, rtol=0, atol=rounding_atol(ref))
        official_eps = timm.create_model('pvt_tiny', pretrained=True).eval()
    assert_eps_explains(official_eps, lambda: (official_eps(X224),), lambda: (ref,))


@pytest.mark.slow
def test_the_converter_takes_a_hub_id_online_and_offline(hub, tmp_path):
    """The tool as a user runs it, a process of its own: HF_ENDPOINT, HF_HOME and
    HF_HUB_OFFLINE=1 are the client's environment variables, read at its start."""
    env = {'HF_HOME': str(tmp_path / 'hf_home')}
    tool = [sys.executable, 'tools/model_converters/pvt_to_pvt_mm.py']
    out = run(tool + ['hf-hub:OpenGVLab/pvt_v2_b0', str(tmp_path / 'online.pth')], env=env)
    assert 'hf-hub:OpenGVLab/pvt_v2_b0 (hf_v2 layout, PVTv2-b0)' in out, out
    offline = {**env, 'HF_HUB_OFFLINE': '1'}
    run(tool + ['hf-hub:OpenGVLab/pvt_v2_b0', str(tmp_path / 'offline.pth')], env=offline)
    a, b = (torch.load(tmp_path / f'{n}.pth') for n in ('online', 'offline'))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    failed = run(tool + ['hf-hub:timm/pvt_v2_b0.in1k', str(tmp_path / 'x.pth')], env=offline,
                 check=False)
    assert 'HF_HUB_OFFLINE is set' in failed and not (tmp_path / 'x.pth').exists()
