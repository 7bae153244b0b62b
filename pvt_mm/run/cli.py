"""The command-line flags that several tools share, meaning what they mean in mmdet's and
mmseg's tools."""
from __future__ import annotations

from typing import Any


def add_cfg_options(parser: Any) -> None:
    """``--cfg-options k=v ...``: override settings in the config."""
    from mmengine.config import DictAction
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings in the config, key=value (a.b.c=v)')


def add_run_args(parser: Any) -> None:
    """The flags of tools/train.py and tools/test.py beyond their own: ``--data-root``,
    ``--cfg-options``, ``--launcher``, ``--local-rank``."""
    parser.add_argument('--data-root', help='override data_root of every dataset in the config')
    add_cfg_options(parser)
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def add_amp_arg(parser: Any, what: str = 'mixed precision') -> None:
    parser.add_argument('--amp', action='store_true',
                        help=f'{what}: fp16 on a GPU, bf16 autocast on a CPU with native bf16 '
                             '(AVX512-BF16 / AMX), else fp32')


def add_drawing_args(parser: Any) -> None:
    """The flags of :func:`pvt_mm.run.inference.draw_prediction` (tools/demo.py and
    tools/deployment/onnx_infer.py)."""
    parser.add_argument('--out', required=True, help='where to write the drawn image')
    parser.add_argument('--score-thr', type=float, default=0.3, help='detection score threshold')
    parser.add_argument('--nms-iou', type=float, default=0.5,
                        help='in the picture, of detections overlapping by more than this '
                             '(any class) only the best is drawn; all are printed')
    parser.add_argument('--min-size', type=int, default=640,
                        help='the picture is upscaled (whole-number factor, nearest pixel) '
                             'until its longer side is at least this')
    parser.add_argument('--topk', type=int, default=5, help='classification: classes printed')


__all__ = ['add_cfg_options', 'add_run_args', 'add_amp_arg', 'add_drawing_args']
