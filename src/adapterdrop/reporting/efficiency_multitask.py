"""Tables of the multi-task study from stored results: per K and strategy the cost of a
training round or a served request, and the parameters stored for K tasks (measured by
:mod:`adapterdrop.bench.experiments.efficiency_multitask`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from adapterdrop.bench.experiments.efficiency_multitask import STRATEGIES
from adapterdrop.bench.phases import PHASES
from adapterdrop.reporting.cells import estimate, setting_columns

#: Bytes per stored parameter: checkpoints are kept in fp32.
STORED_BYTES = 4
NOTE = "per-step cost; Mundra et al.'s training time was time to convergence (not measured here)"


def _stored(row: pd.Series, strategy: str) -> int:
    """Parameters kept for K tasks under ``strategy``."""
    k = int(row["config.num_tasks"])
    backbone, adapter, head = (
        int(row[f"metrics.params.{part}"]) for part in ("backbone", "adapter", "head")
    )
    if strategy == "k_adapters":
        return backbone + k * (adapter + head)
    if strategy == "k_full":
        return k * (backbone + head)
    return backbone + k * head


def multitask_tables(df: pd.DataFrame, cfg: Mapping[str, Any]) -> dict[str, pd.DataFrame]:
    """``efficiency_multitask_training``: per K and strategy the cost of a round (one batch per
    task), per example, speed relative to K full fine-tunings, and the parameters stored for K
    tasks; ``efficiency_multitask_inference``: the cost of serving one request for all K tasks
    and its speed relative to K full models."""
    tables: dict[str, list[dict[str, Any]]] = {phase: [] for phase in PHASES}
    for _, row in df.sort_values(["config.num_tasks"]).iterrows():
        phase, k = row["config.phase"], int(row["config.num_tasks"])
        batch = int(row["config.batch_size"])
        for name, (label, callable_name, times_k) in STRATEGIES[phase].items():
            cost = float(row[f"metrics.cost.{name}.median"])
            out: dict[str, Any] = {
                **setting_columns(row),
                "num_tasks": k,
                "strategy": label,
                "timed_as": f"K x {callable_name}" if times_k else callable_name,
                "batch_per_task" if phase == "training" else "batch_size": batch,
                "seq_len": int(row["config.seq_len"]),
            }
            if phase == "training":
                stored = _stored(row, name)
                out |= {
                    "s_per_round": cost,
                    "ms_per_example": 1e3 * cost / (k * batch),
                    "speed_vs_k_full": estimate(row, f"speed.{name}"),
                    "stored_params": stored,
                    "stored_MB_fp32": stored * STORED_BYTES / 2**20,
                    "stored_params_per_task": stored // k,
                    "note": NOTE,
                }
            else:
                out |= {
                    "s_per_request": cost,
                    "speed_vs_k_full": estimate(row, f"speed.{name}"),
                }
            tables[phase].append(out)
    return {
        f"efficiency_multitask_{phase}": pd.DataFrame(rows)
        for phase, rows in tables.items()
        if rows
    }
