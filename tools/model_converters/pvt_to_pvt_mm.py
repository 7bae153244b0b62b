"""Convert an official PVT v1 checkpoint, or one of mmdet's PVT, into pvt_mm's layout.

    python tools/model_converters/pvt_to_pvt_mm.py SRC DST [--arch tiny|small|medium|large]

SRC: a local file or URL (``pvt_small.pth``, an mmdet PVT detector checkpoint, ...).
DST: a plain state dict, ``.pth`` (torch.save) or ``.safetensors``: the backbone, and the
ImageNet classifier (class token, final norm, head) when the source has one; a backbone
leaves those keys when it loads the file, a ``PVT(num_classes=N)`` takes them.
The arch is read off the weights (stage depths) unless given; the result is checked
strictly against a PVT of that arch (a classifier if it has a head) before anything is written.
"""
import argparse
import io
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('src', help='source checkpoint (path or URL)')
    parser.add_argument('dst', help='output file (.pth or .safetensors)')
    parser.add_argument('--arch', help='PVT size; default: inferred from the weights')
    parser.add_argument('--prefix', help='take the keys under this prefix (e.g. backbone.)')
    args = parser.parse_args(argv)

    import torch

    from pvt_mm import PVT
    from pvt_mm.checkpoint import check_state_dict, infer_arch, load_pvt_state_dict
    from pvt_mm.fileio import atomic_write

    state_dict, layout = load_pvt_state_dict(args.src, prefix=args.prefix)
    arch = args.arch or infer_arch(state_dict, args.src)
    head = state_dict.get('head.weight')
    model = PVT(arch, num_classes=head.shape[0]) if head is not None else PVT(arch)
    check_state_dict(model, state_dict, args.src)
    if args.dst.endswith('.safetensors'):
        from safetensors.torch import save
        data = save({k: v.contiguous() for k, v in state_dict.items()})
    else:
        buffer = io.BytesIO()
        torch.save(state_dict, buffer)
        data = buffer.getvalue()
    atomic_write(args.dst, data)
    print(f'{args.src} ({layout} layout, PVT-{arch}): {len(state_dict)} tensors -> {args.dst}')


if __name__ == '__main__':
    main()
