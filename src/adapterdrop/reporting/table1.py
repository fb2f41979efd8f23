"""Table 1 from stored results: relative speed of adapters over full fine-tuning per cell, and
its range per method and phase beside the paper's statements (measured by
:mod:`adapterdrop.bench.experiments.table1`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from adapterdrop.bench.experiments.table1 import IMPLEMENTATIONS, METHODS
from adapterdrop.reporting.cells import peak_mib, processes_measured

#: AdapterDrop paper, Table 1 (relative speed adapter / full FT, over its grid): training up to
#: 1.6x faster; inference at 0.94-0.96 of full fine-tuning. Per-cell values are not available.
PAPER_SPEED = {"training": (None, 1.6), "inference": (0.94, 0.96)}
#: The issue's target for one adapter's inference overhead over the plain model.
TARGET_OVERHEAD = 0.05
#: Headline table and the columns ``make tables`` puts side by side across machines.
COMPARISON = {
    "table1": (
        ["phase", "implementation", "method", "seq_len", "batch_size"],
        ["relative_speed", "ci_low", "ci_high", "overhead_%"],
    )
}


def _cells(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (phase, seq_len, batch_size, implementation, method)."""
    rows = []
    for _, point in df.iterrows():
        for impl in IMPLEMENTATIONS:
            for method in METHODS:
                prefix = f"metrics.speed.{impl}.{method}"
                if f"{prefix}.ratio" not in point or pd.isna(point[f"{prefix}.ratio"]):
                    continue
                speed = point[f"{prefix}.ratio"]
                rows.append(
                    {
                        "phase": point["config.phase"],
                        "implementation": impl,
                        "method": method,
                        "seq_len": int(point["config.seq_len"]),
                        "batch_size": int(point["config.batch_size"]),
                        "full_ms": 1e3 * point["metrics.full.median"],
                        "adapter_ms": 1e3 * point[f"metrics.{impl}_{method}.median"],
                        **_peak_columns(point, f"{impl}_{method}"),
                        "relative_speed": speed,
                        "ci_low": point[f"{prefix}.low"],
                        "ci_high": point[f"{prefix}.high"],
                        "processes": processes_measured(point),
                        "overhead_%": 100 * (1 / speed - 1)
                        if point["config.phase"] == "inference"
                        else np.nan,
                    }
                )
    columns = ["phase", "implementation", "method", "seq_len", "batch_size"]
    return pd.DataFrame(rows).sort_values(columns).reset_index(drop=True)


def _peak_columns(point: pd.Series, name: str) -> dict[str, float]:
    """Peak memory of the full model and the adapter in MiB, where the result has it."""
    peaks = {"full_peak_mib": peak_mib(point, "full"), "adapter_peak_mib": peak_mib(point, name)}
    return {column: value for column, value in peaks.items() if pd.notna(value)}


def _summary(cells: pd.DataFrame) -> pd.DataFrame:
    """Measured range per (implementation, method, phase) beside the paper's statements."""
    rows = []
    for (impl, method, phase), group in cells.groupby(["implementation", "method", "phase"]):
        paper_low, paper_high = PAPER_SPEED[phase]
        row: dict[str, Any] = {
            "implementation": impl,
            "method": method,
            "phase": phase,
            "cells": len(group),
            "speed_min": group["relative_speed"].min(),
            "speed_median": group["relative_speed"].median(),
            "speed_max": group["relative_speed"].max(),
            "paper_speed_min": np.nan if paper_low is None else paper_low,
            "paper_speed_max": paper_high,
        }
        if phase == "inference":
            row["overhead_max_%"] = group["overhead_%"].max()
            row["paper_overhead_%"] = (
                f"{100 * (1 / paper_high - 1):.1f}-{100 * (1 / paper_low - 1):.1f}"
            )
            row["target_overhead_%"] = 100 * TARGET_OVERHEAD
            row["within_target"] = bool(row["overhead_max_%"] <= 100 * TARGET_OVERHEAD)
        rows.append(row)
    return pd.DataFrame(rows)


def tables(df: pd.DataFrame, cfg: Mapping[str, Any]) -> dict[str, pd.DataFrame]:
    """``table1``: relative speed per cell with its CI (and the inference overhead);
    ``table1_summary``: its range per method and phase, with the paper's statements."""
    cells = _cells(df)
    return {"table1": cells, "table1_summary": _summary(cells)}
