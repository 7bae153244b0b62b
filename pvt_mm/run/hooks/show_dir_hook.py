"""Drawn test predictions written where mmdet's ``--show-dir`` writes them, for any task."""
from __future__ import annotations

import os
import os.path as osp

from mmengine.hooks import Hook

from ...registry import HOOKS


@HOOKS.register_module()
class ShowDirHook(Hook):
    """Draws every test prediction into ``<work_dir>/<timestamp>/<out_dir>/<image name>``.

    This is mmdet's rule for ``tools/test.py --show-dir`` (its ``DetVisualizationHook``
    ``test_out_dir``). mmseg's ``SegVisualizationHook`` has no such option, and mmseg's own
    ``--show-dir`` writes relative to the current directory instead (mmpretrain's too);
    pvt_mm's ``tools/test.py`` uses this hook for segmentation and classification so every
    task follows one rule. It
    draws with the runner's visualizer (``SegLocalVisualizer``, ``DetLocalVisualizer``,
    mmpretrain's ``UniversalVisualizer``): ground truth beside the prediction, as upstream.

    Args:
        out_dir: folder under the run's timestamped log folder; an absolute path is used
            as it is.
        draw_gt: draw the ground truth beside the prediction.
    """

    priority = 'NORMAL'

    def __init__(self, out_dir: str, draw_gt: bool = True) -> None:
        self.out_dir = out_dir
        self.draw_gt = draw_gt
        self._dir: str | None = None

    def before_test(self, runner) -> None:
        self._dir = osp.join(runner.work_dir, runner.timestamp, self.out_dir)
        os.makedirs(self._dir, exist_ok=True)

    def after_test_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        import mmcv  # the tasks' own image reader; only a test run with --show-dir needs it
        for sample in outputs or ():
            name = osp.basename(sample.img_path)
            image = mmcv.imread(sample.img_path, channel_order='rgb')
            out_file = osp.join(self._dir, name)
            visualizer = runner.visualizer
            if hasattr(visualizer, 'visualize_cls'):  # mmpretrain's UniversalVisualizer
                visualizer.visualize_cls(image, sample, draw_gt=self.draw_gt, show=False,
                                         out_file=out_file, name=name)
            else:
                visualizer.add_datasample(name, image, data_sample=sample,
                                          draw_gt=self.draw_gt, show=False, out_file=out_file)
