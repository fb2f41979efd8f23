"""Fig. 2 tables from real (tiny, two-step) training runs of the three fig2 experiments."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from adapterdrop.cli.train import train
from adapterdrop.reporting.fig2 import fig2_scores, fig2_tables, load_fig2_runs, write_fig2_tables
from adapterdrop.results import iter_result_files
from test_train import NEEDS_RTE, TINY_LAYERS, shrunk


@pytest.fixture(scope="module")
def fig2_root(tmp_path_factory):
    """Standard and robust runs (swept over n) and specialized runs at n = 0 and 2."""
    tmp_path = tmp_path_factory.mktemp("fig2")
    runs = [
        ["experiment=fig2_standard"],
        ["experiment=fig2_robust"],
        ["experiment=fig2_specialized", "drop.n=0"],
        ["experiment=fig2_specialized", "drop.n=2"],
    ]
    for overrides in runs:
        train(shrunk(tmp_path, "logger=none", *overrides))
    return tmp_path


@NEEDS_RTE
def test_tables_hold_every_variant_at_every_depth(fig2_root):
    written = write_fig2_tables(fig2_root / "results", fig2_root / "tables")
    assert set(written) == {"fig2", "fig2_relative"}
    table = pd.read_csv(fig2_root / "tables" / "fig2.csv")
    assert table["dropped_layers"].tolist() == list(range(TINY_LAYERS))
    assert table[["standard", "robust"]].notna().all().all()
    assert table.set_index("dropped_layers")["specialized"].dropna().index.tolist() == [0, 2]
    assert (table["standard_runs"] == 1).all() and set(table["metric"]) == {"accuracy"}
    relative = pd.read_csv(fig2_root / "tables" / "fig2_relative.csv")
    first = relative[(relative["task"] == "glue/rte") & (relative["dropped_layers"] == 0)]
    assert first["standard"].item() == pytest.approx(1.0)
    means = relative[relative["task"] == "mean"]
    assert len(means) == TINY_LAYERS


@NEEDS_RTE
def test_scores_are_read_from_the_stored_metrics(fig2_root):
    scores = fig2_scores(load_fig2_runs(fig2_root / "results"))
    for path in iter_result_files(fig2_root / "results", "fig2_standard"):
        metrics = json.loads(path.read_text())["metrics"]
        standard = scores[scores["variant"] == "standard"].set_index("dropped_layers")["score"]
        assert standard[3] == pytest.approx(metrics["val/accuracy@n=3"])


def test_missing_results_name_the_make_target(tmp_path):
    with pytest.raises(FileNotFoundError, match="make reproduce-fig2"):
        load_fig2_runs(tmp_path)


def test_a_standard_run_without_the_depth_sweep_is_refused():
    run = pd.Series(
        {
            "experiment": "fig2_standard",
            "path": "x.json",
            "config.data.task": "glue/rte",
            "config.model.name": "tiny",
            "metrics.val/accuracy": 0.5,
        }
    )
    with pytest.raises(ValueError, match="eval_sweep=true"):
        fig2_scores(pd.DataFrame([run]))


def test_seeds_are_averaged_and_counted():
    scores = pd.DataFrame(
        {
            "variant": ["standard", "standard", "standard"],
            "model": "m",
            "task": "glue/rte",
            "metric": "accuracy",
            "dropped_layers": [0, 0, 1],
            "score": [0.6, 0.8, 0.5],
        }
    )
    table = fig2_tables(scores)["fig2"]
    assert table["standard"].tolist() == pytest.approx([0.7, 0.5])
    assert table["standard_runs"].tolist() == [2, 1]
    assert fig2_tables(scores)["fig2_relative"]["standard"].iloc[1] == pytest.approx(0.5 / 0.7)


def _scores(rows: list[tuple[str, str, int, float]], task: str = "glue/mrpc") -> pd.DataFrame:
    """Score rows ``(variant, metric, n, score)`` of one model and task."""
    columns = ["variant", "metric", "dropped_layers", "score"]
    return pd.DataFrame(rows, columns=columns).assign(model="m", task=task)


def test_every_logged_metric_gets_rows_and_the_mean_uses_main_metrics_only():
    # MRPC: F1 (main) hardly moves while accuracy falls; both are reported.
    scores = _scores(
        [
            ("standard", "f1", 0, 0.84),
            ("standard", "f1", 1, 0.82),
            ("standard", "accuracy", 0, 0.76),
            ("standard", "accuracy", 1, 0.38),
        ]
    )
    tables = fig2_tables(scores)
    assert set(tables["fig2"]["metric"]) == {"f1", "accuracy"}
    relative = tables["fig2_relative"].set_index(["task", "metric", "dropped_layers"])
    assert relative.loc[("glue/mrpc", "accuracy", 1), "standard"] == pytest.approx(0.5)
    assert relative.loc[("mean", "", 1), "standard"] == pytest.approx(0.82 / 0.84)


def test_a_metric_some_variant_did_not_log_is_left_out():
    scores = _scores(
        [
            ("standard", "f1", 0, 0.84),
            ("specialized", "f1", 0, 0.84),
            ("specialized", "accuracy", 0, 0.76),
        ]
    )
    assert set(fig2_tables(scores)["fig2"]["metric"]) == {"f1"}


def test_secondary_metrics_are_read_from_the_depth_sweep():
    run = pd.Series(
        {
            "experiment": "fig2_standard",
            "path": "x.json",
            "config.data.task": "glue/mrpc",
            "config.model.name": "tiny",
            "metrics.val/f1@n=0": 0.8,
            "metrics.val/f1@n=1": 0.7,
            "metrics.val/accuracy@n=0": 0.6,
            "metrics.val/accuracy@n=1": 0.5,
        }
    )
    scores = fig2_scores(pd.DataFrame([run])).set_index(["metric", "dropped_layers"])["score"]
    assert scores.to_dict() == {
        ("f1", 0): 0.8,
        ("f1", 1): 0.7,
        ("accuracy", 0): 0.6,
        ("accuracy", 1): 0.5,
    }
