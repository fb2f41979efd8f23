"""Batches by length: evaluation in length order scores exactly as split order does, and a
length-grouped training order is a seeded random order of every example that pads less."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from lightning_fabric.utilities.distributed import DistributedSamplerWrapper

from adapterdrop.data import TaskDataModule
from adapterdrop.data import datamodule as datamodule_module
from adapterdrop.data.batching import LengthGroupedSampler, by_length, sequence_lengths
from test_train import quiet_trainer, tiny_module

DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"
RNG = np.random.default_rng(0)
LENGTHS = RNG.integers(3, 120, size=203)


def padded_tokens(order: list[int] | np.ndarray, lengths: np.ndarray, batch_size: int) -> int:
    """Tokens of the batches cut from `order` when each is padded to its longest."""
    order = np.asarray(order)
    return sum(
        int(lengths[order[at : at + batch_size]].max()) * len(order[at : at + batch_size])
        for at in range(0, len(order), batch_size)
    )


def test_grouped_order_is_a_seeded_permutation_each_epoch():
    sampler = LengthGroupedSampler(LENGTHS, batch_size=8, seed=3, megabatch=4)
    first, second = list(sampler), list(sampler)
    assert sorted(first) == sorted(second) == list(range(len(LENGTHS)))
    assert first != second  # each pass is the next epoch
    sampler.set_epoch(0)
    assert list(sampler) == first
    assert list(LengthGroupedSampler(LENGTHS, batch_size=8, seed=3, megabatch=4)) == first
    assert list(LengthGroupedSampler(LENGTHS, batch_size=8, seed=4, megabatch=4)) != first


def test_grouped_batches_pad_far_less_than_random_ones_and_the_short_batch_stays_last():
    sampler = LengthGroupedSampler(LENGTHS, batch_size=8, seed=0)
    order = list(sampler)
    random_order = RNG.permutation(len(LENGTHS))
    assert padded_tokens(order, LENGTHS, 8) < 0.75 * padded_tokens(random_order, LENGTHS, 8)
    assert padded_tokens(order, LENGTHS, 8) < 1.1 * LENGTHS.sum()
    # 203 = 25 * 8 + 3: the loader's cuts fall on the sampler's batches, the 3 last
    chunks = [order[at : at + 8] for at in range(0, 200, 8)]
    assert all(np.ptp(LENGTHS[chunk]) <= np.ptp(LENGTHS) / 2 for chunk in chunks)
    assert len(order[200:]) == 3


def test_grouped_order_shards_over_ranks_into_disjoint_grouped_halves():
    """What Lightning does to a custom sampler on 2 devices (DistributedSamplerWrapper)."""
    shards = [
        list(
            DistributedSamplerWrapper(
                LengthGroupedSampler(LENGTHS, batch_size=8, seed=0),
                num_replicas=2,
                rank=rank,
                shuffle=False,
            )
        )
        for rank in (0, 1)
    ]
    assert set(shards[0]) | set(shards[1]) == set(range(len(LENGTHS)))
    random_order = RNG.permutation(len(LENGTHS))
    assert padded_tokens(shards[0], LENGTHS, 8) < 0.75 * padded_tokens(
        random_order[: len(shards[0])], LENGTHS, 8
    )


def test_lengths_of_multiple_choice_examples_are_their_longest_choice():
    import datasets

    flat = datasets.Dataset.from_dict({"input_ids": [[1, 2, 3], [1]]})
    nested = datasets.Dataset.from_dict({"input_ids": [[[1, 2], [1, 2, 3, 4]], [[1], [1]]]})
    assert sequence_lengths(flat).tolist() == [3, 1]
    assert sequence_lengths(nested).tolist() == [4, 1]
    assert by_length([2, 5, 2, 7]).tolist() == [3, 1, 0, 2]


def split_order(monkeypatch: pytest.MonkeyPatch) -> None:
    """Evaluation batches in split order, the plain path that length order replaces."""
    monkeypatch.setattr(datamodule_module, "by_length", lambda lengths: np.arange(len(lengths)))


@pytest.mark.skipif(not (DATA_DIR / "superglue").is_dir(), reason=f"no real data at {DATA_DIR}")
@pytest.mark.parametrize(
    ("task", "metric", "saves"),
    [("glue/stsb", "val/pearson", True), ("superglue/multirc", "val/em", False)],
)
def test_evaluation_in_length_order_scores_as_split_order_does(
    task, metric, saves, tmp_path, monkeypatch
):
    """Real dev examples (MultiRC: exact match over whole questions, whose passages fill
    nearly every sequence, so there is no padding to save), a tiny model."""
    module = tiny_module(task)
    torch.manual_seed(0)
    for parameter in module.parameters():  # an untrained head would score one class only
        parameter.data.add_(0.02 * torch.randn_like(parameter))

    def validate(**kwargs) -> tuple[dict[str, float], int]:
        dm = TaskDataModule(
            task,
            module.tokenizer,
            data_dir=DATA_DIR,
            cache_dir=tmp_path,
            limit_examples=60,
            batch_size=8,
            check_stages=(),
        )
        tokens = sum(batch["input_ids"].numel() for batch in dm.val_dataloader())
        [scores] = quiet_trainer(**kwargs).validate(module, datamodule=dm, verbose=False)
        return scores, tokens

    by_length_scores, by_length_tokens = validate()
    split_order(monkeypatch)
    plain_scores, plain_tokens = validate()
    assert by_length_tokens < plain_tokens if saves else by_length_tokens <= plain_tokens
    assert set(by_length_scores) == set(plain_scores) and metric in plain_scores
    for name, value in plain_scores.items():
        assert by_length_scores[name] == pytest.approx(value, abs=1e-5), name
