"""The flags train.py and test.py share, applied to a config, and the Runner built from it.

The flags mean what they mean in mmdet's and mmseg's tools: ``--data-root``,
``--cfg-options``, ``--launcher``, ``--local-rank``; ``--work-dir`` defaults to
``./work_dirs/<config name>`` as there.
"""
from __future__ import annotations

import os
import os.path as osp
from typing import Any


def add_common_args(parser: Any) -> None:
    """Adds the flags train.py and test.py share to an argparse parser."""
    from mmengine.config import DictAction
    parser.add_argument('--data-root', help='override data_root of every dataset in the config')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings in the config, key=value (a.b.c=v)')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def default_work_dir(config_path: str) -> str:
    return osp.join('./work_dirs', osp.splitext(osp.basename(config_path))[0])


def prepare_config(args: Any, splits: list[str]) -> tuple[Any, str]:
    """Config with --cfg-options, --data-root and the work dir applied, its datasets checked.

    Returns:
        The config and its task (:func:`pvt_mm.config.task_of`).
    """
    from pvt_mm.config import load_config
    from pvt_mm.datacheck import check_datasets, set_data_root
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    cfg, task = load_config(args.config, args.cfg_options)
    if args.data_root:
        set_data_root(cfg, args.data_root)
    check_datasets(cfg, splits)
    cfg.work_dir = args.work_dir or cfg.get('work_dir') or default_work_dir(args.config)
    return cfg, task


def build_runner(cfg: Any) -> Any:
    """The Runner (or the config's ``runner_type``), as mmdet's and mmseg's tools build it."""
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner
    if 'runner_type' not in cfg:
        return Runner.from_cfg(cfg)
    return RUNNERS.build(cfg)
