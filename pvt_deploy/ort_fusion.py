"""onnxruntime's fused attention for the attention the exporter writes in standard ONNX.

torch's exporter writes PVT's attention as standard operators: ``MatMul(Q * c, K^T * c)``,
``Softmax``, ``MatMul(., V)`` (``c`` the square root of the scale), which every runtime reads
but onnxruntime runs as three kernels with the (queries x keys) score matrix in memory.
onnxruntime's own ``com.microsoft.MultiHeadAttention`` computes the same in one kernel, about
1.9x faster on the CPU at PVT-S's first stage (67200 queries, 1050 keys). The file stays
standard (OpenVINO reads it as written); :func:`fuse_attention` rewrites it in memory when
onnxruntime opens it (:class:`pvt_deploy.runtimes.OnnxRuntime`), each attention whose head
count and head size the graph states, and leaves any other untouched.
"""
from __future__ import annotations

from typing import Any

import numpy as np


def _scalar(value: str, constants: dict[str, np.ndarray]) -> float | None:
    array = constants.get(value)
    return float(array.reshape(())) if array is not None and array.size == 1 else None


def _static_dims(value: str, shapes: dict[str, list]) -> list | None:
    dims = shapes.get(value)
    return dims if dims is not None and len(dims) == 4 else None


def fuse_attention(proto: Any) -> tuple[Any, int]:
    """``proto`` with each ``Softmax((Q c1) @ (K^T c2) c3) @ V`` (4-D, heads second; each
    scalar scale optional) written as one ``com.microsoft.MultiHeadAttention``; returns the
    model and how many were fused."""
    import onnx
    from onnx import helper, numpy_helper
    graph = proto.graph
    inferred = onnx.shape_inference.infer_shapes(proto)
    shapes = {}
    for v in [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]:
        t = v.type.tensor_type
        if t.HasField('shape'):
            shapes[v.name] = [d.dim_value if d.HasField('dim_value') else None
                              for d in t.shape.dim]
    constants = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for n in graph.node:
        if n.op_type == 'Constant' and n.attribute and n.attribute[0].name == 'value':
            constants[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)
    producer = {o: n for n in graph.node for o in n.output}
    consumers: dict[str, list] = {}
    for n in graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    replace: dict[int, list] = {}  # id of the final MatMul -> nodes written in its place
    drop: set[int] = set()

    def peel(value: str) -> tuple[str, float, Any]:
        """(what ``value`` scales, the scalar, the Mul node) when it is a product with a
        scalar constant, else (value, 1, None)."""
        node = producer.get(value)
        if node is not None and node.op_type == 'Mul':
            for i in (0, 1):
                c = _scalar(node.input[1 - i], constants)
                if c is not None:
                    return node.input[i], c, node
        return value, 1.0, None

    for softmax in [n for n in graph.node if n.op_type == 'Softmax']:
        users = consumers.get(softmax.output[0], [])
        axis = next((helper.get_attribute_value(a) for a in softmax.attribute
                     if a.name == 'axis'), -1)
        if axis not in (-1, 3) or len(users) != 1 or users[0].op_type != 'MatMul' \
                or users[0].input[0] != softmax.output[0]:
            continue
        # Softmax((Q c1) @ (K^T c2) c3) @ V: the exporter's SDPA form scales Q and K^T, the
        # explicit form the product.
        value, c3, outer = peel(softmax.input[0])
        scores = producer.get(value)
        if scores is None or scores.op_type != 'MatMul' \
                or len(consumers.get(scores.output[0], [])) != 1 \
                or (outer is not None and len(consumers.get(outer.output[0], [])) != 1):
            continue
        q4, cq, qs = peel(scores.input[0])
        kt4, ck, ks = peel(scores.input[1])
        v4, out4 = users[0].input[1], users[0].output[0]
        dims = _static_dims(q4, shapes)
        if dims is None or dims[1] is None or dims[3] is None:
            continue
        heads, size = dims[1], dims[3]
        tag = softmax.name or softmax.output[0]
        flat = f'{tag}_flat_shape'
        split = f'{tag}_head_shape'
        graph.initializer.extend([numpy_helper.from_array(np.array([0, 0, -1], np.int64), flat),
                                  numpy_helper.from_array(np.array([0, 0, heads, size],
                                                                   np.int64), split)])
        nodes = [
            helper.make_node('Transpose', [q4], [f'{tag}_q_t'], perm=[0, 2, 1, 3]),
            helper.make_node('Reshape', [f'{tag}_q_t', flat], [f'{tag}_q']),
            helper.make_node('Transpose', [kt4], [f'{tag}_k_t'], perm=[0, 3, 1, 2]),
            helper.make_node('Reshape', [f'{tag}_k_t', flat], [f'{tag}_k']),
            helper.make_node('Transpose', [v4], [f'{tag}_v_t'], perm=[0, 2, 1, 3]),
            helper.make_node('Reshape', [f'{tag}_v_t', flat], [f'{tag}_v']),
            helper.make_node('MultiHeadAttention', [f'{tag}_q', f'{tag}_k', f'{tag}_v'],
                             [f'{tag}_attn'], domain='com.microsoft', num_heads=heads,
                             scale=cq * ck * c3, name=f'{tag}_mha'),
            helper.make_node('Reshape', [f'{tag}_attn', split], [f'{tag}_attn_heads']),
            helper.make_node('Transpose', [f'{tag}_attn_heads'], [out4], perm=[0, 2, 1, 3]),
        ]
        replace[id(users[0])] = nodes
        drop.update({id(softmax), id(scores)} | ({id(outer)} if outer is not None else set()))
        for mul in (qs, ks):  # the scaling products, when nothing else reads them
            if mul is not None and len(consumers.get(mul.output[0], [])) == 1:
                drop.add(id(mul))
    if not replace:
        return proto, 0
    kept = []
    for n in graph.node:
        if id(n) in replace:
            kept.extend(replace[id(n)])
        elif id(n) not in drop:
            kept.append(n)
    del graph.node[:]
    graph.node.extend(kept)
    read = {i for n in graph.node for i in n.input} | {o.name for o in graph.output}
    unused = [i for i in graph.initializer if i.name not in read]  # the dropped scales
    for i in unused:
        graph.initializer.remove(i)
    if not any(o.domain == 'com.microsoft' for o in proto.opset_import):
        proto.opset_import.append(helper.make_opsetid('com.microsoft', 1))
    return proto, len(replace)


__all__ = ['fuse_attention']
