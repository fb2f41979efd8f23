"""Environment block: required keys, JSON-safe, degrades to nulls instead of raising."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import datetime, timedelta

import pytest
import torch

from adapterdrop.bench import environment
from adapterdrop.bench.environment import collect_environment, git_state, static_environment


def test_required_keys_present_and_json_safe():
    env = collect_environment()
    for key in ("hostname", "os", "cpu", "ram_bytes", "gpus", "versions", "torch_backends"):
        assert key in env
    for key in ("model", "physical_cores", "logical_cores", "affinity_cores", "flags"):
        assert key in env["cpu"]
    assert "avx512_bf16" in env["cpu"]["flags"]
    for key in ("python", "torch", "transformers", "adapters", "numpy"):
        assert key in env["versions"]
    assert env["versions"]["torch"].startswith(torch.__version__.split("+")[0])
    assert env["torch_threads"]["intra_op"] == torch.get_num_threads()
    assert set(env["git"]) == {"commit", "dirty"}
    assert env["ram_bytes"] > 0
    stamp = datetime.fromisoformat(env["timestamp_utc"])
    assert stamp.utcoffset() == timedelta(0)
    json.dumps(env, allow_nan=False)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only shape")
def test_no_gpu_is_null():
    assert collect_environment()["gpus"] is None


def test_static_part_is_cached_but_volatile_part_is_fresh(monkeypatch):
    assert static_environment() is static_environment()
    first = collect_environment()
    first["cpu"]["model"] = "mutated"  # callers must not corrupt the cache
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    second = collect_environment()
    assert second["cpu"]["model"] != "mutated"
    assert second["env_vars"]["OMP_NUM_THREADS"] == "1"


def test_missing_package_is_null(monkeypatch):
    monkeypatch.setattr(environment, "PACKAGES", ("torch", "no-such-distribution-xyz"))
    static_environment.cache_clear()
    try:
        versions = static_environment()["versions"]
    finally:
        static_environment.cache_clear()
    assert versions["no-such-distribution-xyz"] is None
    assert versions["torch"] is not None


def test_git_state_outside_a_repo_is_null(tmp_path):
    assert git_state(tmp_path) == {"commit": None, "dirty": None}


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_git_dirty_tracks_code_not_results_or_untracked(tmp_path):
    def git(*args):
        subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(tmp_path), *args],
            check=True,
            capture_output=True,
        )

    (tmp_path / "code.py").write_text("x = 1\n")
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "r.json").write_text("{}\n")
    git("init", "-q")
    git("add", ".")
    git("commit", "-q", "-m", "init")
    state = git_state(tmp_path)
    assert len(state["commit"]) == 40 and state["dirty"] is False
    (tmp_path / "results" / "r.json").write_text('{"a": 1}\n')
    (tmp_path / "untracked.txt").write_text("scratch\n")
    assert git_state(tmp_path)["dirty"] is False
    (tmp_path / "code.py").write_text("x = 2\n")
    assert git_state(tmp_path)["dirty"] is True


def test_benchmarks_pin_the_allocator_and_record_it():
    from adapterdrop.bench.allocator import allocator_settings, retain_freed_memory

    settings = retain_freed_memory()
    assert settings == allocator_settings() == collect_environment()["allocator"]
    # glibc accepts both thresholds; elsewhere the record says nothing was pinned
    assert settings["pinned_thresholds"] == (settings["allocator"] == "glibc")
