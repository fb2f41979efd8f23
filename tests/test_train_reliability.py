"""Training fails early and loudly, never loses a good result, and resumes after a kill."""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from adapterdrop.cli.train import result_config, train
from adapterdrop.data import DataError
from adapterdrop.results import iter_result_files, point_id, read_result, result_path
from adapterdrop.train import AdapterDropModule
from adapterdrop.train import module as module_file
from adapterdrop.train.clock import STEP_S
from conftest import REPO
from test_train import DATA_DIR, NEEDS_RTE, shrunk


def _module_args(cfg) -> dict:
    plain = OmegaConf.to_container(cfg, resolve=True)
    keys = ("model", "method", "drop", "optim", "seed")
    return {k: plain[k] for k in keys} | {"task": plain["data"]["task"]}


def _buffers(cfg) -> set[str]:
    return {n for n, _ in AdapterDropModule(**_module_args(cfg)).named_buffers()}


@pytest.fixture
def no_model(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before the config was checked")

    monkeypatch.setattr(module_file, "load_backbone", refuse)


def records(tmp_path) -> list[dict]:
    return [read_result(p) for p in iter_result_files(tmp_path / "results")]


@pytest.mark.parametrize(
    ("override", "error", "message"),
    [
        ("experiment_name=../x", ValueError, r"experiment_name: experiment must be a plain"),
        ("data.max_length=10000", ValueError, r"data.max_length=10000 exceeds model 'tiny'"),
        ("trainer.max_epochs=abc", ValueError, r"trainer.max_epochs must be an int >= -1"),
        ("data.batch_size=0", ValueError, r"data.batch_size must be an int >= 1, got 0"),
        ("data.limit_examples=-5", ValueError, r"data.limit_examples must be an int >= 1"),
        ("data.data_dir=/nonexistent", DataError, r"/nonexistent"),
        # switches: a string such as "maybe" read as true and the run went ahead
        ("skip_measured=maybe", ValueError, r"skip_measured must be true or false, got 'maybe'"),
        ("resume=maybe", ValueError, r"resume must be true or false, got 'maybe'"),
        ("checkpoint_every_n_steps=0", ValueError, r"checkpoint_every_n_steps \(null: every"),
    ],
)
def test_bad_runs_fail_before_any_model(tmp_path, no_model, override, error, message):
    cfg = shrunk(tmp_path, "logger=none", override)
    with pytest.raises(error, match=message):
        train(cfg)
    written = records(tmp_path)
    if override.startswith("experiment_name"):
        assert written == []  # nowhere valid to record it
    else:  # a job that fails its checks still leaves a failed record
        assert [r["status"] for r in written] == ["failed"]


@pytest.mark.parametrize("app", ["train", "eval"])
def test_a_bad_experiment_name_keeps_hydras_folder_and_log_in_outputs(app):
    # Hydra wrote <run folder>/../x.log and outputs/x/ before the run refused the name.
    with initialize_config_dir(version_base="1.3", config_dir=str(REPO / "conf")):
        cfg = compose(app, ["experiment_name=../x"], return_hydra_config=True)
    assert cfg.hydra.job.name == "_x"
    assert cfg.hydra.run.dir.startswith(f"outputs/{app}/_x/")


def test_an_unwritable_results_root_fails_before_any_model(tmp_path, no_model):
    blocker = tmp_path / "a-file"  # a folder cannot be made under a file, even by root
    blocker.write_text("")
    with pytest.raises(PermissionError, match=r"cannot be written \(.*a-file is not a writable"):
        train(shrunk(tmp_path, "logger=none", f"paths.results_root={blocker}/results"))
    if Path("/proc").is_dir():  # writable by its mode bits for root, yet no folder can be made
        with pytest.raises(PermissionError, match="cannot be written"):
            train(shrunk(tmp_path, "logger=none", "paths.results_root=/proc/results"))


@NEEDS_RTE
def test_a_missing_train_split_fails_before_any_model(tmp_path, no_model):
    # It was found inside trainer.fit, after the backbone had loaded.
    task = tmp_path / "data" / "glue" / "RTE"
    task.mkdir(parents=True)
    shutil.copy(DATA_DIR / "glue" / "RTE" / "dev.tsv", task)
    with pytest.raises(DataError, match=r"Missing glue/rte split\(s\) train \(needed by stage fit"):
        train(shrunk(tmp_path, "logger=none", f"data.data_dir={tmp_path / 'data'}"))
    assert [r["status"] for r in records(tmp_path)] == ["failed"]


@NEEDS_RTE
def test_other_data_files_are_another_result(tmp_path):
    copy = tmp_path / "data" / "glue" / "RTE"
    shutil.copytree(DATA_DIR / "glue" / "RTE", copy)
    same = result_config(shrunk(tmp_path, f"data.data_dir={tmp_path / 'data'}"))
    assert point_id(same) == point_id(result_config(shrunk(tmp_path)))  # same bytes elsewhere
    with (copy / "dev.tsv").open("a") as fh:
        fh.write("99999\tA changed file.\tIt is.\tentailment\n")
    changed = result_config(shrunk(tmp_path, f"data.data_dir={tmp_path / 'data'}"))
    assert point_id(changed) != point_id(same)
    assert changed["data_content"]["validation"] != same["data_content"]["validation"]


@NEEDS_RTE
def test_a_killed_run_resumes_from_its_last_checkpoint(tmp_path, monkeypatch, caplog):
    overrides = ("logger=none", "trainer.max_steps=4", "checkpoint_every_n_steps=2")
    cfg = shrunk(tmp_path, *overrides)
    original = AdapterDropModule.training_step
    seen: list[int] = []

    def killed_at_step_3(self, batch, batch_idx):
        seen.append(self.global_step)
        if self.global_step == 3:
            raise RuntimeError("killed")
        return original(self, batch, batch_idx)

    monkeypatch.setattr(AdapterDropModule, "training_step", killed_at_step_3)
    with pytest.raises(RuntimeError, match="killed"):
        train(cfg)
    pid = point_id(result_config(cfg))
    checkpoint = tmp_path / "checkpoints" / "train" / pid / "last.ckpt"
    assert checkpoint.is_file() and seen == [0, 1, 2, 3]
    saved = torch.load(checkpoint, weights_only=False)["state_dict"]
    trained = {
        n for n, p in AdapterDropModule(**_module_args(cfg)).named_parameters() if p.requires_grad
    }
    assert set(saved) <= trained | _buffers(cfg) and trained <= set(saved)  # no frozen weight

    def recorded(self, batch, batch_idx):
        seen.append(self.global_step)
        return original(self, batch, batch_idx)

    seen.clear()
    monkeypatch.setattr(AdapterDropModule, "training_step", recorded)
    with caplog.at_level(logging.INFO, logger="adapterdrop.cli.train"):
        metrics = train(shrunk(tmp_path, *overrides))
    assert f"resuming from {checkpoint}" in caplog.text
    assert seen == [2, 3]  # steps 0 and 1 were not redone
    record = read_result(result_path(tmp_path / "results", "train", pid))
    assert record["metrics"] == metrics
    assert len(record["samples"][STEP_S]) == 4  # the clock resumed too: 2 saved + 2 new steps
    assert not checkpoint.parent.exists()  # the result is written: nothing left to resume
    assert not result_path(tmp_path / "results", "train", pid, "failed").exists()


def run_multirun(tmp_path: Path, *overrides: str) -> subprocess.CompletedProcess:
    """``python -m adapterdrop.cli.train -m ...`` on the tiny model, one step per job, with
    every output under ``tmp_path`` (the sweep's job folders in ``multirun/``)."""
    command = [
        sys.executable,
        "-m",
        "adapterdrop.cli.train",
        "-m",
        *overrides,
        "model=tiny",
        "logger=none",
        "data.limit_examples=16",
        "data.batch_size=8",
        "trainer.max_steps=1",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        f"paths.results_root={tmp_path}/results",
        f"paths.checkpoints_root={tmp_path}/checkpoints",
        f"paths.adapters_root={tmp_path}/adapters",
        f"hydra.sweep.dir={tmp_path}/multirun",
    ]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)


@NEEDS_RTE
def test_a_multirun_names_every_failed_job_and_exits_non_zero(tmp_path):
    done = run_multirun(tmp_path, "optim.lr=1e-3,-1,-2", f"data.data_dir={DATA_DIR}")
    assert done.returncode != 0
    assert "2 of 3 job(s) failed:" in done.stderr
    assert "job 1 (optim.lr=-1" in done.stderr and "job 2 (optim.lr=-2" in done.stderr
    assert "optim.lr must be > 0, got -2" in done.stderr
    statuses = sorted(r["status"] for r in records(tmp_path))
    assert statuses == ["failed", "failed", "ok"]


@NEEDS_RTE
def test_a_bad_data_dir_beside_a_good_one_keeps_the_good_result_and_a_rerun_skips_it(tmp_path):
    # -m data.data_dir=good,bad ended with one failed record and the good metrics gone: the
    # data directory was no part of the run's identity. Every multirun skips measured jobs.
    bad = tmp_path / "bad"
    shutil.copytree(DATA_DIR / "glue" / "RTE", bad / "glue" / "RTE")
    (bad / "glue" / "RTE" / "dev.tsv").write_text("")
    sweep = f"data.data_dir={DATA_DIR},{bad}"
    first = run_multirun(tmp_path, sweep)
    assert first.returncode != 0 and "1 of 2 job(s) failed:" in first.stderr
    assert (
        f"job 1 (data.data_dir={bad}" in first.stderr
        and "dev.tsv:1: the file is empty" in first.stderr
    )
    by_status = {r["status"]: r for r in records(tmp_path)}
    assert sorted(by_status) == ["failed", "ok"]
    good = result_path(tmp_path / "results", "train", by_status["ok"]["point_id"])
    created = read_result(good)["created_at"]
    again = run_multirun(tmp_path, sweep)
    assert again.returncode != 0 and "1 of 2 job(s) failed:" in again.stderr
    assert "already measured" in (tmp_path / "multirun" / "0" / "train.log").read_text()
    assert read_result(good)["created_at"] == created and read_result(good)["status"] == "ok"
    assert sorted(r["status"] for r in records(tmp_path)) == ["failed", "ok"]


@NEEDS_RTE
def test_a_training_code_version_bump_is_another_result(tmp_path, monkeypatch):
    before = result_config(shrunk(tmp_path))
    monkeypatch.setattr(module_file, "CODE_VERSION", 2)
    after = result_config(shrunk(tmp_path))
    assert "code_version" not in before and after["code_version"] == 2
    assert point_id(after) != point_id(before)
