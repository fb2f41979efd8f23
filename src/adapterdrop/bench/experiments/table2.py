"""Table 2: speed-up per shared layer when one input runs through T task adapters at once.

One point per T: ours and AdapterHub run the same T Pfeiffer adapters (same weights) on the
same batch at every number n of dropped layers, and the plain backbone runs on B and T*B rows,
all interleaved in the same rounds of one process. A slow spell of the machine thus hits every
n alike instead of bending the t(n) curve. The per-layer speed-up is read off a least-squares fit
of t(n) = alpha + beta * (n + (L - n) * T) over all n; the raw curve is kept in the CSV.

The ratios beside the curve (AdapterHub over ours, ours over the floors) are effects of a few %,
which a process's memory layout moves by about as much: with ``bench.processes`` > 1 each T is
measured in that many fresh processes and each ratio is the median of the per-process ratios.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from adapterdrop.bench.costmodel import fit_cost_model, ideal_per_layer_speedup, replication_floor
from adapterdrop.bench.processes import (
    check_processes,
    peak_memory,
    pooled,
    process_medians,
    processes_entry,
    processes_measured,
    ratio,
    sample_runs,
    stored_samples,
)
from adapterdrop.bench.stats import summarize
from adapterdrop.bench.timer import Samples, Timed, measure_interleaved
from adapterdrop.bench.training_step import check_shapes
from adapterdrop.bench.validate import check_method
from adapterdrop.bench.workloads import (
    build_encoder,
    point_settings,
    random_inputs,
    resolve_device,
    storage_dtype,
    task_names,
)
from adapterdrop.checks import check_int, check_int_list
from adapterdrop.models import num_layers
from adapterdrop.tables import peak_mib

IMPLEMENTATIONS = ("ours", "adapterhub")
PAPER_PER_LAYER = {2: 0.043, 4: 0.066, 8: 0.078, 16: 0.084}


def points(cfg: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One point per T holding every n; validated here so a bad grid fails before any model."""
    bench = cfg["bench"]
    layers = num_layers(cfg["model"])
    unknown = set(bench["implementations"]) - set(IMPLEMENTATIONS)
    if unknown:
        raise ValueError(
            f"unknown implementation(s) {sorted(unknown)}; choose from {IMPLEMENTATIONS}"
        )
    dropped = dropped_layers(bench["dropped_layers"], bench["spread_points"], layers)
    for t in check_int_list(bench["num_tasks"], "bench.num_tasks", example="[2, 4, 8, 16]"):
        task_names(t)
    batch = check_int(bench["batch_size"], "bench.batch_size")
    check_shapes(cfg["model"], [batch], [check_int(bench["seq_len"], "bench.seq_len")])
    check_method(bench["method"], "bench.method", cfg["model"])
    processes = check_processes(bench["processes"], "bench.processes")
    common = {
        **point_settings(cfg),
        "method": dict(bench["method"]),
        "batch_size": bench["batch_size"],
        "seq_len": bench["seq_len"],
        "implementations": list(bench["implementations"]),
        "dropped_layers": dropped,
    }
    # An explicit timing.min_reps (command line) wins, as over every grid budget.
    reps = (bench["min_reps_by_tasks"] or {}) if cfg["timing"]["min_reps"] is None else {}
    unknown_t = sorted(set(reps) - set(bench["num_tasks"]))
    if unknown_t:
        raise ValueError(f"bench.min_reps_by_tasks names T {unknown_t} not in num_tasks")
    for t, count in reps.items():
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"bench.min_reps_by_tasks.{t} must be an int >= 1, got {count!r}")
    return [
        {**common, "num_tasks": t}
        | ({"timing": {**common["timing"], "min_reps": reps[t]}} if t in reps else {})
        | processes_entry("inference", processes)
        for t in bench["num_tasks"]
    ]


def dropped_layers(choice: Any, spread_points: int, layers: int) -> list[int]:
    """The n values of a grid: ``all`` (0..L-1), ``spread`` (``spread_points`` values evenly
    spread over 0..L-1, both ends included: t(n) is a line, so a few points fit it), or a list.
    """
    if choice == "all":
        return list(range(layers))
    if choice == "spread":
        if isinstance(spread_points, bool) or not isinstance(spread_points, int):
            raise ValueError(f"bench.spread_points must be an int >= 2, got {spread_points!r}")
        if spread_points < 2:
            raise ValueError(f"bench.spread_points must be >= 2, got {spread_points}")
        return sorted({round(v) for v in np.linspace(0, layers - 1, spread_points)})
    if not isinstance(choice, list | tuple):
        raise ValueError(
            f"bench.dropped_layers={choice!r}: use all, spread or a list such as [0, 5, 11]"
        )
    for n in choice:
        if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n < layers:
            raise ValueError(
                f"dropped_layers {n!r} impossible for {layers} layers: use integers 0..{layers - 1}"
            )
    return sorted(set(choice))


def _models(point: Mapping[str, Any]) -> tuple[Any, Any]:
    """Ours and the AdapterHub copy of the same weights (AdapterHub only if asked for)."""
    device = resolve_device(point["device"])
    encoder = build_encoder(
        point["model"], point["method"], point["num_tasks"], device, point["seed"]
    )
    # Inference only: weights stored in ``dtype`` as a deployment would (no autocast, which
    # would re-cast every weight on every call); AdapterHub copies them in that dtype.
    encoder.to(storage_dtype(point["dtype"], "inference"))
    reference = None
    if "adapterhub" in point["implementations"]:
        from adapterdrop.reference.adapterhub import build_adapterhub_reference

        reference = build_adapterhub_reference(encoder)
        reference.model.eval()
    return encoder, reference


def measured_floor(n: int, *, t_single: float, t_replicated: float, num_layers: int) -> float:
    """Late-replication floor from the plain backbone timed at both batch sizes it really runs.

    Layers ``0..n`` run on the batch B and the rest on T*B, so the floor is
    ``((n+1) * t(B) + (L-n-1) * t(T*B)) / L``. Unlike the cost-model floor it does not assume
    that a layer on B rows costs 1/T of one on T*B rows, which fails at small B on a CPU.
    """
    return ((n + 1) * t_single + (num_layers - n - 1) * t_replicated) / num_layers


def _callables(point: Mapping[str, Any], encoder: Any, reference: Any) -> dict[str, Any]:
    """``<impl>@n=<k>`` for every n, ours and AdapterHub side by side, then the plain backbone
    on B and on T*B rows (independent of n, so timed once). AdapterHub's activation of the
    setup and skip layers for n is each call's untimed setup: only forwards are timed."""
    device = resolve_device(point["device"])
    tasks = task_names(point["num_tasks"])
    ids, mask = random_inputs(
        encoder.backbone.config.vocab_size,
        point["batch_size"],
        point["seq_len"],
        device,
        point["seed"],
    )
    callables: dict[str, Callable[[], Any] | Timed] = {}
    for n in point["dropped_layers"]:
        if "ours" in point["implementations"]:
            callables[f"ours@n={n}"] = partial(encoder, ids, mask, tasks=tasks, dropped_layers=n)
        if reference is not None:
            hub = reference.parallel_forward(tasks, n)
            callables[f"adapterhub@n={n}"] = Timed(partial(hub.forward, ids, mask), hub.activate)
    plain = encoder.backbone
    callables["plain_single"] = partial(plain, input_ids=ids, attention_mask=mask)
    callables["plain_replicated"] = partial(
        plain, input_ids=ids.repeat(len(tasks), 1), attention_mask=mask
    )
    return callables


def _samples(point: Mapping[str, Any], *, peak_memory: bool) -> Samples:
    """Every callable of one T in the same interleaved rounds of this process."""
    encoder, reference = _models(point)
    return measure_interleaved(
        _callables(point, encoder, reference),
        device=resolve_device(point["device"]),
        inference_mode=True,
        peak_memory=peak_memory,
        **point["timing"],
    )


def _floors(n: int, t: Mapping[str, float], *, layers: int, tasks: int) -> dict[str, float]:
    """Both floors at ``n`` from one set of median times ``t`` (by callable name)."""
    single, replicated = t["plain_single"], t["plain_replicated"]
    return {
        "floor": replication_floor(
            n, t_plain_replicated=replicated, num_layers=layers, num_tasks=tasks
        ),
        "measured_floor": measured_floor(
            n, t_single=single, t_replicated=replicated, num_layers=layers
        ),
    }


def measure(point: dict[str, Any]) -> tuple[dict[str, Any], dict[str, list[float]]]:
    """Every n of one T in the same rounds, so drift cannot bend the t(n) curve; with
    ``processes`` > 1, the ratios are medians over fresh processes."""
    runs = sample_runs(_samples, point)
    stats = {name: summarize(s, name=name) for name, s in pooled(runs).items()}
    shape = {
        "layers": num_layers(point["model"]),
        "tasks": point["num_tasks"],
    }
    medians = {name: summary.median for name, summary in stats.items()}
    each = process_medians(runs)
    per_n: dict[str, dict[str, Any]] = {}
    for n in point["dropped_layers"]:
        ours, hub = f"ours@n={n}", f"adapterhub@n={n}"
        entry: dict[str, Any] = {
            impl: stats[f"{impl}@n={n}"] for impl in IMPLEMENTATIONS if f"{impl}@n={n}" in stats
        }
        entry.update(_floors(n, medians, **shape))
        if ours in stats:
            floors = [_floors(n, t, **shape) for t in each]
            for floor in ("floor", "measured_floor"):
                over = [t[ours] / f[floor] for t, f in zip(each, floors, strict=True)]
                entry[f"ours_over_{floor}"] = float(np.median(over))
            if hub in stats:
                entry["adapterhub_over_ours"] = ratio(runs, hub, ours)
        per_n[str(n)] = entry
    # The plain backbone on B rows against the cost-model floor at n = L-1 (t(T*B) / T): a
    # bound no implementation beats at large n, where it runs nearly every layer on B rows.
    bound = [shape["tasks"] * t["plain_single"] / t["plain_replicated"] for t in each]
    metrics = {
        "plain_single": stats["plain_single"],
        "plain_replicated": stats["plain_replicated"],
        "plain_single_over_floor": float(np.median(bound)),
        "processes": len(runs),
        "peak_memory_bytes": peak_memory(runs),
    }
    return {**metrics, "per_n": per_n}, stored_samples(runs)


#: Curve columns: metric path under ``metrics.per_n.<n>.`` -> column name.
CURVE_COLUMNS = {
    "ours.median": "ours_s",
    "ours.robust_cv": "ours_cv",
    "adapterhub.median": "adapterhub_s",
    "adapterhub.robust_cv": "adapterhub_cv",
    "adapterhub_over_ours.ratio": "adapterhub_over_ours",
    "adapterhub_over_ours.low": "adapterhub_over_ours_ci_low",
    "adapterhub_over_ours.high": "adapterhub_over_ours_ci_high",
    "floor": "floor",
    "ours_over_floor": "ours_over_floor",
    "measured_floor": "measured_floor",
    "ours_over_measured_floor": "ours_over_measured_floor",
}
#: Peak memory columns of the curve: callable prefix -> column (MiB).
MEMORY_COLUMNS = {"ours": "ours_peak_mib", "adapterhub": "adapterhub_peak_mib"}
#: Headline table and the columns ``make tables`` puts side by side across machines.
COMPARISON = {
    "table2": (
        ["num_tasks"],
        ["ours_per_layer_%", "adapterhub_per_layer_%", "adapterhub_over_ours_min", "ours_r2"],
    )
}


def _curve(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (T, n) from the per-T records."""
    rows = []
    for _, point in df.iterrows():
        for n in point["config.dropped_layers"]:
            row = {"num_tasks": int(point["config.num_tasks"]), "dropped_layers": int(n)}
            for metric, column in CURVE_COLUMNS.items():
                value = point.get(f"metrics.per_n.{n}.{metric}")
                if value is not None and pd.notna(value):
                    row[column] = value
            for impl, column in MEMORY_COLUMNS.items():
                peak = peak_mib(point, f"{impl}@n={n}")
                if pd.notna(peak):
                    row[column] = peak
            rows.append(row)
    return pd.DataFrame(rows).sort_values(["num_tasks", "dropped_layers"], ignore_index=True)


def tables(df: pd.DataFrame, cfg: Mapping[str, Any]) -> dict[str, pd.DataFrame]:
    """``table2``: per-layer speed-up per T (ours, AdapterHub, paper, ideal);
    ``table2_curve``: the measured t(n) with ratios, one row per (T, n)."""
    layers = num_layers(cfg["model"])
    curve = _curve(df)
    rows = []
    by_t = {int(p["config.num_tasks"]): p for _, p in df.iterrows()}
    for t, group in curve.groupby("num_tasks"):
        point = by_t[int(t)]
        row: dict[str, Any] = {"num_tasks": int(t), "processes": processes_measured(point)}
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
            if layers > 5:  # the paper's headline: 5 dropped layers (read off the fit)
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
        row["plain_single_over_floor"] = point.get("metrics.plain_single_over_floor")
        rows.append(row)
    return {"table2": pd.DataFrame(rows), "table2_curve": curve}
