"""Wall-clock timing of callables, alone or interleaved, keeping every raw sample.

Modelled on ``torch.utils.benchmark``: untimed warm-up, then repetitions until both a
minimum count and a minimum total measured time are reached, with a hard cap so a
mis-sized budget cannot run forever. Every sample is returned in seconds; summary
statistics live in :mod:`adapterdrop.bench.stats` so that nothing is thrown away here.

A callable may be a :class:`Timed`: its ``setup`` (activating AdapterHub's adapters, switching
a head, resetting a cache) runs before each of its clocks starts, so only the work is timed,
for every implementation alike. With ``peak_memory`` each callable runs once more after the timed
rounds, untimed, for its peak memory (:mod:`adapterdrop.bench.memory`).
"""

from __future__ import annotations

import contextlib
import gc
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from adapterdrop.bench.memory import peak_memory as measure_peak_memory

logger = logging.getLogger(__name__)

Device = str | torch.device | None

#: Defaults shared by :func:`measure` and :func:`measure_interleaved`. Three warm-up calls
#: cover lazy initialisation (allocator growth, oneDNN primitive caches, CUDA context);
#: ten samples are the fewest for which an IQR means something; one second of measured
#: time per callable bounds the influence of a single scheduler hiccup; the cap stops
#: micro-second callables from looping for minutes.
DEFAULT_WARMUP = 3
#: Warm-up seconds per callable beyond the warm-up rounds: 0 on CPU; GPUs need about a second
#: (clocks ramp up, cuBLAS picks its kernels) and their presets ask for it.
DEFAULT_WARMUP_SECONDS = 0.0
DEFAULT_MIN_REPS = 10
DEFAULT_MIN_SECONDS = 1.0
DEFAULT_MAX_REPS = 10_000


@dataclass(frozen=True)
class Timed:
    """A callable to time, with an untimed ``setup`` run right before each of its clocks."""

    run: Callable[[], Any]
    setup: Callable[[], Any] | None = None

    def __call__(self) -> Any:
        if self.setup is not None:
            self.setup()
        return self.run()


class Samples(dict[str, list[float]]):
    """Raw samples in seconds per callable, plus each callable's ``peak_memory`` in bytes
    (``None`` where the platform cannot tell) from an untimed pass."""

    def __init__(
        self, samples: Mapping[str, list[float]], peak_memory: Mapping[str, int | None]
    ) -> None:
        super().__init__(samples)
        self.peak_memory = dict(peak_memory)

    def __reduce__(self) -> tuple[Any, ...]:
        # Keep ``peak_memory`` when a spawned process sends its samples back.
        return (Samples, (dict(self), self.peak_memory))


def _validate_budget(
    warmup: int, min_reps: int, min_seconds: float, max_reps: int, warmup_seconds: float = 0.0
) -> None:
    if warmup < 0:
        raise ValueError(f"warmup must be >= 0, got {warmup}")
    if warmup_seconds < 0:
        raise ValueError(f"warmup_seconds must be >= 0, got {warmup_seconds}")
    if min_reps < 1:
        raise ValueError(f"min_reps must be >= 1, got {min_reps}")
    if min_seconds < 0:
        raise ValueError(f"min_seconds must be >= 0, got {min_seconds}")
    if max_reps < min_reps:
        raise ValueError(f"max_reps ({max_reps}) must be >= min_reps ({min_reps})")


def _is_cuda(device: Device) -> bool:
    return device is not None and torch.device(device).type == "cuda"


def _make_clock(device: Device) -> Callable[[Callable[[], Any]], float]:
    """Return a function that runs a callable once and returns its duration in seconds.

    On CUDA the host returns before the kernels finish, so host timers would measure
    launch overhead only: we bracket the call with events on the current stream and
    synchronise. On CPU ``perf_counter`` is the highest-resolution monotonic clock.
    """
    if _is_cuda(device):
        dev = torch.device(device)

        def cuda_clock(fn: Callable[[], Any]) -> float:
            with torch.cuda.device(dev):
                torch.cuda.synchronize(dev)
                start = torch.cuda.Event(enable_timing=True)
                end = torch.cuda.Event(enable_timing=True)
                start.record()
                fn()
                end.record()
                end.synchronize()
                return start.elapsed_time(end) / 1e3

        return cuda_clock

    def cpu_clock(fn: Callable[[], Any]) -> float:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start

    return cpu_clock


def _synchronize(device: Device) -> None:
    if _is_cuda(device):
        torch.cuda.synchronize(torch.device(device))


def _split(fn: Callable[[], Any] | Timed) -> tuple[Callable[[], Any] | None, Callable[[], Any]]:
    return (fn.setup, fn.run) if isinstance(fn, Timed) else (None, fn)


def _grad_context(inference_mode: bool) -> contextlib.AbstractContextManager[Any]:
    return torch.inference_mode() if inference_mode else contextlib.nullcontext()


def measure(
    fn: Callable[[], Any] | Timed,
    *,
    warmup: int = DEFAULT_WARMUP,
    warmup_seconds: float = DEFAULT_WARMUP_SECONDS,
    min_reps: int = DEFAULT_MIN_REPS,
    min_seconds: float = DEFAULT_MIN_SECONDS,
    max_reps: int = DEFAULT_MAX_REPS,
    device: Device = None,
    inference_mode: bool = False,
) -> list[float]:
    """Time ``fn`` repeatedly and return every sample in seconds.

    Stops once at least ``min_reps`` samples exist *and* their sum reaches
    ``min_seconds``, or at ``max_reps`` samples. ``device`` selects CUDA-event timing
    when it names a CUDA device. ``inference_mode`` wraps warm-up and timed calls in
    ``torch.inference_mode()``; it is off by default because training steps need grad.
    """
    samples = measure_interleaved(
        {"fn": fn},
        warmup=warmup,
        warmup_seconds=warmup_seconds,
        min_reps=min_reps,
        min_seconds=min_seconds,
        max_reps=max_reps,
        device=device,
        inference_mode=inference_mode,
    )
    return samples["fn"]


def measure_interleaved(
    callables: Mapping[str, Callable[[], Any] | Timed],
    *,
    warmup: int = DEFAULT_WARMUP,
    warmup_seconds: float = DEFAULT_WARMUP_SECONDS,
    min_reps: int = DEFAULT_MIN_REPS,
    min_seconds: float = DEFAULT_MIN_SECONDS,
    max_reps: int = DEFAULT_MAX_REPS,
    device: Device = None,
    rotate: bool = True,
    inference_mode: bool = False,
    peak_memory: bool = False,
) -> Samples:
    """Time several callables in round-robin rounds and return per-name samples.

    Interleaving (A B C, A B C, ...) exposes every callable to the same slow drifts
    (thermal state, background load), so sample ``i`` of each name forms a pair suited to
    :func:`adapterdrop.bench.stats.ratio_of_medians`. With ``rotate`` the starting callable
    shifts by one each round (A B C, B C A, C A B, ...) so that no callable always follows
    the same neighbour, cancelling order effects such as cache pollution. Warm-up runs
    ``warmup`` untimed rounds, and more until every callable has warmed up for
    ``warmup_seconds``. Rounds continue until every callable has ``min_reps`` samples summing
    to at least ``min_seconds``, or ``max_reps`` rounds have run. A :class:`Timed` callable's
    ``setup`` runs (and the device is synchronised) before its clock starts, in warm-up too.
    ``peak_memory`` adds one untimed call per callable after the rounds, measuring its peak
    memory (after them, so that releasing memory for the probe cannot cost a timed call).
    """
    if not callables:
        raise ValueError("measure_interleaved needs at least one callable")
    _validate_budget(warmup, min_reps, min_seconds, max_reps, warmup_seconds)
    names = list(callables)
    parts = {name: _split(fn) for name, fn in callables.items()}
    clock = _make_clock(device)
    samples: dict[str, list[float]] = {name: [] for name in names}
    totals = dict.fromkeys(names, 0.0)

    def order(round_index: int) -> list[str]:
        shift = round_index % len(names) if rotate else 0
        return names[shift:] + names[:shift]

    def timed(name: str) -> float:
        setup, run = parts[name]
        if setup is not None:
            setup()
            _synchronize(device)
        return clock(run)

    with _grad_context(inference_mode):
        warmed = dict.fromkeys(names, 0.0)
        round_index = 0
        while round_index < warmup or min(warmed.values()) < warmup_seconds:
            for name in order(round_index):
                warmed[name] += timed(name)
            round_index += 1
        _synchronize(device)
        # A collection triggered by warm-up garbage would otherwise land in the first samples.
        gc.collect()

        rounds = 0
        while rounds < max_reps and (rounds < min_reps or min(totals.values()) < min_seconds):
            for name in order(rounds):
                elapsed = timed(name)
                samples[name].append(elapsed)
                totals[name] += elapsed
            rounds += 1

    if min(totals.values()) < min_seconds:
        logger.info(
            "stopped at max_reps=%d before min_seconds=%.3g was reached (min total %.3g s)",
            max_reps,
            min_seconds,
            min(totals.values()),
        )
    memory: dict[str, int | None] = {}
    if peak_memory:
        with _grad_context(inference_mode):
            for name in names:
                setup, run = parts[name]
                memory[name] = measure_peak_memory(run, device, setup=setup)
    return Samples(samples, memory)
