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
    """Parameters added for ``task``: its site modules plus any peft LoRA adapter named after it.

    Backbone weights are excluded, so full fine-tuning counts 0 here; use
    ``count_parameters(encoder, trainable_only=True)`` for what an optimizer updates.
    """
    encoder.check_task(task)
    own = encoder.task_modules[task].named_parameters(remove_duplicate=False)
    lora = (
        (name, param)
        for name, param in encoder.backbone.named_parameters()
        if _is_lora_of(name, task)
    )
    return count([*own, *lora], weights_only=weights_only)


def _is_lora_of(name: str, task: str) -> bool:
    """peft names LoRA weights ``...query.lora_A.<adapter>.weight``."""
    parts = name.split(".")
    return any(
        part.startswith("lora_") and parts[i + 1] == task for i, part in enumerate(parts[:-1])
    )
