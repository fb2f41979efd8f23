"""AdapterBias (Fu et al. 2022): a token-dependent shift of the FFN output, ``alpha_i * v``.

Per layer, ``v`` is one hidden-size vector and ``alpha_i = L_alpha(h_i)`` a scalar per token,
read from the token's FFN intermediate activation ``h_i``. The term is added after the FFN's
second linear and dropout, before the residual LayerNorm, so it sits at ``Site.OUTPUT``.
On bert-base that is 12 x (768 + 3072 + 1) = 46,092 parameters. The AdapterBias authors also
train the LayerNorms (``train_layer_norms``): each layer's FFN-output LayerNorm and the
embeddings' one, 13 x 2 x 768 more, 66,060 in all.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

from adapterdrop.core import Encoder, Method, Site, SiteInputs, SiteModule
from adapterdrop.core.sublayers import site_norm
from adapterdrop.methods.registry import register


class AdapterBias(SiteModule):
    """``delta = alpha(intermediate) * vector``; ``vector`` starts at zero so a fresh module
    leaves the frozen model's output unchanged. ``alpha`` may be shared between layers."""

    def __init__(self, hidden_size: int, intermediate_size: int, alpha: nn.Linear | None = None):
        super().__init__()
        self.vector = nn.Parameter(torch.zeros(hidden_size))
        self.alpha = alpha if alpha is not None else nn.Linear(intermediate_size, 1)
        if self.alpha.in_features != intermediate_size or self.alpha.out_features != 1:
            raise ValueError(
                f"alpha must map {intermediate_size} -> 1, got "
                f"{self.alpha.in_features} -> {self.alpha.out_features}"
            )

    def delta(self, inputs: SiteInputs) -> torch.Tensor:
        if inputs.intermediate is None:
            raise ValueError("AdapterBias reads the FFN activation: it only works at Site.OUTPUT")
        return self.alpha(inputs.intermediate) * self.vector


@register("adapterbias")
@dataclass
class AdapterBiasMethod(Method):
    """AdapterBias in every layer ``>= leave_out`` (specialized AdapterDrop below it).

    ``share_alpha`` uses one ``alpha`` map for all layers; each layer keeps its own ``v``.
    ``train_layer_norms`` also trains the FFN-output LayerNorm of those layers, and the
    embeddings' LayerNorm when no layer is left out: backbone weights, so the task then needs
    a backbone of its own (``changes_backbone``), as LoRA's does.
    """

    share_alpha: bool = False
    leave_out: int = 0
    train_layer_norms: bool = False

    @property
    def changes_backbone(self) -> bool:  # type: ignore[override]
        return self.train_layer_norms

    def apply(self, encoder: Encoder, task: str) -> None:
        encoder.check_dropped(self.leave_out)
        config = encoder.backbone.config
        shared = nn.Linear(config.intermediate_size, 1) if self.share_alpha else None
        encoder.add_task(task, self)
        for layer in range(self.leave_out, encoder.num_layers):
            module = AdapterBias(config.hidden_size, config.intermediate_size, shared)
            encoder.add_module_at(task, layer, Site.OUTPUT, module)
        for _, param in self.backbone_parameters(encoder.backbone, task):
            param.requires_grad_(True)

    def backbone_parameters(
        self, backbone: nn.Module, task: str
    ) -> Iterator[tuple[str, nn.Parameter]]:
        """The LayerNorm weights ``train_layer_norms`` trains (none without it)."""
        if not self.train_layer_norms:
            return
        norms = {
            f"encoder.layer.{i}.output.LayerNorm": site_norm(layer, Site.OUTPUT)
            for i, layer in enumerate(backbone.encoder.layer)
            if i >= self.leave_out
        }
        if self.leave_out == 0:
            norms = {"embeddings.LayerNorm": backbone.embeddings.LayerNorm, **norms}
        for prefix, norm in norms.items():
            yield from norm.named_parameters(prefix=prefix)
