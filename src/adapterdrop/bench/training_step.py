"""One training step as a timed callable: forward, loss, backward and an AdamW update.

Tables 1 and 3 and the efficiency studies compare methods by the cost of a training step, so a
step does everything a real one does (autocast forward, fp32 loss, backward, optimizer update,
zeroing gradients) and nothing more (no data loading, no schedule). Only the parameters being
trained reach the optimizer and only they require gradients, so a frozen backbone keeps neither
gradients nor optimizer state: exactly the saving that makes adapters cheaper to train than full
fine-tuning. The models: :mod:`adapterdrop.bench.models`; the phase they are timed in:
:mod:`adapterdrop.bench.phases`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn
from torch.nn import functional as F

from adapterdrop.bench.devices import precision
from adapterdrop.bench.models import PlainClassifier
from adapterdrop.heads import MultiTaskModel

#: AdamW learning rate; irrelevant to speed, small enough that random labels stay harmless.
LEARNING_RATE = 1e-4

Step = Callable[[], None]


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


def task_training_step(
    model: MultiTaskModel,
    task: str,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None,
    labels: torch.Tensor,
    *,
    dtype: str,
    device: torch.device,
    dropped_layers: int = 0,
    regularizer: Callable[[], torch.Tensor | None] | None = None,
) -> Step:
    """A step training what ``task`` trains (:func:`task_parameters`) through the model's
    forward of ``task`` alone, its modules in the lowest ``dropped_layers`` layers skipped."""
    return training_step(
        lambda: model(input_ids, attention_mask, tasks=task, dropped_layers=dropped_layers)[task],
        labels,
        task_parameters(model, task),
        dtype=dtype,
        device=device,
        regularizer=regularizer,
    )


def adapter_training_step(
    model: MultiTaskModel,
    task: str,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None,
    labels: torch.Tensor,
    *,
    dtype: str,
    device: torch.device,
    regularizer: Callable[[], torch.Tensor | None] | None = None,
) -> Step:
    """A step training ``task``'s modules and head; the backbone stays frozen."""
    if not model.encoder.backbone_frozen():
        raise ValueError("adapter training steps need a frozen backbone (freeze_backbone())")
    return task_training_step(
        model,
        task,
        input_ids,
        attention_mask,
        labels,
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
