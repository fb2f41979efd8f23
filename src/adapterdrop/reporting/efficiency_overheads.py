"""Table of the overheads study from stored results (measured by
:mod:`adapterdrop.bench.experiments.efficiency_overheads`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from adapterdrop.bench.experiments.efficiency_overheads import BASELINE
from adapterdrop.bench.phases import PHASES
from adapterdrop.reporting.cells import estimate, median, setting_columns, with_int_columns

#: AdapterDrop Table 1, Pfeiffer adapter relative to full fine-tuning (speed, > 1 = faster).
PAPER_PFEIFFER = {"training": "up to 1.6", "inference": "0.94-0.96"}


def _method_labels(row: pd.Series) -> list[str]:
    """Method labels of a flattened point (its ``config.methods.<label>.name`` columns)."""
    prefix, suffix = "config.methods.", ".name"
    return [
        column[len(prefix) : -len(suffix)]
        for column in row.index
        if column.startswith(prefix) and column.endswith(suffix) and pd.notna(row[column])
    ]


def overhead_tables(df: pd.DataFrame, cfg: Mapping[str, Any]) -> dict[str, pd.DataFrame]:
    """``efficiency_overheads``: per method its trainable parameters (heads excluded), inference
    time and speed relative to the plain model, and training-step time and speed relative to
    full fine-tuning; a paper row for the Pfeiffer adapter (AdapterDrop Table 1)."""
    by_phase = {row["config.phase"]: row for _, row in df.iterrows()}
    first = next(iter(by_phase.values()))
    rows = []
    for label in ["full", *_method_labels(first)]:
        out: dict[str, Any] = {
            "source": "ours",
            "method": "full fine-tuning (plain model at inference)" if label == "full" else label,
            **setting_columns(first),
            "batch_size": int(first["config.batch_size"]),
            "seq_len": int(first["config.seq_len"]),
            "trainable_params": int(first[f"metrics.params.{label}"]),
        }
        for phase in PHASES:
            if phase in by_phase:
                name = BASELINE[phase] if label == "full" else label
                out[f"{phase}_s"] = median(by_phase[phase], name)
                out[f"{phase}_speed_vs_{BASELINE[phase]}"] = estimate(
                    by_phase[phase], f"speed.{name}"
                )
        rows.append(out)
    rows.append(
        {
            "source": "paper",
            "method": "pfeiffer (AdapterDrop Table 1, vs full fine-tuning)",
            "inference_speed_vs_plain": PAPER_PFEIFFER["inference"],
            "training_speed_vs_full": PAPER_PFEIFFER["training"],
        }
    )
    frame = with_int_columns(
        pd.DataFrame(rows), ["threads", "batch_size", "seq_len", "trainable_params"]
    )
    return {"efficiency_overheads": frame}
