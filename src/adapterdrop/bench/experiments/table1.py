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

from adapterdrop.bench.devices import resolve_device
from adapterdrop.bench.inputs import random_inputs, random_labels
from adapterdrop.bench.model_cache import cached
from adapterdrop.bench.models import adapter_model, build_encoder, full_finetuning_model
from adapterdrop.bench.phases import PHASES, time_phase
from adapterdrop.bench.processes import (
    check_processes,
    peak_memory,
    pooled,
    processes_entry,
    ratio,
    sample_runs,
    stored_samples,
)
from adapterdrop.bench.settings import point_settings, resolve_timing
from adapterdrop.bench.stats import summarize
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
from adapterdrop.models import model_config

#: Bump when a change to what this grid measures changes its numbers: its points are then
#: remeasured and its tables start afresh (``bench.sweep.with_code_version``).
CODE_VERSION = 1

IMPLEMENTATIONS = ("ours", "adapterhub")
METHODS = ("pfeiffer", "houlsby")


def method_config(method: str, reduction_factor: float) -> dict[str, Any]:
    """Adapters with AdapterHub's non-identity init (as after training); speed is the same."""
    return {"name": method, "reduction_factor": reduction_factor, "init": "bert"}


def points(cfg: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One point per (sequence length, batch size, phase), validated before any model exists."""
    bench = cfg["bench"]
    phases = check_choices("bench.phases", bench["phases"], PHASES)
    methods = check_choices("bench.methods", bench["methods"], METHODS)
    implementations = check_choices(
        "bench.implementations", bench["implementations"], IMPLEMENTATIONS
    )
    batch_sizes = check_int_list(bench["batch_size"], "bench.batch_size", example="[1, 8]")
    seq_lens = check_int_list(bench["seq_len"], "bench.seq_len", example="[64, 128]")
    check_shapes(cfg["model"], batch_sizes, seq_lens, ("bench.batch_size", "bench.seq_len"))
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
    key = {"grid": "table1", **{k: point[k] for k in keys}}

    def build() -> dict[str, Any]:
        encoder = build_encoder(point["model"], {}, device, point["seed"]).eval()
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

    return cached(key, build)


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
