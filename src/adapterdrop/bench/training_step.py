"""One training step as a timed callable: forward, loss, backward and an AdamW update.

Tables 1 and 3 compare methods by the cost of a training step, so a step does everything a
real one does (autocast forward, fp32 loss, backward, optimizer update, zeroing gradients) and
nothing more (no data loading, no schedule). Only the parameters being trained reach the
optimizer and only they require gradients, so a frozen backbone keeps neither gradients nor
optimizer state: exactly the saving that makes adapters cheaper to train than full fine-tuning.

The full fine-tuning baseline is a plain Hugging Face encoder with the same classification head,
every weight trained; at inference the same model is the plain model adapters are compared to.
Tables 1 and 3 also share the grid checks and the per-phase interleaved timing defined here.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from transformers import PreTrainedModel

from adapterdrop.bench.timer import Samples, Timed, measure_interleaved
from adapterdrop.bench.workloads import precision, storage_dtype
from adapterdrop.engine import AdapterEncoder
from adapterdrop.heads import ClassificationHead, MultiTaskModel
from adapterdrop.models import model_config

#: Labels of the synthetic classification task; speed does not depend on the label count.
NUM_LABELS = 2
#: AdamW learning rate; irrelevant to speed, small enough that random labels stay harmless.
LEARNING_RATE = 1e-4

#: A method is timed in two phases: one training step, or one forward without autograd.
PHASES = ("training", "inference")

Step = Callable[[], None]


def check_choices(what: str, values: Sequence[Any], allowed: Sequence[Any]) -> list[Any]:
    """``values`` as a list: non-empty, distinct, each one of ``allowed``."""
    values = list(values)
    unknown = [v for v in values if v not in allowed]
    if unknown or not values or len(set(values)) != len(values):
        raise ValueError(f"{what} must be distinct values from {list(allowed)}; got {values}")
    return values


def check_shapes(
    model_cfg: Mapping[str, Any], batch_sizes: Iterable[int], seq_lens: Iterable[int]
) -> None:
    """Refuse batch sizes < 1 and sequences longer than the model's position embeddings."""
    for batch in batch_sizes:
        if batch < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch}")
    positions = model_config(model_cfg).max_position_embeddings
    # RoBERTa's positions start after the padding index, so two of its slots are unusable.
    limit = positions - 2 * (model_cfg["family"] == "roberta")
    for seq in seq_lens:
        if not 1 <= seq <= limit:
            raise ValueError(f"seq_len {seq} impossible for {model_cfg['name']}: use 1..{limit}")


def time_phase(
    callables: Mapping[str, Step | Timed],
    modules: Iterable[nn.Module],
    phase: str,
    *,
    device: torch.device,
    dtype: str,
    timing: Mapping[str, Any],
    peak_memory: bool = True,
) -> Samples:
    """Interleave ``callables`` with ``modules`` in train mode (dropout on, autograd, fp32
    weights under autocast) for ``training``, or in eval mode under ``no_grad`` with the
    weights stored in ``dtype`` for ``inference`` (:func:`storage_dtype`).

    Inference runs under ``no_grad``, not ``inference_mode``: on CPU with autocast, torch 2.13
    runs ``nn.Linear`` on a non-contiguous input (AdapterHub's ``Fuse`` applies its key and value
    maps to a permuted stack of adapter outputs) some 100x slower under ``inference_mode``, which
    would turn the comparison into one of that slow path.
    """
    training = check_choices("phase", [phase], PHASES) == ["training"]
    storage = storage_dtype(dtype, phase)
    for module in modules:
        module.train(training)
        # In place: an optimizer built on these parameters keeps them.
        module.to(storage)
    with contextlib.nullcontext() if training else torch.no_grad():
        return measure_interleaved(callables, device=device, peak_memory=peak_memory, **timing)


class PlainClassifier(nn.Module):
    """A Hugging Face encoder with a classification head on the first token."""

    def __init__(self, backbone: PreTrainedModel, num_labels: int = NUM_LABELS) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = ClassificationHead(backbone.config.hidden_size, num_labels)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.backbone(input_ids=input_ids, attention_mask=attention_mask)
        return self.head(hidden.last_hidden_state)


def full_finetuning_model(encoder: AdapterEncoder, num_labels: int = NUM_LABELS) -> PlainClassifier:
    """A copy of ``encoder``'s backbone (the engine's stays frozen) with every weight trainable."""
    model = PlainClassifier(copy.deepcopy(encoder.backbone), num_labels)
    model.requires_grad_(True)
    return model.to(next(encoder.backbone.parameters()).device)


def adapter_model(
    encoder: AdapterEncoder, tasks: Iterable[str], num_labels: int = NUM_LABELS
) -> MultiTaskModel:
    """``encoder`` with one classification head per task (the head always trains)."""
    model = MultiTaskModel(encoder)
    for task in tasks:
        model.add_head(task, num_labels)
    return model.to(next(encoder.backbone.parameters()).device)


def random_labels(batch: int, device: torch.device, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, NUM_LABELS, (batch,), generator=generator).to(device)


def training_step(
    logits: Callable[[], torch.Tensor],
    labels: torch.Tensor,
    parameters: Iterable[nn.Parameter],
    *,
    dtype: str,
    device: torch.device,
    regularizer: Callable[[], torch.Tensor | None] | None = None,
) -> Step:
    """A callable doing one step on ``parameters`` (each once, all requiring grad).

    ``regularizer`` adds a term to the loss (AdapterFusion's value regularizer). fp16 uses a
    gradient scaler as mixed-precision training must; bf16 and fp32 need none.
    """
    params = list({id(p): p for p in parameters}.values())
    if not params:
        raise ValueError("a training step needs at least one parameter to train")
    frozen = [p for p in params if not p.requires_grad]
    if frozen:
        raise ValueError(f"{len(frozen)} parameter(s) given to the optimizer do not require grad")
    # Fused AdamW: the Hugging Face Trainer's default on torch >= 2.8, and far faster than the
    # per-tensor loop on CPU, where it would otherwise dominate a full fine-tuning step.
    optimizer = torch.optim.AdamW(params, lr=LEARNING_RATE, fused=True)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == "fp16")

    def step() -> None:
        with precision(dtype, device):
            output = logits()
        loss = F.cross_entropy(output.float(), labels)
        if regularizer is not None:
            extra = regularizer()
            if extra is not None:
                loss = loss + extra.float()
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)

    return step


def task_parameters(model: MultiTaskModel, task: str) -> list[nn.Parameter]:
    """What training ``task`` updates: the encoder's ``trainable(task)`` and the task's head."""
    return model.encoder.trainable(task) + list(model.heads[task].parameters())


def adapter_training_step(
    model: MultiTaskModel,
    task: str,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    labels: torch.Tensor,
    *,
    dtype: str,
    device: torch.device,
    regularizer: Callable[[], torch.Tensor | None] | None = None,
) -> Step:
    """A step training ``task``'s modules and head; the backbone stays frozen."""
    if not model.encoder.backbone_frozen():
        raise ValueError("adapter training steps need a frozen backbone (freeze_backbone())")
    return training_step(
        lambda: model(input_ids, attention_mask, tasks=task)[task],
        labels,
        task_parameters(model, task),
        dtype=dtype,
        device=device,
        regularizer=regularizer,
    )


def full_training_step(
    model: PlainClassifier,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    labels: torch.Tensor,
    *,
    dtype: str,
    device: torch.device,
) -> Step:
    """A full fine-tuning step: every encoder weight and the head."""
    return training_step(
        lambda: model(input_ids, attention_mask),
        labels,
        model.parameters(),
        dtype=dtype,
        device=device,
    )


def adapterhub_training_step(
    hidden: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    model: nn.Module,
    head: nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    labels: torch.Tensor,
    *,
    dtype: str,
    device: torch.device,
    regularizer: Callable[[], torch.Tensor | None] | None = None,
) -> Step:
    """A step through an AdapterHub forward (``hidden`` gives ``(B, S, d)``) and ``head``.

    What trains is what AdapterHub marks trainable in ``model`` (``train_adapter`` or
    ``train_adapter_fusion``), plus the head.
    """
    params = [p for p in model.parameters() if p.requires_grad] + list(head.parameters())
    return training_step(
        lambda: head(hidden(input_ids, attention_mask)),
        labels,
        params,
        dtype=dtype,
        device=device,
        regularizer=regularizer,
    )
