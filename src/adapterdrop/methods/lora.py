"""LoRA (Hu et al. 2022), injected by peft into the backbone's linear layers.

It adds no module at a site, but the engine only runs tasks it knows, so the task is
registered with no modules. LoRA weights are held by peft inside the attention projections
(named after the task, not keyed per task in the engine), so a backbone carries at most one
LoRA task, and the task's weights are found by name (``backbone_parameters``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

import peft
from peft.tuners.lora import LoraLayer
from torch import nn

from adapterdrop.core import Encoder, Method
from adapterdrop.methods.registry import register


@register("lora")
@dataclass
class LoraMethod(Method):
    """LoRA on the named linear layers of every encoder layer, injected in place by peft.

    The engine calls the backbone's own sub-modules (``layer.attention.self`` calls ``query``
    and ``value``), so the injected layers run inside our layer loop. Everything else in the
    backbone is frozen.
    """

    r: int = 8
    lora_alpha: float = 16
    lora_dropout: float = 0.1
    target_modules: tuple[str, ...] = ("query", "value")

    changes_backbone: ClassVar[bool] = True

    def apply(self, encoder: Encoder, task: str) -> None:
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
        encoder.add_task(task, self)
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

    def backbone_parameters(
        self, backbone: nn.Module, task: str
    ) -> Iterator[tuple[str, nn.Parameter]]:
        """peft's weights of adapter ``task``, named ``...query.lora_A.<task>.weight``."""
        for name, param in backbone.named_parameters():
            parts = name.split(".")
            if any(
                part.startswith("lora_") and parts[i + 1] == task
                for i, part in enumerate(parts[:-1])
            ):
                yield name, param


def lora_adapter_names(model: nn.Module) -> list[str]:
    """Names of the peft LoRA adapters injected into ``model``."""
    names = {name for m in model.modules() if isinstance(m, LoraLayer) for name in m.lora_A}
    return sorted(names)
