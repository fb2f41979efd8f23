"""Result schema: stable ids, atomic writes, and every kind of bad file detected and named."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
import warnings

import numpy as np
import pytest

from adapterdrop import results
from adapterdrop.bench.stats import summarize
from adapterdrop.reporting.tables import load_ok_results
from adapterdrop.results import (
    SCHEMA_VERSION,
    ResultError,
    ResultsLocked,
    atomic_write_text,
    flatten_result,
    is_measured,
    load_results,
    locked,
    make_result,
    point_id,
    read_result,
    remove_orphan_temporaries,
    result_path,
    validate_result,
    write_result,
)

ENV = {"hostname": "test"}
CONFIG = {"model": {"name": "bert-base", "layers": 12}, "tasks": 4, "dropped": 3}


def _ok(config=CONFIG, experiment="exp", **kw):
    kw.setdefault("metrics", {"latency": summarize([0.1, 0.11, 0.1]), "speedup": 1.2})
    kw.setdefault("samples", {"latency": [0.1, 0.11, 0.1]})
    return make_result(experiment=experiment, config=config, environment=ENV, **kw)


def test_point_id_is_sha256_of_canonical_json():
    config = {"b": [1, 2], "a": 1}
    expected = hashlib.sha256(b'{"a":1,"b":[1,2]}').hexdigest()[:16]
    assert point_id(config) == expected
    assert point_id({"a": 1, "b": (1, 2)}) == expected  # tuples are JSON arrays
    assert point_id({"a": np.int64(1), "b": [1, 2]}) == expected
    assert point_id({"a": 2, "b": [1, 2]}) != expected


@pytest.mark.parametrize("config", [{"x": float("nan")}, {"x": object()}, {1: "int key"}])
def test_point_id_rejects_non_json_config(config):
    with pytest.raises((TypeError, ValueError)):
        point_id(config)


def test_roundtrip_and_path(tmp_path):
    record = _ok()
    path = write_result(record, tmp_path)
    assert path == tmp_path / "exp" / f"{point_id(CONFIG)}.json"
    loaded = read_result(path)
    assert loaded == record
    assert loaded["schema_version"] == SCHEMA_VERSION
    assert loaded["metrics"]["latency"]["n"] == 3
    assert list(path.parent.iterdir()) == [path]  # no temporary left behind


def test_metrics_are_made_json_safe():
    record = _ok(metrics={"a": np.float32(0.5), "b": float("nan"), "arr": np.arange(2)})
    assert record["metrics"] == {"a": 0.5, "b": None, "arr": [0, 1]}


def test_artefact_paths_are_kept_beside_the_config_and_flattened(tmp_path):
    record = _ok(kind="eval", artefacts={"adapter": tmp_path / "a"})
    assert record["artefacts"] == {"adapter": str(tmp_path / "a")}
    assert record["point_id"] == point_id(CONFIG)  # where a file is is not what was computed
    assert read_result(write_result(record, tmp_path)) == record
    assert flatten_result(record)["artefacts.adapter"] == str(tmp_path / "a")
    assert "artefacts" not in _ok()


def test_failed_result_carries_error():
    error = {"type": "RuntimeError", "message": "boom", "traceback": "..."}
    record = make_result(experiment="exp", config=CONFIG, environment=ENV, error=error)
    assert record["status"] == "failed" and record["error"] == error


@pytest.mark.parametrize(
    "mutate",
    [
        lambda r: r.pop("metrics"),
        lambda r: r.update(schema_version=SCHEMA_VERSION + 1),
        lambda r: r.update(schema_version=True),
        lambda r: r.update(kind="evaluation"),
        lambda r: r.update(artefacts={"adapter": 3}),
        lambda r: r.update(artefacts=["outputs/adapters/x"]),
        lambda r: r.update(status="done"),
        lambda r: r.update(point_id="0" * 16),
        lambda r: r["config"].update(tasks=8),
        lambda r: r["samples"].update(latency=[0.1, "x"]),
        lambda r: r["samples"].update(latency=[float("nan")]),
        lambda r: r.update(status="failed"),
        lambda r: r.update(error={"type": "E", "message": "m", "traceback": "t"}),
    ],
)
def test_validation_catches_schema_breaks(mutate):
    record = _ok()
    mutate(record)
    with pytest.raises(ResultError):
        validate_result(record)


def _write_raw(tmp_path, text, name=None):
    path = result_path(tmp_path, "exp", name or point_id(CONFIG))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_is_measured_only_for_valid_ok_files(tmp_path):
    pid = point_id(CONFIG)
    assert not is_measured(tmp_path, "exp", pid)
    write_result(_ok(), tmp_path)
    assert is_measured(tmp_path, "exp", pid)


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda text: text[: len(text) // 2],  # half-written
        lambda text: "",
        lambda text: json.dumps({k: v for k, v in json.loads(text).items() if k != "samples"}),
        lambda text: text.replace(f'"schema_version": {SCHEMA_VERSION}', '"schema_version": 0'),
        lambda text: "[]",
    ],
    ids=["truncated", "empty", "missing-key", "old-schema", "not-an-object"],
)
def test_corrupt_file_is_not_measured_and_is_named(tmp_path, corrupt):
    path = write_result(_ok(), tmp_path)
    path.write_text(corrupt(path.read_text()))
    assert not is_measured(tmp_path, "exp", point_id(CONFIG))
    with pytest.raises(ResultError, match=path.name):
        read_result(path)


def test_failed_point_is_not_measured(tmp_path):
    error = {"type": "E", "message": "m", "traceback": "t"}
    record = make_result(experiment="exp", config=CONFIG, environment=ENV, error=error)
    write_result(record, tmp_path)
    assert not is_measured(tmp_path, "exp", point_id(CONFIG))


def test_file_under_the_wrong_name_is_invalid(tmp_path):
    path = write_result(_ok(), tmp_path)
    moved = path.with_name("0123456789abcdef.json")
    path.rename(moved)
    with pytest.raises(ResultError, match="not its path"):
        read_result(moved)


def test_atomic_write_leaves_old_content_on_interrupt(tmp_path, monkeypatch):
    target = tmp_path / "t.json"
    atomic_write_text(target, "old")

    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(results.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_text(target, "new")
    monkeypatch.setattr(results.os, "replace", os.replace)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["t.json"]


def test_load_results_flattens_one_row_per_point(tmp_path):
    for dropped in (0, 3):
        write_result(_ok(config={**CONFIG, "dropped": dropped}), tmp_path)
    write_result(_ok(experiment="other"), tmp_path)
    df = load_results(tmp_path)
    assert len(df) == 3 and df.attrs["bad_files"] == []
    one = load_results(tmp_path, "exp")
    assert sorted(one["config.dropped"]) == [0, 3]
    assert set(one["config.model.name"]) == {"bert-base"}
    assert one["metrics.latency.median"].tolist() == [0.1, 0.1]
    assert one["metrics.speedup"].tolist() == [1.2, 1.2]
    assert one["samples.latency"].iloc[0] == [0.1, 0.11, 0.1]
    assert set(one["environment.hostname"]) == {"test"}


def test_load_results_strict_raises_naming_the_file(tmp_path):
    write_result(_ok(), tmp_path)
    bad = _write_raw(tmp_path, '{"schema_version": 1', name="ffffffffffffffff")
    with pytest.raises(ResultError, match=bad.name):
        load_results(tmp_path, strict=True)


def test_load_results_lenient_skips_and_lists_bad_files(tmp_path):
    write_result(_ok(), tmp_path)
    bad = _write_raw(tmp_path, "not json", name="ffffffffffffffff")
    with pytest.warns(UserWarning, match=bad.name):
        df = load_results(tmp_path)
    assert len(df) == 1
    assert [p for p, _ in df.attrs["bad_files"]] == [str(bad)]


def test_load_results_ignores_temporaries_and_handles_empty(tmp_path):
    (tmp_path / "exp").mkdir()
    (tmp_path / "exp" / ".abc.json.x.tmp").write_text("{")
    df = load_results(tmp_path)
    assert df.empty and "point_id" in df.columns


@pytest.mark.parametrize("name", ["", "a/b", ".hidden"])
def test_experiment_must_be_a_plain_name(tmp_path, name):
    with pytest.raises(ValueError):
        result_path(tmp_path, name, "x")


def _failed(config: dict = CONFIG) -> dict:
    error = {"type": "ImportError", "message": "transient", "traceback": "t"}
    return make_result(experiment="exp", config=config, environment=ENV, error=error)


def test_a_failure_never_replaces_a_success_and_a_success_clears_the_failure(tmp_path):
    good = write_result(_ok(), tmp_path)
    failed = write_result(_failed(), tmp_path)
    assert failed.name == f"{point_id(CONFIG)}.failed.json" and good.exists()
    assert is_measured(tmp_path, "exp", point_id(CONFIG))
    assert read_result(good)["status"] == "ok" and read_result(failed)["status"] == "failed"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a superseded failure is no missing point
        ok = load_ok_results(tmp_path, "exp")
    assert ok["status"].tolist() == ["ok"]
    write_result(_ok(), tmp_path)
    assert not failed.exists()


def test_a_point_that_only_failed_is_named_when_left_out_of_a_table(tmp_path):
    write_result(_failed(), tmp_path)
    with pytest.warns(UserWarning, match=f"exp/{point_id(CONFIG)}"):
        assert load_ok_results(tmp_path, "exp").empty


def test_result_files_get_the_umask_mode(tmp_path):
    old = os.umask(0o022)
    try:
        path = write_result(_ok(), tmp_path)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_orphan_temporaries_are_removed_only_for_the_given_stem(tmp_path):
    (tmp_path / ".abc.json.x1.tmp").write_text("{")
    (tmp_path / ".other.json.x2.tmp").write_text("{")
    removed = remove_orphan_temporaries(tmp_path, "abc")
    assert [p.name for p in removed] == [".abc.json.x1.tmp"]
    assert [p.name for p in tmp_path.iterdir()] == [".other.json.x2.tmp"]


def test_a_second_holder_of_a_results_lock_is_refused_naming_the_first(tmp_path):
    script = (
        "import sys, time; from adapterdrop.results import locked\n"
        f"with locked({str(tmp_path)!r}):\n    print('held', flush=True); time.sleep(30)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(ResultsLocked, match=f"in use by pid {holder.pid}"), locked(tmp_path):
            pass
    finally:
        holder.kill()
        holder.wait()
    with locked(tmp_path):  # the kernel released the dead holder's lock
        pass
