"""The contract between pvt_mm's exporter (``tools/deployment/export_onnx.py``) and the
runners of what it writes: the metadata keys of an exported ONNX file and, for an
end-to-end graph, what its ``pvt_mm.end2end`` record holds and what each output means.

Both sides import this module: the exporter writes the record through :func:`end2end_record`
and the runner reads it through :func:`read_end2end`, which refuses a file whose schema
version it does not know. The module needs neither torch nor OpenMMLab.

An end-to-end graph takes a (1, 3, H, W) float32 RGB 0-255 image after the ``resize`` steps;
its outputs, per task (:data:`OUTPUTS`):

* ``det``: ``boxes`` (N, 4) x1, y1, x2, y2 in the resized image's pixels, ``scores`` (N,),
  ``labels`` (N,) int64; with a mask head also ``masks`` (N, M, M) probabilities in each
  box (the runner pastes them at the boxes, thresholded at ``constants.rcnn.mask_thr_binary``);
* ``seg``: ``labels`` (h, w) int64 at the input's size, ``logits`` (C, h, w) at the input's
  size (the runner resizes them to the original image, ``constants.align_corners``, and
  takes the arg-max, or ``constants.threshold`` on the sigmoid of a single channel);
* ``cls``: ``probabilities`` (C,).

A quantised file (``tools/deployment/quantize.py``: an OpenVINO IR, ``.xml``) carries the
same keys in its ``rt_info`` under :data:`RT_INFO` and one more, ``pvt_mm.precision``
(:func:`precision_record`): the weights' and activations' precision, the quantiser and its
calibration, and the operations kept in float. A file without it (what ``export_onnx.py``
writes) is float.

Version history: 1, the first versioned record (``schema_version``); files written before
it carry none and are refused. ``pvt_mm.precision`` is an optional key of version 1 (a
reader that does not know it runs the file as it runs a float one).
"""
from __future__ import annotations

import json
from typing import Any

VERSION = 1

# Keys of the ONNX file's metadata_props.
META_PART = 'pvt_mm.part'  # backbone | detector | detector_rpn | segmentor | classifier | end2end
META_TASK = 'pvt_mm.task'  # det | seg | cls
META_OUTPUTS = 'pvt_mm.outputs'  # json: how raw outputs group into the head's arguments
META_MODEL = 'pvt_mm.model'  # the model's type, e.g. RetinaNet
META_CLASSES = 'pvt_mm.classes'  # json: the class names the checkpoint was trained on
META_END2END = 'pvt_mm.end2end'  # json: the end-to-end record below
META_PRECISION = 'pvt_mm.precision'  # json: a quantised file's record (precision_record)
JSON_KEYS = (META_OUTPUTS, META_CLASSES, META_END2END, META_PRECISION)
RT_INFO = 'pvt_mm'  # an OpenVINO IR's rt_info section holding the metadata map
PRECISIONS = ('f32', 'int8')  # what the weights of a file can be

END2END_PART = 'end2end'
INPUT = '(1, 3, H, W) float32, RGB, 0-255, after the resize steps'
# The outputs of an end-to-end graph per task, in order; a detector may add OPTIONAL ones.
OUTPUTS = {'det': ('boxes', 'scores', 'labels'), 'seg': ('labels', 'logits'),
           'cls': ('probabilities',)}
OPTIONAL = {'det': ('masks',)}
# The test pipeline's image steps a runner repeats (pvt_deploy.image.apply_steps).
RESIZE_STEPS = ('Resize', 'ResizeEdge', 'CenterCrop')
FIELDS = ('schema_version', 'task', 'model', 'outputs', 'input', 'resize', 'preprocess',
          'constants', 'classes', 'palette')


class SchemaError(ValueError):
    """Metadata that does not follow this schema; the message says what and what to do."""


def check_outputs(task: str, outputs: list[str]) -> None:
    """Raises :class:`SchemaError` unless ``outputs`` are the task's, in order."""
    required = list(OUTPUTS.get(task, ()))
    if not required:
        raise SchemaError(f'task {task!r}: the schema knows {", ".join(OUTPUTS)}.')
    extra = list(outputs[len(required):])
    if list(outputs[:len(required)]) != required or any(e not in OPTIONAL.get(task, ()) for e in extra):
        allowed = f' then optionally {list(OPTIONAL[task])}' if OPTIONAL.get(task) else ''
        raise SchemaError(f'a {task} graph outputs {required}{allowed}; got {list(outputs)}.')


def end2end_record(*, task: str, model: str, outputs: list[str], resize: list[dict],
                   preprocess: dict, constants: dict, classes: list[str],
                   palette: list[list[int]]) -> str:
    """The ``pvt_mm.end2end`` metadata value (JSON) of an end-to-end graph."""
    check_outputs(task, outputs)
    unknown = [s.get('type') for s in resize if s.get('type') not in RESIZE_STEPS]
    if unknown:
        raise SchemaError(f'resize steps {unknown}: a runner repeats only {list(RESIZE_STEPS)}.')
    return json.dumps(dict(schema_version=VERSION, task=task, model=model, outputs=list(outputs),
                           input=INPUT, resize=resize, preprocess=preprocess,
                           constants=constants, classes=list(classes),
                           palette=[list(c) for c in palette]))


def read_end2end(metadata: dict[str, str], path: str) -> dict[str, Any]:
    """The end-to-end record of a file's metadata map, checked against this schema.

    Raises:
        SchemaError: no record (the file was exported without ``--end2end``), another
            schema version (both named), or a record that breaks the schema.
    """
    if META_END2END not in metadata:
        part = metadata.get(META_PART)
        what = f"pvt_mm's {part} part (exported without --end2end)" if part else \
            'no pvt_mm metadata'
        raise SchemaError(f'{path} holds {what}: export it with tools/deployment/'
                          'export_onnx.py --end2end for this runner.')
    try:
        record = json.loads(metadata[META_END2END])
    except json.JSONDecodeError as e:
        raise SchemaError(f'{path}: its {META_END2END} metadata is not JSON ({e}).') from None
    version = record.get('schema_version')
    if version != VERSION:
        written = f'version {version}' if version is not None else \
            'no version (a file from before the schema was versioned)'
        raise SchemaError(f'{path} was written with {META_END2END} schema {written}; this '
                          f'runner reads version {VERSION}. Export it again with this '
                          "pvt_mm's tools/deployment/export_onnx.py --end2end, or run it "
                          'with the pvt_deploy that matches its exporter.')
    missing = [f for f in FIELDS if f not in record]
    if missing:
        raise SchemaError(f'{path}: its {META_END2END} record lacks {missing}.')
    try:
        check_outputs(record['task'], record['outputs'])
    except SchemaError as e:
        raise SchemaError(f'{path}: {e}') from None
    return record


def precision_record(*, precision: str, quantizer: str, calibration: dict,
                     float_ops: list[str], ignored_nodes: int) -> str:
    """The ``pvt_mm.precision`` metadata value (JSON) of a quantised file.

    Args:
        precision: the weights' and the quantised activations' precision (one of
            :data:`PRECISIONS`).
        quantizer: what quantised it, with its version (``nncf 3.4.0``).
        calibration: where the calibration images came from (``images``: how many, ...).
        float_ops: operation types kept in float in the network part, each with the reason.
        ignored_nodes: how many nodes (the post-processing) were left in float.
    """
    if precision not in PRECISIONS:
        raise SchemaError(f'precision {precision!r}: one of {list(PRECISIONS)}.')
    return json.dumps(dict(precision=precision, quantizer=quantizer, calibration=calibration,
                           float_ops=list(float_ops), ignored_nodes=ignored_nodes))


def read_precision(metadata: dict[str, str], path: str) -> dict[str, Any]:
    """A file's precision record; ``{'precision': 'f32'}`` for a file without one (what
    ``export_onnx.py`` writes is float).

    Raises:
        SchemaError: a record that is not JSON or names an unknown precision.
    """
    if META_PRECISION not in metadata:
        return dict(precision='f32')
    try:
        record = json.loads(metadata[META_PRECISION])
    except json.JSONDecodeError as e:
        raise SchemaError(f'{path}: its {META_PRECISION} metadata is not JSON ({e}).') from None
    if record.get('precision') not in PRECISIONS:
        raise SchemaError(f'{path}: precision {record.get("precision")!r} in its '
                          f'{META_PRECISION} metadata; this runner knows {list(PRECISIONS)}.')
    return record


def parse_metadata(metadata: dict[str, str]) -> dict[str, Any]:
    """pvt_mm's keys of a metadata map, the JSON ones decoded (raw exports' post-processing
    reads them; the end-to-end record is read by :func:`read_end2end`)."""
    meta = {k: v for k, v in metadata.items() if k.startswith('pvt_mm.')}
    for key in JSON_KEYS:
        if key in meta:
            meta[key] = json.loads(meta[key])
    return meta


__all__ = ['VERSION', 'SchemaError', 'OUTPUTS', 'OPTIONAL', 'RESIZE_STEPS', 'INPUT',
           'META_PART', 'META_TASK', 'META_OUTPUTS', 'META_MODEL', 'META_CLASSES', 'META_END2END',
           'META_PRECISION', 'RT_INFO', 'PRECISIONS', 'END2END_PART', 'end2end_record',
           'read_end2end', 'precision_record', 'read_precision', 'parse_metadata',
           'check_outputs']
