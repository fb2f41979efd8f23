"""The majority-class baseline of a task's dev split, for the score tables and plots.

The baseline predicts the most frequent label of the dev split for every example and is
scored with the task's own metrics: on MRPC it reaches 0.68 accuracy and 0.81 F1, so a score
near those says the adapter learnt nothing. Where the main metric is not accuracy the best
constant prediction can beat it: MultiRC's majority answer (false) scores F1a 0, answering
true to every option 59.9, so tables print that row too where it differs. A regression
task (STS-B) has no majority class (a constant prediction has no correlation), so its rows
hold NaN and a note.

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
COLUMNS = [
    "task",
    "metric",
    "score",
    "majority_label",
    "majority_share",
    "examples",
    "best_constant",
    "best_constant_label",
    "note",
]


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
    constants = {
        value: spec.compute_metrics(np.full(len(labels), value), labels, **groups)
        for value in sorted(set(labels.tolist()))
    }
    share = count / len(labels)
    rows = []
    for metric, score in constants[label].items():
        best = max(constants, key=lambda value: constants[value][metric])
        rows.append(
            _row(
                task,
                metric,
                score,
                spec.label_names[label],
                share,
                len(labels),
                best_constant=constants[best][metric],
                best_constant_label=spec.label_names[best],
            )
        )
    return pd.DataFrame(rows, columns=COLUMNS)


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


def _row(task, metric, score=float("nan"), label=None, share=float("nan"), n=0, note="", **best):
    """A baseline row; ``best`` (``best_constant``, ``best_constant_label``) defaults to the
    majority class's."""
    values = (task, metric, score, label, share, n, score, label, note)
    return dict(zip(COLUMNS, values, strict=True)) | best


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


def baseline_rows(tasks: dict[str, str], baselines: pd.DataFrame | None) -> pd.DataFrame:
    """A score table's last rows: each task column's majority class on the task's main metric
    (x 100), with notes where there is none (``tasks``: column -> task); then the best
    constant prediction, where it beats the majority class on some task."""
    from adapterdrop.data import get_task_spec

    majority: dict[str, object] = {"source": "majority class (dev)"}
    best: dict[str, object] = {"source": "best constant (dev)"}
    notes, labels = [], []
    for column, task in tasks.items():
        metric = get_task_spec(task).main_metric
        found = pd.DataFrame() if baselines is None else baselines[baselines["task"] == task]
        main = found[found["metric"] == metric] if not found.empty else found
        if not main.empty and pd.notna(main["score"].iloc[0]):
            majority[column] = 100 * float(main["score"].iloc[0])
            best[column] = 100 * float(main["best_constant"].iloc[0])
            if best[column] > majority[column]:
                labels.append(f"{task}: every example {main['best_constant_label'].iloc[0]}")
        else:
            note = found["note"].iloc[0] if not found.empty else "no dev labels"
            notes.append(f"{task}: {note}")
    majority["note"] = "; ".join(notes)
    best["note"] = "; ".join(labels)
    return pd.DataFrame([majority, best] if labels else [majority])
