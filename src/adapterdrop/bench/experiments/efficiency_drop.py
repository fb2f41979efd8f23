"""Training-step cost of dropping adapters from the lowest layers: robust and specialized drop.

With a frozen backbone the engine runs every layer below the lowest active adapter under
``no_grad``: those layers store no activations and take no backward, which is where the
saving comes from.

* ``robust``: one adapter in every layer; each training batch drops a fresh
  ``n ~ U{0..max_n}`` at run time. Its expected step cost is the mean over ``n`` of the step
  time with ``n`` dropped. We time the step at every ``n`` (interleaved, one process) and
  average the medians, which is the exact expectation of the uniform draw rather than one
  seeded sequence of draws; the speed-up is ``t(0) / mean_n t(n)`` with a paired bootstrap CI.
* ``specialized``: a separate adapter built only in layers ``>= n`` (``leave_out = n``) per
  ``n`` of the grid, all on one backbone, each timed against ``n = 0``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from adapterdrop.bench.experiments.efficiency_common import (
    common_fields,
    device_of,
    speeds,
    summaries,
)
from adapterdrop.bench.inputs import labelled_inputs
from adapterdrop.bench.model_cache import cached
from adapterdrop.bench.models import adapter_model, build_encoder
from adapterdrop.bench.phases import time_phase
from adapterdrop.bench.stats import (
    DEFAULT_CONFIDENCE,
    DEFAULT_RESAMPLES,
    DEFAULT_SEED,
    RatioCI,
    percentile_ci,
)
from adapterdrop.bench.training_step import task_training_step
from adapterdrop.bench.validate import check_list, check_method, check_shapes
from adapterdrop.heads import MultiTaskModel
from adapterdrop.models import num_layers
from adapterdrop.params import task_parameter_count


def _shape_fields(cfg: Mapping[str, Any]) -> dict[str, Any]:
    bench = cfg["bench"]
    shape_keys = ("bench.batch_size", "bench.seq_len")
    check_shapes(cfg["model"], [bench["batch_size"]], [bench["seq_len"]], shape_keys)
    return {
        "adapter": check_method(bench["adapter"], "bench.adapter", cfg["model"]),
        "batch_size": bench["batch_size"],
        "seq_len": bench["seq_len"],
    }


def robust_points(cfg: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One point timing the step at every ``n`` in ``0..max_n`` (``null``: ``L - 1``)."""
    layers = num_layers(cfg["model"])
    max_n = cfg["bench"]["robust"]["max_n"]
    max_n = layers - 1 if max_n is None else max_n
    if not isinstance(max_n, int) or not 0 <= max_n < layers:
        raise ValueError(f"bench.robust.max_n={max_n!r} impossible: choose 0..{layers - 1} or null")
    return [{**common_fields(cfg, "robust"), **_shape_fields(cfg), "max_n": max_n}]


def specialized_points(cfg: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One point timing an adapter with ``leave_out = n`` for every ``n`` of the grid."""
    layers = num_layers(cfg["model"])
    grid = cfg["bench"]["specialized"]["dropped_layers"]
    what = "bench.specialized.dropped_layers"
    dropped = list(range(layers)) if grid == "all" else check_list(grid, what, "[0, 3] or all")
    for n in dropped:
        if not isinstance(n, int) or not 0 <= n < layers:
            raise ValueError(
                f"specialized dropped_layers {n!r} impossible for {layers} layers: "
                f"use 0..{layers - 1}"
            )
    if 0 not in dropped:
        raise ValueError("specialized dropped_layers must include 0, the baseline of the speed-up")
    if len(set(dropped)) != len(dropped):
        raise ValueError(f"specialized dropped_layers has duplicates: {dropped}")
    fields = _shape_fields(cfg)
    if fields["adapter"].get("leave_out", 0) != 0:
        raise ValueError("bench.adapter.leave_out must be 0: the specialized study sets it per n")
    for n in dropped:
        check_method({**fields["adapter"], "leave_out": n}, "bench.adapter")
    return [{**common_fields(cfg, "specialized"), **fields, "dropped_layers": sorted(dropped)}]


def _model(point: Mapping[str, Any], leave_outs: Sequence[int]) -> MultiTaskModel:
    """One frozen backbone with an adapter task ``leave<n>`` (and head) per ``n``."""
    key = {k: point[k] for k in ("study", "model", "adapter", "device", "seed")}

    def build() -> MultiTaskModel:
        methods = {f"leave{n}": {**point["adapter"], "leave_out": n} for n in leave_outs}
        encoder = build_encoder(point["model"], methods, device_of(point), point["seed"])
        return adapter_model(encoder, methods)

    return cached({**key, "leave_outs": list(leave_outs)}, build)


def _time_steps(
    point: Mapping[str, Any], model: MultiTaskModel, steps: Mapping[str, tuple[str, int]]
) -> dict[str, list[float]]:
    """Interleaved training steps, each named step training ``task`` with ``n`` dropped."""
    device = device_of(point)
    vocab = model.encoder.backbone.config.vocab_size
    data = labelled_inputs(vocab, point["batch_size"], point["seq_len"], device, point["seed"])
    callables = {
        name: task_training_step(
            model, task, *data, dtype=point["dtype"], device=device, dropped_layers=n
        )
        for name, (task, n) in steps.items()
    }
    return time_phase(
        callables, [model], "training", device=device, dtype=point["dtype"], timing=point["timing"]
    )


def mean_of_medians_speedup(
    baseline: Sequence[float],
    curves: Sequence[Sequence[float]],
    *,
    n_resamples: int = DEFAULT_RESAMPLES,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = DEFAULT_SEED,
) -> RatioCI:
    """``median(baseline) / mean_j median(curves[j])`` with a paired percentile bootstrap.

    All sample sets come from the same interleaved rounds, so each resample draws one set of
    round indices for all of them, as ``ratio_of_medians`` does for a pair.
    """
    base = np.asarray(baseline, dtype=float)
    table = np.asarray(curves, dtype=float)
    if table.ndim != 2 or table.shape[1] != base.size:
        raise ValueError(f"curves must be (k, {base.size}) paired samples, got {table.shape}")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, base.size, size=(n_resamples, base.size))
    boot = np.median(base[idx], axis=1) / np.median(table[:, idx], axis=2).mean(axis=0)
    ratio = np.median(base) / np.median(table, axis=1).mean()
    return percentile_ci(ratio, boot, confidence=confidence, seed=seed)


def measure_robust(point: dict[str, Any]) -> tuple[dict[str, Any], dict[str, list[float]]]:
    model = _model(point, [0])
    ns = range(point["max_n"] + 1)
    samples = _time_steps(point, model, {f"n{n}": ("leave0", n) for n in ns})
    metrics: dict[str, Any] = summaries(samples)
    metrics["speed"] = speeds(samples, "n0", samples)
    metrics["robust_expected_s"] = float(np.mean([metrics[f"n{n}"].median for n in ns]))
    metrics["robust_speedup"] = mean_of_medians_speedup(
        samples["n0"], [samples[f"n{n}"] for n in ns]
    )
    return metrics, samples


def measure_specialized(point: dict[str, Any]) -> tuple[dict[str, Any], dict[str, list[float]]]:
    ns = point["dropped_layers"]
    model = _model(point, ns)
    samples = _time_steps(point, model, {f"n{n}": (f"leave{n}", 0) for n in ns})
    metrics: dict[str, Any] = summaries(samples)
    metrics["speed"] = speeds(samples, "n0", samples)
    metrics["params"] = {f"n{n}": task_parameter_count(model.encoder, f"leave{n}") for n in ns}
    return metrics, samples
