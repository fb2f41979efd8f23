"""A small registry: a method name in a config maps to a class with ``apply(encoder, task)``.

Adding a method is one module that calls ``register`` and one ``conf/method/*.yaml`` preset.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from adapterdrop.engine import AdapterEncoder


class Method(Protocol):
    """Wires one task's trainable pieces into an encoder; nothing else knows how."""

    def apply(self, encoder: AdapterEncoder, task: str) -> None: ...


_REGISTRY: dict[str, Callable[..., Method]] = {}


def register(name: str, **preset: Any) -> Callable:
    """Register a method class under ``name``; ``preset`` fixes some of its fields."""

    def wrap(cls: type) -> type:
        if name in _REGISTRY:
            raise ValueError(f"method {name!r} registered twice")
        _REGISTRY[name] = lambda **kwargs: cls(**{**preset, **kwargs})
        _REGISTRY[name].fields = {f.name for f in dataclasses.fields(cls)} - set(preset)
        return cls

    return wrap


def method_names() -> list[str]:
    _load_builtin_methods()
    return sorted(_REGISTRY)


def build_method(cfg: Mapping[str, Any]) -> Method:
    """Instantiate a method from its config; unknown names and keys fail with the valid ones."""
    _load_builtin_methods()
    params = dict(cfg)
    name = params.pop("name", None)
    if name not in _REGISTRY:
        raise ValueError(f"unknown method {name!r}; choose one of {sorted(_REGISTRY)}")
    factory = _REGISTRY[name]
    unknown = set(params) - factory.fields
    if unknown:
        raise ValueError(
            f"method {name!r} has no option(s) {sorted(unknown)}; valid: {sorted(factory.fields)}"
        )
    return factory(**params)


def _load_builtin_methods() -> None:
    """Import every module of this package so their ``register`` calls run (once each)."""
    import adapterdrop.methods as package

    for info in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{info.name}")
