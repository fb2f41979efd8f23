"""The models benchmark callables run: our frozen encoder with its tasks, the same encoder with
a classification head per task, and the full fine-tuning baseline.

The full fine-tuning baseline is a plain Hugging Face encoder with the same classification head,
every weight trained; at inference the same model is the plain model adapters are compared to.
Ours and AdapterHub (:mod:`adapterdrop.reference`) are built from the same weights.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import nn
from transformers import PreTrainedModel

from adapterdrop.bench.inputs import NUM_LABELS
from adapterdrop.engine import AdapterEncoder
from adapterdrop.heads import ClassificationHead, MultiTaskModel
from adapterdrop.methods import build_method
from adapterdrop.models import load_backbone


def build_encoder(
    model_cfg: Mapping[str, Any],
    methods: Mapping[str, Mapping[str, Any]],
    device: torch.device,
    seed: int = 0,
) -> AdapterEncoder:
    """The backbone of ``model_cfg``, frozen, in our layer loop, with a task per ``methods``
    entry (task -> method config; random, non-identity modules from ``seed``), on ``device``.

    The modules are left in train mode as built; :func:`adapterdrop.bench.phases.time_phase`
    sets each phase's mode, and a caller that runs the model outside it sets the mode itself.
    """
    encoder = AdapterEncoder(load_backbone(model_cfg, seed=seed).model)
    encoder.freeze_backbone()
    torch.manual_seed(seed)
    for task, method in methods.items():
        build_method(method).apply(encoder, task)
    return encoder.to(device)


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
