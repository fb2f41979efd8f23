"""What each parameter-efficient method costs over the model it adapts.

Inference: each method's forward (with its head) against the plain model, which is also the
fully fine-tuned model. Training: each method's step against a full fine-tuning step. The
baseline is a plain Hugging Face encoder with the same head, as in Table 1
(:mod:`adapterdrop.bench.training_step`). Methods that add site modules share one frozen
backbone (the engine runs only the task asked for); a method that changes the backbone
(``Method.changes_backbone``: LoRA is injected into its projections by peft) gets its own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

import torch

from adapterdrop.bench.experiments.efficiency_common import common_fields, device_of, summaries
from adapterdrop.bench.inputs import labelled_inputs
from adapterdrop.bench.model_cache import cached
from adapterdrop.bench.models import (
    PlainClassifier,
    adapter_model,
    build_encoder,
    full_finetuning_model,
)
from adapterdrop.bench.phases import PHASES, time_phase
from adapterdrop.bench.processes import (
    check_processes,
    pooled,
    processes_entry,
    ratio,
    sample_runs,
    stored_samples,
)
from adapterdrop.bench.settings import resolve_timing
from adapterdrop.bench.training_step import full_training_step, task_training_step
from adapterdrop.bench.validate import check_choices, check_method, check_shapes
from adapterdrop.core import Method
from adapterdrop.heads import MultiTaskModel
from adapterdrop.methods import build_method
from adapterdrop.params import count_parameters, task_parameter_count

#: The baseline's callable name per phase.
BASELINE = {"inference": "plain", "training": "full"}


def overhead_points(cfg: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One point per phase; every method and the baseline are timed in it."""
    bench = cfg["bench"]
    study = bench["overheads"]
    phases = check_choices("bench.overheads.phases", study["phases"], PHASES)
    methods = {}
    for label, method in study["methods"].items():
        checked = check_method(method, f"bench.overheads.methods.{label}", cfg["model"])
        if label in BASELINE.values() or not_compared(build_method(checked)):
            raise ValueError(
                f"overheads method {label!r} ({method.get('name')}) is not allowed: "
                f"{sorted(BASELINE.values())} name the baselines, and methods that train the "
                f"backbone (full fine-tuning is the baseline) or fuse other tasks (they need "
                f"trained adapters) are not compared"
            )
        methods[label] = checked
    if not methods:
        raise ValueError("bench.overheads.methods is empty: name at least one method")
    shape_keys = ("bench.batch_size", "bench.seq_len")
    check_shapes(cfg["model"], [bench["batch_size"]], [bench["seq_len"]], shape_keys)
    common = {
        **common_fields(cfg, "overheads"),
        "methods": methods,
        "batch_size": bench["batch_size"],
        "seq_len": bench["seq_len"],
    }
    processes = check_processes(study["inference_processes"], "bench.overheads.inference_processes")
    return [
        {**common, "phase": phase, "timing": resolve_timing(cfg, phase)}
        | processes_entry(phase, processes)
        for phase in phases
    ]


def not_compared(method: Method) -> bool:
    """Full fine-tuning is the baseline; fusion needs trained adapters of other tasks."""
    return method.trains_backbone or method.fuses_tasks


def _models(point: Mapping[str, Any]) -> tuple[PlainClassifier, dict[str, MultiTaskModel]]:
    """The plain classifier, and label -> the model holding that label's task."""
    key = {k: point[k] for k in ("study", "model", "methods", "device", "seed")}

    def build() -> tuple[PlainClassifier, dict[str, MultiTaskModel]]:
        methods = point["methods"]
        device, seed = device_of(point), point["seed"]
        sharing = {k: m for k, m in methods.items() if not build_method(m).changes_backbone}
        shared = build_encoder(point["model"], sharing, device, seed)
        models = {label: adapter_model(shared, [label]) for label in sharing}
        for label, method in methods.items():
            if label not in sharing:
                own = build_encoder(point["model"], {label: method}, device, seed)
                models[label] = adapter_model(own, [label])
        return full_finetuning_model(shared), models

    return cached(key, build)


def _callable(
    model: MultiTaskModel, task: str, data: tuple[torch.Tensor, ...], point: Mapping[str, Any]
) -> Callable[[], None]:
    """One training step of ``task``, or its forward (encoder and head) at inference."""
    ids, mask, labels = data
    if point["phase"] == "training":
        dtype, device = point["dtype"], device_of(point)
        return task_training_step(model, task, ids, mask, labels, dtype=dtype, device=device)
    return partial(model, ids, mask, tasks=task)


def _overhead_samples(point: Mapping[str, Any], *, peak_memory: bool) -> dict[str, list[float]]:
    """Time the baseline and every method of ``point`` in this process, interleaved."""
    device, phase = device_of(point), point["phase"]
    plain, models = _models(point)
    vocab = plain.backbone.config.vocab_size
    data = labelled_inputs(vocab, point["batch_size"], point["seq_len"], device, point["seed"])
    ids, mask, labels = data
    baseline = BASELINE[phase]
    if phase == "training":
        step = full_training_step(plain, ids, mask, labels, dtype=point["dtype"], device=device)
        callables = {baseline: step}
    else:
        callables = {baseline: partial(plain, ids, mask)}
    for label, model in models.items():
        callables[label] = _callable(model, label, data, point)
    modules = [plain, *models.values()]
    return time_phase(
        callables,
        modules,
        phase,
        device=device,
        dtype=point["dtype"],
        timing=point["timing"],
        peak_memory=peak_memory,
    )


def measure_overheads(point: dict[str, Any]) -> tuple[dict[str, Any], dict[str, list[float]]]:
    """Speeds against the baseline; with ``processes`` > 1, medians over fresh processes."""
    runs = sample_runs(_overhead_samples, point)
    baseline = BASELINE[point["phase"]]
    metrics: dict[str, Any] = summaries(pooled(runs))
    metrics["processes"] = len(runs)
    metrics["speed"] = {name: ratio(runs, baseline, name) for name in runs[0]}
    plain, models = _models(point)
    metrics["params"] = {
        "full": count_parameters(plain.backbone),
        **{label: task_parameter_count(m.encoder, label) for label, m in models.items()},
    }
    return metrics, stored_samples(runs)
