"""Check, before the first iteration, that the files the annotations name are there."""
from __future__ import annotations

from mmengine.hooks import Hook
from mmengine.runner import BaseLoop

from ..datacheck import check_data_files
from ...registry import HOOKS


@HOOKS.register_module()
class DataFilesHook(Hook):
    """Runs :func:`pvt_mm.run.datacheck.check_data_files` on the datasets of the loops being run.

    An annotation that names a missing or empty image then stops the run before training or
    evaluating anything (with :class:`pvt_mm.run.datacheck.DatasetNotFoundError` naming the
    files), instead of in a dataloader worker hours in. One ``stat`` per file: a few seconds
    for COCO's 123k images on a local disk. Images that exist but cannot be decoded are
    still found only when loaded; mmcv's error names the file.
    """

    priority = 'VERY_HIGH'

    def before_run(self, runner) -> None:
        for split in ('train', 'val', 'test'):
            loop = getattr(runner, f'_{split}_loop', None)  # built loops only; no new builds
            if isinstance(loop, BaseLoop):
                n = check_data_files(loop.dataloader.dataset, split)
                runner.logger.info(f'DataFilesHook: the {n} files named by the {split} '
                                   'annotations are all present.')
