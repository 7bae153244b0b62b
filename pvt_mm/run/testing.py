"""Evaluating a checkpoint with mmengine's Runner and the task's own metrics, as
``tools/test.py`` does."""
from __future__ import annotations

import json
import numbers


def test(config: str, checkpoint: str, *, work_dir: str | None = None, out: str | None = None,
         show_dir: str | None = None, amp: bool = False, data_root: str | None = None,
         cfg_options: dict | None = None, launcher: str = 'none', local_rank: int = 0) -> dict:
    """Evaluates ``checkpoint`` on the config's test set; returns the metrics.

    The checkpoint must fit the config's model key for key (else
    :class:`pvt_mm.network.weights.CheckpointError`, before any image is run). Its
    ``backbone.`` keys may be in any published PVT layout (the official mmdet-2 detector
    checkpoints hold the official one): they are converted to pvt_mm's.

    ``out`` and ``show_dir`` are tools/test.py's ``--out`` and ``--show-dir``, each as the
    task's own tool has it (:class:`pvt_mm.run.tasks.Task`). Rank 0 prints the metrics as
    one line, ``pvt_mm metrics: {json}``.
    """
    from mmengine.logging import print_log
    from mmengine.model import is_model_wrapper

    from ..network.model_weights import read_model_checkpoint
    from ..network.weights import check_source
    from .amp import enable_amp_test, without_gpu_amp
    from .config import build_runner, prepare_config
    from .distributed import prepare_distributed

    check_source(checkpoint)  # a missing file fails before the config is read
    cfg, task = prepare_config(config, ['test'], work_dir=work_dir, data_root=data_root,
                               cfg_options=cfg_options, local_rank=local_rank)
    weights = read_model_checkpoint(checkpoint)
    # A file that needs no conversion goes through mmengine's loader as is (its hooks see
    # it), after the strict check below; a converted one is loaded here, strictly.
    converted = bool(weights.layout or weights.network_alone)
    cfg.load_from = None if converted else checkpoint
    if without_gpu_amp(cfg):
        print_log('No CUDA GPU: testing this AmpOptimWrapper config in fp32.', logger='current')
    if amp:
        print_log(enable_amp_test(cfg), logger='current')
    if show_dir:
        task.configure_show_dir(cfg, show_dir)
    prepare_distributed(cfg, launcher)
    if out:
        task.configure_out(cfg, out)
    runner = build_runner(cfg)
    model = runner.model.module if is_model_wrapper(runner.model) else runner.model
    if converted:
        weights.load_into(model)
    else:
        weights.fitted(model)  # raises, naming the keys, unless the file fits exactly
    del weights
    if out:
        task.attach_out(runner, out)
    metrics = runner.test()
    if runner.rank == 0:
        if not metrics:
            print('pvt_mm: no metrics: the model predicted nothing above its score threshold '
                  '(mmdet\'s CocoMetric skips empty results); an untrained model does this.')
        print('pvt_mm metrics: ' + json.dumps({k: float(v) for k, v in metrics.items()
                                               if isinstance(v, numbers.Real)}))
    return metrics


test.__test__ = False  # a function named test, not a test: pytest leaves it alone

__all__ = ['test']
