"""Reading a config the way pvt_mm's tools do, for the tools and for your own scripts.

* :func:`load_config`: the file, ``--cfg-options`` merged, the task it is for, that task's
  modules registered, and the model types checked (:class:`ConfigError` with suggestions).
* :func:`task_of`: which OpenMMLab package a config is for (:data:`TASKS`).
* :func:`task_registry`: that package's registry of a kind (``'MODELS'``, ``'DATASETS'``...):
  the one place that maps a task to its package.
"""
from __future__ import annotations

import difflib
import importlib
import os.path as osp
from typing import Any

# Task -> the OpenMMLab package whose registries, datasets and metrics it uses.
TASKS = {'det': 'mmdet', 'seg': 'mmseg', 'cls': 'mmpretrain'}


class ConfigError(ValueError):
    """A config names something that no registry holds."""


def task_registry(task: str, kind: str = 'MODELS') -> Any:
    """The registry ``kind`` (e.g. ``'MODELS'``, ``'DATASETS'``) of ``task``'s package."""
    return getattr(importlib.import_module(f'{TASKS[task]}.registry'), kind)


def register_task_modules(task: str) -> None:
    """Registers all of the task package's modules (datasets, transforms, metrics, models)."""
    importlib.import_module(f'{TASKS[task]}.utils').register_all_modules(
        init_default_scope=False)


def task_of(cfg: Any) -> str:
    """The task of a config: from ``default_scope``, else from where the model type is
    registered.

    Raises:
        ValueError: neither tells.
    """
    scope = cfg.get('default_scope')
    for task, pkg in TASKS.items():
        if scope == pkg:
            return task
    model_type = str(cfg.get('model', {}).get('type', ''))
    for task, pkg in TASKS.items():
        if model_type.startswith(pkg + '.'):
            return task
    for task in TASKS:  # in TASKS' order: a type that several packages know goes to the first
        register_task_modules(task)
        if task_registry(task).get(model_type) is not None:
            return task
    raise ValueError(f'Cannot tell which of {sorted(TASKS.values())} the config is for: '
                     f'default_scope is {scope!r} and model type {model_type!r} is in none of '
                     f'their registries. Set default_scope to one of {sorted(TASKS.values())} '
                     'in the config.')


def check_model_types(cfg: Any, task: str) -> None:
    """Raises :class:`ConfigError` when ``model.type`` or ``model.backbone.type`` is unknown.

    The message says what to write instead: the nearest registered names, pvt_mm's
    ``type='pvt_mm.PVT'``, and the ``custom_imports`` line a config needs outside these tools.
    """
    from mmengine.registry import DefaultScope

    from .registry import MODELS as PVT_MODELS
    task_models = task_registry(task)
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
                " A config run by mmdet's, mmseg's or mmpretrain's own tools also needs custom_imports = "
                "dict(imports=['pvt_mm'], allow_failed_imports=False).")
            raise ConfigError(
                f'{field}={name!r} is not a registered model for {TASKS[task]} (searched '
                f"{TASKS[task]}'s registry, mmengine's and pvt_mm's).{hint} pvt_mm's backbone "
                "is type='pvt_mm.PVT' with arch='tiny', 'small', 'medium' or 'large'."
                f'{imports}')


def load_config(path: str, cfg_options: dict | None = None) -> tuple[Any, str]:
    """Reads a config (importing pvt_mm first), merges ``cfg_options``, returns (cfg, task).

    The config's ``default_scope`` is set to its task's package when it has none.

    Raises:
        FileNotFoundError: no such file.
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


__all__ = ['TASKS', 'ConfigError', 'task_registry', 'register_task_modules', 'task_of',
           'check_model_types', 'load_config']
