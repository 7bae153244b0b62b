"""Export-time forms of operations PyTorch's ONNX exporter cannot write for every input size.

Each module computes exactly what its PyTorch parent computes; only while ``torch.export``
traces (``torch.compiler.is_exporting()``) does it switch to operations that follow symbolic
sizes, so eager runs and ``torch.compile`` keep PyTorch's own kernels.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn


def _window_matrix(n: int, out: int, like: Tensor) -> Tensor:
    """(out, n): row i averages the inputs ``floor(i n / out)`` to ``ceil((i + 1) n / out)``,
    adaptive average pooling's windows along one axis."""
    i = torch.arange(out, device=like.device)
    start = torch.div(i * n, out, rounding_mode='floor')
    end = torch.div((i + 1) * n + out - 1, out, rounding_mode='floor')
    r = torch.arange(n, device=like.device)
    inside = (r[None, :] >= start[:, None]) & (r[None, :] < end[:, None])
    return inside.to(like.dtype) / (end - start).to(like.dtype)[:, None]


class AdaptiveAvgPool2d(nn.AdaptiveAvgPool2d):
    """``nn.AdaptiveAvgPool2d``, exported as two averaging matrices built from the input's
    size (rows, then columns). PyTorch's exporter writes the module as a fixed-kernel
    average pool fitted to the example's size, wrong at any size whose grid is not a
    multiple of the output (pytorch/pytorch#42653)."""

    def forward(self, x: Tensor) -> Tensor:
        if not torch.compiler.is_exporting():
            return super().forward(x)
        out_h, out_w = (self.output_size, self.output_size) if isinstance(
            self.output_size, int) else self.output_size
        rows = _window_matrix(x.shape[-2], out_h, x)
        cols = _window_matrix(x.shape[-1], out_w, x)
        return rows @ x @ cols.transpose(0, 1)


__all__ = ['AdaptiveAvgPool2d']
