"""Reading a config the way pvt_mm's tools do, for the tools and for your own scripts.

* :func:`load_config`: the file, ``--cfg-options`` merged, the task it is for (an entry of
  :data:`pvt_mm.run.tasks.TASKS`), that task's modules registered, and the model types
  checked (:class:`ConfigError` with suggestions).
* :func:`prepare_config`: the same, plus what train.py and test.py apply to every config
  (``--data-root``, the work dir) and a check that the datasets it names exist.
"""
from __future__ import annotations

import difflib
import os
import os.path as osp
from typing import Any

from .tasks import Task, task_of


class ConfigError(ValueError):
    """A config names something that no registry holds."""


def check_model_types(cfg: Any, task: Task) -> None:
    """Raises :class:`ConfigError` when ``model.type`` or ``model.backbone.type`` is unknown.

    The message says what to write instead: the nearest registered names, pvt_mm's
    ``type='pvt_mm.PVT'``, and the ``custom_imports`` line a config needs outside these tools.
    """
    from mmengine.registry import DefaultScope

    from ..registry import MODELS as PVT_MODELS
    task_models = task.registry()
    model = cfg.get('model') or {}
    fields = [('model.type', model)]
    if isinstance(model.get('backbone'), dict):
        fields.append(('model.backbone.type', model['backbone']))
    with DefaultScope.overwrite_default_scope(task.package):
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
                " A config run by mmdet's, mmseg's or mmpretrain's own tools also needs custom_imports = "
                "dict(imports=['pvt_mm'], allow_failed_imports=False).")
            raise ConfigError(
                f'{field}={name!r} is not a registered model for {task.package} (searched '
                f"{task.package}'s registry, mmengine's and pvt_mm's).{hint} pvt_mm's backbones "
                f'are {_backbone_types()}.{imports}')


def _backbone_types() -> str:
    """The families' registry types and size names, as a config writes them."""
    from ..network.families import FAMILIES
    return ', and '.join(f"type='pvt_mm.{f.name}' with arch=" + ', '.join(
        repr(a) for a in f.archs) for f in FAMILIES.values())


def check_normalization(cfg: Any) -> None:
    """Raises :class:`ConfigError` when the data preprocessor's ``mean`` or ``std`` would make
    the network's input non-finite (a zero, negative or non-finite std, a non-finite mean).

    Images are read as 8-bit pixels, so the preprocessor's constants are the one source of
    NaN or infinite network inputs in a run; they are checked here, on the host, once, and
    not in the backbone's forward, where reading the values would stall a GPU every step.
    """
    import math
    pre = (cfg.get('model') or {}).get('data_preprocessor') or {}
    for key in ('mean', 'std'):
        values = pre.get(key)
        if values is None:
            continue
        values = list(values) if isinstance(values, (list, tuple)) else [values]
        bad = [v for v in values if not isinstance(v, (int, float)) or not math.isfinite(v)
               or (key == 'std' and v <= 0)]
        if bad:
            raise ConfigError(f'model.data_preprocessor.{key}={values}: {bad} would make the '
                              'network input non-finite; the std must be positive and both '
                              'finite.')


def load_config(path: str, cfg_options: dict | None = None) -> tuple[Any, Task]:
    """Reads a config (importing pvt_mm first), merges ``cfg_options``, returns (cfg, task).

    The config's ``default_scope`` is set to its task's package when it has none.

    Raises:
        FileNotFoundError: no such file.
        ConfigError: the model or backbone type is not registered (:func:`check_model_types`),
            or the normalization would make the input non-finite (:func:`check_normalization`).
    """
    import pvt_mm  # noqa: F401  (registers pvt_mm.PVT even when the config forgets custom_imports)
    from mmengine.config import Config
    if not osp.isfile(path):
        raise FileNotFoundError(f'Config file {path!r} does not exist.')
    cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    task = task_of(cfg)
    cfg.setdefault('default_scope', task.package)
    task.register_modules()
    check_model_types(cfg, task)
    check_normalization(cfg)
    return cfg, task


def default_work_dir(config_path: str) -> str:
    """``./work_dirs/<config name>``, as mmdet's and mmseg's tools default it."""
    return osp.join('./work_dirs', osp.splitext(osp.basename(config_path))[0])


def prepare_config(config: str, splits: list[str], *, work_dir: str | None = None,
                   data_root: str | None = None, cfg_options: dict | None = None,
                   local_rank: int = 0) -> tuple[Any, Task]:
    """:func:`load_config`, then ``data_root`` and the work dir applied and the datasets of
    ``splits`` checked (:func:`pvt_mm.run.datacheck.check_datasets`).

    Returns:
        The config and its task.
    """
    from .datacheck import check_datasets, set_data_root
    os.environ.setdefault('LOCAL_RANK', str(local_rank))
    cfg, task = load_config(config, cfg_options)
    if data_root:
        set_data_root(cfg, data_root)
    check_datasets(cfg, splits)
    cfg.work_dir = work_dir or cfg.get('work_dir') or default_work_dir(config)
    return cfg, task


def build_runner(cfg: Any) -> Any:
    """The Runner (or the config's ``runner_type``), as mmdet's and mmseg's tools build it."""
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner
    if 'runner_type' not in cfg:
        return Runner.from_cfg(cfg)
    return RUNNERS.build(cfg)


__all__ = ['ConfigError', 'check_model_types', 'check_normalization', 'load_config', 'default_work_dir',
           'prepare_config', 'build_runner']
