"""AdapterFusion pruning and fusion-AdapterDrop (AdapterDrop, Sec. 5), from training results only.

The ``fusion`` experiment (``conf/experiment/fusion.yaml``) stores, per target task, the score
of its fusion pruned to the k most activated adapters (``val/<metric>@k=<k>``), with the fusion
layers of the first n layers dropped (``val/<metric>@n=<n>``), and each adapter's mean fusion
weight and rank (``fusion/activation/<task>``, ``fusion/rank/<task>``). Tables:

* ``fusion_pruning``: score vs k with the full fusion's score (k = K), the share of it kept,
  the fraction of adapters kept, which adapters, the task's majority-class baseline, and, where
  a machine's Table 3 measured a K-fusion pruned to k (``<root>/<machine>/tables/
  table3_pruning.csv``, our implementation), its inference speed-up (``speedup_<machine>``);
* ``fusion_drop``: score vs n with the share of the n = 0 score kept, and the baseline;
  both mark the task's main metric (``main``), the one the figure draws;
* ``fusion_activations``: each fused adapter's mean weight and rank per target.

Scores are means over the runs of a (model, task) with their count. Nothing is measured here.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pandas as pd

from adapterdrop.data import get_task_spec
from adapterdrop.reporting.baselines import majority_baselines
from adapterdrop.reporting.tables import load_experiment_runs, train_batches, write_table

EXPERIMENT = "fusion"
SPEED_TABLE = "table3_pruning.csv"
KEYS = ["model", "precision", "batches", "task", "metric"]
ACTIVATION = "metrics.fusion/activation/"
RANK = "metrics.fusion/rank/"


def _suffixed(run: pd.Series, metric: str, key: str) -> dict[int, float]:
    """``{value: score}`` of ``val/<metric>@<key>=<value>`` in one run."""
    pattern = re.compile(rf"metrics\.val/{re.escape(metric)}@{key}=(\d+)$")
    return {
        int(found.group(1)): float(run[column])
        for column in run.index
        if (found := pattern.match(column)) and pd.notna(run[column])
    }


def _ranks(run: pd.Series) -> dict[str, int]:
    return {
        column.removeprefix(RANK): int(run[column])
        for column in run.index
        if column.startswith(RANK) and pd.notna(run[column])
    }


def fusion_scores(runs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Long rows per run: pruning (k), dropping (n) and activations, every metric of the task.

    A run without ``@k`` scores of its main metric is refused: it was not a fusion run.
    """
    pruning, dropping, activations = [], [], []
    for _, run in runs.iterrows():
        spec = get_task_spec(run["config.data.task"])
        base = {
            "model": run["config.model.name"],
            "precision": str(run["config.trainer.precision"]),
            "batches": train_batches(run),
            "task": spec.key,
            "run": run["point_id"],
        }
        ranks = _ranks(run)
        ranking = sorted(ranks, key=ranks.__getitem__)
        for metric in spec.metrics:
            by_k = _suffixed(run, metric, "k")
            if not by_k and metric == spec.main_metric:
                raise ValueError(
                    f"{run['path']}: no val/{metric}@k=<k> metrics; only fusion runs "
                    "(method=fusion, adapterdrop.cli.train) record pruning"
                )
            adapters = max(by_k, default=0)
            pruning += [
                {
                    **base,
                    "metric": metric,
                    "k": k,
                    "adapters": adapters,
                    "score": score,
                    "full": by_k[adapters],
                    "kept": ", ".join(ranking[:k]),
                }
                for k, score in by_k.items()
            ]
            dropping += [
                {**base, "metric": metric, "dropped_layers": n, "score": score}
                for n, score in _suffixed(run, metric, "n").items()
            ]
        activations += [
            {
                **base,
                "adapter": name,
                "rank": rank,
                "activation": float(run[f"{ACTIVATION}{name}"]),
            }
            for name, rank in ranks.items()
        ]
    return pd.DataFrame(pruning), pd.DataFrame(dropping), pd.DataFrame(activations)


def _kept_names(names: pd.Series) -> str:
    """The adapters kept at one k: one list when every run kept the same, else each run's."""
    return " | ".join(dict.fromkeys(names))


def pruning_table(pruning: pd.DataFrame, speed: pd.DataFrame | None = None) -> pd.DataFrame:
    """Score vs k per (model, task, metric), beside the full fusion and, where measured, speed."""
    grouped = pruning.groupby([*KEYS, "adapters", "k"])
    table = grouped.agg(
        score=("score", "mean"),
        full=("full", "mean"),
        runs=("run", "nunique"),
        kept=("kept", _kept_names),
    ).reset_index()
    table["relative"] = table["score"] / table["full"]
    table["kept_fraction"] = table["k"] / table["adapters"]
    columns = [*KEYS, "k", "adapters", "kept_fraction", "score", "full", "relative", "runs", "kept"]
    table = table[columns]
    if speed is not None and not speed.empty:
        table = table.merge(speed, on=["adapters", "k"], how="left")
    return table.sort_values([*KEYS, "k"], ignore_index=True)


def drop_table(dropping: pd.DataFrame) -> pd.DataFrame:
    """Score vs n per (model, task, metric), and its share of the score at n = 0."""
    grouped = dropping.groupby([*KEYS, "dropped_layers"])
    table = grouped.agg(score=("score", "mean"), runs=("run", "nunique")).reset_index()
    at_zero = table[table["dropped_layers"] == 0].set_index(KEYS)["score"]
    table["relative"] = table["score"].to_numpy() / table.set_index(KEYS).index.map(at_zero)
    return table[[*KEYS, "dropped_layers", "score", "relative", "runs"]].sort_values(
        [*KEYS, "dropped_layers"], ignore_index=True
    )


def activation_table(activations: pd.DataFrame) -> pd.DataFrame:
    """Mean fusion weight and rank of each fused adapter per (model, task)."""
    grouped = activations.groupby(["model", "precision", "batches", "task", "adapter"])
    table = grouped.agg(
        activation=("activation", "mean"), rank=("rank", "mean"), runs=("run", "nunique")
    ).reset_index()
    return table.sort_values(["model", "precision", "batches", "task", "rank"], ignore_index=True)


def with_baseline(table: pd.DataFrame, data_dir: Path | str | None = None) -> pd.DataFrame:
    """``majority``: the task's majority-class score on its dev split (NaN: none, or no data)."""
    if table.empty:
        return table.assign(majority=pd.Series(dtype=float), main=pd.Series(dtype=bool))
    base = majority_baselines(table["task"].unique(), data_dir)
    base = base.dropna(subset=["metric"])[["task", "metric", "score"]]
    out = table.merge(base.rename(columns={"score": "majority"}), on=["task", "metric"], how="left")
    pairs = zip(out["task"], out["metric"], strict=True)
    out["main"] = [get_task_spec(task).main_metric == metric for task, metric in pairs]
    return out


def load_speed(root: Path | str) -> pd.DataFrame:
    """``adapters, k, speedup_<machine>``: our pruned fusion's inference speed-up from each
    machine's built Table 3 (read, never measured), and the paper's (``speedup_paper``, the
    row Table 3 carries beside them); empty when no machine has one."""
    frames, paper = [], None
    for path in sorted(Path(root).glob(f"*/tables/{SPEED_TABLE}")):
        machine = path.parent.parent.name
        table = pd.read_csv(path).rename(columns={"keep": "k"})
        rows = table[table["source"] == "ours"]
        if rows.empty:
            continue
        speed = rows[["adapters", "k", "speedup"]].astype({"adapters": int, "k": int})
        frames.append(speed.rename(columns={"speedup": f"speedup_{machine}"}))
        if paper is None and (table["source"] == "paper").any():
            paper = table[table["source"] == "paper"][["adapters", "k", "speedup"]]
    if paper is not None:
        paper = paper.astype({"adapters": int, "k": int}).drop_duplicates(["adapters", "k"])
        frames.append(paper.rename(columns={"speedup": "speedup_paper"}))
    if not frames:
        return pd.DataFrame(columns=["adapters", "k"])
    merged = frames[0]
    for frame in frames[1:]:
        merged = merged.merge(frame, on=["adapters", "k"], how="outer")
    return merged


def load_fusion_runs(results_root: Path | str) -> pd.DataFrame:
    """Every successful ``fusion`` training result under ``results_root``."""
    return load_experiment_runs(results_root, EXPERIMENT, "reproduce-fusion")


def fusion_tables(
    runs: pd.DataFrame, speed: pd.DataFrame | None = None, data_dir: Path | str | None = None
) -> dict[str, pd.DataFrame]:
    """The three tables of one results folder's fusion runs."""
    pruning, dropping, activations = fusion_scores(runs)
    if dropping.empty:
        warnings.warn(
            "no val/<metric>@n=<n> scores: fusion runs need eval_sweep=true", stacklevel=2
        )
    tables = {"fusion_pruning": with_baseline(pruning_table(pruning, speed), data_dir)}
    if not dropping.empty:
        tables["fusion_drop"] = with_baseline(drop_table(dropping), data_dir)
    tables["fusion_activations"] = activation_table(activations)
    return tables


def write_fusion_tables(
    results_root: Path | str, tables_root: Path | str, speed_root: Path | str | None = None
) -> dict[str, str]:
    """Build the fusion tables from the results under ``results_root`` (speed from the
    machines' tables under ``speed_root``) and write them to ``tables_root``; return each
    table's markdown."""
    speed = None if speed_root is None else load_speed(speed_root)
    tables = fusion_tables(load_fusion_runs(results_root), speed)
    return {
        name: write_table(frame, name, tables_root=tables_root) for name, frame in tables.items()
    }
