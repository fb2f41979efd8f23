"""AdapterFusion in training: the fused tasks' saved adapters loaded (frozen) into the encoder
before the fusion is applied, and, once it is trained, its pruning scored without retraining.

Pruning follows AdapterDrop (Rücklé et al. 2021, Sec. 5): each fused adapter's mean fusion
weight over the validation set's real tokens and over all fusion layers ranks the adapters;
the fusion is pruned to the top k (the same adapters in every layer, the trained fusion weights
reused) and scored again, for k = K-1 down to 1 (k = K is the recorded pass). The metrics are
``val/<metric>@k=<k>``, ``fusion/activation/<task>`` (mean weight) and ``fusion/rank/<task>``
(1: most activated), so tables need nothing but the result. In a multi-device run the weights
are summed over every process first, so all of them prune alike. Fusion-AdapterDrop (fusion layers
below n dropped) is the training run's ``eval_sweep``: ``val/<metric>@n=<n>``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import pytorch_lightning as pl
import torch

from adapterdrop.artefacts import load_artefact
from adapterdrop.heads import MultiTaskModel
from adapterdrop.methods.fusion import fusion_layers, prune_fusion, record_fusion_activations

if TYPE_CHECKING:
    from adapterdrop.train.module import AdapterDropModule

ACTIVATION_PREFIX = "fusion/activation/"
RANK_PREFIX = "fusion/rank/"


def load_fused_adapters(
    model: MultiTaskModel, folders: Mapping[str, Path | str], backbone_name: str | None = None
) -> None:
    """Add each fused task's saved adapter under its name (``glue/mrpc``), frozen with its head:
    only the fusion weights and the target's head train."""
    for task, folder in folders.items():
        load_artefact(folder, model, task, backbone_name=backbone_name)
        for param in model.encoder.trainable(task):
            param.requires_grad_(False)
        model.heads[task].requires_grad_(False)


def activation_ranking(means: Mapping[str, float]) -> list[str]:
    """Fused tasks, most activated first (ties keep fusion order)."""
    return sorted(means, key=lambda task: -means[task])


def score_pruned_fusion(
    trainer: pl.Trainer, module: AdapterDropModule, datamodule: pl.LightningDataModule
) -> dict[str, float]:
    """Record the fusion weights on the validation set, then prune to the top k adapters for
    k = K..1 and validate each (at the run's evaluation depth). Leaves the fusion pruned to one
    adapter: call it last."""
    encoder, task = module.model.encoder, module.task
    module.set_eval_ns(None)
    with record_fusion_activations(encoder, task) as recorder:
        scores = trainer.validate(module, datamodule=datamodule, verbose=False)[0]
    if trainer.world_size > 1:  # every process prunes the same adapters
        recorder.all_reduce()
    table = recorder.table()
    means = dict(zip(table.adapters, torch.nanmean(table.mean, dim=0).tolist(), strict=True))
    ranking = activation_ranking(means)
    metrics = {f"{ACTIVATION_PREFIX}{name}": float(value) for name, value in means.items()}
    metrics.update({f"{RANK_PREFIX}{name}": float(i + 1) for i, name in enumerate(ranking)})
    layers = list(fusion_layers(encoder, task))
    for k in range(len(ranking), 0, -1):
        if k < len(ranking):
            keep = [name for name in table.adapters if name in ranking[:k]]
            prune_fusion(encoder, task, dict.fromkeys(layers, keep))
            scores = trainer.validate(module, datamodule=datamodule, verbose=False)[0]
        metrics.update({f"{key}@k={k}": float(v) for key, v in scores.items() if "@" not in key})
    return metrics
