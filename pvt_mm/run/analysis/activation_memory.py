"""The bytes autograd holds for backward: what a training step keeps alive between its
forward and its backward, on any device.

The count is a property of the graph, not of the allocator: each tensor autograd saves is
seen through ``torch.autograd.graph.saved_tensors_hooks`` and its storage counted once
(views and repeated saves of one storage are one allocation). Parameters' own storages are
left out, as they are held whatever happens; everything else saved counts, including the
low-precision weight copies autocast makes and backward reads. Not seen: what
``torch.utils.checkpoint`` keeps (its own hooks take the place of these inside a checkpointed
region), so count with ``with_cp`` off.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any

import torch
from torch import nn


class SavedTensorBytes:
    """Context manager counting the bytes of the storages autograd saves inside it.

    Args:
        model: its parameters' storages are not counted.
        sections: ``{name: module}``; what is saved while a module's forward runs is booked
            to its name (the innermost running section wins), the rest to ``'other'``.

    After the block: :attr:`total` and :attr:`by_section` (bytes).
    """

    def __init__(self, model: nn.Module, sections: dict[str, nn.Module] | None = None) -> None:
        self.params = {p.untyped_storage().data_ptr() for p in model.parameters()}
        self.sections = sections or {}
        self.by_section: dict[str, int] = defaultdict(int)
        self._seen: set[tuple[int, str]] = set()
        self._stack = ['other']
        self._handles: list[Any] = []

    def _pack(self, t: torch.Tensor) -> torch.Tensor:
        if t.layout == torch.strided:
            storage = t.untyped_storage()
            key = (storage.data_ptr(), str(t.device))
            if key[0] and key[0] not in self.params and key not in self._seen:
                self._seen.add(key)
                self.by_section[self._stack[-1]] += storage.nbytes()
        return t

    def _enter_section(self, name: str) -> Any:
        def hook(module: nn.Module, args: Any) -> None:
            self._stack.append(name)
        return hook

    def _leave_section(self, module: nn.Module, args: Any, output: Any) -> None:
        self._stack.pop()  # a hook that returned something would replace the output

    def __enter__(self) -> SavedTensorBytes:
        for name, module in self.sections.items():
            self._handles.append(module.register_forward_pre_hook(self._enter_section(name)))
            self._handles.append(module.register_forward_hook(self._leave_section))
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, lambda t: t)
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._hooks.__exit__(*exc)
        for h in self._handles:
            h.remove()
        self._handles.clear()

    @property
    def total(self) -> int:
        return sum(self.by_section.values())
