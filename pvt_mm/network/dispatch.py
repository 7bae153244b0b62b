"""The one place that decides how a backbone's encoder blocks run.

The paper's modules (``Block``, ``SpatialReductionAttention``, the feed-forward networks)
compute the equations and nothing else. Beside them live two sets of speed paths, each
computing what the plain block computes:

* :mod:`pvt_mm.network.lean_backward` (every device, with ``lean_backward=True``): the
  feed-forward networks hold less for backward, and under autocast SRA's input is cast
  once for its two products; gradients bit-equal to autograd's chain.
* :mod:`pvt_mm.network.cpu_fast_paths` (``cpu_fast_paths=True``, CPU tensors, eager mode):
  kernels reordered for PyTorch's CPU backend; they use the lean functions as well where
  ``lean_backward`` is on.

Each backbone holds one :class:`SpeedSwitches` that its stages share (``model.cpu_fast_paths``,
``model.lean_backward`` and ``model.with_cp`` read and set it; the constructor's keywords
of the same names set it first); each stage calls :func:`block_runner` once per forward for
the function that runs its blocks. Which functions are a family's is its entry in
:data:`pvt_mm.network.families.FAMILIES` (``cpu_block``, ``lean_block``). On a GPU the
lean path runs (or the plain one with ``lean_backward=False``); under ``torch.compile`` and
``torch.export`` the CPU paths stand aside for PyTorch's own kernels.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import torch
from torch import Tensor, nn

from .families import FAMILIES


@dataclass
class SpeedSwitches:
    """One model's switches, shared by its stages and read on every forward.

    Attributes:
        family: the family's name in :data:`pvt_mm.network.families.FAMILIES` (whose
            speed paths run); empty: the plain blocks only.
        cpu_fast_paths: the CPU paths for CPU tensors in eager mode.
        lean_backward: the lean path (every device; on the CPU inside the CPU paths).
        with_cp: gradient checkpointing of every block while training.
    """
    family: str = ''
    cpu_fast_paths: bool = True
    lean_backward: bool = True
    with_cp: bool = False


def run_plain(block: nn.Module, x: Tensor, hw: tuple[int, int]) -> Tensor:
    """The block's own forward: the paper's equations."""
    return block(x, hw)


def uses_cpu_fast_paths(switches: SpeedSwitches, x: Tensor) -> bool:
    """The CPU paths run for CPU tensors in eager mode when the switch is on."""
    return switches.cpu_fast_paths and x.device.type == 'cpu' and \
        not torch.compiler.is_compiling()


def block_runner(switches: SpeedSwitches,
                 x: Tensor) -> Callable[[nn.Module, Tensor, tuple[int, int]], Tensor]:
    """``run(block, tokens, hw)`` for blocks fed ``x``: the family's CPU paths, its lean
    path or the plain forward, as the switches and ``x``'s device say."""
    paths = FAMILIES.get(switches.family)
    if paths is None:
        return run_plain
    if paths.cpu_block is not None and uses_cpu_fast_paths(switches, x):
        return partial(paths.cpu_block, lean=switches.lean_backward)
    if paths.lean_block is not None and switches.lean_backward:
        return paths.lean_block
    return run_plain


__all__ = ['SpeedSwitches', 'block_runner', 'run_plain', 'uses_cpu_fast_paths']
