"""The remaining efficiency claims, one sub-grid (point field ``study``) and table(s) each.

* ``robust``: robust AdapterDrop training step vs a standard adapter (paper: 26 % faster);
* ``specialized``: training step with adapters only in layers ``>= n``, relative to ``n = 0``;
* ``coda``: CoDA inference vs token ratio and sequence length (paper: 2-8x);
* ``overheads``: AdapterBias, LoRA, Pfeiffer, Houlsby vs the plain model / full fine-tuning;
* ``multitask``: K adapters vs K full fine-tunings vs one multi-task model (Mundra et al.).

Each study lives in an ``efficiency_<group>`` module with ``points(cfg)``,
``measure(point)`` and ``tables(df, cfg)``; this module validates the selection (all studies'
points before any model is built), routes each point to its study's ``measure`` and each
study's rows to its table builder.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import pandas as pd

from adapterdrop.bench.experiments import efficiency_coda as coda
from adapterdrop.bench.experiments import efficiency_drop as drop
from adapterdrop.bench.experiments import efficiency_multitask as multitask
from adapterdrop.bench.experiments import efficiency_overheads as overheads


class Study(NamedTuple):
    points: Callable[[Mapping[str, Any]], list[dict[str, Any]]]
    measure: Callable[[dict[str, Any]], tuple[dict[str, Any], dict[str, list[float]]]]
    tables: Callable[[pd.DataFrame, Mapping[str, Any]], dict[str, pd.DataFrame]]


STUDIES = {
    "robust": Study(drop.robust_points, drop.measure_robust, drop.robust_tables),
    "specialized": Study(
        drop.specialized_points, drop.measure_specialized, drop.specialized_tables
    ),
    "coda": Study(coda.coda_points, coda.measure_coda, coda.coda_tables),
    "overheads": Study(
        overheads.overhead_points, overheads.measure_overheads, overheads.overhead_tables
    ),
    "multitask": Study(
        multitask.multitask_points, multitask.measure_multitask, multitask.multitask_tables
    ),
}
#: Headline tables and the columns ``make tables`` puts side by side across machines (keyed
#: without dtype, which machines resolve differently).
COMPARISON = {
    "efficiency_overheads": (
        ["source", "method"],
        ["training_speed_vs_full", "inference_speed_vs_plain"],
    ),
    "efficiency_robust": (["source"], ["robust_speedup"]),
    "efficiency_coda": (["source", "seq_len", "token_ratio"], ["speed_vs_dense_r1"]),
}


def points(cfg: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The selected studies' points, in study order so consecutive points share models."""
    selected = list(cfg["bench"]["studies"])
    unknown = [s for s in selected if s not in STUDIES]
    if unknown or not selected:
        raise ValueError(f"bench.studies {selected} invalid; choose from {list(STUDIES)}")
    if len(set(selected)) != len(selected):
        raise ValueError(f"bench.studies has duplicates: {selected}")
    return [point for study in selected for point in STUDIES[study].points(cfg)]


def measure(point: dict[str, Any]) -> tuple[dict[str, Any], dict[str, list[float]]]:
    return STUDIES[point["study"]].measure(point)


def tables(df: pd.DataFrame, cfg: Mapping[str, Any]) -> dict[str, pd.DataFrame]:
    """Every measured study's tables, each built from that study's rows only."""
    out: dict[str, pd.DataFrame] = {}
    for study, rows in df.groupby("config.study", sort=False):
        out |= STUDIES[study].tables(rows.reset_index(drop=True), cfg)
    return out
