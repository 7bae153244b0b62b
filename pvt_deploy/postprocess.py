"""The runner's NumPy post-processing, each step as the upstream code does it in torch:
logits resized as mmseg resizes them, masks pasted as mmdet pastes them on a CPU, masks
written as COCO's run-length encoding."""
from __future__ import annotations

import numpy as np


def _source(n_in: int, n_out: int, align_corners: bool) -> tuple[np.ndarray, ...]:
    """PyTorch's bilinear source indices and weights along one axis (upsample_bilinear2d)."""
    d = np.arange(n_out, dtype=np.float32)
    if align_corners:
        src = d * np.float32((n_in - 1) / (n_out - 1) if n_out > 1 else 0)
    else:
        src = np.maximum((d + 0.5) * np.float32(n_in / n_out) - 0.5, 0)
    i0 = np.minimum(src.astype(int), n_in - 1)
    return i0, np.minimum(i0 + 1, n_in - 1), (src - i0).astype(np.float32)


def resize_logits(logits: np.ndarray, shape: tuple[int, int], align_corners: bool) -> np.ndarray:
    """(C, h, w) logits resized to ``shape`` (H, W) bilinearly as mmseg's ``resize``
    (``F.interpolate``, no anti-aliasing) resizes them to the original image."""
    y0, y1, ly = _source(logits.shape[1], shape[0], align_corners)
    x0, x1, lx = _source(logits.shape[2], shape[1], align_corners)
    rows = logits[:, y0] * (1 - ly)[None, :, None] + logits[:, y1] * ly[None, :, None]
    return rows[:, :, x0] * (1 - lx) + rows[:, :, x1] * lx


def rle(mask: np.ndarray) -> dict:
    """A boolean mask as COCO's uncompressed run-length encoding (column-major runs, zeros
    first), which ``pycocotools.mask.frPyObjects`` reads."""
    flat = mask.reshape(-1, order='F').astype(np.int8)
    edges = np.flatnonzero(np.diff(flat)) + 1
    runs = np.diff(np.concatenate([[0], edges, [flat.size]]))
    counts = ([0] if flat.size and flat[0] else []) + runs.tolist()
    return dict(size=list(mask.shape), counts=counts)


def paste_masks(masks: np.ndarray, boxes: np.ndarray, shape: tuple[int, int],
                threshold: float) -> np.ndarray:
    """(N, M, M) mask probabilities pasted at their boxes into (N, H, W) booleans, as mmdet's
    ``FCNMaskHead`` pastes on a CPU (``_do_paste_mask`` with ``skip_empty``): each image
    pixel's centre mapped into the box, sampled bilinearly from the M x M map with zeros
    outside it (``grid_sample``, ``align_corners=False``), then ``>= threshold``; only the
    box's pixels and a one-pixel margin are sampled."""
    h, w = shape
    out = np.zeros((len(masks), h, w), bool)
    m = masks.shape[-1]
    for i, (mask, (x0, y0, x1, y1)) in enumerate(zip(masks.astype(np.float32), boxes)):
        xa, ya = max(int(np.floor(x0)) - 1, 0), max(int(np.floor(y0)) - 1, 0)
        xb, yb = min(int(np.ceil(x1)) + 1, w), min(int(np.ceil(y1)) + 1, h)
        if xb <= xa or yb <= ya:
            continue
        with np.errstate(divide='ignore', invalid='ignore'):
            gx = (np.arange(xa, xb, dtype=np.float32) + 0.5 - x0) / (x1 - x0) * 2 - 1
            gy = (np.arange(ya, yb, dtype=np.float32) + 0.5 - y0) / (y1 - y0) * 2 - 1
        gx[~np.isfinite(gx)], gy[~np.isfinite(gy)] = 0, 0  # a box of no width: mmdet's 0
        u, v = ((gx + 1) * m - 1) / 2, ((gy + 1) * m - 1) / 2  # into the map's pixels
        u0, v0 = np.floor(u).astype(int), np.floor(v).astype(int)
        fu, fv = u - u0, v - v0
        padded = np.pad(mask, 1)  # zeros outside the map
        value = 0.0
        for dv, wv in ((0, 1 - fv), (1, fv)):
            rows = np.clip(v0 + dv + 1, 0, m + 1)
            for du, wu in ((0, 1 - fu), (1, fu)):
                cols = np.clip(u0 + du + 1, 0, m + 1)
                value = value + wv[:, None] * wu[None, :] * padded[rows[:, None], cols[None, :]]
        out[i, ya:yb, xa:xb] = value >= threshold
    return out


__all__ = ['resize_logits', 'paste_masks', 'rle']
