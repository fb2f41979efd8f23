"""The settings every benchmark point records: resolved device, dtype and machine, threads,
TF32, seed, and the timing budget of the grid (and of a phase) under the global ``timing``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from adapterdrop.bench.devices import resolve_device, resolve_dtype
from adapterdrop.bench.machine import fingerprint
from adapterdrop.bench.validate import check_timing

#: The budget keys of :func:`adapterdrop.bench.timer.measure_interleaved`.
TIMING_KEYS = ("warmup", "warmup_seconds", "min_reps", "min_seconds", "max_reps")


def resolve_timing(cfg: Mapping[str, Any], phase: str | None = None) -> dict[str, Any]:
    """The grid's timing budget (``bench.timing``, sized for its callables; a ``training`` or
    ``inference`` entry in it adjusts that phase) under any value set in the global ``timing``
    block, so ``timing.min_reps=20`` on the command line wins.

    A key left ``null`` everywhere is refused: a budget must be explicit to be recorded.
    """
    where = "bench.timing and timing" + (f", {phase} phase" if phase else "")
    grid = cfg["bench"].get("timing", {})
    explicit = {key: value for key, value in cfg["timing"].items() if value is not None}
    timing = {**grid, **(grid.get(phase) or {}), **explicit}
    missing = sorted(key for key in TIMING_KEYS if timing.get(key) is None)
    if missing:
        raise ValueError(
            f"timing {missing} unset: give them in bench.timing of the grid or as timing.<key>"
        )
    return check_timing({key: timing[key] for key in TIMING_KEYS}, f"timing ({where})")


def point_settings(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The global settings every benchmark point records, validated before any model exists.

    Device and dtype are recorded resolved (never ``auto``), with the machine's fingerprint:
    a point's identity says which hardware and precision its numbers belong to.
    """
    device = resolve_device(cfg["device"])
    threads = torch.get_num_threads()
    return {
        "model": dict(cfg["model"]),
        "dtype": resolve_dtype(cfg["dtype"], device),
        "device": device.type,
        "machine": fingerprint(device, threads),
        "threads": threads,
        "tf32": cfg["tf32"],
        "timing": resolve_timing(cfg),
        "seed": cfg["seed"],
    }
