"""The one cache of built benchmark models that every grid shares: consecutive points of a
sweep reuse their models instead of building them again."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from adapterdrop.results import canonical_json


class ModelCache:
    """Keep the last built models: consecutive points of a sweep share their model.

    Building bert-base takes seconds and two copies (ours, AdapterHub) use memory, so only
    the most recent key is kept.
    """

    def __init__(self) -> None:
        self._key: str | None = None
        self._value: Any = None

    def clear(self) -> None:
        self._key, self._value = None, None

    def get(self, key: str, build: Callable[[], Any]) -> Any:
        if key != self._key:
            self.clear()
            self._value, self._key = build(), key
        return self._value


#: The cache of every grid: a key names its grid (or study), so grids never share models.
MODELS = ModelCache()


def cached(key: Mapping[str, Any], build: Callable[[], Any]) -> Any:
    """The models for ``key`` (a JSON-able description), built once for consecutive points."""
    return MODELS.get(canonical_json(key), build)


def clear_cache() -> None:
    """Drop the cached models (before spawning processes that build their own)."""
    MODELS.clear()
