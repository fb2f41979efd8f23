"""Fig. 2 of AdapterDrop: a task's validation score against the number n of dropped lower layers.

Built from training results only (``results/raw/fig2_*``), like every other table:

* ``standard``: one adapter trained in every layer, scored with the adapters of the first n
  layers dropped at test time (``val/<metric>@n=<k>``);
* ``robust``: one adapter trained with n ~ U{0..L-1} per batch, scored the same way;
* ``specialized``: one adapter per n, built without adapters below layer n, scored at that n.

``fig2`` has one row per (model, task, n) with the three scores (means over seeds, with the run
count); ``fig2_relative`` divides them by the standard adapter's score at n = 0, the form of
the paper's "with 5 dropped layers specialized keeps 97.1 % and robust 95.4 %".

    python -m adapterdrop.train.fig2 [--results-root results/raw] [--tables-root results/tables]
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from adapterdrop.data import get_task_spec
from adapterdrop.results import DEFAULT_RESULTS_ROOT
from adapterdrop.tables import DEFAULT_TABLES_ROOT, load_ok_results, write_table

#: Result experiment name (``experiment_name`` of ``conf/experiment/fig2_*.yaml``) -> curve.
VARIANTS = {"fig2_standard": "standard", "fig2_robust": "robust", "fig2_specialized": "specialized"}
KEYS = ["model", "task", "metric", "dropped_layers"]


def fig2_scores(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (variant, model, task, n, run): the main validation metric at depth n."""
    rows = []
    for _, run in runs.iterrows():
        variant = VARIANTS[run["experiment"]]
        task = run["config.data.task"]
        metric = get_task_spec(task).main_metric
        base = {"variant": variant, "model": run["config.model.name"], "task": task}
        base["metric"] = metric
        if variant == "specialized":
            scores = {int(run["config.drop.n"]): run[f"metrics.val/{metric}"]}
        else:
            pattern = re.compile(rf"metrics\.val/{re.escape(metric)}@n=(\d+)$")
            scores = {
                int(found.group(1)): run[column]
                for column in run.index
                if (found := pattern.match(column)) and pd.notna(run[column])
            }
            if not scores:
                raise ValueError(
                    f"{run['path']}: no val/{metric}@n=<k> metrics; {variant} runs need "
                    "eval_sweep=true (set by conf/experiment/fig2_*.yaml)"
                )
        rows += [{**base, "dropped_layers": n, "score": float(s)} for n, s in scores.items()]
    return pd.DataFrame(rows)


def fig2_tables(scores: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """``fig2`` (scores per variant and n) and ``fig2_relative`` (over standard at n = 0)."""
    grouped = scores.groupby([*KEYS, "variant"])["score"]
    means = grouped.mean().unstack("variant")
    counts = grouped.size().unstack("variant").add_suffix("_runs")
    variants = [v for v in VARIANTS.values() if v in means]
    table = pd.concat([means[variants], counts[[f"{v}_runs" for v in variants]]], axis=1)
    table = table.reset_index().sort_values(KEYS, ignore_index=True)
    relative = table[KEYS].copy()
    if "standard" in table:
        at_zero = table[table["dropped_layers"] == 0].set_index(["model", "task"])["standard"]
        reference = table.set_index(["model", "task"]).index.map(at_zero)
        for variant in variants:
            relative[variant] = table[variant].to_numpy() / reference.to_numpy()
        mean = relative.groupby(["model", "dropped_layers"])[variants].mean().reset_index()
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


def main(argv: Sequence[str] | None = None) -> dict[str, str]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results-root", default=str(DEFAULT_RESULTS_ROOT))
    parser.add_argument("--tables-root", default=str(DEFAULT_TABLES_ROOT))
    args = parser.parse_args(argv)
    tables = fig2_tables(fig2_scores(load_fig2_runs(args.results_root)))
    written = {}
    for name, frame in tables.items():
        written[name] = write_table(frame, name, tables_root=args.tables_root)
        print(f"{name}\n{written[name]}\n")
    return written


if __name__ == "__main__":
    main()
