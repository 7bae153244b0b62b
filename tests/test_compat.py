"""mmengine's own training checkpoints load with weights_only=True kept on (ENVIRONMENT trap 5)."""
import builtins

import pytest
import torch
from mmengine.logging import HistoryBuffer
from mmengine.model import BaseModel
from mmengine.runner import Runner
from mmengine.runner.checkpoint import _load_checkpoint
from torch.utils.data import Dataset

from conftest import ROOT
from pvt_mm import PVT


class Images(Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        return dict(img=torch.randn(3, 32, 32, generator=g), target=torch.rand(1, generator=g))


class PVTRegressor(BaseModel):
    """The smallest real model around the backbone: PVT-tiny features -> one number."""

    def __init__(self):
        super().__init__()
        self.backbone = PVT('tiny', drop_path_rate=0.0)
        self.head = torch.nn.Linear(512, 1)

    def forward(self, img, target, mode='tensor'):
        img = torch.stack(img) if isinstance(img, list) else img
        target = torch.stack(target) if isinstance(target, list) else target
        out = self.head(self.backbone(img)[-1].mean((2, 3)))
        if mode == 'loss':
            return dict(loss=(out - target).square().mean())
        return out


def make_runner(work_dir, max_epochs, resume=False):
    return Runner(
        model=PVTRegressor(), work_dir=str(work_dir),
        train_dataloader=dict(dataset=Images(), batch_size=2, num_workers=0,
                              sampler=dict(type='DefaultSampler', shuffle=True),
                              collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=1e-3)),
        param_scheduler=dict(type='MultiStepLR', milestones=[1], by_epoch=True),
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1),
                           logger=dict(type='LoggerHook', interval=1)),
        randomness=dict(seed=0), resume=resume, default_scope='mmengine')


def test_runner_checkpoint_round_trip_with_weights_only(tmp_path):
    first = make_runner(tmp_path, max_epochs=2)
    first.train()
    ckpt = tmp_path / 'epoch_2.pth'
    # weights_only=True is in force: a plain torch.load refuses mmengine's objects ...
    with pytest.raises(Exception, match='Weights only load failed'):
        torch.load(ckpt)
    # ... and mmengine's loader, with pvt_mm's allow-list, reads them.
    loaded = _load_checkpoint(str(ckpt), map_location='cpu')
    buffer = loaded['message_hub']['log_scalars']['train/loss']
    assert isinstance(buffer, HistoryBuffer)
    assert buffer.statistics('mean') == pytest.approx(
        first.message_hub.get_scalar('train/loss').mean())
    assert loaded['meta']['epoch'] == 2 and loaded['meta']['iter'] == 4

    resumed = make_runner(tmp_path, max_epochs=3, resume=True)
    resumed.train()
    assert resumed.iter == 6 and resumed.epoch == 3
    # The optimizer state came back: AdamW's step counter continued from the file.
    state = resumed.optim_wrapper.optimizer.state_dict()['state']
    assert max(int(s['step']) for s in state.values()) == 6
    # The scheduler state came back: the MultiStepLR milestone at epoch 1 was kept.
    assert resumed.optim_wrapper.get_lr()['lr'][0] == pytest.approx(1e-4)


class _Fetch:
    """Pickles as builtins.getattr(target, name), the shape HistoryBuffer's state uses."""

    def __init__(self, target, name):
        self.target, self.name = target, name

    def __reduce__(self):
        return (getattr, (self.target, self.name))


@pytest.mark.parametrize('target, name', [
    (HistoryBuffer, '__init__'),
    (HistoryBuffer, 'register_statistics'),
    (builtins.getattr, '__self__'),
])
def test_allow_list_refuses_other_getattr(tmp_path, target, name):
    path = tmp_path / 'hostile.pth'
    torch.save({'state_dict': {}, 'message_hub': {'x': _Fetch(target, name)}}, path)
    with pytest.raises(Exception, match='refused getattr'):
        _load_checkpoint(str(path), map_location='cpu')


def test_allow_list_is_scoped_to_mmengine_loading(tmp_path):
    path = tmp_path / 'buffer.pth'
    torch.save({'b': HistoryBuffer([1.0], [1])}, path)
    with pytest.raises(Exception, match='Weights only load failed'):
        torch.load(path, weights_only=True)
    assert _load_checkpoint(str(path))['b'].mean() == 1.0


def test_config_scopes_name_the_distribution_that_installs_the_module(monkeypatch):
    """mmengine finds an ``mmseg::`` base through the distribution MODULE2PACKAGE names; where
    that distribution is missing (the onedl fork installs the module as onedl-mmsegmentation)
    the table is pointed at the one that installs it, and an installed one is left alone."""
    from importlib.metadata import packages_distributions

    from mmengine.config import Config
    from mmengine.config.utils import MODULE2PACKAGE

    from pvt_mm.run.compat import _map_config_scopes_to_installed_distributions
    installed = packages_distributions()['mmseg'][0]
    monkeypatch.setitem(MODULE2PACKAGE, 'mmseg', 'not-installed-mmsegmentation')
    with pytest.raises(ModuleNotFoundError, match='not-installed-mmsegmentation is not installed'):
        Config.fromfile(f'{ROOT}/configs/segmentation/fpn_pvt_v2_b0_ade20k_40k.py')
    _map_config_scopes_to_installed_distributions()
    assert MODULE2PACKAGE['mmseg'] == installed
    assert MODULE2PACKAGE['mmdet'] == packages_distributions()['mmdet'][0]
    cfg = Config.fromfile(f'{ROOT}/configs/segmentation/fpn_pvt_v2_b0_ade20k_40k.py')
    assert cfg.model.backbone.arch == 'b0'
