"""The one exception type of the data layer."""

from __future__ import annotations


class DataError(ValueError):
    """Bad task name, data location or file content, reported before any long work starts."""
