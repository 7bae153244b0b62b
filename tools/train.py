"""Train a detector (mmdet) or segmentor (mmseg) whose config uses pvt_mm.

    python tools/train.py CONFIG [--work-dir DIR] [--amp] [--resume [CKPT]] [--auto-scale-lr]
                          [--data-root DIR] [--cfg-options k=v ...] [--launcher pytorch]

The flags mean what they mean in mmdet's and mmseg's tools/train.py. Which task a config is
for comes from the config itself (its default_scope, or where its model is registered).
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # pvt_mm, uninstalled
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))  # the helpers beside this tool


def parse_args(argv=None):
    from runner_config import add_common_args
    parser = argparse.ArgumentParser(description='Train a detector or segmentor with PVT')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument('--amp', action='store_true', default=False,
                        help='mixed precision: fp16 with loss scaling on a GPU (AmpOptimWrapper), '
                             'bf16 autocast on a CPU with native bf16 (AVX512-BF16 / AMX), else '
                             'fp32')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the learning rate to the actual total batch size')
    parser.add_argument('--resume', nargs='?', type=str, const='auto',
                        help='resume from CKPT; without a path, from the latest checkpoint '
                             'in the work dir')
    add_common_args(parser)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from amp_switch import enable_amp, without_gpu_amp
    from cpu_distributed import prepare_distributed
    from mmengine.logging import print_log
    from runner_config import build_runner, prepare_config
    from stop_report import report_stop

    cfg, task = prepare_config(args, ['train', 'val'])

    if args.amp:
        print_log(enable_amp(cfg), logger='current')
    elif without_gpu_amp(cfg):
        print_log('No CUDA GPU: running this AmpOptimWrapper config in fp32 (--amp: bf16 '
                  'autocast where the CPU has native bf16).', logger='current')
    if args.auto_scale_lr:
        if 'auto_scale_lr' not in cfg or 'base_batch_size' not in cfg.auto_scale_lr:
            raise RuntimeError('--auto-scale-lr needs auto_scale_lr.base_batch_size in the config.')
        cfg.auto_scale_lr.enable = True
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        if not osp.isfile(args.resume):
            raise FileNotFoundError(f'--resume: checkpoint {args.resume!r} does not exist.')
        cfg.resume, cfg.load_from = True, args.resume
    prepare_distributed(cfg, args.launcher)

    runner = build_runner(cfg)
    try:
        runner.train()
    except KeyboardInterrupt as err:  # Ctrl-C: say where it stopped, no traceback
        report_stop(runner, err)
        raise SystemExit(130) from None
    except Exception as err:
        report_stop(runner, err)
        raise


if __name__ == '__main__':
    main()
