"""How far an INT8 backbone's pyramid is from the float one, per level, as
``tools/analysis/int8_agreement.py`` measures it: the backbone exported with ``--dynamic``,
quantised by NNCF as ``quantize.py`` quantises (calibrated on one folder's images), once as it
is and once per operation type kept in float, each run by OpenVINO beside the float graph on
other images; the relative error of level i is ||F_i(int8) - F_i(f32)|| / ||F_i(f32)||.
"""
from __future__ import annotations

import os.path as osp
import tempfile
from collections.abc import Sequence
from typing import Any

# OpenVINO's names of the types people keep in float: the attention's softmax, LayerNorm
# (OpenVINO's MVN), GELU.
CANDIDATES = ('Softmax', 'MVN', 'Gelu')


def _images(folder: str, shape: Sequence[int], preprocess: Any) -> list[Any]:
    from .runtimes import calibration_images
    return [preprocess(image).numpy() for image in calibration_images(folder, shape, 64)]


def pyramid_agreement(config: str, *, calib_dir: str, eval_dir: str,
                      shape: Sequence[int] = (800, 1344), calib_images: int = 16,
                      eval_images: int = 4, candidates: Sequence[str] = CANDIDATES,
                      cfg_options: dict | None = None) -> dict:
    """{variant: [relative error per level]}: ``int8`` (nothing kept in float) and
    ``int8, TYPE float`` for each of ``candidates``."""
    import numpy as np
    import openvino as ov
    import torch

    from ..config import load_config
    from ..deployment.export import export_onnx, exportable_part
    from ..deployment.quantize import quantize_model
    from ..deployment.rules import export_rules
    cfg, task = load_config(config, cfg_options)
    model = task.build_eval_model(cfg)
    e2e, _, _ = export_rules(task).end2end(model, cfg)
    with torch.no_grad():
        calib = _images(calib_dir, shape, e2e.image_input)[:calib_images]
        evals = _images(eval_dir, shape, e2e.image_input)[:eval_images]
    example = torch.from_numpy(calib[0])
    module, _, names, _ = exportable_part(model, task, example=example, backbone_only=True)
    path = osp.join(tempfile.mkdtemp(prefix='pvt_mm_int8_'), 'backbone.onnx')
    export_onnx(module, example, path, output_names=names, dynamic=True)
    core = ov.Core()
    ref_model = core.compile_model(core.read_model(path), 'CPU',
                                   {'INFERENCE_PRECISION_HINT': 'f32'})
    refs = [[np.asarray(o) for o in ref_model(x).values()] for x in evals]
    record: dict[str, Any] = dict(config=config, shape=list(shape), calib_images=len(calib),
                                  eval_images=len(evals), variants={})
    for keep in [None, *candidates]:
        quantized, _ = quantize_model(path, calib, float_ops={keep: 'measured'} if keep else {})
        compiled = core.compile_model(quantized, 'CPU', {'INFERENCE_PRECISION_HINT': 'f32'})
        errors = np.zeros(len(names))
        for x, ref in zip(evals, refs):
            outs = [np.asarray(o) for o in compiled(x).values()]
            errors += [np.linalg.norm(o - r) / np.linalg.norm(r) for o, r in zip(outs, ref)]
        name = 'int8' if keep is None else f'int8, {keep} float'
        record['variants'][name] = [float(e) for e in errors / len(evals)]
    return record


__all__ = ['pyramid_agreement', 'CANDIDATES']
