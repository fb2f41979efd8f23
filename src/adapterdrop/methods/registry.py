"""A small registry: a method name in a config maps to a ``core.Method`` class.

Adding a method is one module (or package) here that calls ``register``, and one
``conf/method/*.yaml`` preset; nothing outside it changes. ``unregister`` removes a name again
(for methods defined in tests).
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from collections.abc import Callable, Mapping
from typing import Any

from adapterdrop.core import Method

_REGISTRY: dict[str, Callable[..., Method]] = {}


def register(name: str, **preset: Any) -> Callable[[type[Method]], type[Method]]:
    """Register a ``Method`` dataclass under ``name``; ``preset`` fixes some of its fields."""

    def wrap(cls: type[Method]) -> type[Method]:
        if name in _REGISTRY:
            raise ValueError(f"method {name!r} registered twice")
        if not (isinstance(cls, type) and issubclass(cls, Method)):
            raise TypeError(f"method {name!r}: {cls!r} is not a subclass of core.Method")
        _REGISTRY[name] = lambda **kwargs: cls(**{**preset, **kwargs})
        _REGISTRY[name].fields = {f.name for f in dataclasses.fields(cls)} - set(preset)
        return cls

    return wrap


def unregister(name: str) -> None:
    """Forget method ``name`` (one registered outside this package, e.g. by a test)."""
    if name not in _REGISTRY:
        raise KeyError(f"method {name!r} is not registered")
    del _REGISTRY[name]


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
    """Import every module of this package, subpackages included, so their ``register`` calls
    run (once each: Python caches imported modules)."""
    import adapterdrop.methods as package

    for info in pkgutil.walk_packages(package.__path__, prefix=f"{package.__name__}."):
        importlib.import_module(info.name)
