"""Sweeps: every conf/sweep file and every README command line composes into valid jobs, and the
README's own sweep lines run through joblib and submitit, list a failed job and resume."""

from __future__ import annotations

import json
import logging
import os
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import pytorch_lightning as pl
import torch
from hydra import compose, initialize_config_dir
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import ConfigCompositionException
from hydra.types import RunMode
from omegaconf import OmegaConf, open_dict

from adapterdrop.bench.experiments import get_experiment
from adapterdrop.bench.validate import check_bench_keys, check_method
from adapterdrop.cli import jobs
from adapterdrop.cli.bench import setting_overrides
from adapterdrop.cli.jobs import STATUS_FILE, SweepProgress, sweep_job, sweep_size
from adapterdrop.cli.train import result_config
from adapterdrop.data import get_task_spec
from adapterdrop.models import num_layers
from adapterdrop.results import locked, point_id, read_result, result_path
from adapterdrop.train.module import DropConfig, OptimConfig
from adapterdrop.train.preflight import check_run
from conftest import CONF, REPO, SHARED_DATA

README = REPO / "README.md"
MAKEFILE = REPO / "Makefile"
APPS = {"adapterdrop.cli.train": "train", "adapterdrop.cli.bench": "bench"}
MAKE_APPS = {"$(TRAIN)": "train", "$(BENCH)": "bench"}
ABSENT = object()
NEEDS_DATA = pytest.mark.skipif(
    not (SHARED_DATA / "glue" / "RTE" / "dev.tsv").is_file(),
    reason=f"real GLUE RTE files not found under {SHARED_DATA}",
)


# ------------------------------------------------------------------ command lines -> jobs
def make_variables() -> dict[str, str]:
    """``NAME ?= value`` defaults of the Makefile."""
    found = re.findall(r"^(\w+) \?= ?(.*)$", MAKEFILE.read_text(), flags=re.M)
    return {name: value.strip() for name, value in found}


def make_recipe(target: str) -> str:
    """The recipe of ``target``, continuation lines joined."""
    lines = MAKEFILE.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{target}:"))
    recipe = []
    for line in lines[start + 1 :]:
        if not line.startswith("\t"):
            break
        recipe.append(line.strip())
    return " ".join(recipe).replace("\\ ", " ")


def make_commands(target: str, variables: dict[str, str]) -> list[tuple[str, list[str]]]:
    """``(app, arguments)`` of each app call in ``make <target> VAR=...``, as make runs them:
    a loop ``for spec in $(TASKS)`` runs each call per ``task[:examples[:epochs]]`` word of the
    variable, the examples as ``data.limit_examples``, the epochs as ``trainer.max_epochs``."""
    values = {**make_variables(), **variables}
    recipe = make_recipe(target)
    loop = re.search(r"for spec in \$\((\w+)\)", recipe)
    specs = values.get(loop[1], "").split() if loop else []
    commands = []
    # a call ends at a shell operator or at the next recipe line's call or $(PY) (tables)
    call = r"(\$\((?:TRAIN|BENCH)\))((?:(?!\$\((?:PY|TRAIN|BENCH)\))[^&|;])*)"
    for app_var, args in re.findall(call, recipe):
        for spec in specs if "$$task" in args else [""]:
            task, limit, epochs = [*spec.split(":"), "", ""][:3]
            text = args.replace("$$task", task)
            text = text.replace("$$limit", f"data.limit_examples={limit}" if limit else "")
            text = text.replace("$$epochs", f"trainer.max_epochs={epochs}" if epochs else "")
            text = re.sub(r"\$\((\w+)\)", lambda m: values.get(m[1], ""), text)
            commands.append((MAKE_APPS[app_var], shlex.split(text)))
    return commands


def readme_code_lines() -> list[str]:
    """Every command line in the README's fenced code blocks."""
    blocks = re.findall(r"^```[a-z]*\n(.*?)^```", README.read_text(), flags=re.M | re.S)
    lines = [line.strip() for block in blocks for line in block.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def app_command(line: str) -> list[tuple[str, list[str]]]:
    """``(app, arguments)`` of each training or benchmark run ``line`` starts; [] for others."""
    words = shlex.split(line, comments=True)
    while words and re.fullmatch(r"\w+=.*", words[0]):  # VAR=value before the command
        words = words[1:]
    if not words:
        return []
    if words[0] == "make" and len(words) > 1:
        variables = dict(w.split("=", 1) for w in words[2:] if "=" in w)
        return make_commands(words[1], variables)
    if words[0].endswith("python") and words[1:2] == ["-m"] and words[2] in APPS:
        return [(APPS[words[2]], words[3:])]
    return []


README_COMMANDS = [
    (line, app, args) for line in readme_code_lines() for app, args in app_command(line)
]


def job_overrides(app: str, args: list[str]) -> list[list[str]]:
    """The jobs a command line runs: one, or each job of its multirun as Hydra's basic sweeper
    expands it (the sweep config's ``hydra.sweeper.params`` first, the command line's after)."""
    multirun = "-m" in args or "--multirun" in args
    overrides = [a for a in args if a not in ("-m", "--multirun")]
    if not multirun:
        return [overrides]
    parser = OverridesParser.create()
    fixed = [o.input_line for o in parser.parse_overrides(overrides) if not o.is_sweep_override()]
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        parent = compose(app, fixed, return_hydra_config=True)
    params = [f"{k}={v}" for k, v in (parent.hydra.sweeper.params or {}).items()]
    [jobs] = BasicSweeper.split_arguments(parser.parse_overrides(params + overrides), None)
    return jobs


def compose_job(app: str, overrides: list[str]) -> dict:
    """The resolved config of one job, ``${hydra:...}`` included, ``hydra`` left out."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(app, overrides, return_hydra_config=True)
        HydraConfig.instance().set_config(cfg)
        with open_dict(cfg):
            del cfg["hydra"]
        return OmegaConf.to_container(cfg, resolve=True)


def validate_job(app: str, cfg: dict) -> None:
    """What the app checks before any model or data, and what the model would refuse."""
    if app == "bench":
        cfg.pop("logger", None)
        check_bench_keys(cfg, CONF)
        assert get_experiment(cfg["bench"]["name"]).points(cfg)
        return
    check_run(cfg)
    get_task_spec(cfg["data"]["task"])
    OptimConfig(**cfg["optim"])
    drop = DropConfig(**cfg["drop"])
    drop.check_layers(num_layers(cfg["model"]))
    check_method(drop.method_config(cfg["method"]), "method", cfg["model"])


def check_command(app: str, args: list[str]) -> list[dict]:
    jobs = job_overrides(app, args)
    configs = [compose_job(app, job) for job in jobs]
    for cfg in configs:
        validate_job(app, cfg)
    return configs


# ------------------------------------------------------------------------- README lines
def test_the_readme_has_training_and_benchmark_command_lines():
    apps = {app for _, app, _ in README_COMMANDS}
    assert apps == {"train", "bench"}
    assert any("hydra/launcher=joblib" in line for line, _, _ in README_COMMANDS)
    assert any("hydra/launcher=submitit_local" in line for line, _, _ in README_COMMANDS)


@pytest.mark.parametrize(("line", "app", "args"), README_COMMANDS, ids=lambda v: str(v)[:70])
def test_each_readme_command_composes_into_valid_jobs(line, app, args, monkeypatch):
    monkeypatch.delenv("ADAPTERDROP_DATA_DIR", raising=False)
    configs = check_command(app, args)
    assert configs
    if "-m" in args and app == "train":
        assert all(cfg["skip_measured"] for cfg in configs if "sweep=" in line)


def test_the_old_readme_sweeps_fail_as_they_did():
    # drop.n in drop.mode=none, and n = 11 on the 6-layer default model
    with pytest.raises(ValueError, match="drop.n=1 has no meaning in drop.mode='none'"):
        check_command("train", ["-m", "drop.n=0,1"])
    with pytest.raises(ValueError, match="6-layer encoder"):
        check_command("train", ["-m", "drop.mode=specialized", "drop.n=range(0,12)"])


# ---------------------------------------------------------------------- conf/sweep files
def sweep_options(app: str) -> list[str]:
    return sorted(f"{app}/{p.stem}" for p in (CONF / "sweep" / app).glob("*.yaml"))


@pytest.mark.parametrize("app", ["train", "bench"])
def test_every_sweep_expands_into_valid_jobs_in_its_own_app(app):
    other = {"train": "bench", "bench": "train"}[app]
    for sweep in sweep_options(app):
        configs = check_command(app, ["-m", f"sweep={sweep}"])
        assert len(configs) > 1, sweep
        for override in (f"sweep={sweep}", f"+sweep={sweep}"):
            with pytest.raises(ConfigCompositionException):
                compose_job(other, [override])


def test_the_sweeps_cover_every_dimension_with_keys_that_exist():
    swept = {}
    for app in ("train", "bench"):
        for sweep in sweep_options(app):
            with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
                cfg = compose(app, [f"sweep={sweep}"], return_hydra_config=True)
            swept[sweep] = dict(cfg.hydra.sweeper.params)
            for key in swept[sweep]:  # every swept key is one the composed config has
                assert OmegaConf.select(cfg, key, default=ABSENT) is not ABSENT, (sweep, key)
    assert swept["train/layers"] == {"drop.n": "range(0,6)"}
    assert set(swept["train/methods"]) == {"method"} and set(swept["train/seeds"]) == {"seed"}
    assert swept["train/sharing"] == {"method.reduction_factor": "1.3333333333333333,4,16"}
    assert swept["bench/tasks"]["bench.num_tasks"] == "[2],[4],[8],[16]"
    assert swept["bench/prune"] == {"bench.prune.keep": "1,2,4"}
    assert set(swept["bench/methods"]) == {"bench.methods"} and "seed" in swept["bench/seeds"]
    assert "bench.robust.max_n" in swept["bench/layers"]
    assert compose_job("train", ["sweep=train/sharing"])["method"]["shared"] is True
    assert compose_job("bench", ["sweep=bench/prune"])["bench"]["name"] == "table3"


def test_training_sweeps_skip_measured_jobs_and_a_single_run_does_not():
    assert compose_job("train", [])["skip_measured"] is False
    for sweep in sweep_options("train"):
        assert compose_job("train", [f"sweep={sweep}"])["skip_measured"] is True
        assert (
            compose_job("train", [f"sweep={sweep}", "skip_measured=false"])["skip_measured"]
            is False
        )


@pytest.mark.parametrize("app", ["train", "eval"])
def test_every_multirun_skips_measured_jobs_by_default_and_a_single_run_does_not(app):
    # Not only the sweep files: `-m optim.lr=1e-3,1e-4` (no sweep=) retrained every job on a
    # rerun, as the Makefile had to pass skip_measured=true itself.
    def skip_measured(mode: RunMode, *overrides: str) -> bool:
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            cfg = compose(app, list(overrides), return_hydra_config=True)
        cfg.hydra.mode = mode
        HydraConfig.instance().set_config(cfg)
        return cfg.skip_measured

    assert skip_measured(RunMode.MULTIRUN) is True
    assert skip_measured(RunMode.RUN) is False
    assert skip_measured(RunMode.MULTIRUN, "skip_measured=false") is False
    assert skip_measured(RunMode.RUN, "skip_measured=true") is True


def test_bench_sweeps_set_only_their_grid_and_swept_keys():
    """So each job's setting shows in its overrides (variant tables follow them), and the
    ``sweep=`` choice itself is no setting of the grid."""
    for path in (CONF / "sweep" / "bench").glob("*.yaml"):
        node = OmegaConf.to_container(OmegaConf.load(path))
        assert set(node) == {"defaults", "hydra"}, path
        assert set(node["hydra"]) == {"sweeper"} and set(node["hydra"]["sweeper"]) == {"params"}
        assert [list(d) for d in node["defaults"]] == [["override /bench"]], path
    kept = setting_overrides(
        ["sweep=bench/tasks", "bench=table2", "bench.num_tasks=[2]", "logger=none", "model=tiny"],
        "table2",
    )
    assert kept == ["bench.num_tasks=[2]", "model=tiny"]
    assert setting_overrides(["bench=table3", "logger.wandb.offline=false"], "table3") == []


def test_the_slurm_launcher_sets_partition_gpus_and_time_and_its_jobs_train_on_the_gpu(
    monkeypatch,
):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(
            "train",
            ["hydra/launcher=slurm", "hydra.launcher.partition=gpu"],
            return_hydra_config=True,
        )
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher") and launcher.partition == "gpu"
    assert launcher.gpus_per_node == 1 and launcher.timeout_min == 240
    # the trainer resolves where it is read: on the login node (no CUDA) the CPU, on the job's
    # node the GPU it was given, in its mixed precision
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert cfg.trainer.accelerator == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    assert cfg.trainer.accelerator == "gpu" and cfg.trainer.devices == 1
    assert cfg.trainer.precision == "bf16-mixed"
    for app, launcher in (("train", "submitit_local"), ("bench", "slurm"), ("bench", "joblib")):
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            cfg = compose(app, [f"hydra/launcher={launcher}"], return_hydra_config=True)
        assert cfg.hydra.launcher._target_.startswith("hydra_plugins.")


def test_run_and_sweep_folders_are_unique_per_run():
    dirs = set()
    for _ in range(3):
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            cfg = compose("train", [], return_hydra_config=True)
        dirs.add((cfg.hydra.run.dir, cfg.hydra.sweep.dir))
        assert cfg.hydra.run.dir.split("/")[-1] == cfg.hydra.sweep.dir.split("/")[-1]
        assert re.fullmatch(r"\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d-[0-9a-f]{6}", cfg.hydra.run.dir[-26:])
    assert len(dirs) == 3  # composed within one second, yet three folders
    # W&B writes into the run's own folder
    logger = OmegaConf.to_container(OmegaConf.load(CONF / "logger" / "wandb.yaml"))
    assert logger["wandb"]["save_dir"] == "${oc.select:paths.output_dir,null}"
    paths = OmegaConf.to_container(OmegaConf.load(CONF / "paths" / "train.yaml"))
    assert paths["output_dir"] == "${hydra:runtime.output_dir}"


# --------------------------------------------------------- the README's sweeps, for real
def readme_sweep_line(launcher: str) -> tuple[str, list[str]]:
    [(line, app, args)] = [c for c in README_COMMANDS if f"hydra/launcher={launcher}" in c[0]]
    assert app == "train" and "sweep=train/layers" in args and "model=tiny" in args
    return line, args


def run_sweep(args: list[str], tmp_path: Path, env: dict) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "adapterdrop.cli.train", *args, *small_run(tmp_path)]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=900, env=env)


def small_run(tmp_path: Path) -> list[str]:
    """Where a test's sweep writes, and 16 examples of the real data."""
    return [
        f"data.data_dir={SHARED_DATA}",
        "data.limit_examples=16",
        "data.batch_size=8",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        f"paths.results_root={tmp_path}/results",
        f"paths.checkpoints_root={tmp_path}/checkpoints",
        f"paths.adapters_root={tmp_path}/adapters",
        f"hydra.sweep.dir={tmp_path}/multirun",
    ]


def job_point(args: list[str], job: list[str], tmp_path: Path) -> tuple[str, str]:
    """Experiment and point id of one job of the sweep, as the job computes them."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", [*job, *small_run(tmp_path)[:-1], "paths.output_dir=/unused"])
    return cfg.experiment_name, point_id(result_config(cfg))


@pytest.mark.slow
@NEEDS_DATA
@pytest.mark.parametrize("launcher", ["joblib", "submitit_local"])
def test_the_readme_sweep_runs_lists_a_failed_job_and_a_rerun_resumes(launcher, tmp_path):
    """The README's 2-point sweep over dropped layers on the tiny model, through ``launcher``:
    with job 1's point locked by another process it fails while job 0 finishes, the sweep lists
    it and exits non-zero; the same command again skips job 0 and trains job 1."""
    _, args = readme_sweep_line(launcher)
    env = {
        **os.environ,
        "WANDB_MODE": "offline",
        "WANDB_SILENT": "true",
        "WANDB_DATA_DIR": str(tmp_path / "wandb-data"),
        "WANDB_CACHE_DIR": str(tmp_path / "wandb-cache"),
        "WANDB_CONFIG_DIR": str(tmp_path / "wandb-config"),
    }
    jobs = job_overrides("train", [*args, *small_run(tmp_path)])
    assert [j[0] for j in jobs] == ["drop.n=0", "drop.n=1"]
    (experiment, first), (_, second) = (job_point(args, job, tmp_path) for job in jobs)
    results = tmp_path / "results"

    with locked(results / experiment, f".{second}.lock"):  # another run holds job 1's point
        done = run_sweep(args, tmp_path, env)
    assert done.returncode != 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "1 of 2 job(s) failed:" in done.stderr and "job 1 (drop.n=1" in done.stderr
    assert "is in use by" in done.stderr
    ok = result_path(results, experiment, first)
    assert (
        read_result(ok)["status"] == "ok" and not result_path(results, experiment, second).exists()
    )
    statuses = {
        json.loads(p.read_text())["job"]: json.loads(p.read_text())["status"]
        for p in (tmp_path / "multirun").glob(f"*/{STATUS_FILE}")
    }
    assert statuses == {0: "ok", 1: "failed"}
    wandb_runs = sorted((tmp_path / "multirun").glob("*/wandb/offline-run-*"))
    assert [p.parts[-3] for p in wandb_runs] == ["0"]  # job 0's W&B run, in its own folder

    created = read_result(ok)["created_at"]
    again = run_sweep(args, tmp_path, env)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert read_result(ok)["created_at"] == created  # skipped, not retrained
    assert "already measured" in (tmp_path / "multirun" / "0" / "train.log").read_text()
    assert read_result(result_path(results, experiment, second))["status"] == "ok"


def test_a_sweep_logs_each_job_of_its_total_with_the_time_left(monkeypatch, caplog):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", ["experiment=methods"], return_hydra_config=True)
    cfg.hydra.overrides.task = ["experiment=methods", "data=glue/rte,glue/stsb"]  # as with -m
    assert sweep_size(cfg) == 8 * 2  # the experiment's 8 methods, the command line's 2 tasks
    progress = SweepProgress()
    clock = iter([0.0, 0.0, 600.0])
    monkeypatch.setattr(jobs.time, "monotonic", lambda: next(clock))
    progress.on_multirun_start(cfg)
    job = SimpleNamespace(mode=RunMode.MULTIRUN, job=SimpleNamespace(num=0))
    monkeypatch.setattr(jobs.HydraConfig, "get", lambda: job)
    with caplog.at_level(logging.INFO, logger="adapterdrop.cli.jobs"):
        progress.on_job_start(cfg)
        progress.on_job_end(cfg, None)
        job.job.num = 1
        progress.on_job_start(cfg)
    assert "job 1/16, 0 min elapsed" in caplog.text
    assert "job 2/16, 10 min elapsed, about 2:30 h left" in caplog.text  # 15 jobs x 10 min


def test_a_single_run_logs_no_job_number_and_warns_nothing(monkeypatch, caplog, recwarn):
    # Hydra calls on_job_start for a single run too, where hydra.job.num is missing: the
    # callback raised there, and Hydra's warning about it opened every run's output.
    single = SimpleNamespace(mode=RunMode.RUN, job=SimpleNamespace())
    monkeypatch.setattr(jobs.HydraConfig, "get", lambda: single)
    with caplog.at_level(logging.INFO, logger="adapterdrop.cli.jobs"):
        SweepProgress().on_job_start(OmegaConf.create({}))
    assert caplog.text == "" and not recwarn.list


def test_ctrl_c_in_a_job_stops_the_sweep_and_marks_the_job_interrupted(tmp_path):
    """Lightning turns a Ctrl-C into a graceful shutdown and ``SystemExit(1)``, and ignores
    any further Ctrl-C: counted as one failed job, the sweep would go on unstoppable."""
    from pytorch_lightning.demos.boring_classes import BoringModel

    class CtrlC(pl.Callback):
        def on_train_batch_start(self, *args):
            raise KeyboardInterrupt

    @sweep_job
    def fit(cfg):
        quiet = {"logger": False, "enable_progress_bar": False, "enable_model_summary": False}
        pl.Trainer(max_steps=2, callbacks=[CtrlC()], **quiet).fit(BoringModel())

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", [], return_hydra_config=True)
    cfg.hydra.mode = RunMode.MULTIRUN
    cfg.hydra.runtime.output_dir, cfg.hydra.job.num = str(tmp_path), 3
    previous = HydraConfig.instance().cfg
    HydraConfig.instance().set_config(cfg)
    handler = signal.getsignal(signal.SIGINT)
    try:
        with pytest.raises(KeyboardInterrupt, match="sweep interrupted in job"):
            fit(cfg)
    finally:
        signal.signal(signal.SIGINT, handler)  # Lightning left Ctrl-C ignored
        HydraConfig.instance().cfg = previous  # later tests must not see a multirun job
    status = json.loads((tmp_path / STATUS_FILE).read_text())
    assert status["status"] == "interrupted"
