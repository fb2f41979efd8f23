"""Timer: budgets are honoured, warm-up is not recorded, interleaving order is as documented."""

from __future__ import annotations

import time

import pytest
import torch

from adapterdrop.bench.timer import measure, measure_interleaved

SLEEP_S = 0.01


def test_sleep_median_within_tolerance():
    samples = measure(lambda: time.sleep(SLEEP_S), warmup=1, min_reps=15, min_seconds=0.0)
    median = sorted(samples)[len(samples) // 2]
    # sleep never returns early; a loaded 2-core VM may overshoot by a few ms, not by 100 %.
    assert SLEEP_S <= median < 2 * SLEEP_S


def test_min_reps_honoured_when_min_seconds_is_already_met():
    samples = measure(lambda: time.sleep(SLEEP_S), warmup=0, min_reps=7, min_seconds=0.001)
    assert len(samples) == 7


def test_min_seconds_honoured_and_stops_promptly():
    min_seconds = 0.1
    samples = measure(lambda: time.sleep(0.005), warmup=0, min_reps=2, min_seconds=min_seconds)
    assert sum(samples) >= min_seconds
    assert sum(samples[:-1]) < min_seconds  # one more sample than needed would be waste


def test_max_reps_caps_an_unreachable_budget():
    samples = measure(lambda: None, warmup=0, min_reps=5, min_seconds=60.0, max_reps=50)
    assert len(samples) == 50


def test_warmup_is_run_but_not_recorded():
    calls = []

    def fn():
        calls.append(None)
        if len(calls) <= 3:  # slow warm-up calls, like lazy initialisation
            time.sleep(0.05)

    samples = measure(fn, warmup=3, min_reps=10, min_seconds=0.0)
    assert len(calls) == 3 + len(samples)
    assert len(samples) == 10
    assert max(samples) < 0.05


def test_samples_are_raw_seconds():
    samples = measure(lambda: time.sleep(SLEEP_S), warmup=0, min_reps=3, min_seconds=0.0)
    assert all(isinstance(s, float) and s >= SLEEP_S for s in samples)


@pytest.mark.parametrize("inference_mode", [False, True])
def test_inference_mode_only_when_asked(inference_mode):
    seen = []
    measure(
        lambda: seen.append(torch.is_inference_mode_enabled()),
        warmup=1,
        min_reps=2,
        min_seconds=0.0,
        inference_mode=inference_mode,
    )
    assert seen == [inference_mode] * 3


def test_grad_available_by_default_for_training_steps():
    w = torch.ones(3, requires_grad=True)

    def step():
        (w * 2).sum().backward()

    measure(step, warmup=1, min_reps=2, min_seconds=0.0)
    assert w.grad is not None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"warmup": -1},
        {"min_reps": 0},
        {"min_seconds": -1.0},
        {"min_reps": 10, "max_reps": 5},
    ],
)
def test_invalid_budget_rejected(kwargs):
    with pytest.raises(ValueError):
        measure(lambda: None, **kwargs)


def test_interleaved_order_is_round_robin_without_rotation():
    log: list[str] = []
    samples = measure_interleaved(
        {"A": lambda: log.append("A"), "B": lambda: log.append("B")},
        warmup=0,
        min_reps=4,
        min_seconds=0.0,
        rotate=False,
    )
    assert "".join(log) == "ABABABAB"
    assert [len(v) for v in samples.values()] == [4, 4]


def test_interleaved_rotation_shifts_the_start_each_round():
    log: list[str] = []
    measure_interleaved(
        {name: (lambda n=name: log.append(n)) for name in "ABC"},
        warmup=0,
        min_reps=4,
        min_seconds=0.0,
        rotate=True,
    )
    assert "".join(log) == "".join(["ABC", "BCA", "CAB", "ABC"])


def test_interleaved_warmup_rounds_not_recorded():
    log: list[str] = []
    samples = measure_interleaved(
        {"A": lambda: log.append("A"), "B": lambda: log.append("B")},
        warmup=2,
        min_reps=3,
        min_seconds=0.0,
        rotate=False,
    )
    assert len(log) == 2 * (2 + 3)
    assert all(len(v) == 3 for v in samples.values())


def test_interleaved_runs_until_every_callable_reaches_min_seconds():
    min_seconds = 0.04
    samples = measure_interleaved(
        {"fast": lambda: time.sleep(0.002), "slow": lambda: time.sleep(0.004)},
        warmup=0,
        min_reps=2,
        min_seconds=min_seconds,
    )
    assert sum(samples["fast"]) >= min_seconds
    assert sum(samples["fast"][:-1]) < min_seconds  # the fast one decides when to stop
    assert len(samples["fast"]) == len(samples["slow"])  # paired by round


def test_interleaved_needs_a_callable():
    with pytest.raises(ValueError):
        measure_interleaved({})


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_events_time_the_kernels():
    x = torch.randn(2048, 2048, device="cuda")
    samples = measure(lambda: x @ x, warmup=2, min_reps=5, min_seconds=0.0, device="cuda")
    host_only = measure(lambda: x @ x, warmup=2, min_reps=5, min_seconds=0.0)
    assert len(samples) == 5
    # Without synchronisation the host timer sees only the launch.
    assert sorted(samples)[2] > sorted(host_only)[2]
