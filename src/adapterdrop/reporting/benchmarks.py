"""Benchmark tables from stored results only: one machine's grid, every machine, and machines
side by side.

A grid's tables are a pure function of its results and its resolved config. Each build writes
that config and the point ids it used beside the tables (``<tables_root>/<grid>.run.json``), so
``python -m adapterdrop.reporting`` (``make tables``) rebuilds the tables of every machine
under ``results/`` on any machine, without its hardware, and then writes
``results/comparison/<table>.md``: each artefact's headline table with one column per machine.

Each grid's tables come from its module here (``adapterdrop.reporting.<grid>``: ``tables(df,
cfg)`` and ``COMPARISON``), its points from ``adapterdrop.bench.experiments.<grid>``.
"""

from __future__ import annotations

import copy
import importlib
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import pandas as pd

from adapterdrop.bench.experiments import EXPERIMENTS
from adapterdrop.reporting.tables import load_ok_results, write_table
from adapterdrop.results import atomic_write_text, point_id

log = logging.getLogger(__name__)

MANIFEST_SUFFIX = ".run.json"
COMPARISON_DIR = "comparison"
#: Tables of runs whose command line changed their setting (a tiny model, another batch) go to
#: ``<tables_root>/variants/<grid>-<setting id>/``, never over the grid's own tables.
VARIANTS_DIR = "variants"
#: Config keys that say where a run writes or whether it measures, not what it measures.
RUN_CONTROL = ("measure", "force", "progress", "on_version_change", "machine", "paths", "hydra")
#: Config keys that add rows to a grid's tables: runs differing only in them (a multirun over
#: T, say) share one set of tables, built from all their points.
AXES = {
    "table1": ("bench.seq_len", "bench.batch_size", "bench.phases", "bench.methods"),
    "table2": ("bench.num_tasks", "bench.min_reps_by_tasks"),
    "table3": ("bench.num_adapters", "bench.phases"),
    "efficiency": ("bench.studies",),
}


def grid_tables(grid: str) -> ModuleType:
    """The table module of ``grid``: ``tables(df, cfg)`` and ``COMPARISON``."""
    if grid not in EXPERIMENTS:
        raise ValueError(f"unknown benchmark {grid!r}; choose one of {EXPERIMENTS}")
    return importlib.import_module(f"adapterdrop.reporting.{grid}")


def manifest_path(tables_root: Path | str, grid: str) -> Path:
    return Path(tables_root) / f"{grid}{MANIFEST_SUFFIX}"


def override_key(override: str) -> str:
    """``bench.num_tasks`` of ``bench.num_tasks=[2,4]``, ``+bench.x=1`` or ``~bench.x``."""
    return override.split("=", 1)[0].lstrip("+~")


def _is_under(key: str, prefixes: Sequence[str]) -> bool:
    return any(key == p or key.startswith(f"{p}.") or key.startswith(f"{p}/") for p in prefixes)


def changes_setting(grid: str, overrides: Sequence[str]) -> bool:
    """Whether command-line ``overrides`` change what ``grid`` measures beyond its axes."""
    ignored = (*RUN_CONTROL, *AXES.get(grid, ()))
    return any(not _is_under(override_key(o), ignored) for o in overrides)


def setting_id(grid: str, cfg: Mapping[str, Any]) -> str:
    """Hash of what a run of ``grid`` measures, its axes and run control left out."""
    plain = copy.deepcopy(dict(cfg))
    for dotted in (*RUN_CONTROL, *AXES.get(grid, ())):
        *parents, leaf = dotted.split(".")
        node = plain
        for key in parents:
            node = node.get(key, {})
        node.pop(leaf, None)
    return point_id(plain)[:8]


def tables_folder(grid: str, cfg: Mapping[str, Any], tables_root: Path, variant: bool) -> Path:
    """The grid's own tables folder, or for a variant run its own subfolder."""
    if not variant:
        return Path(tables_root)
    return Path(tables_root) / VARIANTS_DIR / f"{grid}-{setting_id(grid, cfg)}"


def _merge_axes(grid: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """``new`` with each axis holding the values of both runs (lists in order, dicts merged)."""
    merged = copy.deepcopy(dict(new))
    for dotted in AXES.get(grid, ()):
        *parents, leaf = dotted.split(".")
        old_node, node = old, merged
        for key in parents:
            old_node, node = old_node.get(key, {}), node.get(key, {})
        before, after = old_node.get(leaf), node.get(leaf)
        if isinstance(before, list) and isinstance(after, list):
            node[leaf] = before + [v for v in after if v not in before]
        elif isinstance(before, dict) and isinstance(after, dict):
            node[leaf] = {**before, **after}
    return merged


def build_tables(
    grid: str,
    cfg: Mapping[str, Any],
    point_ids: Sequence[str],
    results_root: Path | str,
    tables_root: Path | str,
) -> dict[str, str]:
    """Write ``grid``'s tables from the results ``point_ids`` under ``results_root``, and the
    manifest that lets them be rebuilt; return each table's markdown (none if no point has a
    result yet).

    Tables hold every point measured in their setting: a run that differs from the folder's
    manifest only in its axes adds its points to the earlier ones; a run of another setting
    moves the earlier tables to ``variants/<grid>-<their setting>/`` first, so no built table
    is lost.
    """
    cfg = json.loads(json.dumps(cfg))  # as a manifest holds it: JSON keys are strings
    previous = _read_manifest(tables_root, grid)
    if previous is not None and previous["config"] is not None:
        if setting_id(grid, previous["config"]) == setting_id(grid, cfg):
            point_ids = sorted({*previous["point_ids"], *point_ids})
            cfg = _merge_axes(grid, previous["config"], cfg)
        else:
            _archive(grid, previous, Path(tables_root))
    return _write_tables(grid, cfg, point_ids, results_root, tables_root)


def _read_manifest(tables_root: Path | str, grid: str) -> dict[str, Any] | None:
    path = manifest_path(tables_root, grid)
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _archive(grid: str, manifest: Mapping[str, Any], tables_root: Path) -> None:
    """Rebuild the tables of ``manifest`` in its variant folder, then remove them here."""
    folder = tables_folder(grid, manifest["config"], tables_root, variant=True)
    log.warning(
        "%s: the tables in %s are of another setting; moved to %s", grid, tables_root, folder
    )
    build_tables(grid, manifest["config"], manifest["point_ids"], manifest["results_root"], folder)
    for table in manifest["tables"]:
        for suffix in (".md", ".csv"):
            (tables_root / f"{table}{suffix}").unlink(missing_ok=True)
    manifest_path(tables_root, grid).unlink()


def _write_tables(
    grid: str,
    cfg: Mapping[str, Any],
    point_ids: Sequence[str],
    results_root: Path | str,
    tables_root: Path | str,
) -> dict[str, str]:
    df = load_ok_results(results_root, grid) if Path(results_root, grid).is_dir() else None
    if df is None or df.empty:
        return {}
    df = df[df["point_id"].isin(set(point_ids))]
    if df.empty:
        return {}
    written = {
        table: write_table(frame, table, tables_root=tables_root)
        for table, frame in grid_tables(grid).tables(df, cfg).items()
        if isinstance(frame, pd.DataFrame) and not frame.empty
    }
    manifest = {
        "grid": grid,
        "results_root": str(results_root),
        "point_ids": sorted(point_ids),
        "tables": sorted(written),
        "config": dict(cfg),
    }
    text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    atomic_write_text(manifest_path(tables_root, grid), text)
    return written


def rebuild_machine(tables_root: Path) -> dict[str, list[str]]:
    """Rebuild every grid whose manifest sits in ``tables_root``: ``{grid: [table, ...]}``."""
    built = {}
    manifests = [
        *sorted(tables_root.glob(f"*{MANIFEST_SUFFIX}")),
        *sorted(tables_root.glob(f"{VARIANTS_DIR}/*/*{MANIFEST_SUFFIX}")),
    ]
    for path in manifests:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        grid = manifest["grid"]
        if grid not in EXPERIMENTS:
            raise ValueError(f"{path}: unknown grid {grid!r}; known: {EXPERIMENTS}")
        written = build_tables(
            grid,
            manifest["config"],
            manifest["point_ids"],
            manifest["results_root"],
            path.parent,
        )
        name = grid if path.parent == tables_root else path.parent.name
        built[name] = sorted(written)
    return built


def machines(root: Path | str) -> dict[str, Path]:
    """``{machine tag: tables folder}`` for every machine under ``root`` with built tables."""
    return {
        path.parent.parent.name: path.parent
        for path in sorted(Path(root).glob(f"*/tables/*{MANIFEST_SUFFIX}"))
    }


def comparison(frames: Mapping[str, pd.DataFrame], keys: Sequence[str], values: Sequence[str]):
    """One table: ``keys`` then ``<value> @ <machine>`` columns, machines side by side."""
    merged = None
    for machine, frame in frames.items():
        present = [v for v in values if v in frame]
        part = frame[[*keys, *present]].rename(columns={v: f"{v} @ {machine}" for v in present})
        merged = part if merged is None else merged.merge(part, on=list(keys), how="outer")
    return merged.sort_values(list(keys), ignore_index=True)


def write_comparisons(root: Path | str) -> list[Path]:
    """``<root>/comparison/<table>.md`` and ``.csv`` for each headline table that more than one
    machine has (each experiment's ``COMPARISON``: table -> (key columns, value columns))."""
    found = machines(root)
    written: list[Path] = []
    if len(found) < 2:
        return written
    for grid in EXPERIMENTS:
        for table, (keys, values) in getattr(grid_tables(grid), "COMPARISON", {}).items():
            frames = {
                machine: pd.read_csv(folder / f"{table}.csv")
                for machine, folder in found.items()
                if (folder / f"{table}.csv").exists()
            }
            if len(frames) < 2:
                continue
            frame = comparison(frames, keys, values)
            out = Path(root) / COMPARISON_DIR
            write_table(frame, table, tables_root=out)
            written.append(out / f"{table}.md")
    return written


def rebuild_all(root: Path | str) -> dict[str, dict[str, list[str]]]:
    """Every machine's tables under ``root``, then the comparisons."""
    built = {machine: rebuild_machine(folder) for machine, folder in machines(root).items()}
    write_comparisons(root)
    return built
