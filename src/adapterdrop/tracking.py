"""Weights & Biases for every training and benchmark run, in one place.

Both apps log through ``conf/logger/wandb.yaml`` (``logger=none``: no run), offline by default:
the run is written under the run's own Hydra folder (``<it>/wandb/offline-run-*``) and uploaded
later with ``wandb sync``. One override goes online: ``logger.wandb.offline=false``, or
``WANDB_MODE=online`` in the environment (:func:`resolve_mode`).

A run holds

- its config, once: training logs :func:`adapterdrop.cli.train.result_config` (the config that
  identifies the result), a benchmark its resolved config; both add ``tracking`` (app,
  experiment, sweep folder and swept values);
- metrics with their step: training through Lightning (``trainer/global_step``), a benchmark one
  step per point, in the order the run handled them;
- the result as ``wandb.Table``: training ``eval_sweep``, one row per evaluated number of dropped
  layers n (every n with ``eval_sweep=true``) and a column per metric; a benchmark
  ``tables/<name>`` for each table the grid built, and ``points`` (step, point id, status);
- figures where there are any: training ``figures/eval_sweep`` (each metric against n);
- the raw result JSON as an artifact of type ``result`` (a benchmark: every point's file).

Runs are named ``<experiment>`` (the training experiment or the benchmark grid), in a multirun
``<experiment>[<swept values>]``, grouped by ``<experiment>`` or, in a multirun,
``<experiment>/<sweep folder>``, and tagged with the app, the experiment and each swept value
(``drop.n=3``). The swept keys are read from the sweep's ``multirun.yaml`` that Hydra writes
before the first job starts, so a job knows which of its overrides vary across the sweep.

:func:`wandb_logger` is the training logger's ``_target_``; :func:`train_run` wraps a training
run so that its W&B run, once Lightning is done with it, also gets the result and is finished;
:func:`log_benchmark` logs a measured grid; :func:`offline_runs` finds the offline runs that
``scripts/wandb_report.py`` asks to sync.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adapterdrop.results import ResultError, read_result, result_path

log = logging.getLogger(__name__)

MODES = ("online", "offline", "disabled")
#: ``WANDB_MODE`` values that mean the same as one of :data:`MODES`.
_MODE_ALIASES = {"dryrun": "offline", "run": "online"}
#: Longest W&B tag.
TAG_LENGTH = 64
#: Overrides that say where a job writes or how it runs, never shown as swept values.
_NOT_SWEPT = ("hydra", "paths", "logger", "data.data_dir", "data.cache_dir")


# ------------------------------------------------------------------------------- settings
def resolve_mode(offline: bool = True, environ: Mapping[str, str] | None = None) -> str:
    """``online``, ``offline`` or ``disabled``: online when ``offline`` is false or
    ``WANDB_MODE=online``, disabled with ``WANDB_MODE=disabled``, else offline (the Makefile
    exports ``WANDB_MODE=offline``, so ``logger.wandb.offline=false`` wins over it)."""
    env = os.environ if environ is None else environ
    raw = env.get("WANDB_MODE", "").strip().lower()
    mode = _MODE_ALIASES.get(raw, raw)
    if mode == "disabled":
        return "disabled"
    if mode == "online" or not offline:
        return "online"
    return "offline"


@dataclass
class RunInfo:
    """How a run is named, grouped and tagged, and what of a sweep it belongs to."""

    app: str
    experiment: str
    name: str
    group: str
    tags: list[str]
    #: ``{"dir", "id", "job", "swept": {key: value}}`` in a multirun, else ``None``.
    sweep: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def config(self) -> dict[str, Any]:
        return {"app": self.app, "experiment": self.experiment, "sweep": self.sweep}


def run_info(
    app: str,
    experiment: str,
    *,
    name: str | None = None,
    group: str | None = None,
    tags: Sequence[str] = (),
    sweep: Mapping[str, Any] | None = None,
) -> RunInfo:
    """Name, group and tags of a run of ``experiment`` (``sweep``: :func:`current_sweep` when
    not given)."""
    sweep = current_sweep() if sweep is None else dict(sweep) or None
    swept = (sweep or {}).get("swept", {})
    values = ",".join(f"{k}={v}" for k, v in swept.items())
    default_name = f"{experiment}[{values}]" if values else experiment
    default_group = f"{experiment}/{sweep['id']}" if sweep else experiment
    all_tags = [app, experiment, *(f"{k}={v}" for k, v in swept.items()), *tags]
    unique = list(dict.fromkeys(t[:TAG_LENGTH] for t in all_tags if t))
    return RunInfo(
        app=app,
        experiment=experiment,
        name=name or default_name,
        group=group or default_group,
        tags=unique,
        sweep=sweep,
    )


def current_sweep() -> dict[str, Any] | None:
    """This job's sweep (folder, id, job number and swept values) in a Hydra multirun, else
    ``None`` (a single run, or no Hydra at all: tests and notebooks)."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode
    except ImportError:  # pragma: no cover - hydra is a dependency
        return None
    if not HydraConfig.initialized():
        return None
    hydra = HydraConfig.get()
    if hydra.mode != RunMode.MULTIRUN:
        return None
    sweep_dir = Path(hydra.sweep.dir)
    job_overrides = list(hydra.overrides.task)
    keys = swept_keys(sweep_dir / "multirun.yaml")
    values = _override_values(job_overrides)
    if keys is None:  # no multirun.yaml: every override that is not about where it writes
        keys = [k for k in values if not _is_under(k, _NOT_SWEPT)]
    swept = {k: values[k] for k in keys if k in values}
    return {"dir": str(sweep_dir), "id": sweep_dir.name, "job": hydra.job.num, "swept": swept}


def swept_keys(multirun_yaml: Path) -> list[str] | None:
    """The keys a sweep varies, from the ``multirun.yaml`` Hydra saves in its folder: command-
    line sweeps (``drop.n=0,1``) and ``hydra.sweeper.params`` (``conf/sweep``) alike; ``None``
    when the file is not there."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf

    try:
        saved = OmegaConf.load(multirun_yaml)
    except (OSError, ValueError):
        return None
    hydra = saved.get("hydra", {})
    params = hydra.get("sweeper", {}).get("params")
    # A command-line sweep has no sweeper params (null), only swept overrides.
    plain = {} if params is None else OmegaConf.to_container(params, resolve=False)
    raw = [f"{k}={v}" for k, v in plain.items()]
    raw += list(hydra.get("overrides", {}).get("task", []))
    parser = OverridesParser.create()
    keys: list[str] = []
    for text in raw:
        try:
            override = parser.parse_override(text)
        except Exception:  # e.g. an interpolation only the sweep's own config resolves
            key = text.split("=", 1)[0].lstrip("+~")
            sweep = "," in text.split("=", 1)[-1] or "range(" in text
        else:
            key, sweep = override.get_key_element().lstrip("+~"), override.is_sweep_override()
        if sweep and key not in keys and not _is_under(key, _NOT_SWEPT):
            keys.append(key)
    return keys


def _override_values(overrides: Sequence[str]) -> dict[str, str]:
    values = {}
    for text in overrides:
        key, _, value = text.partition("=")
        values[key.lstrip("+~")] = value
    return values


def _is_under(key: str, prefixes: Sequence[str]) -> bool:
    return any(key == p or key.startswith((f"{p}.", f"{p}/")) for p in prefixes)


def hydra_output_dir() -> str | None:
    """The running Hydra job's folder, or ``None`` outside one."""
    from hydra.core.hydra_config import HydraConfig

    return HydraConfig.get().runtime.output_dir if HydraConfig.initialized() else None


def artifact_name(*parts: str) -> str:
    """A W&B artifact name from ``parts``: letters, digits, ``-``, ``_`` and ``.`` only."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", "-".join(p for p in parts if p)).strip("-")


# ------------------------------------------------------------------------------- training
def wandb_logger(
    *,
    project: str,
    entity: str | None = None,
    offline: bool = True,
    experiment: str | None = None,
    name: str | None = None,
    group: str | None = None,
    tags: Sequence[str] = (),
    job_type: str | None = None,
    save_dir: str | None = None,
    log_model: bool | str = False,
    **init: Any,
):
    """Lightning's ``WandbLogger`` for a training run (``conf/logger/wandb.yaml``), named,
    grouped and tagged by :func:`run_info`, in the mode :func:`resolve_mode` gives.

    The mode reaches ``wandb.init`` as ``mode``; Lightning's own ``offline`` flag is never set,
    as it would rewrite ``WANDB_MODE`` for the rest of the process."""
    from pytorch_lightning.loggers import WandbLogger

    info = run_info("train", experiment or "train", name=name, group=group, tags=tags)
    config = {**init.pop("config", {}), "tracking": info.config()}
    return WandbLogger(
        project=project,
        entity=entity,
        name=info.name,
        group=info.group,
        tags=info.tags,
        job_type=job_type or "train",
        save_dir=save_dir or hydra_output_dir() or ".",
        log_model=log_model,
        mode=resolve_mode(offline),
        config=config,
        **init,
    )


#: Depth of :func:`train_run` contexts: inside one, :func:`close_loggers` leaves the W&B run
#: open for the context to log the result into and finish.
_TRAIN_RUNS: list[bool] = []


def _active_run() -> Any:
    """``wandb.run`` when wandb was imported and a run is open (never imports wandb)."""
    wandb = sys.modules.get("wandb")
    return getattr(wandb, "run", None) if wandb is not None else None


def close_loggers(loggers: Sequence[Any]) -> None:
    """Finish the W&B run of ``loggers``, so that the next job of a multirun starts its own;
    inside :func:`train_run` that is left to it (after it logged the result)."""
    if _TRAIN_RUNS or _active_run() is None:
        return
    if any(type(logger).__name__ == "WandbLogger" for logger in loggers):
        _active_run().finish()


@contextlib.contextmanager
def train_run(root: Path | str, experiment: str, pid: str) -> Iterator[None]:
    """Around one training run (result ``<root>/<experiment>/<pid>[.failed].json``): when the
    run opened a W&B run, log its result into it on the way out (:func:`log_train_result`, the
    failed record if the run raised) and finish it (exit code 1 on failure)."""
    before = _active_run()  # a run opened elsewhere (a notebook's) is left alone
    _TRAIN_RUNS.append(True)
    failed = False
    try:
        yield
    except BaseException:
        failed = True
        raise
    finally:
        _TRAIN_RUNS.pop()
        run = _active_run()
        if run is not None and run is not before and not _TRAIN_RUNS:
            try:
                path = result_path(root, experiment, pid, "failed" if failed else "ok")
                if path.is_file():
                    log_train_result(run, read_result(path), path)
            except Exception as err:  # the result is written: W&B must not fail the run
                log.warning("W&B: could not log the result: %s", err)
            finally:
                run.finish(exit_code=1 if failed else 0)


def eval_sweep_rows(
    metrics: Mapping[str, Any], default_n: int = 0
) -> tuple[list[str], list[list[Any]]]:
    """The result table of a training run: columns ``n`` and one per metric, a row per
    evaluated depth. ``val/<metric>@n=<k>`` keys give one row per k (``eval_sweep=true``);
    without them the plain ``val/*`` metrics make one row at ``default_n``."""
    pattern = re.compile(r"^(?P<metric>[^@]+)@n=(?P<n>\d+)$")
    by_n: dict[int, dict[str, float]] = {}
    for key, value in metrics.items():
        match = pattern.match(key)
        if match and _is_number(value):
            by_n.setdefault(int(match["n"]), {})[match["metric"]] = float(value)
    if not by_n:
        plain = {k: float(v) for k, v in metrics.items() if k.startswith("val/") and _is_number(v)}
        if plain:
            by_n[default_n] = plain
    names = sorted({m for row in by_n.values() for m in row})
    rows = [[n, *(by_n[n].get(m) for m in names)] for n in sorted(by_n)]
    return ["n", *names], rows


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _default_eval_n(config: Mapping[str, Any]) -> int:
    from adapterdrop.train.module import DropConfig

    drop = dict(config.get("drop") or {})
    try:
        return DropConfig(
            **{k: drop[k] for k in ("mode", "n", "eval_n") if k in drop}
        ).default_eval_n
    except (TypeError, ValueError):
        return 0


def eval_sweep_figure(columns: Sequence[str], rows: Sequence[Sequence[Any]], title: str = ""):
    """Each metric (losses aside) against the number of dropped layers n, or ``None`` with
    fewer than two depths."""
    if len(rows) < 2:
        return None
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    ns = [row[0] for row in rows]
    for index, name in enumerate(columns[1:], start=1):
        if name.endswith("loss"):
            continue
        ax.plot(ns, [row[index] for row in rows], marker="o", label=name)
    ax.set_xlabel("dropped layers n")
    ax.set_ylabel("score")
    ax.set_title(title)
    ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


def log_train_result(run: Any, record: Mapping[str, Any], path: Path) -> None:
    """The result of a training run into its W&B run: the eval-sweep table, its figure and
    the result JSON as an artifact."""
    import wandb

    metrics = record.get("metrics", {})
    columns, rows = eval_sweep_rows(metrics, _default_eval_n(record.get("config", {})))
    if rows:
        run.log({"eval_sweep": wandb.Table(columns=columns, data=rows)})
        fig = eval_sweep_figure(columns, rows, title=f"{record['experiment']} {record['point_id']}")
        if fig is not None:
            import matplotlib.pyplot as plt

            run.log({"figures/eval_sweep": wandb.Image(fig)})
            plt.close(fig)
    run.summary["result/status"] = record["status"]
    run.summary["result/point_id"] = record["point_id"]
    artifact = wandb.Artifact(
        artifact_name("train", record["experiment"], record["point_id"]),
        type="result",
        metadata={"status": record["status"], "kind": record["kind"]},
    )
    artifact.add_file(str(path))
    run.log_artifact(artifact)


# ------------------------------------------------------------------------------ benchmarks
def parse_markdown_table(markdown: str) -> tuple[list[str], list[list[Any]]]:
    """Columns and rows of the first pipe table in ``markdown`` (as the grids write them),
    numbers as numbers and blank cells as ``None``."""
    lines = [line.strip() for line in markdown.splitlines()]
    start = next((i for i, line in enumerate(lines) if line.startswith("|")), None)
    if start is None:
        return [], []
    block = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        block.append([cell.strip() for cell in line.strip("|").split("|")])
    header, body = block[0], block[1:]
    if body and all(re.fullmatch(r":?-+:?", cell) for cell in body[0] if cell):
        body = body[1:]
    columns = [name or f"column_{i}" for i, name in enumerate(header)]
    return columns, [
        [_cell(cell) for cell in row] + [None] * (len(columns) - len(row)) for row in body
    ]


def _cell(text: str) -> Any:
    if text == "":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def flat_numbers(value: Any, prefix: str = "") -> dict[str, float]:
    """Every finite number in nested dicts and lists, keyed by its ``/``-joined path."""
    out: dict[str, float] = {}
    if isinstance(value, Mapping):
        for key, item in value.items():
            out |= flat_numbers(item, f"{prefix}/{key}" if prefix else str(key))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            out |= flat_numbers(item, f"{prefix}/{index}")
    elif _is_number(value):
        out[prefix] = float(value)
    return out


def machine_tag(cfg: Mapping[str, Any]) -> str:
    """The machine a benchmark config measures on (``machine``, or the hardware's tag)."""
    if cfg.get("machine", "auto") != "auto":
        return str(cfg["machine"])
    import torch

    from adapterdrop.bench.devices import resolve_device
    from adapterdrop.bench.machine import fingerprint, tag

    return tag(fingerprint(resolve_device(cfg.get("device", "auto")), torch.get_num_threads()))


def log_benchmark(
    cfg: Mapping[str, Any],
    summary: Any,
    tables: Mapping[str, str],
    results_root: Path | str,
    wandb_cfg: Mapping[str, Any] | None,
) -> Path | None:
    """Log a measured grid (resolved config ``cfg``, its :class:`RunSummary` and tables) as one
    W&B run per ``wandb_cfg`` (``logger.wandb``; ``None``: nothing) and return the run's folder.

    Called after the grid is measured, so W&B's service never runs beside a timing."""
    if not wandb_cfg:
        return None
    mode = resolve_mode(wandb_cfg.get("offline", True))
    if mode == "disabled":
        return None
    import wandb

    grid = cfg["bench"]["name"]
    info = run_info(
        "bench",
        wandb_cfg.get("experiment") or grid,
        name=wandb_cfg.get("name"),
        group=wandb_cfg.get("group"),
        tags=[*(wandb_cfg.get("tags") or ()), machine_tag(cfg)],
    )
    config = {k: v for k, v in cfg.items() if k not in ("logger", "hydra")}
    run = wandb.init(
        project=wandb_cfg.get("project", "adapterdrop"),
        entity=wandb_cfg.get("entity"),
        name=info.name,
        group=info.group,
        tags=info.tags,
        job_type=wandb_cfg.get("job_type") or "bench",
        dir=wandb_cfg.get("save_dir") or hydra_output_dir() or ".",
        mode=mode,
        config={**config, "tracking": info.config()},
        reinit="finish_previous",
    )
    points = [
        *((pid, "ok") for pid in (*summary.measured, *summary.skipped)),
        *((pid, "failed") for pid in summary.failed),
    ]
    files: list[Path] = []
    rows = []
    try:
        for step, (pid, status) in enumerate(points):
            path = result_path(results_root, grid, pid, status)
            try:
                record = read_result(path)
            except ResultError as err:
                log.warning("W&B: %s", err)
                continue
            files.append(path)
            rows.append([step, pid, status, str(path)])
            run.log(flat_numbers(record.get("metrics", {})), step=step)
        logged: dict[str, Any] = {
            "points": wandb.Table(columns=["step", "point_id", "status", "path"], data=rows)
        }
        for name, markdown in tables.items():
            columns, table_rows = parse_markdown_table(markdown)
            if columns:
                # A column may mix estimates with their CI ("1.31 [1.26, 1.37]") and plain
                # numbers (the paper's row): a display table, so mixed types are fine.
                logged[f"tables/{name}"] = wandb.Table(
                    columns=columns, data=table_rows, allow_mixed_types=True
                )
        run.log(logged, step=len(points))
        run.summary.update(
            {"measured": len(summary.measured), "skipped": len(summary.skipped)}
            | {"failed": len(summary.failed)}
        )
        if files:
            artifact = wandb.Artifact(
                artifact_name("bench", grid, machine_tag(cfg)),
                type="result",
                metadata={"grid": grid},
            )
            for path in files:
                artifact.add_file(str(path), name=path.name)
            run.log_artifact(artifact)
    finally:
        folder = Path(run.dir).parent if getattr(run, "dir", None) else None
        run.finish(exit_code=1 if summary.failed else 0)
    return folder


# ------------------------------------------------------------------------- offline runs
def offline_runs(*roots: Path | str) -> list[Path]:
    """Every offline run folder under ``roots`` (``outputs/``, ``multirun/``), sorted."""
    found = []
    for root in roots:
        if Path(root).is_dir():
            found += [p for p in Path(root).rglob("offline-run-*") if p.is_dir()]
    return sorted(found)
