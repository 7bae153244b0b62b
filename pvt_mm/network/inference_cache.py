"""A value computed from a parameter, kept for the next forward while nothing can differ.

PVT v1 resizes each stage's position embedding to the input's grid on every forward; at
inference a stream of images of one size would resize the same parameter to the same grid
again and again. :class:`InferenceCache` keeps the last result, keyed by what it was
computed for and by the parameter's identity and version counter (any in-place change, an
optimiser step or a load, moves it), and recomputes whenever autograd needs the graph
(training) or ``torch.compile`` / ``torch.export`` traces (their sizes are symbolic).
"""
from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

import torch
from torch import Tensor


class InferenceCache:
    """One cached ``compute()`` of ``param`` per ``key``, the last one only."""

    def __init__(self) -> None:
        self._entry: tuple[tuple[Any, ...], Tensor] | None = None

    def get(self, param: Tensor, key: Hashable, compute: Callable[[], Tensor]) -> Tensor:
        if torch.compiler.is_compiling() or (torch.is_grad_enabled() and param.requires_grad):
            return compute()
        full = (key, param._version, param.device, param.dtype, param.data_ptr())
        if self._entry is not None and self._entry[0] == full:
            return self._entry[1]
        out = compute()
        self._entry = (full, out)
        return out


__all__ = ['InferenceCache']
