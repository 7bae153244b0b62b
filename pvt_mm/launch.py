"""Turns a config and the tools' command-line flags into a config ready for mmengine's Runner.

Shared by ``tools/train.py``, ``tools/test.py`` and ``tools/demo.py`` so that the three
read configs the same way: which task (mmdet or mmseg) a config is for, the flags users
know from mmdet/mmseg, and distributed start-up on machines without a GPU.
"""
from __future__ import annotations

import os
import os.path as osp
from typing import Any

import torch

TASKS = {'det': 'mmdet', 'seg': 'mmseg'}


def task_of(cfg: Any) -> str:
    """'det' or 'seg': from ``default_scope``, else from where the model type is registered."""
    scope = cfg.get('default_scope')
    for task, pkg in TASKS.items():
        if scope == pkg:
            return task
    model_type = str(cfg.get('model', {}).get('type', ''))
    for task, pkg in TASKS.items():
        if model_type.startswith(pkg + '.'):
            return task
    from mmdet.registry import MODELS as DET_MODELS
    from mmseg.registry import MODELS as SEG_MODELS
    register_task_modules('det')
    register_task_modules('seg')
    if SEG_MODELS.get(model_type) is not None and DET_MODELS.get(model_type) is None:
        return 'seg'
    if DET_MODELS.get(model_type) is not None:
        return 'det'
    raise ValueError(f'Cannot tell whether the config is for mmdet or mmseg: default_scope is '
                     f'{scope!r} and model type {model_type!r} is in neither registry. Set '
                     "default_scope = 'mmdet' or 'mmseg' in the config.")


def register_task_modules(task: str) -> None:
    """Registers all of mmdet's or mmseg's modules (datasets, transforms, metrics, models)."""
    if task == 'det':
        from mmdet.utils import register_all_modules
    else:
        from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=False)


class ConfigError(ValueError):
    """A config names something that no registry holds."""


def check_model_types(cfg: Any, task: str) -> None:
    """Raises :class:`ConfigError` when ``model.type`` or ``model.backbone.type`` is unknown.

    The message says what to write instead: the nearest registered names, pvt_mm's
    ``type='pvt_mm.PVT'``, and the ``custom_imports`` line a config needs outside these tools.
    """
    import difflib

    from mmengine.registry import DefaultScope

    from .registry import MODELS as PVT_MODELS
    task_models = _task_registry(task)
    model = cfg.get('model') or {}
    fields = [('model.type', model)]
    if isinstance(model.get('backbone'), dict):
        fields.append(('model.backbone.type', model['backbone']))
    with DefaultScope.overwrite_default_scope(TASKS[task]):
        for field, node in fields:
            name = node.get('type')
            if not isinstance(name, str) or task_models.get(name) is not None:
                continue
            known = [*task_models.module_dict, *task_models.parent.module_dict]
            by_lower = {k.lower(): k for k in known}
            for k in PVT_MODELS.module_dict:  # 'PVT' and 'pvt_mm.pvt' both point at pvt_mm.PVT
                by_lower[f'pvt_mm.{k}'.lower()] = f'pvt_mm.{k}'
                by_lower.setdefault(k.lower(), f'pvt_mm.{k}')
            near = dict.fromkeys(by_lower[k] for k in
                                 difflib.get_close_matches(name.lower(), by_lower, n=3))
            hint = f' Did you mean {", ".join(repr(k) for k in near)}?' if near else ''
            imports = '' if cfg.get('custom_imports') else (
                " A config run by mmdet's or mmseg's own tools also needs custom_imports = "
                "dict(imports=['pvt_mm'], allow_failed_imports=False).")
            raise ConfigError(
                f'{field}={name!r} is not a registered model for {TASKS[task]} (searched '
                f"{TASKS[task]}'s registry, mmengine's and pvt_mm's).{hint} pvt_mm's backbone "
                "is type='pvt_mm.PVT' with arch='tiny', 'small', 'medium' or 'large'."
                f'{imports}')


def _task_registry(task: str) -> Any:
    if task == 'det':
        from mmdet.registry import MODELS
    else:
        from mmseg.registry import MODELS
    return MODELS


def load_config(path: str, cfg_options: dict | None = None) -> tuple[Any, str]:
    """Reads a config (importing pvt_mm first), merges ``--cfg-options``, returns (cfg, task).

    Raises:
        ConfigError: the model or backbone type is not registered (:func:`check_model_types`).
    """
    import pvt_mm  # noqa: F401  (registers pvt_mm.PVT even when the config forgets custom_imports)
    from mmengine.config import Config
    if not osp.isfile(path):
        raise FileNotFoundError(f'Config file {path!r} does not exist.')
    cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    task = task_of(cfg)
    cfg.setdefault('default_scope', TASKS[task])
    register_task_modules(task)
    check_model_types(cfg, task)
    return cfg, task


def default_work_dir(config_path: str) -> str:
    return osp.join('./work_dirs', osp.splitext(osp.basename(config_path))[0])


def add_common_args(parser: Any) -> None:
    """The flags train.py and test.py share, meaning what they mean in mmdet's and mmseg's tools."""
    from mmengine.config import DictAction
    parser.add_argument('--data-root', help='override data_root of every dataset in the config')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings in the config, key=value (a.b.c=v)')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def prepare_config(args: Any, splits: list[str]) -> tuple[Any, str]:
    """Config with --cfg-options, --data-root and the work dir applied, its datasets checked."""
    from .datacheck import check_datasets, set_data_root
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    cfg, task = load_config(args.config, args.cfg_options)
    if args.data_root:
        set_data_root(cfg, args.data_root)
    check_datasets(cfg, splits)
    cfg.work_dir = args.work_dir or cfg.get('work_dir') or default_work_dir(args.config)
    return cfg, task


def enable_amp(cfg: Any) -> None:
    """Mixed precision as mmdet's ``--amp`` does it (needs a GPU with mmengine 0.10)."""
    if not torch.cuda.is_available():
        raise RuntimeError('--amp needs a CUDA GPU: mmengine 0.10 runs AmpOptimWrapper on GPUs '
                           'only. Drop --amp to train in fp32 on this machine.')
    wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
    if wrapper == 'AmpOptimWrapper':
        return
    if wrapper != 'OptimWrapper':
        raise ValueError(f'--amp only applies to OptimWrapper, this config uses {wrapper}.')
    cfg.optim_wrapper.type = 'AmpOptimWrapper'
    cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')


def without_gpu_amp(cfg: Any) -> bool:
    """On a machine without CUDA, runs an AmpOptimWrapper config in fp32; True if it did."""
    if torch.cuda.is_available() or cfg.optim_wrapper.get('type') != 'AmpOptimWrapper':
        return False
    cfg.optim_wrapper.type = 'OptimWrapper'
    cfg.optim_wrapper.pop('loss_scale', None)
    return True


def prepare_distributed(cfg: Any, launcher: str) -> None:
    """Sets the launcher; without CUDA, starts gloo and tells DDP there are no devices.

    mmengine 0.10.7's ``init_dist`` calls ``torch.cuda.set_device`` unconditionally and its
    default DDP wrapper passes ``device_ids=[LOCAL_RANK]``; both fail on a CPU machine. The
    Runner skips ``init_dist`` when a process group exists, so on CPU the group is made
    here with the gloo backend (addresses from torchrun's environment), and DDP is built
    with ``device_ids=None``. The GPU path (nccl, one device per rank) stays mmengine's.
    """
    cfg.launcher = launcher
    if launcher == 'none' or torch.cuda.is_available():
        return
    import torch.distributed as dist
    cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})['backend'] = 'gloo'
    if launcher != 'pytorch':
        raise RuntimeError(f'Launcher {launcher!r} without a GPU is not supported; use '
                           'tools/dist_train.sh (torchrun, --launcher pytorch).')
    if not dist.is_initialized():
        dist.init_process_group(backend='gloo')
    wrapper = dict(cfg.get('model_wrapper_cfg') or {})
    wrapper.setdefault('type', 'MMDistributedDataParallel')
    wrapper['device_ids'] = None
    wrapper.setdefault('broadcast_buffers', False)
    wrapper.setdefault('find_unused_parameters', cfg.get('find_unused_parameters', False))
    cfg.model_wrapper_cfg = wrapper
    os.environ.setdefault('LOCAL_RANK', '0')


def report_stop(runner: Any, err: BaseException) -> None:
    """Logs where a run stopped on an error and what the work dir still holds to resume from."""
    from .engine import AtomicCheckpointHook
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


def build_runner(cfg: Any) -> Any:
    """The Runner (or the config's ``runner_type``), as mmdet's and mmseg's tools build it."""
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner
    if 'runner_type' not in cfg:
        return Runner.from_cfg(cfg)
    return RUNNERS.build(cfg)
