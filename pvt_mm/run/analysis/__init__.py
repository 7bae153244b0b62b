"""Measurements: multiply-adds (:mod:`.flops`), bytes held for backward
(:mod:`.activation_memory`), the race against mmdet's PVT (:mod:`.benchmark`) and its plot
(:mod:`.sweep_plot`)."""
