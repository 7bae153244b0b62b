"""Checks that the dataset files a config names exist, before they are needed.

:func:`check_datasets` runs on the config, before any model is built: a missing data root,
annotation file or image folder stops the tools with a :class:`DatasetNotFoundError` that
names the path and shows the layout to put there. :func:`check_data_files` runs on built
datasets (through :class:`pvt_mm.run.hooks.DataFilesHook`, before the first iteration): an
annotation that names a missing or empty image stops the run there, not hours in.
"""
from __future__ import annotations

import os
import os.path as osp
from collections.abc import Iterable, Iterator
from typing import Any

COCO_LAYOUT = """COCO layout expected (data_root, e.g. data/coco/):
  annotations/instances_train2017.json
  annotations/instances_val2017.json
  train2017/*.jpg
  val2017/*.jpg"""
ADE_LAYOUT = """ADE20K layout expected (data_root, e.g. data/ade/ADEChallengeData2016/):
  images/training/*.jpg        annotations/training/*.png
  images/validation/*.jpg      annotations/validation/*.png"""
IMAGENET_LAYOUT = """ImageNet folder layout expected (data_root, e.g. data/imagenet/):
  train/<class>/*.JPEG          val/<class>/*.JPEG
  (or mmpretrain's meta/train.txt and meta/val.txt lists beside flat folders)"""
HOW_TO_POINT = ("Put the data there (a symlink is fine), run `python tools/data/make_toy_data.py` "
                "for the bundled toy set, or pass --data-root DIR (or --cfg-options "
                "train_dataloader.dataset.data_root=DIR ...) to the tools.")


class DatasetNotFoundError(FileNotFoundError):
    """A dataset path named by the config or by an annotation does not exist."""


def _layout_for(dataset_type: str) -> str:
    kind = dataset_type.lower()
    if 'coco' in kind:
        return COCO_LAYOUT
    if 'imagenet' in kind or kind.endswith('customdataset'):
        return IMAGENET_LAYOUT
    return ADE_LAYOUT


def iter_datasets(cfg: Any, splits: Iterable[str]) -> Iterator[tuple[str, dict]]:
    """Yields (split, dataset cfg) for each leaf dataset of the given dataloaders."""
    for split in splits:
        loader = cfg.get(f'{split}_dataloader')
        if not loader or 'dataset' not in loader:
            continue
        stack = [loader['dataset']]
        while stack:
            ds = stack.pop()
            if 'datasets' in ds:  # ConcatDataset
                stack.extend(ds['datasets'])
            elif 'dataset' in ds:  # RepeatDataset, ClassBalancedDataset, MultiImageMixDataset
                stack.append(ds['dataset'])
            else:
                yield split, ds


def dataset_paths(ds: dict) -> list[tuple[str, str]]:
    """(what, path) pairs that a dataset cfg needs on disk, resolved against data_root."""
    root = ds.get('data_root') or ''
    paths = [('data_root', root)] if root else []
    ann = ds.get('ann_file')
    if ann:
        paths.append(('ann_file', ann if osp.isabs(ann) else osp.join(root, ann)))
    prefix = ds.get('data_prefix') or {}
    if isinstance(prefix, str):  # mmpretrain: one folder
        prefix = {'': prefix}
    for key, sub in prefix.items():
        if sub and isinstance(sub, str):
            what = f'data_prefix.{key}' if key else 'data_prefix'
            paths.append((what, sub if osp.isabs(sub) else osp.join(root, sub)))
    split = ds.get('split')  # mmpretrain's ImageNet: data_root/<split>/ when no data_prefix
    if isinstance(split, str) and split and not prefix and root:
        paths.append(('split folder', osp.join(root, split)))
    return paths


def _evaluators(cfg: Any, split: str) -> list[dict]:
    evaluator = cfg.get(f'{split}_evaluator')
    return evaluator if isinstance(evaluator, list) else [evaluator] if evaluator else []


def check_datasets(cfg: Any, splits: Iterable[str] = ('train', 'val', 'test')) -> None:
    """Raises :class:`DatasetNotFoundError` for the first missing dataset path of ``splits``
    (data roots, annotation files, image folders, and evaluators' annotation files)."""
    for split, ds in iter_datasets(cfg, splits):
        for what, path in dataset_paths(ds):
            if not osp.exists(path):
                raise DatasetNotFoundError(
                    f'{split} dataset ({ds.get("type", "?")}): {what} {path!r} does not exist.\n'
                    f'{_layout_for(str(ds.get("type", "")))}\n{HOW_TO_POINT}')
    for split in splits:
        for ev in _evaluators(cfg, split):
            ann = ev.get('ann_file')
            if ann and not osp.exists(ann):
                raise DatasetNotFoundError(
                    f'{split}_evaluator ({ev.get("type", "?")}): ann_file {ann!r} does not '
                    f'exist.\n{HOW_TO_POINT}')


PATH_KEYS = ('img_path', 'seg_map_path')  # the files mmdet's and mmseg's data infos name


def iter_leaf_datasets(dataset: Any) -> Iterator[Any]:
    """Yields the leaf datasets of a built dataset, looking through mmengine's wrappers."""
    stack = [dataset]
    while stack:
        ds = stack.pop()
        if hasattr(ds, 'datasets'):  # ConcatDataset
            stack.extend(ds.datasets)
        elif hasattr(ds, 'dataset'):  # RepeatDataset, ClassBalancedDataset, MultiImageMixDataset
            stack.append(ds.dataset)
        else:
            yield ds


def check_data_files(dataset: Any, split: str, show: int = 5) -> int:
    """Checks that every image and label map the dataset's annotations name is a non-empty file.

    Returns:
        The number of files checked.

    Raises:
        DatasetNotFoundError: naming the annotation file and the first ``show`` bad paths.
    """
    checked, bad = 0, []
    for ds in iter_leaf_datasets(dataset):
        if not hasattr(ds, 'get_data_info'):
            continue
        for i in range(len(ds)):
            info = ds.get_data_info(i)
            for key in PATH_KEYS:
                path = info.get(key)
                if not isinstance(path, str) or '://' in path:
                    continue
                checked += 1
                try:
                    empty = os.stat(path).st_size == 0
                except FileNotFoundError:
                    bad.append(f'{path} (missing)')
                    continue
                if empty:
                    bad.append(f'{path} (empty file)')
        if bad:
            source = getattr(ds, 'ann_file', '') or getattr(ds, 'data_root', '?')
            lines = '\n'.join(f'  {b}' for b in bad[:show])
            more = f'\n  ... and {len(bad) - show} more' if len(bad) > show else ''
            raise DatasetNotFoundError(
                f'{split} dataset ({type(ds).__name__}, {source}): {len(bad)} of the files its '
                f'annotations name are missing or empty:\n{lines}{more}\nFix the annotation '
                'file, or point data_root / data_prefix at the folder that holds these files.')
    return checked


def set_data_root(cfg: Any, data_root: str, splits: Iterable[str] = ('train', 'val', 'test')) -> None:
    """Points every leaf dataset of ``splits`` (and evaluators' ann_file) at ``data_root``."""
    old_roots = set()
    for _, ds in iter_datasets(cfg, splits):
        if ds.get('data_root'):
            old_roots.add(ds['data_root'])
        ds['data_root'] = data_root
    for split in splits:
        for ev in _evaluators(cfg, split):
            ann = ev.get('ann_file')
            if ann:
                for old in old_roots:
                    if ann.startswith(old):
                        ev['ann_file'] = osp.join(data_root, ann[len(old):].lstrip('/'))
