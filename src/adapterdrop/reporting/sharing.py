"""Cross-layer parameter sharing (AdapterDrop's appendix): one adapter shared by every layer.

Built from training results only (``results/raw/sharing``, ``make reproduce-sharing``): one row
per adapter (``standard``: one Pfeiffer adapter per layer at reduction factor 16; ``shared``:
one for all layers at factor 4/3, 4 or 16), one column per task with its main dev metric x 100
(the column names the metric and, for a seeded subset, ``data.limit_examples``), the average
over those columns, and the trainable parameters the run recorded (``params/trainable``: the
encoder's, biases included, head left out). Beside them: the paper's rows (roberta-base, GLUE
dev; :data:`PAPER_SHARING`, from ``papers.md``), whose counts are adapter weights without
biases and whose average is recomputed over the same tasks (the paper's own 8-task average is
in the note), and the majority-class baseline of each task's dev split
(:mod:`adapterdrop.reporting.baselines`; a note where the labels are not found).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from adapterdrop.reporting.baselines import (
    baseline_rows,
    main_score,
    majority_baselines,
    task_column,
)
from adapterdrop.reporting.tables import load_experiment_runs, train_batches, write_table

EXPERIMENT = "sharing"
#: The appendix's rows: score per GLUE task (dev, x 100), the 8-task average, adapter weights.
PAPER_SHARING: dict[tuple[str, float], dict[str, float]] = {
    ("standard", 16.0): {
        "glue/sst2": 94.7, "glue/qnli": 93.0, "glue/mnli": 87.3, "glue/qqp": 90.6,
        "glue/cola": 62.6, "glue/mrpc": 88.4, "glue/rte": 75.9, "glue/stsb": 90.3,
        "average": 85.35, "weights": 884_736,
    },
    ("shared", 4 / 3): {
        "glue/sst2": 94.2, "glue/qnli": 92.4, "glue/mnli": 87.0, "glue/qqp": 90.8,
        "glue/cola": 60.3, "glue/mrpc": 88.2, "glue/rte": 69.4, "glue/stsb": 89.5,
        "average": 83.98, "weights": 884_736,
    },
    ("shared", 4.0): {
        "glue/sst2": 94.2, "glue/qnli": 93.1, "glue/mnli": 87.1, "glue/qqp": 90.2,
        "glue/cola": 60.8, "glue/mrpc": 88.5, "glue/rte": 71.5, "glue/stsb": 89.7,
        "average": 84.39, "weights": 294_912,
    },
    ("shared", 16.0): {
        "glue/sst2": 94.1, "glue/qnli": 90.6, "glue/mnli": 86.2, "glue/qqp": 88.6,
        "glue/cola": 57.2, "glue/mrpc": 86.8, "glue/rte": 71.5, "glue/stsb": 89.0,
        "average": 83.0, "weights": 73_728,
    },
}  # fmt: skip
PAPER_MODEL = "roberta-base"
ROW_KEYS = ["source", "model", "precision", "batches", "adapter", "reduction_factor"]


def sharing_scores(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per run: its adapter row, task column, seed, main score x 100 and size."""
    rows = []
    for _, run in runs.iterrows():
        task, limit, score = main_score(run)
        shared = bool(run["config.method.shared"])
        trainable = run.get("metrics.params/trainable")
        rows.append(
            {
                "source": "ours",
                "model": run["config.model.name"],
                "precision": str(run["config.trainer.precision"]),
                "batches": train_batches(run),
                "adapter": "shared" if shared else "standard",
                "reduction_factor": float(run["config.method.reduction_factor"]),
                "column": task_column(task, limit),
                "task": task,
                "seed": int(run["config.seed"]),
                "path": run["path"],
                "score": score,
                "trainable_params": float("nan") if trainable is None else float(trainable),
            }
        )
    return pd.DataFrame(rows)


def sharing_table(scores: pd.DataFrame, baselines: pd.DataFrame | None = None) -> pd.DataFrame:
    """Our rows (mean over runs per cell), then the paper's, then the majority class."""
    cell = [*ROW_KEYS, "column", "seed"]
    twice = scores[scores.duplicated(cell, keep=False)]
    if not twice.empty:
        raise ValueError(
            f"two runs of one seed in one cell of the sharing table: "
            f"{', '.join(sorted(map(str, twice['path'])))}; they differ in settings the table "
            "does not separate, so move all but one away"
        )
    columns = sorted(set(scores["column"]))
    grouped = scores.groupby(ROW_KEYS, sort=False)
    ours = scores.pivot_table(index=ROW_KEYS, columns="column", values="score", aggfunc="mean")
    ours = ours.reindex(columns=columns)
    ours["average"] = ours[columns].mean(axis=1, skipna=False)
    ours["trainable_params"] = grouped["trainable_params"].max()
    runs = scores.groupby([*ROW_KEYS, "column"]).size().groupby(ROW_KEYS)
    ours["runs"] = [_span(lo, hi) for lo, hi in zip(runs.min(), runs.max(), strict=True)]
    ours = ours.reset_index()
    shared_last = ours["adapter"].eq("shared").rename("shared_last")
    ours = ours.join(shared_last).sort_values(
        ["model", "precision", "batches", "shared_last", "reduction_factor"]
    )
    ours = ours.drop(columns="shared_last")
    tasks = {column: scores.loc[scores["column"] == column, "task"].iloc[0] for column in columns}
    frames = [ours, _paper_rows(tasks), baseline_rows(tasks, baselines)]
    table = pd.concat(frames, ignore_index=True)
    for count in ("trainable_params", "adapter_weights"):
        table[count] = table[count].astype("Int64")
    order = [*ROW_KEYS, *columns, "average", "trainable_params", "adapter_weights", "runs", "note"]
    return table.reindex(columns=order)


def _span(low: int, high: int) -> str:
    return str(low) if low == high else f"{low}-{high}"


def _paper_rows(tasks: dict[str, str]) -> pd.DataFrame:
    """The paper's four rows on our task columns; the average over those columns."""
    rows = []
    for (adapter, rf), values in PAPER_SHARING.items():
        row = {"source": "paper", "model": PAPER_MODEL, "adapter": adapter}
        row |= {"reduction_factor": rf, "adapter_weights": values["weights"]}
        row |= {column: values.get(task) for column, task in tasks.items()}
        scores = [row[column] for column in tasks]
        row["average"] = sum(scores) / len(scores) if None not in scores else None
        row["note"] = f"GLUE dev, 8-task average {values['average']:g}"
        rows.append(row)
    return pd.DataFrame(rows)


def load_sharing_runs(results_root: Path | str) -> pd.DataFrame:
    """Every successful ``sharing`` training result under ``results_root``."""
    return load_experiment_runs(results_root, EXPERIMENT, "reproduce-sharing")


def write_sharing_tables(
    results_root: Path | str, tables_root: Path | str, data: Path | str | None = None
) -> dict[str, str]:
    """Build the sharing table from the results under ``results_root`` (baselines from the
    dev labels under ``data``, else ``$ADAPTERDROP_DATA_DIR``), write it to ``tables_root``
    and return its markdown."""
    scores = sharing_scores(load_sharing_runs(results_root))
    baselines = majority_baselines(scores["task"], data)
    table = sharing_table(scores, baselines)
    return {EXPERIMENT: write_table(table, EXPERIMENT, tables_root=tables_root)}
