"""What tools/train.py logs when training stops on an error: where, why, and what to resume."""
from __future__ import annotations

from typing import Any


def report_stop(runner: Any, err: BaseException) -> None:
    """Logs where a run stopped on an error and what the work dir still holds to resume from."""
    from pvt_mm.engine import AtomicCheckpointHook
    text = str(err).strip()
    lines = text.splitlines() or ['']
    # A dataloader worker's error reads "Caught X in DataLoader worker ..." and ends in the cause.
    cause = lines[-1].split(': ', 1)[-1] if 'Original Traceback' in text else lines[0]
    last = runner.message_hub.get_info('last_ckpt')
    resume = (f'The last checkpoint is {last}; fix the cause and continue with --resume.'
              if last else 'No checkpoint was saved in this run.')
    if any(isinstance(hook, AtomicCheckpointHook) for hook in runner.hooks):
        resume += f' Every checkpoint in {runner.work_dir} is complete (written atomically).'
    runner.logger.error(f'Training stopped after {runner.iter} completed iterations by '
                        f'{type(err).__name__}: {cause}\n{resume}')
