"""Parameter counts as the papers report them.

A module shared across layers sits at several engine keys but is one set of weights, so every
count deduplicates by parameter identity. ``weights_only`` drops biases: the AdapterDrop paper
counts weight matrices only (884,736 for Pfeiffer adapters with reduction factor 16 on
bert-base).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from torch import nn

from adapterdrop.engine import AdapterEncoder


def unique_parameters(
    named: Iterable[tuple[str, nn.Parameter]],
) -> Iterator[tuple[str, nn.Parameter]]:
    """Each parameter once (first name wins), however many names it is reachable under."""
    seen: set[int] = set()
    for name, param in named:
        if id(param) not in seen:
            seen.add(id(param))
            yield name, param


def is_bias(name: str) -> bool:
    return name.rsplit(".", 1)[-1] == "bias"


def count(
    named: Iterable[tuple[str, nn.Parameter]],
    trainable_only: bool = False,
    weights_only: bool = False,
) -> int:
    """Number of scalars in distinct parameters, optionally only trainable ones / no biases."""
    return sum(
        param.numel()
        for name, param in unique_parameters(named)
        if (param.requires_grad or not trainable_only) and not (weights_only and is_bias(name))
    )


def count_parameters(
    module: nn.Module, trainable_only: bool = False, weights_only: bool = False
) -> int:
    """Distinct parameters of ``module`` (e.g. ``trainable_only`` for full fine-tuning)."""
    return count(module.named_parameters(remove_duplicate=False), trainable_only, weights_only)


def task_parameter_count(encoder: AdapterEncoder, task: str, weights_only: bool = False) -> int:
    """Parameters added for ``task``: its site modules plus any its method placed inside the
    backbone (``Method.backbone_parameters``: LoRA's, named after the task).

    Backbone weights are excluded, so full fine-tuning counts 0 here; use
    ``count_parameters(encoder, trainable_only=True)`` for what an optimizer updates.
    """
    own = [
        (f"{key}.{name}", param)
        for key, module in encoder.modules_of(task).items()
        for name, param in module.named_parameters(remove_duplicate=False)
    ]
    method = encoder.method_of(task)
    added = [] if method is None else list(method.backbone_parameters(encoder.backbone, task))
    return count([*own, *added], weights_only=weights_only)


def training_counts(
    encoder: AdapterEncoder, heads: Iterable[nn.Module], tasks: Iterable[str]
) -> dict[str, float]:
    """What a training result records about its size: the encoder weights training ``tasks``
    updates, each once (the methods' comparable number: adapters, LoRA, or every backbone
    weight for full fine-tuning, however many tasks share it) and their heads', kept apart as
    the papers leave heads out."""
    trained = [param for task in tasks for param in encoder.trainable(task)]
    return {
        "params/trainable": float(count(_named(trained))),
        "params/head": float(sum(count_parameters(head) for head in heads)),
    }


def _named(params: Iterable[nn.Parameter]) -> Iterator[tuple[str, nn.Parameter]]:
    return ((str(i), p) for i, p in enumerate(params))
