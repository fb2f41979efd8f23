"""Benchmark tables from stored results only: one machine's grid, every machine, and machines
side by side.

A grid's tables are a pure function of its results and its resolved config. Each build writes
that config and the point ids it used beside the tables (``<tables_root>/<grid>.run.json``), so
``python -m adapterdrop.bench.report`` (``make tables``) rebuilds the tables of every machine
under ``results/`` on any machine, without its hardware, and then writes
``results/comparison/<table>.md``: each artefact's headline table with one column per machine.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from adapterdrop.bench.experiments import EXPERIMENTS, get_experiment
from adapterdrop.results import atomic_write_text
from adapterdrop.tables import load_ok_results, write_table

log = logging.getLogger(__name__)

MANIFEST_SUFFIX = ".run.json"
COMPARISON_DIR = "comparison"


def manifest_path(tables_root: Path | str, grid: str) -> Path:
    return Path(tables_root) / f"{grid}{MANIFEST_SUFFIX}"


def build_tables(
    grid: str,
    cfg: Mapping[str, Any],
    point_ids: Sequence[str],
    results_root: Path | str,
    tables_root: Path | str,
) -> dict[str, str]:
    """Write ``grid``'s tables from the results ``point_ids`` under ``results_root``, and the
    manifest that lets them be rebuilt; return each table's markdown (none if no point has a
    result yet)."""
    df = load_ok_results(results_root, grid) if Path(results_root, grid).is_dir() else None
    if df is None or df.empty:
        return {}
    df = df[df["point_id"].isin(set(point_ids))]
    if df.empty:
        return {}
    experiment = get_experiment(grid)
    written = {
        table: write_table(frame, table, tables_root=tables_root)
        for table, frame in experiment.tables(df, cfg).items()
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
    for path in sorted(tables_root.glob(f"*{MANIFEST_SUFFIX}")):
        manifest = json.loads(path.read_text(encoding="utf-8"))
        grid = manifest["grid"]
        if grid not in EXPERIMENTS:
            raise ValueError(f"{path}: unknown grid {grid!r}; known: {EXPERIMENTS}")
        written = build_tables(
            grid,
            manifest["config"],
            manifest["point_ids"],
            manifest["results_root"],
            tables_root,
        )
        built[grid] = sorted(written)
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
        for table, (keys, values) in getattr(get_experiment(grid), "COMPARISON", {}).items():
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


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="results", help="folder holding <machine>/ folders")
    args = parser.parse_args(argv)
    built = rebuild_all(args.root)
    if not built:
        raise SystemExit(f"no built tables under {args.root}/*/tables: run a benchmark first")
    for machine, grids in built.items():
        for grid, tables in grids.items():
            print(f"{machine}: {grid}: {', '.join(tables) or 'no results'}")
    for path in sorted(Path(args.root, COMPARISON_DIR).glob("*.md")):
        print(f"comparison: {path}")


if __name__ == "__main__":
    main()
