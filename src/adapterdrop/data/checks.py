"""Cheap data checks: before a run (`check_splits`) and over a whole directory (`make check-data`).

`check_splits` needs no tokenizer or model and reads no file content: call it when a run starts,
so that a missing split fails in a second instead of inside `trainer.fit` after the backbone
loaded. `inspect_directory` parses every split of every task found in a data directory and
reports each as read (with its label and group counts), absent, or failing to parse.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import datasets

from adapterdrop.data.errors import DataError
from adapterdrop.data.layout import (
    DATA_DIR_ENV,
    missing_splits_message,
    present_splits,
    resolve_data_dir,
    split_file,
    stage_splits,
    task_dir,
)
from adapterdrop.data.readers import Example, probe_hub, read_split
from adapterdrop.data.spec import TaskSpec
from adapterdrop.data.tasks import TASKS, get_task_spec


def check_splits(
    task: str | TaskSpec,
    data_dir: str | os.PathLike[str] | None = None,
    stages: str | Iterable[str] | None = ("fit",),
    *,
    probe: bool = True,
) -> dict[str, Path | None]:
    """Check that the splits which `stages` read can be loaded; return split -> file (None: hub).

    With a data directory (`data_dir`, else the ADAPTERDROP_DATA_DIR env variable) every
    needed split file must exist there; the DataError names the missing split(s), the folder
    searched, the split files found there and the alternatives. Without one the hub is the
    source, and with `probe` a HEAD request (at most 5 s) checks it is reachable, unless
    HF_HUB_OFFLINE is set (then the datasets cache is trusted). `stages` are Lightning stage
    names ("fit" = train + validation, "validate", "test", "predict"); None means every split.
    """
    spec = task if isinstance(task, TaskSpec) else get_task_spec(task)
    stages = (stages,) if isinstance(stages, str) else stages
    splits = stage_splits(spec, stages)
    needed_for = f" for split(s) {', '.join(splits)}{_needed_by(spec, stages, splits)}"
    root = resolve_data_dir(spec, data_dir, needed_for if splits else "")
    if root is None:
        if probe and splits and not datasets.config.HF_HUB_OFFLINE:
            try:
                probe_hub(spec, splits[0])
            except DataError as err:
                raise DataError(
                    f"No data_dir is set (data_dir is null and {DATA_DIR_ENV} is unset), so "
                    f"{spec.key} {', '.join(splits)} would come from the hub. {err}"
                ) from err
        return dict.fromkeys(splits)
    missing = [split for split in splits if not split_file(spec, root, split).is_file()]
    if missing:
        raise DataError(
            missing_splits_message(spec, root, missing, _needed_by(spec, stages, missing))
        )
    return {split: split_file(spec, root, split) for split in splits}


def _needed_by(spec: TaskSpec, stages: Iterable[str] | None, splits: Sequence[str]) -> str:
    """E.g. " (needed by stage fit)": the stages that read any of `splits`."""
    needing = [stage for stage in stages or () if set(stage_splits(spec, stage)) & set(splits)]
    return f" (needed by stage {', '.join(needing)})" if needing else ""


@dataclass(frozen=True)
class SplitReport:
    """One line of the directory check: a split read, absent or failing (or a task absent)."""

    task: str
    split: str
    status: Literal["read", "absent", "error"]
    detail: str = ""
    examples: int = 0
    labels: str = ""
    groups: str = ""


def inspect_directory(root: Path, tasks: Sequence[TaskSpec] | None = None) -> Iterator[SplitReport]:
    """Read every split of every task whose folder is under `root`, one report per split.

    A task without its folder gets one "absent" report (split ""), a missing split file an
    "absent" report; only a file that fails to parse is an "error".
    """
    for spec in TASKS.values() if tasks is None else tasks:
        folder = task_dir(spec, root)
        if not folder.is_dir():
            yield SplitReport(spec.key, "", "absent", f"no folder {folder}")
            continue
        present = present_splits(spec, root)
        for split in spec.splits:
            if split not in present:
                path = split_file(spec, root, split)
                yield SplitReport(spec.key, split, "absent", f"no file {path.name}")
                continue
            try:
                examples = read_split(spec, root, split)
            except DataError as err:
                yield SplitReport(spec.key, split, "error", str(err))
                continue
            yield SplitReport(
                spec.key,
                split,
                "read",
                examples=len(examples),
                labels=label_summary(spec, examples),
                groups=group_summary(spec, examples),
            )


def label_summary(spec: TaskSpec, examples: Sequence[Example]) -> str:
    """Counts per label name, the score range for regression, or "none (test)"."""
    labels = [example.label for example in examples if example.label is not None]
    if not labels:
        return "none (unlabelled)"
    if spec.task_type == "regression":
        mean = sum(labels) / len(labels)
        return f"scores {min(labels):.2f} to {max(labels):.2f}, mean {mean:.2f}"
    counts = Counter(labels)
    return ", ".join(f"{name} {counts[index]}" for index, name in enumerate(spec.label_names))


def group_summary(spec: TaskSpec, examples: Sequence[Example]) -> str:
    """Distinct groups per level for grouped tasks, e.g. MultiRC's "456 paragraphs, 5131
    questions" (its examples are the answer options; ReCoRD's, the candidate entities of its
    queries); empty for other tasks."""
    return ", ".join(
        f"{len({example.groups[: depth + 1] for example in examples})} {_plural(field)}"
        for depth, field in enumerate(spec.group_fields)
    )


def _plural(noun: str) -> str:
    return f"{noun[:-1]}ies" if noun.endswith("y") else f"{noun}s"
