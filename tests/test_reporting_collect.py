"""The tidy results table: every result file under results/, provenance first, bad files named."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from adapterdrop.reporting.__main__ import main as make_tables
from adapterdrop.reporting.collect import (
    MAIN_COLLECTION,
    PROVENANCE,
    CollectError,
    collect_results,
)
from adapterdrop.results import make_result, write_result

ENVIRONMENT = {
    "git": {"commit": "0123abcd", "dirty": True},
    "versions": {"python": "3.11.7", "torch": "2.13.0+cpu", "transformers": "4.57.6"}
    | {"adapters": "1.3.0"},
    "cpu": {"model": "AMD EPYC"},
}


def _write(root, experiment, kind="bench", error=None, **config):
    record = make_result(
        experiment=experiment,
        config={"bench": experiment, **config},
        environment=ENVIRONMENT,
        kind=kind,
        metrics={"ours": {"median": 0.5, "n": 3}} if error is None else {},
        samples={"ours": [0.4, 0.5, 0.6]},
        error=error,
    )
    return write_result(record, root)


@pytest.fixture
def results(tmp_path):
    """Two machines (one with a re-run), a failed attempt, and training results."""
    root = tmp_path / "results"
    _write(root / "cpu-a-avx2-2t" / "raw", "table2", num_tasks=[2, 4])
    _write(root / "cpu-a-avx2-2t" / "raw", "table3", num_adapters=8)
    _write(root / "cpu-a-avx2-2t" / "repeat" / "raw", "table2", num_tasks=[2, 4])
    _write(root / "cpu-b-avx512-2t" / "raw", "table2", num_tasks=[2, 4])
    error = {"type": "RuntimeError", "message": "out of memory", "traceback": "..."}
    _write(root / "cpu-b-avx512-2t" / "raw", "table2", error=error, num_tasks=[16])
    _write(root / "raw", "fig2_standard", kind="train", task="glue/rte")
    # Not results: a writer's temporary, a lock, a built table's manifest.
    (root / "cpu-a-avx2-2t" / "raw" / "table2" / ".x.json.tmp").write_text("{")
    (root / "cpu-a-avx2-2t" / "raw" / ".lock").write_text("")
    (root / "cpu-a-avx2-2t" / "tables").mkdir()
    (root / "cpu-a-avx2-2t" / "tables" / "table2.run.json").write_text("{}")
    return root


def test_collect_has_one_row_per_file_with_provenance(results):
    frame = collect_results(results)
    assert list(frame.columns[: len(PROVENANCE)]) == list(PROVENANCE)
    assert len(frame) == 6
    assert not any(c.startswith("samples.") for c in frame.columns)
    places = frame.fillna({"machine": "-"}).groupby(["machine", "collection"]).size()
    by_place = places.to_dict()
    assert by_place == {
        ("cpu-a-avx2-2t", MAIN_COLLECTION): 2,
        ("cpu-a-avx2-2t", "repeat"): 1,
        ("cpu-b-avx512-2t", MAIN_COLLECTION): 2,
        ("-", MAIN_COLLECTION): 1,
    }
    train = frame[frame["kind"] == "train"].iloc[0]
    assert pd.isna(train["machine"]) and train["experiment"] == "fig2_standard"
    failed = frame[frame["status"] == "failed"].iloc[0]
    assert failed["error"] == "RuntimeError: out of memory"
    assert failed["path"].endswith(".failed.json")
    assert set(frame["git_commit"]) == {"0123abcd"} and frame["git_dirty"].all()
    assert set(frame["torch"]) == {"2.13.0+cpu"} and set(frame["adapters"]) == {"1.3.0"}
    assert {"config.num_tasks", "metrics.ours.median", "environment.cpu.model"} <= set(frame)


def test_every_malformed_or_misplaced_file_is_named(results):
    raw = results / "cpu-a-avx2-2t" / "raw"
    truncated = raw / "table2" / "0000000000000000.json"
    truncated.write_text('{"schema_version": 1, "kind"')
    good = next((raw / "table3").glob("*.json"))
    edited = json.loads(good.read_text())
    edited["config"]["num_adapters"] = 16  # the id no longer hashes the config
    tampered = raw / "table3" / good.name
    tampered.write_text(json.dumps(edited))
    stray = raw / "stray.json"
    stray.write_text(good.read_text())
    moved = raw / "table1" / "1111111111111111.json"
    moved.parent.mkdir()
    moved.write_text(next((raw / "table2").glob("[!0]*.json")).read_text())
    with pytest.raises(CollectError) as caught:
        collect_results(results)
    named = {path for path, _ in caught.value.bad}
    assert named == {truncated, tampered, stray, moved}
    message = str(caught.value)
    assert "4 invalid result file(s)" in message
    for path in named:
        assert str(path) in message
    assert "point_id" in message and "not at" in message


def test_make_tables_writes_the_csv_and_refuses_bad_files(results, capsys):
    make_tables(["--root", str(results), "--only", "results"])
    out = results / "results.csv"
    table = pd.read_csv(out)
    assert len(table) == 6 and list(table.columns[:3]) == ["machine", "collection", "kind"]
    assert json.loads(table["config.num_tasks"].dropna().iloc[0]) in ([2, 4], [16])
    assert "cpu-a-avx2-2t/repeat: table2: 1 ok" in capsys.readouterr().out
    out.unlink()
    (results / "raw" / "fig2_standard" / "broken.json").write_text("not json")
    with pytest.raises(SystemExit) as caught:
        make_tables(["--root", str(results), "--only", "results"])
    assert caught.value.code == 1
    assert "broken.json" in capsys.readouterr().err
    assert not out.exists()


def test_no_results_is_an_error(tmp_path):
    assert collect_results(tmp_path).empty
    with pytest.raises(SystemExit, match="no result files"):
        make_tables(["--root", str(tmp_path), "--only", "results"])
