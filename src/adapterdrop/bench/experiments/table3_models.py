"""The models of one Table 3 point (one K, both phases share them): K Pfeiffer adapters and a
single-adapter baseline on one frozen backbone, their fusion (and that fusion pruned to the most
activated adapters, where the point prunes), the full fine-tuning baseline, and AdapterHub copies
of each set-up over the same weights. Built once per K in the shared model cache."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import torch

from adapterdrop.bench.devices import resolve_device
from adapterdrop.bench.inputs import random_inputs, task_names
from adapterdrop.bench.model_cache import cached
from adapterdrop.bench.models import adapter_model, build_encoder, full_finetuning_model
from adapterdrop.engine import AdapterEncoder
from adapterdrop.methods import build_method
from adapterdrop.methods.fusion import fusion_layers, prune_fusion, record_fusion_activations


def adapter_config(reduction_factor: float) -> dict[str, Any]:
    """Pfeiffer adapters with AdapterHub's non-identity init (as after training)."""
    return {"name": "pfeiffer", "reduction_factor": reduction_factor, "init": "bert"}


def fusion_config(adapters: list[str], options: Mapping[str, Any]) -> dict[str, Any]:
    return {**options, "name": "fusion", "adapters": adapters}


def _prune_by_activation(
    encoder: AdapterEncoder, task: str, keep: int, ids: torch.Tensor, mask: torch.Tensor
) -> list[str]:
    """Keep the ``keep`` adapters with the highest mean fusion weight over all layers.

    The same adapters stay in every layer, so a pruned adapter is removed from the model
    altogether (and AdapterHub's ``Fuse`` can express the result).
    """
    with record_fusion_activations(encoder, task) as recorder, torch.inference_mode():
        encoder(ids, mask, tasks=task)
    table = recorder.table()
    best = set(table.mean.nanmean(0).topk(keep).indices.tolist())
    kept = [name for index, name in enumerate(table.adapters) if index in best]
    prune_fusion(encoder, task, dict.fromkeys(fusion_layers(encoder, task), kept))
    return kept


def table3_models(point: Mapping[str, Any]) -> dict[str, Any]:
    """The models of one K (both phases share them): ``model`` (ours, a head per set-up),
    ``full``, ``kept`` (the pruned fusion's adapters, or None) and, if asked for, ``adapterhub``
    (set-up -> (model, forward, head))."""
    device = resolve_device(point["device"])
    keys = ("model", "reduction_factor", "fusion", "num_adapters", "prune_to", "implementations")
    key = {"grid": "table3", **{k: point[k] for k in (*keys, "device", "seed")}}

    def build() -> dict[str, Any]:
        encoder = build_encoder(point["model"], {}, device, point["seed"]).eval()
        adapter = adapter_config(point["reduction_factor"])
        fused = task_names(point["num_adapters"])
        # "adapter" is the single-adapter baseline: not fused, so it stays trainable.
        for task in ("adapter", *fused):
            build_method(adapter).apply(encoder, task)
        fusions = ["fusion"] if point["prune_to"] is None else ["fusion", "pruned"]
        for task in fusions:
            build_method(fusion_config(fused, point["fusion"])).apply(encoder, task)
        encoder.to(device)
        models: dict[str, Any] = {"kept": None}
        if point["prune_to"] is not None:
            ids, mask = random_inputs(
                encoder.backbone.config.vocab_size,
                point["batch_size"],
                point["seq_len"],
                device,
                point["seed"] + 1,
            )
            models["kept"] = _prune_by_activation(encoder, "pruned", point["prune_to"], ids, mask)
        model = adapter_model(encoder, ["adapter", *fusions])
        models.update(model=model, full=full_finetuning_model(encoder))
        if "adapterhub" in point["implementations"]:
            models["adapterhub"] = _adapterhub_models(model, fusions)
        return models

    return cached(key, build)


def _already_active() -> None:
    """The setup of a model that only ever runs one AdapterHub configuration."""


def _adapterhub_models(model: Any, fusions: list[str]) -> dict[str, tuple[Any, Any, Any]]:
    """AdapterHub copies of each set-up: ``{setup: (model, forward, head)}``, trainable parts
    marked with AdapterHub's own ``train_adapter`` / ``train_adapter_fusion``."""
    from adapterdrop.reference.adapterhub import HubForward, build_adapterhub_reference
    from adapterdrop.reference.adapterhub_fusion import build_adapterhub_fusion

    encoder = model.encoder
    reference = build_adapterhub_reference(encoder, ["adapter"])
    reference.model.train_adapter("adapter")
    hubs = {
        "adapter": (
            reference.model,
            reference.single_forward("adapter"),
            copy.deepcopy(model.heads["adapter"]),
        )
    }
    for task in fusions:
        hub = build_adapterhub_fusion(encoder, task)
        hub.train_adapter_fusion(hub.adapters_config.active_setup)

        def forward(ids: torch.Tensor, mask: torch.Tensor | None, hub: Any = hub) -> torch.Tensor:
            return hub(input_ids=ids, attention_mask=mask).last_hidden_state

        # Each fusion has a model of its own, activated once when built: nothing to switch.
        hubs[task] = (hub, HubForward(_already_active, forward), copy.deepcopy(model.heads[task]))
    return hubs
