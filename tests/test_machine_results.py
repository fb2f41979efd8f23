"""Results belong to the machine that measured them: identity, folders, defaults, versions, and
tables rebuilt per machine and side by side."""

from __future__ import annotations

import json
import logging

import pandas as pd
import pytest
import torch

from adapterdrop.bench import devices, machine
from adapterdrop.bench.experiments import get_experiment
from adapterdrop.bench.sweep import run_benchmark
from adapterdrop.reporting.__main__ import main as make_tables
from adapterdrop.reporting.benchmarks import rebuild_all
from conftest import bench_cfg

ZEN4 = {"avx2": True, "avx512f": True, "avx512_bf16": True}
ZEN3 = {"avx2": True}


def test_cpu_tags_tell_the_isa_and_threads_apart():
    zen4 = {"device": "cpu", "cpu": "AMD EPYC", "isa": machine.cpu_isa(ZEN4), "threads": 2}
    zen3 = {**zen4, "isa": machine.cpu_isa(ZEN3)}
    assert machine.tag(zen4) == "cpu-amd-epyc-avx512bf16-2t"
    assert machine.tag(zen3) == "cpu-amd-epyc-avx2-2t"
    assert machine.tag({"device": "cuda", "gpu": "NVIDIA H200", "gpu_count": 1}) == (
        "cuda-nvidia-h200-x1"
    )
    assert machine.native_bf16(ZEN4) and not machine.native_bf16(ZEN3)
    assert machine.cpu_isa({"amx_bf16": True, **ZEN4}) == "amx"


@pytest.mark.parametrize("bad", ["", "Results", "../x", "a/b", "-x"])
def test_a_machine_tag_is_one_plain_folder_name(bad):
    with pytest.raises(ValueError, match="machine tag"):
        machine.check_tag(bad)


@pytest.mark.parametrize(("flags", "expected"), [(ZEN4, "bf16"), (ZEN3, "fp32")])
def test_auto_dtype_is_bf16_only_with_native_bf16(monkeypatch, flags, expected):
    env = {"cpu": {"flags": flags}}
    monkeypatch.setattr(devices, "static_environment", lambda: env)
    assert devices.resolve_dtype("auto", torch.device("cpu")) == expected
    assert devices.resolve_dtype("fp16", torch.device("cpu")) == "fp16"
    with pytest.raises(ValueError, match="unknown dtype 'half'"):
        devices.resolve_dtype("half", torch.device("cpu"))


def test_a_gpu_torch_cannot_see_fails_instead_of_timing_the_cpu(monkeypatch):
    monkeypatch.setattr(devices, "nvidia_smi_gpus", lambda: ["GPU 0: NVIDIA H200 (UUID: x)"])
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for device in ("auto", "cuda"):
        with pytest.raises(RuntimeError, match="nvidia-smi lists 1 GPU.*CUDA build"):
            devices.resolve_device(device)
    assert devices.resolve_device("cpu").type == "cpu"


def test_points_record_the_resolved_device_dtype_and_machine(tmp_path):
    cfg = bench_cfg(tmp_path, "table2", "device=auto", "dtype=auto")
    point = get_experiment("table2").points(cfg)[0]
    assert point["device"] == "cpu" and point["dtype"] in ("fp32", "bf16")
    assert point["machine"] == machine.fingerprint(torch.device("cpu"), point["threads"])
    assert point["tf32"] is False


def _machine_cfg(tmp_path, tag: str, *extra: str) -> dict:
    """Table 2 on the tiny model, results under ``tmp_path/<tag>/`` like the real layout."""
    return bench_cfg(
        tmp_path,
        "table2",
        "bench.num_tasks=[2]",
        "bench.processes=1",
        f"paths.root={tmp_path}",
        "paths.results_root=null",
        "paths.tables_root=null",
        f"machine={tag}",
        *extra,
    )


def test_another_machine_measures_its_own_points(tmp_path):
    first, _ = run_benchmark(_machine_cfg(tmp_path, "reference"))
    again, _ = run_benchmark(_machine_cfg(tmp_path, "reference"))
    other, _ = run_benchmark(_machine_cfg(tmp_path, "fresh-clone"))
    assert len(first.measured) == 1 and len(again.skipped) == 1
    assert len(other.measured) == 1 and not other.skipped
    for tag in ("reference", "fresh-clone"):
        assert len(list((tmp_path / tag / "raw" / "table2").glob("*.json"))) == 1
        assert (tmp_path / tag / "tables" / "table2.md").exists()


def test_a_version_change_remeasures_unless_kept(tmp_path, caplog):
    run_benchmark(_machine_cfg(tmp_path, "m"))
    (path,) = (tmp_path / "m" / "raw" / "table2").glob("*.json")
    record = json.loads(path.read_text())
    record["environment"]["versions"]["torch"] = "0.0.1"
    path.write_text(json.dumps(record))
    kept, _ = run_benchmark(_machine_cfg(tmp_path, "m", "on_version_change=keep"))
    assert len(kept.skipped) == 1
    with caplog.at_level(logging.WARNING):
        redone, _ = run_benchmark(_machine_cfg(tmp_path, "m"))
    assert len(redone.measured) == 1
    assert "torch 0.0.1 -> " in caplog.text and "on_version_change=keep" in caplog.text
    with pytest.raises(ValueError, match="on_version_change='sometimes'"):
        run_benchmark(_machine_cfg(tmp_path, "m", "on_version_change=sometimes"))


def test_make_tables_rebuilds_every_machine_and_compares_them(tmp_path):
    run_benchmark(_machine_cfg(tmp_path, "box-a"))
    run_benchmark(_machine_cfg(tmp_path, "box-b"))
    before = {p: p.read_bytes() for p in tmp_path.glob("*/tables/*")}
    for path in before:
        path.unlink() if not path.name.endswith(".run.json") else None
    built = rebuild_all(tmp_path)
    assert set(built) == {"box-a", "box-b"} and "table2" in built["box-a"]["table2"]
    assert {p: p.read_bytes() for p in tmp_path.glob("*/tables/*")} == before
    comparison = pd.read_csv(tmp_path / "comparison" / "table2.csv")
    assert list(comparison["num_tasks"]) == [2]
    assert {"ours_per_layer_% @ box-a", "ours_per_layer_% @ box-b"} <= set(comparison)


def test_make_tables_is_one_entry_point_that_refuses_an_empty_root(tmp_path, capsys):
    with pytest.raises(SystemExit, match="no built tables under .* and no Fig. 2 results"):
        make_tables(["--root", str(tmp_path)])
    run_benchmark(_machine_cfg(tmp_path, "box-a"))
    table = tmp_path / "box-a" / "tables" / "table2.md"
    before = table.read_bytes()
    table.unlink()
    make_tables(["--root", str(tmp_path)])  # no Fig. 2 results here: benchmarks alone
    assert table.read_bytes() == before
    assert "box-a: table2: table2, table2_curve" in capsys.readouterr().out
    with pytest.raises(FileNotFoundError, match="no Fig. 2 results"):
        make_tables(["--root", str(tmp_path), "--only", "fig2"])
