"""The remaining efficiency claims, one sub-grid (point field ``study``) and table(s) each.

* ``robust``: robust AdapterDrop training step vs a standard adapter (paper: 26 % faster);
* ``specialized``: training step with adapters only in layers ``>= n``, relative to ``n = 0``;
* ``coda``: CoDA inference vs token ratio and sequence length (paper: 2-8x);
* ``overheads``: AdapterBias, LoRA, Pfeiffer, Houlsby vs the plain model / full fine-tuning;
* ``multitask``: K adapters vs K full fine-tunings vs one multi-task model (Mundra et al.).

Each study lives in an ``efficiency_<group>`` module with its points and its ``measure``; this
module validates the selection (all studies' points before any model is built) and routes each
point to its study's ``measure``. Their tables: :mod:`adapterdrop.reporting.efficiency`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from adapterdrop.bench.experiments import efficiency_coda as coda
from adapterdrop.bench.experiments import efficiency_drop as drop
from adapterdrop.bench.experiments import efficiency_multitask as multitask
from adapterdrop.bench.experiments import efficiency_overheads as overheads
from adapterdrop.bench.validate import check_list

#: Bump when a change to what this grid measures changes its numbers: its points are then
#: remeasured and its tables start afresh (``bench.sweep.with_code_version``).
CODE_VERSION = 1


class Study(NamedTuple):
    points: Callable[[Mapping[str, Any]], list[dict[str, Any]]]
    measure: Callable[[dict[str, Any]], tuple[dict[str, Any], dict[str, list[float]]]]


STUDIES = {
    "robust": Study(drop.robust_points, drop.measure_robust),
    "specialized": Study(drop.specialized_points, drop.measure_specialized),
    "coda": Study(coda.coda_points, coda.measure_coda),
    "overheads": Study(overheads.overhead_points, overheads.measure_overheads),
    "multitask": Study(multitask.multitask_points, multitask.measure_multitask),
}


def points(cfg: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The selected studies' points, in study order so consecutive points share models."""
    selected = check_list(cfg["bench"]["studies"], "bench.studies", "[robust, coda]")
    unknown = [s for s in selected if s not in STUDIES]
    if unknown or not selected:
        raise ValueError(f"bench.studies {selected} invalid; choose from {list(STUDIES)}")
    if len(set(selected)) != len(selected):
        raise ValueError(f"bench.studies has duplicates: {selected}")
    return [point for study in selected for point in STUDIES[study].points(cfg)]


def measure(point: dict[str, Any]) -> tuple[dict[str, Any], dict[str, list[float]]]:
    return STUDIES[point["study"]].measure(point)
