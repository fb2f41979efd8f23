"""The efficiency benchmark end to end on the tiny model: every study writes raw JSON with its
environment and builds its tables; bad grids fail before any model is built."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from adapterdrop.bench.experiments import get_experiment
from adapterdrop.bench.experiments.efficiency_drop import mean_of_medians_speedup
from adapterdrop.bench.sweep import run_benchmark
from conftest import bench_cfg

#: A tiny grid: 4 layers, short sequences, two timed rounds per callable, one thread (a
#: model this small gains nothing from more, and idle threads spin when the cores are shared).
TINY = [
    "bench.seq_len=16",
    "bench.specialized.dropped_layers=[0,2]",
    "bench.coda.seq_lens=[16,48]",
    "bench.coda.frozen_target.seq_len=48",
    "bench.multitask.num_tasks=[2,3]",
    "bench.overheads.inference_processes=1",  # several processes: test_bench_table1
]


def efficiency_cfg(tmp_path, *extra: str, base: list[str] = TINY) -> dict:
    return bench_cfg(tmp_path, "efficiency", *base, *extra)


def table(tmp_path, name: str) -> pd.DataFrame:
    return pd.read_csv(tmp_path / "tables" / f"{name}.csv")


def test_every_study_writes_raw_points_and_tables(tmp_path):
    summary, tables = run_benchmark(efficiency_cfg(tmp_path))
    # robust 1, specialized 1, coda 2 seq lens, overheads 2 phases, multitask 2 K x 2 phases
    assert len(summary.measured) == 10 and not summary.failed
    files = sorted((tmp_path / "raw" / "efficiency").glob("*.json"))
    assert len(files) == 10
    records = [json.loads(f.read_text()) for f in files]
    assert all(r["status"] == "ok" and r["environment"]["cpu"] for r in records)
    studies = {r["config"]["study"] for r in records}
    assert studies == {"robust", "specialized", "coda", "overheads", "multitask"}
    assert set(tables) == {
        "efficiency_robust",
        "efficiency_robust_curve",
        "efficiency_specialized",
        "efficiency_coda",
        "efficiency_overheads",
        "efficiency_multitask_training",
        "efficiency_multitask_inference",
    }

    robust = table(tmp_path, "efficiency_robust")
    assert list(robust["source"]) == ["ours", "paper"]
    assert robust["robust_faster_%"].iloc[1] == pytest.approx(26)
    assert robust["robust_speedup"].iloc[0].count("[") == 1  # estimate with its CI
    assert list(table(tmp_path, "efficiency_robust_curve")["dropped_layers"]) == [0, 1, 2, 3]
    specialized = table(tmp_path, "efficiency_specialized")
    assert list(specialized["dropped_layers"]) == [0, 2] and "speed_vs_n0" in specialized

    coda = table(tmp_path, "efficiency_coda")
    ours = coda[coda["source"] == "ours"]
    assert list(zip(ours["seq_len"], ours["token_ratio"], strict=True)) == [
        (s, r) for s in (16, 48) for r in (1, 3, 5)
    ]
    assert {"speed_vs_dense_r1", "speed_vs_pfeiffer", "frozen_only_speedup"} <= set(coda)
    target = coda[coda["frozen_target"].notna()]
    assert list(zip(target["seq_len"], target["token_ratio"], strict=True)) == [(48, 3)]
    assert list(coda["source"]).count("paper") == 1

    overheads = table(tmp_path, "efficiency_overheads")
    assert list(overheads["method"])[1:5] == ["adapterbias", "houlsby", "lora", "pfeiffer"]
    assert {"training_speed_vs_full", "inference_speed_vs_plain"} <= set(overheads)
    assert overheads["trainable_params"].iloc[0] > overheads["trainable_params"].iloc[1]

    training = table(tmp_path, "efficiency_multitask_training")
    assert list(training["num_tasks"]) == [2, 2, 2, 3, 3, 3]
    assert training["note"].str.contains("time to convergence").all()
    full, multi = (training[training["timed_as"] == t] for t in ("K x full_step", "multitask_step"))
    assert (full["stored_params"].to_numpy() > multi["stored_params"].to_numpy()).all()
    inference = table(tmp_path, "efficiency_multitask_inference")
    assert len(inference) == 2 * 4 and "speed_vs_k_full" in inference


def test_one_study_alone_and_resume(tmp_path):
    cfg = efficiency_cfg(tmp_path, "bench.studies=[specialized]")
    first, tables = run_benchmark(cfg)
    again, _ = run_benchmark(cfg)
    assert len(first.measured) == 1 and len(again.skipped) == 1 and not again.measured
    assert set(tables) == {"efficiency_specialized"}


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("bench.studies=[robust,nope]", "bench.studies"),
        ("bench.robust.max_n=4", "max_n=4 impossible"),
        ("bench.specialized.dropped_layers=[2,3]", "must include 0"),
        ("bench.specialized.dropped_layers=[0,7]", "dropped_layers 7 impossible"),
        ("bench.coda.token_ratios=[3,5]", "must include 1"),
        ("bench.coda.token_ratios=[1,0.5]", "token_ratio must be >= 1"),
        ("bench.coda.seq_lens=[600]", "bench.coda.seq_lens 600 impossible"),
        ("bench.overheads.phases=[inference,serve]", "bench.overheads.phases"),
        ("+bench.overheads.methods.ft.name=full", "not allowed"),
        ("+bench.overheads.methods.lora.rank=8", "has no option"),
        ("bench.overheads.inference_processes=0", "bench.overheads.inference_processes"),
        ("bench.multitask.num_tasks=[0]", "num_tasks must be >= 1"),
        ("+bench.adapter.reduction=2", "has no option"),
    ],
)
def test_bad_grid_is_refused_before_any_model_is_built(tmp_path, override, message):
    cfg = efficiency_cfg(tmp_path, override)
    with pytest.raises(ValueError, match=message):
        get_experiment("efficiency").points(cfg)


def test_paper_preset_widens_the_grids(tmp_path):
    cfg = efficiency_cfg(tmp_path, "preset=paper", base=["bench=efficiency"])
    # The preset's values yield to the command line (TINY_BENCH's dtype=fp32), as any config's.
    assert cfg["dtype"] == "fp32" and cfg["bench"]["specialized"]["dropped_layers"] == "all"
    points = get_experiment("efficiency").points(cfg)
    specialized = next(p for p in points if p["study"] == "specialized")
    layers = cfg["model"]["architecture"]["num_hidden_layers"]
    assert specialized["dropped_layers"] == list(range(layers))
    assert len([p for p in points if p["study"] == "coda"]) == 3


def test_mean_of_medians_speedup_is_the_expected_cost_ratio():
    base = [4.0, 4.0, 4.0]
    ci = mean_of_medians_speedup(base, [[4.0, 4.0, 4.0], [2.0, 2.0, 2.0]])
    assert ci.ratio == pytest.approx(4 / 3) and ci.low == ci.high == pytest.approx(4 / 3)
    with pytest.raises(ValueError, match="paired samples"):
        mean_of_medians_speedup(base, [[1.0, 2.0]])
