"""Lightning DataModule for any GLUE/SuperGLUE task: read, tokenise once, cache, pad per batch."""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import random
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader
from transformers import PreTrainedTokenizerBase

from adapterdrop.data.batching import LengthGroupedSampler, by_length, sequence_lengths
from adapterdrop.data.checks import check_splits
from adapterdrop.data.errors import DataError
from adapterdrop.data.layout import resolve_data_dir, source_fingerprint, stage_splits
from adapterdrop.data.readers import Example, read_split
from adapterdrop.data.spec import TaskSpec
from adapterdrop.data.tasks import get_task_spec

log = logging.getLogger(__name__)

CACHE_DIR_ENV = "ADAPTERDROP_CACHE_DIR"
_CACHE_FORMAT = 1  # bump when the stored layout or the input formatting changes
_CHUNK = 4096  # examples tokenised at a time, bounding the Python-list memory of big splits
_INPUT_DTYPES = {"input_ids": "int32", "attention_mask": "int8", "token_type_ids": "int8"}
#: Evaluation batches carry each example's row in its split under this key, so that metrics
#: gathered from the shards of a multi-device run are put back in order, each row once.
ROW_KEY = "index"


class TaskDataModule(pl.LightningDataModule):
    """Batches of one task for a given tokenizer, with the tokenised splits cached on disk.

    The source is `data_dir` (else the ADAPTERDROP_DATA_DIR env variable) holding the original
    files, or the hub when neither is set. Batches are dicts of tensors: `input_ids`,
    `attention_mask`, `token_type_ids` when the tokenizer makes them, and `labels` (long, or
    float for regression) unless the split is unlabelled (test); evaluation batches (unshuffled)
    also hold each example's row in the split (`ROW_KEY`). Multiple-choice inputs are
    shaped (batch, num_choices, seq). For MNLI the validation loader is the matched split;
    `dataloader("validation_mismatched")` gives the other.

    With a data directory, construction checks that the split files of `check_stages` exist
    (see `check_splits`; default the "fit" stage's train and validation splits, `()` checks
    none), so a missing split fails here rather than in `trainer.fit`. `limit_examples` keeps
    a seeded subset of each split; for grouped tasks it keeps whole questions (MultiRC) or
    queries (ReCoRD).

    Evaluation batches go from the longest examples to the shortest, which only saves
    padding (scores are computed in row order); `group_by_length` also groups training
    batches by length (`LengthGroupedSampler`), a different but still random training order.
    """

    def __init__(
        self,
        task: str,
        tokenizer: PreTrainedTokenizerBase,
        data_dir: str | os.PathLike[str] | None = None,
        max_length: int = 128,
        batch_size: int = 32,
        eval_batch_size: int | None = None,
        limit_examples: int | None = None,
        num_workers: int = 0,
        cache_dir: str | os.PathLike[str] | None = None,
        seed: int = 42,
        check_stages: str | Sequence[str] = ("fit",),
        group_by_length: bool = False,
    ) -> None:
        super().__init__()
        self.spec: TaskSpec = get_task_spec(task)
        _check_counts(
            max_length=max_length,
            batch_size=batch_size,
            eval_batch_size=eval_batch_size,
            limit_examples=limit_examples,
        )
        if num_workers < 0:
            raise DataError(f"num_workers must be >= 0, got {num_workers}")
        if tokenizer.pad_token_id is None:
            raise DataError("the tokenizer has no pad token; set tokenizer.pad_token first")
        self.save_hyperparameters(ignore=["tokenizer"])
        self.tokenizer = tokenizer
        check_splits(self.spec, data_dir, check_stages, probe=False)  # names what is missing
        self.data_dir = resolve_data_dir(self.spec, data_dir)
        self.cache_dir = Path(
            cache_dir or os.environ.get(CACHE_DIR_ENV) or Path.home() / ".cache" / "adapterdrop"
        ).expanduser()
        self.max_length = max_length
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.limit_examples = limit_examples
        self.num_workers = num_workers
        self.seed = seed
        self.group_by_length = group_by_length
        self.datasets: dict[str, datasets.Dataset] = {}
        self.collator = PadCollator(
            pad_values={
                "input_ids": tokenizer.pad_token_id,
                "attention_mask": 0,
                "token_type_ids": tokenizer.pad_token_type_id,
            },
            pad_left=tokenizer.padding_side == "left",
            label_dtype=torch.float32 if self.spec.task_type == "regression" else torch.long,
        )

    def setup(self, stage: str | None = None) -> None:
        """Load the splits the stage needs, tokenising and caching those not cached yet."""
        self.load_splits(stage_splits(self.spec, stage or None))

    def load_splits(self, splits: Sequence[str]) -> None:
        """Read every uncached split before tokenising any, so bad data fails fast."""
        paths = {split: self._cache_path(split) for split in splits}
        missing = [split for split, path in paths.items() if not path.exists()]
        raw = {split: self._read(split) for split in missing}
        for split in missing:
            log.info("Tokenising %s %s (%d examples)", self.spec.key, split, len(raw[split]))
            _save(_tokenize(raw[split], self.spec, self.tokenizer, self.max_length), paths[split])
        for split, path in paths.items():
            if split not in self.datasets:
                self.datasets[split] = datasets.load_from_disk(str(path))

    def train_dataloader(self) -> DataLoader:
        return self.dataloader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self.dataloader(self.spec.validation_split)

    def test_dataloader(self) -> DataLoader:
        return self.dataloader(self.spec.test_split)

    def dataloader(self, split: str, shuffle: bool = False) -> DataLoader:
        """Loader for any split (e.g. MNLI's "validation_mismatched"), loading it if needed."""
        if split not in self.datasets:
            self.load_splits([split])
        dataset = self.datasets[split]
        order: dict[str, Any] = {}
        if not shuffle:
            dataset = dataset.add_column(ROW_KEY, np.arange(len(dataset)))
            dataset = dataset.select(by_length(sequence_lengths(dataset)))
        elif self.group_by_length:
            lengths = sequence_lengths(dataset)
            order["sampler"] = LengthGroupedSampler(lengths, self.batch_size, self.seed)
        else:
            order = {"shuffle": True, "generator": torch.Generator().manual_seed(self.seed)}
        return DataLoader(
            dataset,
            batch_size=self.batch_size if shuffle else self.eval_batch_size,
            **order,
            collate_fn=self.collator,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def group_info(self, split: str) -> dict[str, np.ndarray]:
        """Per-example group ids in split (row) order, for `spec.compute_metrics` (MultiRC's EM),
        and a ranking task's candidate texts and gold answers (ReCoRD), as object arrays."""
        if split not in self.datasets:
            self.load_splits([split])
        dataset = self.datasets[split]
        table = dataset.with_format("numpy")
        info = {key: np.asarray(table[key]) for key in self.spec.group_id_keys}
        info.update({key: _objects(dataset[key]) for key in self.spec.answer_fields})
        return info

    def _read(self, split: str) -> list[Example]:
        examples = read_split(self.spec, self.data_dir, split)
        grouped = bool(self.spec.group_fields)
        return subsample(examples, self.limit_examples, self.seed, by_group=grouped)

    @functools.cached_property
    def _tokenizer_key(self) -> str:
        return _tokenizer_fingerprint(self.tokenizer)

    def _cache_path(self, split: str) -> Path:
        """Cache folder named by a hash of everything that changes the tokenised split."""
        key = {
            "format": _CACHE_FORMAT,
            "task": self.spec.key,
            "split": split,
            "source": source_fingerprint(self.spec, self.data_dir, split),
            "tokenizer": self._tokenizer_key,
            "max_length": self.max_length,
            "limit": self.limit_examples,
            "seed": self.seed if self.limit_examples is not None else None,
        }
        if self.limit_examples is not None and self.spec.group_fields:
            key["limit_by"] = "group"  # whole questions since issue #13; was per answer option
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
        name = f"{self.spec.benchmark}-{self.spec.name}-{split}-{digest}"
        return self.cache_dir / "data" / name


def subsample(
    examples: list[Example], limit: int | None, seed: int, by_group: bool = False
) -> list[Example]:
    """A seeded subset of `limit` examples in their original order (all when `limit` is None).

    With `by_group`, whole groups (examples sharing `Example.groups`, e.g. a MultiRC question
    and its answer options) are kept in a seeded random order until the subset holds at least
    `limit` examples, so it may hold up to one group more than `limit`: a question is never
    torn apart and exact match stays meaningful.
    """
    if limit is None or limit >= len(examples):
        return examples
    rng = random.Random(seed)
    if not by_group:
        keep = rng.sample(range(len(examples)), limit)
    else:
        members: dict[tuple[int, ...], list[int]] = {}
        for index, example in enumerate(examples):
            members.setdefault(example.groups, []).append(index)
        groups = list(members.values())
        rng.shuffle(groups)
        keep = []
        for group in groups:
            if len(keep) >= limit:
                break
            keep.extend(group)
    return [examples[index] for index in sorted(keep)]


@dataclass(frozen=True)
class PadCollator:
    """Pads each batch only to its own longest sequence, so short batches cost less compute."""

    pad_values: Mapping[str, int]
    pad_left: bool
    label_dtype: torch.dtype

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        batch = {
            key: _pad([row[key] for row in rows], value, self.pad_left)
            for key, value in self.pad_values.items()
            if key in rows[0]
        }
        if "labels" in rows[0]:
            batch["labels"] = torch.tensor([row["labels"] for row in rows], dtype=self.label_dtype)
        if ROW_KEY in rows[0]:
            batch[ROW_KEY] = torch.tensor([row[ROW_KEY] for row in rows], dtype=torch.long)
        return batch


def _pad(sequences: list[list[Any]], value: int, left: bool) -> torch.Tensor:
    """(batch, seq), or (batch, choices, seq) when each item holds one sequence per choice."""
    nested = isinstance(sequences[0][0], list)
    flat = [seq for item in sequences for seq in item] if nested else sequences
    longest = max(len(seq) for seq in flat)
    out = torch.full((len(flat), longest), value, dtype=torch.long)
    for row, seq in enumerate(flat):
        start = longest - len(seq) if left else 0
        out[row, start : start + len(seq)] = torch.as_tensor(seq, dtype=torch.long)
    return out.view(len(sequences), -1, longest) if nested else out


def _objects(values: Sequence[Any]) -> np.ndarray:
    """A 1-D object array, even of equal-length lists (np.array would make those 2-D)."""
    values = list(values)
    array = np.empty(len(values), dtype=object)
    for at, value in enumerate(values):
        array[at] = value
    return array


def _check_counts(**counts: int | None) -> None:
    for name, value in counts.items():
        if value is not None and (not isinstance(value, int) or value <= 0):
            raise DataError(f"{name} must be a positive integer, got {value!r}")


def _tokenizer_fingerprint(tokenizer: PreTrainedTokenizerBase) -> str:
    """Name plus a hash of the tokenizer state (vocab, normaliser, special tokens). The fast
    backend's truncation/padding settings are left out: every call rewrites them."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        state = json.dumps(tokenizer.get_vocab(), sort_keys=True)
    else:
        state = json.loads(backend.to_str())
        state = json.dumps({k: v for k, v in state.items() if k not in ("truncation", "padding")})
    settings = json.dumps(tokenizer.init_kwargs, sort_keys=True, default=str)
    digest = hashlib.sha256((state + settings).encode()).hexdigest()
    return f"{type(tokenizer).__name__}:{tokenizer.name_or_path}:{digest}"


def _tokenize(
    examples: list[Example], spec: TaskSpec, tokenizer: PreTrainedTokenizerBase, max_length: int
) -> datasets.Dataset:
    """Unpadded token ids per example (padding happens per batch in PadCollator), stored with
    compact dtypes so that the caches of large tasks such as MNLI and QQP stay small."""
    chunks = []
    for start in range(0, len(examples), _CHUNK):
        columns = _encode_chunk(examples[start : start + _CHUNK], spec, tokenizer, max_length)
        chunks.append(datasets.Dataset.from_dict(columns, features=_features(columns, spec)))
    return datasets.concatenate_datasets(chunks)


def _encode_chunk(
    examples: list[Example], spec: TaskSpec, tokenizer: PreTrainedTokenizerBase, max_length: int
) -> dict[str, list[Any]]:
    pairs = [pair for example in examples for pair in example.pairs]
    firsts = [first for first, _ in pairs]
    seconds = [second for _, second in pairs]
    encoded = tokenizer(
        firsts,
        seconds if seconds[0] is not None else None,
        truncation=True,
        max_length=max_length,
    )
    choices = spec.num_choices
    columns = {
        key: [encoded[key][at : at + choices] for at in range(0, len(pairs), choices)]
        if choices
        else encoded[key]
        for key in _INPUT_DTYPES
        if key in encoded
    }
    if examples[0].label is not None:
        columns["labels"] = [example.label for example in examples]
    for position, key in enumerate(spec.group_id_keys):
        columns[key] = [example.groups[position] for example in examples]
    for position, key in enumerate(spec.answer_fields):
        columns[key] = [example.answer_info[position] for example in examples]
    return columns


def _features(columns: Mapping[str, Any], spec: TaskSpec) -> datasets.Features:
    features = {}
    for key, dtype in _INPUT_DTYPES.items():
        if key in columns:
            feature = datasets.List(datasets.Value(dtype))
            features[key] = datasets.List(feature) if spec.num_choices else feature
    if "labels" in columns:
        regression = spec.task_type == "regression"
        features["labels"] = datasets.Value("float32" if regression else "int64")
    features.update({key: datasets.Value("int64") for key in spec.group_id_keys})
    features.update({key: _text_feature(columns[key][0]) for key in spec.answer_fields})
    return datasets.Features(features)


def _text_feature(value: Any) -> datasets.Value | datasets.List:
    """Answer fields hold a text (a candidate) or a list of texts (the gold answers)."""
    text = datasets.Value("string")
    return text if isinstance(value, str) else datasets.List(text)


def _save(dataset: datasets.Dataset, path: Path) -> None:
    """Write to a temporary folder, then rename, so readers never see a half-written cache."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.partial-{os.getpid()}")
    dataset.save_to_disk(str(partial))
    try:
        partial.rename(path)
    except OSError:
        if not path.exists():
            raise
        shutil.rmtree(partial)
