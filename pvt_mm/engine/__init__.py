"""Training hooks: atomic checkpoints, a stop on a non-finite loss, resumable seeding, and a
check that every file the datasets name exists."""
from .checkpoint_hook import AtomicCheckpointHook
from .data_hook import DataFilesHook
from .loss_hook import NonFiniteLossError, NonFiniteLossHook
from .seed_hook import StepSeedHook

__all__ = ['AtomicCheckpointHook', 'DataFilesHook', 'NonFiniteLossError', 'NonFiniteLossHook',
           'StepSeedHook']
