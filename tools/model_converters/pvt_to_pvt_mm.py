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

try:
    from pvt_mm.run.convert_weights import convert_weights
except ModuleNotFoundError as err:
    raise SystemExit(f'{err}\nRun `make setup` first and use .venv/bin/python (or install '
                     'pvt_mm into your environment: docs/install.md).') from None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('src', help='source checkpoint (path or URL)')
    parser.add_argument('dst', help='output file (.pth or .safetensors)')
    parser.add_argument('--arch', help='PVT size; default: inferred from the weights')
    parser.add_argument('--prefix', help='take the keys under this prefix (e.g. backbone.)')
    args = parser.parse_args(argv)
    print(convert_weights(args.src, args.dst, arch=args.arch, prefix=args.prefix))


if __name__ == '__main__':
    main()
