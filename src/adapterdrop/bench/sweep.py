"""Run one benchmark grid end to end: validate, measure missing points, build its tables."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import pandas as pd
import torch
from omegaconf import OmegaConf

from adapterdrop.bench.allocator import retain_freed_memory
from adapterdrop.bench.experiments import get_experiment
from adapterdrop.bench.runner import RunSummary, run_points
from adapterdrop.bench.workloads import resolve_device
from adapterdrop.results import point_id
from adapterdrop.tables import load_ok_results, write_table

log = logging.getLogger(__name__)


PRESETS = ("auto", "cpu", "paper")


def apply_preset(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """Merge the grid's ``presets.paper`` overrides when asked, or by default on CUDA.

    The CPU defaults finish in minutes here; the paper preset restores paper-size settings
    (grid and timing budget) for real hardware. The merged values land in every point's
    recorded config; a timing value given explicitly in ``timing`` still wins over them.
    """
    preset = cfg["preset"]
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {PRESETS}")
    if preset == "auto":
        preset = "paper" if resolve_device(cfg["device"]).type == "cuda" else "cpu"
    overrides = cfg["bench"].get("presets", {}).get(preset, {}) if preset == "paper" else {}
    merged = OmegaConf.merge(OmegaConf.create(dict(cfg)), OmegaConf.create(overrides))
    result = OmegaConf.to_container(merged)
    result["bench"].pop("presets", None)
    result["preset"] = preset
    return result


def run_benchmark(cfg: Mapping[str, Any]) -> tuple[RunSummary, dict[str, str]]:
    """Measure ``cfg.bench`` and return the run summary and each table as markdown.

    With ``measure`` false nothing is timed: the tables are rebuilt from ``results/raw``.

    Tables use only this grid's points (by config hash), so results of other settings that
    share ``results/raw/<bench>`` never mix into them.
    """
    cfg = apply_preset(cfg)
    if cfg["measure"] and cfg["retain_freed_memory"]:
        retain_freed_memory()
    if cfg["threads"] is not None:
        torch.set_num_threads(int(cfg["threads"]))
    name = cfg["bench"]["name"]
    experiment = get_experiment(name)
    points = experiment.points(cfg)
    summary = RunSummary()
    if cfg["measure"]:
        summary = run_points(
            name,
            points,
            experiment.measure,
            results_root=cfg["paths"]["results_root"],
            force=cfg["force"],
            progress=cfg["progress"],
        )
    log.info("%s: %s", name, summary)
    df = load_ok_results(cfg["paths"]["results_root"], name)
    wanted = {point_id(p) for p in points}
    df = df[df["point_id"].isin(wanted)] if not df.empty else df
    if df.empty:
        return summary, {}
    return summary, {
        table: write_table(frame, table, tables_root=cfg["paths"]["tables_root"])
        for table, frame in experiment.tables(df, cfg).items()
        if isinstance(frame, pd.DataFrame) and not frame.empty
    }
