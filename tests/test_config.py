"""Every config under conf/ composes through Hydra's compose API and builds what it names."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import hydra
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.errors import ConfigCompositionException, MissingConfigException
from omegaconf import DictConfig, OmegaConf, open_dict

from adapterdrop.bench import devices
from adapterdrop.bench.environment import static_environment
from adapterdrop.bench.experiments import EXPERIMENTS, get_experiment
from adapterdrop.bench.settings import TIMING_KEYS
from adapterdrop.cli.train import result_config
from adapterdrop.config import training_precision
from adapterdrop.engine import AdapterEncoder
from adapterdrop.methods import build_method
from adapterdrop.models import load_backbone
from adapterdrop.results import point_id
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
    parts = getattr(datamodule, "modules", {"one": datamodule})  # data=multitask: one per task
    assert parts and all(part.spec.name for part in parts.values())


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
def test_training_experiments_compose_in_the_training_app_only(name):
    assert composed("train", [f"experiment={name}"])["experiment_name"] == name
    # bench.yaml has no experiment group, and an experiment overrides training groups (trainer)
    for override in (f"experiment={name}", f"+experiment={name}"):
        with pytest.raises(ConfigCompositionException, match="Could not override"):
            composed("bench", ["bench=table2", override])


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
    cfg = composed("bench", ["bench=table2", "preset=paper", "timing.min_reps=3"])
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


# ------------------------------------------------------------------ presets (conf/preset)
#: Resolved bench configs written by the removed ``adapterdrop.bench.sweep.apply_preset``, which
#: merged each grid's ``presets:`` block in Python (conf/ as of commit f50c85a): key
#: ``<grid>/<preset>``, and ``<grid>/auto@<device torch sees>[,device=cpu]`` for preset=auto.
GOLDEN = json.loads((Path(__file__).parent / "golden" / "bench_presets.json").read_text())


def preset_case(key: str) -> tuple[list[str], bool]:
    grid, rest = key.split("/")
    preset, _, seen = rest.partition("@")
    overrides = [f"bench={grid}"] + ([] if preset == "auto" else [f"preset={preset}"])
    return overrides + (["device=cpu"] if "device=cpu" in seen else []), seen.startswith("cuda")


@pytest.mark.parametrize("key", sorted(GOLDEN))
def test_each_preset_composes_to_the_config_apply_preset_gave(key, monkeypatch):
    overrides, cuda = preset_case(key)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    cfg = composed("bench", overrides)
    cfg.pop(
        "logger"
    )  # where a run is shown (W&B), which the bench CLI keeps out of the grid's config
    assert json.loads(json.dumps(cfg)) == GOLDEN[key]  # JSON: the golden file's int keys are str


def test_preset_auto_is_recorded_as_the_preset_it_chose(monkeypatch):
    assert composed("bench", [])["preset"] == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert composed("bench", [])["preset"] == "paper"
    assert composed("bench", ["device=cpu"])["preset"] == "cpu"  # the device decides, not the box
    choices = composed("bench", ["bench=table3"], keep_hydra=True)["hydra"]["runtime"]["choices"]
    assert choices["preset"] == "auto" and choices["preset/table3@_global_"] == "paper"


@pytest.mark.parametrize(
    ("grid", "valid"), [("table1", "cpu, paper"), ("table2", "cpu, full, paper")]
)
def test_an_unknown_preset_fails_with_that_grids_choices(grid, valid):
    for preset in ("gpu", "full") if grid == "table1" else ("gpu",):
        with pytest.raises(MissingConfigException) as failure:
            composed("bench", [f"bench={grid}", f"preset={preset}"])
        assert f"Could not find 'preset/{grid}/{preset}'" in str(failure.value)
        listed = str(failure.value).split(f"Available options in 'preset/{grid}':")[1]
        assert ", ".join(line.strip() for line in listed.split("Config search")[0].split()) == (
            valid
        )


def test_every_grid_offers_cpu_and_paper_and_each_file_records_its_name():
    for grid in EXPERIMENTS:
        names = options(f"preset/{grid}")
        assert {"cpu", "paper"} <= set(names), grid
        for name in names:
            assert composed("bench", [f"bench={grid}", f"preset={name}"])["preset"] == name
    assert not list((CONF / "preset").glob("*.yaml"))  # `preset` only names the grid's choice


# ------------------------------------------------------- the model decides the layer count
@pytest.mark.parametrize("model", ["minilm-l6", "tiny", "bert-base"])
@pytest.mark.parametrize("grid", ["table1", "table2", "table3"])
def test_grids_expand_on_models_without_an_architecture_dict(grid, model):
    cfg = composed("bench", [f"bench={grid}", f"model={model}", "device=cpu"])
    points = get_experiment(grid).points(cfg)
    assert points
    if grid == "table2":
        layers = load_backbone(cfg["model"]).num_layers
        assert points[0]["dropped_layers"][0] == 0 and points[0]["dropped_layers"][-1] == layers - 1
        all_n = composed("bench", ["bench=table2", f"model={model}", "bench.dropped_layers=all"])
        assert get_experiment(grid).points(all_n)[0]["dropped_layers"] == list(range(layers))


def test_the_efficiency_grid_expands_on_minilm_with_its_depths():
    cfg = composed("bench", ["bench=efficiency", "model=minilm-l6", "preset=paper"])
    points = get_experiment("efficiency").points(cfg)
    specialized = next(p for p in points if p["study"] == "specialized")
    assert specialized["dropped_layers"] == list(range(6))


# -------------------------------------------------------------------- Fig. 2 experiments
def stored_fig2_results() -> list[Path]:
    return sorted((CONF.parent / "results" / "raw").glob("fig2_*/*.json"))


def identity(cfg: DictConfig) -> dict:
    """``result_config`` without the data digests that newer results carry (the stored Fig. 2
    results predate them): the config part of a run's identity."""
    if "with_data" in inspect.signature(result_config).parameters:
        return result_config(cfg, with_data=False)
    return result_config(cfg)


@pytest.mark.skipif(not stored_fig2_results(), reason="no stored Fig. 2 results")
def test_fig2_experiments_compose_the_stored_results_configs(monkeypatch):
    """The settings that were FIG2_ARGS live in conf/experiment/fig2_*.yaml: on a CPU like the
    one that trained them (its flags decide the precision) make's commands compose exactly
    the configs (and point ids) of results/raw/fig2_*, so skip_measured finds them; results
    trained before `data.group_by_length` existed compose with it set to false, their random
    batches."""
    by_experiment: dict[str, list] = {}
    for path in stored_fig2_results():
        by_experiment.setdefault(path.parent.name, []).append(path)
    sample = [p for paths in by_experiment.values() for p in paths[:2] + paths[-2:]]
    for path in sample:  # a few of every experiment
        record = json.loads(path.read_text())
        stored = record["config"]
        cpu = {**static_environment()["cpu"], "flags": record["environment"]["cpu"]["flags"]}
        monkeypatch.setattr(devices, "static_environment", lambda cpu=cpu: {"cpu": cpu})
        overrides = [f"experiment={stored['experiment_name']}", f"data={stored['data']['task']}"]
        if stored["drop"]["mode"] == "specialized":
            overrides.append(f"drop.n={stored['drop']['n']}")
        if stored["data"].get("limit_examples") is not None:  # make's task:examples
            overrides.append(f"data.limit_examples={stored['data']['limit_examples']}")
        experiment = OmegaConf.load(CONF / "experiment" / f"{stored['experiment_name']}.yaml")
        if stored["trainer"]["max_epochs"] != experiment.trainer.max_epochs:  # make's :epochs
            overrides.append(f"trainer.max_epochs={stored['trainer']['max_epochs']}")
        overrides.append(f"seed={stored['seed']}")  # make's FIG2_SEEDS
        legacy = "group_by_length" not in stored["data"]  # trained before the option: random
        if legacy:
            overrides.append("data.group_by_length=false")
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            cfg = compose("train", overrides=[*overrides, "skip_measured=true"])
        config = identity(cfg)
        if legacy:
            assert config["data"].pop("group_by_length") is False
        assert config == {k: v for k, v in stored.items() if k != "data_content"}, path
        if "data_content" not in stored and not legacy:
            assert point_id(config) == record["point_id"], path
    assert {p.parent.name for p in sample} >= {"fig2_robust", "fig2_specialized"}


@pytest.mark.parametrize(("model", "layers"), [("minilm-l6", 6), ("tiny", 4), ("roberta-base", 12)])
def test_fig2_specialized_sweeps_every_layer_of_the_model_above_the_first(model, layers):
    """n = 0 is the standard run's training (tests/test_fig2.py), so the sweep starts at 1."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", ["experiment=fig2_specialized", f"model={model}"], True)
    params = OmegaConf.to_container(cfg.hydra.sweeper.params, resolve=True)
    assert params == {"drop.n": f"range(1,{layers})"}
    assert cfg.drop.mode == "specialized" and cfg.drop.n == 0  # a single run: n = 0


@pytest.mark.parametrize(
    ("flags", "expected"),
    [({"avx2": True, "avx512_bf16": True}, "bf16-mixed"), ({"avx2": True}, "32-true")],
)
def test_cpu_training_precision_is_bf16_only_with_native_bf16(monkeypatch, flags, expected):
    environment = {**static_environment(), "cpu": {**static_environment()["cpu"], "flags": flags}}
    monkeypatch.setattr(devices, "static_environment", lambda: environment)
    cfg = composed("train", ["trainer=cpu"])  # the resolved config: what a result stores
    assert cfg["trainer"]["precision"] == expected
    forced = composed("train", ["trainer=cpu", "trainer.precision=bf16-mixed"])
    assert forced["trainer"]["precision"] == "bf16-mixed"


def test_gpu_training_precision_is_bf16_where_supported_and_composes_without_a_gpu(monkeypatch):
    monkeypatch.setattr(devices.torch.cuda, "is_available", lambda: False)
    assert training_precision("gpu") == "16-mixed"  # a login node: the job resolves it again
    monkeypatch.setattr(devices.torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(devices.torch.cuda, "is_bf16_supported", lambda: True)
    assert training_precision("gpu") == "bf16-mixed"
    monkeypatch.setattr(devices.torch.cuda, "is_bf16_supported", lambda: False)
    assert training_precision("gpu") == "16-mixed"
    with pytest.raises(ValueError, match=r"'tpu'.*\['cpu', 'gpu'\]"):
        training_precision("tpu")


@pytest.mark.parametrize("cuda", [False, True])
def test_the_default_trainer_is_the_one_for_the_hardware_the_job_runs_on(monkeypatch, cuda):
    """trainer=auto composes to trainer=gpu's settings where CUDA is, else trainer=cpu's, so a
    SLURM job trains on its node's GPU unasked and CPU results keep their ids."""
    monkeypatch.setattr(devices.torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(devices.torch.cuda, "is_bf16_supported", lambda: True)
    for experiment in ("", "experiment=methods"):
        overrides = [experiment] if experiment else []
        auto = composed("train", overrides)["trainer"]
        assert (
            auto
            == composed("train", [*overrides, f"trainer={'gpu' if cuda else 'cpu'}"])["trainer"]
        )
        assert auto["accelerator"] == ("gpu" if cuda else "cpu")
        assert auto["precision"] == training_precision("gpu" if cuda else "cpu")


def test_fig2_experiments_hold_the_cpu_settings_and_override_groups():
    for name in ("fig2_standard", "fig2_robust", "fig2_specialized"):
        text = (CONF / "experiment" / f"{name}.yaml").read_text()
        assert "override /model: minilm-l6" in text and "override /trainer: auto" in text
        cfg = composed("train", [f"experiment={name}"])
        assert cfg["trainer"] == composed("train", [f"experiment={name}", "trainer=cpu"])["trainer"]
        assert cfg["trainer"]["max_epochs"] == 3
        assert cfg["optim"]["lr"] == 1e-3 and cfg["model"]["name"] == "minilm-l6"
    makefile = (CONF.parent / "Makefile").read_text()
    assert "range(" not in makefile and "trainer=cpu" not in makefile


# ----------------------------------------------------------------- paths, hydra, --help
def test_paths_and_hydra_groups_give_each_app_its_folders():
    train = composed("train", [])["paths"]
    assert train["root"] == "results" and train["results_root"] == "results/raw"
    bench = composed("bench", [])["paths"]
    assert bench == {"root": "results", "results_root": None, "tables_root": None}
    runs = (
        ("train", "experiment=fig2_robust", "train/fig2_robust"),
        ("bench", "bench=table3", "bench/table3"),
    )
    for primary, override, folder in runs:
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            cfg = compose(primary, [override], return_hydra_config=True)
        assert cfg.hydra.run.dir.startswith(f"outputs/{folder}/"), cfg.hydra.run.dir
        assert cfg.hydra.sweep.dir.startswith(f"multirun/{folder}/"), cfg.hydra.sweep.dir
        assert cfg.hydra.job.chdir is False
    for primary in ("train.yaml", "bench.yaml"):  # no copies left in the primary configs
        node = OmegaConf.load(CONF / primary)
        assert (
            "paths" not in node and set(node.hydra) == {"job"} and set(node.hydra.job) == {"name"}
        )


def app_help(primary: str, overrides: list[str]) -> str:
    """The ``--help`` text of an app, as Hydra builds it (``$CONFIG`` left unsubstituted)."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name=primary, overrides=overrides, return_hydra_config=True)
        HydraConfig.instance().set_config(cfg)
        return cfg.hydra.help.template


def help_groups(text: str) -> dict[str, str]:
    block = text.split("(group=option)")[1].split("== Config ==")[0]
    return dict(line.split(": ", 1) for line in block.strip().splitlines())


def test_help_lists_only_each_apps_real_choices():
    train = help_groups(app_help("train", []))
    assert set(train) == {"experiment", "model", "data", "method", "trainer", "logger", "sweep"}
    assert train["data"].split(", ") == options("data") and "_base" not in train["data"]
    assert train["experiment"].split(", ") == options("experiment")
    assert train["sweep"].startswith(", ".join(f"train/{o}" for o in options("sweep/train")))
    bench = help_groups(app_help("bench", ["bench=table1"]))
    assert set(bench) == {"bench", "preset", "model", "device", "logger", "sweep"}
    assert bench["sweep"].startswith(", ".join(f"bench/{o}" for o in options("sweep/bench")))
    assert "train/" not in bench["sweep"] and "bench/" not in train["sweep"]
    assert bench["bench"].split(", ") == sorted(EXPERIMENTS)
    assert bench["preset"].startswith("auto, cpu, paper (those of bench=table1")
    assert bench["model"].split(", ") == options("model")
    assert "glue/rte" in app_help("train", []) and "table1" not in app_help("train", [])
