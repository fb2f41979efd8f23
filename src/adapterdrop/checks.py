"""Value checks shared by every entry point: each error names the key, the value given and
what would be valid."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """An int or a float, not a bool (``True`` is an int to Python, never a size here)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_int(value: Any, what: str, minimum: int = 1) -> int:
    """An int ``>= minimum`` (bools and floats such as 1.5 are refused)."""
    if not is_int(value) or value < minimum:
        raise ValueError(f"{what} must be an int >= {minimum}, got {value!r}")
    return value


def check_bool(value: Any, what: str) -> bool:
    """A switch is ``true`` or ``false``: ``force=maybe`` is a non-empty string, so it read as
    true and silently did what the user may not have meant."""
    if not isinstance(value, bool):
        raise ValueError(f"{what} must be true or false, got {value!r}")
    return value


def check_int_list(value: Any, what: str, minimum: int = 1, example: str = "[2, 4]") -> list[int]:
    """A non-empty list of distinct ints ``>= minimum``; a scalar gets a hint to bracket it."""
    if not isinstance(value, list | tuple):
        raise ValueError(f"{what} must be a list such as {example}, got {value!r}")
    if not value:
        raise ValueError(f"{what} must not be empty (a list such as {example})")
    for item in value:
        if not is_int(item) or item < minimum:
            raise ValueError(f"{what} must be >= {minimum} in every entry (ints), got {item!r}")
    if len(set(value)) != len(value):
        raise ValueError(f"{what} must be distinct, got {list(value)}")
    return list(value)


def unknown_keys(given: Mapping[str, Any], known: Iterable[str]) -> list[str]:
    return sorted(set(given) - set(known))


def check_known_keys(given: Mapping[str, Any], known: Iterable[str], what: str) -> None:
    """Refuse keys no code reads (``+bench.foo=1``): they would not change the measurement,
    yet a user would believe they had, and the point id would be that of the plain grid."""
    unknown = unknown_keys(given, known)
    if unknown:
        raise ValueError(f"{what} has no key(s) {unknown}; valid: {sorted(known)}")
