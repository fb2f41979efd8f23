"""The methods frontier: its experiment composes every method x task with each method's
learning rate, and its tables are built from result files alone."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from hydra import compose, initialize_config_dir

from adapterdrop.reporting import figures, notebooks
from adapterdrop.reporting.methods import (
    load_methods_runs,
    method_labels,
    methods_scores,
    methods_tables,
    write_methods_tables,
)
from adapterdrop.results import make_result, write_result
from conftest import CONF, REPO, method_cfg
from test_sweeps import check_command, make_commands

METRICS = {"glue/rte": "accuracy", "glue/stsb": "pearson"}


def _write(root, task, method, score, step_s, seed=42, params=1000.0, epochs=2, eval_s=None):
    config = {
        "experiment_name": "methods",
        "seed": seed,
        "data": {"task": task, "limit_examples": 1000},
        "model": {"name": "minilm-l6"},
        "method": method_cfg(method),
        "trainer": {"precision": "32-true", "max_epochs": epochs},
    }
    metrics = {
        f"val/{METRICS[task]}": score,
        "params/trainable": params,
        "time/train_step_s": step_s,
        "time/to_best_s": 10 * step_s,
        "time/eval_step_s": step_s / 3 if eval_s is None else eval_s,
    }
    record = make_result(
        experiment="methods", config=config, environment={}, kind="train", metrics=metrics
    )
    return write_result(record, root)


@pytest.fixture
def results(tmp_path):
    root = tmp_path / "raw"
    for task in METRICS:
        _write(root, task, "full", 0.70, step_s=1.0, params=22e6)
        _write(root, task, "pfeiffer", 0.66, step_s=0.5)
        _write(root, task, "pfeiffer", 0.68, step_s=0.7, seed=43)
        _write(root, task, "coda", 0.60, step_s=0.25, eval_s=1 / 12)  # 1/4 of full's 1/3
        _write(root, task, "coda-r5", 0.58, step_s=0.2)
    return root


def test_methods_differing_in_an_option_are_told_apart_by_it(results):
    labels = set(method_labels(load_methods_runs(results)))
    assert labels == {"full", "pfeiffer", "coda token_ratio=3", "coda token_ratio=5"}


def test_the_tables_give_mean_spread_and_costs_per_method_and_task(results):
    tables = methods_tables(methods_scores(load_methods_runs(results)))
    long = tables["methods"].set_index(["method", "task"])
    pfeiffer = long.loc[("pfeiffer", "glue/rte")]
    assert pfeiffer["score"] == pytest.approx(67.0) and pfeiffer["runs"] == 2
    assert pfeiffer["score_std"] == pytest.approx(math.sqrt(2))  # sample std of 66 and 68
    assert pfeiffer["step_s"] == pytest.approx(0.6)
    assert pfeiffer["time_to_best_s"] == pytest.approx(6.0)
    assert pfeiffer["eval_step_s"] == pytest.approx(0.2)
    summary = tables["methods_summary"]
    ours = summary[summary["source"] == "ours"].set_index("method")
    assert ours.index.tolist()[0] == "coda token_ratio=3"  # sorted by size, then stable
    assert ours.loc["full", "step_vs_full"] == pytest.approx(1.0)
    assert ours.loc["pfeiffer", "step_vs_full"] == pytest.approx(0.6)
    assert ours.loc["coda token_ratio=3", "eval_step_vs_full"] == pytest.approx(0.25)
    assert ours.loc["coda token_ratio=5", "average"] == pytest.approx(58.0)
    assert ours.loc["full", "trainable_params"] == 22_000_000
    columns = ["glue/rte accuracy (1000 ex.)", "glue/stsb pearson (1000 ex.)"]
    assert set(columns) <= set(summary.columns)
    assert summary["source"].iloc[-1] == "majority class (dev)"


def test_tables_are_written_with_their_baseline(results, tmp_path, real_data_dir):
    markdown = write_methods_tables(results, tmp_path / "tables", real_data_dir)
    assert (tmp_path / "tables" / "methods_summary.md").is_file()
    summary = pd.read_csv(tmp_path / "tables" / "methods_summary.csv")
    rte = summary["glue/rte accuracy (1000 ex.)"].iloc[-1]
    assert 50 < rte < 55  # RTE's dev majority class: 52.7 % "not entailment"
    assert "no majority class" in summary["note"].iloc[-1]  # STS-B is a regression
    assert "coda token_ratio=5" in markdown["methods_summary"]


def test_no_results_names_the_make_target(tmp_path):
    with pytest.raises(FileNotFoundError, match="make reproduce-methods"):
        load_methods_runs(tmp_path)


def test_the_experiment_sweeps_every_method_and_task_at_its_learning_rate():
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", ["experiment=methods"], return_hydra_config=True)
        full = compose("train", ["experiment=methods", "method=full"])
        online = compose("train", ["experiment=methods", "method=full", "method_lr={full:2e-5}"])
    methods = cfg.hydra.sweeper.params["method"].split(",")
    assert {"full", "pfeiffer", "houlsby", "adapterbias", "adapterbias-ln", "lora"} <= set(methods)
    assert {"coda", "coda-r5"} <= set(methods)
    tasks = cfg.hydra.sweeper.params["data"].split(",")
    assert {"glue/stsb", "glue/rte", "superglue/wic", "superglue/multirc"} <= set(tasks)
    assert cfg.optim.lr == 1e-3 and full.optim.lr == 5e-5 and online.optim.lr == 2e-5
    assert cfg.model.name == "minilm-l6" and cfg.data.limit_examples == 1000


def test_the_frontier_figure_draws_every_method_from_the_summary_csv(results, tmp_path):
    write_methods_tables(results, tmp_path / "tables")
    summary = pd.read_csv(tmp_path / "tables" / "methods_summary.csv")
    fig = figures.methods_figure(summary)
    size, cost = fig.axes[:2]
    assert size.get_xscale() == "log" and len(size.lines) == 4  # four methods, no baseline
    assert sorted(line.get_xdata()[0] for line in cost.lines) == pytest.approx([0.2, 0.25, 0.6, 1])


def test_make_figures_runs_the_methods_notebook_once_its_table_is_built(results, tmp_path):
    root = tmp_path / "results"
    assert "methods" in notebooks.pending(root)
    write_methods_tables(results, root / "tables")
    assert "methods" not in notebooks.pending(root)
    written, failed = notebooks.run_all(
        root, tmp_path / "figures", notebooks_dir=REPO / "notebooks", only=["methods"]
    )
    assert not failed, failed
    assert (tmp_path / "figures" / "methods.png").stat().st_size > 20_000


def test_make_reproduce_methods_runs_40_valid_jobs_each_at_its_learning_rate():
    train_call, multitask_call = make_commands("reproduce-methods", {})
    jobs = check_command(*train_call)
    multitask = multitask_call[1]  # check_command composes single-task jobs only
    assert {"method=full", "data=multitask", "skip_measured=true"} <= set(multitask)
    assert "data.tasks=[glue/stsb,glue/rte,glue/sst2,superglue/wic,superglue/multirc]" in multitask
    assert len(jobs) == 8 * 5 and all(job["skip_measured"] for job in jobs)
    names = {(job["method"]["name"], job["method"].get("token_ratio")) for job in jobs}
    assert ("coda", 3) in names and ("coda", 5) in names
    assert {job["optim"]["lr"] for job in jobs if job["method"]["name"] == "full"} == {5e-5}
    assert {job["data"]["task"] for job in jobs} >= {"superglue/wic", "superglue/multirc"}


def test_the_average_is_over_the_tasks_every_method_ran(results):
    _write(results, "glue/stsb", "lora", 0.5, step_s=0.4)  # LoRA ran STS-B only
    summary = methods_tables(methods_scores(load_methods_runs(results)))["methods_summary"]
    ours = summary[summary["source"] == "ours"].set_index("method")
    assert ours.loc["pfeiffer", "average"] == pytest.approx(67.0)  # STS-B alone
    assert ours.loc["lora", "average"] == pytest.approx(50.0)
    assert set(ours["averaged_over"]) == {"glue/stsb"}
    assert ours.loc["pfeiffer", "glue/rte accuracy (1000 ex.)"] == pytest.approx(67.0)


def test_a_grid_of_another_length_is_its_own_setting_averaged_on_its_own_tasks(results):
    _write(results, "glue/stsb", "full", 0.80, step_s=1.0, params=22e6, epochs=3)
    _write(results, "glue/stsb", "pfeiffer", 0.78, step_s=0.6, epochs=3)  # RTE not run yet
    summary = methods_tables(methods_scores(load_methods_runs(results)))["methods_summary"]
    ours = summary[summary["source"] == "ours"].set_index(["epochs", "method"])
    assert ours.loc[(3, "pfeiffer"), "average"] == pytest.approx(78.0)
    assert ours.loc[(3, "pfeiffer"), "averaged_over"] == "glue/stsb"
    assert ours.loc[(3, "pfeiffer"), "step_vs_full"] == pytest.approx(0.6)
    assert ours.loc[(2, "pfeiffer"), "average"] == pytest.approx(67.0)  # both tasks still
    assert ours.loc[(2, "pfeiffer"), "averaged_over"] == "glue/rte, glue/stsb"
    fig = figures.methods_figure(summary)
    rows = {ax.get_title(): ax for ax in fig.axes[::3]}  # a row of 3 panels per setting
    assert set(rows) == {"2 ep.", "3 ep."}
    assert "pfeiffer" in {line.get_label() for line in rows["3 ep."].lines}


def test_a_multitask_run_gives_a_row_per_task_at_its_cost_per_task(results):
    config = {
        "experiment_name": "methods",
        "seed": 42,
        "data": {"tasks": list(METRICS), "limit_examples": 1000},
        "model": {"name": "minilm-l6"},
        "method": method_cfg("full"),
        "trainer": {"precision": "32-true", "max_epochs": 2},
    }
    metrics = {
        "val/glue/rte/accuracy": 0.72,
        "val/glue/stsb/pearson": 0.64,
        "val/average": 0.68,
        "params/trainable": 22e6,
        "time/train_step_s": 3.0,  # one batch of each of the two tasks
        "time/to_best_s": 40.0,
        "time/eval_step_s": 0.3,
    }
    record = make_result(
        experiment="methods", config=config, environment={}, kind="train", metrics=metrics
    )
    write_result(record, results)
    tables = methods_tables(methods_scores(load_methods_runs(results)))
    long = tables["methods"].set_index(["method", "task"])
    rte = long.loc[("full multi-task", "glue/rte")]
    assert rte["score"] == pytest.approx(72.0) and rte["step_s"] == pytest.approx(1.5)
    assert long.loc[("full multi-task", "glue/stsb"), "time_to_best_s"] == pytest.approx(20.0)
    summary = tables["methods_summary"].set_index("method")
    assert summary.loc["full multi-task", "average"] == pytest.approx(68.0)
    assert summary.loc["full multi-task", "step_vs_full"] == pytest.approx(1.5)
    assert summary.loc["full", "step_vs_full"] == pytest.approx(1.0)
