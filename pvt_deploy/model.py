"""An end-to-end graph from ``export_onnx.py --end2end``, run by onnxruntime or OpenVINO.

:class:`Model` reads what the exporter wrote into the file (task, resize steps, class
names, output names), makes the image into the graph's input (the test resize, RGB, float
0-255, (1, 3, h, w)), runs the graph and maps its outputs back to the original image:
boxes divided by the resize's scale (mmdet's ``rescale=True``) and masks pasted at them in
the image (:func:`paste_masks`), a label map made from the logits resized to the image as
mmseg resizes them (:func:`resize_logits`), class probabilities as they are.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .image import Resized, apply_steps, read

META_KEY = 'pvt_mm.end2end'
RUNTIMES = ('onnxruntime', 'openvino')


def _end2end_metadata(meta: dict, path: str) -> dict:
    if META_KEY not in meta:
        part = meta.get('pvt_mm.part')
        what = f"pvt_mm's {part} part (exported without --end2end)" if part else \
            'no pvt_mm metadata'
        raise ValueError(f'{path} holds {what}: export it with tools/deployment/'
                         'export_onnx.py --end2end for this runner.')
    return json.loads(meta[META_KEY])


def _ort_session(path: str, threads: int | None = None, optimise: bool = True) -> Any:
    import onnxruntime as ort
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    if not optimise:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])


def read_metadata(path: str) -> dict:
    """The end-to-end metadata of an ONNX file (onnxruntime reads it; torch is not needed).

    Raises:
        ValueError: the file is not an end-to-end graph from ``export_onnx.py --end2end``.
    """
    meta = _ort_session(path, optimise=False).get_modelmeta().custom_metadata_map
    return _end2end_metadata(meta, path)


def open_runtime(path: str, runtime: str = 'onnxruntime', threads: int | None = None,
                 precision: str | None = 'f32') -> tuple[Callable[[np.ndarray], dict], Any]:
    """An ONNX file made ready to run on the CPU: ``(run, handle)``, where ``run(x)`` maps the
    input array to ``{output name: array}`` in the graph's output order, and ``handle`` is the
    onnxruntime session or OpenVINO's compiled model.

    Args:
        runtime: ``onnxruntime`` or ``openvino``.
        threads: intra-op threads (default: the runtime's).
        precision: OpenVINO's ``INFERENCE_PRECISION_HINT`` (``f32``, ``bf16``; ``None``: its
            default, bf16 on CPUs with AMX).
    """
    if runtime not in RUNTIMES:
        raise ValueError(f'runtime {runtime!r}: one of {", ".join(RUNTIMES)}.')
    if runtime == 'onnxruntime':
        session = _ort_session(path, threads)
        names = [o.name for o in session.get_outputs()]
        return (lambda x: dict(zip(names, session.run(None, {'input': x})))), session
    try:
        import openvino as ov
    except ImportError:
        raise ImportError('runtime openvino: pip install openvino') from None
    config = {}
    if precision:
        config['INFERENCE_PRECISION_HINT'] = precision
    if threads:
        config['INFERENCE_NUM_THREADS'] = threads
    compiled = ov.Core().compile_model(path, 'CPU', config)
    request = compiled.create_infer_request()

    def run(x: np.ndarray) -> dict:
        request.infer({0: x})
        return {o.get_any_name(): request.get_tensor(o).data.copy() for o in compiled.outputs}
    return run, compiled


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


@dataclass
class Prediction:
    """One image's prediction, in the original image's pixels."""
    task: str  # det | seg | cls
    image_shape: tuple[int, int]  # the original (H, W)
    input_shape: tuple[int, int]  # what the graph took (h, w)
    seconds: float  # the graph's run time
    boxes: np.ndarray | None = None  # det: (N, 4) x1, y1, x2, y2
    scores: np.ndarray | None = None  # det: (N,)
    labels: np.ndarray | None = None  # det: (N,); seg: (H, W) label map
    probabilities: np.ndarray | None = None  # cls: (C,)
    masks: np.ndarray | None = None  # det with a mask head: (N, H, W) bool
    steps: list = field(default_factory=list)

    def to_json(self, classes: list[str]) -> dict:
        out: dict[str, Any] = dict(task=self.task, image_shape=list(self.image_shape),
                                   input_shape=list(self.input_shape))
        if self.task == 'det':
            out.update(bboxes=self.boxes.tolist(), scores=self.scores.tolist(),
                       labels=self.labels.tolist(),
                       classes=[_name(classes, i) for i in self.labels])
            if self.masks is not None:
                out['masks'] = [rle(m) for m in self.masks]
        elif self.task == 'cls':
            out.update(probabilities=self.probabilities.tolist(),
                       label=int(self.probabilities.argmax()))
        return out


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


def _name(classes: list[str], i: int) -> str:
    return classes[int(i)] if int(i) < len(classes) else str(int(i))


class Model:
    """An end-to-end graph and its runtime.

    Args:
        path: the .onnx file.
        runtime: ``onnxruntime`` or ``openvino`` (CPU).
        threads: intra-op threads (default: the runtime's).
        precision: OpenVINO's ``INFERENCE_PRECISION_HINT`` (``f32``, ``bf16``; ``None``: its
            default, bf16 on CPUs with AMX).
    """

    def __init__(self, path: str, runtime: str = 'onnxruntime', threads: int | None = None,
                 precision: str | None = 'f32') -> None:
        self.path, self.runtime = path, runtime
        if runtime == 'onnxruntime':  # one session reads the file and its metadata
            self._run, handle = open_runtime(path, runtime, threads)
            self.meta = _end2end_metadata(handle.get_modelmeta().custom_metadata_map, path)
        else:  # the metadata checked before OpenVINO compiles the graph
            self.meta = read_metadata(path)
            self._run, handle = open_runtime(path, runtime, threads, precision)
            hint = handle.get_property('INFERENCE_PRECISION_HINT')  # an ov.Type
            self.precision = hint.to_string() if hasattr(hint, 'to_string') else str(hint)
        self.task = self.meta['task']
        self.classes = list(self.meta.get('classes') or [])
        self.outputs = list(self.meta['outputs'])

    def graph_input(self, image: np.ndarray) -> tuple[np.ndarray, Resized]:
        """A BGR uint8 image as the graph's input, after the test resize."""
        resized = apply_steps(image, self.meta['resize'])
        rgb = resized.image[:, :, ::-1].transpose(2, 0, 1)
        return np.ascontiguousarray(rgb[None], dtype=np.float32), resized

    def run_graph(self, x: np.ndarray) -> tuple[dict, float]:
        start = time.perf_counter()
        out = self._run(x)
        return out, time.perf_counter() - start

    def predict(self, image: np.ndarray | str) -> Prediction:
        """The prediction for an image (a path, or (H, W, 3) uint8 BGR as OpenCV reads it)."""
        if isinstance(image, str):
            image = read(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f'expected an (H, W, 3) uint8 BGR image, got {image.dtype} '
                             f'{image.shape}.')
        x, resized = self.graph_input(image)
        out, seconds = self.run_graph(x)
        pred = Prediction(self.task, image.shape[:2], x.shape[2:], seconds, steps=resized.steps)
        if self.task == 'det':
            sx, sy = resized.scale
            pred.boxes = out['boxes'] / np.array([sx, sy, sx, sy], np.float32)
            pred.scores, pred.labels = out['scores'], out['labels']
            if 'masks' in out:  # pasted at the boxes in the original image, as mmdet does
                threshold = self.meta['constants']['rcnn'].get('mask_thr_binary', 0.5)
                pred.masks = paste_masks(out['masks'], pred.boxes, image.shape[:2], threshold)
        elif self.task == 'seg':
            labels = out['labels']
            if labels.shape != image.shape[:2]:  # mmseg: the logits resized, then arg-max
                logits = resize_logits(out['logits'], image.shape[:2],
                                       self.meta['constants']['align_corners'])
                labels = logits.argmax(0) if len(logits) > 1 else \
                    1 / (1 + np.exp(-logits[0])) > self.meta['constants']['threshold']
            pred.labels = labels.astype(np.int64)
        else:
            pred.probabilities = out['probabilities']
        return pred


__all__ = ['Model', 'Prediction', 'read_metadata', 'open_runtime', 'paste_masks', 'rle', 'RUNTIMES']
