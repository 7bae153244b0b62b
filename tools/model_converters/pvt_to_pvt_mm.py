"""Convert any published PVT v1 or PVTv2 checkpoint into pvt_mm's key layout.

    python tools/model_converters/pvt_to_pvt_mm.py SRC DST [--arch ARCH] [--prefix P]

SRC: a local file or URL in any layout pvt_mm reads: the official files (``pvt_small.pth``,
``pvt_v2_b2.pth``), mmdet's PVT and PVTv2 (detector checkpoints too), timm's ``pvt_v2_*``,
HF transformers' Pvt / PvtV2 classes (``model.safetensors``).
DST: a plain state dict, ``.pth`` (torch.save) or ``.safetensors``: the backbone, and the
ImageNet classifier when the source has one; a backbone leaves those keys when it loads the
file, a classifier (``num_classes=N``) takes them.
The family (PVT or PVTv2) comes from the layout and the arch from the weights unless given
(``tiny`` ... ``large``, ``b0`` ... ``b5``, ``b2_li``); the result is checked strictly
against that network (a classifier if it has a head) before anything is written.
"""
import argparse

try:
    from pvt_mm.run.convert_weights import convert_weights
except ModuleNotFoundError as err:
    raise SystemExit(f'{err}\nRun `make setup` first and use .venv/bin/python (or install '
                     'pvt_mm into your environment: docs/install.md).') from None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('src', help='source checkpoint (path or URL)')
    parser.add_argument('dst', help='output file (.pth or .safetensors)')
    parser.add_argument('--arch', help='PVT or PVTv2 size; default: read off the weights')
    parser.add_argument('--prefix', help='take the keys under this prefix (e.g. backbone.)')
    args = parser.parse_args(argv)
    print(convert_weights(args.src, args.dst, arch=args.arch, prefix=args.prefix))


if __name__ == '__main__':
    main()
