"""One layer's AdapterFusion (``FusionLayer``, plain and folded) and a task's fusion layers."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from adapterdrop.core import Encoder, SiteInputs, SiteModule
from adapterdrop.methods.bottleneck import BottleneckAdapter
from adapterdrop.methods.fusion.fold import Folded, fold, project

TEMPERATURE_START = 50.0  # AdapterHub's annealed softmax temperature: T = 50 -> 1 ...
TEMPERATURE_STEP = TEMPERATURE_START / 1000.0  # ... by 0.05 per training forward
VALUE_REGULARIZATION = 0.01  # AdapterHub's weight on ||I - V||^2


class FusionLayer(SiteModule):
    """One layer's AdapterFusion for a target task, at the FFN output site.

    It *references* the fused tasks' adapters (kept in a plain list, so their weights stay in
    their own tasks' state and are neither copied nor trained here). The query/key/value
    projections are this task's parameters, named as in AdapterHub's ``BertFusion``.
    """

    def __init__(
        self,
        hidden_size: int,
        names: Sequence[str],
        adapters: Sequence[BottleneckAdapter],
        *,
        dropout: float,
        fast_path: bool = True,
        query: bool = True,
        key: bool = True,
        value: bool = True,
        query_before_ln: bool = False,
        residual_before: bool = False,
        temperature: bool = False,
        value_before_softmax: bool = True,
        value_initialized: bool = True,
    ) -> None:
        super().__init__()
        _check_fusable(hidden_size, names, adapters)
        self._names = list(names)
        self._adapters = list(adapters)
        self.fast_path = fast_path
        self.query_before_ln = query_before_ln
        self.residual_before = residual_before
        self.value_before_softmax = value_before_softmax
        self.dropout = nn.Dropout(dropout)
        self.temperature = TEMPERATURE_START if temperature else 1.0
        self.query = self._linear(hidden_size, bias=True) if query else None
        self.key = self._linear(hidden_size, bias=True) if key else None
        self.value = self._linear(hidden_size, bias=False) if value else None
        if self.value is not None and value_initialized:
            with torch.no_grad():  # AdapterHub: identity plus 1e-6 off the diagonal
                self.value.weight.fill_(1e-6).fill_diagonal_(1.0)
        self.observer: Callable[[torch.Tensor], None] | None = None
        self._cache: tuple[tuple, Folded] | None = None

    @staticmethod
    def _linear(size: int, bias: bool) -> nn.Linear:
        linear = nn.Linear(size, size, bias=bias)
        nn.init.normal_(linear.weight, std=0.02)
        if bias:
            nn.init.zeros_(linear.bias)
        return linear

    @property
    def names(self) -> list[str]:
        """Fused tasks in this layer, in fusion order."""
        return list(self._names)

    @property
    def adapters(self) -> list[BottleneckAdapter]:
        return list(self._adapters)

    def prune(self, keep: Sequence[str]) -> None:
        """Fuse only ``keep`` from now on; the query/key/value weights are reused as trained.

        BertFusion has no per-adapter parameters (one query, key and value map serves all),
        so pruning only shrinks the set of keys and values the softmax runs over.
        """
        unknown = [name for name in keep if name not in self._names]
        if unknown or not keep or len(set(keep)) != len(keep):
            raise ValueError(
                f"cannot keep {list(keep)}: choose a non-empty distinct subset of {self._names}"
            )
        pairs = [(n, a) for n, a in zip(self._names, self._adapters, strict=True) if n in keep]
        self._names = [n for n, _ in pairs]
        self._adapters = [a for _, a in pairs]
        self._cache = None

    def regularization_loss(self) -> torch.Tensor:
        """AdapterHub's ``0.01 * ||I - V||^2``, keeping the value map near the identity."""
        if self.value is None:
            return self._adapters[0].down.weight.new_zeros(())
        weight = self.value.weight
        eye = torch.eye(weight.shape[0], dtype=weight.dtype, device=weight.device)
        return VALUE_REGULARIZATION * (eye - weight).pow(2).sum()

    # ------------------------------------------------------------------- forward
    def delta(self, inputs: SiteInputs) -> torch.Tensor:
        if inputs.intermediate is None:
            raise ValueError("AdapterFusion fuses Pfeiffer adapters: it only works at Site.OUTPUT")
        normed = self._adapters[0].adapter_input(inputs)
        query_input = inputs.projected if self.query_before_ln else normed
        if self.fast_path:
            return self._folded_delta(normed, query_input, inputs.projected)
        return self._plain_delta(normed, query_input, inputs.projected)

    def _probs(self, scores: torch.Tensor) -> torch.Tensor:
        """AdapterHub's dropout on the scores, then softmax at the annealed temperature."""
        probs = torch.softmax(self.dropout(scores) / self.temperature, dim=-1)
        if self.training:
            self.temperature = max(self.temperature - TEMPERATURE_STEP, 1.0)
        if self.observer is not None:
            self.observer(probs.detach())
        return probs

    def _plain_delta(
        self, normed: torch.Tensor, query_input: torch.Tensor, projected: torch.Tensor
    ) -> torch.Tensor:
        """AdapterHub's computation: full ``d x d`` key and value maps on every adapter output."""
        ups = torch.stack([a.up(a.activation(a.down(normed))) for a in self._adapters], dim=2)
        kv = ups + projected.unsqueeze(2) if self.residual_before else ups
        query = project(self.query, query_input)
        scores = torch.einsum("bsd,bskd->bsk", query, project(self.key, kv))
        probs = self._probs(scores)
        if self.value_before_softmax:
            context = torch.einsum("bsk,bskd->bsd", probs, project(self.value, kv))
        else:
            context = project(self.value, torch.einsum("bsk,bskd->bsd", probs, kv))
        return context - projected if self.residual_before else context

    def _folded_delta(
        self, normed: torch.Tensor, query_input: torch.Tensor, projected: torch.Tensor
    ) -> torch.Tensor:
        """Same result through the folded weights: no per-adapter ``d x d`` products."""
        fold = self._fold()
        width = fold.down_weight.shape[0]
        z = self._adapters[0].activation(F.linear(normed, fold.down_weight, fold.down_bias))
        keyed = F.linear(query_input, fold.key_weight, fold.key_bias)  # (B, S, R + K)
        scores = (keyed[..., :width] * z) @ fold.segments + keyed[..., width:]
        if fold.residual_weight is not None:  # q . K x: the same for every adapter
            shared = F.linear(query_input, fold.residual_weight, fold.residual_bias)
            scores = scores + (shared * projected).sum(-1, keepdim=True)
        probs = self._probs(scores)
        weighted = torch.cat([(probs @ fold.segments.T) * z, probs], dim=-1)
        context = F.linear(weighted, fold.value_weight)
        if self.residual_before:  # sum_k p_k V x = V x, and LN reads ctx + r
            context = context + project(self.value, projected) - projected
        return context

    # ---------------------------------------------------------------------- fold
    def _fold_inputs(self) -> list[torch.Tensor]:
        tensors = [t for a in self._adapters for t in (*a.down.parameters(), *a.up.parameters())]
        return tensors + [p for p in self.parameters()]

    def _fold(self) -> Folded:
        """The folded weights; cached (keyed on parameter versions) unless autograd needs them."""
        tensors = self._fold_inputs()
        if torch.is_grad_enabled() and any(t.requires_grad for t in tensors):
            return self._compute_fold()
        key = (tuple(self._names), tuple((id(t), t._version, t.data_ptr()) for t in tensors))
        if self._cache is None or self._cache[0] != key:
            # Folded in the weights' own precision: a cache built under a caller's autocast
            # would otherwise be low precision and break a later fp32 call.
            device_type = tensors[0].device.type
            no_autocast = (
                torch.autocast(device_type, enabled=False)
                if torch.amp.is_autocast_available(device_type)
                else contextlib.nullcontext()  # e.g. "meta", where there is no autocast
            )
            with torch.inference_mode(False), torch.no_grad(), no_autocast:
                self._cache = (key, self._compute_fold())
        return self._cache[1]

    def _compute_fold(self) -> Folded:
        return fold(self._adapters, self.query, self.key, self.value, self.residual_before)


def _check_fusable(
    hidden_size: int, names: Sequence[str], adapters: Sequence[BottleneckAdapter]
) -> None:
    if not names or len(names) != len(adapters) or len(set(names)) != len(names):
        raise ValueError(
            f"fusion needs one adapter per distinct name; got names {list(names)} for "
            f"{len(adapters)} adapters"
        )
    for name, adapter in zip(names, adapters, strict=True):
        if not isinstance(adapter, BottleneckAdapter) or not adapter.reads_normed:
            raise ValueError(
                f"task {name!r}: AdapterFusion fuses Pfeiffer adapters (reading LN(x + r) at the "
                f"FFN output), got {type(adapter).__name__}"
            )
        if adapter.down.in_features != hidden_size:
            raise ValueError(
                f"task {name!r}: adapter reads size {adapter.down.in_features}, the encoder has "
                f"hidden size {hidden_size}"
            )
    activations = {a.activation_name for a in adapters}
    if len(activations) != 1:
        raise ValueError(f"fused adapters must share one activation, got {sorted(activations)}")


def fusion_layers(encoder: Encoder, task: str) -> dict[int, FusionLayer]:
    """``{layer: FusionLayer}`` of ``task``, lowest layer first."""
    found = {
        key.layer: module
        for key, module in encoder.modules_of(task).items()
        if isinstance(module, FusionLayer)
    }
    if not found:
        raise ValueError(f"task {task!r} has no AdapterFusion layers")
    return dict(sorted(found.items()))


def fusion_regularization_loss(encoder: Encoder, task: str) -> torch.Tensor:
    """Sum of AdapterHub's value regularizer over ``task``'s fusion layers (add it to the loss)."""
    return torch.stack(
        [layer.regularization_loss() for layer in fusion_layers(encoder, task).values()]
    ).sum()
