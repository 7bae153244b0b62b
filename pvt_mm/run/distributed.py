"""Distributed start-up for the tools on machines without a GPU (gloo over torchrun)."""
from __future__ import annotations

import os
from typing import Any

import torch


def prepare_distributed(cfg: Any, launcher: str) -> None:
    """Sets the launcher; without CUDA, starts gloo and tells DDP there are no devices.

    mmengine 0.10.7's ``init_dist`` calls ``torch.cuda.set_device`` unconditionally and its
    default DDP wrapper passes ``device_ids=[LOCAL_RANK]``; both fail on a CPU machine. The
    Runner skips ``init_dist`` when a process group exists, so on CPU the group is made
    here with the gloo backend (addresses from torchrun's environment), and DDP is built
    with ``device_ids=None``, and dataloader workers start from a fork server. The GPU path
    (nccl, one device per rank) stays mmengine's.
    """
    cfg.launcher = launcher
    if launcher == 'none' or torch.cuda.is_available():
        return
    import torch.distributed as dist
    env_cfg = cfg.setdefault('env_cfg', {})
    env_cfg.setdefault('dist_cfg', {})['backend'] = 'gloo'
    # Dataloader workers forked from a process whose gloo threads may hold a lock can hang
    # in fork: seen here, one rank's worker stuck inside os.fork() while the other rank
    # waited in the gradient all-reduce, for good. Workers start from a fork server instead.
    env_cfg.setdefault('mp_cfg', {})['mp_start_method'] = 'forkserver'
    if launcher != 'pytorch':
        raise RuntimeError(f'Launcher {launcher!r} without a GPU is not supported; use '
                           'tools/dist_train.sh (torchrun, --launcher pytorch).')
    if not dist.is_initialized():
        dist.init_process_group(backend='gloo')
    wrapper = dict(cfg.get('model_wrapper_cfg') or {})
    wrapper.setdefault('type', 'MMDistributedDataParallel')
    wrapper['device_ids'] = None
    wrapper.setdefault('broadcast_buffers', False)
    wrapper.setdefault('find_unused_parameters', cfg.get('find_unused_parameters', False))
    cfg.model_wrapper_cfg = wrapper
    os.environ.setdefault('LOCAL_RANK', '0')
