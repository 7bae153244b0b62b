"""Post-training INT8 quantisation of an end-to-end graph with NNCF, for OpenVINO.

``quantize(config, onnx_file, out)`` reads what ``export_onnx.py --end2end`` wrote into
OpenVINO, calibrates NNCF's quantiser on images of the config's own dataset (its training
split by default), each through the config's test pipeline as ``tools/test.py`` feeds the
model, then as the graph takes it (RGB, float 0-255), and writes an OpenVINO IR (``.xml`` +
``.bin``) whose metadata is the ONNX file's plus the precision record of
:mod:`pvt_deploy.schema`. ``python -m pvt_deploy FILE.xml IMAGE --runtime openvino`` runs it
as it runs the float file.

What is quantised is the network part: every node from which a weighted layer (a convolution
or a matrix product with constant weights) can be reached, except through the box inputs of an
RoI extractor. The rest, the post-processing (box decoding, score thresholds, top-k, NMS,
mask and label-map resizing), is handed to NNCF as its ignored scope and stays float, as do
the operation types of :data:`FLOAT_OPS`.
"""
from __future__ import annotations

import os.path as osp
from collections.abc import Sequence
from typing import Any

import numpy as np

# Operation types kept in float inside the network part (NNCF's ignored types), each with why.
# None: NNCF's transformer model type puts its quantisers on the inputs of convolutions and
# matrix products (and the reshapes and resizes in front of them) only, so the attention's
# Softmax, LayerNorm (OpenVINO's MVN) and GELU are float already; naming any of them changed
# no pyramid level's error (docs/deployment.md, tools/analysis/int8_agreement.py).
FLOAT_OPS: dict[str, str] = {}
WEIGHTED = ('Convolution', 'GroupConvolution', 'MatMul')
# Inputs a network path does not follow: the box coordinates an RoI extractor reads.
COORDINATE_INPUTS = {'ROIAlign': (1, 2), 'ROIAlignRotated': (1, 2)}


def _is_weighted(node: Any) -> bool:
    """A convolution or a matrix product with a constant (perhaps converted) weight."""
    if node.get_type_name() not in WEIGHTED:
        return False
    weight = node.input_value(1).get_node()
    while weight.get_type_name() in ('Convert', 'Reshape', 'Transpose', 'Unsqueeze'):
        weight = weight.input_value(0).get_node()
    return weight.get_type_name() == 'Constant'


def post_processing_nodes(model: Any) -> list[str]:
    """Names of the nodes outside the network part (see the module's docstring)."""
    network: set[str] = set()
    stack = [n for n in model.get_ops() if _is_weighted(n)]
    while stack:
        node = stack.pop()
        name = node.get_friendly_name()
        if name in network:
            continue
        network.add(name)
        skip = COORDINATE_INPUTS.get(node.get_type_name(), ())
        stack.extend(node.input_value(i).get_node() for i in range(node.get_input_size())
                     if i not in skip)
    return [n.get_friendly_name() for n in model.get_ops()
            if n.get_friendly_name() not in network
            and n.get_type_name() not in ('Parameter', 'Result', 'Constant')]


def calibration_inputs(cfg: Any, task: Any, count: int, split: str = 'train') -> list[np.ndarray]:
    """The first ``count`` images of the config's ``split`` dataset (its first leaf dataset,
    for a wrapped or concatenated one) through the config's test pipeline, as the end-to-end
    graph takes them ((1, 3, h, w) float32 RGB 0-255). The training split by default, so that
    accuracy measured on the validation set is not measured on the calibration images."""
    import copy

    from ..datacheck import check_datasets, iter_datasets
    check_datasets(cfg, (split,))  # names a missing annotation file or image folder
    leaves = [ds for _, ds in iter_datasets(cfg, (split,))]
    if not leaves:
        raise ValueError(f'the config has no {split}_dataloader dataset to calibrate on.')
    ds_cfg = copy.deepcopy(leaves[0])
    ds_cfg['pipeline'] = copy.deepcopy(cfg.test_dataloader.dataset.pipeline)
    ds_cfg.pop('filter_cfg', None)  # every image, as the test split has them
    ds_cfg['test_mode'] = True
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope(task.package):  # the pipeline's transforms
        dataset = task.registry('DATASETS').build(ds_cfg)
    if len(dataset) == 0:
        raise ValueError(f'the {split} dataset of the config has no images to calibrate on.')
    inputs = []
    for i in range(min(count, len(dataset))):
        image = dataset[i]['inputs']  # (3, h, w) uint8 BGR, as mmcv read and resized it
        inputs.append(np.ascontiguousarray(image.numpy()[::-1][None], dtype=np.float32))
    return inputs


def quantize_model(onnx_file: str, inputs: Sequence[np.ndarray], *,
                   float_ops: dict[str, str] | None = None) -> tuple[Any, dict]:
    """The OpenVINO model of ``onnx_file`` quantised by NNCF on ``inputs``, and the precision
    record's fields."""
    import nncf
    import openvino as ov
    float_ops = FLOAT_OPS if float_ops is None else float_ops
    model = ov.Core().read_model(onnx_file)
    ignored = post_processing_nodes(model)
    if len(model.inputs) != 1:
        raise ValueError(f'{onnx_file}: an end-to-end graph has one input, this one has '
                         f'{len(model.inputs)}.')
    scope = nncf.IgnoredScope(names=ignored, types=list(float_ops), validate=False)
    quantized = nncf.quantize(model, nncf.Dataset(list(inputs)), subset_size=len(inputs),
                              model_type=nncf.ModelType.TRANSFORMER, ignored_scope=scope)
    fields = dict(precision='int8', quantizer=f'nncf {nncf.__version__}',
                  float_ops=[f'{op}: {why}' for op, why in float_ops.items()],
                  ignored_nodes=len(ignored))
    return quantized, fields


def _check_classes(checkpoint: str, classes: list[str], onnx_file: str) -> None:
    """Refuses a checkpoint whose class names are not the file's: not the model it holds."""
    from pvt_mm.network.weights import read_checkpoint
    content = read_checkpoint(checkpoint)
    meta = content.get('meta') if isinstance(content, dict) else None
    names = ((meta or {}).get('dataset_meta') or {}).get('classes')
    if names is not None and list(names) != list(classes):
        raise ValueError(f'{checkpoint} was trained on the classes {list(names)[:5]}..., '
                         f'{onnx_file} holds a model of {list(classes)[:5]}...: export the '
                         'checkpoint again with export_onnx.py --end2end.')


def quantize(config: str, onnx_file: str, out: str, *, checkpoint: str | None = None,
             calib_images: int = 32,
             calib_split: str = 'train', data_root: str | None = None,
             cfg_options: dict | None = None) -> dict:
    """Quantise ``onnx_file`` (``export_onnx.py --end2end`` of ``config``) to the IR ``out``;
    ``checkpoint``, when given, must hold the classes the file holds.

    Returns the precision record written into the file.

    Raises:
        pvt_deploy.schema.SchemaError: ``onnx_file`` is not an end-to-end graph.
        ValueError: ``out`` is not an ``.xml`` path, or no calibration image.
    """
    import json

    from pvt_deploy.model import file_metadata
    from pvt_deploy.schema import META_PRECISION, precision_record, read_end2end

    from ..config import load_config
    if not out.lower().endswith('.xml'):
        raise ValueError(f'--out {out!r}: the quantised file is an OpenVINO IR, name it '
                         '*.xml (its weights go beside it as .bin).')
    metadata = file_metadata(onnx_file)
    meta = read_end2end(metadata, onnx_file)  # refuses what is no end-to-end graph, first
    if checkpoint:
        _check_classes(checkpoint, meta['classes'], onnx_file)
    cfg, task = load_config(config, cfg_options)
    if data_root:
        from ..datacheck import set_data_root
        set_data_root(cfg, data_root, (calib_split, 'test'))
    inputs = calibration_inputs(cfg, task, calib_images, calib_split)
    quantized, fields = quantize_model(onnx_file, inputs)
    record = precision_record(calibration=dict(images=len(inputs), split=calib_split,
                                               pipeline='test'), **fields)
    save_ir(quantized, out, {**metadata, META_PRECISION: record})
    return json.loads(record)


def save_ir(model: Any, out: str, metadata: dict[str, str]) -> None:
    """``model`` written as an OpenVINO IR with ``metadata`` in its rt_info, where
    ``pvt_deploy`` reads it (:data:`pvt_deploy.schema.RT_INFO`)."""
    import openvino as ov

    from pvt_deploy.schema import RT_INFO
    for key, value in metadata.items():
        model.set_rt_info(value, [RT_INFO, key])
    ov.save_model(model, out, compress_to_fp16=False)
    if not osp.isfile(out):
        raise RuntimeError(f'OpenVINO wrote no {out}.')


__all__ = ['quantize', 'quantize_model', 'save_ir', 'calibration_inputs', 'post_processing_nodes',
           'FLOAT_OPS']
