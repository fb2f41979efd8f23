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
    def group_info_keys(self) -> tuple[str, ...]:
        """Names of the per-example group id arrays that `compute_metrics` expects."""
        return tuple(f"{field}_ids" for field in self.group_fields)

    def format_inputs(self, record: Record) -> tuple[Pair, ...]:
        """Text pair(s) for one record: one pair, or one per choice for multiple choice."""
        return FORMATTERS[self.input_format](record, self.text_fields)

    def compute_metrics(self, predictions: Any, labels: Any, **group_info: Any) -> dict[str, float]:
        """Official metrics from logits or predicted labels; MultiRC needs its group ids."""
        missing = [key for key in self.group_info_keys if key not in group_info]
        if missing:
            raise ValueError(f"{self.key} metrics need the group ids {missing} (see group_info)")
        predictions = _as_numpy(predictions)
        if self.task_type == "regression":
            predictions = predictions.reshape(-1)
        elif predictions.ndim == 2:
            predictions = predictions.argmax(axis=-1)
        labels = _as_numpy(labels).reshape(-1)
        if self.task_type != "regression" and (labels < 0).any():
            raise ValueError("labels contain -1: an unlabelled (test) split cannot be scored")
        groups = {key: _as_numpy(group_info[key]) for key in self.group_info_keys}
        return metrics.compute_metrics(self.metrics, predictions, labels, **groups)


def _as_numpy(values: Any) -> np.ndarray:
    """Arrays, lists or tensors; half-precision logits are widened since numpy lacks bfloat16."""
    if hasattr(values, "detach"):
        values = values.detach().cpu()
        values = values.float() if values.is_floating_point() else values
        values = values.numpy()
    return np.asarray(values)
