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
import json
import numbers
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # pvt_mm, uninstalled
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))  # the helpers beside this tool


def parse_args(argv=None):
    from runner_config import add_common_args
    parser = argparse.ArgumentParser(
        description='Test (and evaluate) a PVT detector, segmentor or classifier')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the dir to save the evaluation metrics')
    parser.add_argument('--out', help='detection and classification: dump predictions to this '
                        '.pkl file; segmentation: write predicted label maps into this directory')
    parser.add_argument('--show-dir', help='draw every prediction (beside its ground truth) '
                        'into <work_dir>/<timestamp>/SHOW_DIR/, named after its image, for '
                        'detection and segmentation alike (an absolute path is used as is)')
    parser.add_argument('--amp', action='store_true',
                        help="mixed precision (mmengine's TestLoop fp16 switch): fp16 autocast on "
                             'a GPU, bf16 on a CPU with native bf16 (AVX512-BF16 / AMX), else fp32')
    add_common_args(parser)
    return parser.parse_args(argv)


def enable_visualization(cfg, task, show_dir):
    """Draws every test prediction into <work_dir>/<timestamp>/<show_dir>/, for both tasks.

    Detection: mmdet's DetVisualizationHook with its test_out_dir (mmdet's own rule).
    Segmentation and classification: mmseg's and mmpretrain's hooks have no such option
    (their tools write relative to the current directory), so pvt_mm's TestOutDirHook
    applies mmdet's rule with the runner's visualizer.
    """
    hooks = cfg.default_hooks
    if task == 'det':
        if 'visualization' not in hooks:
            raise RuntimeError('--show-dir needs a visualization hook in default_hooks.')
        hooks.visualization.draw = True
        hooks.visualization.test_out_dir = show_dir
    else:
        cfg.custom_hooks = [*cfg.get('custom_hooks', []),
                            dict(type='pvt_mm.TestOutDirHook', out_dir=show_dir)]


def main(argv=None):
    args = parse_args(argv)
    from amp_switch import enable_amp_test, without_gpu_amp
    from cpu_distributed import prepare_distributed
    from mmengine.logging import print_log
    from runner_config import build_runner, prepare_config

    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'Checkpoint {args.checkpoint!r} does not exist.')
    cfg, task = prepare_config(args, ['test'])
    cfg.load_from = args.checkpoint
    if without_gpu_amp(cfg):
        print_log('No CUDA GPU: testing this AmpOptimWrapper config in fp32.', logger='current')
    if args.amp:
        print_log(enable_amp_test(cfg), logger='current')
    if args.show_dir:
        enable_visualization(cfg, task, args.show_dir)
    prepare_distributed(cfg, args.launcher)

    if args.out and task == 'seg':
        cfg.test_evaluator['output_dir'] = args.out
        cfg.test_evaluator['keep_results'] = True
    runner = build_runner(cfg)
    if args.out and task in ('det', 'cls'):
        if not args.out.endswith(('.pkl', '.pickle')):
            what = 'detection' if task == 'det' else 'classification'
            raise ValueError(f'--out must be a .pkl file for {what}, got {args.out!r}.')
        if task == 'det':
            from mmdet.evaluation import DumpDetResults as Dump
        else:
            from mmengine.evaluator import DumpResults as Dump
        runner.test_evaluator.metrics.append(Dump(out_file_path=args.out))
    metrics = runner.test()
    if runner.rank == 0:
        if not metrics:
            print('pvt_mm: no metrics: the model predicted nothing above its score threshold '
                  '(mmdet\'s CocoMetric skips empty results); an untrained model does this.')
        print('pvt_mm metrics: ' + json.dumps({k: float(v) for k, v in metrics.items()
                                               if isinstance(v, numbers.Real)}))
    return metrics


if __name__ == '__main__':
    main()
