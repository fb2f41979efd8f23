"""Paper artefacts as benchmark experiments: each turns a config into points and measures a
point. Their tables are built from the stored results only, by the reporting layer
(``adapterdrop.reporting.<grid>``), never in the same step as measuring."""

from __future__ import annotations

import importlib
from types import ModuleType

EXPERIMENTS = ("table1", "table2", "table3", "efficiency")


def get_experiment(name: str) -> ModuleType:
    """The module for ``name``: ``points(cfg)`` and ``measure(point)``."""
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown benchmark {name!r}; choose one of {EXPERIMENTS}")
    return importlib.import_module(f"{__name__}.{name}")
