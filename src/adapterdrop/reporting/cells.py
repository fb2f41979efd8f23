"""Table cells read from a flattened result row (``config.*`` / ``metrics.*`` columns) and
formatted for a table: estimates with their interval, medians, peak memory, process counts."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd


def peak_mib(point: pd.Series, callable_name: str) -> float:
    """A flattened bench result's peak memory of one callable in MiB (NaN where not recorded:
    older results, or a platform without a probe)."""
    value = point.get(f"metrics.peak_memory_bytes.{callable_name}")
    return float("nan") if value is None or pd.isna(value) else value / 2**20


def processes_measured(point: pd.Series) -> int:
    """How many fresh processes measured a flattened result (1 for results older than the
    setting)."""
    processes = point.get("metrics.processes")
    return 1 if processes is None or pd.isna(processes) else int(processes)


def format_estimate(
    value: float, low: float | None = None, high: float | None = None, *, fmt: str = "{:.3f}"
) -> str:
    """``value [low, high]`` for a point estimate with its confidence interval."""
    text = fmt.format(value)
    if low is not None and high is not None:
        text += f" [{fmt.format(low)}, {fmt.format(high)}]"
    return text


def estimate(row: pd.Series, prefix: str) -> str:
    """``ratio [low, high]`` from the flattened ``metrics.<prefix>.ratio/low/high`` columns."""
    column = f"metrics.{prefix}"
    return format_estimate(row[f"{column}.ratio"], row[f"{column}.low"], row[f"{column}.high"])


def median(row: pd.Series, name: str) -> float:
    return float(row[f"metrics.{name}.median"])


def setting_columns(row: pd.Series) -> dict[str, Any]:
    """Model, precision and threads of a point: what its numbers depend on besides the grid."""
    return {
        "model": row["config.model.name"],
        "dtype": row["config.dtype"],
        "threads": int(row["config.threads"]),
    }


def with_int_columns(frame: pd.DataFrame, columns: Iterable[str]) -> pd.DataFrame:
    """Counts stay integers (blank, not NaN, in paper rows) instead of turning into floats."""
    for column in columns:
        if column in frame:
            frame[column] = frame[column].astype("Int64")
    return frame
