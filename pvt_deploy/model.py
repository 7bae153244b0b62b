"""An end-to-end graph from ``export_onnx.py --end2end``, run by onnxruntime or OpenVINO.

:class:`Model` reads what the exporter wrote into the file (task, resize steps, class
names, output names), makes the image into the graph's input (the test resize, RGB, float
0-255, (1, 3, h, w)), runs the graph and maps its outputs back to the original image:
boxes divided by the resize's scale (mmdet's ``rescale=True``), a label map resized to the
image with nearest-neighbour sampling, class probabilities as they are.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from .image import Resized, apply_steps, read

META_KEY = 'pvt_mm.end2end'
RUNTIMES = ('onnxruntime', 'openvino')


def read_metadata(path: str) -> dict:
    """The end-to-end metadata of an ONNX file (onnxruntime reads it; torch is not needed).

    Raises:
        ValueError: the file is not an end-to-end graph from ``export_onnx.py --end2end``.
    """
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    meta = ort.InferenceSession(path, options, providers=['CPUExecutionProvider']) \
        .get_modelmeta().custom_metadata_map
    if META_KEY not in meta:
        part = meta.get('pvt_mm.part')
        what = f"pvt_mm's {part} part (exported without --end2end)" if part else \
            'no pvt_mm metadata'
        raise ValueError(f'{path} holds {what}: export it with tools/deployment/'
                         'export_onnx.py --end2end for this runner.')
    return json.loads(meta[META_KEY])


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
    steps: list = field(default_factory=list)

    def to_json(self, classes: list[str]) -> dict:
        out: dict[str, Any] = dict(task=self.task, image_shape=list(self.image_shape),
                                   input_shape=list(self.input_shape))
        if self.task == 'det':
            out.update(bboxes=self.boxes.tolist(), scores=self.scores.tolist(),
                       labels=self.labels.tolist(),
                       classes=[_name(classes, i) for i in self.labels])
        elif self.task == 'cls':
            out.update(probabilities=self.probabilities.tolist(),
                       label=int(self.probabilities.argmax()))
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
        if runtime not in RUNTIMES:
            raise ValueError(f'runtime {runtime!r}: one of {", ".join(RUNTIMES)}.')
        self.path, self.runtime = path, runtime
        self.meta = read_metadata(path)
        self.task = self.meta['task']
        self.classes = list(self.meta.get('classes') or [])
        self.outputs = list(self.meta['outputs'])
        if runtime == 'onnxruntime':
            import onnxruntime as ort
            options = ort.SessionOptions()
            if threads:
                options.intra_op_num_threads = threads
            session = ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])
            names = [o.name for o in session.get_outputs()]
            self._run = lambda x: dict(zip(names, session.run(None, {'input': x})))
        else:
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
            hint = compiled.get_property('INFERENCE_PRECISION_HINT')  # an ov.Type
            self.precision = hint.to_string() if hasattr(hint, 'to_string') else str(hint)
            request = compiled.create_infer_request()

            def run(x: np.ndarray) -> dict:
                request.infer({0: x})
                return {o.get_any_name(): request.get_tensor(o).data.copy()
                        for o in compiled.outputs}
            self._run = run

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
        elif self.task == 'seg':
            labels = out['labels']
            if labels.shape != image.shape[:2]:
                labels = cv2.resize(labels.astype(np.int32), image.shape[1::-1],
                                    interpolation=cv2.INTER_NEAREST)
            pred.labels = labels.astype(np.int64)
        else:
            pred.probabilities = out['probabilities']
        return pred


__all__ = ['Model', 'Prediction', 'read_metadata', 'RUNTIMES']
