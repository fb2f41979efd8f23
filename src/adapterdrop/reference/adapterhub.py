"""AdapterHub (``adapters`` 1.3) over the same weights as our engine: the reference and the peer.

``build_adapterhub_reference(encoder)`` deep-copies our backbone, turns it into an AdapterHub
model with ``adapters.init``, adds one AdapterHub bottleneck adapter per task (same name, and
the AdapterHub config of the task's own method config, ``encoder.method_of(task)``) and copies
our adapter weights in. Equivalence tests then compare final hidden states;
the benchmark times the two implementations on identical inputs and weights.

How our modes map onto AdapterHub's:

* one task: the adapter activated on its own (``Stack(name)``);
* several tasks: ``Parallel(*names)``; AdapterHub replicates the batch at the first layer with
  an active adapter and returns the T outputs stacked on the batch axis;
* static leave-out (our ``leave_out=n``): the adapter config's ``leave_out`` layer list;
* dynamic AdapterDrop (our ``dropped_layers=n``): ``set_active_adapters(setup,
  skip_layers=[0..n-1])``, AdapterHub's runtime switch that deactivates every adapter in those
  layers. It is one list for the whole model, so per-task drop depths cannot be expressed.

Mixed static depths in one ``Parallel`` block fail in AdapterHub. In a layer where only some of
the block's adapters exist, ``compose_parallel`` looks up the block's first adapter
(``KeyError`` when that one is left out there) or concatenates the children's states, where a
left-out child has no bottleneck output (``TypeError`` from ``torch.cat``). Our engine handles
mixed depths; the tests record AdapterHub's behaviour.

For AdapterFusion: ``AdapterHubReference.model`` and ``adapter_layer`` give the AdapterHub model
and its per-layer bottleneck layers (adapter names equal our task names), so fusion layers can
be added with ``model.add_adapter_fusion(Fuse(*tasks))`` and filled from our weights the same way.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any

import adapters
import torch
from adapters import DoubleSeqBnConfig, Parallel, SeqBnConfig
from adapters.composition import AdapterCompositionBlock, Stack
from adapters.configuration import BnConfig
from adapters.methods.bottleneck import BottleneckLayer
from torch import nn
from transformers import PreTrainedModel

from adapterdrop.core import Site
from adapterdrop.engine import AdapterEncoder
from adapterdrop.methods.bottleneck import BottleneckAdapter, BottleneckMethod, bottleneck_size

# Our site <-> AdapterHub's ``location_key`` of the bottleneck layer at that place.
LOCATION_KEYS = {Site.ATTENTION: "mh_adapter", Site.OUTPUT: "output_adapter"}

# (sites, activation, reads_normed) of our bottleneck presets <-> the AdapterHub config class.
_KINDS: dict[tuple[frozenset[Site], str, bool], tuple[str, type[BnConfig]]] = {
    (frozenset({Site.OUTPUT}), "relu", True): ("pfeiffer", SeqBnConfig),
    (frozenset({Site.ATTENTION, Site.OUTPUT}), "swish", False): ("houlsby", DoubleSeqBnConfig),
}


@dataclass(frozen=True)
class AdapterSpec:
    """What AdapterHub needs to rebuild one task's adapters, from the task's method config."""

    kind: str  # "pfeiffer" or "houlsby"
    config_class: type[BnConfig]
    bottleneck: int
    layers: tuple[int, ...]  # layers that have the task's adapters; the rest are left out
    sites: frozenset[Site]

    def config(self, hidden_size: int, num_layers: int) -> BnConfig:
        """AdapterHub config whose ``int(hidden // reduction_factor)`` is our bottleneck."""
        factor = hidden_size / self.bottleneck
        if int(hidden_size // factor) != self.bottleneck:  # float rounding for non-divisors
            factor = hidden_size / (self.bottleneck + 0.5)
        leave_out = [i for i in range(num_layers) if i not in self.layers]
        return self.config_class(reduction_factor=factor, leave_out=leave_out)


def adapter_spec(encoder: AdapterEncoder, task: str) -> AdapterSpec:
    """The AdapterHub equivalent of the method config that built ``task``; refuse what
    AdapterHub cannot express."""
    modules = encoder.modules_of(task)
    method = encoder.method_of(task)
    if not isinstance(method, BottleneckMethod):
        built = "added by hand" if method is None else f"built by {type(method).__name__}"
        kinds = sorted({type(m).__name__ for m in modules.values()})
        raise ValueError(
            f"task {task!r} has modules {kinds} ({built}); the AdapterHub reference supports "
            f"only Pfeiffer/Houlsby BottleneckAdapter modules built by their method"
        )
    if method.shared:
        raise ValueError(
            f"task {task!r} shares one adapter across layers; AdapterHub has no cross-layer sharing"
        )
    sites = frozenset(Site[site.upper()] for site in method.sites)
    signature = (sites, method.activation, method.reads_normed)
    if signature not in _KINDS:
        valid = [kind for kind, _ in _KINDS.values()]
        raise ValueError(
            f"task {task!r}: adapters at sites {sorted(s.name for s in sites)} with activation "
            f"{method.activation!r} match no AdapterHub preset; supported: {valid}"
        )
    kind, config_class = _KINDS[signature]
    bottleneck = bottleneck_size(encoder.hidden_size, method.reduction_factor)
    layers = tuple(range(method.leave_out, encoder.num_layers))
    return AdapterSpec(kind, config_class, bottleneck, layers, sites)


@dataclass(frozen=True)
class HubForward:
    """An AdapterHub forward and the activation it needs, apart: AdapterHub keeps one active
    setup per model, and re-activating walks every module, so a benchmark runs ``activate`` as
    the untimed setup of each call and times ``forward`` alone. Calling the object does both."""

    activate: Callable[[], None]
    forward: Callable[[torch.Tensor, torch.Tensor | None], Any]

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None) -> Any:
        self.activate()
        return self.forward(input_ids, attention_mask)


@dataclass
class AdapterHubReference:
    """An AdapterHub model holding our tasks' adapters under the same names."""

    model: PreTrainedModel
    tasks: tuple[str, ...]
    specs: dict[str, AdapterSpec]

    @property
    def num_layers(self) -> int:
        return self.model.config.num_hidden_layers

    def adapter_layer(self, layer: int, site: Site) -> BottleneckLayer:
        """AdapterHub's bottleneck layer at one of our sites (holds ``.adapters[task]``)."""
        return _bottleneck_layers(self.model)[(layer, LOCATION_KEYS[site])]

    def _activate(self, setup: AdapterCompositionBlock, skip: list[int] | None) -> None:
        """Activate ``setup`` with ``skip`` layers; a no-op when already active."""
        config = self.model.adapters_config
        active = config.active_setup
        # AdapterHub's block ``==`` ignores lengths (Parallel(a, b) == Parallel(a, b, c)).
        if active is None or active.to_dict() != setup.to_dict() or config.skip_layers != skip:
            self.model.set_active_adapters(setup, skip_layers=skip)

    def run(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        tasks: str | Iterable[str] | None = None,
        dropped_layers: int = 0,
    ) -> dict[str, torch.Tensor]:
        """Final hidden states per task, like ``AdapterEncoder.forward`` (one int drop depth)."""
        names = self._names(tasks)
        forward = self.parallel_forward(names, dropped_layers)
        return dict(zip(names, forward(input_ids, attention_mask), strict=True))

    def parallel_forward(self, tasks: Iterable[str], dropped_layers: int = 0) -> HubForward:
        """All ``tasks`` in one forward; returns one ``(B, S, d)`` per task.

        One task runs as a plain single adapter, several as ``Parallel``.
        """
        names = self._names(tasks)
        setup, skip = self._setup(names), self._skip_layers(dropped_layers)

        def forward(input_ids: torch.Tensor, attention_mask: torch.Tensor | None) -> list:
            hidden = self.model(input_ids=input_ids, attention_mask=attention_mask)
            return list(hidden.last_hidden_state.chunk(len(names), dim=0))

        return HubForward(activate=partial(self._activate, setup, skip), forward=forward)

    def single_forward(self, task: str, dropped_layers: int = 0) -> HubForward:
        """One task's adapter; returns its ``(B, S, d)`` hidden states."""
        run_all = self.parallel_forward([task], dropped_layers)
        return HubForward(
            activate=run_all.activate,
            forward=lambda input_ids, attention_mask: run_all.forward(input_ids, attention_mask)[0],
        )

    def _names(self, tasks: str | Iterable[str] | None) -> list[str]:
        if tasks is None:
            names = list(self.tasks)
        else:
            names = [tasks] if isinstance(tasks, str) else list(tasks)
        unknown = [t for t in names if t not in self.tasks]
        if unknown or not names or len(set(names)) != len(names):
            raise ValueError(
                f"tasks must be distinct and non-empty, chosen from {list(self.tasks)}; got {names}"
            )
        return names

    def _setup(self, tasks: str | Iterable[str]) -> AdapterCompositionBlock:
        names = self._names(tasks)
        return Stack(names[0]) if len(names) == 1 else Parallel(*names)

    def _skip_layers(self, dropped: int) -> list[int] | None:
        """AdapterHub's ``skip_layers`` for dropping the first ``dropped`` layers."""
        if not 0 <= dropped < self.num_layers:
            last = self.num_layers - 1
            raise ValueError(f"cannot drop {dropped} of {self.num_layers} layers: choose 0..{last}")
        return list(range(dropped)) or None


def _bottleneck_layers(model: nn.Module) -> dict[tuple[int, str], BottleneckLayer]:
    found: dict[tuple[int, str], BottleneckLayer] = {}

    def collect(layer: int, module: nn.Module) -> None:
        if isinstance(module, BottleneckLayer):
            found[(layer, module.location_key)] = module

    model.apply_to_adapter_layers(collect)
    return found


def _copy_weights(
    encoder: AdapterEncoder, task: str, layers: dict[tuple[int, str], BottleneckLayer]
) -> None:
    """Our ``down``/``up`` Linear -> AdapterHub's ``adapter_down[0]``/``adapter_up``."""
    ours = {(key.layer, LOCATION_KEYS[key.site]): m for key, m in encoder.modules_of(task).items()}
    theirs = {
        (i, key): layer.adapters[task]
        for (i, key), layer in layers.items()
        if task in layer.adapters
    }
    if set(theirs) != set(ours):
        raise RuntimeError(
            f"AdapterHub placed {task!r} at {sorted(theirs)}, but our adapters sit at "
            f"{sorted(ours)}"
        )
    with torch.no_grad():
        for place, module in ours.items():
            if not isinstance(module, BottleneckAdapter):
                raise RuntimeError(f"task {task!r} holds a {type(module).__name__} at {place}")
            hub = theirs[place]
            hub.adapter_down[0].weight.copy_(module.down.weight)
            hub.adapter_down[0].bias.copy_(module.down.bias)
            hub.adapter_up.weight.copy_(module.up.weight)
            hub.adapter_up.bias.copy_(module.up.bias)


def build_adapterhub_reference(
    encoder: AdapterEncoder, tasks: Iterable[str] | None = None
) -> AdapterHubReference:
    """AdapterHub model over a deep copy of ``encoder``'s backbone with ``tasks``' adapters."""
    names = encoder.tasks if tasks is None else [encoder.check_task(t) for t in tasks]
    specs = {task: adapter_spec(encoder, task) for task in names}
    model = copy.deepcopy(encoder.backbone)
    adapters.init(model)
    config = model.config
    for task, spec in specs.items():
        model.add_adapter(task, config=spec.config(config.hidden_size, config.num_hidden_layers))
    reference = next(encoder.backbone.parameters())
    model.to(device=reference.device, dtype=reference.dtype)
    layers = _bottleneck_layers(model)
    for task in names:
        _copy_weights(encoder, task, layers)
    model.train(encoder.training)
    return AdapterHubReference(model=model, tasks=tuple(names), specs=specs)
