"""A grid's tables hold every point of their setting; an ad-hoc run never replaces them."""

from __future__ import annotations

import json

import pandas as pd

from adapterdrop.bench.sweep import run_benchmark
from adapterdrop.reporting.benchmarks import (
    VARIANTS_DIR,
    changes_setting,
    rebuild_machine,
    setting_id,
)
from conftest import bench_cfg

GRID = ("bench.processes=1", "bench.dropped_layers=[0,3]")


def table2_rows(folder) -> list[int]:
    return pd.read_csv(folder / "table2.csv")["num_tasks"].tolist()


def test_runs_over_t_share_one_table_with_all_their_points(tmp_path):
    for t in (2, 3):  # as the jobs of `-m bench.num_tasks=[2],[3]` would
        override = f"bench.num_tasks=[{t}]"
        run_benchmark(bench_cfg(tmp_path, "table2", *GRID, override), [override])
    assert table2_rows(tmp_path / "tables") == [2, 3]
    manifest = json.loads((tmp_path / "tables" / "table2.run.json").read_text())
    assert manifest["config"]["bench"]["num_tasks"] == [2, 3]
    assert len(manifest["point_ids"]) == 2
    before = (tmp_path / "tables" / "table2.md").read_text()
    rebuild_machine(tmp_path / "tables")  # make tables gives the same table back
    assert (tmp_path / "tables" / "table2.md").read_text() == before


def test_an_ad_hoc_setting_writes_a_variant_and_leaves_the_grid_tables(tmp_path):
    run_benchmark(bench_cfg(tmp_path, "table2", *GRID, "bench.num_tasks=[2]"))
    reference = (tmp_path / "tables" / "table2.md").read_text()
    adhoc = bench_cfg(tmp_path, "table2", *GRID, "bench.num_tasks=[2]", "bench.seq_len=8")
    run_benchmark(adhoc, ["bench.seq_len=8"])
    assert (tmp_path / "tables" / "table2.md").read_text() == reference
    variant = tmp_path / "tables" / VARIANTS_DIR / f"table2-{setting_id('table2', adhoc)}"
    assert table2_rows(variant) == [2]
    assert sorted(rebuild_machine(tmp_path / "tables")) == ["table2", variant.name]


def test_a_default_run_of_a_new_setting_moves_the_old_tables_to_a_variant(tmp_path):
    old = bench_cfg(tmp_path, "table2", *GRID, "bench.num_tasks=[2]", "bench.seq_len=8")
    run_benchmark(old)  # e.g. the grid's default before its defaults changed
    new = bench_cfg(tmp_path, "table2", *GRID, "bench.num_tasks=[3]")
    run_benchmark(new)
    assert table2_rows(tmp_path / "tables") == [3]
    moved = tmp_path / "tables" / VARIANTS_DIR / f"table2-{setting_id('table2', old)}"
    assert table2_rows(moved) == [2]


def test_which_overrides_change_a_setting():
    assert not changes_setting("table2", ["bench.num_tasks=[2,4]", "force=true", "machine=x"])
    assert not changes_setting("table2", ["paths.root=/tmp/r", "hydra.run.dir=/tmp/h"])
    assert changes_setting("table2", ["model=tiny"])
    assert changes_setting("table2", ["+bench.method.init=zero_up"])
    assert changes_setting("table1", ["bench.num_tasks=[2]"])  # not an axis of Table 1


def test_a_code_version_bump_remeasures_and_starts_the_tables_afresh(tmp_path, monkeypatch):
    from adapterdrop.bench.experiments import table2

    cfg = bench_cfg(tmp_path, "table2", *GRID, "bench.num_tasks=[2]")
    first, _ = run_benchmark(cfg)
    monkeypatch.setattr(table2, "CODE_VERSION", 2)
    second, _ = run_benchmark(cfg)
    assert len(second.measured) == 1 and second.measured != first.measured
    manifest = json.loads((tmp_path / "tables" / "table2.run.json").read_text())
    assert manifest["point_ids"] == second.measured and manifest["config"]["code_version"] == 2
    old = tmp_path / "tables" / VARIANTS_DIR / f"table2-{setting_id('table2', cfg)}"
    assert json.loads((old / "table2.run.json").read_text())["point_ids"] == first.measured
