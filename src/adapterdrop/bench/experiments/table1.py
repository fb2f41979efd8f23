"""Table 1: how fast adapters train and infer relative to full fine-tuning.

For each sequence length, batch size and phase, full fine-tuning (a plain Hugging Face encoder
with a head, every weight trained with AdamW), our Pfeiffer and Houlsby adapters (backbone
frozen: no backbone gradients or optimizer state) and, optionally, the same adapters in
AdapterHub run on the same batch, interleaved in one process. Relative speed is
``t_full / t_adapter`` (> 1: the adapter is faster) with a paired bootstrap CI. At inference the
full fine-tuned model is just the plain model, so ``t_adapter / t_full - 1`` is the adapter's
overhead, which should stay within a few percent: small enough for one process's memory layout
to bias it, so inference cells are measured in ``inference_processes`` fresh processes and
report the median over them (:mod:`adapterdrop.bench.processes`).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from adapterdrop.bench.processes import (
    check_processes,
    peak_memory,
    pooled,
    processes_entry,
    processes_measured,
    ratio,
    sample_runs,
    stored_samples,
)
from adapterdrop.bench.stats import summarize
from adapterdrop.bench.timer import Timed
from adapterdrop.bench.training_step import (
    PHASES,
    adapter_model,
    adapter_training_step,
    adapterhub_training_step,
    check_choices,
    check_shapes,
    full_finetuning_model,
    full_training_step,
    random_labels,
    time_phase,
)
from adapterdrop.bench.workloads import (
    ModelCache,
    build_encoder,
    point_settings,
    random_inputs,
    resolve_device,
    resolve_timing,
)
from adapterdrop.methods import build_method
from adapterdrop.methods.bottleneck import bottleneck_size
from adapterdrop.models import model_config
from adapterdrop.results import canonical_json
from adapterdrop.tables import peak_mib

IMPLEMENTATIONS = ("ours", "adapterhub")
METHODS = ("pfeiffer", "houlsby")
#: AdapterDrop paper, Table 1 (relative speed adapter / full FT, over its grid): training up to
#: 1.6x faster; inference at 0.94-0.96 of full fine-tuning. Per-cell values are not available.
PAPER_SPEED = {"training": (None, 1.6), "inference": (0.94, 0.96)}
#: The issue's target for one adapter's inference overhead over the plain model.
TARGET_OVERHEAD = 0.05
_MODELS = ModelCache()
#: Headline table and the columns ``make tables`` puts side by side across machines.
COMPARISON = {
    "table1": (
        ["phase", "implementation", "method", "seq_len", "batch_size"],
        ["relative_speed", "ci_low", "ci_high", "overhead_%"],
    )
}


def method_config(method: str, reduction_factor: float) -> dict[str, Any]:
    """Adapters with AdapterHub's non-identity init (as after training); speed is the same."""
    return {"name": method, "reduction_factor": reduction_factor, "init": "bert"}


def points(cfg: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One point per (sequence length, batch size, phase), validated before any model exists."""
    bench = cfg["bench"]
    phases = check_choices("phases", bench["phases"], PHASES)
    methods = check_choices("methods", bench["methods"], METHODS)
    implementations = check_choices("implementations", bench["implementations"], IMPLEMENTATIONS)
    check_shapes(cfg["model"], bench["batch_size"], bench["seq_len"])
    bottleneck_size(model_config(cfg["model"]).hidden_size, bench["reduction_factor"])
    for method in methods:
        build_method(method_config(method, bench["reduction_factor"]))
    common = {
        **point_settings(cfg),
        "methods": methods,
        "reduction_factor": bench["reduction_factor"],
        "implementations": implementations,
    }
    processes = check_processes(bench["inference_processes"], "bench.inference_processes")
    return [
        {**common, "seq_len": seq, "batch_size": batch, "phase": phase}
        | {"timing": resolve_timing(cfg, phase)}
        | processes_entry(phase, processes)
        for seq in bench["seq_len"]
        for batch in bench["batch_size"]
        for phase in phases
    ]


def _models(point: Mapping[str, Any]) -> dict[str, Any]:
    """Every model of the grid, built once: shapes and phases only change the inputs."""
    device = resolve_device(point["device"])
    keys = ("model", "methods", "reduction_factor", "implementations", "device", "seed")
    key = canonical_json({k: point[k] for k in keys})

    def build() -> dict[str, Any]:
        encoder = build_encoder(point["model"], None, 0, device, point["seed"])
        for method in point["methods"]:
            build_method(method_config(method, point["reduction_factor"])).apply(encoder, method)
        encoder.to(device)
        model = adapter_model(encoder, point["methods"])
        models: dict[str, Any] = {"model": model, "full": full_finetuning_model(encoder)}
        if "adapterhub" in point["implementations"]:
            from adapterdrop.reference.adapterhub import build_adapterhub_reference

            # One AdapterHub model per method, so timed calls never switch the active adapter.
            hubs = {}
            for method in point["methods"]:
                reference = build_adapterhub_reference(encoder, [method])
                reference.model.train_adapter(method)
                hubs[method] = (reference, copy.deepcopy(model.heads[method]))
            models["adapterhub"] = hubs
        return models

    return _MODELS.get(key, build)


def _samples(point: Mapping[str, Any], *, peak_memory: bool) -> dict[str, list[float]]:
    """Time every callable of ``point`` in this process, interleaved."""
    device = resolve_device(point["device"])
    models = _models(point)
    model, full = models["model"], models["full"]
    hubs = models.get("adapterhub", {})
    ids, mask = random_inputs(
        model.encoder.backbone.config.vocab_size,
        point["batch_size"],
        point["seq_len"],
        device,
        point["seed"],
    )
    dtype, methods = point["dtype"], point["methods"]
    callables: dict[str, Any] = {}
    if point["phase"] == "training":
        labels = random_labels(point["batch_size"], device, point["seed"])
        step = {"dtype": dtype, "device": device}
        callables["full"] = full_training_step(full, ids, mask, labels, **step)
        if "ours" in point["implementations"]:
            for method in methods:
                callables[f"ours_{method}"] = adapter_training_step(
                    model, method, ids, mask, labels, **step
                )
        for method, (reference, head) in hubs.items():
            hub = reference.single_forward(method)
            callables[f"adapterhub_{method}"] = Timed(
                adapterhub_training_step(
                    hub.forward, reference.model, head, ids, mask, labels, **step
                ),
                setup=hub.activate,
            )
    else:
        callables["full"] = partial(full, ids, mask)
        if "ours" in point["implementations"]:
            for method in methods:
                callables[f"ours_{method}"] = partial(model, ids, mask, tasks=method)
        for method, (reference, head) in hubs.items():
            hub = reference.single_forward(method)
            callables[f"adapterhub_{method}"] = Timed(
                lambda hub=hub, head=head: head(hub.forward(ids, mask)), setup=hub.activate
            )
    modules = [
        model,
        full,
        *(m for reference, head in hubs.values() for m in (reference.model, head)),
    ]
    return time_phase(
        callables,
        modules,
        point["phase"],
        device=device,
        dtype=dtype,
        timing=point["timing"],
        peak_memory=peak_memory,
    )


def measure(point: dict[str, Any]) -> tuple[dict[str, Any], dict[str, list[float]]]:
    """Relative speeds of one cell; with ``processes`` > 1, the median over fresh processes."""
    runs = sample_runs(_samples, point)
    metrics: dict[str, Any] = {name: summarize(s, name=name) for name, s in pooled(runs).items()}
    metrics["processes"] = len(runs)
    metrics["peak_memory_bytes"] = peak_memory(runs)
    speed: dict[str, dict[str, Any]] = {}
    for name in runs[0]:
        if name != "full":
            impl, method = name.split("_", 1)
            speed.setdefault(impl, {})[method] = ratio(runs, "full", name)
    metrics["speed"] = speed
    if "ours" in speed and "adapterhub" in speed:
        metrics["adapterhub_over_ours"] = {
            m: ratio(runs, f"adapterhub_{m}", f"ours_{m}") for m in point["methods"]
        }
    return metrics, stored_samples(runs)


def _cells(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (phase, seq_len, batch_size, implementation, method)."""
    rows = []
    for _, point in df.iterrows():
        for impl in IMPLEMENTATIONS:
            for method in METHODS:
                prefix = f"metrics.speed.{impl}.{method}"
                if f"{prefix}.ratio" not in point or pd.isna(point[f"{prefix}.ratio"]):
                    continue
                speed = point[f"{prefix}.ratio"]
                rows.append(
                    {
                        "phase": point["config.phase"],
                        "implementation": impl,
                        "method": method,
                        "seq_len": int(point["config.seq_len"]),
                        "batch_size": int(point["config.batch_size"]),
                        "full_ms": 1e3 * point["metrics.full.median"],
                        "adapter_ms": 1e3 * point[f"metrics.{impl}_{method}.median"],
                        **_peak_columns(point, f"{impl}_{method}"),
                        "relative_speed": speed,
                        "ci_low": point[f"{prefix}.low"],
                        "ci_high": point[f"{prefix}.high"],
                        "processes": processes_measured(point),
                        "overhead_%": 100 * (1 / speed - 1)
                        if point["config.phase"] == "inference"
                        else np.nan,
                    }
                )
    columns = ["phase", "implementation", "method", "seq_len", "batch_size"]
    return pd.DataFrame(rows).sort_values(columns).reset_index(drop=True)


def _peak_columns(point: pd.Series, name: str) -> dict[str, float]:
    """Peak memory of the full model and the adapter in MiB, where the result has it."""
    peaks = {"full_peak_mib": peak_mib(point, "full"), "adapter_peak_mib": peak_mib(point, name)}
    return {column: value for column, value in peaks.items() if pd.notna(value)}


def _summary(cells: pd.DataFrame) -> pd.DataFrame:
    """Measured range per (implementation, method, phase) beside the paper's statements."""
    rows = []
    for (impl, method, phase), group in cells.groupby(["implementation", "method", "phase"]):
        paper_low, paper_high = PAPER_SPEED[phase]
        row: dict[str, Any] = {
            "implementation": impl,
            "method": method,
            "phase": phase,
            "cells": len(group),
            "speed_min": group["relative_speed"].min(),
            "speed_median": group["relative_speed"].median(),
            "speed_max": group["relative_speed"].max(),
            "paper_speed_min": np.nan if paper_low is None else paper_low,
            "paper_speed_max": paper_high,
        }
        if phase == "inference":
            row["overhead_max_%"] = group["overhead_%"].max()
            row["paper_overhead_%"] = (
                f"{100 * (1 / paper_high - 1):.1f}-{100 * (1 / paper_low - 1):.1f}"
            )
            row["target_overhead_%"] = 100 * TARGET_OVERHEAD
            row["within_target"] = bool(row["overhead_max_%"] <= 100 * TARGET_OVERHEAD)
        rows.append(row)
    return pd.DataFrame(rows)


def tables(df: pd.DataFrame, cfg: Mapping[str, Any]) -> dict[str, pd.DataFrame]:
    """``table1``: relative speed per cell with its CI (and the inference overhead);
    ``table1_summary``: its range per method and phase, with the paper's statements."""
    cells = _cells(df)
    return {"table1": cells, "table1_summary": _summary(cells)}
