"""Reference points without site modules: full fine-tuning and LoRA (Hu et al. 2022).

Neither adds a module at a site, but the engine only runs tasks it knows, so both register the
task with an empty module dict. Both train weights inside the shared backbone, so they are
single-task here: full fine-tuning changes every task's encoder, and LoRA weights are held by
peft inside the attention projections (named after the task, not keyed per task in the
engine), so a backbone carries at most one LoRA task.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import peft
from peft.tuners.lora import LoraLayer
from torch import nn

from adapterdrop.methods.registry import register

if TYPE_CHECKING:
    from adapterdrop.engine import AdapterEncoder


@register("full")
@dataclass
class FullFineTuning:
    """Train every backbone weight; the task has no modules of its own."""

    def apply(self, encoder: AdapterEncoder, task: str) -> None:
        encoder.add_task(task)
        encoder.backbone.requires_grad_(True)


@register("lora")
@dataclass
class LoraMethod:
    """LoRA on the named linear layers of every encoder layer, injected in place by peft.

    The engine calls the backbone's own sub-modules (``layer.attention.self`` calls ``query``
    and ``value``), so the injected layers run inside our layer loop. Everything else in the
    backbone is frozen.
    """

    r: int = 8
    lora_alpha: float = 16
    lora_dropout: float = 0.1
    target_modules: tuple[str, ...] = ("query", "value")

    def apply(self, encoder: AdapterEncoder, task: str) -> None:
        if self.r < 1:
            raise ValueError(f"LoRA rank r must be >= 1, got {self.r}")
        if not self.target_modules:
            raise ValueError("LoRA needs at least one target module, e.g. ['query', 'value']")
        existing = lora_adapter_names(encoder.backbone)
        if existing:
            raise ValueError(
                f"cannot add LoRA task {task!r}: the backbone already holds LoRA adapter(s) "
                f"{existing}, and LoRA is single-task here"
            )
        encoder.add_task(task)
        config = peft.LoraConfig(
            r=self.r,
            lora_alpha=self.lora_alpha,
            lora_dropout=self.lora_dropout,
            target_modules=list(self.target_modules),
        )
        encoder.backbone.requires_grad_(False)
        peft.inject_adapter_in_model(config, encoder.backbone, adapter_name=task)
        # peft builds its layers in training mode; match the backbone's mode (eval: no dropout).
        encoder.backbone.train(encoder.backbone.training)


def lora_adapter_names(model: nn.Module) -> list[str]:
    """Names of the peft LoRA adapters injected into ``model``."""
    names = {name for m in model.modules() if isinstance(m, LoraLayer) for name in m.lora_A}
    return sorted(names)
