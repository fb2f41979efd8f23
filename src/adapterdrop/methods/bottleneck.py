"""Bottleneck adapters (Houlsby et al. 2019; Pfeiffer et al. 2021) and their batched form.

The math matches AdapterHub's ``SeqBnConfig`` (Pfeiffer) and ``DoubleSeqBnConfig`` (Houlsby):

* Pfeiffer, FFN output site only: ``y = LN(x + r + U f(D LN(x + r)))`` with ``f = relu``.
* Houlsby, both sites: ``y = LN(x + r + U f(D x))`` with ``f = swish``.

``x`` is the sub-layer's projected output, ``r`` its residual input, ``LN`` the frozen
LayerNorm of that sub-layer (see ``adapterdrop.core.sites``). Same-shaped adapters of several
tasks run as one batched op through ``BottleneckAdapter.batched_delta``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from transformers.activations import get_activation

from adapterdrop.checks import is_number
from adapterdrop.core import Encoder, Method, Site, SiteBatch, SiteInputs, SiteModule
from adapterdrop.methods.registry import register

INITS = ("zero_up", "bert")


def bottleneck_size(hidden_size: int, reduction_factor: float) -> int:
    """Width of the bottleneck; refuse factors that leave nothing or exceed the hidden size."""
    if not is_number(reduction_factor) or reduction_factor <= 0:
        raise ValueError(f"reduction_factor must be > 0, got {reduction_factor!r}")
    size = int(hidden_size // reduction_factor)
    if not 1 <= size <= hidden_size:
        raise ValueError(
            f"reduction_factor {reduction_factor} gives a bottleneck of {size} for hidden size "
            f"{hidden_size}; choose a factor in [1, {hidden_size}]"
        )
    return size


class BottleneckAdapter(SiteModule):
    """Down-projection, non-linearity, up-projection; the term added before LayerNorm.

    ``reads_normed`` selects Pfeiffer's input ``LN(x + r)`` over Houlsby's ``x``.
    ``init="zero_up"`` zeroes the up-projection so a fresh adapter is exactly the identity;
    ``"bert"`` is AdapterHub's default (normal, std 0.02, zero biases).
    """

    def __init__(
        self,
        hidden_size: int,
        bottleneck: int,
        activation: str = "relu",
        reads_normed: bool = True,
        init: str = "zero_up",
    ) -> None:
        super().__init__()
        if init not in INITS:
            raise ValueError(f"unknown adapter init {init!r}; choose one of {INITS}")
        self.activation_name = activation
        self.activation = get_activation(activation)
        self.reads_normed = reads_normed
        self.down = nn.Linear(hidden_size, bottleneck)
        self.up = nn.Linear(bottleneck, hidden_size)
        for linear in (self.down, self.up):
            nn.init.normal_(linear.weight, std=0.02)
            nn.init.zeros_(linear.bias)
        if init == "zero_up":
            nn.init.zeros_(self.up.weight)

    def adapter_input(self, inputs: SiteInputs) -> torch.Tensor:
        return inputs.layer_norm(inputs.pre_norm) if self.reads_normed else inputs.projected

    def delta(self, inputs: SiteInputs) -> torch.Tensor:
        return self.up(self.activation(self.down(self.adapter_input(inputs))))

    def batch_signature(self) -> tuple:
        return (
            "bottleneck",
            self.down.in_features,
            self.down.out_features,
            self.activation_name,
            self.reads_normed,
        )

    @classmethod
    def batched_delta(
        cls, modules: Sequence[BottleneckAdapter], batch: SiteBatch, streams: Sequence[int]
    ) -> torch.Tensor:
        """All adapters' inputs in one op (they share how they read), then batched matmuls."""
        adapter_input = batch.per_stream(modules[0].adapter_input, streams)
        return batched_bottleneck_delta(list(modules), adapter_input)


def batched_bottleneck_delta(
    adapters: list[BottleneckAdapter], adapter_input: torch.Tensor
) -> torch.Tensor:
    """Apply N same-shaped adapters as batched matmuls instead of a Python loop.

    ``adapter_input`` is either one tensor ``(B, S, d)`` shared by all N adapters (the layer
    where the tasks branch off the shared stream: one wide matmul for all down-projections),
    or ``(N, B, S, d)`` with a stream per adapter. Returns ``(N, B, S, d)``.
    """
    n = len(adapters)
    first = adapters[0]
    down_w = torch.stack([a.down.weight for a in adapters])  # (N, m, d)
    down_b = torch.stack([a.down.bias for a in adapters])  # (N, m)
    up_w = torch.stack([a.up.weight for a in adapters])  # (N, d, m)
    up_b = torch.stack([a.up.bias for a in adapters])  # (N, d)
    m = down_w.shape[1]
    if adapter_input.dim() == 3:
        b, s, d = adapter_input.shape
        z = nn.functional.linear(adapter_input, down_w.reshape(n * m, d), down_b.reshape(n * m))
        z = z.reshape(b * s, n, m).transpose(0, 1)  # (N, B*S, m)
    else:
        _, b, s, d = adapter_input.shape
        z = torch.baddbmm(
            down_b.unsqueeze(1), adapter_input.reshape(n, b * s, d), down_w.transpose(1, 2)
        )
    z = first.activation(z)
    out = torch.baddbmm(up_b.unsqueeze(1), z, up_w.transpose(1, 2))  # (N, B*S, d)
    return out.reshape(n, b, s, d)


@register("pfeiffer", sites=("output",), activation="relu", reads_normed=True)
@register("houlsby", sites=("attention", "output"), activation="swish", reads_normed=False)
@dataclass
class BottleneckMethod(Method):
    """Bottleneck adapters at the given sites of every layer ``>= leave_out``.

    ``leave_out = n`` is specialized AdapterDrop: no adapter is ever built in layers ``< n``.
    ``shared`` is cross-layer parameter sharing: one adapter per site type serves all layers.
    """

    sites: tuple[str, ...]
    activation: str
    reads_normed: bool
    reduction_factor: float = 16
    init: str = "zero_up"
    leave_out: int = 0
    shared: bool = False

    def apply(self, encoder: Encoder, task: str) -> None:
        encoder.check_dropped(self.leave_out)
        width = bottleneck_size(encoder.hidden_size, self.reduction_factor)

        def make() -> BottleneckAdapter:
            return BottleneckAdapter(
                encoder.hidden_size, width, self.activation, self.reads_normed, self.init
            )

        shared = {site: make() for site in self.sites} if self.shared else {}
        placed = [
            (layer, Site[site.upper()], shared[site] if self.shared else make())
            for layer in range(self.leave_out, encoder.num_layers)
            for site in self.sites
        ]
        encoder.add_task(task, self)
        for layer, site, module in placed:
            encoder.add_module_at(task, layer, site, module)
