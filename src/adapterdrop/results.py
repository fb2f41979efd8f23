"""One JSON schema for every measured point (benchmarks and training runs), written atomically.

A point lives at ``<root>/<experiment>/<point_id>.json`` where ``point_id`` is a hash of
its resolved config, so re-running a sweep finds earlier work by config alone. A failed
attempt is kept beside it as ``<point_id>.failed.json``, so a failure never replaces a
success; a later success removes the failure. Files are written to a temporary sibling,
fsynced and renamed, so a crash or Ctrl-C never leaves a half-written result (a temporary
left by ``kill -9`` is removed by the next run that holds the folder's lock); a file that is
nevertheless invalid (edited, truncated by a full disk, from an older schema) is reported and
treated as not measured.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import math
import os
import tempfile
import warnings
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

SCHEMA_VERSION = 1
#: ``bench``: a benchmark point; ``train``: a training run (fit, then evaluation); ``eval``: a
#: saved adapter evaluated (``python -m adapterdrop.cli.eval``).
KINDS = ("bench", "train", "eval")
STATUSES = ("ok", "failed")
#: Hex digits of the sha256 kept as the point id: 64 bits make collisions within one
#: experiment negligible while keeping file names readable.
POINT_ID_LENGTH = 16
DEFAULT_RESULTS_ROOT = Path("results/raw")
FAILED_SUFFIX = ".failed.json"
LOCK_NAME = ".lock"

_REQUIRED = {
    "schema_version": int,
    "kind": str,
    "experiment": str,
    "point_id": str,
    "status": str,
    "config": dict,
    "environment": dict,
    "metrics": dict,
    "samples": dict,
    "created_at": str,
}
_ERROR_KEYS = ("type", "message", "traceback")
#: Optional top-level key: files a point wrote or read, by role (``{"adapter": "<folder>"}``).
#: Where they are, not what was computed, so not part of the config or its point id.
ARTEFACTS_KEY = "artefacts"


class ResultError(ValueError):
    """A result file or record does not follow the schema."""


def to_jsonable(obj: Any, *, nonfinite_to_null: bool = True) -> Any:
    """Convert numpy scalars/arrays, dataclasses, mappings and tuples to plain JSON values.

    JSON has no NaN or infinity; with ``nonfinite_to_null`` they become ``null`` (a CV of
    a zero mean, say), otherwise they raise so that a config can never hash ambiguously.
    """
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        obj = obj.to_dict() if hasattr(obj, "to_dict") else dataclasses.asdict(obj)
    if isinstance(obj, np.ndarray | np.generic):
        obj = obj.tolist()
    if isinstance(obj, Mapping):
        out = {}
        for key, value in obj.items():
            if not isinstance(key, str):
                raise TypeError(f"JSON object keys must be str, got {key!r}")
            out[key] = to_jsonable(value, nonfinite_to_null=nonfinite_to_null)
        return out
    if isinstance(obj, list | tuple):
        return [to_jsonable(v, nonfinite_to_null=nonfinite_to_null) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        if nonfinite_to_null:
            return None
        raise ValueError(f"non-finite float {obj} is not valid JSON")
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    raise TypeError(f"{type(obj).__name__} is not JSON-serialisable: {obj!r}")


def canonical_json(config: Mapping[str, Any]) -> str:
    """Deterministic JSON text of a config: sorted keys, no whitespace, ASCII only."""
    plain = to_jsonable(config, nonfinite_to_null=False)
    return json.dumps(plain, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def point_id(config: Mapping[str, Any]) -> str:
    """Stable id of a point: first 16 hex digits of sha256 of its canonical JSON config."""
    digest = hashlib.sha256(canonical_json(config).encode("ascii")).hexdigest()
    return digest[:POINT_ID_LENGTH]


def utc_now() -> str:
    return datetime.now(UTC).isoformat()


def make_result(
    *,
    experiment: str,
    config: Mapping[str, Any],
    environment: Mapping[str, Any],
    kind: str = "bench",
    metrics: Mapping[str, Any] | None = None,
    samples: Mapping[str, Sequence[float]] | None = None,
    error: Mapping[str, str] | None = None,
    artefacts: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Build a validated result record; ``error`` (type/message/traceback) marks it failed;
    ``artefacts`` names files the point wrote or read (role -> path)."""
    record = {
        "schema_version": SCHEMA_VERSION,
        "kind": kind,
        "experiment": experiment,
        "point_id": point_id(config),
        "status": "failed" if error is not None else "ok",
        "config": to_jsonable(config, nonfinite_to_null=False),
        "environment": to_jsonable(environment),
        "metrics": to_jsonable(metrics or {}),
        "samples": to_jsonable(samples or {}),
        "created_at": utc_now(),
    }
    if error is not None:
        record["error"] = to_jsonable(error)
    if artefacts:
        record[ARTEFACTS_KEY] = {role: str(path) for role, path in artefacts.items()}
    validate_result(record)
    return record


def _is_finite_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def validate_result(record: Any) -> None:
    """Raise :class:`ResultError` describing the first way ``record`` breaks the schema."""
    if not isinstance(record, dict):
        raise ResultError(f"result must be a JSON object, got {type(record).__name__}")
    for key, typ in _REQUIRED.items():
        if key not in record:
            raise ResultError(f"missing key {key!r}")
        value = record[key]
        if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
            raise ResultError(f"{key!r} must be {typ.__name__}, got {type(value).__name__}")
    if record["schema_version"] != SCHEMA_VERSION:
        raise ResultError(f"schema_version {record['schema_version']} != {SCHEMA_VERSION}")
    if record["kind"] not in KINDS:
        raise ResultError(f"kind {record['kind']!r} not in {KINDS}")
    if record["status"] not in STATUSES:
        raise ResultError(f"status {record['status']!r} not in {STATUSES}")
    try:
        expected_id = point_id(record["config"])
    except (TypeError, ValueError) as exc:
        raise ResultError(f"config cannot be hashed: {exc}") from exc
    if record["point_id"] != expected_id:
        raise ResultError(f"point_id {record['point_id']!r} != config hash {expected_id!r}")
    for name, values in record["samples"].items():
        if not isinstance(values, list) or not all(_is_finite_number(v) for v in values):
            raise ResultError(f"samples[{name!r}] must be a list of finite numbers")
    error = record.get("error")
    if record["status"] == "failed":
        if not isinstance(error, dict) or any(
            not isinstance(error.get(k), str) for k in _ERROR_KEYS
        ):
            raise ResultError(f"failed result needs an 'error' object with {_ERROR_KEYS}")
    elif error is not None:
        raise ResultError("an 'ok' result must not carry an 'error'")
    artefacts = record.get(ARTEFACTS_KEY)
    if artefacts is not None and not (
        isinstance(artefacts, dict)
        and all(isinstance(k, str) and isinstance(v, str) and v for k, v in artefacts.items())
    ):
        raise ResultError(f"{ARTEFACTS_KEY!r} must map names to non-empty path strings")


def check_experiment_name(experiment: str) -> None:
    """An experiment names one directory under the results root, nothing more."""
    if not experiment or any(c in experiment for c in "/\\") or experiment.startswith("."):
        raise ValueError(f"experiment must be a plain directory name, got {experiment!r}")


def check_writable(folder: Path, setting: str = "paths.results_root") -> None:
    """``folder`` exists and is writable, or can be created: a folder can be made (and is
    removed again) in its nearest existing ancestor. Permission bits alone do not tell (root
    passes ``os.access`` on ``/proc``). ``setting`` is the key that chose it."""
    probe = folder
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    try:
        if not probe.is_dir():
            raise NotADirectoryError(f"{probe} is not a directory")
        os.rmdir(tempfile.mkdtemp(dir=probe, prefix=".write-check-"))
    except OSError as err:
        raise PermissionError(
            f"folder {folder} cannot be written ({probe} is not a writable directory: {err}): "
            f"set {setting} to a writable folder"
        ) from None


def result_path(root: Path | str, experiment: str, pid: str, status: str = "ok") -> Path:
    """Where the result of point ``pid`` of ``experiment`` lives: ``<pid>.json`` for a
    success, ``<pid>.failed.json`` for the last failed attempt."""
    check_experiment_name(experiment)
    if status not in STATUSES:
        raise ValueError(f"status {status!r} not in {STATUSES}")
    return Path(root) / experiment / (f"{pid}.json" if status == "ok" else f"{pid}{FAILED_SUFFIX}")


def atomic_write_text(path: Path | str, text: str) -> None:
    """Write ``text`` so that ``path`` holds either the old content or all of the new.

    The temporary file sits in the same directory (``os.replace`` is only atomic within a
    filesystem) and ends in ``.tmp`` so ``.gitignore`` and the loader both skip it; it is
    removed on any exception, Ctrl-C included.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; results are shared files
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def remove_orphan_temporaries(directory: Path | str, stem: str = "") -> list[Path]:
    """Delete temporaries of :func:`atomic_write_text` (of files starting with ``stem``) that a
    killed writer left behind. Call it only while holding the folder's (or point's) lock, as a
    live writer's temporary looks the same."""
    orphans = sorted(Path(directory).glob(f".{stem}*.tmp"))
    for orphan in orphans:
        orphan.unlink(missing_ok=True)
    return orphans


class ResultsLocked(RuntimeError):
    """Another run holds the lock of a results folder or point."""


@contextlib.contextmanager
def locked(directory: Path | str, name: str = LOCK_NAME) -> Iterator[Path]:
    """Hold an exclusive lock on ``<directory>/<name>`` (``flock``: released by the kernel when
    the process dies, so a killed run never leaves a stale lock) or refuse at once, naming the
    holder. Two runs measuring one folder would slow each other's timings and race to write."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    with open(path, "a+", encoding="utf-8") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            raise ResultsLocked(
                f"{directory} is in use by {holder}; wait for it to finish, or give this run its "
                "own folder (paths.root=... or machine=...)"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()} since {utc_now()}\n")
        fh.flush()
        try:
            yield path
        finally:
            fh.seek(0)
            fh.truncate()
            fcntl.flock(fh, fcntl.LOCK_UN)


def _fsync_dir(directory: Path) -> None:
    """Persist the rename itself; not every platform lets a directory be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_result(record: Mapping[str, Any], root: Path | str = DEFAULT_RESULTS_ROOT) -> Path:
    """Validate ``record`` and write it atomically to its canonical path; return the path.

    A failure goes to ``<pid>.failed.json`` and leaves a successful ``<pid>.json`` alone; a
    success replaces the point's earlier failure, if any.
    """
    record = dict(record)
    validate_result(record)
    experiment, pid, status = record["experiment"], record["point_id"], record["status"]
    path = result_path(root, experiment, pid, status)
    atomic_write_text(path, json.dumps(record, indent=2, sort_keys=True, allow_nan=False) + "\n")
    if status == "ok":
        result_path(root, experiment, pid, "failed").unlink(missing_ok=True)
    return path


def read_result(path: Path | str) -> dict[str, Any]:
    """Load and validate one result file; :class:`ResultError` names the file on any defect."""
    path = Path(path)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        validate_result(record)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, ResultError) as exc:
        raise ResultError(f"{path}: {exc}") from exc
    expected = f"{record['point_id']}{'.json' if record['status'] == 'ok' else FAILED_SUFFIX}"
    if path.name != expected or record["experiment"] != path.parent.name:
        raise ResultError(
            f"{path}: file holds {record['experiment']}/{record['point_id']}, not its path"
        )
    return record


def is_measured(root: Path | str, experiment: str, pid: str) -> bool:
    """True if a valid, successful result exists; corrupt, failed or missing points are redone."""
    path = result_path(root, experiment, pid)
    if not path.exists():
        return False
    try:
        return read_result(path)["status"] == "ok"
    except ResultError:
        return False


def iter_result_files(root: Path | str, experiment: str | None = None) -> Iterator[Path]:
    """Result files under ``root`` (one experiment or all), failures included, sorted;
    temporaries and locks excluded."""
    if experiment is not None:
        check_experiment_name(experiment)
    pattern = f"{experiment}/*.json" if experiment else "*/*.json"
    yield from sorted(p for p in Path(root).glob(pattern) if not p.name.startswith("."))


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, dict) and value:
        for key, sub in value.items():
            _flatten(f"{prefix}.{key}", sub, out)
    else:
        out[prefix] = value


def flatten_result(record: Mapping[str, Any], path: Path | str | None = None) -> dict[str, Any]:
    """One table row: top-level scalars, nested ``config.*``/``metrics.*``/``environment.*``
    columns (dots join nested keys), ``artefacts.<role>`` paths, ``samples.<name>`` holding
    the raw lists."""
    row: dict[str, Any] = {
        key: record.get(key)
        for key in ("experiment", "point_id", "kind", "status", "created_at", "schema_version")
    }
    row["path"] = None if path is None else str(path)
    error = record.get("error")
    row["error"] = None if error is None else f"{error['type']}: {error['message']}"
    for section in ("config", "metrics", "environment"):
        for key, value in record[section].items():
            _flatten(f"{section}.{key}", value, row)
    for role, artefact in record.get(ARTEFACTS_KEY, {}).items():
        row[f"{ARTEFACTS_KEY}.{role}"] = artefact
    for name, values in record["samples"].items():
        row[f"samples.{name}"] = values
    return row


def load_results(
    root: Path | str = DEFAULT_RESULTS_ROOT,
    experiment: str | None = None,
    *,
    strict: bool = False,
) -> pd.DataFrame:
    """All results under ``root`` as a DataFrame, one row per point.

    Every file is validated. With ``strict`` the first bad file raises
    :class:`ResultError` naming it; otherwise bad files are skipped, announced with a
    warning, and listed as ``(path, reason)`` pairs in ``df.attrs["bad_files"]``.
    """
    rows: list[dict[str, Any]] = []
    bad: list[tuple[str, str]] = []
    for path in iter_result_files(root, experiment):
        try:
            rows.append(flatten_result(read_result(path), path))
        except ResultError as exc:
            if strict:
                raise
            bad.append((str(path), str(exc)))
    if bad:
        listing = "\n".join(f"  {reason}" for _, reason in bad)
        warnings.warn(f"skipped {len(bad)} invalid result file(s):\n{listing}", stacklevel=2)
    base = ["experiment", "point_id", "kind", "status", "created_at", "schema_version", "path"]
    df = pd.DataFrame(rows, columns=None if rows else [*base, "error"])
    if rows:
        df = df.sort_values(["experiment", "created_at", "point_id"], ignore_index=True)
    df.attrs["bad_files"] = bad
    return df
