"""The methods frontier: every method's score beside what it costs, from training results only
(``results/raw/methods``, ``make reproduce-methods``).

"A Comprehensive Analysis of Adapter Efficiency" asks whether adapters are cheaper than full
fine-tuning once training time counts, not only parameters. Each run of the ``methods``
experiment records its dev score, its trainable parameters (``params/trainable``: the encoder
weights training updates, head left out), its median train step (``time/train_step_s``), the
training time to its best dev score (``time/to_best_s``, validation excluded) and its
evaluation time per batch (``time/eval_step_s``), all measured on the same real data as the score.

Runs are grouped by model, precision and training epochs (``trainer.max_epochs``) before
method, so a grid rerun at another length sits beside the first instead of mixing with it.

* ``methods``: one row per (method, task): mean and sample std of the score over seeds, the run
  count, and the costs (means over seeds);
* ``methods_summary``: one row per method, a column per task (main metric x 100), the average
  over the tasks every method ran (``averaged_over`` names them, so a method that ran more
  tasks is not compared on a different set),
  the parameters, the step time relative to full fine-tuning (geometric mean over tasks) and the
  mean time to the best score; last, each task's majority-class baseline.

A method appears under its preset's name and, where runs of one method differ in an option
(CoDA's ``token_ratio``, AdapterBias's ``train_layer_norms``), with that option beside it.

A multi-task run (``data=multitask``: one model, a head per task; with ``method=full`` the
multi-task full fine-tuning Mundra et al. compare against) gives a row per task under its
method's label plus ``multi-task`` (and its ``data.loss_balance`` where the multi-task runs
differ in it). One of its steps trains a batch of every one of its K
tasks, and it reaches its best average score once for all K, so its step time and time to
best are divided by K: the cost per task, comparable to a single-task run's.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from adapterdrop.reporting.baselines import (
    baseline_rows,
    main_score,
    majority_baselines,
    subset_size,
    task_column,
)
from adapterdrop.reporting.tables import load_experiment_runs, train_batches, write_table

EXPERIMENT = "methods"
#: What a grid is run under: its methods are compared within one setting only.
SETTING = ["model", "precision", "batches", "epochs"]
ROW_KEYS = [*SETTING, "method"]
#: Result metric -> column (seconds).
COSTS = {
    "time/train_step_s": "step_s",
    "time/to_best_s": "time_to_best_s",
    "time/eval_step_s": "eval_step_s",
}
#: The reference row whose step time the others are divided by.
FULL = "full"
#: What a multi-task run's rows add to its method's label.
MULTITASK = "multi-task"


def method_labels(runs: pd.DataFrame) -> pd.Series:
    """Each run's method name, plus every option whose value differs between runs of that
    method (an option a run's config lacks reads as unset)."""
    names = runs["config.method.name"].astype(str)
    options = [
        c for c in runs.columns if c.startswith("config.method.") and c != "config.method.name"
    ]
    labels = names.copy()
    for name in names.unique():
        of_name = runs[names == name]
        varying = [c for c in options if of_name[c].astype(str).nunique(dropna=False) > 1]
        for index, run in of_name.iterrows():
            shown = [f"{c.rsplit('.', 1)[1]}={_plain(run[c])}" for c in varying if pd.notna(run[c])]
            labels[index] = " ".join([name, *shown])
    return labels


def loss_balances(runs: pd.DataFrame) -> pd.Series:
    """Each multi-task run's ``data.loss_balance`` where the multi-task runs differ in it
    (runs made before the option balanced nothing: ``none``), else empty: the label suffix."""
    none = pd.Series("", index=runs.index)
    if "config.data.tasks" not in runs:
        return none
    balance = runs.get("config.data.loss_balance", pd.Series(None, index=runs.index))
    balance = balance.where(balance.notna(), "none").astype(str)
    multitask = runs["config.data.tasks"].map(lambda tasks: isinstance(tasks, list))
    return none if balance[multitask].nunique() < 2 else " loss_balance=" + balance


def _plain(value: object) -> object:
    """``3`` for a whole float (pandas makes a column with gaps float), else the value."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def methods_scores(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per run: method label, task column, seed, main score x 100, size and costs."""
    labels = method_labels(runs)
    balances = loss_balances(runs)
    rows = []
    for index, run in runs.iterrows():
        for task, limit, score, share in task_scores(run):
            label = labels[index]
            if share > 1:
                label = f"{label} {MULTITASK}{balances[index]}"
            row = {
                "model": run["config.model.name"],
                "precision": str(run["config.trainer.precision"]),
                "batches": train_batches(run),
                "epochs": _epochs(run),
                "method": label,
                "column": task_column(task, limit),
                "task": task,
                "seed": int(run["config.seed"]),
                "path": run["path"],
                "score": score,
                "trainable_params": _number(run.get("metrics.params/trainable")),
            }
            row |= {column: _number(run.get(f"metrics.{key}")) for key, column in COSTS.items()}
            row["step_s"] /= share
            row["time_to_best_s"] /= share
            rows.append(row)
    return pd.DataFrame(rows)


def task_scores(run: pd.Series) -> list[tuple[str, int | None, float, int]]:
    """(task, subset size, main dev score x 100, tasks sharing the run's steps) per task a
    result scored: one for a single-task run, each of ``data.tasks`` for a multi-task one."""
    tasks = run.get("config.data.tasks")
    if not isinstance(tasks, list):
        return [(*main_score(run), 1)]
    from adapterdrop.data import get_task_spec

    limit = subset_size(run)
    out = []
    for task in tasks:
        metric = f"val/{task}/{get_task_spec(task).main_metric}"
        score = run.get(f"metrics.{metric}")
        if score is None or pd.isna(score):
            raise ValueError(f"{run['path']}: no {metric} metric in this multi-task result")
        out.append((task, limit, 100 * float(score), len(tasks)))
    return out


def _epochs(run: pd.Series) -> int:
    """The run's ``trainer.max_epochs``; a result without it is an error naming its file."""
    epochs = run.get("config.trainer.max_epochs")
    if epochs is None or pd.isna(epochs):
        raise ValueError(f"{run['path']}: no trainer.max_epochs in this result's config")
    return int(epochs)


def _number(value: object) -> float:
    return float("nan") if value is None or pd.isna(value) else float(value)


def methods_table(scores: pd.DataFrame) -> pd.DataFrame:
    """Long form: mean and std of the score over seeds per (method, task), with the costs."""
    cell = [*ROW_KEYS, "column", "seed"]
    twice = scores[scores.duplicated(cell, keep=False)]
    if not twice.empty:
        raise ValueError(
            "two runs of one seed in one cell of the methods table: "
            f"{', '.join(sorted(map(str, twice['path'])))}; they differ in settings the table "
            "does not separate, so move all but one away"
        )
    grouped = scores.groupby([*ROW_KEYS, "column", "task"], sort=True)
    table = grouped["score"].agg(score="mean", score_std="std", runs="size")
    table["trainable_params"] = grouped["trainable_params"].max().astype("Int64")
    for column in COSTS.values():
        table[column] = grouped[column].mean()
    return table.reset_index()


def methods_summary(table: pd.DataFrame, baselines: pd.DataFrame | None = None) -> pd.DataFrame:
    """Wide form: a row per method, a column per task, the average and the costs; then the
    majority-class row. The average of each row is over the tasks every method of its setting
    ran."""
    columns = sorted(set(table["column"]))
    wide = table.pivot_table(index=ROW_KEYS, columns="column", values="score", aggfunc="mean")
    wide = wide.reindex(columns=columns)
    wide["average"], wide["averaged_over"] = float("nan"), ""
    for _, group in wide.groupby(level=SETTING):
        common = [c for c in columns if group[c].notna().all()]
        if common:
            wide.loc[group.index, "average"] = group[common].mean(axis=1)
        wide.loc[group.index, "averaged_over"] = ", ".join(c.split(" ", 1)[0] for c in common)
    by_method = table.groupby(ROW_KEYS)
    wide["trainable_params"] = by_method["trainable_params"].max().astype("Int64")
    wide["step_vs_full"] = _relative_to_full(table, "step_s")
    wide["eval_step_vs_full"] = _relative_to_full(table, "eval_step_s")
    wide["time_to_best_s"] = by_method["time_to_best_s"].mean()
    summary = wide.reset_index().sort_values([*SETTING, "trainable_params"])
    summary.insert(0, "source", "ours")
    tasks = dict(zip(table["column"], table["task"], strict=True))
    frames = [summary, baseline_rows({column: tasks[column] for column in columns}, baselines)]
    order = ["source", *ROW_KEYS, *columns, "average", "averaged_over", "trainable_params"]
    order += ["step_vs_full", "eval_step_vs_full"]
    out = pd.concat(frames, ignore_index=True).reindex(columns=[*order, "time_to_best_s", "note"])
    out["epochs"] = out["epochs"].astype("Int64")
    return out


def _relative_to_full(table: pd.DataFrame, cost: str) -> pd.Series:
    """Geometric mean over tasks of a method's ``cost`` (seconds per train step, or per dev
    batch: the inference latency) over full fine-tuning's on that task (same model, precision
    and epochs); NaN where full fine-tuning did not run."""
    keys = [*SETTING, "column"]
    full = table[table["method"] == FULL].set_index(keys)[cost]

    def ratio(group: pd.DataFrame) -> float:
        reference = full.reindex(pd.MultiIndex.from_frame(group[keys]))
        ratios = group[cost].to_numpy() / reference.to_numpy()
        ratios = ratios[np.isfinite(ratios)]
        return math.exp(np.log(ratios).mean()) if len(ratios) else float("nan")

    return table.groupby(ROW_KEYS)[[*keys, cost]].apply(ratio)


def methods_tables(scores: pd.DataFrame, baselines: pd.DataFrame | None = None):
    """``{"methods": long, "methods_summary": wide}``."""
    table = methods_table(scores)
    return {"methods": table, "methods_summary": methods_summary(table, baselines)}


def load_methods_runs(results_root: Path | str) -> pd.DataFrame:
    """Every successful ``methods`` training result under ``results_root``."""
    return load_experiment_runs(results_root, EXPERIMENT, "reproduce-methods")


def write_methods_tables(
    results_root: Path | str, tables_root: Path | str, data_dir: Path | str | None = None
) -> dict[str, str]:
    """Write both tables (markdown and CSV) to ``tables_root``; return their markdown."""
    scores = methods_scores(load_methods_runs(results_root))
    baselines = majority_baselines(scores["task"], data_dir)
    return {
        name: write_table(frame, name, tables_root=tables_root)
        for name, frame in methods_tables(scores, baselines).items()
    }
