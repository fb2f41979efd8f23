"""Table 2 from stored results: the per-layer speed-up per T read off a fit of the measured
t(n) (ours, AdapterHub, the paper's, the ideal), and the curve itself with its ratios (measured
by :mod:`adapterdrop.bench.experiments.table2`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from adapterdrop.bench.costmodel import fit_cost_model, ideal_per_layer_speedup
from adapterdrop.bench.experiments.table2 import IMPLEMENTATIONS
from adapterdrop.models import num_layers
from adapterdrop.reporting.cells import peak_mib, processes_measured

#: AdapterDrop paper, Table 2: speed-up per dropped layer for T = 2, 4, 8, 16 parallel tasks.
PAPER_PER_LAYER = {2: 0.043, 4: 0.066, 8: 0.078, 16: 0.084}
#: Curve columns: metric path under ``metrics.per_n.<n>.`` -> column name.
CURVE_COLUMNS = {
    "ours.median": "ours_s",
    "ours.robust_cv": "ours_cv",
    "adapterhub.median": "adapterhub_s",
    "adapterhub.robust_cv": "adapterhub_cv",
    "adapterhub_over_ours.ratio": "adapterhub_over_ours",
    "adapterhub_over_ours.low": "adapterhub_over_ours_ci_low",
    "adapterhub_over_ours.high": "adapterhub_over_ours_ci_high",
    "floor": "floor",
    "ours_over_floor": "ours_over_floor",
    "measured_floor": "measured_floor",
    "ours_over_measured_floor": "ours_over_measured_floor",
}
#: Peak memory columns of the curve: callable prefix -> column (MiB).
MEMORY_COLUMNS = {"ours": "ours_peak_mib", "adapterhub": "adapterhub_peak_mib"}
#: Headline table and the columns ``make tables`` puts side by side across machines.
COMPARISON = {
    "table2": (
        ["num_tasks"],
        ["ours_per_layer_%", "adapterhub_per_layer_%", "adapterhub_over_ours_min", "ours_r2"],
    )
}


def _curve(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (T, n) from the per-T records."""
    rows = []
    for _, point in df.iterrows():
        for n in point["config.dropped_layers"]:
            row = {"num_tasks": int(point["config.num_tasks"]), "dropped_layers": int(n)}
            for metric, column in CURVE_COLUMNS.items():
                value = point.get(f"metrics.per_n.{n}.{metric}")
                if value is not None and pd.notna(value):
                    row[column] = value
            for impl, column in MEMORY_COLUMNS.items():
                peak = peak_mib(point, f"{impl}@n={n}")
                if pd.notna(peak):
                    row[column] = peak
            rows.append(row)
    return pd.DataFrame(rows).sort_values(["num_tasks", "dropped_layers"], ignore_index=True)


def tables(df: pd.DataFrame, cfg: Mapping[str, Any]) -> dict[str, pd.DataFrame]:
    """``table2``: per-layer speed-up per T (ours, AdapterHub, paper, ideal);
    ``table2_curve``: the measured t(n) with ratios, one row per (T, n)."""
    layers = num_layers(cfg["model"])
    curve = _curve(df)
    rows = []
    by_t = {int(p["config.num_tasks"]): p for _, p in df.iterrows()}
    for t, group in curve.groupby("num_tasks"):
        point = by_t[int(t)]
        row: dict[str, Any] = {"num_tasks": int(t), "processes": processes_measured(point)}
        for impl in IMPLEMENTATIONS:
            if f"{impl}_s" not in group or group[f"{impl}_s"].isna().all():
                continue
            fit = fit_cost_model(
                group["dropped_layers"].tolist(),
                group[f"{impl}_s"].tolist(),
                num_layers=layers,
                num_tasks=int(t),
            )
            row[f"{impl}_per_layer_%"] = 100 * fit.per_layer_speedup
            row[f"{impl}_r2"] = fit.r_squared
            if layers > 5:  # the paper's headline: 5 dropped layers (read off the fit)
                row[f"{impl}_at_n5_%"] = 100 * fit.speedup(5)
        row["paper_per_layer_%"] = 100 * PAPER_PER_LAYER.get(int(t), float("nan"))
        row["ideal_per_layer_%"] = 100 * ideal_per_layer_speedup(
            num_layers=layers, num_tasks=int(t)
        )
        if "ours_per_layer_%" in row:
            row["ours_vs_ideal"] = row["ours_per_layer_%"] / row["ideal_per_layer_%"]
        if "adapterhub_over_ours" in group:
            row["adapterhub_over_ours_min"] = group["adapterhub_over_ours"].min()
            # points where AdapterHub is faster beyond noise: the whole 95 % CI below 1
            row["adapterhub_faster_points"] = int((group["adapterhub_over_ours_ci_high"] < 1).sum())
        for column in ("ours_over_floor", "ours_over_measured_floor"):
            if column in group:
                row[f"{column}_max"] = group[column].max()
        row["plain_single_over_floor"] = point.get("metrics.plain_single_over_floor")
        rows.append(row)
    return {"table2": pd.DataFrame(rows), "table2_curve": curve}
