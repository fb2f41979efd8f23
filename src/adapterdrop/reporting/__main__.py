"""``python -m adapterdrop.reporting`` (``make tables``): every table, from result files only.

* benchmarks: each machine's grids from the manifests beside its tables
  (``<root>/<machine>/tables/<grid>.run.json``), then ``<root>/comparison/`` with machines side
  by side (:mod:`adapterdrop.reporting.benchmarks`);
* Fig. 2: from the training results ``<root>/raw/fig2_*`` to ``<root>/tables/``
  (:mod:`adapterdrop.reporting.fig2`), when there are any;
* AdapterFusion pruning and fusion-AdapterDrop: from ``<root>/raw/fusion`` to ``<root>/tables/``
  (:mod:`adapterdrop.reporting.fusion`, speed joined from the machines' Table 3), when there
  are any;
* cross-layer sharing (the paper's appendix): from ``<root>/raw/sharing`` to ``<root>/tables/``
  (:mod:`adapterdrop.reporting.sharing`), when there are any;
* the methods frontier: from ``<root>/raw/methods`` to ``<root>/tables/``
  (:mod:`adapterdrop.reporting.methods`), when there are any;
* last, every result file in one tidy table, ``<root>/results.csv``
  (:mod:`adapterdrop.reporting.collect`; a malformed file fails the command, naming it).

Nothing is measured or trained. It fails when there is nothing to build at all.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from adapterdrop.reporting.benchmarks import COMPARISON_DIR, rebuild_all
from adapterdrop.reporting.collect import OUT_NAME, CollectError, collect_results, summary
from adapterdrop.reporting.collect import write_results as write_results_table
from adapterdrop.reporting.fig2 import VARIANTS, write_fig2_tables
from adapterdrop.reporting.fusion import EXPERIMENT as FUSION_EXPERIMENT
from adapterdrop.reporting.fusion import write_fusion_tables
from adapterdrop.reporting.methods import EXPERIMENT as METHODS_EXPERIMENT
from adapterdrop.reporting.methods import write_methods_tables
from adapterdrop.reporting.sharing import EXPERIMENT as SHARING_EXPERIMENT
from adapterdrop.reporting.sharing import write_sharing_tables

ARTEFACTS = ("benchmarks", "fig2", "fusion", "sharing", "methods", "results")


def has_fig2_results(root: Path | str) -> bool:
    """Whether ``<root>/raw`` holds a folder of any Fig. 2 experiment."""
    return any(Path(root, "raw", experiment).is_dir() for experiment in VARIANTS)


def write_results_csv(root: Path) -> Path | None:
    """``<root>/results.csv`` from every result file under ``root`` (``None`` when there is
    none); a malformed file exits non-zero, naming every bad file, and no table is written."""
    try:
        frame = collect_results(root)
    except CollectError as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(1) from None
    if frame.empty:
        return None
    out = write_results_table(frame, root / OUT_NAME)
    print(f"{out}: {len(frame)} result files\n{summary(frame)}")
    return out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m adapterdrop.reporting", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--root",
        default="results",
        help="folder holding <machine>/ (benchmarks), raw/ and tables/ (training); default: "
        "%(default)s",
    )
    parser.add_argument(
        "--only", choices=ARTEFACTS, help="build these tables alone (default: every kind)"
    )
    args = parser.parse_args(argv)
    root = Path(args.root)
    built_any = False
    if args.only in (None, "benchmarks"):
        built = rebuild_all(root)
        for machine, grids in built.items():
            for grid, tables in grids.items():
                print(f"{machine}: {grid}: {', '.join(tables) or 'no results'}")
        for path in sorted(Path(root, COMPARISON_DIR).glob("*.md")):
            print(f"comparison: {path}")
        if not built and args.only == "benchmarks":
            raise SystemExit(f"no built tables under {root}/*/tables: run a benchmark first")
        built_any |= bool(built)
    if args.only == "fig2" or (args.only is None and has_fig2_results(root)):
        for name, markdown in write_fig2_tables(root / "raw", root / "tables").items():
            print(f"{name}\n{markdown}\n")
        built_any = True
    if args.only == "fusion" or (
        args.only is None and Path(root, "raw", FUSION_EXPERIMENT).is_dir()
    ):
        for name, markdown in write_fusion_tables(root / "raw", root / "tables", root).items():
            print(f"{name}\n{markdown}\n")
        built_any = True
    if args.only == "sharing" or (
        args.only is None and Path(root, "raw", SHARING_EXPERIMENT).is_dir()
    ):
        for name, markdown in write_sharing_tables(root / "raw", root / "tables").items():
            print(f"{name}\n{markdown}\n")
        built_any = True
    if args.only == "methods" or (
        args.only is None and Path(root, "raw", METHODS_EXPERIMENT).is_dir()
    ):
        for name, markdown in write_methods_tables(root / "raw", root / "tables").items():
            print(f"{name}\n{markdown}\n")
        built_any = True
    if args.only == "results":
        if write_results_csv(root) is None:
            raise SystemExit(f"no result files under {root}/**/raw/")
        return
    if not built_any:
        raise SystemExit(
            f"no built tables under {root}/*/tables and no Fig. 2 results under {root}/raw: "
            "run a benchmark or `make reproduce-fig2` first"
        )
    if args.only is None:
        write_results_csv(root)


if __name__ == "__main__":
    main()
