"""INT8 deployment (pvt_mm.run.deployment.quantize, tools/deployment/quantize.py): what is
quantised and what stays float, the precision record of the contract, and the IR's metadata
as pvt_deploy reads it. The trained toys' accuracy beside f32 is in test_deployment.py."""
import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from pvt_deploy.model import file_metadata
from pvt_deploy.schema import (META_PRECISION, SchemaError, end2end_record, precision_record,
                               read_precision)


def _graph_with_post_processing(path):
    """input -> Conv -> features; features -> Sigmoid -> TopK (the post-processing); the
    top-k indices -> boxes for ROIAlign over the features -> MatMul (a weighted layer)."""
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), 'w')
    fc = numpy_helper.from_array(rng.standard_normal((4 * 2 * 2, 5)).astype(np.float32), 'fc')
    k = numpy_helper.from_array(np.array([2], np.int64), 'k')
    shape = numpy_helper.from_array(np.array([2, 16], np.int64), 'shape')
    idx = numpy_helper.from_array(np.zeros(2, np.int64), 'batch_idx')
    flat_shape = numpy_helper.from_array(np.array([1, -1], np.int64), 'flat_shape')
    nodes = [
        helper.make_node('Conv', ['input', 'w'], ['feat'], name='conv', pads=[1, 1, 1, 1]),
        helper.make_node('Sigmoid', ['feat'], ['prob'], name='sigmoid'),
        helper.make_node('Reshape', ['prob', 'flat_shape'], ['flat'], name='flatten'),
        helper.make_node('TopK', ['flat', 'k'], ['scores', 'top'], name='topk'),
        helper.make_node('Cast', ['top'], ['topf'], name='cast', to=TensorProto.FLOAT),
        helper.make_node('Transpose', ['topf'], ['topt'], name='transpose'),
        helper.make_node('Concat', ['topt', 'topt', 'topt', 'topt'], ['boxes'], name='boxes',
                         axis=1),
        helper.make_node('RoiAlign', ['feat', 'boxes', 'batch_idx'], ['roi'], name='roialign',
                         output_height=2, output_width=2),
        helper.make_node('Reshape', ['roi', 'shape'], ['roi_flat'], name='roi_flat'),
        helper.make_node('MatMul', ['roi_flat', 'fc'], ['logits'], name='fc'),
    ]
    graph = helper.make_graph(
        nodes, 'g', [helper.make_tensor_value_info('input', TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info('scores', TensorProto.FLOAT, [1, 2]),
         helper.make_tensor_value_info('logits', TensorProto.FLOAT, [2, 5])],
        [w, fc, k, shape, idx, flat_shape])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)], ir_version=8)
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def test_post_processing_stays_float_and_the_network_is_quantised(tmp_path):
    """The nodes that reach a weighted layer are the network; what only feeds outputs, or an
    RoI extractor's boxes, is post-processing and goes to NNCF's ignored scope."""
    import openvino as ov

    from pvt_mm.run.deployment.quantize import post_processing_nodes
    model = ov.Core().read_model(_graph_with_post_processing(str(tmp_path / 'g.onnx')))
    types = {op.get_friendly_name(): op.get_type_name() for op in model.get_ops()}
    ignored = {types[n] for n in post_processing_nodes(model)}
    assert {'Sigmoid', 'TopK'} <= ignored, ignored
    assert 'Concat' in ignored  # the RoI boxes are made from the top-k: post-processing
    for network in ('Convolution', 'ROIAlign', 'MatMul'):
        assert network not in ignored, (network, ignored)


def test_quantised_graph_keeps_what_is_ignored_in_float(tmp_path):
    """NNCF on the little graph: the convolution and the matrix product get int8
    fake-quantisers on their inputs, the TopK and its Sigmoid none."""
    from pvt_mm.run.deployment.quantize import quantize_model
    path = _graph_with_post_processing(str(tmp_path / 'g.onnx'))
    rng = np.random.default_rng(1)
    inputs = [rng.standard_normal((1, 3, 8, 8)).astype(np.float32) for _ in range(4)]
    quantized, fields = quantize_model(path, inputs)
    assert fields['precision'] == 'int8' and fields['ignored_nodes'] >= 5
    consumers = {}
    for op in quantized.get_ops():
        if op.get_type_name() == 'FakeQuantize':
            for target in op.output(0).get_target_inputs():
                consumers.setdefault(target.get_node().get_type_name(), 0)
                consumers[target.get_node().get_type_name()] += 1
    assert consumers.get('Convolution', 0) >= 1 and consumers.get('MatMul', 0) >= 1, consumers
    assert 'Sigmoid' not in consumers and 'TopK' not in consumers, consumers


def test_precision_record_is_part_of_the_contract():
    record = precision_record(precision='int8', quantizer='nncf 3.4.0',
                              calibration=dict(images=4), float_ops=[], ignored_nodes=3)
    assert read_precision({META_PRECISION: record}, 'x.xml')['precision'] == 'int8'
    assert read_precision({}, 'x.onnx') == dict(precision='f32')  # export_onnx.py's files
    with pytest.raises(SchemaError, match="precision 'int4'"):
        precision_record(precision='int4', quantizer='q', calibration={}, float_ops=[],
                         ignored_nodes=0)
    with pytest.raises(SchemaError, match='x.xml: precision .int4. in its pvt_mm.precision'):
        read_precision({META_PRECISION: json.dumps(dict(precision='int4'))}, 'x.xml')
    with pytest.raises(SchemaError, match='not JSON'):
        read_precision({META_PRECISION: '{'}, 'x.xml')


def test_ir_metadata_round_trips_through_pvt_deploy(tmp_path):
    import openvino as ov

    from pvt_mm.run.deployment.quantize import save_ir
    path = _graph_with_post_processing(str(tmp_path / 'g.onnx'))
    meta = {'pvt_mm.end2end': end2end_record(
        task='cls', model='ImageClassifier', outputs=['probabilities'], resize=[],
        preprocess={}, constants={}, classes=['a', 'b'], palette=[]),
        META_PRECISION: precision_record(precision='int8', quantizer='nncf', calibration={},
                                         float_ops=[], ignored_nodes=0)}
    save_ir(ov.Core().read_model(path), str(tmp_path / 'g.xml'), meta)
    assert file_metadata(str(tmp_path / 'g.xml')) == meta


def test_quantize_refuses_what_it_cannot_write_or_read(tmp_path):
    from pvt_mm.run.deployment.quantize import quantize
    path = _graph_with_post_processing(str(tmp_path / 'g.onnx'))
    with pytest.raises(ValueError, match=r"name it \*\.xml"):
        quantize('configs/toy/retinanet_pvt_t_toy.py', path, str(tmp_path / 'q.onnx'))
    with pytest.raises(SchemaError, match='export it with tools/deployment/export_onnx.py '
                                          '--end2end'):
        quantize('configs/toy/retinanet_pvt_t_toy.py', path, str(tmp_path / 'q.xml'))
