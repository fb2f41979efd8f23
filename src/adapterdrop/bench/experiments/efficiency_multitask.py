"""K tasks three ways: K adapters on one frozen backbone, K fully fine-tuned models, or one
multi-task fully fine-tuned model (shared backbone, K heads) -- the comparison behind Mundra et
al. (2023), who found adapters no cheaper than (multi-task) full fine-tuning.

Training, per round of one batch of B examples for every task (K * B examples):

* K adapters: K adapter steps of B rows; K full fine-tunings: K full steps of B rows. Separate
  models' steps are independent, so a round costs K times one step: we time one step and
  scale its samples by K (the table says so).
* multi-task: one full step on a mixed batch of K * B rows, B per task, each block through its
  task's head; timed as is.

Serving, per request of B inputs that need all K tasks' predictions: the K adapters in one
Parallel pass (the engine replicates the batch only where the adapters start), or one pass per
adapter (K times one timed pass); K full models (K times one plain pass); the multi-task model
(one pass, K heads).

Storage counts what must be kept for K tasks: the backbone once plus K adapters and heads, K
whole models, or one backbone with K heads. All costs are per step; the paper's training time
was time to convergence, which these benchmarks do not measure.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

import torch
from torch import nn

from adapterdrop.bench.experiments.efficiency_common import common_fields, device_of, summaries
from adapterdrop.bench.inputs import NUM_LABELS, labelled_inputs, task_names
from adapterdrop.bench.model_cache import cached
from adapterdrop.bench.models import (
    PlainClassifier,
    adapter_model,
    build_encoder,
    full_finetuning_model,
)
from adapterdrop.bench.phases import PHASES, time_phase
from adapterdrop.bench.stats import ratio_of_medians
from adapterdrop.bench.training_step import (
    adapter_training_step,
    full_training_step,
    training_step,
)
from adapterdrop.bench.validate import check_choices, check_method, check_shapes
from adapterdrop.checks import check_int, check_int_list
from adapterdrop.heads import ClassificationHead, MultiTaskModel
from adapterdrop.params import count_parameters, task_parameter_count

#: strategy -> (label, the timed callable, whether a round runs it K times)
STRATEGIES = {
    "training": {
        "k_adapters": ("K adapters, one step each", "adapter_step", True),
        "k_full": ("K full fine-tunings, one step each", "full_step", True),
        "multitask": ("multi-task full fine-tuning, one mixed step", "multitask_step", False),
    },
    "inference": {
        "adapters_parallel": ("K adapters, one Parallel pass", "adapters_parallel", False),
        "adapters_sequential": ("K adapters, one pass each", "adapter_single", True),
        "k_full": ("K full models, one pass each", "full_single", True),
        "multitask": ("multi-task model, one pass with K heads", "multitask", False),
    },
}
BASELINE = "k_full"


class MultiTaskClassifier(nn.Module):
    """Multi-task full fine-tuning: one trainable encoder and a head per task."""

    def __init__(self, backbone: nn.Module, num_tasks: int) -> None:
        super().__init__()
        self.backbone = backbone
        width = backbone.config.hidden_size
        self.heads = nn.ModuleList(ClassificationHead(width, NUM_LABELS) for _ in range(num_tasks))

    def _hidden(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.backbone(input_ids=ids, attention_mask=mask).last_hidden_state

    def mixed_logits(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """A mixed batch: equal consecutive row blocks, one per task, each through its head."""
        blocks = self._hidden(ids, mask).chunk(len(self.heads))
        return torch.cat([head(block) for head, block in zip(self.heads, blocks, strict=True)])

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> list[torch.Tensor]:
        """Every task's logits for every row, from one encoder pass."""
        hidden = self._hidden(ids, mask)
        return [head(hidden) for head in self.heads]


Models = tuple[MultiTaskModel, PlainClassifier, MultiTaskClassifier]


def multitask_points(cfg: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per K: a training point and an inference point (they share their models)."""
    bench = cfg["bench"]
    study = bench["multitask"]
    phases = check_choices("bench.multitask.phases", study["phases"], PHASES)
    counts = check_int_list(study["num_tasks"], "bench.multitask.num_tasks", example="[2, 4, 8]")
    for k in counts:
        task_names(k)
    rows = check_int(study["batch_size"], "bench.multitask.batch_size")
    shape_keys = ("bench.multitask.batch_size x num_tasks", "bench.seq_len")
    check_shapes(cfg["model"], [rows * k for k in counts], [bench["seq_len"]], shape_keys)
    common = {
        **common_fields(cfg, "multitask"),
        "adapter": check_method(bench["adapter"], "bench.adapter", cfg["model"]),
        "batch_size": rows,
        "seq_len": bench["seq_len"],
    }
    return [
        {**common, "num_tasks": k, "phase": phase} for k in study["num_tasks"] for phase in phases
    ]


def _models(point: Mapping[str, Any]) -> Models:
    """K adapter tasks on a frozen backbone; a trainable copy with one head, and with K."""
    fields = ("study", "model", "adapter", "num_tasks", "device", "seed")

    def build() -> Models:
        tasks = task_names(point["num_tasks"])
        methods = dict.fromkeys(tasks, point["adapter"])
        encoder = build_encoder(point["model"], methods, device_of(point), point["seed"])
        adapters = adapter_model(encoder, tasks)
        plain = full_finetuning_model(adapters.encoder)
        multi = MultiTaskClassifier(plain.backbone, len(tasks)).to(device_of(point))
        return adapters, plain, multi

    return cached({k: point[k] for k in fields}, build)


def _callables(point: Mapping[str, Any], models: Models) -> dict[str, Callable[[], None]]:
    adapters, plain, multi = models
    device, dtype = device_of(point), point["dtype"]
    tasks = task_names(point["num_tasks"])
    vocab = plain.backbone.config.vocab_size
    seq_len, seed = point["seq_len"], point["seed"]
    ids, mask, labels = labelled_inputs(vocab, point["batch_size"], seq_len, device, seed)
    if point["phase"] == "training":
        mixed_rows = point["batch_size"] * len(tasks)
        mixed = labelled_inputs(vocab, mixed_rows, seq_len, device, seed)
        mixed_ids, mixed_mask, mixed_labels = mixed
        return {
            "adapter_step": adapter_training_step(
                adapters, tasks[0], ids, mask, labels, dtype=dtype, device=device
            ),
            "full_step": full_training_step(plain, ids, mask, labels, dtype=dtype, device=device),
            "multitask_step": training_step(
                lambda: multi.mixed_logits(mixed_ids, mixed_mask),
                mixed_labels,
                multi.parameters(),
                dtype=dtype,
                device=device,
            ),
        }

    return {
        "adapters_parallel": partial(adapters, ids, mask, tasks=tasks),
        "adapter_single": partial(adapters, ids, mask, tasks=tasks[0]),
        "full_single": partial(plain, ids, mask),
        "multitask": partial(multi, ids, mask),
    }


def measure_multitask(point: dict[str, Any]) -> tuple[dict[str, Any], dict[str, list[float]]]:
    models = _models(point)
    adapters, plain, _ = models
    samples = time_phase(
        _callables(point, models),
        models,
        point["phase"],
        device=device_of(point),
        dtype=point["dtype"],
        timing=point["timing"],
    )
    k = point["num_tasks"]
    costs = {
        name: [t * (k if times_k else 1) for t in samples[callable_name]]
        for name, (_, callable_name, times_k) in STRATEGIES[point["phase"]].items()
    }
    metrics: dict[str, Any] = summaries(samples)
    metrics["cost"] = summaries(costs)
    metrics["speed"] = {
        name: ratio_of_medians(costs[BASELINE], cost) for name, cost in costs.items()
    }
    metrics["params"] = {
        "backbone": count_parameters(plain.backbone),
        "adapter": task_parameter_count(adapters.encoder, "task0"),
        "head": count_parameters(plain.head),
    }
    return metrics, samples
