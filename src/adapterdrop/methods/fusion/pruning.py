"""Fewer fused adapters per layer (pruning); fewer fusion layers is the method's ``leave_out``
(built without them) or the engine's ``dropped_layers`` (skipped at run time)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from adapterdrop.core import Encoder
from adapterdrop.methods.fusion.layer import fusion_layers


def prune_fusion(encoder: Encoder, task: str, keep: Mapping[int, Sequence[str]]) -> None:
    """Fuse only ``keep[layer]`` in each listed layer, reusing the trained fusion weights."""
    layers = fusion_layers(encoder, task)
    missing = sorted(set(keep) - set(layers))
    if missing:
        raise ValueError(f"task {task!r} has no fusion at layers {missing}; it has {list(layers)}")
    for layer, names in keep.items():
        layers[layer].prune(names)
