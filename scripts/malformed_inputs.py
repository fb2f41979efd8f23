"""Run a battery of malformed inputs through the command lines and print what each did.

Usage: .venv/bin/python scripts/malformed_inputs.py [--only SUBSTRING] [--keep] [--timeout S]

Each input runs as its own subprocess (the benchmark, training, evaluation and check-data
entry points, on the tiny model, with bad data directories made in a temporary folder from the
real RTE files of ``ADAPTERDROP_DATA_DIR`` or ``../shared/data``), each with its own temporary
results root. One markdown row per input: its exit code, the first line of its error message,
what it wrote under its results root (``nothing``, ``failed record only``, or ``result``:
a success record or a trained adapter; locks are not counted), and its wall time.

Exit status 1 when any input exits 0, or writes a success it should not (a sweep whose first
job is good may write that job's result: the point is that the bad job fails loudly beside it
and the good result is kept); 0 otherwise. Nothing is written under the repository.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from adapterdrop.results import locked

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable

#: Any grid shrunk to seconds on the tiny model (as tests/conftest.py's TINY_BENCH).
TINY_BENCH = [
    "logger=none",
    "model=tiny",
    "device=cpu",
    "dtype=fp32",
    "preset=cpu",
    "progress=false",
    "threads=1",
    "timing.warmup=0",
    "timing.min_reps=2",
    "timing.min_seconds=0",
]
#: Table 2, the default grid, at one T and two n in one process.
TABLE2 = ["bench=table2", "bench.num_tasks=[2]", "bench.processes=1", "bench.dropped_layers=[0,3]"]
#: A training run shrunk to seconds: the tiny model, 16 examples, 2 steps.
TINY_TRAIN = [
    "model=tiny",
    "logger=none",
    "data.limit_examples=16",
    "data.batch_size=8",
    "trainer.max_steps=2",
    "trainer.precision=32-true",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
]


@dataclass
class Case:
    """One malformed input: the overrides as a user types them, and how to run them."""

    label: str
    app: str  # bench | train | eval | check-data
    args: list[str]
    multirun: bool = False
    #: success records a good job beside the bad one is expected to write
    good_results: int = 0
    #: a context held around the run (another run's lock), given the case's results root
    around: Callable[[Path], contextlib.AbstractContextManager] | None = None
    #: the results root, when the case chooses its own (a read-only one)
    root: Path | None = None
    data_dir: Path | None = None


@dataclass
class Outcome:
    case: Case
    code: int
    message: str
    wrote: str
    seconds: float
    results: int = 0
    problems: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------- bad data directories


def real_rte() -> Path:
    """The real RTE folder the bad copies start from."""
    root = Path(os.environ.get("ADAPTERDROP_DATA_DIR") or REPO.parent / "shared" / "data")
    rte = root / "glue" / "RTE"
    if not (rte / "dev.tsv").is_file():
        raise SystemExit(f"real GLUE RTE files not found under {root}: set ADAPTERDROP_DATA_DIR")
    return rte


def bad_data_dirs(base: Path) -> dict[str, Path]:
    """Copies of RTE, each broken in one way (the real files are never touched)."""
    rte = real_rte()
    dirs: dict[str, Path] = {}
    for name in ("good", "empty", "utf8", "nosplit", "header"):
        folder = base / name / "glue" / "RTE"
        folder.mkdir(parents=True)
        for split in ("train.tsv", "dev.tsv"):
            shutil.copy(rte / split, folder / split)
        dirs[name] = base / name
    (dirs["empty"] / "glue/RTE/dev.tsv").write_text("")
    with (dirs["utf8"] / "glue/RTE/dev.tsv").open("ab") as fh:
        fh.write(b"9999\tcaf\xe9 au lait\tIt is.\tentailment\n")
    (dirs["nosplit"] / "glue/RTE/train.tsv").unlink()
    (dirs["header"] / "glue/RTE/dev.tsv").write_text("index\tpremise\thypothesis\n0\ta\tb\n")
    return dirs


def unwritable_root(base: Path) -> Path:
    """A results root no run can write: mode 0555 stops other users, root is stopped only
    where no folder can be made at all (``/proc``)."""
    if os.geteuid() == 0 and Path("/proc").is_dir():
        return Path("/proc/adapterdrop-malformed/results")
    folder = base / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    return folder / "results"


@contextlib.contextmanager
def another_bench_run(root: Path) -> Iterator[None]:
    """Hold Table 2's results folder as a running benchmark would."""
    with locked(root / "raw" / "table2"):
        yield


# ------------------------------------------------------------------------------------ the cases


def cases(base: Path) -> list[Case]:
    """Every input: the issue's examples and their neighbours, bench first."""
    data = bad_data_dirs(base / "data")
    nowhere = unwritable_root(base)
    return [*bench_cases(nowhere), *train_cases(data, nowhere), *other_cases(data)]


def bench_cases(nowhere: Path) -> list[Case]:
    """Table 2 unless the input names another grid (with what makes that grid tiny)."""
    bench = [
        ("bench.method.reduction_factor=0", []),
        ("bench.batch_size=0", []),
        ("bench.seq_len=1000", []),
        ("bench.method.name=foo", []),
        ("timing.min_reps=-1", []),
        ("bench.dropped_layers=[1.5]", []),
        ("bench.num_tasks=2", []),
        ("threads=0", []),
        ("+bench.foo=1", []),
        ("+timing.fast=true", []),
        ("force=maybe", []),
        ("bench.min_reps_by_tasks=3", []),
        ("dtype=fp8", []),
        ("on_version_change=sometimes", []),
        ("preset=huge", []),
        ("machine=../elsewhere", []),
        ("model=roberta-base model.pretrained=true", []),
        ("bench=table1 bench.batch_size=8", ["bench.inference_processes=1"]),
        ("bench=table3 bench.num_adapters=2", []),
        (
            "bench=efficiency bench.adapter.reduction_factor=0",
            ["bench.specialized.dropped_layers=[0,3]"],
        ),
    ]
    listed = [Case(label, "bench", [*extra, *label.split()]) for label, extra in bench]
    listed += [
        Case(
            "-m bench.batch_size=1,0 (second job fails)",
            "bench",
            ["bench.batch_size=1,0"],
            multirun=True,
            good_results=1,
        ),
        Case(
            "a second bench run while one holds the results folder",
            "bench",
            [],
            around=another_bench_run,
        ),
        Case("read-only results root (bench)", "bench", [], root=nowhere),
    ]
    return listed


def train_cases(data: dict[str, Path], nowhere: Path) -> list[Case]:
    """Training on the good RTE copy unless the input is a bad data directory."""
    good = data["good"]
    train = [
        "experiment_name=../x",
        "data.max_length=10000",
        "trainer.max_epochs=abc",
        "trainer.max_epochs=-1 trainer.max_steps=-1",
        "data.batch_size=0",
        "data.limit_examples=-5",
        "optim.lr=-1",
        "skip_measured=maybe",
        "checkpoint_every_n_steps=0",
        "drop.mode=specialized drop.n=9",
        "method=nope",
        "data=superglue/boolq",
        "data.data_dir=/nonexistent",
        "model=roberta-base model.pretrained=true",
    ]
    listed = [Case(label, "train", label.split(), data_dir=good) for label in train]
    listed += [
        Case(f"data.data_dir=<{what}>", "train", [], data_dir=data[name])
        for name, what in (
            ("empty", "empty dev.tsv"),
            ("utf8", "invalid UTF-8 in dev.tsv"),
            ("nosplit", "no train.tsv"),
            ("header", "dev.tsv header without sentence1/sentence2"),
        )
    ]
    listed += [
        Case("read-only results root (train)", "train", [], root=nowhere, data_dir=good),
        Case(
            "-m optim.lr=1e-3,-1,-2",
            "train",
            ["optim.lr=1e-3,-1,-2"],
            multirun=True,
            good_results=1,
            data_dir=good,
        ),
        Case(
            "-m data.data_dir=<good>,<empty dev.tsv>",
            "train",
            [f"data.data_dir={good},{data['empty']}"],
            multirun=True,
            good_results=1,
        ),
    ]
    return listed


def other_cases(data: dict[str, Path]) -> list[Case]:
    """Evaluation and ``make check-data``."""
    return [
        Case(
            "eval adapters=[/nonexistent]",
            "eval",
            ["adapters=[/nonexistent]"],
            data_dir=data["good"],
        ),
        Case("make check-data on <invalid UTF-8 in dev.tsv>", "check-data", [str(data["utf8"])]),
        Case("make check-data on /nonexistent", "check-data", ["/nonexistent"]),
    ]


# ------------------------------------------------------------------------------------- running


def command(case: Case, root: Path, work: Path) -> list[str]:
    """The subprocess's argv: the case's overrides over the shrunk run, output under ``work``."""
    if case.app == "check-data":
        return [PYTHON, str(REPO / "scripts" / "check_data.py"), *case.args]
    mode = ["-m"] if case.multirun else []
    module = ["-m", f"adapterdrop.cli.{case.app}", *mode]
    hydra = [f"hydra.run.dir={work}/hydra", f"hydra.sweep.dir={work}/multirun"]
    if case.app == "bench":
        grid = [] if any(a.startswith("bench=") for a in case.args) else TABLE2
        paths = [f"paths.root={root}", f"paths.results_root={root}/raw"]
        paths.append(f"paths.tables_root={root}/tables")
        return [PYTHON, *module, *grid, *TINY_BENCH, *case.args, *paths, *hydra]
    shrunk = TINY_TRAIN if case.app == "train" else [a for a in TINY_TRAIN if a != "logger=none"]
    data = [f"data.data_dir={case.data_dir}"] if case.data_dir else []
    paths = [f"paths.root={root}", f"data.cache_dir={work}/cache"]
    if case.app == "train":
        paths += [
            f"paths.checkpoints_root={root}/checkpoints",
            f"paths.adapters_root={root}/adapters",
        ]
    return [PYTHON, *module, *shrunk, *data, *case.args, *paths, *hydra]


def run_case(case: Case, work: Path, timeout: float) -> Outcome:
    root = case.root or work / "results"
    env = {**os.environ, "WANDB_MODE": "offline", "TOKENIZERS_PARALLELISM": "false"}
    around = case.around(root) if case.around else contextlib.nullcontext()
    started = time.monotonic()
    with around:
        try:
            done = subprocess.run(
                command(case, root, work),
                cwd=REPO,
                env=env,
                capture_output=True,
                text=True,
                timeout=timeout,
            )
            code, output = done.returncode, done.stderr + "\n" + done.stdout
        except subprocess.TimeoutExpired as err:
            code, output = -9, f"timed out after {timeout:.0f} s\n{err.stderr or ''}"
    seconds = time.monotonic() - started
    wrote, results = written(root)
    message = first_line(output).replace(str(work.parent), "<tmp>")
    outcome = Outcome(case, code, message, wrote, seconds, results)
    if code == 0:
        outcome.problems.append("exited 0")
    if results > case.good_results:
        outcome.problems.append(f"wrote {results} success(es), expected {case.good_results}")
    return outcome


def written(root: Path) -> tuple[str, int]:
    """What a run left under its results root, and how many success records among it."""
    if not root.is_dir():
        return "nothing", 0
    files = [p for p in root.rglob("*") if p.is_file() and not p.name.endswith(".lock")]
    failed = [p for p in files if p.name.endswith(".failed.json")]
    adapters = [p for p in files if p.name == "adapter.safetensors"]
    results = [p for p in files if p.suffix == ".json" and p not in failed and is_success(p)]
    if results or adapters:
        parts = [f"{len(results)} success record(s)", f"{len(adapters)} adapter(s)"]
        if failed:
            parts.append(f"{len(failed)} failed record(s)")
        return f"result ({', '.join(parts)})", len(results)
    others = [p.name for p in files if p not in failed]
    if failed:
        return "failed record only" + (f" (+ {', '.join(others)})" if others else ""), 0
    return "nothing" if not files else f"other: {', '.join(others)}", 0


def is_success(path: Path) -> bool:
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(record, dict) and record.get("status") == "ok"


FAILED_JOBS = re.compile(r"^\d+ of \d+ job\(s\) failed:")
FAILED_POINTS = re.compile(r"^\w+: \d+ point\(s\) failed:")
JOB_LINE = re.compile(r"^  job (\d+) \(.*?\): (.*)$")
EXCEPTION = re.compile(r"^(?:[A-Za-z_]\w*\.)*([A-Za-z_]\w*(?:Error|Exception|Locked)): (.*)$")
NOISE = ("[20", "Traceback", "Error executing job", "Set the environment variable HYDRA_FULL")


def first_line(output: str) -> str:
    """The first line of what the run said went wrong (a sweep: each failed job's)."""
    lines = [line.rstrip() for line in output.splitlines()]
    for i, line in enumerate(lines):
        if FAILED_JOBS.match(line):
            jobs = [JOB_LINE.match(j) for j in lines[i + 1 :]]
            named = [f"job {m[1]}: {m[2]}" for m in jobs if m]
            return " ".join([line, "; ".join(named)])
        if FAILED_POINTS.match(line):
            return f"{line} {lines[i + 1].strip()}" if i + 1 < len(lines) else line
    errors = [m for m in map(EXCEPTION.match, lines) if m]
    if errors:
        return f"{errors[-1][1]}: {errors[-1][2]}"
    marked = [line.strip() for line in lines if " ERROR " in line or line.startswith("ERROR")]
    if marked:
        return marked[0]
    plain = [line for line in lines if line.strip() and not line.startswith(NOISE)]
    plain = [line for line in plain if "Warning" not in line and not line.startswith(" ")]
    return plain[0] if plain else "(no message)"


# ------------------------------------------------------------------------------------- reporting


def cell(text: str, width: int = 180) -> str:
    text = " ".join(text.split())
    text = text if len(text) <= width else text[: width - 1] + "…"
    return text.replace("|", "\\|")


def table(outcomes: list[Outcome]) -> str:
    rows = [
        "| # | app | input | exit code | first line of the error message | wrote | s |",
        "|---:|---|---|---:|---|---|---:|",
    ]
    for i, o in enumerate(outcomes, 1):
        flag = " **(!)**" if o.problems else ""
        rows.append(
            f"| {i} | {o.case.app} | `{cell(o.case.label, 90)}` | {o.code}{flag} | "
            f"{cell(o.message)} | "
            f"{o.wrote} | {o.seconds:.0f} |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="run only the inputs whose label contains this")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--timeout", type=float, default=300, help="seconds per input")
    args = parser.parse_args(argv)
    base = Path(tempfile.mkdtemp(prefix="malformed-inputs-"))
    try:
        selected = [c for c in cases(base) if not args.only or args.only in c.label]
        outcomes = []
        for i, case in enumerate(selected, 1):
            work = base / f"{i:02d}"
            work.mkdir()
            outcome = run_case(case, work, args.timeout)
            print(
                f"[{i}/{len(selected)}] {case.label}: exit {outcome.code}, {outcome.wrote}",
                file=sys.stderr,
            )
            outcomes.append(outcome)
    finally:
        if args.keep:
            print(f"kept {base}", file=sys.stderr)
        else:
            shutil.rmtree(base, ignore_errors=True)
    print(table(outcomes))
    bad = [o for o in outcomes if o.problems]
    print(f"\n{len(outcomes)} malformed inputs, {len(bad)} not refused as they should be")
    for o in bad:
        print(f"- {o.case.label}: {', '.join(o.problems)}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
