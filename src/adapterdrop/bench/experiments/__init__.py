"""Paper artefacts as benchmark experiments: each turns a config into points, measures a point,
and builds its tables from ``results/raw`` only (never in the same step as measuring)."""

from __future__ import annotations

import importlib
from types import ModuleType

EXPERIMENTS = ("table1", "table2", "table3", "efficiency")


def get_experiment(name: str) -> ModuleType:
    """The module for ``name``: ``points(cfg)``, ``measure(point)``, ``tables(df, cfg)``."""
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown benchmark {name!r}; choose one of {EXPERIMENTS}")
    return importlib.import_module(f"{__name__}.{name}")
