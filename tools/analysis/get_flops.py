"""GFLOPs and parameters of a PVT model at a given input size, attention's matrix products counted.

    python tools/analysis/get_flops.py CONFIG [--shape H W] [--cfg-options k=v ...]
    python tools/analysis/get_flops.py --arch small [--shape 224 224]

With a config: the whole detector or segmentor's tensor forward (backbone, neck, heads;
no post-processing), as mmdet's and mmseg's get_flops measure it. With --arch: the PVT
backbone plus the ImageNet classifier of the paper's Table 2 (class token, final norm,
1000-way head). The counting rule is printed with the result (see tools/analysis/flops.py).
"""
import argparse
import json
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))


def classifier_extra_macs(arch: dict, num_classes: int = 1000, img_size: int = 224) -> int:
    """Multiply-adds the official classifier adds to the backbone at ``img_size``.

    The class token joins the last stage's N tokens, so every last-stage block runs its
    linears (q, kv, proj, MLP) on one more token and its attention on (N+1)^2 instead of
    N^2 query-key pairs (the paper's last stage has no spatial reduction); then the head.
    """
    c = arch['embed_dims'][-1]
    hidden = int(c * arch['mlp_ratios'][-1])
    side = img_size
    for p in arch['patch_sizes']:
        side //= p
    n = side * side
    linears = c * c + 2 * c * c + c * c + 2 * c * hidden
    attention = ((n + 1) ** 2 - n ** 2) * c * 2  # q.k^T and attn.v over all heads
    return arch['depths'][-1] * (linears + attention) + c * num_classes


def count_backbone(arch_name: str, shape):
    import torch

    from flops import count_macs

    from pvt_mm import PVT
    model = PVT(arch_name).eval()
    x = torch.randn(1, 3, *shape)
    with torch.no_grad():
        macs, per_op = count_macs(lambda: model(x))
    params = sum(p.numel() for p in model.parameters())
    c = model.arch['embed_dims'][-1]
    classifier_params = c + c + 2 * c + c * 1000 + 1000  # pos row, cls token, norm, head
    extra = classifier_extra_macs(model.arch) if tuple(shape) == (224, 224) else c * 1000
    return dict(model=f'PVT-{arch_name} + ImageNet classifier', input=list(shape),
                gmacs=(macs + extra) / 1e9, params_m=(params + classifier_params) / 1e6,
                backbone_gmacs=macs / 1e9, per_op_gmacs={k: v / 1e9 for k, v in per_op.items()})


def count_config(config: str, shape, cfg_options=None):
    import torch

    from flops import count_macs
    from mmengine.registry import DefaultScope

    from pvt_mm.config import load_config, task_registry
    cfg, task = load_config(config, cfg_options)
    h, w = shape
    if task == 'det':
        from mmdet.structures import DetDataSample
        sample = DetDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w),
                                             batch_input_shape=(h, w), scale_factor=(1.0, 1.0)))
    else:
        from mmseg.structures import SegDataSample
        sample = SegDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w),
                                             batch_input_shape=(h, w)))
    DefaultScope.get_instance('pvt_mm_get_flops', scope_name=cfg.default_scope)
    model = task_registry(task).build(cfg.model).eval()
    x = torch.randn(1, 3, h, w)
    with torch.no_grad():
        macs, per_op = count_macs(lambda: model(x, [sample], mode='tensor'))
        backbone_macs, _ = count_macs(lambda: model.backbone(x))
    return dict(model=osp.basename(config), input=[h, w], gmacs=macs / 1e9,
                params_m=sum(p.numel() for p in model.parameters()) / 1e6,
                backbone_gmacs=backbone_macs / 1e9,
                per_op_gmacs={k: v / 1e9 for k, v in per_op.items()})


def main(argv=None):
    from mmengine.config import DictAction

    from flops import COUNTING_RULE
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', nargs='?', help='detection or segmentation config')
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
            shape = (800, 1333) if task == 'det' else (512, 512)
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
