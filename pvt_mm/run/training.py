"""Training a config's model with mmengine's Runner, as ``tools/train.py`` does."""
from __future__ import annotations

import os.path as osp
from typing import Any


def train(config: str, *, work_dir: str | None = None, amp: bool = False,
          auto_scale_lr: bool = False, resume: str | None = None, data_root: str | None = None,
          cfg_options: dict | None = None, launcher: str = 'none', local_rank: int = 0) -> Any:
    """Trains the model of ``config``; returns the Runner.

    The arguments are tools/train.py's flags: ``resume='auto'`` continues from the work
    dir's last checkpoint, a path from that checkpoint. A run stopped by an error or Ctrl-C
    logs where it stopped and what ``--resume`` would continue from
    (:mod:`pvt_mm.run.stop_report`); Ctrl-C exits with status 130.
    """
    from mmengine.logging import print_log

    from .amp import enable_amp, without_gpu_amp
    from .config import build_runner, prepare_config
    from .distributed import prepare_distributed
    from .stop_report import report_stop

    cfg, _ = prepare_config(config, ['train', 'val'], work_dir=work_dir, data_root=data_root,
                            cfg_options=cfg_options, local_rank=local_rank)
    if amp:
        print_log(enable_amp(cfg), logger='current')
    elif without_gpu_amp(cfg):
        print_log('No CUDA GPU: running this AmpOptimWrapper config in fp32 (--amp: bf16 '
                  'autocast where the CPU has native bf16).', logger='current')
    if auto_scale_lr:
        if 'auto_scale_lr' not in cfg or 'base_batch_size' not in cfg.auto_scale_lr:
            raise RuntimeError('--auto-scale-lr needs auto_scale_lr.base_batch_size in the config.')
        cfg.auto_scale_lr.enable = True
    if resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif resume is not None:
        if not osp.isfile(resume):
            raise FileNotFoundError(f'--resume: checkpoint {resume!r} does not exist.')
        cfg.resume, cfg.load_from = True, resume
    prepare_distributed(cfg, launcher)

    runner = build_runner(cfg)
    try:
        runner.train()
    except KeyboardInterrupt as err:  # Ctrl-C: say where it stopped, no traceback
        report_stop(runner, err)
        raise SystemExit(130) from None
    except Exception as err:
        report_stop(runner, err)
        raise
    return runner


__all__ = ['train']
