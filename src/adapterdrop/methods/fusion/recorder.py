"""Which fused adapters a fusion layer attends to: mean softmax weights over real tokens."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

from adapterdrop.core import Encoder
from adapterdrop.methods.fusion.layer import FusionLayer, fusion_layers


@dataclass
class FusionActivations:
    """Mean softmax weight of each fused adapter per layer over the recorded tokens.

    ``mean[i, k]`` is for layer ``layers[i]`` and adapter ``adapters[k]``; NaN where that
    adapter is not fused in that layer (pruned) or the layer saw no token.
    """

    layers: list[int]
    adapters: list[str]
    mean: torch.Tensor
    tokens: list[int]

    def top(self, k: int) -> dict[int, list[str]]:
        """The ``k`` most activated adapters per layer, in fusion order (input to pruning)."""
        for layer, row in zip(self.layers, self.mean, strict=True):
            available = int((~row.isnan()).sum())
            if not 1 <= k <= available:
                raise ValueError(
                    f"cannot keep {k} adapters in layer {layer}: it has {available} recorded "
                    f"(choose 1..{available})"
                )
        chosen = {}
        for layer, row in zip(self.layers, self.mean, strict=True):
            best = set(torch.nan_to_num(row, nan=-math.inf).topk(k).indices.tolist())
            chosen[layer] = [name for j, name in enumerate(self.adapters) if j in best]
        return chosen


class FusionRecorder:
    """Accumulates each fusion layer's softmax weights over non-padding tokens.

    Sums and token counts stay on the device while batches run (reading them on the host
    would make every fusion layer wait for the device); ``table()`` reads them once.
    """

    def __init__(self, layers: dict[int, FusionLayer]) -> None:
        self._layers = layers
        self._mask: torch.Tensor | None = None
        self._sums: dict[int, torch.Tensor] = {}
        self._counts: dict[int, torch.Tensor | int] = dict.fromkeys(layers, 0)

    def set_mask(self, attention_mask: torch.Tensor | None) -> None:
        self._mask = attention_mask

    def observe(self, layer: int, probs: torch.Tensor) -> None:
        """Add one batch's ``(B, S, K)`` weights, skipping tokens the mask marks as padding."""
        if self._mask is not None and self._mask.shape != probs.shape[:2]:
            raise ValueError(
                f"attention mask {tuple(self._mask.shape)} does not match the fusion batch "
                f"{tuple(probs.shape[:2])}"
            )
        if self._mask is None:
            keep = probs.new_ones(probs.shape[:2], dtype=torch.float64)
        else:
            keep = self._mask.to(device=probs.device, dtype=torch.float64)
        total = torch.einsum("bsk,bs->k", probs.to(torch.float64), keep)
        self._sums[layer] = self._sums.get(layer, torch.zeros_like(total)) + total
        self._counts[layer] = self._counts[layer] + keep.sum()

    def all_reduce(self) -> None:
        """Sum the weights and token counts over every process of a distributed run
        (``torch.distributed``), so that each process ranks, and so prunes, by the whole
        validation set rather than by its own shard."""
        device = next((total.device for total in self._sums.values()), torch.device("cpu"))
        parts = [
            (
                self._sums.get(index, torch.zeros(len(layer.names), dtype=torch.float64)),
                torch.as_tensor(self._counts[index], dtype=torch.float64).reshape(1),
            )
            for index, layer in self._layers.items()
        ]
        flat = torch.cat([torch.cat(pair) for pair in parts]).to(device)
        torch.distributed.all_reduce(flat)
        start = 0
        for index, layer in self._layers.items():
            width = len(layer.names)
            self._sums[index] = flat[start : start + width]
            self._counts[index] = flat[start + width]
            start += width + 1

    def table(self) -> FusionActivations:
        columns: list[str] = []
        for layer in self._layers.values():
            columns += [name for name in layer.names if name not in columns]
        mean = torch.full((len(self._layers), len(columns)), math.nan, dtype=torch.float64)
        counts = {index: int(count) for index, count in self._counts.items()}
        for row, (index, layer) in enumerate(self._layers.items()):
            if counts[index]:
                sums = self._sums[index].cpu()
                for name, total in zip(layer.names, sums, strict=True):
                    mean[row, columns.index(name)] = total / counts[index]
        return FusionActivations(
            list(self._layers), columns, mean, [counts[i] for i in self._layers]
        )


@contextlib.contextmanager
def record_fusion_activations(encoder: Encoder, task: str) -> Iterator[FusionRecorder]:
    """Record ``task``'s fusion weights while batches run; ``recorder.table()`` afterwards.

    The attention mask is taken from each ``encoder(...)`` call, so padding is not counted.
    Prune with ``prune_fusion(encoder, task, recorder.table().top(k))``.
    """
    layers = fusion_layers(encoder, task)
    recorder = FusionRecorder(layers)

    def capture_mask(_module: nn.Module, args: tuple, kwargs: dict) -> None:
        mask = kwargs.get("attention_mask", args[1] if len(args) > 1 else None)
        recorder.set_mask(mask)

    handle = encoder.register_forward_pre_hook(capture_mask, with_kwargs=True)
    for index, layer in layers.items():
        layer.observer = lambda probs, index=index: recorder.observe(index, probs)
    try:
        yield recorder
    finally:
        handle.remove()
        for layer in layers.values():
            layer.observer = None
