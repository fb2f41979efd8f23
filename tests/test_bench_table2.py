"""Table 2 end to end on the tiny model: points, raw JSON with environment, tables, resume."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from adapterdrop.bench.experiments import get_experiment
from adapterdrop.bench.sweep import apply_preset, run_benchmark
from conftest import bench_cfg


def table2_cfg(tmp_path, *extra: str) -> dict:
    return bench_cfg(tmp_path, "table2", "bench.num_tasks=[2,3]", *extra)


def test_table2_writes_raw_points_and_tables(tmp_path):
    cfg = table2_cfg(tmp_path)
    summary, tables = run_benchmark(cfg)
    layers = cfg["model"]["architecture"]["num_hidden_layers"]
    assert len(summary.measured) == 2 and not summary.failed
    files = sorted((tmp_path / "raw" / "table2").glob("*.json"))
    assert len(files) == 2
    record = json.loads(files[0].read_text())
    assert record["status"] == "ok" and record["environment"]["cpu"]
    every_n = {f"{impl}@n={n}" for impl in ("ours", "adapterhub") for n in range(layers)}
    assert set(record["samples"]) == every_n | {"plain_single", "plain_replicated"}
    assert len({len(s) for s in record["samples"].values()}) == 1  # same rounds for all
    curve = pd.read_csv(tmp_path / "tables" / "table2_curve.csv")
    assert len(curve) == 2 * layers and curve["ours_over_floor"].notna().all()
    assert {"table2", "table2_curve"} <= set(tables)
    table = (tmp_path / "tables" / "table2.csv").read_text().splitlines()
    assert table[0].startswith("num_tasks,") and len(table) == 3
    assert "ours_per_layer_%" in table[0] and "ideal_per_layer_%" in table[0]
    assert "adapterhub_faster_points" in table[0]
    curve = (tmp_path / "tables" / "table2_curve.csv").read_text().splitlines()[0]
    assert "adapterhub_over_ours_ci_low" in curve and "adapterhub_over_ours_ci_high" in curve


def test_rerun_skips_measured_points_and_force_redoes_them(tmp_path):
    cfg = table2_cfg(tmp_path, "bench.num_tasks=[2]", "bench.dropped_layers=[0,3]")
    first, _ = run_benchmark(cfg)
    again, _ = run_benchmark(cfg)
    assert len(first.measured) == 1 and len(again.skipped) == 1 and not again.measured
    forced, _ = run_benchmark({**cfg, "force": True})
    assert len(forced.measured) == 1


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("bench.dropped_layers=[0,4]", "dropped_layers 4"),
        ("bench.num_tasks=[0]", "num_tasks must be >= 1"),
        ("bench.implementations=[ours,nope]", "unknown implementation"),
        ("dtype=fp8", "unknown dtype 'fp8'"),
    ],
)
def test_bad_grid_is_refused_before_any_model_is_built(tmp_path, override, message):
    cfg = apply_preset(table2_cfg(tmp_path, override))
    with pytest.raises(ValueError, match=message):
        get_experiment("table2").points(cfg)


def test_paper_preset_merges_paper_settings(tmp_path):
    cfg = apply_preset(table2_cfg(tmp_path, "preset=paper"))
    assert cfg["bench"]["batch_size"] == 32 and cfg["dtype"] == "fp16"
    assert "presets" not in cfg["bench"] and cfg["preset"] == "paper"
    with pytest.raises(ValueError, match="unknown preset 'gpu'"):
        apply_preset(table2_cfg(tmp_path, "preset=gpu"))
