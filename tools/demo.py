"""Run one image through a PVT detector or segmentor and draw the result.

    python tools/demo.py IMAGE CONFIG CHECKPOINT --out FILE [--score-thr 0.3] [--device cpu]

Detection uses mmdet's init_detector / inference_detector and DetLocalVisualizer;
segmentation uses mmseg's init_model / inference_model and SegLocalVisualizer.
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
    parser.add_argument('--out', required=True, help='where to write the drawn image')
    parser.add_argument('--score-thr', type=float, default=0.3, help='detection score threshold')
    parser.add_argument('--device', default='cuda:0' if _cuda() else 'cpu')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings in the config, key=value (a.b.c=v)')
    return parser.parse_args(argv)


def _cuda():
    import torch
    return torch.cuda.is_available()


def main(argv=None):
    args = parse_args(argv)
    import mmcv
    from mmengine.registry import VISUALIZERS

    from pvt_mm.config import load_config

    for what, path in (('image', args.image), ('checkpoint', args.checkpoint)):
        if not osp.isfile(path):
            raise FileNotFoundError(f'{what} {path!r} does not exist.')
    cfg, task = load_config(args.config, args.cfg_options)
    image = mmcv.imread(args.image, channel_order='rgb')
    if task == 'det':
        from mmdet.apis import inference_detector, init_detector
        model = init_detector(cfg, args.checkpoint, device=args.device)
        result = inference_detector(model, args.image)
        vis_cfg = dict(type='DetLocalVisualizer', name='pvt_mm_demo')
        kwargs = dict(pred_score_thr=args.score_thr)
    else:
        from mmseg.apis import inference_model, init_model
        model = init_model(cfg, args.checkpoint, device=args.device)
        result = inference_model(model, args.image)
        vis_cfg = dict(type='SegLocalVisualizer', name='pvt_mm_demo', alpha=0.6)
        kwargs = dict(with_labels=True)
    visualizer = VISUALIZERS.build(vis_cfg)  # the named instance, made once
    visualizer.dataset_meta = model.dataset_meta
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    visualizer.add_datasample('demo', image, data_sample=result, draw_gt=False, show=False,
                              out_file=args.out, **kwargs)
    if task == 'det':
        inst = result.pred_instances
        keep = inst.scores >= args.score_thr
        classes = model.dataset_meta.get('classes', ())
        found = [f'{classes[int(l)] if int(l) < len(classes) else int(l)} {float(s):.2f}'
                 for l, s in zip(inst.labels[keep], inst.scores[keep])]
        print(f'{len(found)} detections above {args.score_thr}: {", ".join(found) or "none"}')
    print(f'drawn prediction written to {args.out}')


if __name__ == '__main__':
    main()
