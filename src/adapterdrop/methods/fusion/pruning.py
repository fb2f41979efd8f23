"""Fewer fusion layers (fusion-AdapterDrop) or fewer fused adapters per layer (pruning)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from adapterdrop.core import Encoder, Site, SiteKey
from adapterdrop.methods.fusion.layer import fusion_layers


def drop_fusion_layers(encoder: Encoder, task: str, below: int) -> None:
    """Remove ``task``'s fusion layers ``< below`` (static AdapterDrop for fusion).

    The top layer always stays: ``below`` must be a valid drop depth of the encoder.
    """
    encoder.check_dropped(below)
    layers = fusion_layers(encoder, task)
    for layer in layers:
        if layer < below:
            encoder.remove_module(task, SiteKey(layer, Site.OUTPUT))


def prune_fusion(encoder: Encoder, task: str, keep: Mapping[int, Sequence[str]]) -> None:
    """Fuse only ``keep[layer]`` in each listed layer, reusing the trained fusion weights."""
    layers = fusion_layers(encoder, task)
    missing = sorted(set(keep) - set(layers))
    if missing:
        raise ValueError(f"task {task!r} has no fusion at layers {missing}; it has {list(layers)}")
    for layer, names in keep.items():
        layers[layer].prune(names)
