"""Images read and resized as mmcv reads and resizes them in a config's test pipeline, with
OpenCV (and Pillow for steps whose backend is ``pillow``), so that an end-to-end graph sees
the pixels that ``tools/test.py`` hands the model.

The steps are the ones ``export_onnx.py --end2end`` writes into the file's metadata:
``Resize`` (mmcv / mmdet / mmseg: ``scale`` (w, h), ``keep_ratio``), ``ResizeEdge`` and
``CenterCrop`` (mmpretrain).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

CV2_INTERPOLATION = {'nearest': cv2.INTER_NEAREST, 'bilinear': cv2.INTER_LINEAR,
                     'bicubic': cv2.INTER_CUBIC, 'area': cv2.INTER_AREA,
                     'lanczos': cv2.INTER_LANCZOS4}
PILLOW_INTERPOLATION = ('nearest', 'bilinear', 'bicubic', 'box', 'lanczos', 'hamming')


def read(path: str) -> np.ndarray:
    """The image at ``path`` as (H, W, 3) uint8 BGR, as mmcv's ``LoadImageFromFile`` reads it.

    Raises:
        FileNotFoundError: no such file. ValueError: OpenCV cannot decode it.
    """
    data = np.fromfile(path, np.uint8)  # FileNotFoundError names the path
    img = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError(f'{path}: OpenCV cannot decode this file as an image.')
    return img


def resize(img: np.ndarray, size: tuple[int, int], interpolation: str = 'bilinear',
           backend: str = 'cv2') -> np.ndarray:
    """``img`` resized to ``size`` (w, h), as ``mmcv.imresize``."""
    if backend == 'pillow':
        try:
            from PIL import Image
        except ImportError:
            raise ImportError('the test pipeline resizes with Pillow (backend="pillow"): '
                              'pip install Pillow') from None
        if interpolation not in PILLOW_INTERPOLATION:
            raise ValueError(f'interpolation {interpolation!r} has no Pillow filter.')
        codes = {n: getattr(Image.Resampling, n.upper()) for n in PILLOW_INTERPOLATION}
        return np.array(Image.fromarray(img).resize(tuple(size), codes[interpolation]))
    if backend != 'cv2':
        raise ValueError(f'resize backend {backend!r}: the runner knows cv2 and pillow.')
    if interpolation not in CV2_INTERPOLATION:
        raise ValueError(f'interpolation {interpolation!r} has no OpenCV flag.')
    return cv2.resize(img, tuple(size), interpolation=CV2_INTERPOLATION[interpolation])


def rescaled_size(w: int, h: int, scale: tuple[int, int]) -> tuple[int, int]:
    """mmcv's ``rescale_size``: the largest (w, h) of the image's aspect that fits the long
    edge in ``max(scale)`` and the short in ``min(scale)``, rounded half up."""
    factor = min(max(scale) / max(h, w), min(scale) / min(h, w))
    return int(w * factor + 0.5), int(h * factor + 0.5)


@dataclass
class Resized:
    """An image after the test resize, and how to map results back to the original."""
    image: np.ndarray  # (h, w, 3) uint8 BGR, what the graph takes (as RGB)
    original_shape: tuple[int, int]  # (H, W)
    scale: tuple[float, float] = (1.0, 1.0)  # (w_scale, h_scale), mmdet's scale_factor
    steps: list = field(default_factory=list)  # what was done, in words


def apply_steps(img: np.ndarray, steps: list[dict]) -> Resized:
    """``img`` through the exported test pipeline's image steps.

    Raises:
        ValueError: a step this runner does not know.
    """
    out = Resized(img, img.shape[:2])
    sx, sy = 1.0, 1.0
    for step in steps:
        kind = step['type']
        h, w = img.shape[:2]
        how = dict(interpolation=step.get('interpolation', 'bilinear'),
                   backend=step.get('backend', 'cv2'))
        if kind == 'Resize':
            size = rescaled_size(w, h, step['scale']) if step['keep_ratio'] \
                else tuple(step['scale'])
            img = resize(img, size, **how)
        elif kind == 'ResizeEdge':  # mmpretrain: one edge to ``scale``, the other by ratio
            s = step['scale']
            edge = step['edge']
            if (edge == 'short' and w < h) or (edge == 'long' and w > h) or edge == 'width':
                size = (s, int(s * h / w))
            else:
                size = (int(s * w / h), s)
            img = resize(img, size, **how)
        elif kind == 'CenterCrop':  # mmpretrain: the centred crop_size (w, h)
            cw, ch = step['crop_size']
            if cw > w or ch > h:
                raise ValueError(f'CenterCrop of {cw}x{ch} from a {w}x{h} image: the test '
                                 'pipeline would pad, which the runner does not.')
            y = max(0, int(round((h - ch) / 2.0)))
            x = max(0, int(round((w - cw) / 2.0)))
            img = img[y:y + ch, x:x + cw]
            out.steps.append(f'centre crop {cw}x{ch}')
            continue
        else:
            raise ValueError(f'test pipeline step {kind!r}: the runner knows Resize, '
                             'ResizeEdge and CenterCrop.')
        nh, nw = img.shape[:2]
        sx, sy = sx * nw / w, sy * nh / h
        out.steps.append(f'{kind} {w}x{h} -> {nw}x{nh}')
    out.image, out.scale = img, (sx, sy)
    return out


__all__ = ['read', 'resize', 'rescaled_size', 'apply_steps', 'Resized']
