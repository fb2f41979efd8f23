"""Table 3 end to end on the tiny model: fusion vs full FT / one adapter, pruning, tables."""

from __future__ import annotations

import json

import pytest

from adapterdrop.bench.experiments import table3
from adapterdrop.bench.sweep import run_benchmark
from conftest import bench_cfg


def tiny(tmp_path, *extra: str) -> dict:
    return bench_cfg(
        tmp_path,
        "table3",
        "bench.num_adapters=[2,3]",
        "bench.prune.adapters=3",
        "bench.prune.keep=1",
        "bench.batch_size=2",
        "bench.seq_len=8",
        *extra,
    )


@pytest.mark.filterwarnings("ignore::adapterdrop.bench.stats.HighSpreadWarning")
def test_table3_runs_end_to_end(tmp_path):
    summary, markdown = run_benchmark(tiny(tmp_path))
    assert len(summary.measured) == 4 and not summary.failed
    records = [json.loads(p.read_text()) for p in (tmp_path / "raw" / "table3").glob("*.json")]
    assert len(records) == 4 and all(r["status"] == "ok" and r["environment"] for r in records)
    pruned = next(
        r for r in records if r["config"]["phase"] == "inference" and r["config"]["prune_to"]
    )
    assert set(pruned["samples"]) == {
        "full",
        *(f"{impl}_{setup}" for impl in ("ours", "adapterhub") for setup in table3.SETUPS),
    }
    assert len(pruned["metrics"]["pruned_kept"]) == 1
    assert set(markdown) == {"table3", "table3_detail", "table3_pruning", "table3_vs_adapterhub"}
    main = markdown["table3"].splitlines()
    assert main[0].split("|")[1:-1] == [
        " num_adapters ",
        " source     ",
        " training_vs_full ",
        " inference_vs_full ",
        " training_vs_adapter ",
        " inference_vs_adapter ",
    ]
    assert [line.split("|")[2].strip() for line in main[2:]] == ["ours", "adapterhub", "paper"] + [
        "ours",
        "adapterhub",
    ]  # the paper has a row for K = 2 only among {2, 3}
    pruning = markdown["table3_pruning"].splitlines()[2:]
    assert [line.split("|")[1].strip() for line in pruning] == ["ours", "adapterhub", "paper"]
    assert len(markdown["table3_detail"].splitlines()) == 2 + 2 * 2 * 2
    assert (
        len(markdown["table3_vs_adapterhub"].splitlines()) == 2 + 4 * 2 + 1
    )  # (phase, K) x (adapter, fusion), + pruned


@pytest.mark.parametrize(
    "override, message",
    [
        ("bench.num_adapters=[0,2]", "num_adapters"),
        ("bench.prune.adapters=5", "prune.adapters"),
        ("bench.prune.keep=3", "prune.keep"),
        ("bench.implementations=[ours,peft]", "implementations"),
        ("bench.phases=[training,serving]", "phases"),
        ("bench.seq_len=4096", "seq_len"),
        ("+bench.fusion.leave_out=7", "leave_out"),
        ("+bench.fusion.colour=red", "colour"),
    ],
)
def test_bad_grids_fail_before_any_model(tmp_path, override, message):
    with pytest.raises(ValueError, match=message):
        table3.points(tiny(tmp_path, override))


def test_pruning_can_be_switched_off(tmp_path):
    points = table3.points(tiny(tmp_path, "bench.prune=null"))
    assert [p["prune_to"] for p in points] == [None] * 4
