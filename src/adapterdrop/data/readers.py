"""Read a task split into `Example`s from a local directory in the original formats, or the hub.

Local files are validated row by row so that a bad file fails with its name and line number
before any tokenisation starts. The hub is only used when no data directory is configured.
"""

from __future__ import annotations

import csv
import itertools
import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
from huggingface_hub import constants as hub_constants

from adapterdrop.data.errors import DataError
from adapterdrop.data.formatters import Pair
from adapterdrop.data.spec import TaskSpec

DATA_DIR_ENV = "ADAPTERDROP_DATA_DIR"
_FORMATS = {"glue": ("tsv", "dev", "tab-separated"), "superglue": ("jsonl", "val", "JSON lines")}
_HUB_PROBE_SECONDS = 5.0
_MISSING = object()


Row = tuple[str, Mapping[str, Any], Any, tuple[int, ...]]
"""(location for messages, record with the spec's field names, raw label or _MISSING, groups)"""


@dataclass(frozen=True)
class Example:
    """One model input: a text pair per choice (a single pair unless multiple choice)."""

    pairs: tuple[Pair, ...]
    label: int | float | None
    groups: tuple[int, ...] = ()


def resolve_data_dir(spec: TaskSpec, data_dir: str | os.PathLike[str] | None) -> Path | None:
    """The configured data directory (argument, else env variable), checked to hold the task.

    None means no local directory is configured, so the hub is the source.
    """
    chosen = data_dir or os.environ.get(DATA_DIR_ENV) or None
    if chosen is None:
        return None
    root = Path(chosen).expanduser()
    if not task_dir(spec, root).is_dir():
        raise DataError(
            f"No {spec.key} data at {task_dir(spec, root)}: data_dir ({root}) must hold "
            f"{spec.benchmark}/{spec.local.folder}/ with {_expected_files(spec)}"
        )
    return root


def task_dir(spec: TaskSpec, root: Path) -> Path:
    return root / spec.benchmark / spec.local.folder


def split_path(spec: TaskSpec, root: Path, split: str) -> Path:
    """E.g. glue/MNLI/dev_matched.tsv or superglue/CB/val.jsonl under `root`; must exist."""
    _check_split(spec, split)
    suffix, validation_stem, _ = _FORMATS[spec.benchmark]
    path = task_dir(spec, root) / f"{split.replace('validation', validation_stem)}.{suffix}"
    if not path.is_file():
        raise DataError(f"Missing {spec.key} {split} file {path}; expected {_expected_files(spec)}")
    return path


def _check_split(spec: TaskSpec, split: str) -> None:
    if split not in spec.splits:
        raise DataError(f"{spec.key} has no split {split!r}; its splits are {spec.splits}")


def _expected_files(spec: TaskSpec) -> str:
    suffix, validation_stem, kind = _FORMATS[spec.benchmark]
    names = [f"{split.replace('validation', validation_stem)}.{suffix}" for split in spec.splits]
    return f"{', '.join(names)} ({kind} files as in the official download)"


def source_fingerprint(spec: TaskSpec, root: Path | None, split: str) -> str:
    """Identifies the split's raw data for the cache key; a changed local file changes it."""
    if root is None:
        _check_split(spec, split)
        return f"hub:{spec.hub_id}:{spec.hub_config}:{split}"
    path = split_path(spec, root, split)
    stat = path.stat()
    return f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"


def read_split(spec: TaskSpec, root: Path | None, split: str) -> list[Example]:
    """All examples of one split, from `root` when given, else from the hub."""
    if root is None:
        _check_split(spec, split)
        return _read_hub(spec, split)
    path = split_path(spec, root, split)
    rows = _tsv_rows(spec, path, split) if spec.benchmark == "glue" else _jsonl_rows(spec, path)
    examples = [
        _example(spec, split, where, record, _label_index(spec, raw, where), groups)
        for where, record, raw, groups in rows
    ]
    if not examples:
        raise DataError(f"{path} holds no examples")
    if len({example.label is None for example in examples}) > 1:
        raise DataError(f"{path}: some rows have a label and others have none")
    return examples


def _tsv_rows(spec: TaskSpec, path: Path, split: str) -> Iterator[Row]:
    """GLUE TSV rows; QUOTE_NONE because sentences contain unbalanced quote characters."""
    local = spec.local
    columns = local.columns or spec.text_fields
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader, [])
        rows = ((reader.line_num, row) for row in reader)
        if not set(columns) <= set(header):
            if len(header) != len(local.headerless_columns):
                raise DataError(
                    f"{path}:1: expected a header row with the columns {list(columns)}, "
                    f"got {header}"
                )
            rows = itertools.chain([(1, header)], rows)
            header = list(local.headerless_columns)
        positions = [header.index(column) for column in columns]
        label_at = header.index(local.label_column) if local.label_column in header else None
        if label_at is None and not split.startswith("test"):
            raise DataError(
                f"{path}: no label column {local.label_column!r} in the header {header}; "
                f"the {split} split needs labels"
            )
        for line, row in rows:
            if not row:
                continue
            where = f"{path}:{line}"
            if len(row) != len(header):
                raise DataError(
                    f"{where}: expected {len(header)} tab-separated columns {header}, "
                    f"got {len(row)}"
                )
            record = dict(zip(spec.text_fields, (row[at] for at in positions), strict=True))
            yield where, record, _MISSING if label_at is None else row[label_at], ()


def _jsonl_rows(spec: TaskSpec, path: Path) -> Iterator[Row]:
    """SuperGLUE JSON lines; MultiRC nests its answer options, which become one row each."""
    with path.open(encoding="utf-8-sig") as handle:
        for line, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            where = f"{path}:{line}"
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as err:
                raise DataError(f"{where}: not a valid JSON object ({err.msg})") from None
            if not isinstance(obj, dict):
                raise DataError(f"{where}: expected a JSON object, got {type(obj).__name__}")
            if spec.input_format == "multirc":
                yield from _multirc_rows(obj, where)
            else:
                keys = spec.local.columns or spec.text_fields
                values = (_lookup(obj, key, where) for key in keys)
                record = dict(zip(spec.text_fields, values, strict=True))
                yield where, record, obj.get(spec.local.label_column, _MISSING), ()


def _multirc_rows(obj: Mapping[str, Any], where: str) -> Iterator[Row]:
    passage = _lookup(obj, "passage", where)
    paragraph = _lookup(passage, "text", where)
    paragraph_id = _lookup(obj, "idx", where)
    for question in _lookup(passage, "questions", where):
        question_id = _lookup(question, "idx", where)
        for answer in _lookup(question, "answers", where):
            record = {
                "paragraph": paragraph,
                "question": _lookup(question, "question", where),
                "answer": _lookup(answer, "text", where),
            }
            yield where, record, answer.get("label", _MISSING), (paragraph_id, question_id)


def _lookup(obj: Any, key: str, where: str) -> Any:
    """Value at a dotted key such as "target.span1_text"."""
    value = obj
    for part in key.split("."):
        if not isinstance(value, Mapping) or part not in value:
            raise DataError(f"{where}: missing field {key!r}")
        value = value[part]
    return value


def _example(
    spec: TaskSpec, split: str, where: str, record: Mapping[str, Any], label: Any, groups: tuple
) -> Example:
    """Validate one row's inputs and label presence; `where` names the file and line or hub row."""
    if label is None and not split.startswith("test"):
        raise DataError(f"{where}: missing label; the {split} split needs labels")
    try:
        pairs = spec.format_inputs(record)
    except (KeyError, TypeError, ValueError) as err:
        raise DataError(f"{where}: cannot build the {spec.key} input: {err}") from None
    return Example(pairs, label, groups)


def _label_index(spec: TaskSpec, raw: Any, where: str) -> int | float | None:
    """Label index (or float score) of a raw file value; None for unlabelled rows."""
    if raw is _MISSING or raw is None:
        return None
    if spec.task_type == "regression":
        try:
            return float(raw)
        except (TypeError, ValueError):
            raise DataError(f"{where}: label {raw!r} is not a number") from None
    values = spec.local.label_values or spec.label_names
    for index, value in enumerate(values):
        if raw == value and type(raw) is type(value):
            return index
    raise DataError(f"{where}: unknown label {raw!r} for {spec.key}; valid labels: {list(values)}")


def _read_hub(spec: TaskSpec, split: str) -> list[Example]:
    """Hub rows already carry the spec's field names and label indices (-1 when unlabelled)."""
    examples = []
    for index, row in enumerate(_load_hub_split(spec, split)):
        where = f"hub dataset {spec.hub_id} ({spec.hub_config}) {split} row {index}"
        label = None if row["label"] == -1 else row["label"]
        if spec.task_type != "regression" and label not in (None, *range(len(spec.label_names))):
            raise DataError(f"{where}: unknown label {label!r}; valid labels: {spec.label_names}")
        record = {field: row[field] for field in spec.text_fields}
        groups = tuple(row["idx"][field] for field in spec.group_fields)
        examples.append(_example(spec, split, where, record, label, groups))
    return examples


def _load_hub_split(spec: TaskSpec, split: str) -> Any:
    """`datasets.load_dataset`, turned into a DataError that says how to use local files."""
    if not datasets.config.HF_HUB_OFFLINE:
        _probe_hub(spec, split)
    try:
        return datasets.load_dataset(spec.hub_id, spec.hub_config, split=split)
    except ConnectionError as err:
        raise DataError(_hub_message(spec, split, f"the hub is unreachable ({err})")) from err
    except (OSError, ValueError) as err:
        raise DataError(_hub_message(spec, split, f"loading failed ({err})")) from err


def _probe_hub(spec: TaskSpec, split: str) -> None:
    """Fail in seconds when offline instead of after `datasets`' retries (about half a minute).

    Set HF_HUB_OFFLINE=1 to skip this check and use a copy already in the datasets cache.
    """
    request = urllib.request.Request(hub_constants.ENDPOINT, method="HEAD")
    try:
        with urllib.request.urlopen(request, timeout=_HUB_PROBE_SECONDS):
            return
    except urllib.error.HTTPError:
        return
    except OSError as err:
        reason = f"the hub is unreachable ({hub_constants.ENDPOINT}: {err})"
        raise DataError(_hub_message(spec, split, reason)) from err


def _hub_message(spec: TaskSpec, split: str, reason: str) -> str:
    return (
        f"Cannot load {spec.key} {split} from the Hugging Face hub "
        f"({spec.hub_id}, config {spec.hub_config}): {reason}. Set data_dir in the data config "
        f"or the {DATA_DIR_ENV} environment variable to a directory holding "
        f"{spec.benchmark}/{spec.local.folder}/ with {_expected_files(spec)}."
    )
