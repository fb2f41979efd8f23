"""Read a task split into `Example`s from a local directory in the original formats, or the hub.

Local files are validated row by row so that a bad file fails before any tokenisation starts.
Every error names the file and, where there is one, the line (`path:line: ...`); errors about
columns or fields also name the one missing and those present. The hub is only used when no
data directory is configured.
"""

from __future__ import annotations

import codecs
import csv
import itertools
import json
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
from huggingface_hub import constants as hub_constants

from adapterdrop.data.errors import DataError
from adapterdrop.data.formatters import Pair, Record
from adapterdrop.data.layout import (
    DATA_DIR_ENV,
    check_split_name,
    expected_files,
    split_path,
)
from adapterdrop.data.spec import TaskSpec

_HUB_PROBE_SECONDS = 5.0
_MISSING = object()


Row = tuple[str, Mapping[str, Any], Any, tuple[int, ...]]
"""(location for messages, record with the spec's field names, raw label or _MISSING, groups)"""


@dataclass(frozen=True)
class Example:
    """One model input: a text pair per choice (a single pair unless multiple choice).

    `groups` holds the ids of `TaskSpec.group_fields`, `answer_info` the values of its
    `answer_fields` (ReCoRD: the candidate entity and its query's gold answers).
    """

    pairs: tuple[Pair, ...]
    label: int | float | None
    groups: tuple[int, ...] = ()
    answer_info: tuple[Any, ...] = ()


def read_split(spec: TaskSpec, root: Path | None, split: str) -> list[Example]:
    """All examples of one split, from `root` when given, else from the hub."""
    if root is None:
        check_split_name(spec, split)
        return _read_hub(spec, split)
    path = split_path(spec, root, split)
    read_rows = _tsv_rows if spec.benchmark == "glue" else _jsonl_rows
    rows = read_rows(spec, path, split)
    examples: list[Example] = []
    first = ""
    try:
        for where, record, raw, groups in rows:
            example = _example(spec, split, where, record, _label_index(spec, raw, where), groups)
            if examples and (example.label is None) != (examples[0].label is None):
                here, there = ("no label", "one") if example.label is None else ("a label", "none")
                raise DataError(
                    f"{where}: this row has {here} but the first row ({first}) has {there}; "
                    "the rows of a split must be all labelled or all unlabelled"
                )
            first = first or where
            examples.append(example)
    except UnicodeDecodeError:
        raise _utf8_error(path) from None
    if not examples:
        raise DataError(f"{path}: holds no examples ({_empty_reason(path)})")
    return examples


def _empty_reason(path: Path) -> str:
    if path.stat().st_size == 0:
        return "the file is empty"
    if path.suffix == ".tsv":
        return "a header row but no data rows"
    return "only blank lines"


def _tsv_rows(spec: TaskSpec, path: Path, split: str) -> Iterator[Row]:
    """GLUE TSV rows; QUOTE_NONE because sentences contain unbalanced quote characters."""
    local = spec.local
    columns = list(local.columns or spec.text_fields)
    labelled = not split.startswith("test")
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        try:
            first = next(reader, None)
        except csv.Error as err:
            raise DataError(f"{path}:1: cannot split the line into columns ({err})") from None
        if first is None:
            needed = columns + ([local.label_column] if labelled else [])
            raise DataError(
                f"{path}:1: the file is empty: missing the header row with the column(s) "
                f"{needed} that {spec.key} {split} needs; the file has no columns"
                f"{_headerless_note(spec)}"
            )
        header = first
        rows: Iterator[tuple[int, list[str]]] = ((reader.line_num, row) for row in reader)
        missing = [column for column in columns if column not in first]
        if missing:
            if not (local.headerless_columns and len(first) == len(local.headerless_columns)):
                present = f"the columns {first}" if first else "no columns (a blank line)"
                raise DataError(
                    f"{path}:1: missing column(s) {missing} that {spec.key} needs; the header "
                    f"row has {present}{_headerless_note(spec)}"
                )
            rows = itertools.chain([(1, first)], rows)
            header = list(local.headerless_columns)
        positions = [header.index(column) for column in columns]
        label_at = header.index(local.label_column) if local.label_column in header else None
        if label_at is None and labelled:
            raise DataError(
                f"{path}:1: missing the label column {local.label_column!r} that the {split} "
                f"split needs; the header row has the columns {header}"
            )
        try:
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
        except csv.Error as err:
            where = f"{path}:{reader.line_num}"
            raise DataError(f"{where}: cannot split the line into columns ({err})") from None


def _headerless_note(spec: TaskSpec) -> str:
    columns = spec.local.headerless_columns
    if not columns:
        return ""
    return f" (a file without a header row must have the {len(columns)} columns {list(columns)})"


def _jsonl_rows(spec: TaskSpec, path: Path, split: str) -> Iterator[Row]:
    """SuperGLUE JSON lines; MultiRC nests its answer options and ReCoRD its queries, whose
    answer options (candidate entities) become one row each."""
    labelled = not split.startswith("test")
    with path.open(encoding="utf-8-sig") as handle:
        for line, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            where = f"{path}:{line}"
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as err:
                raise DataError(
                    f"{where}: not a valid JSON object ({err.msg} at column {err.colno})"
                ) from None
            if not isinstance(obj, dict):
                raise DataError(
                    f"{where}: expected a JSON object, got a JSON {_json_type(obj)}: {_clip(obj)}"
                )
            if spec.input_format == "multirc":
                yield from _multirc_rows(obj, where, labelled)
            elif spec.input_format == "record":
                yield from _record_rows(obj, where, labelled)
            else:
                keys = spec.local.columns or spec.text_fields
                values = (_lookup(obj, key, where) for key in keys)
                record = dict(zip(spec.text_fields, values, strict=True))
                column = spec.local.label_column
                label = _label_field(obj, column, where, labelled, column)
                yield where, record, label, ()


def _multirc_rows(obj: Mapping[str, Any], where: str, labelled: bool) -> Iterator[Row]:
    passage = _lookup(obj, "passage", where, dict)
    paragraph = _lookup(passage, "text", where, str, "passage.text")
    paragraph_id = _lookup(obj, "idx", where, int)
    questions = _lookup(passage, "questions", where, list, "passage.questions")
    for q_at, question in enumerate(questions):
        at = f"passage.questions[{q_at}]"
        question = _expect(question, dict, where, at)
        question_id = _lookup(question, "idx", where, int, f"{at}.idx")
        text = _lookup(question, "question", where, str, f"{at}.question")
        for a_at, answer in enumerate(_lookup(question, "answers", where, list, f"{at}.answers")):
            answer = _expect(answer, dict, where, f"{at}.answers[{a_at}]")
            record = {
                "paragraph": paragraph,
                "question": text,
                "answer": _lookup(answer, "text", where, str, f"{at}.answers[{a_at}].text"),
            }
            name = f"{at}.answers[{a_at}].label"
            label = _label_field(answer, "label", where, labelled, name)
            yield where, record, label, (paragraph_id, question_id)


def _record_rows(obj: Mapping[str, Any], where: str, labelled: bool) -> Iterator[Row]:
    """ReCoRD: one row per query and distinct candidate entity of the passage (the entity
    offsets are inclusive at both ends, as in the official files)."""
    passage = _lookup(obj, "passage", where, dict)
    text = _lookup(passage, "text", where, str, "passage.text")
    passage_id = _lookup(obj, "idx", where, int)
    spans = []
    for at, entity in enumerate(_lookup(passage, "entities", where, list, "passage.entities")):
        name = f"passage.entities[{at}]"
        entity = _expect(entity, dict, where, name)
        start = _lookup(entity, "start", where, int, f"{name}.start")
        end = _lookup(entity, "end", where, int, f"{name}.end")
        if not 0 <= start <= end < len(text):
            raise DataError(
                f"{where}: {name} spans characters {start}..{end}, which do not fit the "
                f"passage of {len(text)} characters"
            )
        spans.append((start, text[start : end + 1]))
    candidates = _by_first_start(spans)
    for q_at, qa in enumerate(_lookup(obj, "qas", where, list)):
        at = f"qas[{q_at}]"
        qa = _expect(qa, dict, where, at)
        query_id = _lookup(qa, "idx", where, int, f"{at}.idx")
        query = _lookup(qa, "query", where, str, f"{at}.query")
        answers = _record_answers(qa, where, at, labelled)
        for record, label in _record_candidates(text, query, candidates, answers):
            yield where, record, _MISSING if label is None else label, (passage_id, query_id)


def _record_answers(qa: Mapping[str, Any], where: str, at: str, labelled: bool) -> list[str] | None:
    """The gold answer texts of a ReCoRD query; None when it has none (a test split)."""
    answers = _label_field(qa, "answers", where, labelled, f"{at}.answers")
    if answers is _MISSING or (answers == [] and not labelled):
        return None
    answers = _expect(answers, list, where, f"{at}.answers")
    if not answers:
        raise DataError(f"{where}: field '{at}.answers' is empty, but this split needs labels")
    texts = []
    for a_at, answer in enumerate(answers):
        answer = _expect(answer, dict, where, f"{at}.answers[{a_at}]")
        texts.append(_lookup(answer, "text", where, str, f"{at}.answers[{a_at}].text"))
    return texts


def _by_first_start(spans: Iterable[tuple[int, str]]) -> list[str]:
    """ReCoRD's candidates: the distinct entity texts in the order they first occur."""
    return list(dict.fromkeys(text for _, text in sorted(spans)))


def _record_candidates(
    passage: str, query: str, candidates: Sequence[str], answers: Sequence[str] | None
) -> Iterator[tuple[Record, int | None]]:
    """A (record, label) per candidate of one ReCoRD query: label 1 when the candidate is a
    gold answer, None when the query has no answers (test); each record carries the answers
    for the official metric."""
    gold = tuple(dict.fromkeys(answers or ()))
    for entity in dict.fromkeys(candidates):
        record = {"passage": passage, "query": query, "entity": entity, "answers": gold}
        yield record, None if answers is None else int(entity in gold)


def record_hub_rows(row: Mapping[str, Any]) -> Iterator[tuple[Record, int | None, tuple]]:
    """(record, label, groups) per candidate of a hub ReCoRD row (one query). The hub lists
    the entities as a set; the order comes from `entity_spans` (a list of span objects, or the
    dict of lists `datasets` makes of one), so that it matches the local files'."""
    spans = row.get("entity_spans") or []
    if isinstance(spans, Mapping):
        starts = zip(spans["start"], spans["text"], strict=True)
    else:
        starts = ((span["start"], span["text"]) for span in spans)
    ordered = _by_first_start(starts)
    candidates = ordered + sorted(set(row["entities"]) - set(ordered))
    groups = (row["idx"]["passage"], row["idx"]["query"])
    answers = list(row["answers"]) or None
    for record, label in _record_candidates(row["passage"], row["query"], candidates, answers):
        yield record, label, groups


def _label_field(obj: Mapping[str, Any], key: str, where: str, labelled: bool, name: str) -> Any:
    """The raw label, or _MISSING; a labelled split must have one."""
    label = obj.get(key, _MISSING)
    if labelled and (label is _MISSING or label is None):
        state = "is null" if label is None else "is missing"
        raise DataError(
            f"{where}: label field {name!r} {state}, but this split needs labels; the fields "
            f"present are {list(obj)}"
        )
    return label


def _lookup(
    obj: Any, key: str, where: str, kind: type | None = None, name: str | None = None
) -> Any:
    """Value at a dotted key such as "target.span1_text"; `name` is the key for messages."""
    name = name or key
    value, path = obj, ""
    for part in key.split("."):
        if not isinstance(value, Mapping):
            raise DataError(
                f"{where}: field {path!r} is a JSON {_json_type(value)}, not an object, so it "
                f"has no field {part!r} (needed: {name!r})"
            )
        if part not in value:
            inside = f" of {path!r}" if path else ""
            raise DataError(
                f"{where}: missing field {name!r}; the fields{inside} present are {list(value)}"
            )
        value = value[part]
        path = f"{path}.{part}" if path else part
    if value is None:
        raise DataError(f"{where}: field {name!r} is null")
    return value if kind is None else _expect(value, kind, where, name)


def _expect(value: Any, kind: type, where: str, name: str) -> Any:
    if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return value
    wanted = {dict: "object", list: "array", str: "string", int: "integer"}[kind]
    raise DataError(f"{where}: field {name!r} must be a JSON {wanted}, got {_clip(value)}")


def _json_type(value: Any) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")


def _clip(value: Any, width: int = 60) -> str:
    text = json.dumps(value)
    return text if len(text) <= width else text[: width - 3] + "..."


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
    return Example(pairs, label, groups, tuple(record[field] for field in spec.answer_fields))


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


def _utf8_error(path: Path) -> DataError:
    """The first line of `path` that is not UTF-8, found by decoding line by line."""
    with path.open("rb") as handle:
        for line, raw in enumerate(handle, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as err:
                utf16 = line == 1 and raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
                hint = "the file looks like UTF-16" if utf16 else "GLUE/SuperGLUE files are UTF-8"
                return DataError(
                    f"{path}:{line}: not valid UTF-8: byte {raw[err.start]:#04x} at byte "
                    f"{err.start + 1} of the line ({err.reason}); {hint}: re-save it as UTF-8"
                )
    return DataError(f"{path}: not valid UTF-8; re-save the file as UTF-8")


def _read_hub(spec: TaskSpec, split: str) -> list[Example]:
    examples = []
    for index, row in enumerate(_load_hub_split(spec, split)):
        where = f"hub dataset {spec.hub_id} ({spec.hub_config}) {split} row {index}"
        for record, label, groups in _hub_records(spec, row):
            valid = (None, *range(len(spec.label_names)))
            if spec.task_type != "regression" and label not in valid:
                raise DataError(
                    f"{where}: unknown label {label!r}; valid labels: {spec.label_names}"
                )
            examples.append(_example(spec, split, where, record, label, groups))
    return examples


def _hub_records(spec: TaskSpec, row: Mapping[str, Any]) -> Iterator[tuple[Record, Any, tuple]]:
    """Hub rows already carry the spec's field names and label indices (-1 when unlabelled);
    a ReCoRD row is one query, which becomes one record per candidate entity."""
    if spec.input_format == "record":
        yield from record_hub_rows(row)
        return
    record = {field: row[field] for field in spec.text_fields}
    groups = tuple(row["idx"][field] for field in spec.group_fields)
    yield record, None if row["label"] == -1 else row["label"], groups


def _load_hub_split(spec: TaskSpec, split: str) -> Any:
    """`datasets.load_dataset`, turned into a DataError that says how to use local files."""
    if not datasets.config.HF_HUB_OFFLINE:
        probe_hub(spec, split)
    try:
        return datasets.load_dataset(spec.hub_id, spec.hub_config, split=split)
    except ConnectionError as err:
        raise DataError(hub_message(spec, split, f"the hub is unreachable ({err})")) from err
    except (OSError, ValueError) as err:
        raise DataError(hub_message(spec, split, f"loading failed ({err})")) from err


def probe_hub(spec: TaskSpec, split: str) -> None:
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
        raise DataError(hub_message(spec, split, reason)) from err


def hub_message(spec: TaskSpec, split: str, reason: str) -> str:
    return (
        f"Cannot load {spec.key} {split} from the Hugging Face hub "
        f"({spec.hub_id}, config {spec.hub_config}): {reason}. Set data_dir in the data config "
        f"or the {DATA_DIR_ENV} environment variable to a directory holding "
        f"{spec.benchmark}/{spec.local.folder}/ with {expected_files(spec)}."
    )
