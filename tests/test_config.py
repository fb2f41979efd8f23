"""Every config under conf/ composes through Hydra's compose API and builds what it names."""

from __future__ import annotations

from pathlib import Path

import hydra
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf, open_dict

from adapterdrop.bench.experiments import EXPERIMENTS, get_experiment
from adapterdrop.bench.sweep import apply_preset
from adapterdrop.bench.workloads import TIMING_KEYS
from adapterdrop.engine import AdapterEncoder
from adapterdrop.methods import build_method
from adapterdrop.models import load_backbone
from conftest import CONF


def options(group: str) -> list[str]:
    """Option names of a config group, nested folders included (``glue/rte``)."""
    root = CONF / group
    return sorted(
        str(path.relative_to(root).with_suffix(""))
        for path in root.rglob("*.yaml")
        if not path.name.startswith("_")
    )


def composed(primary: str, overrides: list[str], keep_hydra: bool = False) -> dict:
    """The resolved config as a run would see it (``${hydra:...}`` included)."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name=primary, overrides=overrides, return_hydra_config=True)
        HydraConfig.instance().set_config(cfg)  # lets ${hydra:...} interpolations resolve
        if keep_hydra:
            return OmegaConf.to_container(cfg)
        with open_dict(cfg):
            del cfg["hydra"]
        return OmegaConf.to_container(cfg, resolve=True)


@pytest.mark.parametrize("primary", ["train", "bench"])
def test_primary_configs_compose_with_defaults(primary):
    cfg = composed(primary, [])
    assert cfg["model"]["name"]


@pytest.mark.parametrize("name", [n for n in options("model") if n != "roberta-large"])
def test_model_configs_build(name):
    cfg = composed("bench", [f"model={name}"])
    backbone = load_backbone(cfg["model"])
    assert backbone.num_layers == cfg["model"].get("architecture", {}).get(
        "num_hidden_layers", backbone.num_layers
    )


def test_roberta_large_composes_as_a_delta_of_roberta_base():
    model = composed("bench", ["model=roberta-large"])["model"]
    assert model["family"] == "roberta" and model["architecture"]["num_hidden_layers"] == 24
    assert model["architecture"]["vocab_size"] == 50265


@pytest.mark.parametrize("name", options("data"))
def test_data_configs_instantiate(name, monkeypatch):
    # No local directory: tasks absent from it (MNLI, BoolQ, ...) would be refused at once.
    monkeypatch.delenv("ADAPTERDROP_DATA_DIR", raising=False)
    cfg = composed("train", [f"data={name}"])
    tokenizer = load_backbone(composed("bench", ["model=tiny"])["model"]).tokenizer
    datamodule = hydra.utils.instantiate(cfg["data"], tokenizer=tokenizer)
    assert datamodule.spec.name


@pytest.mark.parametrize("name", options("method"))
def test_method_configs_build_on_the_tiny_model(name):
    cfg = composed("train", [f"method={name}", "model=tiny"])
    encoder = AdapterEncoder(load_backbone(cfg["model"]).model)
    method_cfg = dict(cfg["method"])
    if method_cfg.get("adapters") is not None:  # fusion fuses existing task adapters
        for task in ("a", "b"):
            build_method({"name": "pfeiffer"}).apply(encoder, task)
        method_cfg["adapters"] = ["a", "b"]
    build_method(method_cfg).apply(encoder, "target")
    ids = torch.randint(5, 1000, (2, 6))
    with torch.inference_mode():
        out = encoder(ids, torch.ones_like(ids), tasks="target")
    assert out["target"].shape == (2, 6, encoder.hidden_size)


@pytest.mark.parametrize("group", ["trainer", "logger"])
def test_trainer_and_logger_configs_instantiate(group, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    for name in options(group):
        cfg = composed("train", [f"{group}={name}", f"paths.output_dir={tmp_path}"])
        node = cfg[group]
        if group == "logger":
            for logger_cfg in (node or {}).values():
                assert hydra.utils.instantiate(logger_cfg) is not None
        elif torch.cuda.is_available() or node.get("accelerator") != "gpu":
            assert hydra.utils.instantiate(node) is not None


@pytest.mark.parametrize("name", options("experiment"))
def test_experiment_configs_compose(name):
    primary = (
        "bench" if (CONF / "experiment" / f"{name}.yaml").read_text().count("bench") else "train"
    )
    assert composed(primary, [f"experiment={name}"])


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_bench_grids_give_valid_points(name):
    cfg = composed("bench", [f"bench={name}"])
    points = get_experiment(name).points(cfg)
    assert points and all(None not in p["timing"].values() for p in points)
    assert all(set(p["timing"]) == set(TIMING_KEYS) for p in points)


def test_a_phase_entry_adjusts_only_that_phases_budget():
    cfg = composed("bench", ["bench=table1"])
    budget = cfg["bench"]["timing"]
    by_phase = {p["phase"]: p["timing"] for p in get_experiment("table1").points(cfg)}
    assert by_phase["inference"]["min_seconds"] == budget["inference"]["min_seconds"]
    assert by_phase["training"]["min_seconds"] == budget["min_seconds"]
    assert budget["inference"]["min_seconds"] != budget["min_seconds"]
    assert by_phase["inference"]["min_reps"] == by_phase["training"]["min_reps"] == 10


def test_only_inference_points_run_in_several_processes():
    cfg = composed("bench", ["bench=table1"])
    processes = {p["phase"]: p.get("processes") for p in get_experiment("table1").points(cfg)}
    assert processes == {"inference": cfg["bench"]["inference_processes"], "training": None}
    assert cfg["bench"]["inference_processes"] > 1
    cfg = composed("bench", ["bench=table2"])
    assert cfg["bench"]["processes"] > 1
    points = get_experiment("table2").points(cfg)
    assert {p["processes"] for p in points} == {cfg["bench"]["processes"]}


def test_explicit_timing_beats_the_grid_budget_and_its_paper_preset():
    cfg = apply_preset(composed("bench", ["bench=table2", "preset=paper", "timing.min_reps=3"]))
    timing = get_experiment("table2").points(cfg)[0]["timing"]
    assert timing == {
        "warmup": 5,
        "warmup_seconds": 1.0,
        "min_reps": 3,
        "min_seconds": 2.0,
        "max_reps": 200,
    }


def test_a_grid_without_a_timing_budget_is_refused():
    cfg = composed("bench", ["bench=table2", "~bench.timing"])
    with pytest.raises(
        ValueError,
        match=r"timing \['max_reps', 'min_reps', 'min_seconds', 'warmup', 'warmup_seconds'\] unset",
    ):
        get_experiment("table2").points(cfg)


def test_launchers_compose():
    for launcher in ("joblib", "submitit_slurm", "slurm"):
        cfg = composed("train", [f"hydra/launcher={launcher}"], keep_hydra=True)
        assert cfg["hydra"]["launcher"]["_target_"].startswith("hydra_plugins.")


def test_conf_has_no_stray_files():
    stray = [p for p in Path(CONF).rglob("*") if p.is_file() and p.suffix != ".yaml"]
    assert not stray, f"non-yaml files in conf/: {stray}"
