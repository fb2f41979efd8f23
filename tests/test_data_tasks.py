"""Task registry, lookup errors and the input encodings of the non-pair tasks."""

import dataclasses

import pytest

from adapterdrop.data import TASKS, DataError, get_task_spec

GLUE = ("cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte", "wnli")
SUPERGLUE = ("boolq", "cb", "copa", "multirc", "record", "rte", "wic", "wsc")


def test_registry_covers_glue_and_superglue():
    expected = {f"glue/{name}" for name in GLUE} | {f"superglue/{name}" for name in SUPERGLUE}
    assert set(TASKS) == expected
    for key, spec in TASKS.items():
        assert spec.key == key
        assert spec.metrics, key
        assert spec.task_type in ("classification", "regression", "multiple_choice")


@pytest.mark.parametrize(
    ("query", "benchmark", "key"),
    [
        ("glue/rte", None, "glue/rte"),
        ("rte", "glue", "glue/rte"),
        ("rte", "superglue", "superglue/rte"),
        ("GLUE/SST-2", None, "glue/sst2"),
        ("super_glue/cb", None, "superglue/cb"),
        ("sts-b", None, "glue/stsb"),
        ("copa", None, "superglue/copa"),
    ],
)
def test_get_task_spec_accepts_common_spellings(query, benchmark, key):
    assert get_task_spec(query, benchmark=benchmark).key == key


def test_unknown_task_lists_the_valid_ones():
    with pytest.raises(DataError, match="Unknown task 'glue/squad'") as err:
        get_task_spec("glue/squad")
    for key in TASKS:
        assert key in str(err.value)


def test_bare_name_shared_by_both_benchmarks_is_ambiguous():
    with pytest.raises(DataError, match="glue/rte, superglue/rte"):
        get_task_spec("rte")


def test_data_error_is_a_value_error():
    assert issubclass(DataError, ValueError)


def test_spec_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        get_task_spec("glue/rte").name = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("key", "task_type", "num_labels", "main_metric"),
    [
        ("glue/cola", "classification", 2, "matthews_corr"),
        ("glue/stsb", "regression", 1, "pearson"),
        ("glue/mnli", "classification", 3, "accuracy"),
        ("glue/mrpc", "classification", 2, "f1"),
        ("superglue/cb", "classification", 3, "macro_f1"),
        ("superglue/copa", "multiple_choice", 1, "accuracy"),
        ("superglue/multirc", "classification", 2, "f1a"),
        ("superglue/record", "classification", 2, "f1"),
    ],
)
def test_task_types_sizes_and_main_metrics(key, task_type, num_labels, main_metric):
    spec = get_task_spec(key)
    assert (spec.task_type, spec.num_labels, spec.main_metric) == (
        task_type,
        num_labels,
        main_metric,
    )


def test_split_names():
    mnli = get_task_spec("glue/mnli")
    assert mnli.validation_split == "validation_matched"
    assert mnli.test_split == "test_matched"
    assert "validation_mismatched" in mnli.splits
    assert get_task_spec("superglue/cb").validation_split == "validation"
    assert get_task_spec("superglue/copa").num_choices == 2
    assert get_task_spec("superglue/multirc").group_info_keys == ("paragraph_ids", "question_ids")
    record = get_task_spec("superglue/record")
    assert record.group_info_keys == ("passage_ids", "query_ids", "entity", "answers")


def test_copa_builds_one_pair_per_choice():
    record = {"premise": "It rained.", "choice1": "I got wet.", "choice2": "I sang."}
    pairs = get_task_spec("superglue/copa").format_inputs({**record, "question": "effect"})
    assert pairs == (
        ("It rained.", "What happened as a result? I got wet."),
        ("It rained.", "What happened as a result? I sang."),
    )
    with pytest.raises(ValueError, match="neither 'cause' nor 'effect'"):
        get_task_spec("superglue/copa").format_inputs({**record, "question": "why"})


def test_wic_marks_the_target_word_by_offsets():
    record = {
        "word": "bank",
        "sentence1": "The bank was closed.",
        "sentence2": "We sat on the river bank.",
        "start1": 4,
        "end1": 8,
        "start2": 20,
        "end2": 24,
    }
    spec = get_task_spec("superglue/wic")
    assert spec.format_inputs(record) == (
        ("The *bank* was closed.", "We sat on the river *bank*."),
    )
    with pytest.raises(ValueError, match="offsets"):
        spec.format_inputs({**record, "end2": 99})


@pytest.mark.parametrize("index", [5, 6, 0])
def test_wsc_marks_the_pronoun_nearest_to_its_index(index):
    record = {
        "text": "Mark told Pete lies. He should have known.",
        "span1_text": "Mark",
        "span1_index": 0,
        "span2_text": "he",
        "span2_index": index,
    }
    assert get_task_spec("superglue/wsc").format_inputs(record) == (
        ("Mark told Pete lies. *He* should have known.", "Does *he* refer to Mark?"),
    )


def test_wsc_keeps_the_text_when_the_pronoun_is_absent():
    record = {
        "text": "Mark told Pete lies.",
        "span1_text": "Mark",
        "span1_index": 0,
        "span2_text": "she",
        "span2_index": 2,
    }
    (pair,) = get_task_spec("superglue/wsc").format_inputs(record)
    assert pair == ("Mark told Pete lies.", "Does *she* refer to Mark?")


def test_multirc_pairs_paragraph_with_question_and_answer():
    record = {"paragraph": "P.", "question": "Q?", "answer": "A."}
    assert get_task_spec("superglue/multirc").format_inputs(record) == (("P.", "Q? A."),)


def test_record_fills_the_placeholder_with_the_candidate():
    record = {"passage": "A met B.\n@highlight\nA won", "query": "@placeholder won.", "entity": "A"}
    spec = get_task_spec("superglue/record")
    assert spec.format_inputs(record) == (("A met B.\n- A won", "A won."),)
    with pytest.raises(ValueError, match="no @placeholder"):
        spec.format_inputs({**record, "query": "Someone won."})


def test_every_input_format_has_a_formatter_and_each_module_has_one_job():
    from adapterdrop.data import formatters, spec, tasks

    assert {task.input_format for task in TASKS.values()} == set(formatters.FORMATTERS)
    assert spec.TaskSpec is tasks.TaskSpec and not hasattr(tasks, "_wsc")
    assert not hasattr(spec, "get_task_spec") and not hasattr(formatters, "TaskSpec")


@pytest.mark.parametrize(
    ("key", "record", "message"),
    [
        ("glue/rte", {"sentence1": 3, "sentence2": "h"}, "field 'sentence1' must be text, got int"),
        (
            "superglue/copa",
            {"premise": "p", "choice1": None, "choice2": "b", "question": "cause"},
            "field 'choice1' must be text",
        ),
    ],
)
def test_text_fields_must_be_strings(key, record, message):
    with pytest.raises(TypeError, match=message):
        get_task_spec(key).format_inputs(record)
