# pvt_mm/run/hooks' hooks, shared by every pvt_mm config: before the first iteration, a check
# that every image the annotations name exists; a stop naming the iteration where the loss
# turns NaN/inf; per-step seeding, so a resumed run equals an uninterrupted one. The fourth,
# pvt_mm.AtomicCheckpointHook, replaces default_hooks.checkpoint in each config that inherits
# this file (mmengine refuses a key, here default_hooks, that two bases both define).
custom_hooks = [
    dict(type='pvt_mm.DataFilesHook'),
    dict(type='pvt_mm.NonFiniteLossHook'),
    dict(type='pvt_mm.StepSeedHook'),
]
