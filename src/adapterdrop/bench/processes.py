"""Measure one point in several fresh processes, for effects of a few %.

The memory layout a process gets (ASLR) biases a ratio of two models by a few % while that
process's own CI stays tight: here five fresh processes of one 60-round A/B put a Pfeiffer
adapter's inference overhead anywhere from 2.0 to 6.4 %. pyperf runs many worker processes for
the same reason. A point with ``processes`` > 1 is sampled in that many spawned interpreters,
one after the other (never concurrently), and its ratios are medians over them
(:func:`adapterdrop.bench.stats.ratio_across_processes`).
"""

from __future__ import annotations

import gc
import multiprocessing
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np
import torch

from adapterdrop.bench.allocator import allocator_settings, retain_freed_memory
from adapterdrop.bench.model_cache import clear_cache
from adapterdrop.bench.stats import RatioCI, ratio_across_processes, ratio_of_medians
from adapterdrop.bench.timer import Samples

#: What a result stores and pools: raw samples in seconds per callable name.
RawSamples = dict[str, list[float]]
#: Times every callable of a point in the calling process, and with ``peak_memory`` also
#: probes each one's peak memory; must be a module-level function (a spawned interpreter
#: imports it by name).
Sampler = Callable[..., Samples]


def check_processes(processes: Any, what: str) -> int:
    if isinstance(processes, bool) or not isinstance(processes, int) or processes < 1:
        raise ValueError(f"{what} must be an int >= 1, got {processes!r}")
    return processes


def processes_entry(phase: str, processes: int) -> dict[str, int]:
    """The point field that asks for several processes: inference points only (training
    effects are 1.4x and more), and none for one process, so such points keep their ids."""
    return {"processes": processes} if phase == "inference" and processes > 1 else {}


def _in_fresh_process(
    sampler: Sampler, point: Mapping[str, Any], pinned: bool, peak_memory: bool
) -> Samples:
    """The work of one spawned interpreter: the parent's allocator and thread settings, then
    the sampler (which builds its models here, in this process's own layout)."""
    if pinned:
        retain_freed_memory()
    torch.set_num_threads(point["threads"])
    return sampler(point, peak_memory=peak_memory)


def sample_runs(sampler: Sampler, point: Mapping[str, Any]) -> list[Samples]:
    """One sample set per process: in this process when ``point["processes"]`` is 1 or
    absent, else one per fresh spawned interpreter. Peak memory does not move with the layout,
    so only the first process probes it (an extra untimed round)."""
    processes = point.get("processes", 1)
    if processes == 1:
        return [sampler(point, peak_memory=True)]
    pinned = bool(allocator_settings().get("pinned_thresholds"))
    # The children build their own models; the parent's cached ones would only hold memory.
    clear_cache()
    gc.collect()
    context = multiprocessing.get_context("spawn")
    runs = []
    for k in range(processes):
        with ProcessPoolExecutor(1, mp_context=context, max_tasks_per_child=1) as pool:
            run = pool.submit(_in_fresh_process, sampler, point, pinned, k == 0)
            runs.append(run.result())
    return runs


def stored_samples(runs: list[Samples]) -> RawSamples:
    """What a result keeps: one process as is, several as ``<callable>@process=<k>``."""
    if len(runs) == 1:
        return runs[0]
    return {f"{name}@process={k}": s for k, run in enumerate(runs) for name, s in run.items()}


def peak_memory(runs: list[Samples]) -> dict[str, int | None]:
    """Each callable's peak memory in bytes, the highest over processes (``None`` if unknown)."""
    peaks: dict[str, int | None] = {}
    for run in runs:
        for name, value in run.peak_memory.items():
            known = [v for v in (peaks.get(name), value) if v is not None]
            peaks[name] = max(known) if known else None
    return peaks


def pooled(runs: list[Samples]) -> RawSamples:
    """Every process's samples per callable, for medians and spread of its time."""
    return {name: [t for run in runs for t in run[name]] for name in runs[0]}


def ratio(runs: list[Samples], numerator: str, denominator: str) -> RatioCI:
    """``t_numerator / t_denominator``: paired ratio of medians for one process, the median
    over processes (two-level bootstrap CI) for several."""
    if len(runs) == 1:
        return ratio_of_medians(runs[0][numerator], runs[0][denominator])
    return ratio_across_processes([r[numerator] for r in runs], [r[denominator] for r in runs])


def process_medians(runs: list[Samples]) -> list[dict[str, float]]:
    """Each process's median time per callable, for quantities derived from several callables
    (a time over a floor) whose median over processes no plain ratio gives."""
    return [{name: float(np.median(s)) for name, s in run.items()} for run in runs]
