"""Evaluate a checkpoint: COCO box/mask AP (mmdet's CocoMetric), mIoU (mmseg's IoUMetric) or
top-1 / top-5 accuracy (mmpretrain's Accuracy).

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out FILE] [--show-dir DIR]
                         [--amp] [--data-root DIR] [--cfg-options k=v ...] [--launcher pytorch]

--out means what it means in each upstream tool: for detection a .pkl of the predictions
(mmdet's DumpDetResults), for segmentation a directory of predicted label PNGs (mmseg's
IoUMetric output_dir), for classification a .pkl of the predictions (mmengine's DumpResults,
as mmpretrain's tool). --show-dir draws predictions into <work_dir>/<timestamp>/DIR, as
mmdet does, for every task.
"""
import argparse

try:
    from pvt_mm.run.cli import add_run_args
    from pvt_mm.run.testing import test
except ModuleNotFoundError as err:
    raise SystemExit(f'{err}\nRun `make setup` first and use .venv/bin/python (or install '
                     'pvt_mm into your environment: docs/install.md).') from None


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Test (and evaluate) a PVT detector, segmentor or classifier')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the dir to save the evaluation metrics')
    parser.add_argument('--out', help='detection and classification: dump predictions to this '
                        '.pkl file; segmentation: write predicted label maps into this directory')
    parser.add_argument('--show-dir', help='draw every prediction (beside its ground truth) '
                        'into <work_dir>/<timestamp>/SHOW_DIR/, named after its image, for '
                        'every task (an absolute path is used as is)')
    parser.add_argument('--amp', action='store_true',
                        help="mixed precision (mmengine's TestLoop fp16 switch): fp16 autocast on "
                             'a GPU, bf16 on a CPU with native bf16 (AVX512-BF16 / AMX), else fp32')
    add_run_args(parser)
    return parser.parse_args(argv)


def main(argv=None):
    return test(**vars(parse_args(argv)))


if __name__ == '__main__':
    main()
