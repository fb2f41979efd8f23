"""The benchmark command line: a failed point fails the command, after the others ran."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from adapterdrop.bench.experiments import get_experiment
from conftest import REPO, TINY_BENCH, bench_cfg

#: Runs the bench command with Table 2's measure failing at T = 3: a failure that only shows
#: once a point runs (the grid itself is valid, so validation lets it through).
FAILING_AT_T3 = """
import sys
from adapterdrop.bench.experiments import table2
from adapterdrop.cli.bench import main

measure = table2.measure

def failing(point):
    if point["num_tasks"] == 3:
        raise RuntimeError("out of memory at T = 3")
    return measure(point)

table2.measure = failing
sys.argv = ["adapterdrop-bench", *sys.argv[1:]]
main()
"""


def test_a_failed_point_makes_the_command_exit_non_zero_with_a_summary(tmp_path):
    command = [
        sys.executable,
        "-c",
        FAILING_AT_T3,
        "bench=table2",
        *TINY_BENCH,
        "bench.num_tasks=[2,3]",
        "bench.processes=1",
        "bench.dropped_layers=[0,3]",
        f"paths.results_root={tmp_path}/raw",
        f"paths.tables_root={tmp_path}/tables",
        f"hydra.run.dir={tmp_path}/hydra",
    ]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert "table2: 1 point(s) failed:" in done.stderr
    records = [json.loads(p.read_text()) for p in (tmp_path / "raw" / "table2").glob("*.json")]
    assert len(records) == 2 and {r["status"] for r in records} == {"ok", "failed"}
    failed = next(r for r in records if r["status"] == "failed")
    assert f"table2/{failed['point_id']}: RuntimeError: out of memory at T = 3" in done.stderr
    # the other point's table was built (in a variant folder: model=tiny is not the grid's own)
    assert list((tmp_path / "tables").glob("variants/table2-*/table2.md"))


def test_small_t_gets_more_rounds_unless_min_reps_is_given(tmp_path):
    def reps(*extra: str, by_tasks: object = "config") -> dict[int, int]:
        cfg = bench_cfg(tmp_path, "table2", *extra)
        if by_tasks != "config":
            cfg["bench"]["min_reps_by_tasks"] = by_tasks
        points = get_experiment("table2").points(cfg)
        return {p["num_tasks"]: p["timing"]["min_reps"] for p in points}

    grid = ("bench.num_tasks=[2,4,8]", "timing.min_reps=null")
    assert reps(*grid) == {2: 10, 4: 6, 8: 4}
    assert reps(*grid, by_tasks=None) == {2: 4, 4: 4, 8: 4}
    assert reps("bench.num_tasks=[2,4,8]") == {2: 2, 4: 2, 8: 2}  # TINY_BENCH's timing.min_reps
    # one T of a sweep over T: the entries for other T are unused, not an error
    assert reps("bench.num_tasks=[8]", "timing.min_reps=null") == {8: 4}
    assert reps("bench.num_tasks=[2]", "timing.min_reps=null", by_tasks={16: 3}) == {2: 4}
    with pytest.raises(ValueError, match=r"keys must be task counts >= 1, got 'two'"):
        reps("bench.num_tasks=[2]", "timing.min_reps=null", by_tasks={"two": 3})
    with pytest.raises(ValueError, match=r"min_reps_by_tasks.2 must be an int >= 1, got 0"):
        reps("bench.num_tasks=[2]", "timing.min_reps=null", by_tasks={2: 0})


def test_a_bench_multirun_whose_second_job_fails_exits_non_zero_naming_it(tmp_path):
    command = [
        sys.executable,
        "-m",
        "adapterdrop.cli.bench",
        "-m",
        "bench=table2",
        *TINY_BENCH,
        "bench.num_tasks=[2]",
        "bench.processes=1",
        "bench.dropped_layers=[0,3]",
        "bench.batch_size=1,0",
        f"paths.results_root={tmp_path}/raw",
        f"paths.tables_root={tmp_path}/tables",
        f"hydra.sweep.dir={tmp_path}/multirun",
    ]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert "1 of 2 job(s) failed:" in done.stderr
    failed = next(line for line in done.stderr.splitlines() if line.startswith("  job 1 ("))
    assert " bench.batch_size=0 " in failed
    assert failed.endswith("ValueError: bench.batch_size must be an int >= 1, got 0")
    records = [json.loads(p.read_text()) for p in (tmp_path / "raw" / "table2").glob("*.json")]
    assert [r["status"] for r in records] == ["ok"]  # the first job measured its point
