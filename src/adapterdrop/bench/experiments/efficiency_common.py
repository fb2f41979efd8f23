"""Shared pieces of the efficiency studies: point fields, the point's device, and speed ratios
with their confidence intervals (their table cells: :mod:`adapterdrop.reporting.cells`).

Every study times its callables interleaved in one process (``time_phase``), so each ratio is
paired by round. Training steps come from :mod:`adapterdrop.bench.training_step`, the same step
Tables 1 and 3 time (autocast forward, fp32 loss, backward, fused AdamW), so the studies'
numbers compare with theirs. Models come from :func:`adapterdrop.bench.models.build_encoder`,
kept in the shared :mod:`adapterdrop.bench.model_cache` under keys naming their study.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch

from adapterdrop.bench.devices import resolve_device
from adapterdrop.bench.settings import point_settings
from adapterdrop.bench.stats import RatioCI, ratio_of_medians, summarize


def common_fields(cfg: Mapping[str, Any], study: str) -> dict[str, Any]:
    """Settings every point records, whatever its study."""
    return {"study": study, **point_settings(cfg)}


def device_of(point: Mapping[str, Any]) -> torch.device:
    return resolve_device(point["device"])


def summaries(samples: Mapping[str, Sequence[float]]) -> dict[str, Any]:
    return {name: summarize(values, name=name) for name, values in samples.items()}


def speeds(
    samples: Mapping[str, Sequence[float]], baseline: str, names: Iterable[str]
) -> dict[str, RatioCI]:
    """Speed of each name relative to ``baseline``: ``t_baseline / t_name`` (> 1 = faster)."""
    return {name: ratio_of_medians(samples[baseline], samples[name]) for name in names}
