"""Official GLUE/SuperGLUE metrics, computed with scikit-learn and scipy.

The `evaluate` library would fetch metric scripts from the hub, which the suite must not need.
Every metric takes 1-D arrays of predictions and labels (already arg-maxed for classification)
plus optional per-example group keys, which only MultiRC's exact match uses. A ranking task
(ReCoRD) is scored by `compute_ranking_metrics` instead: per group (query) the text of the
top-scored candidate against the gold answers, as in the official ReCoRD (SQuAD v1.1) script.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Callable, Mapping, Sequence

import numpy as np
from scipy import stats
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

Metric = Callable[[np.ndarray, np.ndarray, np.ndarray | None], float]


def accuracy(predictions: np.ndarray, labels: np.ndarray, groups: np.ndarray | None) -> float:
    return float(accuracy_score(labels, predictions))


def binary_f1(predictions: np.ndarray, labels: np.ndarray, groups: np.ndarray | None) -> float:
    """F1 of the positive class (label 1); MultiRC's F1a is this over all answer options."""
    return float(f1_score(labels, predictions, pos_label=1, average="binary", zero_division=0))


def macro_f1(predictions: np.ndarray, labels: np.ndarray, groups: np.ndarray | None) -> float:
    """Unweighted mean of per-class F1, CB's official metric (its neutral class is rare)."""
    return float(f1_score(labels, predictions, average="macro", zero_division=0))


def matthews(predictions: np.ndarray, labels: np.ndarray, groups: np.ndarray | None) -> float:
    return float(matthews_corrcoef(labels, predictions))


def pearson(predictions: np.ndarray, labels: np.ndarray, groups: np.ndarray | None) -> float:
    return float(stats.pearsonr(predictions, labels)[0])


def spearman(predictions: np.ndarray, labels: np.ndarray, groups: np.ndarray | None) -> float:
    return float(stats.spearmanr(predictions, labels)[0])


def exact_match(predictions: np.ndarray, labels: np.ndarray, groups: np.ndarray | None) -> float:
    """Share of groups (MultiRC questions) whose every answer option is predicted right."""
    if groups is None:
        raise ValueError(
            "exact match needs the question grouping ids: pass the group info of the split "
            "(e.g. paragraph_ids=..., question_ids=...) to compute_metrics"
        )
    _, group_index = np.unique(groups, axis=0, return_inverse=True)
    wrong = np.bincount(group_index.reshape(-1), weights=predictions != labels)
    return float(np.mean(wrong == 0))


METRICS: Mapping[str, Metric] = {
    "accuracy": accuracy,
    "f1": binary_f1,
    "f1a": binary_f1,
    "macro_f1": macro_f1,
    "matthews_corr": matthews,
    "pearson": pearson,
    "spearman": spearman,
    "em": exact_match,
}


def compute_metrics(
    names: tuple[str, ...],
    predictions: np.ndarray,
    labels: np.ndarray,
    **group_info: np.ndarray,
) -> dict[str, float]:
    """Compute the named metrics; `group_info` arrays are stacked into one group key per example."""
    predictions = np.asarray(predictions).reshape(-1)
    labels = np.asarray(labels).reshape(-1)
    if predictions.shape != labels.shape:
        raise ValueError(f"got {predictions.size} predictions for {labels.size} labels")
    groups = _stack_groups(group_info, labels.size)
    return {name: METRICS[name](predictions, labels, groups) for name in names}


def _stack_groups(group_info: Mapping[str, np.ndarray], size: int) -> np.ndarray | None:
    """One row of group ids per example (None without group info)."""
    if not group_info:
        return None
    groups = np.stack([np.asarray(ids).reshape(-1) for ids in group_info.values()], axis=1)
    if len(groups) != size:
        raise ValueError(f"got {len(groups)} group ids for {size} examples")
    return groups


RankingMetric = Callable[[str, Sequence[str]], float]
_PUNCTUATION = frozenset(string.punctuation)


def normalize_answer(text: str) -> str:
    """SQuAD's normalisation, which the official ReCoRD script uses: lower case, no
    punctuation, no articles, single spaces."""
    text = "".join(char for char in text.lower() if char not in _PUNCTUATION)
    return " ".join(re.sub(r"\b(a|an|the)\b", " ", text).split())


def answer_exact_match(prediction: str, answers: Sequence[str]) -> float:
    """1 when the normalised prediction equals a normalised gold answer."""
    wanted = normalize_answer(prediction)
    return float(any(wanted == normalize_answer(answer) for answer in answers))


def answer_token_f1(prediction: str, answers: Sequence[str]) -> float:
    """Best F1 over the gold answers of the normalised tokens shared with the prediction."""
    return max((_token_f1(prediction, answer) for answer in answers), default=0.0)


def _token_f1(prediction: str, answer: str) -> float:
    predicted, gold = normalize_answer(prediction).split(), normalize_answer(answer).split()
    shared = sum((Counter(predicted) & Counter(gold)).values())
    if shared == 0:
        return 0.0
    precision, recall = shared / len(predicted), shared / len(gold)
    return 2 * precision * recall / (precision + recall)


RANKING_METRICS: Mapping[str, RankingMetric] = {
    "em": answer_exact_match,
    "f1": answer_token_f1,
}


def compute_ranking_metrics(
    names: tuple[str, ...],
    scores: np.ndarray,
    candidates: Sequence[str],
    answers: Sequence[Sequence[str]],
    **group_info: np.ndarray,
) -> dict[str, float]:
    """The named `RANKING_METRICS` averaged over groups, each scored by its top candidate.

    `scores` says how strongly each example (candidate) is predicted correct; a group's
    examples share their gold `answers`, and a tie goes to the first candidate.
    """
    scores = np.asarray(scores, dtype=float).reshape(-1)
    if not len(candidates) == len(answers) == len(scores):
        raise ValueError(
            f"got {len(scores)} scores for {len(candidates)} candidates and {len(answers)} "
            "answer lists"
        )
    groups = _stack_groups(group_info, len(scores))
    if groups is None:
        raise ValueError("ranking metrics need the group ids (e.g. passage_ids=, query_ids=)")
    best = top_of_groups(scores, groups)
    return {
        name: float(np.mean([RANKING_METRICS[name](candidates[at], answers[at]) for at in best]))
        for name in names
    }


def top_of_groups(scores: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Index of the highest-scored example of each group (the earliest on ties)."""
    _, group_index = np.unique(groups, axis=0, return_inverse=True)
    group_index = group_index.reshape(-1)
    order = np.lexsort((np.arange(len(scores)), -scores, group_index))
    first = np.ones(len(order), dtype=bool)
    first[1:] = group_index[order][1:] != group_index[order][:-1]
    return order[first]
