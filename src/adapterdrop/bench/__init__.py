"""Benchmarks: the harness that times and stores points, and the grids that measure them.

Harness (knows nothing about adapters): ``timer`` (interleaved timing), ``stats`` (medians,
ratios, bootstrap CIs), ``costmodel`` (Table 2's fit), ``processes`` (a point in fresh
processes), ``memory`` and ``allocator`` (peak memory, freed memory kept), ``environment`` and
``machine`` (what a result records, the machine's tag), ``runner`` (resumable points to result
files), ``sweep`` (one grid end to end: validate, measure, then ``reporting`` builds its tables).

What the grids' callables run on: ``validate`` (every grid check before any model),
``settings`` (what every point records, timing budgets), ``devices`` (device, dtype, autocast,
storage dtype), ``inputs`` (random ids, labels, task names), ``models`` (the one encoder
builder, heads, the full fine-tuning baseline), ``model_cache`` (the one cache of built
models), ``phases`` (a phase's mode and timing), ``training_step`` (one timed training step).

The grids: ``experiments/<grid>.py`` (``points(cfg)``, ``measure(point)``).
"""
