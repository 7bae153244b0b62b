"""GFLOPs and parameters of a PVT model at a given input size, attention's matrix products counted.

    python tools/analysis/get_flops.py CONFIG [--shape H W] [--cfg-options k=v ...]
    python tools/analysis/get_flops.py --arch small [--shape 224 224]

With a config: the whole detector, segmentor or classifier's tensor forward (backbone, neck,
heads; no post-processing), as mmdet's, mmseg's and mmpretrain's get_flops measure it. With
--arch: the paper's ImageNet classifier of Table 2, ``PVT(arch, num_classes=1000)`` (class
token, final norm, 1000-way head), counted as it runs. The counting rule is printed with the result (see tools/analysis/flops.py).
"""
import argparse
import json
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))


def count_backbone(arch_name: str, shape):
    """The paper's classifier (``PVT(arch, num_classes=1000)``), counted as it runs: the
    class token in the last stage, the final norm and the head included (Table 2)."""
    import torch

    from flops import count_macs

    from pvt_mm import PVT
    model = PVT(arch_name, num_classes=1000).eval()
    x = torch.randn(1, 3, *shape)
    with torch.no_grad():
        macs, per_op = count_macs(lambda: model(x))
        backbone = PVT(arch_name).eval()
        backbone_macs, _ = count_macs(lambda: backbone(x))
    params = sum(p.numel() for p in model.parameters())
    return dict(model=f'PVT-{arch_name} + ImageNet classifier', input=list(shape),
                gmacs=macs / 1e9, params_m=params / 1e6, backbone_gmacs=backbone_macs / 1e9,
                per_op_gmacs={k: v / 1e9 for k, v in per_op.items()})


def count_config(config: str, shape, cfg_options=None):
    import torch

    from flops import count_macs
    from mmengine.registry import DefaultScope

    from pvt_mm.config import load_config, task_registry
    cfg, task = load_config(config, cfg_options)
    h, w = shape
    sample = None
    if task == 'det':
        from mmdet.structures import DetDataSample
        sample = DetDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w),
                                             batch_input_shape=(h, w), scale_factor=(1.0, 1.0)))
    elif task == 'seg':
        from mmseg.structures import SegDataSample
        sample = SegDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w),
                                             batch_input_shape=(h, w)))
    DefaultScope.get_instance('pvt_mm_get_flops', scope_name=cfg.default_scope)
    model = task_registry(task).build(cfg.model).eval()
    x = torch.randn(1, 3, h, w)
    with torch.no_grad():
        samples = None if sample is None else [sample]  # a classifier needs none
        macs, per_op = count_macs(lambda: model(x, samples, mode='tensor'))
        backbone_macs, _ = count_macs(lambda: model.backbone(x))
    return dict(model=osp.basename(config), input=[h, w], gmacs=macs / 1e9,
                params_m=sum(p.numel() for p in model.parameters()) / 1e6,
                backbone_gmacs=backbone_macs / 1e9,
                per_op_gmacs={k: v / 1e9 for k, v in per_op.items()})


def main(argv=None):
    from mmengine.config import DictAction

    from flops import COUNTING_RULE
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', nargs='?', help='detection, segmentation or classification config')
    parser.add_argument('--arch', help='instead of a config: a PVT size with the classifier')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'),
                        help='input height and width (default: 224x224 with --arch, '
                             '800x1333 for detection, 512x512 for segmentation)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    parser.add_argument('--json', action='store_true', help='print one JSON line only')
    args = parser.parse_args(argv)
    if bool(args.config) == bool(args.arch):
        parser.error('give a CONFIG or --arch, not both')
    if args.arch:
        result = count_backbone(args.arch, args.shape or (224, 224))
    else:
        from pvt_mm.config import load_config
        shape = args.shape
        if shape is None:
            _, task = load_config(args.config, args.cfg_options)
            shape = dict(det=(800, 1333), seg=(512, 512), cls=(224, 224))[task]
        result = count_config(args.config, shape, args.cfg_options)
    result['counting'] = COUNTING_RULE
    if args.json:
        print(json.dumps(result))
        return result
    print(f"{result['model']} at {result['input'][0]}x{result['input'][1]}")
    print(f"  GFLOPs: {result['gmacs']:.1f}   (backbone {result['backbone_gmacs']:.2f})")
    print(f"  Params: {result['params_m']:.2f} M")
    print('  by op: ' + ', '.join(f'{k} {v:.2f}' for k, v in result['per_op_gmacs'].items()))
    print(f"  counting: {COUNTING_RULE}")
    return result


if __name__ == '__main__':
    main()
