"""Run one image through a PVT detector, segmentor or classifier and draw the result.

    python tools/demo.py IMAGE CONFIG CHECKPOINT --out FILE [--score-thr 0.3] [--device cpu]
                         [--nms-iou 0.5] [--min-size 640] [--topk 5] [--amp]

Detection uses mmdet's init_detector / inference_detector and DetLocalVisualizer;
segmentation uses mmseg's init_model / inference_model and SegLocalVisualizer;
classification mmpretrain's get_model / ImageClassificationInferencer and
UniversalVisualizer, and the top classes are printed. CHECKPOINT is read as every pvt_mm tool
reads one (pvt_mm.network.model_weights): backbone keys in any published layout converted,
every key checked, loaded strictly or refused naming the keys; the class names are the
file's, else the config's.
"""
import argparse

try:
    from pvt_mm.run.cli import add_amp_arg, add_cfg_options, add_drawing_args
    from pvt_mm.run.inference import demo
except ModuleNotFoundError as err:
    raise SystemExit(f'{err}\nRun `make setup` first and use .venv/bin/python (or install '
                     'pvt_mm into your environment: docs/install.md).') from None


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Draw a PVT model's prediction on one image")
    parser.add_argument('image', help='image file')
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    add_drawing_args(parser)
    add_amp_arg(parser)
    parser.add_argument('--device', help='default: cuda:0 where there is a GPU, else cpu')
    add_cfg_options(parser)
    return parser.parse_args(argv)


def main(argv=None):
    return demo(**vars(parse_args(argv)))


if __name__ == '__main__':
    main()
