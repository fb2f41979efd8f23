"""Run the artefact notebooks headless (``make figures``): each writes ``<name>.png`` and
``<name>.pdf`` to the figures folder, from the built tables only.

The notebooks read their results root and figures folder from ``ADAPTERDROP_RESULTS_DIR`` and
``ADAPTERDROP_FIGURES_DIR`` (their first, ``parameters`` cell), which this runner sets; the
notebook files themselves are never written (no outputs to commit). Fig. 2's majority-class
baseline reads the dev labels from ``ADAPTERDROP_DATA_DIR`` (the Makefile sets it when a data
folder is found; empty leaves the baseline out).

    python -m adapterdrop.reporting.notebooks [--results results] [--out results/figures]
        [--only table2,fig2]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from adapterdrop.reporting.figures import FORMATS

RESULTS_ENV = "ADAPTERDROP_RESULTS_DIR"
FIGURES_ENV = "ADAPTERDROP_FIGURES_DIR"
#: One notebook per artefact, each saving the figure of its name.
NOTEBOOKS = ("table1", "table2", "table3", "efficiency", "fig2")
#: Notebooks of score experiments -> the table they draw (``<results>/tables/<table>.csv``):
#: run by default once that experiment has results, as its make target builds them.
SCORE_NOTEBOOKS = {"sharing": "sharing", "methods": "methods_summary", "fusion": "fusion_pruning"}
DEFAULT_NOTEBOOKS_DIR = Path("notebooks")
DEFAULT_TIMEOUT_S = 300
#: Kernels at a time: while one imports or renders, another starts.
DEFAULT_JOBS = 2


class NotebookFailed(RuntimeError):
    """A notebook raised, or did not write its figure files."""


@contextlib.contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    """``values`` in ``os.environ`` while the block runs (a kernel inherits them)."""
    before = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _variables(results: Path | str, figures: Path | str) -> dict[str, str]:
    return {RESULTS_ENV: str(Path(results).resolve()), FIGURES_ENV: str(Path(figures).resolve())}


async def _execute(path: Path, figures: Path, timeout: int) -> list[Path]:
    """Run one notebook in a fresh kernel (working directory: its folder); the figure files
    it wrote (``<stem>.png``/``.pdf`` in ``figures``)."""
    notebook = nbformat.read(path, as_version=4)
    started = time.time()
    client = NotebookClient(
        notebook, timeout=timeout, resources={"metadata": {"path": str(path.parent.resolve())}}
    )
    try:
        await client.async_execute()
    except Exception as exc:  # nbclient's CellExecutionError holds the cell's traceback
        raise NotebookFailed(f"{path}: {exc}") from exc
    written = [Path(figures).resolve() / f"{path.stem}.{fmt}" for fmt in FORMATS]
    missing = [p for p in written if not p.is_file() or p.stat().st_mtime < started - 1]
    if missing:
        raise NotebookFailed(f"{path} ran but did not write {', '.join(map(str, missing))}")
    return written


def run_notebook(
    path: Path | str, results: Path | str, figures: Path | str, *, timeout: int = DEFAULT_TIMEOUT_S
) -> list[Path]:
    """Execute the notebook ``path`` on the tables under ``results``; return the figure files
    it wrote to ``figures``. :class:`NotebookFailed` if it raised or wrote none."""
    with _environment(_variables(results, figures)):
        return asyncio.run(_execute(Path(path), Path(figures), timeout))


def run_all(
    results: Path | str,
    figures: Path | str,
    *,
    notebooks_dir: Path | str = DEFAULT_NOTEBOOKS_DIR,
    only: Sequence[str] | None = None,
    timeout: int = DEFAULT_TIMEOUT_S,
    jobs: int = DEFAULT_JOBS,
) -> tuple[dict[str, list[Path]], dict[str, str]]:
    """Run every notebook (or those named in ``only``), ``jobs`` kernels at a time:
    ``({name: files}, {name: error})``. A failing notebook does not stop the others. Without
    ``only``, a score experiment's notebook runs once its table is built (:func:`pending`)."""
    names = list(only or [*NOTEBOOKS, *(n for n in SCORE_NOTEBOOKS if n not in pending(results))])
    unknown = [n for n in names if not (Path(notebooks_dir) / f"{n}.ipynb").is_file()]
    if unknown:
        raise FileNotFoundError(f"no notebook(s) {unknown} in {notebooks_dir}")
    with _environment(_variables(results, figures)):
        outcomes = asyncio.run(_run_many(names, Path(notebooks_dir), Path(figures), timeout, jobs))
    written = {n: o for n, o in outcomes.items() if not isinstance(o, str)}
    failed = {n: o for n, o in outcomes.items() if isinstance(o, str)}
    return written, failed


def pending(results: Path | str) -> dict[str, Path]:
    """Score notebooks whose table is not built yet: name -> the missing CSV."""
    tables = {name: Path(results, "tables", f"{t}.csv") for name, t in SCORE_NOTEBOOKS.items()}
    return {name: path for name, path in tables.items() if not path.is_file()}


async def _run_many(
    names: Sequence[str], folder: Path, figures: Path, timeout: int, jobs: int
) -> dict[str, list[Path] | str]:
    gate = asyncio.Semaphore(max(1, jobs))

    async def one(name: str) -> list[Path] | str:
        async with gate:
            try:
                return await _execute(folder / f"{name}.ipynb", figures, timeout)
            except NotebookFailed as exc:
                return str(exc)

    outcomes = await asyncio.gather(*(one(name) for name in names))
    return dict(zip(names, outcomes, strict=True))


def main(argv: Sequence[str] | None = None) -> dict[str, list[Path]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", default="results", help="results root (machine folders)")
    parser.add_argument("--out", default=None, help="figures folder (default <results>/figures)")
    parser.add_argument("--notebooks", default=str(DEFAULT_NOTEBOOKS_DIR))
    choices = ",".join([*NOTEBOOKS, *SCORE_NOTEBOOKS])
    parser.add_argument("--only", default=None, help=f"comma-separated, of {choices}")
    parser.add_argument("--timeout", type=int, default=DEFAULT_TIMEOUT_S, help="seconds per cell")
    parser.add_argument("--jobs", type=int, default=DEFAULT_JOBS, help="kernels at a time")
    args = parser.parse_args(argv)
    out = Path(args.out) if args.out else Path(args.results) / "figures"
    only = [n.strip() for n in args.only.split(",") if n.strip()] if args.only else None
    written, failed = run_all(
        args.results,
        out,
        notebooks_dir=args.notebooks,
        only=only,
        timeout=args.timeout,
        jobs=args.jobs,
    )
    for name, files in written.items():
        print(f"{name}: {', '.join(str(f) for f in files)}")
    if only is None:
        for name, path in pending(args.results).items():
            print(f"{name}: skipped, no {path} yet (make reproduce-{name})")
    for name, error in failed.items():
        print(f"{name}: FAILED\n{error}", file=sys.stderr)
    if failed:
        raise SystemExit(f"{len(failed)} notebook(s) failed: {', '.join(failed)}")
    return written


if __name__ == "__main__":
    main()
