"""Failed jobs of a Hydra multirun are each recorded and listed at the end, and fail the sweep
(a Ctrl-C stops it at once);
:class:`SweepProgress` says before each job how far the sweep is and when it should end.

Hydra's sweepers run every job of a batch and then re-raise only the first failure, so a sweep
with three bad jobs named one. Here each job writes ``job_status.json`` in its own output folder
and returns normally; :class:`FailedJobsSummary` (a Hydra callback, in the parent process for
every launcher: basic, joblib, submitit) reads them all when the sweep ends, logs one line per
failed job and exits non-zero. A single run (no ``-m``) still raises as before.
"""

from __future__ import annotations

import functools
import json
import logging
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

from adapterdrop.results import atomic_write_text

log = logging.getLogger(__name__)

STATUS_FILE = "job_status.json"


def sweep_job(task: Callable[[DictConfig], Any]) -> Callable[[DictConfig], Any]:
    """In a multirun, record ``task``'s outcome in the job's folder instead of raising."""

    @functools.wraps(task)
    def run(cfg: DictConfig) -> Any:
        hydra = HydraConfig.get()
        if hydra.mode != RunMode.MULTIRUN:
            return task(cfg)
        status: dict[str, Any] = {"job": hydra.job.num, "overrides": list(hydra.overrides.task)}
        path = Path(hydra.runtime.output_dir) / STATUS_FILE
        try:
            value = task(cfg)
        except (Exception, SystemExit, KeyboardInterrupt) as err:
            if isinstance(err, SystemExit) and not err.code:
                raise
            if interrupted(err):  # Ctrl-C stops the sweep, not only the job it lands in
                _write_status(path, status | {"status": "interrupted", "error": "Ctrl-C"})
                raise KeyboardInterrupt(f"sweep interrupted in job {hydra.job.num}") from err
            status |= {"status": "failed", "error": _describe(err)}
            log.error("job %s failed: %s", hydra.job.num, status["error"])
            log.debug("%s", traceback.format_exc())
            value = None
        else:
            status["status"] = "ok"
        _write_status(path, status)
        return value

    return run


def _write_status(path: Path, status: dict[str, Any]) -> None:
    atomic_write_text(path, json.dumps(status, indent=2) + "\n")


def interrupted(err: BaseException) -> bool:
    """A Ctrl-C: the KeyboardInterrupt itself, or the ``SystemExit(1)`` that Lightning raises
    after a graceful shutdown from one (it then ignores further Ctrl-C for the process)."""
    if isinstance(err, KeyboardInterrupt):
        return True
    return isinstance(err, SystemExit) and isinstance(err.__context__, KeyboardInterrupt)


def _describe(err: BaseException) -> str:
    if isinstance(err, SystemExit):
        return str(err.code)
    return f"{type(err).__name__}: {err}"


def failed_jobs(sweep_dir: Path) -> tuple[int, list[dict[str, Any]]]:
    """How many jobs recorded a status under ``sweep_dir``, and the failed ones by job number."""
    statuses = [json.loads(p.read_text()) for p in sweep_dir.glob(f"*/{STATUS_FILE}")]
    failed = sorted((s for s in statuses if s["status"] != "ok"), key=lambda s: s["job"])
    return len(statuses), failed


class FailedJobsSummary(Callback):
    """At the end of a multirun: one line per failed job, then a non-zero exit.

    At its start, statuses an earlier sweep left in the same folder (``hydra.sweep.dir`` given
    twice) are removed, so that only this sweep's jobs are counted."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        for stale in Path(config.hydra.sweep.dir).glob(f"*/{STATUS_FILE}"):
            stale.unlink(missing_ok=True)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        total, failed = failed_jobs(Path(config.hydra.sweep.dir))
        if not failed:
            return
        lines = [
            f"  job {s['job']} ({' '.join(s['overrides'])}): {s['error'].splitlines()[0]}"
            for s in failed
        ]
        raise SystemExit(f"{len(failed)} of {total} job(s) failed:\n" + "\n".join(lines))


def sweep_size(config: DictConfig) -> int:
    """How many jobs the multirun of ``config`` runs, as Hydra's basic sweeper expands them:
    its ``hydra.sweeper.params`` first, the command line's overrides after."""
    params = [f"{k}={v}" for k, v in (config.hydra.sweeper.get("params") or {}).items()]
    parser = OverridesParser.create()
    overrides = parser.parse_overrides([*params, *config.hydra.overrides.task])
    return sum(len(batch) for batch in BasicSweeper.split_arguments(overrides, None))


class SweepProgress(Callback):
    """Before each job of a multirun: ``job 3/40, 12 min elapsed, about 2:10 h left``, the time
    left from the mean of the jobs so far (a job skipped as already measured counts too). With
    the basic launcher jobs run in this process; a launcher that runs them elsewhere gets the
    job's number only."""

    def __init__(self) -> None:
        self.total: int | None = None
        self.started: float | None = None
        self.done = 0

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.total, self.started, self.done = sweep_size(config), time.monotonic(), 0

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        hydra = HydraConfig.get()
        if hydra.mode != RunMode.MULTIRUN:  # a single run has no job number (nor a sweep)
            return
        number = hydra.job.num + 1
        if self.total is None or self.started is None:
            log.info("job %d", number)
            return
        elapsed = time.monotonic() - self.started
        left = ""
        if self.done:
            left = f", about {_clock(elapsed / self.done * (self.total - self.done))} left"
        log.info("job %d/%d, %s elapsed%s", number, self.total, _clock(elapsed), left)

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        self.done += 1


def _clock(seconds: float) -> str:
    minutes = round(seconds / 60)
    return f"{minutes // 60}:{minutes % 60:02d} h" if minutes >= 60 else f"{minutes} min"
