"""Input formatters: how a task's record becomes the text pair(s) the model sees.

A plain pair task uses its first two text fields; tasks whose inputs are not a plain text pair
(COPA, WSC, WiC, MultiRC, ReCoRD) document their encoding in their formatter below. A formatter
raises KeyError, TypeError or ValueError on a record it cannot encode; the readers turn that
into a DataError naming the file and line.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

Pair = tuple[str, str | None]
Record = Mapping[str, Any]
Formatter = Callable[[Record, tuple[str, ...]], tuple[Pair, ...]]


def _text(record: Record, field: str) -> str:
    """A text field's value, which must be a string (a number or list there is a data error)."""
    value = record[field]
    if not isinstance(value, str):
        raise TypeError(f"field {field!r} must be text, got {type(value).__name__} {value!r}")
    return value


def _text_pair(record: Record, fields: tuple[str, ...]) -> tuple[Pair, ...]:
    second = _text(record, fields[1]) if len(fields) > 1 else None
    return ((_text(record, fields[0]), second),)


_COPA_QUESTIONS = {"cause": "What was the cause of this?", "effect": "What happened as a result?"}


def _copa(record: Record, fields: tuple[str, ...]) -> tuple[Pair, ...]:
    """One (premise, question + choice) pair per choice; the model scores each pair."""
    question = _COPA_QUESTIONS.get(record["question"])
    if question is None:
        raise ValueError(f"question {record['question']!r} is neither 'cause' nor 'effect'")
    premise = _text(record, "premise")
    choices = (_text(record, choice) for choice in ("choice1", "choice2"))
    return tuple((premise, f"{question} {choice}") for choice in choices)


def _multirc(record: Record, fields: tuple[str, ...]) -> tuple[Pair, ...]:
    """(paragraph, question + candidate answer): is this answer option correct?"""
    question, answer = _text(record, "question"), _text(record, "answer")
    return ((_text(record, "paragraph"), f"{question} {answer}"),)


_PLACEHOLDER = "@placeholder"


def _record(record: Record, fields: tuple[str, ...]) -> tuple[Pair, ...]:
    """(passage, query with its @placeholder filled by the candidate entity): is this entity
    the missing one? The passage's "@highlight" line markers become dashes."""
    query, entity = _text(record, "query"), _text(record, "entity")
    if _PLACEHOLDER not in query:
        raise ValueError(f"query {query!r} has no {_PLACEHOLDER} to fill")
    passage = _text(record, "passage").replace("@highlight\n", "- ")
    return ((passage, query.replace(_PLACEHOLDER, entity)),)


def _wic(record: Record, fields: tuple[str, ...]) -> tuple[Pair, ...]:
    """The two sentences with the target word wrapped in asterisks, located by its offsets."""
    first = _mark_chars(_text(record, "sentence1"), record["start1"], record["end1"])
    second = _mark_chars(_text(record, "sentence2"), record["start2"], record["end2"])
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
    words = _text(record, "text").split(" ")
    span1 = " ".join(_text(record, "span1_text").split())
    span2 = " ".join(_text(record, "span2_text").split())
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


FORMATTERS: Mapping[str, Formatter] = {
    "pair": _text_pair,
    "copa": _copa,
    "multirc": _multirc,
    "record": _record,
    "wic": _wic,
    "wsc": _wsc,
}
