"""scripts/malformed_inputs.py (make check-failures): what it reads from a run's output and
what it counts as written. The battery itself runs for minutes, so it is run by hand."""

from __future__ import annotations

import importlib.util
import json
import sys

from conftest import REPO

SPEC = importlib.util.spec_from_file_location("malformed", REPO / "scripts" / "malformed_inputs.py")
battery = importlib.util.module_from_spec(SPEC)
sys.modules["malformed"] = battery  # its dataclasses look their module up there
SPEC.loader.exec_module(battery)


def test_the_first_line_is_the_exception_or_each_failed_job():
    traceback = (
        "Error executing job with overrides: ['x=1']\nTraceback (most recent call last):\n"
        '  File "a.py", line 1\n    raise DataError(message)\n'
        "adapterdrop.data.errors.DataError: /d/dev.tsv:1: the file is empty\n"
        "Set the environment variable HYDRA_FULL_ERROR=1 for a complete stack trace.\n"
    )
    assert battery.first_line(traceback) == "DataError: /d/dev.tsv:1: the file is empty"
    sweep = (
        "[2026-12-01 17:01:50,006][adapterdrop.cli.jobs][ERROR] - job 2 failed: ...\n"
        "2 of 3 job(s) failed:\n  job 1 (optim.lr=-1 model=tiny): ValueError: lr -1\n"
        "  job 2 (optim.lr=-2 model=tiny): ValueError: lr -2\n"
    )
    assert battery.first_line(sweep) == (
        "2 of 3 job(s) failed: job 1: ValueError: lr -1; job 2: ValueError: lr -2"
    )
    hydra = "In 'train': Could not find 'method/nope'\n\nAvailable options in 'method':\n"
    assert battery.first_line(hydra) == "In 'train': Could not find 'method/nope'"


def test_written_tells_nothing_failed_records_and_results_apart(tmp_path):
    assert battery.written(tmp_path / "absent") == ("nothing", 0)
    raw = tmp_path / "raw" / "train"
    raw.mkdir(parents=True)
    (raw / ".abc.lock").write_text("")
    assert battery.written(tmp_path) == ("nothing", 0)  # a lock is no output
    (raw / "abc.failed.json").write_text(json.dumps({"status": "failed"}))
    assert battery.written(tmp_path) == ("failed record only", 0)
    (raw / "def.json").write_text(json.dumps({"status": "ok"}))
    wrote, successes = battery.written(tmp_path)
    assert wrote.startswith("result (1 success record(s)") and successes == 1


def test_the_battery_has_at_least_30_inputs_and_each_names_its_app(tmp_path, monkeypatch):
    data = tmp_path / "shared"
    (data / "glue" / "RTE").mkdir(parents=True)
    for split in ("train.tsv", "dev.tsv"):
        (data / "glue" / "RTE" / split).write_text("index\tsentence1\tsentence2\tlabel\n")
    monkeypatch.setenv("ADAPTERDROP_DATA_DIR", str(data))
    cases = battery.cases(tmp_path / "base")
    assert len(cases) >= 30 and len({(c.app, c.label) for c in cases}) == len(cases)
    assert {c.app for c in cases} == {"bench", "train", "eval", "check-data"}
