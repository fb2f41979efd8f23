"""Only the work is timed, for every implementation: setup outside the clock, weights stored in
the run's dtype at inference, warm-up by time, and peak memory read outside the clock."""

from __future__ import annotations

import time

import pytest
import torch
from torch import nn

from adapterdrop.bench import timer
from adapterdrop.bench.experiments import table2
from adapterdrop.bench.phases import time_phase
from adapterdrop.bench.processes import peak_memory
from adapterdrop.bench.timer import Timed, measure, measure_interleaved
from conftest import bench_cfg

SETUP_SLEEP_S = 0.05


def test_a_setup_that_sleeps_shows_no_sleep_in_the_samples():
    calls = []
    timed = Timed(run=lambda: calls.append("run"), setup=lambda: time.sleep(SETUP_SLEEP_S))
    samples = measure(timed, warmup=1, min_reps=5, min_seconds=0.0)
    assert len(samples) == 5 and max(samples) < SETUP_SLEEP_S / 5
    assert calls == ["run"] * 6  # the setup ran before every call, warm-up included


def test_setup_runs_right_before_its_own_call_in_interleaved_rounds():
    log: list[str] = []
    callables = {
        "a": Timed(run=lambda: log.append("a"), setup=lambda: log.append("setup a")),
        "b": lambda: log.append("b"),
    }
    measure_interleaved(callables, warmup=0, min_reps=2, min_seconds=0.0, rotate=False)
    assert log == ["setup a", "a", "b"] * 2


def test_warmup_lasts_at_least_warmup_seconds_per_callable():
    calls = []
    samples = measure(
        lambda: (calls.append(None), time.sleep(0.01)),
        warmup=1,
        warmup_seconds=0.1,
        min_reps=2,
        min_seconds=0.0,
    )
    assert len(calls) - len(samples) >= 10  # about 0.1 s of 10 ms calls before the samples


def test_peak_memory_is_recorded_per_callable_in_an_untimed_call():
    size = 50_000_000  # 200 MB of fp32
    calls = []

    def big():
        calls.append("big")
        torch.ones(size).sum()

    # Big first: memory the allocator keeps mapped after it must not count for the next one.
    samples = measure_interleaved(
        {"big": big, "small": lambda: torch.ones(10).sum()},
        warmup=1,
        min_reps=3,
        min_seconds=0.0,
        rotate=False,
        peak_memory=True,
    )
    assert len(calls) == 1 + 3 + 1 and len(samples["big"]) == 3
    peaks = samples.peak_memory
    if peaks["big"] is None:
        pytest.skip("no peak-RSS probe on this platform")
    assert peaks["big"] - peaks["small"] > 150e6
    assert peak_memory([samples]) == peaks


def test_inference_stores_weights_in_the_dtype_and_training_keeps_fp32():
    module = nn.Linear(4, 4)
    seen = []
    call = {"fn": lambda: seen.append(module.weight.dtype)}
    timing = {"warmup": 0, "warmup_seconds": 0, "min_reps": 1, "min_seconds": 0, "max_reps": 1}
    device = torch.device("cpu")
    time_phase(call, [module], "inference", device=device, dtype="bf16", timing=timing)
    time_phase(call, [module], "training", device=device, dtype="bf16", timing=timing)
    assert seen == [torch.bfloat16] * 2 + [torch.float32] * 2  # a timed call, a memory probe


def _tiny_table2_point(tmp_path, *extra: str) -> dict:
    cfg = bench_cfg(tmp_path, "table2", "bench.num_tasks=[2]", "bench.processes=1", *extra)
    (point,) = table2.points(cfg)
    return point


def test_adapterhub_is_never_activated_while_a_clock_runs(tmp_path, monkeypatch):
    point = _tiny_table2_point(tmp_path, "bench.dropped_layers=all")
    encoder, reference = table2._models(point)
    in_clock = [False]
    activations = {"outside": 0, "inside": 0}
    original = reference.model.set_active_adapters

    def counting(*args, **kwargs):
        activations["inside" if in_clock[0] else "outside"] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(reference.model, "set_active_adapters", counting)
    make_clock = timer._make_clock

    def flagging_clock(device):
        clock = make_clock(device)

        def run(fn):
            in_clock[0] = True
            try:
                return clock(fn)
            finally:
                in_clock[0] = False

        return run

    monkeypatch.setattr(timer, "_make_clock", flagging_clock)
    measure_interleaved(
        table2._callables(point, encoder, reference),
        warmup=1,
        min_reps=3,
        min_seconds=0.0,
        inference_mode=True,
    )
    layers = len(point["dropped_layers"])
    # every n switches AdapterHub's skip layers: a re-activation per call, all outside the clock
    assert activations == {"outside": 4 * layers, "inside": 0}


@pytest.mark.filterwarnings("ignore::adapterdrop.bench.stats.HighSpreadWarning")
def test_several_processes_probe_peak_memory_once(tmp_path):
    cfg = bench_cfg(
        tmp_path, "table2", "bench.num_tasks=[2]", "bench.dropped_layers=[0,3]", "bench.processes=2"
    )
    (point,) = table2.points(cfg)
    metrics, samples = table2.measure(point)
    peaks = metrics["peak_memory_bytes"]
    assert set(peaks) == {name.split("@process=")[0] for name in samples}
    if any(value is None for value in peaks.values()):
        pytest.skip("no peak-RSS probe on this platform")
    assert all(value > 0 for value in peaks.values())
