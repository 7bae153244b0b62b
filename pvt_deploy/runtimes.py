"""The runtimes an exported ONNX file runs in on the CPU, each one class behind one
interface: opened from a path (with threads and a precision), :meth:`Runtime.run` maps the
input array to ``{output name: array}`` in the graph's order, :attr:`Runtime.metadata` is
the file's metadata map. A new runtime is one more subclass in :data:`RUNTIMES`.
"""
from __future__ import annotations

from typing import Any

import numpy as np


class Runtime:
    """An ONNX file opened for running.

    Args:
        path: the .onnx file.
        threads: intra-op threads (default: the runtime's).
        precision: the inference precision, where the runtime has a choice (``None``: its
            default).
    """

    name = ''
    precisions: tuple[str, ...] = ('f32',)

    def __init__(self, path: str, threads: int | None = None, precision: str | None = None) -> None:
        if precision is not None and precision not in self.precisions:
            raise ValueError(f'runtime {self.name}: precision {precision!r}; it runs '
                             f'{", ".join(self.precisions)}.')
        self.path = path
        self.precision = precision or self.precisions[0]

    @property
    def metadata(self) -> dict[str, str]:
        """The file's metadata_props."""
        raise NotImplementedError

    def run(self, x: np.ndarray) -> dict[str, np.ndarray]:
        raise NotImplementedError


def is_openvino_ir(path: str) -> bool:
    """An OpenVINO IR (``.xml`` beside its ``.bin``), as ``quantize.py`` writes."""
    return path.lower().endswith('.xml')


def ort_session(path: str, threads: int | None = None, optimise: bool = True,
                fuse: bool = False) -> Any:
    """onnxruntime's CPU session of ``path``; with ``fuse``, its attention run by
    onnxruntime's fused kernel (:mod:`pvt_deploy.ort_fusion`, the file is not changed)."""
    if is_openvino_ir(path):
        raise ValueError(f'{path} is an OpenVINO IR (a quantised file): run it with '
                         '--runtime openvino.')
    import onnxruntime as ort
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    if not optimise:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    source: Any = path
    if fuse:
        import onnx

        from .ort_fusion import fuse_attention
        proto, fused = fuse_attention(onnx.load(path))
        if fused:
            source = proto.SerializeToString()
    return ort.InferenceSession(source, options, providers=['CPUExecutionProvider'])


class OnnxRuntime(Runtime):
    """onnxruntime's CPU execution provider, the attention in its fused kernel
    (:mod:`pvt_deploy.ort_fusion`)."""

    name = 'onnxruntime'

    def __init__(self, path: str, threads: int | None = None, precision: str | None = None) -> None:
        super().__init__(path, threads, precision)
        self.session = ort_session(path, threads, fuse=True)
        self._names = [o.name for o in self.session.get_outputs()]

    @property
    def metadata(self) -> dict[str, str]:
        return dict(self.session.get_modelmeta().custom_metadata_map)

    def run(self, x: np.ndarray) -> dict[str, np.ndarray]:
        return dict(zip(self._names, self.session.run(None, {'input': x})))


class OpenVINORuntime(Runtime):
    """OpenVINO on the CPU; ``precision`` is its ``INFERENCE_PRECISION_HINT`` (``f32``,
    ``bf16``; ``None``: its default, bf16 on CPUs with AMX)."""

    name = 'openvino'
    precisions = ('f32', 'bf16')

    def __init__(self, path: str, threads: int | None = None, precision: str | None = None) -> None:
        super().__init__(path, threads, precision)
        try:
            import openvino as ov
        except ImportError:
            raise ImportError('runtime openvino: pip install openvino') from None
        config: dict[str, Any] = {}
        if precision:
            config['INFERENCE_PRECISION_HINT'] = precision
        if threads:
            config['INFERENCE_NUM_THREADS'] = threads
        core = ov.Core()
        self._model = core.read_model(path)
        self.compiled = core.compile_model(self._model, 'CPU', config)
        self._request = self.compiled.create_infer_request()
        hint = self.compiled.get_property('INFERENCE_PRECISION_HINT')  # an ov.Type
        self.precision = hint.to_string() if hasattr(hint, 'to_string') else str(hint)

    @property
    def metadata(self) -> dict[str, str]:
        """An IR's from its rt_info; an ONNX file's read with onnxruntime's parser when it is
        installed (OpenVINO keeps no ONNX metadata_props), else with the onnx package."""
        if is_openvino_ir(self.path):
            return ir_metadata(self._model)
        try:
            return dict(ort_session(self.path, optimise=False).get_modelmeta().custom_metadata_map)
        except ImportError:
            import onnx
            proto = onnx.load(self.path, load_external_data=False)
            return {p.key: p.value for p in proto.metadata_props}

    def run(self, x: np.ndarray) -> dict[str, np.ndarray]:
        self._request.infer({0: x})
        return {o.get_any_name(): self._request.get_tensor(o).data.copy()
                for o in self.compiled.outputs}


def ir_metadata(model: Any) -> dict[str, str]:
    """The metadata map an OpenVINO model keeps in its rt_info (``schema.RT_INFO``)."""
    from .schema import RT_INFO
    if not model.has_rt_info([RT_INFO]):
        return {}
    section = model.get_rt_info([RT_INFO]).astype(dict)
    return {k: v.astype(str) if hasattr(v, 'astype') else str(v) for k, v in section.items()}


def read_ir_metadata(path: str) -> dict[str, str]:
    """The metadata map of an IR file, read without compiling it."""
    try:
        import openvino as ov
    except ImportError:
        raise ImportError(f'{path} is an OpenVINO IR: pip install openvino') from None
    return ir_metadata(ov.Core().read_model(path))


RUNTIMES: dict[str, type[Runtime]] = {r.name: r for r in (OnnxRuntime, OpenVINORuntime)}


def open_runtime(path: str, runtime: str = 'onnxruntime', threads: int | None = None,
                 precision: str | None = None) -> Runtime:
    """``path`` opened in the runtime named ``runtime`` (one of :data:`RUNTIMES`).

    Raises:
        ValueError: an unknown runtime or precision. ImportError: the runtime is not installed.
    """
    if runtime not in RUNTIMES:
        raise ValueError(f'runtime {runtime!r}: one of {", ".join(RUNTIMES)}.')
    return RUNTIMES[runtime](path, threads, precision)


__all__ = ['Runtime', 'OnnxRuntime', 'OpenVINORuntime', 'RUNTIMES', 'open_runtime', 'ort_session',
           'is_openvino_ir', 'ir_metadata', 'read_ir_metadata']
