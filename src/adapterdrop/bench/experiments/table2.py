"""Table 2: speed-up per shared layer when one input runs through T task adapters at once.

For each T and each number n of dropped layers, ours and AdapterHub run the same T Pfeiffer
adapters (same weights) on the same batch, interleaved in one process. The per-layer speed-up
is read off a least-squares fit of t(n) = alpha + beta * (n + (L - n) * T) over all n, which is
robust to the noise of any single point; the raw t(n) curve is kept in the CSV.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from adapterdrop.bench.costmodel import fit_cost_model, ideal_per_layer_speedup, replication_floor
from adapterdrop.bench.stats import ratio_of_medians, summarize
from adapterdrop.bench.timer import measure_interleaved
from adapterdrop.bench.workloads import (
    ModelCache,
    build_encoder,
    check_dtype,
    point_settings,
    precision,
    random_inputs,
    resolve_device,
    task_names,
)
from adapterdrop.results import canonical_json

IMPLEMENTATIONS = ("ours", "adapterhub")
PAPER_PER_LAYER = {2: 0.043, 4: 0.066, 8: 0.078, 16: 0.084}
_MODELS = ModelCache()


def points(cfg: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One point per (T, n); validated here so a bad grid fails before any model is built."""
    bench = cfg["bench"]
    layers = cfg["model"]["architecture"]["num_hidden_layers"]
    unknown = set(bench["implementations"]) - set(IMPLEMENTATIONS)
    if unknown:
        raise ValueError(
            f"unknown implementation(s) {sorted(unknown)}; choose from {IMPLEMENTATIONS}"
        )
    dropped = range(layers) if bench["dropped_layers"] == "all" else bench["dropped_layers"]
    for n in dropped:
        if not 0 <= n < layers:
            raise ValueError(
                f"dropped_layers {n} impossible for {layers} layers: use 0..{layers - 1}"
            )
    for t in bench["num_tasks"]:
        task_names(t)
    common = {
        **point_settings(cfg),
        "method": dict(bench["method"]),
        "batch_size": bench["batch_size"],
        "seq_len": bench["seq_len"],
        "implementations": list(bench["implementations"]),
        "plain_at": list(bench["plain_at"]),
        "cast_weights": bench["cast_weights"],
    }
    return [
        {**common, "num_tasks": t, "dropped_layers": n} for t in bench["num_tasks"] for n in dropped
    ]


def _models(point: Mapping[str, Any]) -> tuple[Any, Any]:
    """Ours and the AdapterHub copy of the same weights, shared by all n of one T."""
    device = resolve_device(point["device"])
    fields = ("model", "method", "num_tasks", "device", "seed", "dtype", "cast_weights")
    key = canonical_json({k: point[k] for k in fields})

    def build() -> tuple[Any, Any]:
        encoder = build_encoder(
            point["model"], point["method"], point["num_tasks"], device, point["seed"]
        )
        if point["cast_weights"]:
            encoder.to(check_dtype(point["dtype"]))
        reference = None
        if "adapterhub" in point["implementations"]:
            from adapterdrop.reference.adapterhub import build_adapterhub_reference

            reference = build_adapterhub_reference(encoder)
            reference.model.eval()
        return encoder, reference

    return _MODELS.get(key, build)


def measured_floor(n: int, *, t_single: float, t_replicated: float, num_layers: int) -> float:
    """Late-replication floor from the plain backbone timed at both batch sizes it really runs.

    Layers ``0..n`` run on the batch B and the rest on T*B, so the floor is
    ``((n+1) * t(B) + (L-n-1) * t(T*B)) / L``. Unlike the cost-model floor it does not assume
    that a layer on B rows costs 1/T of one on T*B rows, which fails at small B on a CPU.
    """
    return ((n + 1) * t_single + (num_layers - n - 1) * t_replicated) / num_layers


def measure(point: dict[str, Any]) -> tuple[dict[str, Any], dict[str, list[float]]]:
    device = resolve_device(point["device"])
    encoder, reference = _models(point)
    tasks = task_names(point["num_tasks"])
    n = point["dropped_layers"]
    ids, mask = random_inputs(
        encoder.backbone.config.vocab_size,
        point["batch_size"],
        point["seq_len"],
        device,
        point["seed"],
    )
    # Weights already in ``dtype`` need no autocast (which would re-cast them every call).
    dtype = "fp32" if point["cast_weights"] else point["dtype"]
    callables = {}

    if "ours" in point["implementations"]:

        def ours() -> None:
            with precision(dtype, device):
                encoder(ids, mask, tasks=tasks, dropped_layers=n)

        callables["ours"] = ours
    if reference is not None:
        hub = reference.parallel_forward(tasks, n)

        def adapterhub() -> None:
            with precision(dtype, device):
                hub(ids, mask)

        callables["adapterhub"] = adapterhub
    if n in point["plain_at"]:
        replicated_ids = ids.repeat(len(tasks), 1)
        replicated_mask = mask.repeat(len(tasks), 1)

        def plain_replicated() -> None:
            with precision(dtype, device):
                encoder.backbone(input_ids=replicated_ids, attention_mask=replicated_mask)

        def plain_single() -> None:
            with precision(dtype, device):
                encoder.backbone(input_ids=ids, attention_mask=mask)

        callables["plain_replicated"] = plain_replicated
        callables["plain_single"] = plain_single
    samples = measure_interleaved(callables, device=device, inference_mode=True, **point["timing"])
    metrics: dict[str, Any] = {name: summarize(s, name=name) for name, s in samples.items()}
    if "ours" in samples and "adapterhub" in samples:
        metrics["adapterhub_over_ours"] = ratio_of_medians(samples["adapterhub"], samples["ours"])
    if "plain_replicated" in samples:
        floor = replication_floor(
            n,
            t_plain_replicated=metrics["plain_replicated"].median,
            num_layers=encoder.num_layers,
            num_tasks=len(tasks),
        )
        metrics["floor"] = floor
        metrics["measured_floor"] = measured_floor(
            n,
            t_single=metrics["plain_single"].median,
            t_replicated=metrics["plain_replicated"].median,
            num_layers=encoder.num_layers,
        )
        if "ours" in samples:
            metrics["ours_over_floor"] = metrics["ours"].median / floor
            metrics["ours_over_measured_floor"] = metrics["ours"].median / metrics["measured_floor"]
    return metrics, samples


def tables(df: pd.DataFrame, cfg: Mapping[str, Any]) -> dict[str, pd.DataFrame]:
    """``table2``: per-layer speed-up per T (ours, AdapterHub, paper, ideal);
    ``table2_curve``: the measured t(n) with ratios, one row per (T, n)."""
    layers = cfg["model"]["architecture"]["num_hidden_layers"]
    curve = df[["config.num_tasks", "config.dropped_layers"]].copy()
    curve.columns = ["num_tasks", "dropped_layers"]
    for impl in IMPLEMENTATIONS:
        column = f"metrics.{impl}.median"
        if column in df:
            curve[f"{impl}_s"] = df[column]
            curve[f"{impl}_cv"] = df[f"metrics.{impl}.robust_cv"]
    extras = {
        "adapterhub_over_ours.ratio": "adapterhub_over_ours",
        "adapterhub_over_ours.low": "adapterhub_over_ours_ci_low",
        "adapterhub_over_ours.high": "adapterhub_over_ours_ci_high",
        "floor": "floor",
        "ours_over_floor": "ours_over_floor",
        "ours_over_measured_floor": "ours_over_measured_floor",
    }
    for metric, column in extras.items():
        if f"metrics.{metric}" in df:
            curve[column] = df[f"metrics.{metric}"]
    curve = curve.sort_values(["num_tasks", "dropped_layers"]).reset_index(drop=True)
    rows = []
    for t, group in curve.groupby("num_tasks"):
        row: dict[str, Any] = {"num_tasks": int(t)}
        for impl in IMPLEMENTATIONS:
            if f"{impl}_s" not in group or group[f"{impl}_s"].isna().all():
                continue
            fit = fit_cost_model(
                group["dropped_layers"].tolist(),
                group[f"{impl}_s"].tolist(),
                num_layers=layers,
                num_tasks=int(t),
            )
            row[f"{impl}_per_layer_%"] = 100 * fit.per_layer_speedup
            row[f"{impl}_r2"] = fit.r_squared
            if 5 in set(group["dropped_layers"]):
                row[f"{impl}_at_n5_%"] = 100 * fit.speedup(5)
        row["paper_per_layer_%"] = 100 * PAPER_PER_LAYER.get(int(t), float("nan"))
        row["ideal_per_layer_%"] = 100 * ideal_per_layer_speedup(
            num_layers=layers, num_tasks=int(t)
        )
        if "ours_per_layer_%" in row:
            row["ours_vs_ideal"] = row["ours_per_layer_%"] / row["ideal_per_layer_%"]
        if "adapterhub_over_ours" in group:
            row["adapterhub_over_ours_min"] = group["adapterhub_over_ours"].min()
            # points where AdapterHub is faster beyond noise: the whole 95 % CI below 1
            row["adapterhub_faster_points"] = int((group["adapterhub_over_ours_ci_high"] < 1).sum())
        for column in ("ours_over_floor", "ours_over_measured_floor"):
            if column in group:
                row[f"{column}_max"] = group[column].max()
        rows.append(row)
    return {"table2": pd.DataFrame(rows), "table2_curve": curve}
