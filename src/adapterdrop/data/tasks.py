"""The task catalogue: the spec of every GLUE and SuperGLUE task, and `get_task_spec`.

This is the one source of truth about the tasks. Each `conf/data/<benchmark>/<name>.yaml`
only selects a task by its key and may override loader settings (such as `max_length`); a test
checks that every spec here has its config file and every config file names a spec here.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from adapterdrop.data.errors import DataError
from adapterdrop.data.spec import MNLI_SPLITS, LocalFormat, TaskSpec

__all__ = ["TASKS", "DataError", "LocalFormat", "TaskSpec", "get_task_spec"]

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
        "record",
        task_type="classification",
        label_names=("False", "True"),
        text_fields=("passage", "query", "entity"),
        metrics=("f1", "em"),
        local=LocalFormat("ReCoRD", label_values=(0, 1)),
        input_format="record",
        group_fields=("passage", "query"),
        answer_fields=("entity", "answers"),
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
