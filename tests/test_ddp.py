"""Multi-device training (``trainer=ddp``): every process scores a shard of the validation set,
the metrics are those of the whole set, and only the first process writes."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from hydra.utils import instantiate
from pytorch_lightning.strategies import DDPStrategy

from adapterdrop.cli.eval import evaluate
from adapterdrop.cli.train import result_config
from adapterdrop.data import ROW_KEY, get_task_spec, read_split
from adapterdrop.data.datamodule import subsample
from adapterdrop.results import iter_result_files, point_id, read_result
from test_eval import compose_eval
from test_train import (
    DATA_DIR,
    compose_train,
    loader,
    quiet_trainer,
    shrunk,
    synthetic_batch,
    tiny_module,
)

MULTIRC = get_task_spec("superglue/multirc")
NEEDS_MULTIRC = pytest.mark.skipif(
    not (DATA_DIR / "superglue" / "MultiRC" / "val.jsonl").is_file(),
    reason=f"real SuperGLUE MultiRC files not found under {DATA_DIR}",
)
#: MultiRC answers grouped by question, 25 of them in validation: odd, so the sampler of two
#: processes repeats one to fill the second shard.
LIMIT = 20
#: Pretrained, so that a fresh head's predictions differ by answer (the random tiny model gives
#: every answer one label), and F1a depends on which outputs are scored.
MODEL, LAYERS = "minilm-l6", 6
DATA = [
    f"model={MODEL}",
    "data=superglue/multirc",
    f"data.data_dir={DATA_DIR}",
    f"data.limit_examples={LIMIT}",
    "data.batch_size=4",
    "data.eval_batch_size=4",
    "data.max_length=64",
    "trainer.accelerator=cpu",
    "trainer.precision=32-true",  # exact comparisons, on any CPU
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
]


def test_ddp_config_is_the_default_trainer_on_two_processes_and_another_training(tmp_path):
    ddp = compose_train("trainer=ddp", "trainer.accelerator=cpu", f"paths.output_dir={tmp_path}")
    default = compose_train("trainer.accelerator=cpu", f"paths.output_dir={tmp_path}")
    assert dict(ddp.trainer, devices=1, strategy=None) == dict(default.trainer, strategy=None)
    assert ddp.trainer.strategy.find_unused_parameters  # dropped layers' adapters get no grad
    trainer = instantiate(ddp.trainer, logger=False)
    assert isinstance(trainer.strategy, DDPStrategy) and trainer.num_devices == 2
    one, two = shrunk(tmp_path), shrunk(tmp_path, "trainer=ddp")
    assert point_id(result_config(one, with_data=False)) != point_id(
        result_config(two, with_data=False)
    )


def test_repeated_rows_count_once_and_the_loss_is_over_the_whole_set():
    """What a padded DistributedSampler hands a process: a row twice (here 3)."""
    module = tiny_module()
    examples = synthetic_batch(5)
    module.eval()
    with torch.no_grad():
        predictions = module(examples, 0).argmax(-1)
    # two right, three wrong: counting row 3 twice would score 2/6, not 2/5
    examples["labels"] = torch.cat([predictions[:2], 1 - predictions[2:]])
    batches = [
        {**{key: value[rows] for key, value in examples.items()}, ROW_KEY: torch.tensor(rows)}
        for rows in ([3, 4, 0], [1, 2, 3])
    ]
    [result] = quiet_trainer().validate(module, loader(batches), verbose=False)
    assert result["val/accuracy"] == pytest.approx(2 / 5)
    with torch.no_grad():
        expected = module.loss(module(examples, 0), examples["labels"]).item()
    assert result["val/loss"] == pytest.approx(expected, rel=1e-6)


@NEEDS_MULTIRC
def test_a_two_process_run_stores_the_metrics_one_process_gives_its_weights(tmp_path):
    validation = subsample(read_split(MULTIRC, DATA_DIR, "validation"), LIMIT, 42, by_group=True)
    assert len(validation) % 2 == 1  # the second process's shard is padded with a repeat
    command = [
        sys.executable,
        "-m",
        "adapterdrop.cli.train",
        "trainer=ddp",
        "trainer.devices=2",
        *DATA,
        "logger=none",
        "eval_sweep=true",
        "trainer.max_steps=2",
        f"data.cache_dir={tmp_path / 'cache'}",
        f"paths.root={tmp_path / 'results'}",
        f"paths.checkpoints_root={tmp_path / 'checkpoints'}",
        f"paths.adapters_root={tmp_path / 'adapters'}",
    ]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Starting with 2 processes" in done.stdout + done.stderr

    files = list(iter_result_files(tmp_path / "results" / "raw"))
    assert len(files) == 1  # the second process wrote nothing, not even a failed record
    record = read_result(files[0])
    assert record["status"] == "ok" and record["config"]["trainer"]["devices"] == 2
    [adapter] = (tmp_path / "adapters" / "train").iterdir()
    assert record["artefacts"] == {"adapter": str(adapter)}
    assert not (tmp_path / "checkpoints" / "train" / record["point_id"]).exists()

    # the same weights scored on one process, every validation example once in loader order
    [single] = evaluate(compose_eval(tmp_path, *DATA, f"adapters=[{adapter}]"))
    stored = {k: v for k, v in record["metrics"].items() if k.startswith("val/")}
    sweep = {f"val/{m}@n={n}" for m in MULTIRC.metrics for n in range(LAYERS)}
    assert sweep | {"val/f1a", "val/em", "val/loss"} <= set(stored)
    loss = stored.pop("val/loss")
    true = sum(example.label for example in validation) / len(validation)
    assert 0 < stored["val/f1a"] != pytest.approx(2 * true / (true + 1))  # not one label for all
    assert {k: single[k] for k in stored} == stored  # exactly (F1a, exact match)
    assert loss == pytest.approx(single["val/loss"], rel=1e-5)  # shards batch differently
