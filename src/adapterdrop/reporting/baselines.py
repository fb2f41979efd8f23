"""The majority-class baseline of a task's dev split, for the score plots (Fig. 2).

The baseline predicts the most frequent label of the dev split for every example and is
scored with the task's own metrics: on MRPC it reaches 0.68 accuracy and 0.81 F1, so a score
near those says the adapter learnt nothing. A regression task (STS-B) has no majority class (a
constant prediction has no correlation), so its rows hold NaN and a note.

The labels are read with :mod:`adapterdrop.data` (imported on first use: it pulls in torch)
from the data directory given, else ``ADAPTERDROP_DATA_DIR``; a task whose files are not there
gets a note instead of a score.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

DATA_DIR_ENV = "ADAPTERDROP_DATA_DIR"
COLUMNS = ["task", "metric", "score", "majority_label", "majority_share", "examples", "note"]


def data_dir(path: Path | str | None = None) -> Path | None:
    """``path``, else ``$ADAPTERDROP_DATA_DIR``, when it is a folder; else None."""
    chosen = path or os.environ.get(DATA_DIR_ENV) or None
    return Path(chosen) if chosen is not None and Path(chosen).is_dir() else None


def majority_baseline(task: str, root: Path | str) -> pd.DataFrame:
    """Rows of :data:`COLUMNS`, one per metric of ``task`` (``glue/mrpc``), from the dev
    labels under ``root``."""
    from adapterdrop.data import get_task_spec, read_split

    spec = get_task_spec(task)
    if spec.task_type == "regression":
        note = "regression task: no majority class"
        return pd.DataFrame([_row(task, m, note=note) for m in spec.metrics], columns=COLUMNS)
    examples = read_split(spec, Path(root), spec.validation_split)
    labels = np.array([example.label for example in examples])
    label, count = Counter(labels.tolist()).most_common(1)[0]
    groups = {
        key: np.array([example.groups[i] for example in examples])
        for i, key in enumerate(spec.group_id_keys)
    }
    groups |= {
        key: [example.answer_info[i] for example in examples]
        for i, key in enumerate(spec.answer_fields)
    }
    scores = spec.compute_metrics(np.full(len(labels), label), labels, **groups)
    share = count / len(labels)
    return pd.DataFrame(
        [
            _row(task, metric, score, spec.label_names[label], share, len(labels))
            for metric, score in scores.items()
        ],
        columns=COLUMNS,
    )


def majority_baselines(tasks: Iterable[str], root: Path | str | None = None) -> pd.DataFrame:
    """:func:`majority_baseline` of every task. A task without local files gets one row with
    no metric and a note (so no data directory means no torch import either)."""
    where = data_dir(root)
    frames = []
    for task in sorted(set(tasks)):
        benchmark, _, _ = task.partition("/")
        if where is None or not (where / benchmark).is_dir():
            note = f"no dev labels (set {DATA_DIR_ENV})"
            frames.append(pd.DataFrame([_row(task, None, note=note)], columns=COLUMNS))
            continue
        frames.append(majority_baseline(task, where))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)


def _row(task, metric, score=float("nan"), label=None, share=float("nan"), n=0, note=""):
    return dict(zip(COLUMNS, (task, metric, score, label, share, n, note), strict=True))


def task_column(task: str, limit: int | None) -> str:
    """A score table's column for ``task``: ``glue/sst2 accuracy (3000 ex.)`` when the runs
    used a seeded 3000-example subset (``data.limit_examples``)."""
    from adapterdrop.data import get_task_spec

    label = f"{task} {get_task_spec(task).main_metric}"
    return label if limit is None else f"{label} ({limit} ex.)"


def main_score(run: pd.Series) -> tuple[str, int | None, float]:
    """A training result's task, its subset size (``data.limit_examples``, None: whole) and
    its main dev metric x 100; a result without that metric is an error naming its file."""
    from adapterdrop.data import get_task_spec

    task = run["config.data.task"]
    metric = get_task_spec(task).main_metric
    score = run.get(f"metrics.val/{metric}")
    if score is None or pd.isna(score):
        raise ValueError(f"{run['path']}: no val/{metric} metric for {task}")
    return task, subset_size(run), 100 * float(score)


def subset_size(run: pd.Series) -> int | None:
    """The seeded subset a training result's splits were cut to (``data.limit_examples``;
    None: the whole splits)."""
    limit = run.get("config.data.limit_examples")
    return None if limit is None or pd.isna(limit) else int(limit)


def baseline_row(tasks: dict[str, str], baselines: pd.DataFrame | None) -> pd.DataFrame:
    """A score table's last row: each task column's majority class on the task's main metric
    (x 100), with notes where there is none (``tasks``: column -> task)."""
    from adapterdrop.data import get_task_spec

    row: dict[str, object] = {"source": "majority class (dev)"}
    notes = []
    for column, task in tasks.items():
        metric = get_task_spec(task).main_metric
        found = pd.DataFrame() if baselines is None else baselines[baselines["task"] == task]
        main = found[found["metric"] == metric] if not found.empty else found
        if not main.empty and pd.notna(main["score"].iloc[0]):
            row[column] = 100 * float(main["score"].iloc[0])
        else:
            note = found["note"].iloc[0] if not found.empty else "no dev labels"
            notes.append(f"{task}: {note}")
    row["note"] = "; ".join(notes)
    return pd.DataFrame([row])
