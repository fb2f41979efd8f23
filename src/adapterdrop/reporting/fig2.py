"""Fig. 2 of AdapterDrop: a task's validation score against the number n of dropped lower layers.

Built from training results only (``results/raw/fig2_*``), like every other table:

* ``standard``: one adapter trained in every layer, scored with the adapters of the first n
  layers dropped at test time (``val/<metric>@n=<k>``);
* ``robust``: one adapter trained with n ~ U{0..L-1} per batch, scored the same way;
* ``specialized``: one adapter per n, built without adapters below layer n, scored at that n.

``fig2`` has one row per (model, task, metric, n) with the three scores (means over seeds,
with the run count); ``fig2_relative`` divides them by the standard adapter's score at n = 0,
the form of the paper's "with 5 dropped layers specialized keeps 97.1 % and robust 95.4 %".
``python -m adapterdrop.reporting`` (``make tables``) writes them to ``results/tables/``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from adapterdrop.data import get_task_spec
from adapterdrop.reporting.tables import load_ok_results, write_table

#: Result experiment name (``experiment_name`` of ``conf/experiment/fig2_*.yaml``) -> curve.
VARIANTS = {"fig2_standard": "standard", "fig2_robust": "robust", "fig2_specialized": "specialized"}
KEYS = ["model", "task", "metric", "dropped_layers"]


def _depth_scores(run: pd.Series, variant: str, metric: str) -> dict[int, float]:
    """``{n: score}`` of one run for one metric; empty when the run did not log it."""
    if variant == "specialized":
        value = run.get(f"metrics.val/{metric}")
        return {} if value is None or pd.isna(value) else {int(run["config.drop.n"]): value}
    pattern = re.compile(rf"metrics\.val/{re.escape(metric)}@n=(\d+)$")
    return {
        int(found.group(1)): run[column]
        for column in run.index
        if (found := pattern.match(column)) and pd.notna(run[column])
    }


def fig2_scores(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (variant, model, task, metric, n, run), for every metric of the task.

    The main metric must be there; others are kept where logged. One metric can mislead:
    on MRPC a model answering "equivalent" to every pair scores 0.81 F1, so F1 barely moves
    while accuracy falls to the majority share.
    """
    rows = []
    for _, run in runs.iterrows():
        variant = VARIANTS[run["experiment"]]
        task = run["config.data.task"]
        spec = get_task_spec(task)
        base = {"variant": variant, "model": run["config.model.name"], "task": task}
        for metric in spec.metrics:
            scores = _depth_scores(run, variant, metric)
            if not scores and metric == spec.main_metric:
                raise ValueError(
                    f"{run['path']}: no val/{metric}@n=<k> metrics; {variant} runs need "
                    "eval_sweep=true (set by conf/experiment/fig2_*.yaml)"
                )
            rows += [
                {**base, "metric": metric, "dropped_layers": n, "score": float(s)}
                for n, s in scores.items()
            ]
    return pd.DataFrame(rows)


def fig2_tables(scores: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """``fig2`` (scores per variant and n) and ``fig2_relative`` (over standard at n = 0).

    A metric that some variant did not log (a standard run trained before the depth sweep
    logged it, say) is left out. The ``mean`` rows of ``fig2_relative`` average each task's
    main metric only, so a task with two metrics does not count twice.
    """
    grouped = scores.groupby([*KEYS, "variant"])["score"]
    means = grouped.mean().unstack("variant")
    counts = grouped.size().unstack("variant").add_suffix("_runs")
    variants = [v for v in VARIANTS.values() if v in means]
    table = pd.concat([means[variants], counts[[f"{v}_runs" for v in variants]]], axis=1)
    table = table.reset_index().sort_values(KEYS, ignore_index=True)
    logged = table.groupby(["model", "task", "metric"])[variants].transform("count").gt(0)
    table = table[logged.all(axis=1)].reset_index(drop=True)
    relative = table[KEYS].copy()
    if "standard" in table:
        curve = ["model", "task", "metric"]
        at_zero = table[table["dropped_layers"] == 0].set_index(curve)["standard"]
        reference = table.set_index(curve).index.map(at_zero)
        for variant in variants:
            relative[variant] = table[variant].to_numpy() / reference.to_numpy()
        main = relative["metric"] == relative["task"].map(lambda t: get_task_spec(t).main_metric)
        mean = relative[main].groupby(["model", "dropped_layers"])[variants].mean().reset_index()
        relative = pd.concat([relative, mean.assign(task="mean", metric="")], ignore_index=True)
    return {"fig2": table, "fig2_relative": relative}


def load_fig2_runs(results_root: Path | str) -> pd.DataFrame:
    """Every successful ``fig2_*`` training result under ``results_root``."""
    frames = [load_ok_results(results_root, experiment) for experiment in VARIANTS]
    frames = [frame for frame in frames if not frame.empty]
    if not frames:
        raise FileNotFoundError(
            f"no Fig. 2 results under {results_root}/{{{','.join(VARIANTS)}}}: "
            "run `make reproduce-fig2` first"
        )
    return pd.concat(frames, ignore_index=True)


def write_fig2_tables(results_root: Path | str, tables_root: Path | str) -> dict[str, str]:
    """Build the Fig. 2 tables from the results under ``results_root`` and write them to
    ``tables_root``; return each table's markdown."""
    tables = fig2_tables(fig2_scores(load_fig2_runs(results_root)))
    return {
        name: write_table(frame, name, tables_root=tables_root) for name, frame in tables.items()
    }
