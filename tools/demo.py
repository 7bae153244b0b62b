"""Run one image through a PVT detector, segmentor or classifier and draw the result.

    python tools/demo.py IMAGE CONFIG CHECKPOINT --out FILE [--score-thr 0.3] [--device cpu]
                         [--nms-iou 0.5] [--min-size 640] [--topk 5] [--amp]

Detection uses mmdet's init_detector / inference_detector and DetLocalVisualizer;
segmentation uses mmseg's init_model / inference_model and SegLocalVisualizer;
classification mmpretrain's ImageClassificationInferencer and UniversalVisualizer, and the
top classes are printed.
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))


def parse_args(argv=None):
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(description='Draw a PVT model\'s prediction on one image')
    parser.add_argument('image', help='image file')
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    add_drawing_args(parser)
    parser.add_argument('--amp', action='store_true',
                        help='mixed precision: fp16 autocast on a GPU, bf16 on a CPU with native '
                             'bf16 (AVX512-BF16 / AMX), else fp32')
    parser.add_argument('--device', default='cuda:0' if _cuda() else 'cpu')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings in the config, key=value (a.b.c=v)')
    return parser.parse_args(argv)


def add_drawing_args(parser):
    """The flags of :func:`draw_prediction` (shared with tools/deployment/onnx_infer.py)."""
    parser.add_argument('--out', required=True, help='where to write the drawn image')
    parser.add_argument('--score-thr', type=float, default=0.3, help='detection score threshold')
    parser.add_argument('--nms-iou', type=float, default=0.5,
                        help='in the picture, of detections overlapping by more than this '
                             '(any class) only the best is drawn; all are printed')
    parser.add_argument('--min-size', type=int, default=640,
                        help='the picture is upscaled (whole-number factor, nearest pixel) '
                             'until its longer side is at least this')
    parser.add_argument('--topk', type=int, default=5, help='classification: classes printed')


def _cuda():
    import torch
    return torch.cuda.is_available()


def main(argv=None):
    args = parse_args(argv)
    import mmcv
    from amp_switch import inference_amp

    from pvt_mm.config import load_config

    for what, path in (('image', args.image), ('checkpoint', args.checkpoint)):
        if not osp.isfile(path):
            raise FileNotFoundError(f'{what} {path!r} does not exist.')
    cfg, task = load_config(args.config, args.cfg_options)
    image = mmcv.imread(args.image, channel_order='rgb')
    if task == 'det':
        from mmdet.apis import inference_detector, init_detector
        model = init_detector(cfg, args.checkpoint, device=args.device)
        amp = inference_amp(model, args.amp)
        result = inference_detector(model, args.image)
    elif task == 'seg':
        from mmseg.apis import inference_model, init_model
        model = init_model(cfg, args.checkpoint, device=args.device)
        amp = inference_amp(model, args.amp)
        result = inference_model(model, args.image)
    else:
        from mmpretrain.apis import ImageClassificationInferencer
        inferencer = ImageClassificationInferencer(cfg, pretrained=args.checkpoint,
                                                   device=args.device)
        model = inferencer.model
        model.dataset_meta = dict(classes=inferencer.classes)
        amp = inference_amp(model, args.amp)
        result = inferencer(args.image, return_datasamples=True)[0]
    if args.amp:
        print(f'--amp: {amp}')
    draw_prediction(task, image, result, model.dataset_meta, args)


def draw_prediction(task, image, result, dataset_meta, args):
    """Draws ``result`` (a det, seg or cls data sample) on ``image`` (RGB) into ``args.out``
    and prints what was found; ``args`` carries ``out``, ``score_thr``, ``nms_iou``,
    ``min_size`` and ``topk``. tools/deployment/onnx_infer.py draws with it too."""
    import mmcv
    from mmengine.registry import VISUALIZERS
    scale = display_scale(image.shape[:2], args.min_size)
    picture = mmcv.imrescale(image, scale, interpolation='nearest')
    if task == 'det':
        shown = one_box_per_object(result.pred_instances, args.score_thr, args.nms_iou)
        shown.bboxes = shown.bboxes * scale
        drawn = result.clone()
        drawn.pred_instances = shown
        # One colour that stands out from what is drawn (the toy shapes are red, green and
        # blue), labels on a dark band, lines readable at the display size.
        vis_cfg = dict(type='DetLocalVisualizer', name='pvt_mm_demo', bbox_color=(255, 230, 0),
                       text_color=(255, 255, 255), line_width=3)
        kwargs = dict(pred_score_thr=args.score_thr)
    elif task == 'cls':
        drawn = result
        vis_cfg = dict(type='UniversalVisualizer', name='pvt_mm_demo')
        kwargs = {}
    else:
        from mmengine.structures import PixelData
        drawn = result.clone()
        seg = result.pred_sem_seg.data  # a new PixelData: one of another size cannot take it
        drawn.pred_sem_seg = PixelData(
            data=seg.repeat_interleave(scale, -2).repeat_interleave(scale, -1))
        vis_cfg = dict(type='SegLocalVisualizer', name='pvt_mm_demo', alpha=0.6)
        kwargs = dict(with_labels=True)
    if task == 'cls':
        from mmpretrain.registry import VISUALIZERS  # mmpretrain's node holds its visualizer
    visualizer = VISUALIZERS.build(vis_cfg)  # the named instance, made once
    visualizer.dataset_meta = dataset_meta
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    if task == 'cls':
        visualizer.visualize_cls(picture, drawn, draw_gt=False, show=False, out_file=args.out)
    else:
        visualizer.add_datasample('demo', picture, data_sample=drawn, draw_gt=False,
                                  show=False, out_file=args.out, **kwargs)
    if task == 'det':
        inst = result.pred_instances
        keep = inst.scores >= args.score_thr
        classes = dataset_meta.get('classes', ())
        found = [f'{classes[int(l)] if int(l) < len(classes) else int(l)} {float(s):.2f}'
                 for l, s in zip(inst.labels[keep], inst.scores[keep])]
        print(f'{len(found)} detections above {args.score_thr}: {", ".join(found) or "none"}'
              f' (drawn: the best of each overlapping group, {len(shown)})')
    if task == 'cls':
        scores = result.pred_score
        classes = dataset_meta.get('classes') or [str(i) for i in range(len(scores))]
        top = scores.topk(min(args.topk, len(scores)))
        print(f'top {len(top.indices)} classes: ' + ', '.join(
            f'{classes[int(i)]} {float(v):.3f}' for v, i in zip(top.values, top.indices)))
    print(f'drawn prediction written to {args.out} ({picture.shape[1]}x{picture.shape[0]}, '
          f'{scale}x the image)')


def display_scale(hw, min_size):
    """The whole-number upscaling that brings the longer side to at least ``min_size``."""
    return max(1, -(-min_size // max(hw)))


def one_box_per_object(instances, score_thr, iou):
    """The detections above ``score_thr``, keeping of boxes that overlap by more than ``iou``
    (whatever their class) only the best-scoring one, so that every drawn label is legible.
    The printed list keeps them all."""
    from mmcv.ops import nms
    inst = instances[instances.scores >= score_thr]
    if len(inst) == 0:
        return inst
    _, keep = nms(inst.bboxes.float(), inst.scores.float(), iou)
    return inst[keep]


if __name__ == '__main__':
    main()
