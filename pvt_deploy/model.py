"""An end-to-end graph from ``export_onnx.py --end2end``, run by onnxruntime or OpenVINO.

:class:`Model` reads the file's record (:mod:`pvt_deploy.schema`: task, resize steps, class
names, output names), makes the image into the graph's input (the test resize, RGB, float
0-255, (1, 3, h, w)), runs the graph in a :mod:`runtime <pvt_deploy.runtimes>` and maps its
outputs back to the original image as its task's entry in :data:`pvt_deploy.tasks.TASKS`
says: boxes divided by the resize's scale (mmdet's ``rescale=True``) and masks pasted at them,
a label map made from the logits resized to the image as mmseg resizes them, class
probabilities as they are.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .image import Resized, apply_steps, read
from .postprocess import paste_masks, resize_logits, rle
from .runtimes import RUNTIMES, is_openvino_ir, open_runtime, ort_session, read_ir_metadata
from .schema import read_end2end, read_precision
from .tasks import TASKS


def file_metadata(path: str) -> dict[str, str]:
    """The metadata map of an ONNX file (onnxruntime reads it) or an OpenVINO IR (its
    rt_info); torch is not needed."""
    if is_openvino_ir(path):
        return read_ir_metadata(path)
    return dict(ort_session(path, optimise=False).get_modelmeta().custom_metadata_map)


def read_metadata(path: str) -> dict:
    """The end-to-end record of an ONNX or IR file.

    Raises:
        pvt_deploy.schema.SchemaError: not an end-to-end graph of this schema version.
    """
    return read_end2end(file_metadata(path), path)


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
        out.update(TASKS[self.task].to_json(self, classes))
        return out


class Model:
    """An end-to-end graph and its runtime.

    Args:
        path: the .onnx file, or the OpenVINO IR (.xml) ``quantize.py`` wrote (OpenVINO only).
        runtime: a name of :data:`pvt_deploy.runtimes.RUNTIMES` (``onnxruntime``,
            ``openvino``; CPU).
        threads: intra-op threads (default: the runtime's).
        precision: the runtime's inference precision (OpenVINO: ``f32``, ``bf16``; ``None``:
            its default, bf16 on CPUs with AMX).

    Raises:
        pvt_deploy.schema.SchemaError: the file is no end-to-end graph of this schema.
    """

    def __init__(self, path: str, runtime: str = 'onnxruntime', threads: int | None = None,
                 precision: str | None = 'f32') -> None:
        self.path = path
        if runtime == 'onnxruntime':  # one session reads the file and its metadata
            self.runtime = open_runtime(path, runtime, threads, precision)
            metadata = self.runtime.metadata
            self.meta = read_end2end(metadata, path)
        else:  # the record checked before the runtime compiles the graph
            metadata = file_metadata(path)
            self.meta = read_end2end(metadata, path)
            self.runtime = open_runtime(path, runtime, threads, precision)
        self.quantization = read_precision(metadata, path)
        # the weights' precision (int8 for a quantised file), then the runtime's for the rest
        self.weights = self.quantization['precision']
        self.precision = self.runtime.precision
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
        out = self.runtime.run(x)
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
        TASKS[self.task].finish(pred, out, resized, self.meta)
        return pred


__all__ = ['Model', 'Prediction', 'read_metadata', 'file_metadata', 'open_runtime', 'paste_masks',
           'rle', 'resize_logits', 'RUNTIMES']
