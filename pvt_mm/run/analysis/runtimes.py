"""An exported model timed in each runtime beside pvt_mm's eager PyTorch path, as
``tools/analysis/runtime_speed.py`` does: the backbone, the network to its raw outputs and the
end-to-end graph, each exported with ``--dynamic``, then PyTorch, onnxruntime and OpenVINO (f32
and bf16, when installed) on the same input, alternating, median of ``repeat`` runs after a
warm-up. The end-to-end graph takes the image; the other two the tensor its preprocessing
makes of it, so all three see the same pixels.
"""
from __future__ import annotations

import os.path as osp
import tempfile
import time
from collections.abc import Sequence
from typing import Any

PARTS = ('backbone', 'raw', 'end2end')
CLS_CONVS = ('retina_cls', 'atss_cls', 'gfl_cls')  # the dense heads' classification convs


def _runners(path: str, int8_path: str | None = None) -> dict[str, Any]:
    """name -> fn(x numpy) -> list of outputs, for every runtime installed, each opened as
    pvt_deploy opens it; ``openvino_int8`` runs the quantised IR (what is float in it at
    OpenVINO's default precision, bf16 where the CPU has it)."""
    from pvt_deploy.runtimes import open_runtime
    names = ['onnxruntime']
    try:
        import openvino  # noqa: F401
        names += ['openvino_f32', 'openvino_bf16']
    except ImportError:
        pass
    runners = {}
    for name in names:
        runtime, _, precision = name.partition('_')
        opened = open_runtime(path, runtime, precision=precision or None)
        runners[name] = lambda x, run=opened.run: list(run(x).values())
    if int8_path:
        opened = open_runtime(int8_path, 'openvino')
        runners['openvino_int8'] = lambda x, run=opened.run: list(run(x).values())
    return runners


def calibration_images(folder: str, shape: Sequence[int], count: int = 16) -> list[Any]:
    """Up to ``count`` images of ``folder`` (sorted), each resized to ``shape`` (H, W) as a
    (1, 3, H, W) float RGB 0-255 tensor: what the end-to-end graph of the race takes."""
    import glob

    import cv2
    import torch
    paths = sorted(p for p in glob.glob(osp.join(folder, '*'))
                   if p.lower().endswith(('.jpg', '.jpeg', '.png')))[:count]
    if not paths:
        raise FileNotFoundError(f'no calibration images (.jpg, .png) in {folder}: make the toy '
                                'set (python tools/data/make_toy_data.py) or pass another '
                                'folder with --calib-dir.')
    out = []
    for p in paths:
        image = cv2.resize(cv2.imread(p), (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
        out.append(torch.from_numpy(image[:, :, ::-1].transpose(2, 0, 1).copy())[None].float())
    return out


def race_runtimes(config: str, checkpoint: str | None = None, *,
                  shape: Sequence[int] = (800, 1333), parts: Sequence[str] = PARTS,
                  repeat: int = 5, cls_bias: float | None = None,
                  cfg_options: dict | None = None, work_dir: str | None = None,
                  calib_dir: str | None = None) -> dict:
    """The record: per part, the export time and each runtime's median seconds and its
    agreement with PyTorch (largest |difference| of raw outputs; detection counts and the
    one-to-one differences of end-to-end detections). With ``calib_dir`` (and NNCF and
    OpenVINO installed) each part is also quantised to INT8 (``quantize.py``'s rules),
    calibrated on that folder's images, and timed as ``openvino_int8``."""
    import torch

    from ..config import load_config
    from ..deployment.export import export_onnx, exportable_part
    from ..deployment.rules import export_rules
    from ..deployment.export_model import (DETECTIONS, detection_diffs, example_input,
                                           load_weights, timed)
    cfg, task = load_config(config, cfg_options)
    model = task.build_eval_model(cfg)
    if checkpoint:
        load_weights(model, checkpoint, backbone_only=False)
    if cls_bias is not None:  # random weights: how many candidates reach the NMS
        for name in CLS_CONVS:
            if hasattr(getattr(model, 'bbox_head', None), name):
                torch.nn.init.constant_(getattr(model.bbox_head, name).bias, cls_bias)
    image = example_input(shape, image=True)
    e2e, e2e_names, _ = export_rules(task).end2end(model, cfg)
    with torch.no_grad():
        x = e2e.image_input(image)  # the preprocessed, padded tensor of the same image
    modules = {}
    for part in parts:
        if part == 'end2end':
            modules[part] = (e2e, e2e_names, image)
        else:
            module, _, names, _ = exportable_part(model, task, example=x,
                                                  backbone_only=part == 'backbone')
            modules[part] = (module, names, x)
    calib = calibration_images(calib_dir, shape) if calib_dir else None
    record = dict(config=config, shape=list(shape), input_shape=list(x.shape[2:]),
                  repeat=repeat, threads=torch.get_num_threads(), cls_bias=cls_bias,
                  calibration=dict(folder=calib_dir, images=len(calib)) if calib else None,
                  parts={})
    folder = work_dir or tempfile.mkdtemp(prefix='pvt_mm_runtimes_')
    for part, (module, names, inp) in modules.items():
        path = osp.join(folder, f'{part}.onnx')
        start = time.perf_counter()
        export_onnx(module, inp, path, output_names=names, dynamic=True)
        row: dict[str, Any] = dict(export_s=time.perf_counter() - start)
        int8_path = None
        if calib:
            from ..deployment.quantize import quantize_model
            with torch.no_grad():  # the part's own input made of each calibration image
                feed_calib = [(c if part == 'end2end' else e2e.image_input(c)).numpy()
                              for c in calib]
            start = time.perf_counter()
            quantized, _ = quantize_model(path, feed_calib)
            row['quantize_s'] = time.perf_counter() - start
            import openvino as ov
            int8_path = osp.join(folder, f'{part}_int8.xml')
            ov.save_model(quantized, int8_path, compress_to_fp16=False)
        with torch.no_grad():
            ref, row['pytorch_s'] = timed(lambda: module(inp), repeat)
        ref = (ref,) if isinstance(ref, torch.Tensor) else tuple(ref)
        feed = inp.numpy()
        for runtime, run in _runners(path, int8_path).items():
            outs, row[f'{runtime}_s'] = timed(lambda: run(feed), repeat)
            row[f'{runtime}_ratio'] = row[f'{runtime}_s'] / row['pytorch_s']
            if names[:3] == DETECTIONS:
                diffs = detection_diffs(ref, outs, inp.shape[2:])
                row[f'{runtime}_detections'] = len(outs[1])
                row[f'{runtime}_max_abs_diff'] = max(diffs['boxes'][0], diffs['scores'][0])
                row[f'{runtime}_label_mismatch'] = diffs['labels'][0] > 0
            else:
                row[f'{runtime}_max_abs_diff'] = max(
                    float((torch.from_numpy(o) - r).abs().max()) for o, r in zip(outs, ref))
        if names[:3] == DETECTIONS:
            row['pytorch_detections'] = len(ref[1])
        row['max_abs_output'] = max(float(r.abs().max()) if r.numel() else 0.0 for r in ref)
        record['parts'][part] = row
    return record


def format_table(record: dict) -> str:
    """The record as a Markdown table: seconds, and the ratio to PyTorch's."""
    first = next(iter(record['parts'].values()))
    runtimes = [k[:-2] for k in first
                if k.endswith('_s') and k not in ('export_s', 'quantize_s', 'pytorch_s')]
    lines = ['| part | export | PyTorch (eager) | ' + ' | '.join(runtimes) + ' |',
             '| --- ' * (3 + len(runtimes)) + '|']
    for part, row in record['parts'].items():
        cells = [f'{row[f"{r}_s"]:.3f} s ({row[f"{r}_ratio"]:.2f}x, max diff '
                 f'{row[f"{r}_max_abs_diff"]:.1e})' for r in runtimes]
        lines.append(f'| {part} | {row["export_s"]:.1f} s | {row["pytorch_s"]:.3f} s | '
                     + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


__all__ = ['race_runtimes', 'format_table', 'PARTS']
