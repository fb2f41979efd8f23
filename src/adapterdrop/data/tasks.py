"""Task specifications for GLUE and SuperGLUE: fields, labels, task type, metrics and sources.

Records use the hub's field names for every source, so one spec drives the local readers, the hub
reader, the tokeniser and the metrics. `format_inputs` turns a record into the text pair(s) the
model sees; tasks whose inputs are not a plain text pair (COPA, WSC, WiC, MultiRC) document their
encoding in their formatter below.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

import numpy as np

from adapterdrop.data import metrics

TaskType = Literal["classification", "regression", "multiple_choice"]
Pair = tuple[str, str | None]
Record = Mapping[str, Any]

GLUE_SPLITS = ("train", "validation", "test")
MNLI_SPLITS = (
    "train",
    "validation_matched",
    "validation_mismatched",
    "test_matched",
    "test_mismatched",
)


class DataError(ValueError):
    """Bad task name, data location or file content, reported before any long work starts."""


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
        return _FORMATTERS[self.input_format](record, self.text_fields)

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


def _text_pair(record: Record, fields: tuple[str, ...]) -> tuple[Pair, ...]:
    second = str(record[fields[1]]) if len(fields) > 1 else None
    return ((str(record[fields[0]]), second),)


_COPA_QUESTIONS = {"cause": "What was the cause of this?", "effect": "What happened as a result?"}


def _copa(record: Record, fields: tuple[str, ...]) -> tuple[Pair, ...]:
    """One (premise, question + choice) pair per choice; the model scores each pair."""
    question = _COPA_QUESTIONS.get(record["question"])
    if question is None:
        raise ValueError(f"question {record['question']!r} is neither 'cause' nor 'effect'")
    premise = str(record["premise"])
    return tuple((premise, f"{question} {record[choice]}") for choice in ("choice1", "choice2"))


def _multirc(record: Record, fields: tuple[str, ...]) -> tuple[Pair, ...]:
    """(paragraph, question + candidate answer): is this answer option correct?"""
    return ((str(record["paragraph"]), f"{record['question']} {record['answer']}"),)


def _wic(record: Record, fields: tuple[str, ...]) -> tuple[Pair, ...]:
    """The two sentences with the target word wrapped in asterisks, located by its offsets."""
    first = _mark_chars(record["sentence1"], record["start1"], record["end1"])
    second = _mark_chars(record["sentence2"], record["start2"], record["end2"])
    return ((first, second),)


def _mark_chars(text: str, start: Any, end: Any) -> str:
    if not (isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(text)):
        raise ValueError(f"word offsets [{start}, {end}) do not fit the sentence {text!r}")
    return f"{text[:start]}*{text[start:end]}*{text[end:]}"


def _wsc(record: Record, fields: tuple[str, ...]) -> tuple[Pair, ...]:
    """Pair classification: (text with the pronoun span2 in asterisks, "Does *span2* refer to
    span1?"). The original span indices are sometimes off by a word or differ in case or
    punctuation, so the pronoun is marked at the matching word nearest to its index; when no
    word matches, the text stays unmarked and the question alone names the pronoun."""
    words = str(record["text"]).split(" ")
    span1 = " ".join(str(record["span1_text"]).split())
    span2 = " ".join(str(record["span2_text"]).split())
    start = _nearest_match(words, span2.split(" "), record["span2_index"])
    if start is not None:
        end = start + len(span2.split(" ")) - 1
        words[start] = "*" + words[start]
        words[end] = words[end] + "*"
    return ((" ".join(words), f"Does *{span2}* refer to {span1}?"),)


def _nearest_match(words: list[str], span: list[str], index: Any) -> int | None:
    if not isinstance(index, int):
        raise ValueError(f"span index {index!r} is not an integer")
    target = [_bare(word) for word in span]
    starts = [
        start
        for start in range(len(words) - len(span) + 1)
        if [_bare(word) for word in words[start : start + len(span)]] == target
    ]
    return min(starts, key=lambda start: abs(start - index), default=None)


def _bare(word: str) -> str:
    return "".join(char for char in word.lower() if char.isalnum())


_FORMATTERS: Mapping[str, Callable[[Record, tuple[str, ...]], tuple[Pair, ...]]] = {
    "pair": _text_pair,
    "copa": _copa,
    "multirc": _multirc,
    "wic": _wic,
    "wsc": _wsc,
}

_GLUE = "nyu-mll/glue"
_SUPERGLUE = "aps/super_glue"
_BINARY = ("0", "1")
_BOOLS = (False, True)
_NLI2 = ("entailment", "not_entailment")


def _glue(name: str, **fields: Any) -> TaskSpec:
    return TaskSpec(name=name, benchmark="glue", hub_id=_GLUE, hub_config=name, **fields)


def _superglue(name: str, hub_config: str | None = None, **fields: Any) -> TaskSpec:
    return TaskSpec(
        name=name,
        benchmark="superglue",
        hub_id=_SUPERGLUE,
        hub_config=hub_config or name,
        **fields,
    )


_SPECS = (
    _glue(
        "cola",
        task_type="classification",
        label_names=("unacceptable", "acceptable"),
        text_fields=("sentence",),
        metrics=("matthews_corr",),
        local=LocalFormat(
            "CoLA",
            ("sentence",),
            label_values=_BINARY,
            headerless_columns=("source", "label", "original_label", "sentence"),
        ),
    ),
    _glue(
        "sst2",
        task_type="classification",
        label_names=("negative", "positive"),
        text_fields=("sentence",),
        metrics=("accuracy",),
        local=LocalFormat("SST-2", ("sentence",), label_values=_BINARY),
    ),
    _glue(
        "mrpc",
        task_type="classification",
        label_names=("not_equivalent", "equivalent"),
        text_fields=("sentence1", "sentence2"),
        metrics=("f1", "accuracy"),
        local=LocalFormat("MRPC", ("#1 String", "#2 String"), "Quality", _BINARY),
    ),
    _glue(
        "stsb",
        task_type="regression",
        label_names=("score",),
        text_fields=("sentence1", "sentence2"),
        metrics=("pearson", "spearman"),
        local=LocalFormat("STS-B", ("sentence1", "sentence2"), "score"),
    ),
    _glue(
        "qqp",
        task_type="classification",
        label_names=("not_duplicate", "duplicate"),
        text_fields=("question1", "question2"),
        metrics=("f1", "accuracy"),
        local=LocalFormat("QQP", ("question1", "question2"), "is_duplicate", _BINARY),
    ),
    _glue(
        "mnli",
        task_type="classification",
        label_names=("entailment", "neutral", "contradiction"),
        text_fields=("premise", "hypothesis"),
        metrics=("accuracy",),
        local=LocalFormat("MNLI", ("sentence1", "sentence2"), "gold_label"),
        splits=MNLI_SPLITS,
    ),
    _glue(
        "qnli",
        task_type="classification",
        label_names=_NLI2,
        text_fields=("question", "sentence"),
        metrics=("accuracy",),
        local=LocalFormat("QNLI", ("question", "sentence")),
    ),
    _glue(
        "rte",
        task_type="classification",
        label_names=_NLI2,
        text_fields=("sentence1", "sentence2"),
        metrics=("accuracy",),
        local=LocalFormat("RTE", ("sentence1", "sentence2")),
    ),
    _glue(
        "wnli",
        task_type="classification",
        label_names=("not_entailment", "entailment"),
        text_fields=("sentence1", "sentence2"),
        metrics=("accuracy",),
        local=LocalFormat("WNLI", ("sentence1", "sentence2"), label_values=_BINARY),
    ),
    _superglue(
        "boolq",
        task_type="classification",
        label_names=("False", "True"),
        text_fields=("question", "passage"),
        metrics=("accuracy",),
        local=LocalFormat("BoolQ", label_values=_BOOLS),
    ),
    _superglue(
        "cb",
        task_type="classification",
        label_names=("entailment", "contradiction", "neutral"),
        text_fields=("premise", "hypothesis"),
        metrics=("macro_f1", "accuracy"),
        local=LocalFormat("CB"),
    ),
    _superglue(
        "copa",
        task_type="multiple_choice",
        label_names=("choice1", "choice2"),
        text_fields=("premise", "choice1", "choice2", "question"),
        metrics=("accuracy",),
        local=LocalFormat("COPA", label_values=(0, 1)),
        input_format="copa",
    ),
    _superglue(
        "multirc",
        task_type="classification",
        label_names=("False", "True"),
        text_fields=("paragraph", "question", "answer"),
        metrics=("f1a", "em"),
        local=LocalFormat("MultiRC", label_values=(0, 1)),
        input_format="multirc",
        group_fields=("paragraph", "question"),
    ),
    _superglue(
        "rte",
        task_type="classification",
        label_names=_NLI2,
        text_fields=("premise", "hypothesis"),
        metrics=("accuracy",),
        local=LocalFormat("RTE"),
    ),
    _superglue(
        "wic",
        task_type="classification",
        label_names=("False", "True"),
        text_fields=("word", "sentence1", "sentence2", "start1", "end1", "start2", "end2"),
        metrics=("accuracy",),
        local=LocalFormat("WiC", label_values=_BOOLS),
        input_format="wic",
    ),
    _superglue(
        "wsc",
        hub_config="wsc.fixed",
        task_type="classification",
        label_names=("False", "True"),
        text_fields=("text", "span1_text", "span1_index", "span2_text", "span2_index"),
        metrics=("accuracy",),
        local=LocalFormat(
            "WSC",
            (
                "text",
                "target.span1_text",
                "target.span1_index",
                "target.span2_text",
                "target.span2_index",
            ),
            label_values=_BOOLS,
        ),
        input_format="wsc",
    ),
)

TASKS: Mapping[str, TaskSpec] = MappingProxyType({spec.key: spec for spec in _SPECS})


def _normalise(name: str) -> str:
    return name.strip().lower().replace("-", "").replace("_", "")


def get_task_spec(task: str, benchmark: str | None = None) -> TaskSpec:
    """Look up `"glue/rte"`, or `"rte"` with `benchmark="glue"`; bare names must be unambiguous.

    Case, '-' and '_' are ignored, so `"GLUE/SST-2"` and `"super_glue/cb"` work too.
    """
    wanted = _normalise(task if benchmark is None else f"{benchmark}/{task}")
    matches = [spec for key, spec in TASKS.items() if wanted in (key, key.split("/")[1])]
    if len(matches) == 1:
        return matches[0]
    if matches:
        options = ", ".join(spec.key for spec in matches)
        raise DataError(f"Task {task!r} is ambiguous: say which one of {options}")
    raise DataError(f"Unknown task {task!r}. Valid tasks: {', '.join(TASKS)}")
