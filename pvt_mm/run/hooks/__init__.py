"""Run hooks: atomic checkpoints, a stop on a non-finite loss, resumable seeding, a check
that every file the datasets name exists, drawn test predictions where --show-dir says, and
the network in bf16 autocast on a CPU (``--amp``)."""
from .bf16_hook import CpuBf16Hook, autocast_network
from .checkpoint_hook import AtomicCheckpointHook
from .data_hook import DataFilesHook
from .loss_hook import NonFiniteLossError, NonFiniteLossHook
from .seed_hook import StepSeedHook
from .show_dir_hook import ShowDirHook

__all__ = ['AtomicCheckpointHook', 'CpuBf16Hook', 'autocast_network', 'DataFilesHook',
           'NonFiniteLossError', 'NonFiniteLossHook', 'StepSeedHook', 'ShowDirHook']
