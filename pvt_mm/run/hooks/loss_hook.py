"""Stop training at the first iteration whose loss is NaN or infinite."""
from __future__ import annotations

import math

import torch
from mmengine.hooks import Hook
from mmengine.runner import EpochBasedTrainLoop

from ...registry import HOOKS


def _value(x: torch.Tensor | float) -> float:
    return x.detach().item() if isinstance(x, torch.Tensor) else float(x)


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite."""


@HOOKS.register_module()
class NonFiniteLossHook(Hook):
    """Raises :class:`NonFiniteLossError` naming the iteration where the loss stopped being finite.

    Runs before the checkpoint hook in the same iteration, so no checkpoint with the
    weights of that step is written: the last checkpoint on disk holds finite weights and
    ``--resume`` continues from it (after lowering the learning rate or clipping gradients).
    mmdet's ``CheckInvalidLossHook`` does the same for mmdet only, with a bare ``assert``
    that neither names the iteration nor survives ``python -O``.

    Args:
        interval: check every ``interval`` iterations (the loss is read on the host every
            iteration anyway by mmengine's logging, so 1 costs nothing measurable).
    """

    priority = 'ABOVE_NORMAL'

    def __init__(self, interval: int = 1) -> None:
        if interval < 1:
            raise ValueError(f'NonFiniteLossHook interval must be >= 1, got {interval}.')
        self.interval = interval

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if not outputs or 'loss' not in outputs or not self.every_n_train_iters(runner,
                                                                              self.interval):
            return
        loss = _value(outputs['loss'])
        if math.isfinite(loss):
            return
        terms = ', '.join(f'{k}={_value(v):.4g}' for k, v in outputs.items()
                          if 'loss' in k and isinstance(v, (torch.Tensor, float, int)))
        where = f'iteration {runner.iter + 1}'
        if isinstance(runner.train_loop, EpochBasedTrainLoop):
            where += f' (epoch {runner.epoch + 1}, batch {batch_idx + 1})'
        last = runner.message_hub.get_info('last_ckpt')
        saved = (f'The last checkpoint, {last}, was saved before it and is unaffected.' if last
                 else 'No checkpoint had been saved yet.')
        raise NonFiniteLossError(
            f'The loss is {loss} at {where}: {terms}. The weights after this '
            f'step are not saved. {saved} Lower the learning rate, clip gradients '
            '(optim_wrapper.clip_grad=dict(max_norm=...)) or check the data, then continue '
            'with --resume.')
