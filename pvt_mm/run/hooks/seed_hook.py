"""Per-step seeding, so a resumed run draws the same random numbers as an uninterrupted one."""
from __future__ import annotations

import random

import numpy as np
import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook

from ...registry import HOOKS


@HOOKS.register_module()
class StepSeedHook(Hook):
    """Reseeds ``random``, numpy and torch (CPU and CUDA) from the run's seed and the position.

    mmengine seeds once, when the Runner starts, and does not save random states in its
    checkpoints, so after ``--resume`` drop path, dropout, RoI sampling and in-process data
    augmentation draw different numbers than the uninterrupted run did. This hook seeds
    before every training epoch and iteration from ``(runner.seed, epoch)`` and
    ``(runner.seed, iteration)``, which makes the numbers a function of the position
    alone: with ``randomness=dict(seed=..., deterministic=True)`` a resumed run ends with
    the same weights as an uninterrupted one.

    Exact for an epoch-based loop resumed at an epoch's checkpoint, and for an
    iteration-based loop whose data comes from dataloader workers; in both the workers must
    not be persistent (mmengine seeds each new worker from the seed and its index, while
    persistent workers carry a random state across epochs that no checkpoint holds). The
    rank joins the seed only with ``randomness.diff_rank_seed=True``, as in mmengine.
    """

    priority = 'VERY_HIGH'

    def before_train(self, runner) -> None:
        randomness = runner.cfg.get('randomness') or {}
        self.rank = get_rank() if randomness.get('diff_rank_seed', False) else 0

    def before_train_epoch(self, runner) -> None:
        self._seed(runner, 0, runner.epoch)

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        self._seed(runner, 1, runner.iter)

    def _seed(self, runner, kind: int, position: int) -> None:
        state = np.random.SeedSequence([runner.seed, self.rank, kind, position]).generate_state(2)
        random.seed(int(state[0]))
        np.random.seed(int(state[0]))
        torch.manual_seed(int(state[0]) << 32 | int(state[1]))
