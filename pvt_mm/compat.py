"""Fixes that make the pinned OpenMMLab stack work on current PyTorch, each with its reason.

:func:`apply` runs on ``import pvt_mm`` and is idempotent.

1. mmengine 0.10.7 reads checkpoints with ``torch.load(path, map_location=...)``. Since
   torch 2.6 that means ``weights_only=True``, which refuses the non-tensor objects that
   mmengine itself writes into a training checkpoint (the message hub's ``HistoryBuffer``
   and the numpy arrays, dtypes and scalars inside it), so ``--resume`` and testing a
   checkpoint that ``tools/train.py`` wrote both fail. The fix keeps ``weights_only=True``
   and allows exactly those types, and only while mmengine's own local-file loader runs.
   None of them can run code when unpickled: ``numpy._core.multiarray._reconstruct`` and
   ``scalar`` rebuild arrays and scalars from bytes, numpy's dtype classes are plain type
   descriptors, and HistoryBuffer is filled from its saved state.

   One name needs more care. ``HistoryBuffer.__getstate__`` pickles its statistics
   functions as ``builtins.getattr(HistoryBuffer, 'min')`` and ``__setstate__`` merges
   them into the class-wide ``_statistics_methods`` that mmengine later calls. Allowing
   the real ``getattr`` would let a hostile file fetch any reachable attribute (say
   ``getattr.__self__.eval``) and plant it there. So the pickled name
   ``builtins.getattr`` is bound to :func:`_history_buffer_method`, which returns only
   HistoryBuffer's own statistics functions and refuses everything else.

   mmengine's http(s) reader goes through ``torch.hub.load_state_dict_from_url``, whose
   ``weights_only`` still defaults to False: a downloaded file would be unpickled with no
   restriction. It is replaced by the same restricted load of the downloaded file, so a
   URL in ``init_cfg`` or ``load_from`` is read exactly as safely as a local path.

2. mmengine 0.10.7's ``is_installed`` imports and *reloads* ``pkg_resources`` on every call,
   and the setuptools that the mmcv build needs (< 82, see requirements/constraints.txt)
   warns "pkg_resources is deprecated as an API" on every load: four warnings at each
   tool start that the user can do nothing about. That one warning is filtered; mmengine
   still gets its answer from pkg_resources.

3. mmseg 1.2.2's ``SegLocalVisualizer`` draws its labels with ``cv2.rectangle`` into
   ``np.zeros_like(image)``, which keeps the image's memory layout. mmseg's own
   ``tools/misc/browse_dataset.py`` hands it a channel-strided view (a permuted tensor,
   channels reordered by indexing), and every OpenCV that runs with numpy 2 (4.10 to 5.0,
   tried here) refuses that layout: "Layout of the output array img is incompatible with
   cv::Mat". The image is made C-contiguous on the way in: same pixels, a layout OpenCV
   accepts.
"""
from __future__ import annotations

import inspect
import os
import os.path as osp
import pickle
import warnings
from typing import Any
from urllib.parse import urlparse

import torch

_APPLIED = False


def mmengine_checkpoint_globals() -> list[Any]:
    """The non-tensor types that mmengine 0.10.x writes into a training checkpoint."""
    import numpy as np
    from mmengine.logging import HistoryBuffer

    try:
        from numpy._core.multiarray import _reconstruct, scalar
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct, scalar
    dtype_classes = [type(np.dtype(t)) for t in (
        np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32,
        np.uint64, np.float16, np.float32, np.float64, np.complex64, np.complex128)]
    return [HistoryBuffer, np.ndarray, np.dtype, _reconstruct, scalar, *dtype_classes,
            (_history_buffer_method, 'builtins.getattr')]


def _history_buffer_method(owner: Any, name: str) -> Any:
    """``getattr`` as far as mmengine's checkpoints need it: HistoryBuffer's statistics only."""
    from mmengine.logging import HistoryBuffer
    allowed = {'min', 'max', 'current', 'mean'} | set(HistoryBuffer._statistics_methods)
    value = getattr(HistoryBuffer, name, None) if (
        owner is HistoryBuffer and isinstance(name, str) and name in allowed) else None
    if not inspect.isfunction(value) or value.__qualname__ != f'HistoryBuffer.{name}':
        raise pickle.UnpicklingError(
            f'refused getattr({owner!r}, {name!r}) in an mmengine checkpoint: only '
            'HistoryBuffer statistics methods are allowed.')
    return value


def _load_from_local(filename: str, map_location: Any = None) -> Any:
    """mmengine's local checkpoint reader, with weights_only=True and mmengine's own types allowed."""
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    with torch.serialization.safe_globals(mmengine_checkpoint_globals()):
        return torch.load(filename, map_location=map_location, weights_only=True)


def _load_from_http(filename: str, map_location: Any = None, model_dir: str | None = None,
                    progress: bool = True) -> Any:
    """mmengine's http(s) reader: download into torch's hub cache (rank 0 first), then
    :func:`_load_from_local`."""
    from mmengine.dist import barrier, get_dist_info
    rank, world_size = get_dist_info()
    model_dir = model_dir or osp.join(torch.hub.get_dir(), 'checkpoints')
    cached = osp.join(model_dir, osp.basename(urlparse(filename).path))

    def download() -> None:
        if not osp.isfile(cached):
            os.makedirs(model_dir, exist_ok=True)
            torch.hub.download_url_to_file(filename, cached, progress=progress)

    if rank == 0:
        download()
    if world_size > 1:  # the other ranks find rank 0's file (or, on another node, fetch it)
        barrier()
        if rank > 0:
            download()
    return _load_from_local(cached, map_location)


def _patch_mmengine_checkpoint_loading() -> None:
    from mmengine.runner.checkpoint import CheckpointLoader
    CheckpointLoader.register_scheme(prefixes='', loader=_load_from_local, force=True)
    CheckpointLoader.register_scheme(prefixes=('http://', 'https://'), loader=_load_from_http,
                                     force=True)


def _silence_pkg_resources_deprecation() -> None:
    warnings.filterwarnings('ignore', message='pkg_resources is deprecated as an API',
                            category=UserWarning)


def _contiguous_seg_visualizer_images() -> None:
    import functools

    import numpy as np
    from mmseg.visualization import SegLocalVisualizer
    add_datasample = SegLocalVisualizer.add_datasample
    if getattr(add_datasample, '_pvt_mm_contiguous', False):
        return

    @functools.wraps(add_datasample)
    def contiguous_add_datasample(self, name, image, *args, **kwargs):
        return add_datasample(self, name, np.ascontiguousarray(image), *args, **kwargs)

    contiguous_add_datasample._pvt_mm_contiguous = True
    SegLocalVisualizer.add_datasample = contiguous_add_datasample


def apply() -> None:
    """Applies every fix once."""
    global _APPLIED
    if _APPLIED:
        return
    _patch_mmengine_checkpoint_loading()
    _silence_pkg_resources_deprecation()
    _contiguous_seg_visualizer_images()
    _APPLIED = True
