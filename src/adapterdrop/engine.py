"""The layer loop that every method runs in: one encoder, many named tasks, late replication.

We drive the HF encoder's layers ourselves (calling their own sub-modules, so the weights and
attention kernels are HF's) because two things AdapterDrop is about need the loop:

* where a batch is replicated for T tasks: inputs run as one shared *stream* until the first
  site where some task has an adapter; there the shared sub-layer output is computed once and
  only the adapter terms fan out, one stream per task (mixed drop depths branch at different
  layers, each as late as possible);
* where autograd starts: with a frozen backbone, layers below the lowest active adapter run
  under ``no_grad``, so they store no activations and take no backward.

Task modules are kept per task and site (``modules_of(task)``: ``SiteKey -> module``, stored
peft-style in an ``nn.ModuleDict`` keyed by ``str(key)``) so several tasks live in one model; a
module object may sit at several keys (cross-layer sharing).

The engine imports the core only (``adapterdrop.core``): it runs ``SiteModule`` terms (batched
through a module type's own ``batched_delta`` hook where signatures agree) and ``LayerModule``
whole layers, and knows no method.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from transformers import PreTrainedModel

from adapterdrop.core import (
    LayerModule,
    Method,
    Site,
    SiteInputs,
    SiteKey,
    SiteModule,
    attention_sublayer,
    ffn_sublayer,
    site_norm,
)


def encoder_mask(
    attention_mask: torch.Tensor | None, dtype: torch.dtype, attn_implementation: str
) -> torch.Tensor | None:
    """Broadcastable ``(B, 1, 1, S)`` mask in the form the attention kernel takes, built on the
    mask's own device.

    ``None`` for ``attention_mask=None`` (unpadded input: SDPA's fastest path). A mask is
    always built from a given one, with one exception: a CPU mask with no padding also gives
    ``None``. Reading whether any token is padded is free on CPU (no device to wait for) and
    keeps CPU SDPA on its unmasked kernel; on an accelerator it would make every forward wait
    for the device, so there the all-ones mask is passed on (same outputs, as every key is
    kept, though SDPA may pick a masked kernel). Speed runs pass ``None`` when unpadded.
    """
    if attention_mask is None:
        return None
    if attention_mask.device.type == "cpu" and bool(attention_mask.all()):
        return None
    keep = attention_mask[:, None, None, :].bool()
    if attn_implementation == "sdpa":
        return keep
    return (~keep).to(dtype) * torch.finfo(dtype).min


def _add_term(pre: torch.Tensor, term: torch.Tensor) -> torch.Tensor:
    """``pre + term``; in place when no graph is recorded, as ``pre`` is a fresh sum no one
    reads again. Writing into the buffer just read keeps it in cache for the LayerNorm that
    follows: at batch 8 x 128 in bf16 that made Houlsby inference about 2 % faster (two
    interleaved A/B runs: 1.019 and 1.07 old/new), with bit-identical outputs."""
    return pre + term if torch.is_grad_enabled() else pre.add_(term)


@dataclass
class _Streams:
    """Hidden states of the live streams stacked on the batch axis: ``(G * B, S, d)``.

    ``labels[g]`` is ``None`` for the shared stream (tasks that have not branched yet) or the
    task that owns stream ``g``.
    """

    hidden: torch.Tensor
    labels: list[str | None]
    batch: int

    def slice(self, tensor: torch.Tensor, index: int) -> torch.Tensor:
        return tensor[index * self.batch : (index + 1) * self.batch]


class _DeviceIndex:
    """Index tensors made on the device they index, once per (device, positions).

    A Python list as an index (``t[[1, 2]]``) or a host ``torch.arange`` moved over would be
    built on the host and copied to the device in every layer, a copy the host waits for.
    These are built from ``arange`` runs on the device itself and reused by later layers and
    passes (a pass needs a handful: one per set of streams that own a site).
    """

    LIMIT = 256  # distinct index sets kept; more only arise from unusual task mixes

    def __init__(self) -> None:
        self._cache: dict[tuple[torch.device, tuple[int, ...]], torch.Tensor] = {}

    def __call__(self, positions: list[int], device: torch.device) -> torch.Tensor:
        key = (device, tuple(positions))
        index = self._cache.get(key)
        if index is None:
            if len(self._cache) >= self.LIMIT:
                self._cache.clear()
            runs: list[list[int]] = []
            for p in positions:
                if runs and p == runs[-1][1]:
                    runs[-1][1] += 1
                else:
                    runs.append([p, p + 1])
            # A normal tensor even when first built under inference_mode, so a later training
            # pass may save it for backward (index_add does).
            with torch.inference_mode(False):
                parts = [torch.arange(a, b, device=device) for a, b in runs]
                index = parts[0] if len(parts) == 1 else torch.cat(parts)
            self._cache[key] = index
        return index

    def rows(self, streams: list[int], batch: int, device: torch.device) -> torch.Tensor:
        """Rows of ``streams`` in a ``(G * B, ...)`` stack of streams of ``batch`` rows."""
        return self([r for g in streams for r in range(g * batch, (g + 1) * batch)], device)


class _SiteView:
    """One site's tensors for all streams (a ``core.SiteBatch``): one stream or all at once."""

    def __init__(
        self,
        streams: _Streams,
        projected: torch.Tensor,
        intermediate: torch.Tensor | None,
        norm: nn.LayerNorm,
        device_index: _DeviceIndex,
    ) -> None:
        self.streams = streams
        self.device_index = device_index
        self.all = SiteInputs(projected, streams.hidden, norm, intermediate)
        self.norm = norm
        self.pre_norm = self.all.pre_norm

    def inputs(self, index: int) -> SiteInputs:
        if len(self.streams.labels) == 1:  # one stream (one task): nothing to cut
            return self.all
        cut = self.streams.slice
        return SiteInputs(
            projected=cut(self.all.projected, index),
            residual=cut(self.all.residual, index),
            layer_norm=self.norm,
            intermediate=None
            if self.all.intermediate is None
            else cut(self.all.intermediate, index),
            pre_norm=cut(self.pre_norm, index),
        )

    def per_stream(
        self, read: Callable[[SiteInputs], torch.Tensor], streams: Sequence[int]
    ) -> torch.Tensor:
        """``(B, S, ...)`` when all read one stream, else ``(N, B, S, ...)``, computed in one op."""
        if len(set(streams)) == 1:
            return read(self.inputs(streams[0]))
        count = len(self.streams.labels)
        full = read(self.all).unflatten(0, (count, self.streams.batch))
        if list(streams) == list(range(count)):
            return full
        return full.index_select(0, self.device_index(list(streams), full.device))


class AdapterEncoder(nn.Module):
    """A HF BERT/RoBERTa encoder whose layer loop runs named task modules."""

    def __init__(self, backbone: PreTrainedModel) -> None:
        super().__init__()
        self.backbone = backbone
        self.task_modules = nn.ModuleDict()  # storage: use modules_of / add_module_at
        self._methods: dict[str, Method | None] = {}
        self._mask_cache: dict[int, torch.Tensor | None] = {}
        self._device_index = _DeviceIndex()

    # ----------------------------------------------------------------- structure
    @property
    def layers(self) -> nn.ModuleList:
        return self.backbone.encoder.layer

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    @property
    def hidden_size(self) -> int:
        return self.backbone.config.hidden_size

    @property
    def tasks(self) -> list[str]:
        return list(self.task_modules.keys())

    def add_task(self, task: str, method: Method | None = None) -> None:
        """A task with no site module yet; ``method`` is what builds it (``None``: modules added
        by hand). Full fine-tuning and LoRA add no site module: they change the backbone."""
        if task in self.task_modules:
            raise ValueError(f"task {task!r} already exists; this model has tasks {self.tasks}")
        self.task_modules[task] = nn.ModuleDict()
        self._methods[task] = method

    def add_module_at(self, task: str, layer: int, site: Site, module: nn.Module) -> None:
        """Register ``module`` for ``task`` at ``site`` of ``layer`` (``Site.LAYER``: all of it)."""
        self.check_layer(layer)
        key = SiteKey(layer, Site(site))
        if task not in self.task_modules:
            self.add_task(task)
        self.task_modules[task][str(key)] = module.train(self.training)

    def remove_module(self, task: str, key: SiteKey) -> None:
        del self.task_modules[self.check_task(task)][str(key)]

    def remove_task(self, task: str) -> None:
        del self.task_modules[self.check_task(task)]
        del self._methods[task]

    def modules_of(self, task: str) -> dict[SiteKey, nn.Module]:
        """``task``'s modules by site, in the order they were added (a copy: edit through the
        encoder). A module shared across layers appears at each of its keys."""
        modules = self.task_modules[self.check_task(task)]
        return {SiteKey.parse(key): module for key, module in modules.items()}

    def method_of(self, task: str) -> Method | None:
        """The method that built ``task`` (``None`` for modules added by hand)."""
        return self._methods[self.check_task(task)]

    def trainable(self, task: str) -> list[nn.Parameter]:
        """What training ``task`` updates: its modules' trainable parameters, each once, and,
        when its method changes the backbone, the backbone's trainable ones (LoRA's injected
        weights, or every weight for full fine-tuning)."""
        own = [p for p in self.task_modules[self.check_task(task)].parameters() if p.requires_grad]
        method = self._methods[task]
        if method is None or not method.changes_backbone:
            return own
        return own + [p for p in self.backbone.parameters() if p.requires_grad]

    def check_task(self, task: str) -> str:
        if task not in self.task_modules:
            raise KeyError(f"unknown task {task!r}; this model has tasks {self.tasks}")
        return task

    def check_layer(self, layer: int) -> int:
        if not 0 <= layer < self.num_layers:
            raise ValueError(
                f"layer {layer} out of range: the encoder has layers 0..{self.num_layers - 1}"
            )
        return layer

    def check_dropped(self, dropped: int) -> int:
        if isinstance(dropped, bool) or not isinstance(dropped, int):
            raise TypeError(f"dropped layers must be an int, got {dropped!r}")
        if not 0 <= dropped < self.num_layers:
            last = self.num_layers - 1
            raise ValueError(f"cannot drop {dropped} of {self.num_layers} layers: choose 0..{last}")
        return dropped

    def freeze_backbone(self) -> None:
        self.backbone.requires_grad_(False)

    def backbone_frozen(self) -> bool:
        return not any(p.requires_grad for p in self.backbone.parameters())

    def branch_layer(self, task: str, dropped: int) -> int:
        """First layer at which ``task`` has an active module, or ``num_layers`` if none."""
        active = [key.layer for key in self.modules_of(task) if key.layer >= dropped]
        return min(active, default=self.num_layers)

    # ------------------------------------------------------------------- forward
    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        tasks: str | Iterable[str] | None = None,
        dropped_layers: int | Mapping[str, int] = 0,
    ) -> dict[str, torch.Tensor]:
        """Final hidden states ``(B, S, d)`` per task, from one pass over the layers.

        ``dropped_layers`` skips each task's modules in layers ``< n`` at run time (dynamic
        AdapterDrop); one int applies to all tasks, a mapping sets a depth per task.
        """
        names = self._resolve_tasks(tasks)
        dropped = self._resolve_dropped(dropped_layers, names)
        branch = {t: self.branch_layer(t, dropped[t]) for t in names}
        hidden = self.backbone.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)
        mask = encoder_mask(attention_mask, hidden.dtype, self.backbone.config._attn_implementation)
        self._mask_cache = {1: mask}
        streams = _Streams(hidden, [None], input_ids.shape[0])
        first_grad_layer = min(branch.values(), default=self.num_layers)
        frozen = self.backbone_frozen()
        for i, layer in enumerate(self.layers):
            no_grad = frozen and i < first_grad_layer
            with torch.no_grad() if no_grad else contextlib.nullcontext():
                streams = self._run_layer(i, layer, streams, branch, dropped)
        return self._outputs(streams, names)

    def _resolve_tasks(self, tasks: str | Iterable[str] | None) -> list[str]:
        if tasks is None:
            names = self.tasks
        elif isinstance(tasks, str):
            names = [tasks]
        else:
            names = list(tasks)
        if not names:
            raise ValueError(f"no task to run; this model has tasks {self.tasks}")
        if len(set(names)) != len(names):
            raise ValueError(f"tasks must be distinct, got {names}")
        return [self.check_task(t) for t in names]

    def _resolve_dropped(
        self, dropped_layers: int | Mapping[str, int], names: list[str]
    ) -> dict[str, int]:
        """One depth per task; a mapping must name exactly the tasks being run."""
        if not isinstance(dropped_layers, Mapping):
            return dict.fromkeys(names, self.check_dropped(dropped_layers))
        if set(dropped_layers) != set(names):
            raise ValueError(
                f"dropped_layers names tasks {sorted(dropped_layers)} but the pass runs {names}"
            )
        return {t: self.check_dropped(dropped_layers[t]) for t in names}

    def _mask_for(self, streams: _Streams) -> torch.Tensor | None:
        count = len(streams.labels)
        if count not in self._mask_cache:
            base = self._mask_cache[1]
            self._mask_cache[count] = None if base is None else base.repeat(count, 1, 1, 1)
        return self._mask_cache[count]

    def _run_layer(
        self,
        i: int,
        layer: nn.Module,
        streams: _Streams,
        branch: dict[str, int],
        dropped: dict[str, int],
    ) -> _Streams:
        whole_layer = self._whole_layer_module(i, streams, branch, dropped)
        if whole_layer is not None:
            hidden = whole_layer.layer_forward(layer, streams.hidden, self._mask_for(streams))
            return _Streams(hidden, streams.labels, streams.batch)
        x = attention_sublayer(layer, streams.hidden, self._mask_for(streams))
        streams = self._site(i, Site.ATTENTION, layer, streams, x, None, branch, dropped)
        intermediate, x = ffn_sublayer(layer, streams.hidden)
        return self._site(i, Site.OUTPUT, layer, streams, x, intermediate, branch, dropped)

    def _whole_layer_module(
        self, i: int, streams: _Streams, branch: dict[str, int], dropped: dict[str, int]
    ) -> LayerModule | None:
        key = str(SiteKey(i, Site.LAYER))
        owners = [t for t in branch if key in self.task_modules[t] and i >= dropped[t]]
        if not owners:
            return None
        if len(branch) != 1:
            raise ValueError(
                f"task(s) {owners} replace whole layers (token routing); they run one task at a "
                f"time, not in a multi-task pass with {sorted(branch)}"
            )
        return self.task_modules[owners[0]][key]

    def _site(
        self,
        i: int,
        site: Site,
        layer: nn.Module,
        streams: _Streams,
        projected: torch.Tensor,
        intermediate: torch.Tensor | None,
        branch: dict[str, int],
        dropped: dict[str, int],
    ) -> _Streams:
        """Add each stream's task term at this site, branch new tasks off the shared stream,
        and apply the sub-layer's LayerNorm to all streams at once."""
        key = str(SiteKey(i, site))
        view = _SiteView(
            streams, projected, intermediate, site_norm(layer, site), self._device_index
        )
        pre = view.pre_norm
        labels = streams.labels

        def active(task: str) -> bool:
            return i >= dropped[task] and key in self.task_modules[task]

        waiting = [t for t in branch if t not in labels]
        new = [t for t in waiting if active(t)]
        owned = [g for g, t in enumerate(labels) if t is not None and active(t)]
        if owned:
            deltas = self._deltas([labels[g] for g in owned], key, view, owned)
            if len(owned) == len(labels):
                pre = _add_term(pre, deltas)
            else:
                rows = self._device_index.rows(owned, streams.batch, pre.device)
                pre = pre.index_add(0, rows, deltas.to(pre.dtype))
        if new:
            shared = streams.slice(pre, 0)
            deltas = self._deltas(new, key, view, [0] * len(new))
            branched = (shared + deltas.unflatten(0, (len(new), streams.batch))).flatten(0, 1)
            keep_shared = len(new) < len(waiting)
            kept = pre if keep_shared else pre[streams.batch :]
            pre = branched if kept.shape[0] == 0 else torch.cat([kept, branched])
            labels = (labels if keep_shared else labels[1:]) + new
        return _Streams(view.norm(pre), labels, streams.batch)

    def _deltas(
        self, tasks: list[str], key: str, view: _SiteView, stream_index: list[int]
    ) -> torch.Tensor:
        """Terms of ``tasks`` reading streams ``stream_index``, task-major: ``(N * B, S, d)``.

        Same-typed modules with equal batch signatures run as one op, their type's
        ``batched_delta``; others one by one. One task (the common case) returns its module's
        term as is, with no copy or reshape.
        """
        modules: list[SiteModule] = [self.task_modules[t][key] for t in tasks]
        if len(modules) == 1:
            return modules[0].delta(view.inputs(stream_index[0]))
        kind = type(modules[0])
        signature = modules[0].batch_signature()
        if signature is not None and all(
            type(m) is kind and m.batch_signature() == signature for m in modules
        ):
            return kind.batched_delta(modules, view, stream_index).flatten(0, 1)
        return torch.cat(
            [m.delta(view.inputs(g)) for m, g in zip(modules, stream_index, strict=True)]
        )

    def _outputs(self, streams: _Streams, names: list[str]) -> dict[str, torch.Tensor]:
        index = {label: g for g, label in enumerate(streams.labels)}
        return {t: streams.slice(streams.hidden, index.get(t, index.get(None))) for t in names}
