"""What one task is: `TaskSpec` (fields, labels, task type, metrics, sources) and `LocalFormat`.

Records use the hub's field names for every source, so one spec drives the local readers, the hub
reader, the tokeniser and the metrics. The specs of the GLUE and SuperGLUE tasks are in
`adapterdrop.data.tasks`; how each turns a record into model text is in
`adapterdrop.data.formatters`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from adapterdrop.data import metrics
from adapterdrop.data.formatters import FORMATTERS, Pair, Record

TaskType = Literal["classification", "regression", "multiple_choice"]

GLUE_SPLITS = ("train", "validation", "test")
MNLI_SPLITS = (
    "train",
    "validation_matched",
    "validation_mismatched",
    "test_matched",
    "test_mismatched",
)


@dataclass(frozen=True)
class LocalFormat:
    """Where a task's fields sit in its original files, whose names differ from the hub's.

    `columns` gives, per text field, the TSV header name (GLUE) or the JSON key, dotted for
    nested keys (SuperGLUE); empty means the file uses the field names. `label_values` lists
    the raw label values in `label_names` order; empty means the file writes the label names.
    `headerless_columns` names the columns of files that have no header row (CoLA train/dev).
    """

    folder: str
    columns: tuple[str, ...] = ()
    label_column: str = "label"
    label_values: tuple[Any, ...] = ()
    headerless_columns: tuple[str, ...] = ()


@dataclass(frozen=True)
class TaskSpec:
    """Everything the data layer and the training code need to know about one task."""

    name: str
    benchmark: Literal["glue", "superglue"]
    task_type: TaskType
    label_names: tuple[str, ...]
    text_fields: tuple[str, ...]
    metrics: tuple[str, ...]
    hub_id: str
    hub_config: str
    local: LocalFormat
    input_format: str = "pair"
    splits: tuple[str, ...] = GLUE_SPLITS
    group_fields: tuple[str, ...] = ()
    answer_fields: tuple[str, ...] = ()
    """(candidate text, gold answers) record fields of a ranking task (ReCoRD): each group is
    scored by the text of its top-scored candidate against the gold answers, not by labels."""

    @property
    def key(self) -> str:
        return f"{self.benchmark}/{self.name}"

    @property
    def num_labels(self) -> int:
        """Size of the model's output layer: one score for regression and per choice."""
        return 1 if self.task_type != "classification" else len(self.label_names)

    @property
    def num_choices(self) -> int:
        return len(self.label_names) if self.task_type == "multiple_choice" else 0

    @property
    def main_metric(self) -> str:
        return self.metrics[0]

    @property
    def validation_split(self) -> str:
        return next(split for split in self.splits if split.startswith("validation"))

    @property
    def test_split(self) -> str:
        return next(split for split in self.splits if split.startswith("test"))

    @property
    def group_id_keys(self) -> tuple[str, ...]:
        """Names of the per-example group id arrays (MultiRC's paragraph and question ids)."""
        return tuple(f"{field}_ids" for field in self.group_fields)

    @property
    def group_info_keys(self) -> tuple[str, ...]:
        """Names of the per-example arrays that `compute_metrics` expects besides predictions
        and labels: the group ids, then a ranking task's candidate texts and gold answers."""
        return self.group_id_keys + self.answer_fields

    def format_inputs(self, record: Record) -> tuple[Pair, ...]:
        """Text pair(s) for one record: one pair, or one per choice for multiple choice."""
        return FORMATTERS[self.input_format](record, self.text_fields)

    def compute_metrics(self, predictions: Any, labels: Any, **group_info: Any) -> dict[str, float]:
        """Official metrics from logits or predicted labels; MultiRC needs its group ids,
        ReCoRD its group ids, candidate texts and gold answers (see `group_info_keys`)."""
        missing = [key for key in self.group_info_keys if key not in group_info]
        if missing:
            raise ValueError(f"{self.key} metrics need the group info {missing} (see group_info)")
        predictions = _as_numpy(predictions)
        labels = _as_numpy(labels).reshape(-1)
        if self.task_type != "regression" and (labels < 0).any():
            raise ValueError("labels contain -1: an unlabelled (test) split cannot be scored")
        groups = {key: _as_numpy(group_info[key]) for key in self.group_id_keys}
        if self.answer_fields:
            candidates, answers = (group_info[field] for field in self.answer_fields)
            return metrics.compute_ranking_metrics(
                self.metrics, _positive_scores(predictions), candidates, answers, **groups
            )
        if self.task_type == "regression":
            predictions = predictions.reshape(-1)
        elif predictions.ndim == 2:
            predictions = predictions.argmax(axis=-1)
        return metrics.compute_metrics(self.metrics, predictions, labels, **groups)


def _positive_scores(predictions: np.ndarray) -> np.ndarray:
    """How strongly each example is predicted positive: the log-odds of binary logits (the
    ranking then matches the softmax probability's), else the values as given (e.g. labels)."""
    if predictions.ndim == 2 and predictions.shape[1] == 2:
        return predictions[:, 1] - predictions[:, 0]
    return predictions.reshape(-1)


def _as_numpy(values: Any) -> np.ndarray:
    """Arrays, lists or tensors; half-precision logits are widened since numpy lacks bfloat16."""
    if hasattr(values, "detach"):
        values = values.detach().cpu()
        values = values.float() if values.is_floating_point() else values
        values = values.numpy()
    return np.asarray(values)
