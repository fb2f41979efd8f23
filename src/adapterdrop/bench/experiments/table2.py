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

from adapterdrop.bench.costmodel import replication_floor
from adapterdrop.bench.devices import resolve_device, storage_dtype
from adapterdrop.bench.inputs import random_inputs, task_names
from adapterdrop.bench.models import build_encoder
from adapterdrop.bench.processes import (
    check_processes,
    peak_memory,
    pooled,
    process_medians,
    processes_entry,
    ratio,
    sample_runs,
    stored_samples,
)
from adapterdrop.bench.settings import point_settings
from adapterdrop.bench.stats import summarize
from adapterdrop.bench.timer import Samples, Timed, measure_interleaved
from adapterdrop.bench.validate import check_method, check_shapes
from adapterdrop.checks import check_int, check_int_list
from adapterdrop.models import num_layers

#: Bump when a change to what this grid measures changes its numbers: its points are then
#: remeasured and its tables start afresh (``bench.sweep.with_code_version``).
CODE_VERSION = 1

IMPLEMENTATIONS = ("ours", "adapterhub")


def points(cfg: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One point per T holding every n; validated here so a bad grid fails before any model."""
    bench = cfg["bench"]
    layers = num_layers(cfg["model"])
    unknown = set(bench["implementations"]) - set(IMPLEMENTATIONS)
    if unknown:
        raise ValueError(
            f"unknown implementation(s) {sorted(unknown)}; choose from {IMPLEMENTATIONS}"
        )
    dropped = dropped_layer_grid(bench["dropped_layers"], bench["spread_points"], layers)
    if len(dropped) < 2:
        raise ValueError(
            f"bench.dropped_layers={bench['dropped_layers']!r} gives n = {dropped}: Table 2 fits "
            "t(n) over n, so it needs two or more distinct n (e.g. [0, 3], or spread)"
        )
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
    # An explicit timing.min_reps (command line) wins, as over every grid budget. Entries for
    # T this run does not measure are unused: a job of a sweep over T measures one T.
    reps = bench["min_reps_by_tasks"] or {}
    if not isinstance(reps, Mapping):
        raise ValueError(
            f"bench.min_reps_by_tasks must map task counts to rounds, such as {{2: 10, 4: 6}}, "
            f"or be null; got {reps!r}"
        )
    reps = reps if cfg["timing"]["min_reps"] is None else {}
    for t, count in reps.items():
        if isinstance(t, bool) or not isinstance(t, int) or t < 1:
            raise ValueError(f"bench.min_reps_by_tasks keys must be task counts >= 1, got {t!r}")
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"bench.min_reps_by_tasks.{t} must be an int >= 1, got {count!r}")
    return [
        {**common, "num_tasks": t}
        | ({"timing": {**common["timing"], "min_reps": reps[t]}} if t in reps else {})
        | processes_entry("inference", processes)
        for t in bench["num_tasks"]
    ]


def dropped_layer_grid(choice: Any, spread_points: int, layers: int) -> list[int]:
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
    tasks = dict.fromkeys(task_names(point["num_tasks"]), point["method"])
    encoder = build_encoder(point["model"], tasks, device, point["seed"]).eval()
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
