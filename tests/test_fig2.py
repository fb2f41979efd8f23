"""Fig. 2 tables from real (tiny, two-step) training runs of the three fig2 experiments."""

from __future__ import annotations

import json
import statistics

import pandas as pd
import pytest
from scipy import stats

from adapterdrop.cli.train import train
from adapterdrop.data import get_task_spec
from adapterdrop.reporting.fig2 import (
    fig2_scores,
    fig2_tables,
    load_fig2_runs,
    with_specialized_at_zero,
    write_fig2_tables,
)
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
    assert set(written) == {"fig2", "fig2_relative", "fig2_contrasts"}
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


@NEEDS_RTE
def test_specialized_at_n0_is_the_standard_training_exactly(fig2_root):
    """Why the specialized sweep starts at n = 1: its n = 0 run scores as the standard run
    does at n = 0, to the last bit."""
    runs = load_fig2_runs(fig2_root / "results").set_index("experiment")
    specialized = runs[runs["config.drop.n"] == 0].loc["fig2_specialized"]
    standard = runs.loc["fig2_standard"]
    assert specialized["metrics.val/accuracy"] == standard["metrics.val/accuracy@n=0"]
    assert specialized["metrics.val/loss"] == standard["metrics.val/loss"]  # logged at n = 0


def test_specialized_n0_is_taken_from_the_standard_run_where_it_was_not_trained():
    standard = [("standard", "accuracy", n, s) for n, s in enumerate([0.8, 0.7, 0.6])]
    specialized = [("specialized", "accuracy", 2, 0.75)]
    scores = with_specialized_at_zero(_scores(standard + specialized, task="glue/rte"))
    curve = scores[scores["variant"] == "specialized"].set_index("dropped_layers")["score"]
    assert curve.to_dict() == {2: 0.75, 0: 0.8}
    # a trained n = 0 run is kept; a seed without specialized runs borrows nothing
    trained = _scores(standard + [("specialized", "accuracy", 0, 0.79)], task="glue/rte")
    alone = _scores(standard, task="glue/rte", seed=43)
    kept = with_specialized_at_zero(pd.concat([trained, alone], ignore_index=True))
    assert kept[kept["variant"] == "specialized"]["score"].tolist() == [0.79]


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
            "config.trainer.precision": "32-true",
            "config.seed": 42,
            "metrics.val/accuracy": 0.5,
        }
    )
    with pytest.raises(ValueError, match="eval_sweep=true"):
        fig2_scores(pd.DataFrame([run]))


def _scores(
    rows: list[tuple[str, str, int, float]], task: str = "glue/mrpc", seed: int = 42, **setting
) -> pd.DataFrame:
    """Score rows ``(variant, metric, n, score)`` of one model, task and seed."""
    columns = ["variant", "metric", "dropped_layers", "score"]
    frame = pd.DataFrame(rows, columns=columns)
    defaults = {"limit_examples": None, "precision": "32-true", "batches": "random", "epochs": 3}
    defaults["path"] = f"seed{seed}.json"
    frame = frame.assign(model="m", task=task, seed=seed, **{**defaults, **setting})
    for count in ("limit_examples", "epochs"):
        frame[count] = frame[count].astype("Int64")
    return frame


def _seeded(curves: dict[int, dict[str, list[float]]], task: str = "glue/rte") -> pd.DataFrame:
    """``{seed: {variant: [score at n = 0, 1, ...]}}`` as score rows of the main metric."""
    metric = get_task_spec(task).main_metric
    frames = [
        _scores(
            [(v, metric, n, s) for v, curve in by_variant.items() for n, s in enumerate(curve)],
            task=task,
            seed=seed,
        )
        for seed, by_variant in curves.items()
    ]
    return pd.concat(frames, ignore_index=True)


def test_seeds_give_mean_std_and_run_count_per_n():
    scores = _seeded(
        {
            42: {"standard": [0.6, 0.5], "robust": [0.5, 0.4]},
            43: {"standard": [0.8, 0.5], "robust": [0.7, 0.6]},
            44: {"standard": [0.7, 0.2], "robust": [0.6, 0.5]},
        }
    )
    tables = fig2_tables(scores)
    table = tables["fig2"].set_index("dropped_layers")
    assert table["standard"].tolist() == pytest.approx([0.7, 0.4])
    assert table["standard_std"].tolist() == pytest.approx(
        [statistics.stdev([0.6, 0.8, 0.7]), statistics.stdev([0.5, 0.5, 0.2])]
    )
    assert table["robust_std"][1] == pytest.approx(statistics.stdev([0.4, 0.6, 0.5]))
    assert table["standard_runs"].tolist() == [3, 3] and table["robust_runs"].tolist() == [3, 3]
    relative = tables["fig2_relative"]
    rte = relative[relative["task"] == "glue/rte"].set_index("dropped_layers")
    assert rte["robust"][1] == pytest.approx(0.5 / 0.7)
    assert rte["standard_std"][1] == pytest.approx(statistics.stdev([0.5, 0.5, 0.2]) / 0.7)


def test_contrasts_are_paired_over_seeds_with_a_t_interval():
    scores = _seeded(
        {
            42: {"standard": [0.6, 0.5], "robust": [0.5, 0.60]},
            43: {"standard": [0.8, 0.5], "robust": [0.7, 0.62]},
            44: {"standard": [0.7, 0.2], "robust": [0.6, 0.34]},
            45: {"standard": [0.7, 0.4]},  # no robust run of this seed: not paired
        }
    )
    contrasts = fig2_tables(scores)["fig2_contrasts"].set_index("dropped_layers")
    assert contrasts["contrast"].unique().tolist() == ["robust - standard"]
    at_one = contrasts.loc[1]
    differences = [0.10, 0.12, 0.14]
    assert at_one["difference"] == pytest.approx(0.12) and at_one["seeds"] == 3
    half = stats.t.ppf(0.975, 2) * statistics.stdev(differences) / 3**0.5
    assert (at_one["ci_low"], at_one["ci_high"]) == pytest.approx((0.12 - half, 0.12 + half))
    assert at_one["beyond_noise"]  # 0.12 +- 0.05
    assert contrasts.loc[0, "difference"] == pytest.approx(-0.1)  # every seed exactly -0.1
    one_seed = fig2_tables(_seeded({42: {"standard": [0.6], "specialized": [0.7]}}))
    assert pd.isna(one_seed["fig2_contrasts"]["beyond_noise"].iloc[0])


def test_one_run_has_no_std_and_uneven_run_counts_are_counted():
    scores = _scores([("standard", "accuracy", 0, 0.6), ("standard", "accuracy", 1, 0.5)])
    scores = pd.concat([scores, _scores([("standard", "accuracy", 0, 0.8)], seed=43)])
    tables = fig2_tables(scores)
    table = tables["fig2"]
    assert table["standard"].tolist() == pytest.approx([0.7, 0.5])
    assert table["standard_runs"].tolist() == [2, 1]
    assert table["standard_std"].notna().tolist() == [True, False]
    assert tables["fig2_relative"]["standard"].iloc[1] == pytest.approx(0.5 / 0.7)


def test_the_mean_over_tasks_has_the_spread_of_a_mean_of_independent_runs():
    rte = _seeded({42: {"standard": [0.6, 0.3]}, 43: {"standard": [0.8, 0.5]}})
    sts = _seeded({42: {"standard": [0.8, 0.6]}, 43: {"standard": [0.8, 0.8]}}, "glue/stsb")
    relative = fig2_tables(pd.concat([rte, sts], ignore_index=True))["fig2_relative"]
    mean = relative[relative["task"] == "mean"].set_index("dropped_layers")
    assert mean["standard"][1] == pytest.approx((0.4 / 0.7 + 0.7 / 0.8) / 2)
    rte_std, sts_std = statistics.stdev([0.3, 0.5]) / 0.7, statistics.stdev([0.6, 0.8]) / 0.8
    assert mean["standard_std"][1] == pytest.approx((rte_std**2 + sts_std**2) ** 0.5 / 2)


def test_subsets_precisions_and_epochs_are_curves_of_their_own():
    rows = [("standard", "f1", 0, 0.6), ("standard", "f1", 1, 0.3)]
    frames = [_scores(rows), _scores(rows, limit_examples=8000), _scores(rows, precision="bf16")]
    frames.append(_scores(rows, epochs=6))
    tables = fig2_tables(pd.concat(frames, ignore_index=True))
    table = tables["fig2"]
    assert len(table) == 8 and (table["standard_runs"] == 1).all()
    assert sorted(table["epochs"].unique()) == [3, 6]
    assert table["limit_examples"].dropna().unique().tolist() == [8000]
    relative = tables["fig2_relative"]
    assert set(relative.loc[relative["task"] == "mean", "precision"]) == {"32-true", "bf16"}


def test_two_runs_of_one_seed_on_one_curve_are_refused_with_their_files():
    rows = [("standard", "accuracy", 0, 0.6)]
    frames = [_scores(rows, path="a.json"), _scores(rows, path="b.json")]
    with pytest.raises(ValueError, match=r"2 runs of seed 42: a\.json, b\.json"):
        fig2_tables(pd.concat(frames, ignore_index=True))


def test_the_seed_subset_precision_and_epochs_are_read_from_the_result():
    run = pd.Series(
        {
            "experiment": "fig2_robust",
            "path": "x.json",
            "config.data.task": "glue/sst2",
            "config.data.limit_examples": 8000,
            "config.model.name": "tiny",
            "config.trainer.precision": "32-true",
            "config.trainer.max_epochs": 6,
            "config.seed": 43,
            "metrics.val/accuracy@n=0": 0.8,
        }
    )
    [row] = fig2_scores(pd.DataFrame([run])).to_dict("records")
    setting = (row["seed"], row["limit_examples"], row["precision"], row["epochs"])
    assert setting == (43, 8000, "32-true", 6)


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
            "config.trainer.precision": "32-true",
            "config.seed": 42,
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


def test_make_reproduce_fig2_runs_three_seeds_on_stsb_and_sst2_subsets():
    from test_sweeps import check_command, make_commands

    jobs = [
        c for app, args in make_commands("reproduce-fig2", {}) for c in check_command(app, args)
    ]
    assert len(jobs) == 42 and {c["seed"] for c in jobs} == {42, 43, 44}  # 7 per task and seed
    limits = {
        (c["data"]["task"], c["data"]["limit_examples"], c["trainer"]["max_epochs"]) for c in jobs
    }
    assert limits == {("glue/stsb", 1000, 6), ("glue/sst2", 1000, 3)}
    assert all(c["skip_measured"] and c["data"]["seed"] == c["seed"] for c in jobs)
