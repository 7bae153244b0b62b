"""Atomic file writes: a file is either its old complete self or its new complete self.

A kill, a full disk or a crash while writing leaves at most a stray ``.<name>.partial``
beside the target (replaced by the next write of that file), never a half-written target.
:class:`AtomicLocalBackend` gives mmengine's file API the same guarantee;
:class:`pvt_mm.run.hooks.AtomicCheckpointHook` saves checkpoints through it.
"""
from __future__ import annotations

import os
import os.path as osp
from pathlib import Path

from mmengine.fileio import LocalBackend, register_backend

ATOMIC_BACKEND = 'pvt_mm_atomic_local'


def atomic_write(path: str | Path, data: bytes) -> None:
    """Writes ``data`` to ``path`` through a temporary file in the same directory.

    The temporary file is flushed to disk and renamed over ``path`` (``os.replace``, atomic on
    POSIX and Windows); on any error it is removed and ``path`` is left as it was.
    """
    path = os.fspath(path)
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = osp.join(folder, f'.{osp.basename(path)}.partial')
    try:
        with open(tmp, 'wb') as f:  # open(), not mkstemp: keep the umask's permissions
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise
    if hasattr(os, 'O_DIRECTORY'):  # make the rename itself durable
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class AtomicLocalBackend(LocalBackend):
    """mmengine's local storage backend with :func:`atomic_write` for ``put``/``put_text``."""

    def put(self, obj: bytes, filepath: str | Path) -> None:
        atomic_write(filepath, obj)

    def put_text(self, obj: str, filepath: str | Path, encoding: str = 'utf-8') -> None:
        atomic_write(filepath, obj.encode(encoding))


register_backend(ATOMIC_BACKEND, AtomicLocalBackend, force=True)

__all__ = ['atomic_write', 'AtomicLocalBackend', 'ATOMIC_BACKEND']
