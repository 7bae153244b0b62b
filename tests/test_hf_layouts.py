"""HF transformers' PVT v1 files (PvtForImageClassification, PvtModel) load into pvt_mm.PVT,
strictly, through init_cfg and the converter; written by transformers' own classes with
random weights, and compared with transformers' own forward."""
import pytest
import torch

from conftest import assert_eps_explains, load_tool, randomised, rounding_atol, with_library_eps
from pvt_mm import PVT, CheckpointError

transformers = pytest.importorskip('transformers')
from transformers import PvtConfig, PvtForImageClassification, PvtModel  # noqa: E402

@pytest.fixture(scope='module')
def hf_classifier(tmp_path_factory):
    folder = tmp_path_factory.mktemp('hf_pvt_tiny')
    model = randomised(PvtForImageClassification(PvtConfig()), seed=0)
    model.save_pretrained(folder)
    return model, str(folder / 'model.safetensors')


def pvt_from(path, **kwargs):
    model = PVT('tiny', init_cfg=dict(type='Pretrained', checkpoint=path), **kwargs)
    model.init_weights()
    return model.eval()


def test_hf_classifier_file_loads_and_gives_transformers_logits(hf_classifier):
    """With transformers' eps in the two norms where it differs from the official code, the
    logits agree to rounding: the mapping is exact."""
    hf, path = hf_classifier
    ours = with_library_eps(pvt_from(path, num_classes=1000))
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref = hf(pixel_values=x).logits
        out = ours(x)[0]
    torch.testing.assert_close(out, ref, rtol=0, atol=rounding_atol(ref))


def test_with_the_official_eps_the_difference_is_the_eps_difference(hf_classifier):
    """pvt_mm keeps the official 1e-5 where transformers' PvtConfig uses its 1e-6: the logits
    differ by what the eps difference explains (conftest.assert_eps_explains)."""
    hf, path = hf_classifier
    ours = pvt_from(path, num_classes=1000)
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    assert_eps_explains(ours, lambda: ours(x), lambda: (hf(pixel_values=x).logits,))


def test_hf_backbone_file_and_the_converter(hf_classifier, tmp_path):
    hf, path = hf_classifier
    backbone = randomised(PvtModel(PvtConfig()), seed=2)
    backbone.save_pretrained(tmp_path / 'backbone')
    loaded = pvt_from(str(tmp_path / 'backbone' / 'model.safetensors'))  # class token left
    stage1 = backbone.encoder.patch_embeddings[0].projection.weight
    torch.testing.assert_close(loaded.stages[0].patch_embed.proj.weight, stage1, rtol=0, atol=0)
    kv = torch.cat([backbone.encoder.block[3][1].attention.self.key.weight,
                    backbone.encoder.block[3][1].attention.self.value.weight])
    torch.testing.assert_close(loaded.stages[3].blocks[1].attn.kv.weight, kv, rtol=0, atol=0)
    converter = load_tool('tools/model_converters/pvt_to_pvt_mm.py')
    converter.main([path, str(tmp_path / 'converted.pth')])
    converted = pvt_from(str(tmp_path / 'converted.pth'), num_classes=1000)
    direct = pvt_from(path, num_classes=1000)
    for (k, a), b in zip(converted.state_dict().items(), direct.state_dict().values()):
        assert torch.equal(a, b), k


def test_an_hf_file_of_another_size_is_refused_naming_it(hf_classifier):
    _, path = hf_classifier
    with pytest.raises(CheckpointError, match=r'does not fit this PVT.*\n.*depths \(2, 2, 2, 2\)'):
        PVT('small', num_classes=1000,
            init_cfg=dict(type='Pretrained', checkpoint=path)).init_weights()
