"""Table 3 from stored results: fusion vs full fine-tuning and vs one adapter per K (with the
paper's rows), times and CIs, the pruned fusion's speed-up, and our speed-up over AdapterHub
against the issue's target (measured by :mod:`adapterdrop.bench.experiments.table3`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from adapterdrop.bench.experiments.table3 import IMPLEMENTATIONS, SETUPS
from adapterdrop.reporting.cells import peak_mib

#: Headline table and the columns ``make tables`` puts side by side across machines.
COMPARISON = {
    "table3": (
        ["num_adapters", "source"],
        ["training_vs_full", "inference_vs_full", "training_vs_adapter", "inference_vs_adapter"],
    )
}
#: AdapterDrop paper, Table 3: K -> (vs full FT training, inference; vs one adapter training,
#: inference).
PAPER = {
    2: (0.92, 0.64, 0.57, 0.68),
    8: (0.53, 0.38, 0.33, 0.40),
    16: (0.33, 0.24, 0.21, 0.26),
}
#: AdapterDrop paper: fusion over 8 adapters pruned to 2 runs inference 1.68x faster.
PAPER_PRUNING = {"adapters": 8, "keep": 2, "speedup": 1.68}
#: The issue's target: our fusion inference over >= 8 adapters at least 1.5x AdapterHub's speed.
TARGET_OVER_ADAPTERHUB = 1.5
TARGET_MIN_ADAPTERS = 8
#: Columns of the main table, in the paper's order (matching the tuples of ``PAPER``).
_COLUMNS = ("training_vs_full", "inference_vs_full", "training_vs_adapter", "inference_vs_adapter")


def _get(point: pd.Series, column: str) -> float:
    return point[column] if column in point and pd.notna(point[column]) else np.nan


def _main(df: pd.DataFrame) -> pd.DataFrame:
    """Rows (K, source): the four relative speeds, measured rows then the paper's."""
    rows: dict[tuple[int, str], dict[str, Any]] = {}
    for _, point in df.iterrows():
        k, phase = int(point["config.num_adapters"]), point["config.phase"]
        for impl in IMPLEMENTATIONS:
            if pd.isna(_get(point, f"metrics.vs_full.{impl}.ratio")):
                continue
            row = rows.setdefault((k, impl), {"num_adapters": k, "source": impl})
            row[f"{phase}_vs_full"] = point[f"metrics.vs_full.{impl}.ratio"]
            row[f"{phase}_vs_adapter"] = point[f"metrics.vs_adapter.{impl}.ratio"]
    for k in sorted({key[0] for key in rows}):
        if k in PAPER:
            values = dict(zip(_COLUMNS, PAPER[k], strict=True))
            rows[(k, "paper")] = {"num_adapters": k, "source": "paper", **values}
    order = {impl: i for i, impl in enumerate((*IMPLEMENTATIONS, "paper"))}
    table = pd.DataFrame(
        sorted(rows.values(), key=lambda r: (r["num_adapters"], order[r["source"]]))
    )
    columns = ["num_adapters", "source", *(c for c in _COLUMNS if c in table)]
    return table[columns]


def _detail(df: pd.DataFrame) -> pd.DataFrame:
    """Per (phase, K, implementation): median times and the ratios with their CIs."""
    rows = []
    for _, point in df.iterrows():
        for impl in IMPLEMENTATIONS:
            if pd.isna(_get(point, f"metrics.vs_full.{impl}.ratio")):
                continue
            row = {
                "phase": point["config.phase"],
                "num_adapters": int(point["config.num_adapters"]),
                "implementation": impl,
                "full_ms": 1e3 * point["metrics.full.median"],
                "adapter_ms": 1e3 * point[f"metrics.{impl}_adapter.median"],
                "fusion_ms": 1e3 * point[f"metrics.{impl}_fusion.median"],
            }
            for setup in ("adapter", "fusion"):
                peak = peak_mib(point, f"{impl}_{setup}")
                if pd.notna(peak):
                    row[f"{setup}_peak_mib"] = peak
            for ratio in ("vs_full", "vs_adapter"):
                for part, suffix in (("ratio", ""), ("low", "_low"), ("high", "_high")):
                    row[f"{ratio}{suffix}"] = point[f"metrics.{ratio}.{impl}.{part}"]
            rows.append(row)
    keys = ["phase", "num_adapters", "implementation"]
    return pd.DataFrame(rows).sort_values(keys).reset_index(drop=True)


def _pruning(df: pd.DataFrame) -> pd.DataFrame:
    """Inference speed-up of the pruned fusion per implementation, then the paper's."""
    rows = []
    for _, point in df.iterrows():
        for impl in IMPLEMENTATIONS:
            if pd.isna(_get(point, f"metrics.pruning.{impl}.ratio")):
                continue
            rows.append(
                {
                    "source": impl,
                    "adapters": int(point["config.num_adapters"]),
                    "keep": int(point["config.prune_to"]),
                    "fusion_ms": 1e3 * point[f"metrics.{impl}_fusion.median"],
                    "pruned_ms": 1e3 * point[f"metrics.{impl}_pruned.median"],
                    "speedup": point[f"metrics.pruning.{impl}.ratio"],
                    "ci_low": point[f"metrics.pruning.{impl}.low"],
                    "ci_high": point[f"metrics.pruning.{impl}.high"],
                }
            )
    if rows:
        rows.append({"source": "paper", **PAPER_PRUNING})
    return pd.DataFrame(rows)


def _vs_adapterhub(df: pd.DataFrame) -> pd.DataFrame:
    """Our speed-up over AdapterHub per (phase, K, set-up), beside the issue's target."""
    rows = []
    for _, point in df.iterrows():
        k, phase = int(point["config.num_adapters"]), point["config.phase"]
        for setup in SETUPS:
            prefix = f"metrics.ours_over_adapterhub.{setup}"
            if pd.isna(_get(point, f"{prefix}.ratio")):
                continue
            targeted = phase == "inference" and setup == "fusion" and k >= TARGET_MIN_ADAPTERS
            speedup = point[f"{prefix}.ratio"]
            rows.append(
                {
                    "phase": phase,
                    "num_adapters": k,
                    "setup": setup,
                    "ours_ms": 1e3 * point[f"metrics.ours_{setup}.median"],
                    "adapterhub_ms": 1e3 * point[f"metrics.adapterhub_{setup}.median"],
                    "speedup": speedup,
                    "ci_low": point[f"{prefix}.low"],
                    "ci_high": point[f"{prefix}.high"],
                    "target": TARGET_OVER_ADAPTERHUB if targeted else np.nan,
                    "meets_target": bool(speedup >= TARGET_OVER_ADAPTERHUB) if targeted else None,
                }
            )
    if not rows:
        return pd.DataFrame()
    keys = ["phase", "num_adapters", "setup"]
    return pd.DataFrame(rows).sort_values(keys).reset_index(drop=True)


def tables(df: pd.DataFrame, cfg: Mapping[str, Any]) -> dict[str, pd.DataFrame]:
    """``table3``: fusion vs full FT and vs one adapter per K (ours, AdapterHub, paper rows);
    ``table3_detail``: times and CIs; ``table3_pruning``: pruned-fusion speed-up;
    ``table3_vs_adapterhub``: our speed-up over AdapterHub with the issue's target."""
    return {
        "table3": _main(df),
        "table3_detail": _detail(df),
        "table3_pruning": _pruning(df),
        "table3_vs_adapterhub": _vs_adapterhub(df),
    }
