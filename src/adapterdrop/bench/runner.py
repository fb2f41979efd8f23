"""Run a sweep of points resumably: measure what is missing, record everything, skip the rest.

Points are identified by their config hash, so an interrupted or extended sweep picks up
exactly where it stopped. A failing point is recorded (with its traceback, beside any earlier
success of the point) instead of losing the sweep; Ctrl-C stops at once and, because writes
are atomic, leaves no partial file behind. One run at a time measures an experiment's folder:
a second one is refused at once (they would slow each other's timings and race to write).
"""

from __future__ import annotations

import copy
import json
import logging
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from adapterdrop.bench.environment import collect_environment
from adapterdrop.bench.machine import version_changes
from adapterdrop.results import (
    DEFAULT_RESULTS_ROOT,
    KINDS,
    canonical_json,
    check_experiment_name,
    is_measured,
    locked,
    make_result,
    point_id,
    read_result,
    remove_orphan_temporaries,
    result_path,
    write_result,
)

logger = logging.getLogger(__name__)

Metrics = Mapping[str, Any]
Samples = Mapping[str, Sequence[float]]
MeasureFn = Callable[[dict[str, Any]], tuple[Metrics, Samples]]


@dataclass
class RunSummary:
    """Point ids of a sweep by outcome, in the order they were handled."""

    measured: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    #: ``point id -> "Type: message"`` of each failed point.
    errors: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return (
            f"measured {len(self.measured)}, skipped {len(self.skipped)}, failed {len(self.failed)}"
        )

    def failure_report(self, experiment: str) -> str:
        """One line per failed point, naming its result file's id and the error."""
        return "\n".join(f"  {experiment}/{pid}: {self.errors[pid]}" for pid in self.failed)


def _check_points(points: Sequence[Mapping[str, Any]]) -> list[str]:
    """Hash every point before any work so a bad config fails in seconds, not hours."""
    ids: list[str] = []
    seen: dict[str, int] = {}
    for index, point in enumerate(points):
        if not isinstance(point, Mapping):
            raise TypeError(f"point {index} must be a mapping, got {type(point).__name__}")
        try:
            pid = point_id(point)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"point {index} is not JSON-serialisable: {exc}") from exc
        if pid in seen:
            raise ValueError(f"points {seen[pid]} and {index} have the same config ({pid})")
        seen[pid] = index
        ids.append(pid)
    return ids


def _error_block(exc: BaseException) -> dict[str, str]:
    return {
        "type": type(exc).__name__,
        "message": str(exc),
        "traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
    }


def run_points(
    experiment: str,
    points: Sequence[Mapping[str, Any]],
    measure: MeasureFn,
    *,
    results_root: Path | str = DEFAULT_RESULTS_ROOT,
    kind: str = "bench",
    force: bool = False,
    progress: bool = True,
    raise_on_error: bool = False,
    environment: Callable[[], Mapping[str, Any]] = collect_environment,
    remeasure_on_version_change: bool = False,
) -> RunSummary:
    """Measure every point of ``experiment`` that has no valid result yet.

    ``measure(config)`` returns ``(metrics, samples)``; the environment is collected right
    after it so the timestamp and git state describe the measurement. ``measure`` receives
    the config as plain JSON values (tuples become lists), exactly as it is recorded.
    ``force`` redoes points that are already measured; ``remeasure_on_version_change`` redoes
    those measured with other versions of the timed packages (warning which). An exception in
    ``measure`` is written as a ``failed`` result and the sweep continues, unless
    ``raise_on_error`` re-raises it after recording. The progress bar only counts points that
    need work, so its ETA is honest.
    """
    check_experiment_name(experiment)
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    ids = _check_points(points)
    folder = Path(results_root) / experiment
    with locked(folder):
        for orphan in remove_orphan_temporaries(folder):
            logger.info("removed %s, left by an interrupted write", orphan)
        return _run_locked(
            experiment,
            list(zip(ids, points, strict=True)),
            measure,
            results_root=results_root,
            kind=kind,
            force=force,
            progress=progress,
            raise_on_error=raise_on_error,
            environment=environment,
            remeasure_on_version_change=remeasure_on_version_change,
        )


def _run_locked(
    experiment: str,
    points: list[tuple[str, Mapping[str, Any]]],
    measure: MeasureFn,
    *,
    results_root: Path | str,
    kind: str,
    force: bool,
    progress: bool,
    raise_on_error: bool,
    environment: Callable[[], Mapping[str, Any]],
    remeasure_on_version_change: bool,
) -> RunSummary:
    summary = RunSummary()
    pending: list[tuple[str, dict[str, Any]]] = []
    for pid, point in points:
        measured = not force and is_measured(results_root, experiment, pid)
        if measured and remeasure_on_version_change:
            stored = read_result(result_path(results_root, experiment, pid))["environment"]
            changes = version_changes(stored)
            if changes:
                listing = ", ".join(f"{k} {old} -> {new}" for k, (old, new) in changes.items())
                logger.warning(
                    "%s/%s was measured with other versions (%s): remeasuring "
                    "(on_version_change=keep keeps it)",
                    experiment,
                    pid,
                    listing,
                )
                measured = False
        if measured:
            summary.skipped.append(pid)
        else:
            pending.append((pid, json.loads(canonical_json(point))))
    if summary.skipped:
        logger.info("%s: %d point(s) already measured, skipping", experiment, len(summary.skipped))

    with tqdm(pending, desc=experiment, unit="point", disable=not progress) as bar:
        for pid, config in bar:
            bar.set_postfix_str(pid)
            try:
                # measure gets its own copy: mutating it must not change the recorded config.
                metrics, samples = measure(copy.deepcopy(config))
                record = make_result(
                    experiment=experiment,
                    config=config,
                    environment=environment(),
                    kind=kind,
                    metrics=metrics,
                    samples=samples,
                )
            except Exception as exc:
                record = make_result(
                    experiment=experiment,
                    config=config,
                    environment=environment(),
                    kind=kind,
                    error=_error_block(exc),
                )
                write_result(record, results_root)
                summary.failed.append(pid)
                summary.errors[pid] = f"{type(exc).__name__}: {exc}"
                logger.error("%s/%s failed: %s: %s", experiment, pid, type(exc).__name__, exc)
                if raise_on_error:
                    raise
                continue
            write_result(record, results_root)
            summary.measured.append(pid)
    logger.info("%s: %s", experiment, summary)
    return summary
