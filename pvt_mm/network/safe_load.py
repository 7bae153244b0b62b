"""Reading PyTorch checkpoint files without letting them run code.

``torch.load(..., weights_only=True)`` unpickles tensors and plain containers only. Training
checkpoints that mmengine writes (``epoch_12.pth``, what ``--resume`` and ``tools/test.py``
read) also hold the message hub's ``HistoryBuffer`` and the numpy arrays, dtypes and scalars
inside it; :func:`load_local` allows exactly those types besides. None of them can run code
when unpickled: ``numpy._core.multiarray._reconstruct`` and ``scalar`` rebuild arrays and
scalars from bytes, numpy's dtype classes are plain type descriptors, and HistoryBuffer is
filled from its saved state.

One name needs more care. ``HistoryBuffer.__getstate__`` pickles its statistics functions as
``builtins.getattr(HistoryBuffer, 'min')`` and ``__setstate__`` merges them into the
class-wide ``_statistics_methods`` that mmengine later calls. Allowing the real ``getattr``
would let a hostile file fetch any reachable attribute (say ``getattr.__self__.eval``) and
plant it there, so the pickled name ``builtins.getattr`` is bound to
:func:`_history_buffer_method`, which returns only HistoryBuffer's own statistics functions.

:func:`load_url` downloads into torch's hub cache (rank 0 first) and reads the file with
:func:`load_local`: a URL is read exactly as safely as a local path.
"""
from __future__ import annotations

import inspect
import os
import os.path as osp
import pickle
from typing import Any
from urllib.parse import urlparse

import torch


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


def load_local(filename: str, map_location: Any = None) -> Any:
    """``torch.load`` with ``weights_only=True`` and mmengine's own checkpoint types allowed."""
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    with torch.serialization.safe_globals(mmengine_checkpoint_globals()):
        return torch.load(filename, map_location=map_location, weights_only=True)


def load_url(filename: str, map_location: Any = None, model_dir: str | None = None,
             progress: bool = True) -> Any:
    """Downloads an http(s) checkpoint into torch's hub cache (rank 0 first, the other ranks
    after a barrier), then reads it with :func:`load_local`."""
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
    return load_local(cached, map_location)


__all__ = ['mmengine_checkpoint_globals', 'load_local', 'load_url']
