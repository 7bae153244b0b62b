"""Train a detector (mmdet), segmentor (mmseg) or classifier (mmpretrain) whose config uses pvt_mm.

    python tools/train.py CONFIG [--work-dir DIR] [--amp] [--resume [CKPT]] [--auto-scale-lr]
                          [--data-root DIR] [--cfg-options k=v ...] [--launcher pytorch]
                          [--allocator keep|glibc]

The flags mean what they mean in mmdet's and mmseg's tools/train.py. Which task a config is
for comes from the config itself (its default_scope, or where its model is registered).
"""
import argparse

try:
    from pvt_mm.run.allocator import keep_freed_memory
    from pvt_mm.run.cli import add_run_args
    from pvt_mm.run.training import train
except ModuleNotFoundError as err:
    raise SystemExit(f'{err}\nRun `make setup` first and use .venv/bin/python (or install '
                     'pvt_mm into your environment: docs/install.md).') from None


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Train a PVT detector, segmentor or classifier')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument('--amp', action='store_true',
                        help='mixed precision: fp16 with loss scaling on a GPU (AmpOptimWrapper), '
                             'bf16 autocast on a CPU with native bf16 (AVX512-BF16 / AMX), else '
                             'fp32')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the learning rate to the actual total batch size')
    parser.add_argument('--resume', nargs='?', type=str, const='auto',
                        help='resume from CKPT; without a path, from the latest checkpoint '
                             'in the work dir')
    parser.add_argument('--allocator', choices=['keep', 'glibc'], default='keep',
                        help="without a CUDA GPU, in one process: 'keep' (default) has glibc keep "
                             'freed memory for reuse, so a step does not pay page faults for '
                             "its large tensors again (faster, a higher resident set); 'glibc' "
                             "keeps glibc's defaults, as distributed launches do (docs/speed.md)")
    add_run_args(parser)
    return parser.parse_args(argv)


def main(argv=None):
    args = vars(parse_args(argv))
    allocator = args.pop('allocator')
    import torch
    # One process: a distributed launch keeps glibc's defaults (not measured with the setting).
    if allocator == 'keep' and not torch.cuda.is_available() and args['launcher'] == 'none':
        print(keep_freed_memory())
    train(**args)


if __name__ == '__main__':
    main()
