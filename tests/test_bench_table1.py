"""Table 1 end to end on the tiny model: points, interleaved measurement, tables."""

from __future__ import annotations

import json

import pytest

from adapterdrop.bench.experiments import table1
from adapterdrop.bench.sweep import run_benchmark
from conftest import bench_cfg


def tiny(tmp_path, *extra: str) -> dict:
    return bench_cfg(
        tmp_path,
        "table1",
        "bench.seq_len=[8]",
        "bench.batch_size=[1,2]",
        "bench.inference_processes=1",
        *extra,
    )


@pytest.mark.filterwarnings("ignore::adapterdrop.bench.stats.HighSpreadWarning")
def test_table1_runs_end_to_end(tmp_path):
    summary, markdown = run_benchmark(tiny(tmp_path))
    assert len(summary.measured) == 4 and not summary.failed
    files = sorted((tmp_path / "raw" / "table1").glob("*.json"))
    assert len(files) == 4
    record = json.loads(files[0].read_text())
    assert record["status"] == "ok" and record["environment"]
    assert set(record["samples"]) == {
        "full",
        "ours_pfeiffer",
        "ours_houlsby",
        "adapterhub_pfeiffer",
        "adapterhub_houlsby",
    }
    assert set(markdown) == {"table1", "table1_summary"}
    cells = (tmp_path / "tables" / "table1.csv").read_text().splitlines()
    assert cells[0].split(",")[:5] == ["phase", "implementation", "method", "seq_len", "batch_size"]
    assert len(cells) == 1 + 2 * 2 * 2 * 2  # phases x implementations x methods x batch sizes
    summary_rows = markdown["table1_summary"].splitlines()[2:]
    assert len(summary_rows) == 2 * 2 * 2
    assert "paper_speed_max" in markdown["table1_summary"]
    # a second run finds every point measured
    again, _ = run_benchmark(tiny(tmp_path))
    assert len(again.skipped) == 4 and not again.measured


@pytest.mark.parametrize(
    "override, message",
    [
        ("bench.methods=[pfeiffer,lora]", "methods"),
        ("bench.implementations=[ours,peft]", "implementations"),
        ("bench.phases=[]", "phases"),
        ("bench.seq_len=[1024]", "seq_len"),
        ("bench.batch_size=[0]", "batch_size"),
        ("bench.reduction_factor=0", "reduction_factor"),
        ("bench.inference_processes=0", "inference_processes"),
    ],
)
def test_bad_grids_fail_before_any_model(tmp_path, override, message):
    with pytest.raises(ValueError, match=message):
        table1.points(tiny(tmp_path, override))


@pytest.mark.filterwarnings("ignore::adapterdrop.bench.stats.HighSpreadWarning")
def test_inference_cells_can_be_measured_in_several_fresh_processes(tmp_path):
    cfg = tiny(
        tmp_path,
        "bench.phases=[inference]",
        "bench.batch_size=[1]",
        "bench.implementations=[ours]",
        "bench.inference_processes=2",
    )
    summary, _ = run_benchmark(cfg)
    assert len(summary.measured) == 1 and not summary.failed
    (path,) = (tmp_path / "raw" / "table1").glob("*.json")
    record = json.loads(path.read_text())
    assert record["config"]["processes"] == 2 and record["metrics"]["processes"] == 2
    names = ("full", "ours_pfeiffer", "ours_houlsby")
    assert set(record["samples"]) == {f"{n}@process={k}" for n in names for k in (0, 1)}
    pooled = record["metrics"]["full"]["n"]
    assert pooled == sum(len(record["samples"][f"full@process={k}"]) for k in (0, 1))
    speed = record["metrics"]["speed"]["ours"]["pfeiffer"]
    assert speed["low"] <= speed["ratio"] <= speed["high"]
    cells = (tmp_path / "tables" / "table1.csv").read_text().splitlines()
    header = cells[0].split(",")
    assert {row.split(",")[header.index("processes")] for row in cells[1:]} == {"2"}
