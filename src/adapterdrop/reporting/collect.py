"""Every result file under ``results/`` in one tidy table: one row per file, provenance first.

Result files live in ``raw/`` folders (schema: :mod:`adapterdrop.results`):

* ``results/<machine>/raw/<experiment>/<point>.json``: benchmarks, one folder per machine;
* ``results/<machine>/<collection>/raw/<experiment>/<point>.json``: a named re-run on that
  machine (``repeat``: the same grid measured again, for run-to-run spread);
* ``results/raw/<experiment>/<point>.json``: training runs (Fig. 2), not kept per machine.

Each row is one file (a measured point, or a failed attempt ``<point>.failed.json``): the
provenance columns of :data:`PROVENANCE` (the machine tag and collection from the folder, the
git commit and dirty flag and the package versions from ``environment``, status, kind,
experiment, point id, creation time, the file's path), then the flattened ``config.*``,
``metrics.*`` and ``environment.*`` columns of :func:`adapterdrop.results.flatten_result`.
Raw timing samples stay in the files; list values are written as JSON text.

Every file is validated; a malformed or misplaced file is never dropped silently:
:class:`CollectError` lists every bad file by name, and no table is written.

``python -m adapterdrop.reporting`` (``make tables``) writes it last, to ``<root>/results.csv``;
``--only results`` writes it alone.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from adapterdrop.results import ResultError, atomic_write_text, flatten_result, read_result

DEFAULT_ROOT = Path("results")
OUT_NAME = "results.csv"
RAW_DIR = "raw"
#: Collection of the results directly in ``<machine>/raw`` (a re-run sits in another folder).
MAIN_COLLECTION = "main"
#: First columns of the table, in this order.
PROVENANCE = (
    "machine",
    "collection",
    "kind",
    "experiment",
    "point_id",
    "status",
    "created_at",
    "git_commit",
    "git_dirty",
    "python",
    "torch",
    "transformers",
    "adapters",
    "error",
    "path",
)
#: Provenance column -> the flattened result column it is read from.
_FROM_ENVIRONMENT = {
    "git_commit": "environment.git.commit",
    "git_dirty": "environment.git.dirty",
    "python": "environment.versions.python",
    "torch": "environment.versions.torch",
    "transformers": "environment.versions.transformers",
    "adapters": "environment.versions.adapters",
}
_TAG = re.compile(r"[a-z0-9][a-z0-9._-]*")


class CollectError(ResultError):
    """Result files that do not follow the schema or the folder layout, every one of them."""

    def __init__(self, bad: Sequence[tuple[Path, str]]):
        self.bad = [(Path(path), reason) for path, reason in bad]
        listing = "\n".join(f"  {path}: {reason}" for path, reason in self.bad)
        super().__init__(
            f"{len(self.bad)} invalid result file(s); fix or remove them, no table was written:\n"
            f"{listing}"
        )


def raw_folders(root: Path | str = DEFAULT_ROOT) -> list[Path]:
    """Every ``raw/`` folder under ``root`` (hidden folders and a ``raw`` inside another
    ``raw`` excluded), sorted."""
    root = Path(root)
    found = []
    for path in sorted(root.rglob(RAW_DIR)):
        parts = path.relative_to(root).parts
        if (
            path.is_dir()
            and RAW_DIR not in parts[:-1]
            and not any(p.startswith(".") for p in parts)
        ):
            found.append(path)
    return found


def folder_provenance(raw: Path, root: Path) -> tuple[str | None, str]:
    """``(machine, collection)`` of a raw folder: ``results/raw`` is no machine's."""
    parts = raw.relative_to(root).parts[:-1]
    machine = parts[0] if parts else None
    return machine, "/".join(parts[1:]) or MAIN_COLLECTION


def _check_place(path: Path, raw: Path, machine: str | None) -> str | None:
    """Why ``path`` cannot be a result file of ``raw`` (None when it can)."""
    if path.parent.parent != raw:
        return f"not at {raw}/<experiment>/<point>.json"
    if machine is not None and not _TAG.fullmatch(machine):
        return f"machine folder {machine!r} is not a machine tag (lowercase letters, digits, -_.)"
    return None


def _row(record: dict[str, Any], path: Path, machine: str | None, collection: str) -> dict:
    flat = flatten_result(record, path)
    row: dict[str, Any] = {"machine": machine, "collection": collection}
    row.update({key: flat.get(key) for key in PROVENANCE if key in flat})
    row.update({key: flat.get(column) for key, column in _FROM_ENVIRONMENT.items()})
    row.update((key, value) for key, value in flat.items() if not key.startswith("samples."))
    return row


def collect_results(root: Path | str = DEFAULT_ROOT) -> pd.DataFrame:
    """All result files under ``root`` as one DataFrame, one row per file.

    Raises :class:`CollectError` naming every file that is malformed (unreadable, invalid
    JSON, against the schema, its id not its config's hash) or misplaced (not directly in an
    experiment folder of a ``raw/`` folder, or holding another experiment's point).
    """
    root = Path(root)
    rows: list[dict[str, Any]] = []
    bad: list[tuple[Path, str]] = []
    for raw in raw_folders(root):
        machine, collection = folder_provenance(raw, root)
        for path in sorted(raw.rglob("*.json")):
            if any(part.startswith(".") for part in path.relative_to(raw).parts):
                continue  # a writer's temporary or a lock, not a result
            reason = _check_place(path, raw, machine)
            if reason is not None:
                bad.append((path, reason))
                continue
            try:
                record = read_result(path)
            except ResultError as exc:
                bad.append((path, str(exc).removeprefix(f"{path}: ")))
                continue
            rows.append(_row(record, path, machine, collection))
    if bad:
        raise CollectError(bad)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(columns=list(PROVENANCE))
    rest = sorted(c for c in frame.columns if c not in PROVENANCE)
    frame = frame[[*PROVENANCE, *rest]]
    order = ["machine", "collection", "experiment", "created_at", "point_id", "status"]
    return frame.sort_values(order, na_position="last", ignore_index=True)


def _as_text(value: Any) -> Any:
    """Lists (a grid's axis values, say) as JSON text, so every cell is a scalar."""
    return json.dumps(value) if isinstance(value, list | dict) else value


def write_results(frame: pd.DataFrame, out: Path | str) -> Path:
    """Write ``frame`` to ``out``: CSV, or Parquet for a ``.parquet`` name (needs pyarrow)."""
    out = Path(out)
    plain = frame.copy()
    text = [c for c in plain.columns if not pd.api.types.is_numeric_dtype(plain[c])]
    for column in text:
        plain[column] = plain[column].map(_as_text)
    if out.suffix == ".parquet":
        out.parent.mkdir(parents=True, exist_ok=True)
        plain.astype(dict.fromkeys(text, "string")).to_parquet(out, index=False)
    else:
        atomic_write_text(out, plain.to_csv(index=False))
    return out


def summary(frame: pd.DataFrame) -> str:
    """One line per (machine, collection, experiment): how many ok and failed files."""
    if frame.empty:
        return "no results"
    keys = ["machine", "collection", "experiment"]
    counts = (
        frame.fillna({"machine": "(training, no machine)"})
        .groupby([*keys, "status"])
        .size()
        .unstack(fill_value=0)
    )
    lines = []
    for (machine, collection, experiment), row in counts.iterrows():
        where = machine if collection == MAIN_COLLECTION else f"{machine}/{collection}"
        detail = ", ".join(f"{n} {status}" for status, n in row.items() if n)
        lines.append(f"  {where}: {experiment}: {detail}")
    return "\n".join(lines)
