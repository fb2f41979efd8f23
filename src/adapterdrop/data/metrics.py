"""Official GLUE/SuperGLUE metrics, computed with scikit-learn and scipy.

The `evaluate` library would fetch metric scripts from the hub, which the suite must not need.
Every metric takes 1-D arrays of predictions and labels (already arg-maxed for classification)
plus optional per-example group keys, which only MultiRC's exact match uses.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

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
    groups = None
    if group_info:
        groups = np.stack([np.asarray(ids).reshape(-1) for ids in group_info.values()], axis=1)
        if len(groups) != len(labels):
            raise ValueError(f"got {len(groups)} group ids for {labels.size} labels")
    return {name: METRICS[name](predictions, labels, groups) for name in names}
