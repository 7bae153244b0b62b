"""mmengine's CheckpointHook, made so that a kill at any instant leaves a usable checkpoint."""
from __future__ import annotations

import os
import os.path as osp

from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook

from ..fileio import ATOMIC_BACKEND, atomic_write
from ...registry import HOOKS


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """Saves like mmengine's ``CheckpointHook``, with three changes for local work dirs.

    - Each checkpoint (also ``best_*``) is written to a temporary file, flushed and renamed
      into place (:class:`pvt_mm.run.fileio.AtomicLocalBackend`).
    - ``last_checkpoint``, which ``--resume`` reads, is replaced atomically too.
    - A checkpoint beyond ``max_keep_ckpts`` is removed only after the new one is in place
      (mmengine removes it first, so a kill during the save could leave none).

    Takes the arguments of ``CheckpointHook``. With ``backend_args``, ``file_client_args`` or
    a remote ``out_dir`` given, it saves exactly as ``CheckpointHook`` does.
    """

    atomic = False  # decided in before_train, once the out_dir is known

    def before_train(self, runner) -> None:
        out_dir = self.out_dir if isinstance(self.out_dir, str) else runner.work_dir
        self.atomic = (self.backend_args is None and self.file_client_args is None
                       and '://' not in out_dir)
        if self.atomic:
            self.backend_args = dict(backend=ATOMIC_BACKEND)
        super().before_train(runner)

    def _save_checkpoint_with_step(self, runner, step, meta) -> None:
        if not self.atomic:
            return super()._save_checkpoint_with_step(runner, step, meta)
        stale = None
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids
                                            and self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                stale = self.keep_ckpt_ids[0]
            self.keep_ckpt_ids.append(step)  # the deque's maxlen drops `stale`
            runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))

        ckpt_filename = self.filename_tmpl.format(step)
        self.last_ckpt = osp.join(self.out_dir, ckpt_filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        runner.save_checkpoint(
            self.out_dir, ckpt_filename, save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler, meta=meta, by_epoch=self.by_epoch,
            backend_args=self.backend_args, **self.args)
        if not is_main_process():
            return
        atomic_write(osp.join(runner.work_dir, 'last_checkpoint'), self.last_ckpt.encode())
        if stale is not None:
            path = osp.join(self.out_dir, self.filename_tmpl.format(stale))
            if osp.isfile(path):
                os.remove(path)
