"""Full fine-tuning: every backbone weight trains; the reference point of the papers.

It adds no module at a site, but the engine only runs tasks it knows, so the task is
registered with no modules. It changes the shared backbone, so it is single-task here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from adapterdrop.core import Encoder, Method
from adapterdrop.methods.registry import register


@register("full")
@dataclass
class FullFineTuning(Method):
    """Train every backbone weight; the task has no modules of its own."""

    changes_backbone: ClassVar[bool] = True
    trains_backbone: ClassVar[bool] = True

    def apply(self, encoder: Encoder, task: str) -> None:
        encoder.add_task(task, self)
        encoder.backbone.requires_grad_(True)
