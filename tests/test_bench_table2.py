"""Table 2 end to end on the tiny model: points, raw JSON with environment, tables, resume."""

from __future__ import annotations

import json
import statistics

import pandas as pd
import pytest
from hydra.errors import MissingConfigException

from adapterdrop.bench.experiments import get_experiment
from adapterdrop.bench.experiments.table2 import measured_floor
from adapterdrop.bench.sweep import run_benchmark
from conftest import bench_cfg


def table2_cfg(tmp_path, *extra: str) -> dict:
    # several processes: test_ratios_are_medians_over_fresh_processes
    return bench_cfg(tmp_path, "table2", "bench.num_tasks=[2,3]", "bench.processes=1", *extra)


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


@pytest.mark.filterwarnings("ignore::adapterdrop.bench.stats.HighSpreadWarning")
def test_ratios_are_medians_over_fresh_processes(tmp_path):
    cfg = table2_cfg(tmp_path, "bench.num_tasks=[2]", "bench.dropped_layers=[0,3]")
    summary, _ = run_benchmark({**cfg, "bench": {**cfg["bench"], "processes": 2}})
    assert len(summary.measured) == 1 and not summary.failed
    (path,) = (tmp_path / "raw" / "table2").glob("*.json")
    record = json.loads(path.read_text())
    assert record["config"]["processes"] == 2 and record["metrics"]["processes"] == 2
    names = {f"{i}@n={n}" for i in ("ours", "adapterhub") for n in (0, 3)}
    names |= {"plain_single", "plain_replicated"}
    assert set(record["samples"]) == {f"{n}@process={k}" for n in names for k in (0, 1)}
    samples = record["samples"]
    n3 = record["metrics"]["per_n"]["3"]
    ratio = n3["adapterhub_over_ours"]
    assert ratio["low"] <= ratio["ratio"] <= ratio["high"]
    median = statistics.median
    per_process = [
        median(samples[f"ours@n=3@process={k}"])
        / measured_floor(
            3,
            t_single=median(samples[f"plain_single@process={k}"]),
            t_replicated=median(samples[f"plain_replicated@process={k}"]),
            num_layers=cfg["model"]["architecture"]["num_hidden_layers"],
        )
        for k in (0, 1)
    ]
    assert n3["ours_over_measured_floor"] == pytest.approx(median(per_process))


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
        ("bench.processes=0", "bench.processes must be an int >= 1"),
    ],
)
def test_bad_grid_is_refused_before_any_model_is_built(tmp_path, override, message):
    cfg = table2_cfg(tmp_path, override)
    with pytest.raises(ValueError, match=message):
        get_experiment("table2").points(cfg)


def test_paper_preset_merges_paper_settings(tmp_path):
    cfg = table2_cfg(tmp_path, "preset=paper")
    assert cfg["bench"]["batch_size"] == 32 and cfg["preset"] == "paper"
    # The preset is a config file under the command line: its fp16 yields to TINY_BENCH's fp32.
    assert cfg["dtype"] == "fp32" and cfg["bench"]["processes"] == 1
    choices = r"preset/table2/gpu'\n\nAvailable options in 'preset/table2':\n\tcpu\n\tfull\n\tpaper"
    with pytest.raises(MissingConfigException, match=choices):
        table2_cfg(tmp_path, "preset=gpu")
