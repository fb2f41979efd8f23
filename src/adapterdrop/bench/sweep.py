"""Run one benchmark grid end to end: validate, measure missing points, then have the reporting
layer (:mod:`adapterdrop.reporting.benchmarks`) build its tables from the stored results."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from adapterdrop.bench.allocator import retain_freed_memory
from adapterdrop.bench.devices import resolve_device, set_tf32
from adapterdrop.bench.experiments import get_experiment
from adapterdrop.bench.machine import check_tag, fingerprint
from adapterdrop.bench.machine import tag as machine_tag
from adapterdrop.bench.runner import RunSummary, run_points
from adapterdrop.bench.validate import check_bench_keys, check_threads
from adapterdrop.checks import check_bool
from adapterdrop.cli import conf_dir
from adapterdrop.reporting.benchmarks import build_tables, changes_setting, tables_folder
from adapterdrop.results import check_writable, point_id

log = logging.getLogger(__name__)


VERSION_POLICIES = ("remeasure", "keep")
#: The bench config's switches: each must be a bool (``force=maybe`` read as true).
SWITCHES = ("measure", "force", "progress", "retain_freed_memory")


def resolve_paths(cfg: Mapping[str, Any]) -> dict[str, Path]:
    """Where this machine's results and tables go: ``<root>/<machine>/{raw,tables}`` unless
    ``paths.results_root`` / ``paths.tables_root`` name folders of their own."""
    name = cfg["machine"]
    if name == "auto":
        device = resolve_device(cfg["device"])
        name = machine_tag(fingerprint(device, torch.get_num_threads()))
    machine_dir = Path(cfg["paths"]["root"]) / check_tag(name)
    paths = cfg["paths"]
    return {
        "results_root": Path(paths["results_root"] or machine_dir / "raw"),
        "tables_root": Path(paths["tables_root"] or machine_dir / "tables"),
    }


def run_benchmark(
    cfg: Mapping[str, Any], overrides: Sequence[str] = ()
) -> tuple[RunSummary, dict[str, str]]:
    """Measure ``cfg.bench`` on this machine and return the run summary and each table as
    markdown.

    ``overrides`` (the command line's) that change what the grid measures beyond its axes send
    the tables to a variant folder of their own
    (:func:`adapterdrop.reporting.benchmarks.tables_folder`), so an ad-hoc run never replaces
    the grid's tables; runs that differ only in the axes (a multirun over T) share tables built
    from all their points.

    With ``measure`` false nothing is timed: the tables are rebuilt from this machine's results.
    Tables use only this grid's points (by config hash, which holds the machine's fingerprint),
    so results of other settings or machines never mix into them. The grid's resolved config and
    point ids are written beside its tables (:mod:`adapterdrop.reporting.benchmarks` rebuilds
    every machine's tables from them).
    """
    if cfg["on_version_change"] not in VERSION_POLICIES:
        raise ValueError(
            f"on_version_change={cfg['on_version_change']!r}; choose one of {VERSION_POLICIES}"
        )
    check_bench_keys(cfg, conf_dir())
    for switch in SWITCHES:
        check_bool(cfg[switch], switch)
    threads = check_threads(cfg["threads"])
    if cfg["measure"] and cfg["retain_freed_memory"]:
        retain_freed_memory()
    if threads is not None:
        torch.set_num_threads(threads)
    set_tf32(cfg["tf32"])
    paths = resolve_paths(cfg)
    check_destinations(paths, cfg["measure"])
    name = cfg["bench"]["name"]
    experiment = get_experiment(name)
    cfg, points = with_code_version(experiment, cfg, experiment.points(cfg))
    summary = RunSummary()
    if cfg["measure"]:
        log.info("%s: results in %s", name, paths["results_root"])
        summary = run_points(
            name,
            points,
            experiment.measure,
            results_root=paths["results_root"],
            force=cfg["force"],
            progress=cfg["progress"],
            remeasure_on_version_change=cfg["on_version_change"] == "remeasure",
        )
    log.info("%s: %s", name, summary)
    folder = tables_folder(name, cfg, paths["tables_root"], changes_setting(name, overrides))
    log.info("%s: tables in %s", name, folder)
    return summary, build_tables(
        name, cfg, [point_id(p) for p in points], paths["results_root"], folder
    )


def check_destinations(paths: Mapping[str, Path], measure: bool) -> None:
    """Where results and tables go can be written: checked before any model, as a run that
    measured for minutes could otherwise fail making its results folder (or its lock)."""
    if measure:
        check_writable(paths["results_root"], "paths.results_root (or paths.root)")
    check_writable(paths["tables_root"], "paths.tables_root (or paths.root)")


def with_code_version(
    experiment: Any, cfg: Mapping[str, Any], points: list[dict[str, Any]]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Put the grid's ``CODE_VERSION`` into every point's identity and the tables' setting.

    A grid bumps it when a change to what it measures changes its numbers: its points are then
    remeasured (their ids change) and its tables start afresh (the old ones move to a variant
    folder). Version 1 is the absence of the key, so results from before the key stay found.
    """
    version = getattr(experiment, "CODE_VERSION", 1)
    if version == 1:
        return dict(cfg), points
    return {**cfg, "code_version": version}, [{**p, "code_version": version} for p in points]
