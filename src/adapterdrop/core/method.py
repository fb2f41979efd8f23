"""What a method class declares, and what it may ask of the encoder it is applied to.

A method is a config (a dataclass registered by name in ``methods.registry``) whose ``apply``
wires one task's modules into an encoder. Generic code (parameter counts, benchmarks, the
trainer) reads the capability flags below instead of testing method names.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, ClassVar, Protocol

from torch import nn

if TYPE_CHECKING:
    from adapterdrop.core.sites import Site, SiteKey


class Method:
    """Base of every method class: ``apply`` plus facts about what the method changes.

    ``apply`` must check its options before it adds anything, then register the task with
    ``encoder.add_task(task, self)`` so the encoder knows which method built it.
    """

    #: The method changes the shared backbone's own modules or weights (LoRA injects layers,
    #: full fine-tuning trains them): its task needs a backbone of its own, and its trainable
    #: weights live in the backbone.
    changes_backbone: ClassVar[bool] = False
    #: The backbone's own weights are the ones that train (full fine-tuning).
    trains_backbone: ClassVar[bool] = False
    #: The method reads other tasks' trained modules (AdapterFusion), so it needs those first.
    fuses_tasks: ClassVar[bool] = False

    def apply(self, encoder: Encoder, task: str) -> None:
        raise NotImplementedError

    def backbone_parameters(
        self, backbone: nn.Module, task: str
    ) -> Iterator[tuple[str, nn.Parameter]]:
        """Parameters this method added inside the backbone for ``task`` (LoRA's); none here."""
        return iter(())


class Encoder(Protocol):
    """What a method may ask of the encoder (``engine.AdapterEncoder`` implements it)."""

    backbone: nn.Module
    training: bool

    @property
    def hidden_size(self) -> int: ...

    @property
    def num_layers(self) -> int: ...

    @property
    def tasks(self) -> list[str]: ...

    def add_task(self, task: str, method: Method | None = None) -> None: ...

    def add_module_at(self, task: str, layer: int, site: Site, module: nn.Module) -> None: ...

    def remove_module(self, task: str, key: SiteKey) -> None: ...

    def modules_of(self, task: str) -> dict[SiteKey, nn.Module]: ...

    def method_of(self, task: str) -> Method | None: ...

    def trainable(self, task: str) -> list[nn.Parameter]: ...

    def check_task(self, task: str) -> str: ...

    def check_dropped(self, dropped: int) -> int: ...

    def register_forward_pre_hook(self, hook, *, with_kwargs: bool = False): ...
