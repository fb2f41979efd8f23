"""What a training run checks before it loads a model or reads data.

Each of these used to fail only after training (an unwritable results folder, a bad experiment
name) or deep inside Lightning (a ``max_epochs`` string, a sequence longer than the model's
positions); here each fails in well under a second, naming the key, the value and what is valid.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from transformers import AutoConfig

from adapterdrop.checks import check_bool, check_int, is_int
from adapterdrop.data.multitask import is_multitask, task_keys
from adapterdrop.models import packaged_model_path
from adapterdrop.train.multitask import check_multitask_method

#: The run's switches: each must be a bool (``skip_measured=maybe`` read as true).
SWITCHES = ("skip_measured", "resume", "eval_sweep", "run_test")


def check_run(cfg: Mapping[str, Any]) -> None:
    """The run's switches, the trainer's budget and the data's sizes, on a composed training
    config (the results folder is checked first, by
    :func:`adapterdrop.results.check_writable`)."""
    for key in SWITCHES:
        check_bool(cfg[key], key)
    every = cfg.get("checkpoint_every_n_steps")
    if every is not None:  # 0 turned step checkpoints off without a word
        check_int(every, "checkpoint_every_n_steps (null: every epoch)")
    check_trainer(cfg["trainer"])
    check_data_sizes(cfg["data"], cfg["model"])
    if is_multitask(cfg["data"]):
        check_multitask_run(cfg)


def check_multitask_run(cfg: Mapping[str, Any]) -> None:
    """A multi-task run (``data=multitask``) trains every layer of every task as one model:
    the single-task regimes (AdapterDrop, its depth sweep, fusion) are refused by name."""
    task_keys(cfg["data"]["tasks"])
    mode = cfg["drop"]["mode"]
    if mode != "none":
        raise ValueError(
            f"drop.mode={mode!r}: AdapterDrop runs are single-task (data=<task>); a multi-task "
            "run (data=multitask) takes drop.mode=none"
        )
    if cfg["eval_sweep"]:
        raise ValueError(
            "eval_sweep=true scores each dropped depth of one task's adapters; a multi-task run "
            "(data=multitask) takes eval_sweep=false"
        )
    check_multitask_method(cfg["method"])


def check_trainer(trainer: Mapping[str, Any]) -> None:
    """The Lightning budget keys Lightning itself would only check after setup."""
    for key in ("max_epochs", "max_steps"):
        value = trainer.get(key)
        if value is not None and (not is_int(value) or value < -1):
            raise ValueError(f"trainer.{key} must be an int >= -1 (-1: no limit), got {value!r}")
    if trainer.get("max_epochs") in (None, -1) and trainer.get("max_steps") in (None, -1):
        raise ValueError("trainer.max_epochs and trainer.max_steps are both unlimited: set one")


def check_data_sizes(data: Mapping[str, Any], model: Mapping[str, Any]) -> None:
    """Batch sizes and example limits are positive ints; ``max_length`` fits the model."""
    check_int(data["batch_size"], "data.batch_size")
    if data.get("eval_batch_size") is not None:
        check_int(data["eval_batch_size"], "data.eval_batch_size")
    if data.get("limit_examples") is not None:
        check_int(data["limit_examples"], "data.limit_examples")
    length = check_int(data["max_length"], "data.max_length", minimum=2)
    limit = max_sequence_length(model)
    if limit is not None and length > limit:
        raise ValueError(
            f"data.max_length={length} exceeds model {model['name']!r}'s {limit} positions: "
            f"use 2..{limit}"
        )


def max_sequence_length(model: Mapping[str, Any]) -> int | None:
    """Longest input the model takes, from its config dict or its local config file (no
    weights loaded); ``None`` when only the hub could tell."""
    positions = (model.get("architecture") or {}).get("max_position_embeddings")
    if positions is None and model.get("source") == "package":
        path = packaged_model_path(model["package"])
        positions = AutoConfig.from_pretrained(path).max_position_embeddings
    if positions is None:
        return None
    # RoBERTa's positions start after the padding index, so two of its slots are unusable.
    return positions - 2 * (model.get("family") == "roberta")
