"""Convert any published PVT v1 or PVTv2 checkpoint into pvt_mm's key layout.

    python tools/model_converters/pvt_to_pvt_mm.py SRC DST [--arch ARCH] [--prefix P]
                                                   [--config CONFIG]

SRC: a local file, a URL or a hub id (``hf-hub:REPO_ID[@REVISION]``, e.g.
``hf-hub:timm/pvt_v2_b2.in1k``, through huggingface_hub's cache) in any layout pvt_mm
reads: the official files (``pvt_small.pth``, ``pvt_v2_b2.pth``, the official mmdet-2
detector files), mmdet's PVT and PVTv2 (its model-zoo detectors too), timm's ``pvt_v2_*``,
HF transformers' Pvt / PvtV2 classes (``model.safetensors``), mmengine's checkpoints of
pvt_mm's configs.
DST:
- SRC holds a whole model (a detector, segmentor or classifier: ``backbone.`` keys beside
  the neck's and heads'): the whole model, its backbone keys in pvt_mm's layout and every
  other key as it was, written as mmengine's checkpoint (``meta`` and ``state_dict``, .pth),
  which tools/test.py, demo.py, export_onnx.py and mmdet's / mmseg's own tools load. The
  backbone is checked strictly against a network of its family and size; with ``--config``
  the whole state dict against that config's model.
- otherwise (or with ``--prefix``: the keys under it): the network, as a plain state dict
  (``.pth`` or ``.safetensors``): the backbone, and the ImageNet classifier when the source
  has one; a backbone leaves those keys when it loads the file, a classifier
  (``num_classes=N``) takes them.
The family (PVT or PVTv2) comes from the layout and the arch from the weights unless given
(``tiny`` ... ``large``, ``b0`` ... ``b5``, ``b2_li``); nothing is written unless the check
passes.
"""
import argparse

try:
    from pvt_mm.run.cli import add_cfg_options
    from pvt_mm.run.convert_weights import convert_weights
except ModuleNotFoundError as err:
    raise SystemExit(f'{err}\nRun `make setup` first and use .venv/bin/python (or install '
                     'pvt_mm into your environment: docs/install.md).') from None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('src', help='source checkpoint (path, URL or hf-hub:REPO_ID[@REVISION])')
    parser.add_argument('dst', help='output file (.pth; a network alone also .safetensors)')
    parser.add_argument('--arch', help='PVT or PVTv2 size; default: read off the weights')
    parser.add_argument('--prefix', help='write the network under this prefix alone '
                        '(e.g. backbone.: a detector file\'s backbone)')
    parser.add_argument('--config', help="check a whole model against this config's model")
    add_cfg_options(parser)
    args = parser.parse_args(argv)
    print(convert_weights(args.src, args.dst, arch=args.arch, prefix=args.prefix,
                          config=args.config, cfg_options=args.cfg_options))


if __name__ == '__main__':
    main()
