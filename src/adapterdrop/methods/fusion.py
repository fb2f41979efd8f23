"""AdapterFusion (Pfeiffer et al. 2021) over frozen Pfeiffer adapters: pruning, fusion-AdapterDrop
and an exact folded fast path.

Semantics are AdapterHub's ``Fuse`` over ``SeqBnConfig`` adapters with the "dynamic" fusion
config (``adapters`` 1.3, ``compose_fuse`` and ``BertFusion``). At the FFN output site, with
``x`` the projected FFN output and ``r`` the residual input, AdapterHub computes

* ``h = LN(x + r)``, the input of every fused adapter; ``up_k = U_k f(D_k h + c_k) + b_k`` is
  adapter k's ``bottleneck_up`` (its output *without* its residual);
* query ``q = Q h + bq`` (``Q x + bq`` with ``query_before_ln``);
* keys and values read ``kv_k = up_k``, or ``up_k + x`` with ``residual_before`` (one tensor
  is passed as both, and AdapterHub adds the residual to it in place);
* ``p = softmax(dropout(q . (K kv_k + bk)) / T)``, ``ctx = sum_k p_k V kv_k`` (V has no bias);
* output ``LN(ctx + x + r)``, or ``LN(ctx + r)`` with ``residual_before``.

So the term added before LayerNorm is ``delta = sum_k p_k V kv_k`` (minus ``x`` with
``residual_before``). A disabled query/key/value projection is the identity.

Fast path. Everything after ``f`` is linear in ``z_k = f(D_k h + c_k)`` (width ``r``), so the
``d x d`` maps fold into the ``d x r`` up-projections once per weight change:
``q . K U_k z_k = h^T (Q^T K U_k) z_k + (U_k^T K^T bq) . z_k`` and
``sum_k p_k V U_k z_k = [V U_1 .. V U_K] (p_k z_k)_k``. Cost per token and layer in
multiply-adds, for K adapters of width r and hidden size d:

* plain (AdapterHub): ``2Krd`` (adapters) + ``(2K + 1) d^2`` (query, K keys, K values);
* folded: ``Krd`` (batched down-projections) + ``(Kr + K) d`` (scores) + ``(Kr + K) d``
  (values), plus ``2 d^2`` only with ``residual_before``.

On bert-base (d=768, r=48) with K=8 that is about 10.6M vs 0.9M per token. The fold itself
costs about ``2Krd^2``; it is cached whenever no autograd graph is needed (eval, no_grad) and
recomputed in the graph when fusion weights train, so gradients are exact too.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from adapterdrop.methods.base import Site, SiteInputs, SiteModule, site_key
from adapterdrop.methods.bottleneck import BottleneckAdapter
from adapterdrop.methods.registry import register

if TYPE_CHECKING:
    from adapterdrop.engine import AdapterEncoder

TEMPERATURE_START = 50.0  # AdapterHub's annealed softmax temperature: T = 50 -> 1 ...
TEMPERATURE_STEP = TEMPERATURE_START / 1000.0  # ... by 0.05 per training forward
VALUE_REGULARIZATION = 0.01  # AdapterHub's weight on ||I - V||^2


class _Folded(NamedTuple):
    """Fusion weights folded into the fused adapters' bottlenecks (R = sum of widths)."""

    down_weight: torch.Tensor  # (R, d): all down-projections as one matmul
    down_bias: torch.Tensor  # (R,)
    key_weight: torch.Tensor  # (R + K, d): [Q^T K U_k]_k and [Q^T (K b_k + bk)]_k, transposed
    key_bias: torch.Tensor  # (R + K,): [U_k^T K^T bq]_k and [bq . (K b_k + bk)]_k
    value_weight: torch.Tensor  # (d, R + K): [V U_k]_k and [V b_k]_k
    segments: torch.Tensor  # (R, K): 1 where bottleneck unit j belongs to adapter k
    residual_weight: torch.Tensor | None  # (d, d): K^T Q, for q . K x with residual_before
    residual_bias: torch.Tensor | None  # (d,): K^T bq


def _left(linear: nn.Linear | None, matrix: torch.Tensor) -> torch.Tensor:
    """``W @ matrix`` for a projection, ``matrix`` when it is disabled (the identity)."""
    return matrix if linear is None else linear.weight @ matrix


def _left_t(linear: nn.Linear | None, matrix: torch.Tensor) -> torch.Tensor:
    """``W^T @ matrix``, or ``matrix`` for a disabled projection."""
    return matrix if linear is None else linear.weight.T @ matrix


def _bias(linear: nn.Linear | None, like: torch.Tensor) -> torch.Tensor:
    if linear is None or linear.bias is None:
        return like.new_zeros(like.shape[0])
    return linear.bias


def _project(linear: nn.Linear | None, tensor: torch.Tensor) -> torch.Tensor:
    return tensor if linear is None else linear(tensor)


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
        self._cache: tuple[tuple, _Folded] | None = None

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
        query = _project(self.query, query_input)
        scores = torch.einsum("bsd,bskd->bsk", query, _project(self.key, kv))
        probs = self._probs(scores)
        if self.value_before_softmax:
            context = torch.einsum("bsk,bskd->bsd", probs, _project(self.value, kv))
        else:
            context = _project(self.value, torch.einsum("bsk,bskd->bsd", probs, kv))
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
            context = context + _project(self.value, projected) - projected
        return context

    # ---------------------------------------------------------------------- fold
    def _fold_inputs(self) -> list[torch.Tensor]:
        tensors = [t for a in self._adapters for t in (*a.down.parameters(), *a.up.parameters())]
        return tensors + [p for p in self.parameters()]

    def _fold(self) -> _Folded:
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

    def _compute_fold(self) -> _Folded:
        adapters = self._adapters
        up_weight = torch.cat([a.up.weight for a in adapters], dim=1)  # (d, R)
        up_bias = torch.stack([a.up.bias for a in adapters], dim=1)  # (d, K)
        key_up = _left(self.key, up_weight)  # K U_k
        key_const = _left(self.key, up_bias) + _bias(self.key, up_bias)[:, None]  # K b_k + bk
        query_bias = _bias(self.query, up_bias)
        eye = torch.eye(len(adapters), dtype=up_weight.dtype, device=up_weight.device)
        residual_weight = residual_bias = None
        if self.residual_before:
            query_weight = (
                torch.eye(up_weight.shape[0], dtype=up_weight.dtype, device=eye.device)
                if self.query is None
                else self.query.weight
            )
            residual_weight = _left_t(self.key, query_weight)
            residual_bias = _left_t(self.key, query_bias)
        return _Folded(
            down_weight=torch.cat([a.down.weight for a in adapters]),
            down_bias=torch.cat([a.down.bias for a in adapters]),
            key_weight=torch.cat(
                [_left_t(self.query, key_up), _left_t(self.query, key_const)], dim=1
            ).T,
            key_bias=torch.cat([key_up.T @ query_bias, query_bias @ key_const]),
            value_weight=torch.cat([_left(self.value, up_weight), _left(self.value, up_bias)], 1),
            segments=_segments(eye, [a.down.out_features for a in adapters]),
            residual_weight=residual_weight,
            residual_bias=residual_bias,
        )


def _segments(eye: torch.Tensor, widths: list[int]) -> torch.Tensor:
    """``(R, K)``: row ``j`` is ``eye[k]`` for each bottleneck unit ``j`` of adapter ``k``.

    ``eye.repeat_interleave(widths, dim=0)`` from Python ints: a tensor of widths would be
    made on the host and copied over, and tensor repeats make the host wait for the device
    to learn the output size, in every layer of every training forward.
    """
    return torch.cat([eye[k : k + 1].expand(width, -1) for k, width in enumerate(widths)])


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


# ------------------------------------------------------------------ encoder level
def fusion_layers(encoder: AdapterEncoder, task: str) -> dict[int, FusionLayer]:
    """``{layer: FusionLayer}`` of ``task``, lowest layer first."""
    modules = encoder.task_modules[encoder.check_task(task)]
    found = {
        int(key.split("_", 1)[0]): module
        for key, module in modules.items()
        if isinstance(module, FusionLayer)
    }
    if not found:
        raise ValueError(f"task {task!r} has no AdapterFusion layers")
    return dict(sorted(found.items()))


def drop_fusion_layers(encoder: AdapterEncoder, task: str, below: int) -> None:
    """Remove ``task``'s fusion layers ``< below`` (static AdapterDrop for fusion).

    The top layer always stays: ``below`` must be a valid drop depth of the encoder.
    """
    encoder.check_dropped(below)
    layers = fusion_layers(encoder, task)
    for layer in layers:
        if layer < below:
            del encoder.task_modules[task][site_key(layer, Site.OUTPUT)]


def prune_fusion(encoder: AdapterEncoder, task: str, keep: Mapping[int, Sequence[str]]) -> None:
    """Fuse only ``keep[layer]`` in each listed layer, reusing the trained fusion weights."""
    layers = fusion_layers(encoder, task)
    missing = sorted(set(keep) - set(layers))
    if missing:
        raise ValueError(f"task {task!r} has no fusion at layers {missing}; it has {list(layers)}")
    for layer, names in keep.items():
        layers[layer].prune(names)


def fusion_regularization_loss(encoder: AdapterEncoder, task: str) -> torch.Tensor:
    """Sum of AdapterHub's value regularizer over ``task``'s fusion layers (add it to the loss)."""
    return torch.stack(
        [layer.regularization_loss() for layer in fusion_layers(encoder, task).values()]
    ).sum()


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
def record_fusion_activations(encoder: AdapterEncoder, task: str) -> Iterator[FusionRecorder]:
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


# ------------------------------------------------------------------------ method
@register("fusion")
@dataclass
class FusionMethod:
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

    def apply(self, encoder: AdapterEncoder, task: str) -> None:
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
        for layer, adapters in per_layer.items():
            for adapter in adapters:
                adapter.requires_grad_(False)
            fusion = FusionLayer(
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
            encoder.add_module_at(task, layer, Site.OUTPUT, fusion)

    def _check_names(self, encoder: AdapterEncoder, task: str) -> list[str]:
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

    def _adapter_at(self, encoder: AdapterEncoder, name: str, layer: int) -> BottleneckAdapter:
        key = site_key(layer, Site.OUTPUT)
        modules = dict(encoder.task_modules[name])
        module = modules.get(key)
        if not isinstance(module, BottleneckAdapter) or not module.reads_normed:
            raise ValueError(
                f"task {name!r} has no Pfeiffer adapter (a BottleneckAdapter reading LN(x + r)) "
                f"at layer {layer}; its modules sit at {sorted(modules)}. Fuse Pfeiffer adapters, "
                f"with leave_out >= their own leave_out"
            )
        return module
