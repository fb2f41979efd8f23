"""The benchmark command line: a failed point fails the command, after the others ran."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from adapterdrop.bench.experiments import get_experiment
from adapterdrop.bench.sweep import apply_preset
from conftest import REPO, TINY_BENCH, bench_cfg


def test_a_failed_point_makes_the_command_exit_non_zero_with_a_summary(tmp_path):
    # T = 2 measures; T = 3 fails inside measure (a reduction factor the adapters cannot build
    # is only caught when its model is built).
    command = [
        sys.executable,
        "-m",
        "adapterdrop.cli.bench",
        "bench=table2",
        *TINY_BENCH,
        "bench.num_tasks=[2,3]",
        "bench.processes=1",
        "bench.dropped_layers=[0,3]",
        "bench.method.reduction_factor=0",
        f"paths.results_root={tmp_path}/raw",
        f"paths.tables_root={tmp_path}/tables",
        f"hydra.run.dir={tmp_path}/hydra",
    ]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert "table2: 2 point(s) failed:" in done.stderr
    records = [json.loads(p.read_text()) for p in (tmp_path / "raw" / "table2").glob("*.json")]
    assert len(records) == 2 and {r["status"] for r in records} == {"failed"}
    assert all(f"table2/{r['point_id']}: " in done.stderr for r in records)


def test_small_t_gets_more_rounds_unless_min_reps_is_given(tmp_path):
    def reps(*extra: str, by_tasks: object = "config") -> dict[int, int]:
        cfg = apply_preset(bench_cfg(tmp_path, "table2", *extra))
        if by_tasks != "config":
            cfg["bench"]["min_reps_by_tasks"] = by_tasks
        points = get_experiment("table2").points(cfg)
        return {p["num_tasks"]: p["timing"]["min_reps"] for p in points}

    grid = ("bench.num_tasks=[2,4,8]", "timing.min_reps=null")
    assert reps(*grid) == {2: 10, 4: 6, 8: 4}
    assert reps(*grid, by_tasks=None) == {2: 4, 4: 4, 8: 4}
    assert reps("bench.num_tasks=[2,4,8]") == {2: 2, 4: 2, 8: 2}  # TINY_BENCH's timing.min_reps
    with pytest.raises(ValueError, match=r"min_reps_by_tasks names T \[16\]"):
        reps("bench.num_tasks=[2]", "timing.min_reps=null", by_tasks={16: 3})
    with pytest.raises(ValueError, match=r"min_reps_by_tasks.2 must be an int >= 1, got 0"):
        reps("bench.num_tasks=[2]", "timing.min_reps=null", by_tasks={2: 0})
