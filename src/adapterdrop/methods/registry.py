"""A small registry: a method name in a config maps to a ``core.Method`` class.

Adding a method is one module (or package) here that calls ``register``, and one
``conf/method/*.yaml`` preset; nothing outside it changes. A method kept outside this package
(a project of one's own, a test) names its module in the preset, ``_module_: my_pkg.my_method``:
``build_method`` imports it, so its ``register`` call runs, before looking the name up.
``unregister`` removes a name again (for methods defined in tests).
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from collections.abc import Callable, Mapping
from typing import Any

from adapterdrop.core import Method

_REGISTRY: dict[str, Callable[..., Method]] = {}
#: The config key naming the module that registers a method from outside this package.
MODULE_KEY = "_module_"


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
    module = params.pop(MODULE_KEY, None)
    if module is not None:
        _import_method_module(module)
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


def _import_method_module(module: Any) -> None:
    """Import the module a method config names in ``_module_`` (Python caches it: once)."""
    if not isinstance(module, str) or not module:
        raise ValueError(f"{MODULE_KEY} must name a Python module, got {module!r}")
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as err:
        raise ValueError(
            f"{MODULE_KEY}: cannot import {module!r} ({err}); is its folder on PYTHONPATH?"
        ) from err


def _load_builtin_methods() -> None:
    """Import every module of this package, subpackages included, so their ``register`` calls
    run (once each: Python caches imported modules)."""
    import adapterdrop.methods as package

    for info in pkgutil.walk_packages(package.__path__, prefix=f"{package.__name__}."):
        importlib.import_module(info.name)
