"""Tables of the robust and specialized drop studies from stored results (measured by
:mod:`adapterdrop.bench.experiments.efficiency_drop`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from adapterdrop.reporting.cells import estimate, median, setting_columns, with_int_columns

#: AdapterDrop paper: robust AdapterDrop training steps are 26 % faster than a standard adapter.
PAPER_ROBUST_SPEEDUP = 1.26


def _shape_columns(row: pd.Series) -> dict[str, Any]:
    return {
        **setting_columns(row),
        "batch_size": int(row["config.batch_size"]),
        "seq_len": int(row["config.seq_len"]),
    }


def robust_tables(df: pd.DataFrame, cfg: Mapping[str, Any]) -> dict[str, pd.DataFrame]:
    """``efficiency_robust``: standard vs robust step with the paper's 26 %;
    ``efficiency_robust_curve``: the measured step time at every dropped ``n``."""
    summary, curve = [], []
    for _, row in df.iterrows():
        max_n = int(row["config.max_n"])
        ratio = row["metrics.robust_speedup.ratio"]
        summary.append(
            {
                "source": "ours",
                **_shape_columns(row),
                "n_drawn_from": f"0..{max_n}",
                "standard_step_s": median(row, "n0"),
                "robust_expected_step_s": row["metrics.robust_expected_s"],
                "robust_speedup": estimate(row, "robust_speedup"),
                "robust_faster_%": 100 * (ratio - 1),
                "estimate": "mean over n of measured t(n) (exact for n ~ U{0..max_n})",
            }
        )
        for n in range(max_n + 1):
            curve.append(
                {
                    **_shape_columns(row),
                    "dropped_layers": n,
                    "step_s": median(row, f"n{n}"),
                    "robust_cv": row[f"metrics.n{n}.robust_cv"],
                    "speed_vs_n0": estimate(row, f"speed.n{n}"),
                }
            )
    summary.append(
        {
            "source": "paper",
            "n_drawn_from": "0..11",
            "robust_speedup": f"{PAPER_ROBUST_SPEEDUP:.2f}",
            "robust_faster_%": 100 * (PAPER_ROBUST_SPEEDUP - 1),
            "estimate": "AdapterDrop (Rücklé et al. 2021), bert-base on GPU",
        }
    )
    return {
        "efficiency_robust": with_int_columns(
            pd.DataFrame(summary), ["threads", "batch_size", "seq_len"]
        ),
        "efficiency_robust_curve": pd.DataFrame(curve),
    }


def specialized_tables(df: pd.DataFrame, cfg: Mapping[str, Any]) -> dict[str, pd.DataFrame]:
    """``efficiency_specialized``: step time and speed-up vs ``n = 0`` for each ``leave_out``."""
    rows = []
    for _, row in df.iterrows():
        for n in row["config.dropped_layers"]:
            speed = row[f"metrics.speed.n{n}.ratio"]
            rows.append(
                {
                    **_shape_columns(row),
                    "dropped_layers": int(n),
                    "adapter_params": int(row[f"metrics.params.n{n}"]),
                    "step_s": median(row, f"n{n}"),
                    "robust_cv": row[f"metrics.n{n}.robust_cv"],
                    "speed_vs_n0": estimate(row, f"speed.n{n}"),
                    "faster_%": 100 * (speed - 1),
                }
            )
    frame = with_int_columns(pd.DataFrame(rows), ["adapter_params"])
    return {"efficiency_specialized": frame}
