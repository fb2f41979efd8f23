"""``FusionMethod``: the registered ``fusion`` method, a ``FusionLayer`` per layer of a task."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from adapterdrop.core import Encoder, Method, Site, SiteKey
from adapterdrop.methods.bottleneck import BottleneckAdapter
from adapterdrop.methods.fusion.layer import FusionLayer
from adapterdrop.methods.registry import register


@register("fusion")
@dataclass
class FusionMethod(Method):
    """AdapterFusion of the ``adapters`` tasks' Pfeiffer adapters in every layer ``>= leave_out``.

    The fused tasks must already be in the encoder; their adapters are frozen, only the fusion
    weights train. ``leave_out = n`` is AdapterDrop for fusion (no fusion in layers ``< n``).
    The remaining fields are AdapterHub's fusion options ("dynamic" defaults); ``dropout``
    ``None`` takes the backbone's attention dropout as AdapterHub does. Training adds
    ``fusion_regularization_loss`` when ``value`` is on.
    """

    adapters: list[str] = field(default_factory=list)
    leave_out: int = 0
    fast_path: bool = True
    query: bool = True
    key: bool = True
    value: bool = True
    query_before_ln: bool = False
    residual_before: bool = False
    temperature: bool = False
    value_before_softmax: bool = True
    value_initialized: bool = True
    dropout: float | None = None

    fuses_tasks: ClassVar[bool] = True

    def apply(self, encoder: Encoder, task: str) -> None:
        names = self._check_names(encoder, task)
        encoder.check_dropped(self.leave_out)
        config = encoder.backbone.config
        dropout = self.dropout
        if dropout is None:
            dropout = getattr(config, "attention_probs_dropout_prob", 0.0)
        per_layer = {
            layer: [self._adapter_at(encoder, name, layer) for name in names]
            for layer in range(self.leave_out, encoder.num_layers)
        }
        fusions = {}
        for layer, adapters in per_layer.items():
            for adapter in adapters:
                adapter.requires_grad_(False)
            fusions[layer] = fusion = FusionLayer(
                encoder.hidden_size,
                names,
                adapters,
                dropout=dropout,
                fast_path=self.fast_path,
                query=self.query,
                key=self.key,
                value=self.value,
                query_before_ln=self.query_before_ln,
                residual_before=self.residual_before,
                temperature=self.temperature,
                value_before_softmax=self.value_before_softmax,
                value_initialized=self.value_initialized,
            )
            fusion.train(encoder.training)  # as the rest of the encoder, like AdapterHub
        encoder.add_task(task, self)
        for layer, fusion in fusions.items():
            encoder.add_module_at(task, layer, Site.OUTPUT, fusion)

    def _check_names(self, encoder: Encoder, task: str) -> list[str]:
        if isinstance(self.adapters, str):
            raise ValueError(
                f"adapters must be a list of task names, got the string {self.adapters!r}"
            )
        names = list(self.adapters)
        candidates = [t for t in encoder.tasks if t != task]
        unknown = [n for n in names if n not in candidates]
        if not names or unknown or len(set(names)) != len(names):
            raise ValueError(
                f"fusion of {task!r} needs distinct adapters from the model's other tasks "
                f"{candidates}; got {names}"
            )
        return names

    def _adapter_at(self, encoder: Encoder, name: str, layer: int) -> BottleneckAdapter:
        modules = encoder.modules_of(name)
        module = modules.get(SiteKey(layer, Site.OUTPUT))
        if not isinstance(module, BottleneckAdapter) or not module.reads_normed:
            placed = [str(key) for key in sorted(modules)]
            raise ValueError(
                f"task {name!r} has no Pfeiffer adapter (a BottleneckAdapter reading LN(x + r)) "
                f"at layer {layer}; its modules sit at {placed}. Fuse Pfeiffer adapters, "
                f"with leave_out >= their own leave_out"
            )
        return module
