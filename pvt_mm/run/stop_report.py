"""What tools/train.py logs when training stops early: where, why, and what to resume from.

The report itself never raises: it reads only what the run already holds (a train loop
that was never built counts as 0 iterations), so the user sees the real error once.
"""
from __future__ import annotations

import os.path as osp
from typing import Any


def completed_iterations(runner: Any) -> int:
    """Iterations the train loop finished; 0 if the loop was never built.

    ``runner.iter`` would build the loop from its config, and building it may be what
    failed in the first place.
    """
    from mmengine.runner import BaseLoop
    loop = getattr(runner, '_train_loop', None)
    return loop.iter if isinstance(loop, BaseLoop) else 0


def resume_advice(runner: Any, after: str = '') -> str:
    """Which checkpoint ``--resume`` will continue from (``after`` what), and whether it is
    complete.

    That is the one the work dir's ``last_checkpoint`` file names, which is what
    ``--resume`` reads. The message hub's ``last_ckpt`` is not: mmengine's checkpoint hooks
    set it before they write the file, so a stop during a save would name a checkpoint
    that was never completed.
    """
    from .hooks import AtomicCheckpointHook
    pointer = osp.join(runner.work_dir, 'last_checkpoint')
    last = None
    if osp.isfile(pointer):
        with open(pointer) as f:
            last = f.read().strip() or None
    advice = (f'The last checkpoint is {last}; {after}continue from it with --resume.'
              if last else 'No checkpoint was saved in this run.')
    if any(isinstance(hook, AtomicCheckpointHook) for hook in runner.hooks):
        advice += f' Every checkpoint in {runner.work_dir} is complete (written atomically).'
    return advice


def report_stop(runner: Any, err: BaseException) -> None:
    """Logs where a run stopped (an error, or Ctrl-C) and what the work dir holds to resume."""
    try:
        done = completed_iterations(runner)
        if isinstance(err, KeyboardInterrupt):
            runner.logger.error(f'Training interrupted (Ctrl-C) after {done} completed '
                                f'iterations.\n{resume_advice(runner)}')
            return
        text = str(err).strip()
        lines = text.splitlines() or ['']
        # A dataloader worker's error reads "Caught X in DataLoader worker ..." and ends in
        # the cause.
        cause = lines[-1].split(': ', 1)[-1] if 'Original Traceback' in text else lines[0]
        runner.logger.error(f'Training stopped after {done} completed iterations by '
                            f'{type(err).__name__}: {cause}\n'
                            f'{resume_advice(runner, after="fix the cause and ")}')
    except Exception as report_err:  # the report must not hide the error it reports
        print(f'Training stopped by {type(err).__name__} (the stop report itself failed: '
              f'{type(report_err).__name__}: {report_err}).')
