"""Official metrics on small hand-computed examples."""

import numpy as np
import pytest
import torch

from adapterdrop.data import get_task_spec, metrics


def test_cola_matthews_correlation():
    # TP=1 TN=2 FP=0 FN=1: (1*2 - 0*1) / sqrt(1 * 2 * 2 * 3)
    result = get_task_spec("glue/cola").compute_metrics([1, 0, 0, 0], [1, 1, 0, 0])
    assert result == {"matthews_corr": pytest.approx(2 / np.sqrt(12))}


def test_classification_takes_logits_as_numpy_or_torch():
    logits = np.array([[2.0, -1.0], [0.1, 0.9], [3.0, 0.0]])
    labels = [0, 1, 1]
    spec = get_task_spec("glue/rte")
    assert spec.compute_metrics(logits, labels) == {"accuracy": pytest.approx(2 / 3)}
    assert spec.compute_metrics(torch.tensor(logits), torch.tensor(labels)) == {
        "accuracy": pytest.approx(2 / 3)
    }


def test_stsb_pearson_and_spearman():
    spec = get_task_spec("glue/stsb")
    # x=[1,2,3], y=[1,3,2]: centred dot product 1, both variances 2 -> 0.5; ranks equal values.
    assert spec.compute_metrics([1.0, 2.0, 3.0], [1.0, 3.0, 2.0]) == {
        "pearson": pytest.approx(0.5),
        "spearman": pytest.approx(0.5),
    }
    monotonic = spec.compute_metrics(torch.tensor([[1.0], [2.0], [3.0], [4.0]]), [1, 4, 9, 16])
    assert monotonic["spearman"] == pytest.approx(1.0)
    assert monotonic["pearson"] < 0.99


def test_mrpc_reports_f1_then_accuracy():
    result = get_task_spec("glue/mrpc").compute_metrics([1, 1, 0, 0], [1, 0, 1, 0])
    assert list(result) == ["f1", "accuracy"]
    assert result == {"f1": pytest.approx(0.5), "accuracy": pytest.approx(0.5)}


def test_cb_macro_f1():
    # per-class F1: class 0 -> 1, class 1 -> P=1 R=1/2 -> 2/3, class 2 -> P=2/3 R=1 -> 4/5
    result = get_task_spec("superglue/cb").compute_metrics([0, 0, 1, 2, 2, 2], [0, 0, 1, 1, 2, 2])
    assert result["macro_f1"] == pytest.approx((1 + 2 / 3 + 4 / 5) / 3)
    assert result["accuracy"] == pytest.approx(5 / 6)


def test_multirc_f1a_and_exact_match_group_by_paragraph_and_question():
    paragraph_ids = [0, 0, 0, 0, 0, 1]
    question_ids = [0, 0, 0, 1, 1, 1]  # question 1 of paragraph 1 is another question
    labels = [1, 0, 1, 0, 1, 0]
    predictions = [1, 0, 1, 1, 1, 0]  # only paragraph 0, question 1 has a wrong answer
    result = get_task_spec("superglue/multirc").compute_metrics(
        predictions, labels, paragraph_ids=paragraph_ids, question_ids=question_ids
    )
    # F1a over all options: TP=3 FP=1 FN=0 -> P=3/4 R=1
    assert result == {"f1a": pytest.approx(6 / 7), "em": pytest.approx(2 / 3)}


def test_multirc_needs_group_ids():
    with pytest.raises(ValueError, match="question_ids"):
        get_task_spec("superglue/multirc").compute_metrics([1], [1], paragraph_ids=[0])


def test_unlabelled_split_cannot_be_scored():
    with pytest.raises(ValueError, match="unlabelled"):
        get_task_spec("glue/rte").compute_metrics([0, 1], [-1, -1])


def test_copa_scores_choice_logits():
    logits = np.array([[0.3, 0.1], [0.0, 2.0]])  # (batch, num_choices)
    assert get_task_spec("superglue/copa").compute_metrics(logits, [0, 0]) == {
        "accuracy": pytest.approx(0.5)
    }


@pytest.mark.parametrize(
    ("prediction", "answers", "em", "f1"),
    [
        ("The Fed.", ["fed"], 1.0, 1.0),  # case, punctuation and articles go
        ("Obama", ["Barack Obama"], 0.0, 2 / 3),  # P 1, R 1/2
        ("Barack H. Obama", ["Obama", "Barack Obama"], 0.0, 0.8),  # best gold: P 2/3, R 1
        ("Paris", ["London"], 0.0, 0.0),
        ("Paris", [], 0.0, 0.0),
    ],
)
def test_squad_style_answer_scores(prediction, answers, em, f1):
    assert metrics.answer_exact_match(prediction, answers) == em
    assert metrics.answer_token_f1(prediction, answers) == pytest.approx(f1)


def test_ranking_metrics_score_the_top_candidate_of_each_group():
    # group (0, 0): "Obama" tops "Barack Obama"; group (1, 0): a tie goes to the first, "B"
    result = metrics.compute_ranking_metrics(
        ("f1", "em"),
        np.array([0.5, 2.0, 1.0, 1.0]),
        ["Barack Obama", "Obama", "B", "C"],
        [["Barack Obama"], ["Barack Obama"], ["B"], ["B"]],
        passage_ids=np.array([0, 0, 1, 1]),
        query_ids=np.array([0, 0, 0, 0]),
    )
    assert result == {"f1": pytest.approx((2 / 3 + 1) / 2), "em": pytest.approx(1 / 2)}
    with pytest.raises(ValueError, match="need the group ids"):
        metrics.compute_ranking_metrics(("em",), np.zeros(1), ["B"], [["B"]])
