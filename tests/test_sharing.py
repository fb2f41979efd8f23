"""The sharing experiment (the paper's appendix): its config and make target compose into the
12 CPU jobs, and the table is built from result files alone."""

from __future__ import annotations

import pandas as pd
import pytest

from adapterdrop.reporting import figures
from adapterdrop.reporting.__main__ import main as make_tables
from adapterdrop.reporting.baselines import task_column
from adapterdrop.reporting.notebooks import run_all
from adapterdrop.reporting.sharing import (
    PAPER_SHARING,
    load_sharing_runs,
    sharing_scores,
    sharing_table,
    write_sharing_tables,
)
from adapterdrop.results import make_result, write_result
from conftest import REPO
from test_sweeps import check_command, make_commands

ENVIRONMENT = {"hostname": "test"}
#: (shared, reduction factor, trainable parameters) of MiniLM-L6's four rows.
ROWS = [(False, 16, 112_896), (True, 4 / 3, 221_568), (True, 4, 74_208), (True, 16, 18_840)]


def _write(
    root, task, shared, rf, score, limit=None, seed=42, trainable=None, metric=None, **extra
):
    """One training result of the sharing experiment, as the training CLI writes it."""
    metric = metric or {"glue/sst2": "accuracy", "glue/stsb": "pearson"}[task]
    config = {
        "experiment_name": "sharing",
        "seed": seed,
        "data": {"task": task, "limit_examples": limit},
        "model": {"name": "minilm-l6"},
        "method": {"name": "pfeiffer", "reduction_factor": rf, "shared": shared},
        "trainer": {"precision": "32-true"},
        **extra,
    }
    metrics = {f"val/{metric}": score}
    if trainable is not None:
        metrics["params/trainable"] = float(trainable)
    record = make_result(
        experiment="sharing", config=config, environment=ENVIRONMENT, kind="train", metrics=metrics
    )
    return write_result(record, root)


@pytest.fixture
def results(tmp_path):
    """Four rows on STS-B (whole) and a 3000-example SST-2 subset; STS-B standard has 2 seeds."""
    root = tmp_path / "results" / "raw"
    for k, (shared, rf, trainable) in enumerate(ROWS):
        _write(root, "glue/stsb", shared, rf, 0.80 - 0.01 * k, trainable=trainable)
        _write(root, "glue/sst2", shared, rf, 0.85 - 0.02 * k, limit=3000, trainable=trainable)
    _write(root, "glue/stsb", False, 16, 0.84, seed=43, trainable=112_896)
    return root


def test_the_table_has_a_row_per_adapter_a_column_per_task_and_the_paper(results):
    table = sharing_table(sharing_scores(load_sharing_runs(results)))
    ours = table[table["source"] == "ours"]
    assert list(zip(ours["adapter"], ours["reduction_factor"], strict=True)) == [
        ("standard", 16),
        ("shared", pytest.approx(4 / 3)),
        ("shared", 4),
        ("shared", 16),
    ]
    sst2, stsb = "glue/sst2 accuracy (3000 ex.)", "glue/stsb pearson"
    assert ours[sst2].tolist() == pytest.approx([85.0, 83.0, 81.0, 79.0])
    assert ours[stsb].tolist() == pytest.approx([82.0, 79.0, 78.0, 77.0])  # 82: seeds 42, 43
    assert ours["average"].tolist() == pytest.approx([83.5, 81.0, 79.5, 78.0])
    assert ours["trainable_params"].tolist() == [t for _, _, t in ROWS]
    assert ours["runs"].tolist() == ["1-2", "1", "1", "1"]
    paper = table[table["source"] == "paper"].set_index("reduction_factor")
    assert paper.loc[16.0, stsb].tolist() == [90.3, 89.0]  # standard, then shared rf 16
    assert paper["adapter_weights"].tolist() == [884_736, 884_736, 294_912, 73_728]
    assert paper["average"].iloc[0] == pytest.approx((94.7 + 90.3) / 2)
    assert "8-task average 85.35" in paper["note"].iloc[0]


def test_majority_class_row_from_baselines_and_a_note_for_regression(results):
    baselines = pd.DataFrame(
        [
            {"task": "glue/sst2", "metric": "accuracy", "score": 0.509, "best_constant": 0.509},
            {"task": "glue/stsb", "metric": "pearson", "score": float("nan"), "note": "regr"},
        ]
    )
    table = sharing_table(sharing_scores(load_sharing_runs(results)), baselines)
    [row] = table[table["source"] == "majority class (dev)"].to_dict("records")
    assert row["glue/sst2 accuracy (3000 ex.)"] == pytest.approx(50.9)
    assert pd.isna(row["glue/stsb pearson"]) and row["note"] == "glue/stsb: regr"
    assert "best constant (dev)" not in table["source"].tolist()  # no better constant here


def test_two_runs_of_one_seed_in_a_cell_are_refused(tmp_path):
    root = tmp_path / "raw"
    _write(root, "glue/stsb", False, 16, 0.8)
    _write(root, "glue/stsb", False, 16, 0.7, optim={"lr": 1e-4})  # not a column or row
    with pytest.raises(ValueError, match="two runs of one seed in one cell"):
        sharing_table(sharing_scores(load_sharing_runs(root)))


def test_a_run_without_its_main_metric_is_named(tmp_path):
    root = tmp_path / "raw"
    path = _write(root, "glue/stsb", False, 16, 0.8, metric="spearman")
    with pytest.raises(ValueError, match=rf"{path.name}.*no val/pearson"):
        sharing_scores(load_sharing_runs(root))


def test_the_entry_point_writes_the_table_and_the_figure_draws_it(results, tmp_path, capsys):
    make_tables(["--root", str(results.parent), "--only", "sharing"])
    assert "sharing" in capsys.readouterr().out
    table = figures.read_table(results.parent / "tables", "sharing")
    fig = figures.sharing_figure(table)
    [ax] = [a for a in fig.axes if a.axison]
    assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title()
    labels = ax.get_legend_handles_labels()[1]
    assert "standard, rf 16, 112,896 trainable" in labels
    assert "shared, rf 1.33, 221,568 trainable" in labels
    assert "paper, shared, rf 4 (roberta-base)" in labels
    assert any(label.startswith("paper") for label in labels)


def test_the_notebook_draws_the_table_the_entry_point_wrote(results, tmp_path):
    make_tables(["--root", str(results.parent), "--only", "sharing"])
    out = tmp_path / "figures"
    written, failed = run_all(
        results.parent, out, notebooks_dir=REPO / "notebooks", only=["sharing"]
    )
    assert not failed, failed
    assert (out / "sharing.png").stat().st_size > 10_000
    assert (out / "sharing.pdf").read_bytes().startswith(b"%PDF")


def test_missing_results_name_the_make_target(tmp_path):
    with pytest.raises(FileNotFoundError, match="make reproduce-sharing"):
        write_sharing_tables(tmp_path, tmp_path / "tables")


def test_the_paper_rows_are_those_of_papers_md():
    average = {key: values["average"] for key, values in PAPER_SHARING.items()}
    assert list(average.values()) == [85.35, 83.98, 84.39, 83.0]
    for values in PAPER_SHARING.values():
        eight = [v for k, v in values.items() if k.startswith("glue/")]
        assert len(eight) == 8 and sum(eight) / 8 == pytest.approx(values["average"], abs=0.06)


def test_task_columns_name_the_metric_and_subset():
    assert task_column("glue/mrpc", None) == "glue/mrpc f1"
    assert task_column("glue/sst2", 3000) == "glue/sst2 accuracy (3000 ex.)"


def test_make_reproduce_sharing_composes_four_adapters_per_task():
    jobs = [
        cfg
        for app, args in make_commands("reproduce-sharing", {})
        for cfg in check_command(app, args)
    ]
    assert len(jobs) == 12 and all(cfg["experiment_name"] == "sharing" for cfg in jobs)
    rows = {(c["method"]["shared"], c["method"]["reduction_factor"]) for c in jobs}
    assert rows == {(False, 16), (True, 4 / 3), (True, 4), (True, 16)}
    limits = {(c["data"]["task"], c["data"]["limit_examples"]) for c in jobs}
    assert limits == {("glue/stsb", 1500), ("glue/sst2", 3000), ("glue/mrpc", 1500)}
    assert all(c["skip_measured"] and c["model"]["name"] == "minilm-l6" for c in jobs)
    assert {c["trainer"]["accelerator"] for c in jobs} == {"cpu"}
