"""Export a PVT detector, segmentor or classifier, or its backbone alone, to ONNX.

    python tools/deployment/export_onnx.py CONFIG [CHECKPOINT] --out FILE.onnx
        [--shape H W] [--dynamic] [--backbone-only] [--attention fused|explicit]
        [--check-shape H W ...] [--no-verify] [--cfg-options k=v ...]

What is exported (the graph's input is what the model's data preprocessor hands the network:
a normalised, padded (1, 3, H, W) float tensor):

* ``--backbone-only``: PVT's pyramid F1..F4 (a classifier's backbone: its logits).
* single-stage detectors (RetinaNet): backbone, neck and head up to the raw per-level class
  scores and box regressions, before anchor decoding and NMS.
* two-stage detectors (Mask R-CNN): backbone, neck and RPN up to the neck's maps and the
  RPN's raw outputs. The RoI stage (proposal NMS, RoIAlign on a data-dependent number of
  proposals, box and mask heads) is not exported.
* segmentors (Semantic FPN, Trans2Seg): the decode head's logits (stride 4).
* classifiers: the class scores.
* DETR: only with ``--backbone-only`` (its transformer builds padding masks from per-image
  sizes in Python); asked for whole, the tool says so and stops.

The file is checked with onnx's checker and, unless ``--no-verify``, run once with
onnxruntime on the CPU beside PyTorch on the same input (unit-scale normal values): the
largest absolute difference of every output and both times are printed. CHECKPOINT is the
whole model's checkpoint (what tools/train.py writes), loaded strictly; with
``--backbone-only`` it goes through PVT's own loader (official PVT, mmdet PVT, pvt_mm or
whole-model checkpoints). Without one the weights are random: for trying the export only.
"""
import argparse
import json
import os
import os.path as osp
import statistics
import sys
import time

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))


def parse_args(argv=None):
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(
        description='Export a PVT model (or its backbone) to ONNX and check it with onnxruntime',
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='Parts exported: --backbone-only: F1..F4; RetinaNet and other single-stage '
               'detectors: raw per-level scores and box regressions (no decoding, no NMS); '
               'Mask R-CNN and other two-stage detectors: neck maps and raw RPN outputs (the '
               'RoI stage is not exported); segmentors: decode-head logits; classifiers: '
               'class scores; DETR: --backbone-only only.')
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', nargs='?', help='checkpoint (default: random weights)')
    parser.add_argument('--out', required=True, help='the .onnx file to write')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'),
                        help='example input size (default: from the test pipeline, padded as '
                             'the data preprocessor pads)')
    parser.add_argument('--dynamic', action='store_true',
                        help='height and width as dynamic axes: one file for every input size')
    parser.add_argument('--backbone-only', action='store_true', help='export the backbone alone')
    parser.add_argument('--attention', choices=['fused', 'explicit'], default='fused',
                        help="PVT's attention path: F.scaled_dot_product_attention (fused) or "
                             'the explicit softmax(QK^T/sqrt(d))V')
    parser.add_argument('--check-shape', type=int, nargs=2, action='append', default=[],
                        metavar=('H', 'W'), help='with --dynamic, also compare onnxruntime with '
                        'PyTorch at this size (repeatable)')
    parser.add_argument('--tolerance', type=float, default=1e-4,
                        help='largest |difference| allowed, relative to the largest |value| of '
                             'each output (at least 1); above it the tool fails')
    parser.add_argument('--no-verify', action='store_true',
                        help='skip the onnxruntime run against PyTorch')
    parser.add_argument('--repeat', type=int, default=3,
                        help='timed runs of each runtime after one warm-up (median printed)')
    parser.add_argument('--opset', type=int, help="ONNX opset (default: the exporter's)")
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings in the config, key=value (a.b.c=v)')
    return parser.parse_args(argv)


def default_shape(cfg, task):
    """The example size: the test pipeline's resize target (h, w), padded as the data
    preprocessor pads; a classifier's crop; 512x512 when the config says neither."""
    pipeline = cfg.get('test_dataloader', {}).get('dataset', {}).get('pipeline', [])
    if task == 'cls':
        for t in pipeline:
            size = t.get('crop_size')
            if size is not None:
                return (size, size) if isinstance(size, int) else tuple(size)
        return (224, 224)
    if task == 'seg' and cfg.get('crop_size'):
        return tuple(cfg.crop_size)
    for t in pipeline:
        if t.get('type', '').endswith('Resize') and t.get('scale'):
            w, h = t['scale'] if not isinstance(t['scale'], int) else (t['scale'],) * 2
            h, w = min(h, w), max(h, w)  # keep_ratio: a landscape image fills (short, long)
            div = cfg.model.get('data_preprocessor', {}).get('pad_size_divisor') or \
                cfg.model.get('data_preprocessor', {}).get('size_divisor') or 1
            return (-(-h // div) * div, -(-w // div) * div)
    return (512, 512)


def build_model(cfg, task):
    """The config's model, in eval mode on the CPU, as built (onnx_infer.py builds it so too).
    SyncBN is reverted to BN: it cannot run, or export, without a GPU."""
    from mmengine.model import revert_sync_batchnorm
    from mmengine.registry import DefaultScope

    from pvt_mm.config import TASKS, task_registry
    with DefaultScope.overwrite_default_scope(TASKS[task]):
        model = task_registry(task).build(cfg.model)
    return revert_sync_batchnorm(model).eval()


def load_weights(model, checkpoint, backbone_only):
    """Loads ``checkpoint`` strictly (the backbone's through PVT's own loader); returns the
    checkpoint's dataset_meta, if it has one."""
    from mmengine.runner import load_checkpoint

    from pvt_mm.checkpoint import load_pretrained
    if backbone_only:
        load_pretrained(model.backbone, checkpoint)
        return None
    ckpt = load_checkpoint(model, checkpoint, map_location='cpu', strict=True, logger='silent')
    return ckpt.get('meta', {}).get('dataset_meta')


def timed(fn, repeat):
    fn()  # warm-up: allocations, onnxruntime's first-run optimisations, caches
    times = []
    for _ in range(max(1, repeat)):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return out, statistics.median(times)


def compare(session, module, names, shape, repeat, seed=0):
    """onnxruntime against PyTorch on one unit-scale normal input: per output, the largest
    |difference| and the scale it is judged against (the largest |value|, at least 1)."""
    import numpy as np
    import torch
    x = torch.randn(1, 3, *shape, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        ref, t_torch = timed(lambda: module(x), repeat)
    outs, t_ort = timed(lambda: session.run(None, {'input': x.numpy()}), repeat)
    diffs = {}
    for name, r, o in zip(names, ref, outs):
        if tuple(r.shape) != o.shape:
            raise AssertionError(f'{name}: onnxruntime gave shape {o.shape}, PyTorch '
                                 f'{tuple(r.shape)} at input {shape[0]}x{shape[1]}.')
        diffs[name] = (float(np.abs(o - r.numpy()).max()), max(1.0, float(r.abs().max())))
    return diffs, t_torch, t_ort


def main(argv=None):
    args = parse_args(argv)
    import torch

    from pvt_mm.config import load_config
    from pvt_mm.deployment import (META_CLASSES, META_MODEL, META_OUTPUTS, META_PART, META_TASK,
                                   NotExportableError, export_onnx, exportable_part)
    from pvt_mm.models.pvt import PVT

    if args.checkpoint and not osp.isfile(args.checkpoint):
        raise SystemExit(f'export_onnx: checkpoint {args.checkpoint!r} does not exist.')
    cfg, task = load_config(args.config, args.cfg_options)
    shape = tuple(args.shape) if args.shape else default_shape(cfg, task)
    model = build_model(cfg, task)
    dataset_meta = load_weights(model, args.checkpoint, args.backbone_only) \
        if args.checkpoint else None
    if not isinstance(model.backbone, PVT):
        raise SystemExit(f'export_onnx: the backbone is {type(model.backbone).__name__}, not '
                         "pvt_mm.PVT; this tool exports pvt_mm's models.")
    model.backbone.fused_attn = args.attention == 'fused'
    if min(shape) < model.backbone.min_input_size:
        raise SystemExit(f'export_onnx: --shape {shape[0]} {shape[1]} is below the backbone\'s '
                         f'minimum input of {model.backbone.min_input_size} px a side.')
    example = torch.randn(1, 3, *shape, generator=torch.Generator().manual_seed(0))
    try:
        module, part, names, groups = exportable_part(model, task, example=example,
                                                      backbone_only=args.backbone_only)
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        meta = {META_PART: part, META_TASK: task, META_MODEL: type(model).__name__,
                META_OUTPUTS: json.dumps(groups)}
        if dataset_meta and dataset_meta.get('classes'):
            meta[META_CLASSES] = json.dumps(list(dataset_meta['classes']))
        info = export_onnx(module, example, args.out, output_names=names, dynamic=args.dynamic,
                           opset=args.opset, metadata=meta)
    except NotExportableError as e:
        raise SystemExit(f'export_onnx: cannot export {type(model).__name__} from '
                         f'{args.config}: {e}') from None
    size = osp.getsize(args.out) / 2**20
    print(f'exported {type(model).__name__} ({part}, {args.attention} attention) at '
          f'{shape[0]}x{shape[1]} to {args.out} ({size:.1f} MiB) in {info["seconds"]:.1f} s; '
          'onnx checker: ok')
    if args.dynamic:
        rng = ', '.join(f'{k} >= {lo}' + (f' and <= {hi}' if hi else '')
                        for k, (lo, hi) in info['input_range'].items())
        print(f'  input (1, 3, height, width), dynamic: traced for {rng}')
    print(f'  outputs: {", ".join(names)}')
    if args.no_verify:
        return
    import onnxruntime as ort
    start = time.perf_counter()
    session = ort.InferenceSession(args.out, providers=['CPUExecutionProvider'])
    print(f'  onnxruntime {ort.__version__} session made in {time.perf_counter() - start:.1f} s')
    shapes = [shape]
    if args.dynamic:  # a graph that froze a size shows it at any other size
        shapes += [tuple(s) for s in args.check_shape] or [(shape[0] + 32, shape[1] + 32)]
    elif args.check_shape:
        print('  --check-shape ignored: the graph is fixed at the example size (no --dynamic)')
    worst, failed = 0.0, []
    for hw in shapes:
        diffs, t_torch, t_ort = compare(session, module, names, hw, args.repeat)
        top = max(diffs, key=lambda k: diffs[k][0] / diffs[k][1])
        diff, scale = diffs[top]
        worst = max(worst, diff / scale)
        print(f'  onnxruntime vs PyTorch at {hw[0]}x{hw[1]}: max |diff| {diff:.2e} ({top}, '
              f'values up to {scale:.3g}); time {t_ort:.3f} s (onnxruntime) vs {t_torch:.3f} s '
              '(PyTorch)')
        if diff > args.tolerance * scale:
            failed.append(f'{hw[0]}x{hw[1]}')
    if failed:
        raise SystemExit(f'export_onnx: onnxruntime disagrees with PyTorch at {", ".join(failed)} '
                         f'(relative |diff| {worst:.2e} > --tolerance {args.tolerance:g}); '
                         f'{args.out} is not to be trusted.')
    print(f'verified: relative max |diff| {worst:.2e} over {len(shapes)} size(s) '
          f'(tolerance {args.tolerance:g})')


if __name__ == '__main__':
    main()
