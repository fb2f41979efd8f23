"""Runner: resumable sweeps, forced re-runs, recorded failures, no partial files on Ctrl-C."""

from __future__ import annotations

import json
import time

import pytest

from adapterdrop.bench.runner import run_points
from adapterdrop.bench.stats import summarize
from adapterdrop.bench.timer import measure
from adapterdrop.results import ResultsLocked, load_results, point_id, read_result, result_path

POINTS = [{"model": "tiny", "dropped": n} for n in range(4)]


def fake_env():
    return {"hostname": "test"}


class Recorder:
    """A measure function that remembers which configs it saw."""

    def __init__(self, fail_on=None, interrupt_on=None):
        self.calls: list[dict] = []
        self.fail_on = fail_on
        self.interrupt_on = interrupt_on

    def __call__(self, config):
        self.calls.append(config)
        if config["dropped"] == self.interrupt_on:
            raise KeyboardInterrupt
        if config["dropped"] == self.fail_on:
            raise RuntimeError(f"no memory for {config['dropped']}")
        return {"latency_s": 0.1 * config["dropped"]}, {"latency": [0.1, 0.2]}


def run(tmp_path, measure_fn, points=POINTS, **kw):
    kw.setdefault("progress", False)
    return run_points("exp", points, measure_fn, results_root=tmp_path, environment=fake_env, **kw)


def _files(tmp_path):
    return sorted(p.name for p in (tmp_path / "exp").iterdir() if not p.name.startswith("."))


def test_measures_every_point_and_writes_one_file_each(tmp_path):
    summary = run(tmp_path, Recorder())
    assert len(summary.measured) == 4 and not summary.skipped and not summary.failed
    assert _files(tmp_path) == sorted(f"{point_id(p)}.json" for p in POINTS)
    record = read_result(result_path(tmp_path, "exp", point_id(POINTS[2])))
    assert record["metrics"]["latency_s"] == pytest.approx(0.2)
    assert record["config"] == POINTS[2]
    assert record["environment"] == {"hostname": "test"}


def test_resume_skips_measured_points_and_force_redoes_them(tmp_path):
    run(tmp_path, Recorder(), points=POINTS[:2])
    again = Recorder()
    summary = run(tmp_path, again)
    assert [c["dropped"] for c in again.calls] == [2, 3]
    assert summary.skipped == [point_id(p) for p in POINTS[:2]]
    forced = Recorder()
    summary = run(tmp_path, forced, force=True)
    assert len(forced.calls) == 4 and len(summary.measured) == 4


def test_corrupt_results_are_remeasured(tmp_path):
    run(tmp_path, Recorder())
    paths = [result_path(tmp_path, "exp", point_id(p)) for p in POINTS]
    text = paths[0].read_text()
    paths[0].write_text(text[: len(text) // 3])  # truncated
    record = json.loads(paths[1].read_text())
    del record["samples"]
    paths[1].write_text(json.dumps(record))  # missing key
    record = json.loads(paths[2].read_text())
    record["schema_version"] = 0
    paths[2].write_text(json.dumps(record))  # old schema
    again = Recorder()
    summary = run(tmp_path, again)
    assert [c["dropped"] for c in again.calls] == [0, 1, 2]
    assert summary.skipped == [point_id(POINTS[3])]
    assert all(read_result(p)["status"] == "ok" for p in paths)


def test_failure_is_recorded_and_sweep_continues(tmp_path):
    summary = run(tmp_path, Recorder(fail_on=1))
    assert summary.failed == [point_id(POINTS[1])]
    assert len(summary.measured) == 3
    record = read_result(result_path(tmp_path, "exp", point_id(POINTS[1]), "failed"))
    assert record["status"] == "failed"
    assert record["error"]["type"] == "RuntimeError"
    assert record["error"]["message"] == "no memory for 1"
    assert "Traceback" in record["error"]["traceback"]
    retry = Recorder()
    run(tmp_path, retry)
    assert [c["dropped"] for c in retry.calls] == [1]  # failed points are retried


def test_raise_on_error_records_then_reraises(tmp_path):
    with pytest.raises(RuntimeError, match="no memory"):
        run(tmp_path, Recorder(fail_on=0), raise_on_error=True)
    assert _files(tmp_path) == [f"{point_id(POINTS[0])}.failed.json"]


def test_invalid_measurement_output_is_a_failure_not_a_crash(tmp_path):
    summary = run(tmp_path, lambda config: ({"x": object()}, {}), points=POINTS[:1])
    assert summary.failed == [point_id(POINTS[0])]


def test_keyboard_interrupt_leaves_no_partial_file(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, Recorder(interrupt_on=2))
    assert _files(tmp_path) == sorted(f"{point_id(p)}.json" for p in POINTS[:2])


def test_bad_points_fail_before_any_work(tmp_path):
    rec = Recorder()
    with pytest.raises(ValueError, match="point 1"):
        run(tmp_path, rec, points=[POINTS[0], {"dropped": 1, "fn": object()}])
    with pytest.raises(ValueError, match="same config"):
        run(tmp_path, rec, points=[POINTS[0], dict(POINTS[0])])
    with pytest.raises(ValueError, match="kind"):
        run(tmp_path, rec, kind="timing")
    assert rec.calls == []
    assert not (tmp_path / "exp").exists()


def test_measure_cannot_change_the_recorded_config(tmp_path):
    def mutating(config):
        config["dropped"] = 99
        return {}, {}

    run(tmp_path, mutating, points=POINTS[:1])
    assert read_result(result_path(tmp_path, "exp", point_id(POINTS[0])))["config"] == POINTS[0]


def test_end_to_end_with_real_timer_and_environment(tmp_path):
    def measure_point(config):
        samples = measure(
            lambda: time.sleep(config["sleep_s"]), warmup=1, min_reps=5, min_seconds=0.0
        )
        return {"latency": summarize(samples)}, {"latency": samples}

    points = [{"sleep_s": 0.001}, {"sleep_s": 0.002}]
    summary = run_points("sleep", points, measure_point, results_root=tmp_path, progress=True)
    assert len(summary.measured) == 2
    df = load_results(tmp_path, "sleep", strict=True)
    assert sorted(df["config.sleep_s"]) == [0.001, 0.002]
    assert (df["metrics.latency.n"] == 5).all()
    assert "environment.git.commit" in df.columns
    assert df["environment.timestamp_utc"].notna().all()
    assert str(summary) == "measured 2, skipped 0, failed 0"


def test_force_and_a_transient_failure_keep_the_good_result(tmp_path):
    run(tmp_path, Recorder())
    good = read_result(result_path(tmp_path, "exp", point_id(POINTS[1])))
    summary = run(tmp_path, Recorder(fail_on=1), force=True)
    assert summary.failed == [point_id(POINTS[1])]
    assert read_result(result_path(tmp_path, "exp", point_id(POINTS[1]))) == good
    retry = Recorder()
    assert run(tmp_path, retry).skipped == [point_id(p) for p in POINTS]  # the success stands
    assert retry.calls == []


def test_a_temporary_left_by_a_killed_write_is_removed_by_the_next_run(tmp_path):
    orphan = tmp_path / "exp" / f".{point_id(POINTS[0])}.json.abc123.tmp"
    orphan.parent.mkdir(parents=True)
    orphan.write_text('{"half":')
    run(tmp_path, Recorder(), points=POINTS[:1])
    assert not orphan.exists()


def test_a_second_run_on_the_same_folder_is_refused_before_measuring(tmp_path):
    inner = Recorder()

    def measure_while_another_run_starts(config):
        with pytest.raises(ResultsLocked, match="in use by pid"):
            run(tmp_path, inner)
        return {"latency_s": 0.1}, {}

    assert len(run(tmp_path, measure_while_another_run_starts, points=POINTS[:1]).measured) == 1
    assert inner.calls == []
