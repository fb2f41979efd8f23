"""Shared pieces of the efficiency studies: point fields, models, inputs, and speed ratios
with their confidence intervals (their table cells: :mod:`adapterdrop.reporting.cells`).

Every study times its callables interleaved in one process (``time_phase``), so each ratio is
paired by round. Training steps come from :mod:`adapterdrop.bench.training_step`, the same step
Tables 1 and 3 time (autocast forward, fp32 loss, backward, fused AdamW), so the studies'
numbers compare with theirs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import torch

from adapterdrop.bench.stats import RatioCI, ratio_of_medians, summarize
from adapterdrop.bench.training_step import random_labels
from adapterdrop.bench.workloads import ModelCache, point_settings, random_inputs, resolve_device
from adapterdrop.engine import AdapterEncoder
from adapterdrop.methods import build_method
from adapterdrop.models import load_backbone, model_config
from adapterdrop.results import canonical_json

#: One cache for all studies: points are ordered so that consecutive ones share their models.
MODELS = ModelCache()

Inputs = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def common_fields(cfg: Mapping[str, Any], study: str) -> dict[str, Any]:
    """Settings every point records, whatever its study."""
    return {"study": study, **point_settings(cfg)}


def num_layers(cfg: Mapping[str, Any]) -> int:
    return int(model_config(cfg["model"]).num_hidden_layers)


def device_of(point: Mapping[str, Any]) -> torch.device:
    return resolve_device(point["device"])


def new_encoder(
    point: Mapping[str, Any], methods: Mapping[str, Mapping[str, Any]]
) -> AdapterEncoder:
    """The point's backbone, frozen, in our layer loop, with a task per ``methods`` entry."""
    encoder = AdapterEncoder(load_backbone(point["model"], seed=point["seed"]).model)
    encoder.freeze_backbone()
    torch.manual_seed(point["seed"])
    for task, method in methods.items():
        build_method(method).apply(encoder, task)
    return encoder.to(device_of(point))


def cached(key: Mapping[str, Any], build: Callable[[], Any]) -> Any:
    """The models for ``key`` (a JSON-able description), built once for consecutive points."""
    return MODELS.get(canonical_json(key), build)


def inputs(vocab: int, rows: int, seq_len: int, point: Mapping[str, Any]) -> Inputs:
    """Token ids, an all-ones mask and random labels: speed depends on shapes only."""
    device = device_of(point)
    ids, mask = random_inputs(vocab, rows, seq_len, device, point["seed"])
    return ids, mask, random_labels(rows, device, point["seed"])


def summaries(samples: Mapping[str, Sequence[float]]) -> dict[str, Any]:
    return {name: summarize(values, name=name) for name, values in samples.items()}


def speeds(
    samples: Mapping[str, Sequence[float]], baseline: str, names: Iterable[str]
) -> dict[str, RatioCI]:
    """Speed of each name relative to ``baseline``: ``t_baseline / t_name`` (> 1 = faster)."""
    return {name: ratio_of_medians(samples[baseline], samples[name]) for name in names}
