"""Table 3: what AdapterFusion costs, relative to full fine-tuning and to one adapter.

For each number K of fused Pfeiffer adapters and each phase, full fine-tuning (plain encoder,
every weight trained), one Pfeiffer adapter, and a fusion of K frozen adapters (only the fusion
layers and the head train) run on the same batch, interleaved in one process; ours (folded fast
path) and AdapterHub's ``Fuse`` over the same weights are timed side by side. Relative speed is
``t_full / t_fusion`` and ``t_adapter / t_fusion`` (< 1: fusion is slower).

Pruning: for one K, a second fusion over the same adapters records each adapter's mean fusion
weight on a batch and keeps the most activated ones in every layer (``prune_fusion``, the trained
fusion weights reused); its inference speed-up is ``t_fusion / t_pruned``.

Here: the grid (validated before any model) and the measuring of a point; its models:
:mod:`adapterdrop.bench.experiments.table3_models`; its tables: :mod:`adapterdrop.reporting.table3`.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

from adapterdrop.bench.devices import resolve_device
from adapterdrop.bench.experiments.table3_models import adapter_config, fusion_config, table3_models
from adapterdrop.bench.inputs import random_inputs, random_labels
from adapterdrop.bench.phases import PHASES, time_phase
from adapterdrop.bench.settings import point_settings
from adapterdrop.bench.stats import ratio_of_medians, summarize
from adapterdrop.bench.timer import Timed
from adapterdrop.bench.training_step import (
    adapter_training_step,
    adapterhub_training_step,
    full_training_step,
)
from adapterdrop.bench.validate import check_choices, check_shapes
from adapterdrop.checks import check_int_list
from adapterdrop.methods import build_method
from adapterdrop.methods.bottleneck import bottleneck_size
from adapterdrop.methods.fusion import fusion_regularization_loss
from adapterdrop.models import model_config

#: Bump when a change to what this grid measures changes its numbers: its points are then
#: remeasured and its tables start afresh (``bench.sweep.with_code_version``).
CODE_VERSION = 1

IMPLEMENTATIONS = ("ours", "adapterhub")
#: Timed set-ups: one adapter, the fusion of K adapters, and that fusion pruned.
SETUPS = ("adapter", "fusion", "pruned")


def _check_prune(prune: Mapping[str, Any] | None, counts: list[int]) -> tuple[int, int] | None:
    if prune is None:
        return None
    adapters, keep = prune["adapters"], prune["keep"]
    if adapters not in counts:
        raise ValueError(f"prune.adapters {adapters} is not among num_adapters {counts}")
    if not 1 <= keep < adapters:
        raise ValueError(
            f"prune.keep {keep} impossible when pruning {adapters}: use 1..{adapters - 1}"
        )
    return adapters, keep


def points(cfg: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One point per (K, phase), validated before any model is built."""
    bench = cfg["bench"]
    phases = check_choices("bench.phases", bench["phases"], PHASES)
    implementations = check_choices(
        "bench.implementations", bench["implementations"], IMPLEMENTATIONS
    )
    counts = check_int_list(bench["num_adapters"], "bench.num_adapters", example="[2, 8, 16]")
    prune = _check_prune(bench["prune"], counts)
    shape_keys = ("bench.batch_size", "bench.seq_len")
    check_shapes(cfg["model"], [bench["batch_size"]], [bench["seq_len"]], shape_keys)
    model = model_config(cfg["model"])
    bottleneck_size(model.hidden_size, bench["reduction_factor"])
    build_method(adapter_config(bench["reduction_factor"]))
    options = dict(bench["fusion"])
    if {"name", "adapters"} & set(options):
        raise ValueError("bench.fusion sets fusion options only; the fused adapters are the grid's")
    build_method(fusion_config(["task0"], options))
    layers = model.num_hidden_layers
    leave_out = options.get("leave_out", 0)
    if not 0 <= leave_out < layers:
        raise ValueError(f"fusion leave_out {leave_out} impossible for {layers} layers")
    common = {
        **point_settings(cfg),
        "reduction_factor": bench["reduction_factor"],
        "fusion": options,
        "batch_size": bench["batch_size"],
        "seq_len": bench["seq_len"],
        "implementations": implementations,
    }
    return [
        {
            **common,
            "num_adapters": k,
            "prune_to": prune[1] if prune is not None and prune[0] == k else None,
            "phase": phase,
        }
        for k in counts
        for phase in phases
    ]


def measure(point: dict[str, Any]) -> tuple[dict[str, Any], dict[str, list[float]]]:
    device = resolve_device(point["device"])
    models = table3_models(point)
    model, full = models["model"], models["full"]
    hubs = models.get("adapterhub", {})
    ids, mask = random_inputs(
        model.encoder.backbone.config.vocab_size,
        point["batch_size"],
        point["seq_len"],
        device,
        point["seed"],
    )
    dtype = point["dtype"]
    training = point["phase"] == "training"
    setups = ["adapter", "fusion"] if training or point["prune_to"] is None else list(SETUPS)
    ours = "ours" in point["implementations"]
    callables: dict[str, Any] = {}
    if training:
        labels = random_labels(point["batch_size"], device, point["seed"])
        step = {"dtype": dtype, "device": device}
        callables["full"] = full_training_step(full, ids, mask, labels, **step)
        for setup in setups:
            if ours:
                regularizer = None
                if setup == "fusion":
                    regularizer = partial(fusion_regularization_loss, model.encoder, "fusion")
                callables[f"ours_{setup}"] = adapter_training_step(
                    model, setup, ids, mask, labels, regularizer=regularizer, **step
                )
            if setup in hubs:
                hub, forward, head = hubs[setup]
                regularizer = hub.get_fusion_regularization_loss if setup == "fusion" else None
                callables[f"adapterhub_{setup}"] = Timed(
                    adapterhub_training_step(
                        forward.forward,
                        hub,
                        head,
                        ids,
                        mask,
                        labels,
                        regularizer=regularizer,
                        **step,
                    ),
                    setup=forward.activate,
                )
    else:
        callables["full"] = partial(full, ids, mask)
        for setup in setups:
            if ours:
                callables[f"ours_{setup}"] = partial(model, ids, mask, tasks=setup)
            if setup in hubs:
                _, forward, head = hubs[setup]
                callables[f"adapterhub_{setup}"] = Timed(
                    lambda forward=forward, head=head: head(forward.forward(ids, mask)),
                    setup=forward.activate,
                )
    modules = [model, full, *(m for hub, _, head in hubs.values() for m in (hub, head))]
    samples = time_phase(
        callables, modules, point["phase"], device=device, dtype=dtype, timing=point["timing"]
    )
    metrics: dict[str, Any] = {name: summarize(s, name=name) for name, s in samples.items()}
    metrics["peak_memory_bytes"] = samples.peak_memory
    metrics.update(_ratios(samples, setups))
    if models["kept"] is not None:
        metrics["pruned_kept"] = models["kept"]
    return metrics, samples


def _ratios(samples: Mapping[str, list[float]], setups: list[str]) -> dict[str, Any]:
    """Paired ratios of medians: fusion vs full FT and vs one adapter, pruning, ours vs hub."""
    out: dict[str, dict[str, Any]] = {
        "vs_full": {},
        "vs_adapter": {},
        "adapter_vs_full": {},
        "pruning": {},
        "ours_over_adapterhub": {},
    }
    for impl in IMPLEMENTATIONS:
        name = f"{impl}_fusion"
        if name not in samples:
            continue
        out["vs_full"][impl] = ratio_of_medians(samples["full"], samples[name])
        out["vs_adapter"][impl] = ratio_of_medians(samples[f"{impl}_adapter"], samples[name])
        out["adapter_vs_full"][impl] = ratio_of_medians(samples["full"], samples[f"{impl}_adapter"])
        if f"{impl}_pruned" in samples:
            out["pruning"][impl] = ratio_of_medians(samples[name], samples[f"{impl}_pruned"])
    for setup in setups:
        if f"ours_{setup}" in samples and f"adapterhub_{setup}" in samples:
            out["ours_over_adapterhub"][setup] = ratio_of_medians(
                samples[f"adapterhub_{setup}"], samples[f"ours_{setup}"]
            )
    return {key: value for key, value in out.items() if value}
