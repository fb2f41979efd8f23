"""Local readers on tiny files written here (with the real files' quirks), the real data copy
in ../shared/data when present, and the hub fallback's offline error."""

import json
import re
from pathlib import Path

import datasets
import huggingface_hub
import pytest

from adapterdrop.data import DATA_DIR_ENV, DataError, get_task_spec, read_split
from adapterdrop.data.layout import resolve_data_dir

REAL_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def write(root: Path, relative: str, text: str, encoding: str = "utf-8") -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding=encoding)
    return path


def tsv(*rows: tuple[str, ...]) -> str:
    return "".join("\t".join(row) + "\n" for row in rows)


def jsonl(*objects: dict) -> str:
    return "".join(json.dumps(obj) + "\n" for obj in objects)


def test_cola_train_without_header_and_test_with_header(tmp_path):
    write(
        tmp_path, "glue/CoLA/train.tsv", tsv(("gj04", "1", "", "Ok ."), ("gj04", "0", "*", "Bad"))
    )
    write(tmp_path, "glue/CoLA/test.tsv", tsv(("index", "sentence"), ("0", "Untested .")))
    spec = get_task_spec("glue/cola")
    train = read_split(spec, tmp_path, "train")
    assert [(ex.pairs, ex.label) for ex in train] == [((("Ok .", None),), 1), ((("Bad", None),), 0)]
    (test,) = read_split(spec, tmp_path, "test")
    assert test.pairs == (("Untested .", None),)
    assert test.label is None


def test_mrpc_with_byte_order_mark(tmp_path):
    header = ("Quality", "#1 ID", "#2 ID", "#1 String", "#2 String")
    text = tsv(header, ("1", "11", "12", "A b .", "A c ."), ("0", "13", "14", "D .", "E ."))
    write(tmp_path, "glue/MRPC/train.tsv", text, encoding="utf-8-sig")
    examples = read_split(get_task_spec("glue/mrpc"), tmp_path, "train")
    assert (tmp_path / "glue/MRPC/train.tsv").read_bytes().startswith(b"\xef\xbb\xbf")
    assert [(ex.pairs[0], ex.label) for ex in examples] == [
        (("A b .", "A c ."), 1),
        (("D .", "E ."), 0),
    ]


def test_unbalanced_quotes_stay_inside_their_row(tmp_path):
    rows = [("sentence", "label"), ('he said " hello', "1"), ("next one", "0"), ('" quoted', "1")]
    write(tmp_path, "glue/SST-2/dev.tsv", tsv(*rows))
    examples = read_split(get_task_spec("glue/sst2"), tmp_path, "validation")
    assert [ex.pairs[0][0] for ex in examples] == ['he said " hello', "next one", '" quoted']


def test_stsb_scores_are_floats_and_rte_labels_are_strings(tmp_path):
    header = ("index", "genre", "filename", "year", "old_index", "source1", "source2")
    stsb = tsv((*header, "sentence1", "sentence2", "score"), ("0", *"gfyoab", "A.", "B.", "3.800"))
    write(tmp_path, "glue/STS-B/train.tsv", stsb)
    (example,) = read_split(get_task_spec("glue/stsb"), tmp_path, "train")
    assert example.label == pytest.approx(3.8)
    rte = tsv(("index", "sentence1", "sentence2", "label"), ("0", "P.", "H.", "not_entailment"))
    write(tmp_path, "glue/RTE/dev.tsv", rte)
    (example,) = read_split(get_task_spec("glue/rte"), tmp_path, "validation")
    assert example.label == 1


def test_mnli_validation_files_are_matched_and_mismatched(tmp_path):
    header = ("index", "promptID", "sentence1", "sentence2", "label1", "gold_label")
    for stem, label in (("dev_matched", "neutral"), ("dev_mismatched", "contradiction")):
        write(tmp_path, f"glue/MNLI/{stem}.tsv", tsv(header, ("0", "7", "P.", "H.", label, label)))
    spec = get_task_spec("glue/mnli")
    assert read_split(spec, tmp_path, "validation_matched")[0].label == 1
    assert read_split(spec, tmp_path, "validation_mismatched")[0].label == 2


MNLI_COLUMNS = (
    "index",
    "promptID",
    "pairID",
    "genre",
    "sentence1_binary_parse",
    "sentence2_binary_parse",
    "sentence1_parse",
    "sentence2_parse",
    "sentence1",
    "sentence2",
)
MNLI_ROW = ("0", "1", "1e", "fiction", "(A)", "(B)", "(ROOT A)", "(ROOT B)", "A?", "B?")


@pytest.mark.parametrize(
    ("key", "relative", "header", "row", "label"),
    [
        (
            "glue/qqp",
            "QQP/train.tsv",
            ("id", "qid1", "qid2", "question1", "question2", "is_duplicate"),
            ("0", "1", "2", "A?", "B?", "1"),
            1,
        ),
        ("glue/qqp", "QQP/test.tsv", ("id", "question1", "question2"), ("0", "A?", "B?"), None),
        (
            "glue/qnli",
            "QNLI/train.tsv",
            ("index", "question", "sentence", "label"),
            ("0", "A?", "B?", "not_entailment"),
            1,
        ),
        (
            "glue/mnli",
            "MNLI/train.tsv",
            (*MNLI_COLUMNS, "label1", "gold_label"),
            (*MNLI_ROW, "neutral", "neutral"),
            1,
        ),
        (
            "glue/mnli",
            "MNLI/test_mismatched.tsv",
            MNLI_COLUMNS,
            MNLI_ROW,
            None,
        ),
    ],
)
def test_original_headers_of_the_large_glue_tasks(tmp_path, key, relative, header, row, label):
    path = write(tmp_path, f"glue/{relative}", tsv(header, row))
    split = {"train": "train", "test": "test"}.get(path.stem, "test_mismatched")
    (example,) = read_split(get_task_spec(key), tmp_path, split)
    assert (example.pairs, example.label) == ((("A?", "B?"),), label)


def test_malformed_row_names_file_and_line(tmp_path):
    rows = tsv(("index", "sentence1", "sentence2", "label"), ("0", "P.", "H.", "entailment"))
    path = write(tmp_path, "glue/RTE/train.tsv", rows + "1\tonly two columns\n")
    with pytest.raises(DataError, match=r"expected 4 tab-separated columns") as err:
        read_split(get_task_spec("glue/rte"), tmp_path, "train")
    assert f"{path}:3" in str(err.value)


def test_unknown_label_names_value_file_line_and_valid_labels(tmp_path):
    rows = tsv(("index", "sentence1", "sentence2", "label"), ("0", "P.", "H.", "maybe"))
    path = write(tmp_path, "glue/RTE/train.tsv", rows)
    with pytest.raises(DataError) as err:
        read_split(get_task_spec("glue/rte"), tmp_path, "train")
    message = str(err.value)
    assert all(part in message for part in ("'maybe'", f"{path}:2", "entailment", "not_entailment"))


def test_labelled_split_without_label_column_fails(tmp_path):
    header = ("index", "sentence1", "sentence2")
    path = write(tmp_path, "glue/RTE/train.tsv", tsv(header, ("0", "P", "H")))
    with pytest.raises(DataError, match="missing the label column 'label'") as err:
        read_split(get_task_spec("glue/rte"), tmp_path, "train")
    assert f"{path}:1:" in str(err.value) and str(list(header)) in str(err.value)


def test_header_without_the_needed_columns_fails(tmp_path):
    path = write(
        tmp_path, "glue/RTE/train.tsv", tsv(("index", "premise", "label"), ("0", "P", "H"))
    )
    with pytest.raises(DataError) as err:
        read_split(get_task_spec("glue/rte"), tmp_path, "train")
    assert str(err.value) == (
        f"{path}:1: missing column(s) ['sentence1', 'sentence2'] that glue/rte needs; "
        "the header row has the columns ['index', 'premise', 'label']"
    )


def test_missing_file_names_the_expected_path_and_format(tmp_path):
    (tmp_path / "glue/RTE").mkdir(parents=True)
    with pytest.raises(DataError) as err:
        read_split(get_task_spec("glue/rte"), tmp_path, "validation")
    assert str(tmp_path / "glue/RTE/dev.tsv") in str(err.value)
    assert "tab-separated" in str(err.value)


def test_missing_task_directory_names_the_expected_path(tmp_path):
    with pytest.raises(DataError) as err:
        resolve_data_dir(get_task_spec("superglue/cb"), tmp_path)
    assert str(tmp_path / "superglue/CB") in str(err.value)
    assert "val.jsonl" in str(err.value)


def test_data_dir_comes_from_the_environment(tmp_path, monkeypatch):
    (tmp_path / "glue/RTE").mkdir(parents=True)
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path))
    assert resolve_data_dir(get_task_spec("glue/rte"), None) == tmp_path
    monkeypatch.delenv(DATA_DIR_ENV)
    assert resolve_data_dir(get_task_spec("glue/rte"), None) is None


def test_superglue_jsonl_labels(tmp_path):
    write(
        tmp_path,
        "superglue/BoolQ/train.jsonl",
        jsonl(
            {"question": "q?", "passage": "p.", "idx": 0, "label": True},
            {"question": "r?", "passage": "s.", "idx": 1, "label": False},
        ),
    )
    write(
        tmp_path,
        "superglue/CB/val.jsonl",
        jsonl(
            {"premise": "p", "hypothesis": "h", "label": "neutral", "idx": 0},
        ),
    )
    boolq = read_split(get_task_spec("superglue/boolq"), tmp_path, "train")
    assert [(ex.pairs, ex.label) for ex in boolq] == [((("q?", "p."),), 1), ((("r?", "s."),), 0)]
    assert read_split(get_task_spec("superglue/cb"), tmp_path, "validation")[0].label == 2


def test_wsc_reads_nested_spans(tmp_path):
    target = {"span1_text": "Mark", "span1_index": 0, "span2_text": "He", "span2_index": 3}
    text = "Mark told Pete. He lied."
    write(tmp_path, "superglue/WSC/test.jsonl", jsonl({"text": text, "target": target, "idx": 0}))
    (example,) = read_split(get_task_spec("superglue/wsc"), tmp_path, "test")
    assert example.pairs == (("Mark told Pete. *He* lied.", "Does *He* refer to Mark?"),)
    assert example.label is None


def test_multirc_flattens_answers_and_keeps_group_ids(tmp_path):
    question = {
        "question": "Who?",
        "idx": 5,
        "answers": [
            {"text": "Ann", "idx": 0, "label": 1},
            {"text": "Bob", "idx": 1, "label": 0},
        ],
    }
    passage = {"idx": 3, "passage": {"text": "Ann ran.", "questions": [question]}}
    write(tmp_path, "superglue/MultiRC/train.jsonl", jsonl(passage))
    examples = read_split(get_task_spec("superglue/multirc"), tmp_path, "train")
    assert [(ex.pairs, ex.label, ex.groups) for ex in examples] == [
        ((("Ann ran.", "Who? Ann"),), 1, (3, 5)),
        ((("Ann ran.", "Who? Bob"),), 0, (3, 5)),
    ]


def test_jsonl_errors_name_file_and_line(tmp_path):
    good = {"premise": "p", "hypothesis": "h", "label": "entailment", "idx": 0}
    path = write(tmp_path, "superglue/CB/train.jsonl", jsonl(good) + "{not json\n")
    at = re.escape(f"{path}:")
    with pytest.raises(DataError, match=at + r"2: not a valid JSON object"):
        read_split(get_task_spec("superglue/cb"), tmp_path, "train")
    write(tmp_path, "superglue/CB/train.jsonl", jsonl(good, {"premise": "p", "label": "neutral"}))
    with pytest.raises(DataError, match=at + r"2: missing field 'hypothesis'"):
        read_split(get_task_spec("superglue/cb"), tmp_path, "train")
    write(tmp_path, "superglue/CB/train.jsonl", jsonl({**good, "label": "entails"}))
    with pytest.raises(DataError, match=at + r"1: unknown label 'entails'.*'neutral'"):
        read_split(get_task_spec("superglue/cb"), tmp_path, "train")


def test_bool_label_must_be_a_bool(tmp_path):
    row = {"question": "q?", "passage": "p.", "idx": 0, "label": 1}
    write(tmp_path, "superglue/BoolQ/train.jsonl", jsonl(row))
    with pytest.raises(DataError, match=r"unknown label 1 .*\[False, True\]"):
        read_split(get_task_spec("superglue/boolq"), tmp_path, "train")


def test_wic_bad_offsets_name_file_and_line(tmp_path):
    row = {"word": "w", "sentence1": "a w", "sentence2": "w b", "start1": 2, "end1": 3}
    path = write(
        tmp_path,
        "superglue/WiC/val.jsonl",
        jsonl(
            {**row, "start2": 0, "end2": 1, "label": True},
            {**row, "start2": 0, "end2": 9, "label": False},
        ),
    )
    at = re.escape(f"{path}:")
    with pytest.raises(DataError, match=at + r"2: cannot build the superglue/wic input"):
        read_split(get_task_spec("superglue/wic"), tmp_path, "validation")


def test_hub_in_offline_mode_says_it_is_unreachable(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path)
    with pytest.raises(DataError, match="hub is unreachable") as err:
        read_split(get_task_spec("glue/rte"), None, "train")
    assert DATA_DIR_ENV in str(err.value) and "data_dir" in str(err.value)


def test_hub_rows_become_examples(monkeypatch):
    rows = {
        ("multirc", "validation"): [
            {
                "paragraph": "P.",
                "question": "Q?",
                "answer": "A.",
                "label": 1,
                "idx": {"paragraph": 4, "question": 9, "answer": 0},
            },
        ],
        ("stsb", "test"): [{"sentence1": "a", "sentence2": "b", "label": -1.0, "idx": 0}],
        ("rte", "train"): [{"sentence1": "a", "sentence2": "b", "label": 7, "idx": 0}],
    }
    calls = []

    def load_dataset(path, name, split):
        calls.append(path)
        return rows[name, split]

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    (multirc,) = read_split(get_task_spec("superglue/multirc"), None, "validation")
    assert (multirc.pairs, multirc.label, multirc.groups) == ((("P.", "Q? A."),), 1, (4, 9))
    (stsb,) = read_split(get_task_spec("glue/stsb"), None, "test")
    assert stsb.label is None
    with pytest.raises(DataError, match="unknown label 7"):
        read_split(get_task_spec("glue/rte"), None, "train")
    assert calls == ["aps/super_glue", "nyu-mll/glue", "nyu-mll/glue"]


def test_unreachable_hub_fails_fast(monkeypatch):
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", "http://127.0.0.1:9")
    with pytest.raises(DataError, match=r"hub is unreachable \(http://127.0.0.1:9"):
        read_split(get_task_spec("superglue/cb"), None, "train")


README_COUNTS = {
    "glue/cola": (8551, 1043, 1063),
    "glue/sst2": (67349, 872, 1821),
    "glue/mrpc": (3668, 408, 1725),
    "glue/stsb": (5749, 1500, 1379),
    "glue/rte": (2490, 277, 3000),
    "glue/wnli": (635, 71, 146),
    "superglue/cb": (250, 56, 250),
    "superglue/copa": (400, 100, 500),
    "superglue/rte": (2490, 277, 3000),
    "superglue/wsc": (554, 104, 146),
}


@pytest.mark.skipif(not REAL_DATA.is_dir(), reason=f"real GLUE/SuperGLUE copy not at {REAL_DATA}")
@pytest.mark.parametrize(("key", "counts"), README_COUNTS.items(), ids=list(README_COUNTS))
def test_real_files_match_the_readme_counts(key, counts):
    spec = get_task_spec(key)
    found = tuple(len(read_split(spec, REAL_DATA, split)) for split in spec.splits)
    assert found == counts


@pytest.mark.skipif(not REAL_DATA.is_dir(), reason=f"real GLUE/SuperGLUE copy not at {REAL_DATA}")
def test_real_files_labels_and_test_splits():
    stsb = read_split(get_task_spec("glue/stsb"), REAL_DATA, "validation")
    assert all(0.0 <= ex.label <= 5.0 for ex in stsb)
    cb = read_split(get_task_spec("superglue/cb"), REAL_DATA, "validation")
    assert {ex.label for ex in cb} == {0, 1, 2}
    copa = read_split(get_task_spec("superglue/copa"), REAL_DATA, "validation")
    assert all(len(ex.pairs) == 2 for ex in copa)
    rte_test = read_split(get_task_spec("glue/rte"), REAL_DATA, "test")
    assert all(ex.label is None for ex in rte_test)


RTE_HEADER = "index\tsentence1\tsentence2\tlabel\n"
RTE_ROW = "0\tP .\tH .\tentailment\n"
CB = {"premise": "p", "hypothesis": "h", "label": "neutral", "idx": 0}


def multirc(answers, idx=0) -> str:
    question = {"question": "Q?", "idx": 0, "answers": answers}
    return jsonl({"idx": idx, "passage": {"text": "P.", "questions": [question]}})


# (task, split, file, content, line or None, parts the message must contain)
MALFORMED = {
    "empty dev.tsv": (
        "glue/rte",
        "validation",
        "glue/RTE/dev.tsv",
        "",
        1,
        ("the file is empty", "['sentence1', 'sentence2', 'label']", "no columns"),
    ),
    "header only, a needed column missing": (
        "glue/rte",
        "validation",
        "glue/RTE/dev.tsv",
        "index\tsentence1\tlabel\n",
        1,
        ("missing column(s) ['sentence2']", "['index', 'sentence1', 'label']"),
    ),
    "header only, complete": (
        "glue/rte",
        "validation",
        "glue/RTE/dev.tsv",
        RTE_HEADER,
        None,
        ("holds no examples", "a header row but no data rows"),
    ),
    "empty CoLA dev.tsv (headerless task)": (
        "glue/cola",
        "validation",
        "glue/CoLA/dev.tsv",
        "",
        1,
        ("the file is empty", "['sentence', 'label']", "the 4 columns ['source', 'label'"),
    ),
    "CoLA row with 3 of 4 columns": (
        "glue/cola",
        "train",
        "glue/CoLA/train.tsv",
        "gj04\t1\tOk .\n",
        1,
        ("missing column(s) ['sentence']", "['gj04', '1', 'Ok .']", "4 columns"),
    ),
    "invalid UTF-8 in a TSV row": (
        "glue/rte",
        "train",
        "glue/RTE/train.tsv",
        (RTE_HEADER + RTE_ROW + "1\tcaf\xe9 .\tH .\tentailment\n").encode("latin-1"),
        3,
        ("not valid UTF-8", "byte 0xe9 at byte 6", "re-save it as UTF-8"),
    ),
    "UTF-16 TSV": (
        "glue/rte",
        "train",
        "glue/RTE/train.tsv",
        (RTE_HEADER + RTE_ROW).encode("utf-16"),
        1,
        ("not valid UTF-8", "looks like UTF-16"),
    ),
    "TSV field over the csv limit": (
        "glue/rte",
        "train",
        "glue/RTE/train.tsv",
        RTE_HEADER + "0\t" + "a" * 200_000 + "\tH .\tentailment\n",
        2,
        ("cannot split the line into columns", "field larger than field limit"),
    ),
    "invalid UTF-8 in a JSON line": (
        "superglue/cb",
        "train",
        "superglue/CB/train.jsonl",
        jsonl(CB).encode() + b'{"premise": "caf\xe9", "hypothesis": "h", "label": "neutral"}\n',
        2,
        ("not valid UTF-8", "byte 0xe9"),
    ),
    "JSON line that is an array": (
        "superglue/cb",
        "train",
        "superglue/CB/train.jsonl",
        "[1, 2]\n",
        1,
        ("expected a JSON object, got a JSON array: [1, 2]",),
    ),
    "JSON field missing": (
        "superglue/cb",
        "train",
        "superglue/CB/train.jsonl",
        jsonl({"premise": "p", "label": "neutral", "idx": 0}),
        1,
        ("missing field 'hypothesis'", "present are ['premise', 'label', 'idx']"),
    ),
    "JSON field null": (
        "superglue/cb",
        "train",
        "superglue/CB/train.jsonl",
        jsonl({**CB, "premise": None}),
        1,
        ("field 'premise' is null",),
    ),
    "JSON text field a list": (
        "superglue/cb",
        "train",
        "superglue/CB/train.jsonl",
        jsonl({**CB, "premise": ["p"]}),
        1,
        ("field 'premise' must be text, got list",),
    ),
    "JSON label missing on a labelled split": (
        "superglue/cb",
        "train",
        "superglue/CB/train.jsonl",
        jsonl({"premise": "p", "hypothesis": "h", "idx": 0}),
        1,
        ("label field 'label' is missing", "['premise', 'hypothesis', 'idx']"),
    ),
    "test split with labels on some rows": (
        "superglue/cb",
        "test",
        "superglue/CB/test.jsonl",
        jsonl({"premise": "p", "hypothesis": "h", "idx": 0}, CB),
        2,
        ("has a label but the first row", "test.jsonl:1) has none"),
    ),
    "WSC target not an object": (
        "superglue/wsc",
        "train",
        "superglue/WSC/train.jsonl",
        jsonl({"text": "t", "target": "x", "label": True, "idx": 0}),
        1,
        ("field 'target' is a JSON string, not an object", "'target.span1_text'"),
    ),
    "WSC nested field missing": (
        "superglue/wsc",
        "train",
        "superglue/WSC/train.jsonl",
        jsonl({"text": "t", "target": {"span1_text": "x"}, "label": True, "idx": 0}),
        1,
        ("missing field 'target.span1_index'", "fields of 'target' present are ['span1_text']"),
    ),
    "MultiRC answers not a list": (
        "superglue/multirc",
        "train",
        "superglue/MultiRC/train.jsonl",
        multirc("A"),
        1,
        ("field 'passage.questions[0].answers' must be a JSON array",),
    ),
    "MultiRC answer without a label": (
        "superglue/multirc",
        "train",
        "superglue/MultiRC/train.jsonl",
        multirc([{"text": "A", "idx": 0}]),
        1,
        ("'passage.questions[0].answers[0].label' is missing", "['text', 'idx']"),
    ),
    "MultiRC paragraph id not an integer": (
        "superglue/multirc",
        "train",
        "superglue/MultiRC/train.jsonl",
        multirc([{"text": "A", "idx": 0, "label": 1}], idx="p0"),
        1,
        ("field 'idx' must be a JSON integer, got \"p0\"",),
    ),
}


@pytest.mark.parametrize(
    ("key", "split", "relative", "content", "line", "parts"),
    MALFORMED.values(),
    ids=list(MALFORMED),
)
def test_malformed_files_fail_with_file_line_and_what_is_wrong(
    tmp_path, key, split, relative, content, line, parts
):
    path = tmp_path / relative
    path.parent.mkdir(parents=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(DataError) as err:
        read_split(get_task_spec(key), tmp_path, split)
    message = str(err.value)
    assert message.startswith(f"{path}:{line}: " if line else f"{path}: ")
    for part in parts:
        assert part in message
