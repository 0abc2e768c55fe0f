"""Scores of held-out predictions, vectorised over bins and surrogates."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.stats import rankdata

__all__ = ["classification_scores", "regression_scores"]

#: Elements of one (bins × rows × columns) temporary array: scores are computed
#: a chunk of bins at a time, each bin on its own, to bound memory.
CHUNK_ELEMENTS = 4_000_000


def _by_bin_chunks(
    score: Callable[..., dict[str, np.ndarray]], predictions: np.ndarray, *args: object
) -> dict[str, np.ndarray]:
    """Apply ``score`` to chunks of bins of ``predictions`` and join the results."""
    n_bins, n_rows, n_columns = predictions.shape
    chunk = max(1, CHUNK_ELEMENTS // (n_rows * n_columns))
    parts = [
        score(predictions[start : start + chunk], *args)
        for start in range(0, n_bins, chunk)
    ]
    return {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}


def regression_scores(
    predictions: np.ndarray, targets: np.ndarray, n_components: int
) -> dict[str, np.ndarray]:
    """R² and Pearson correlation of pooled held-out predictions.

    Parameters
    ----------
    predictions : numpy.ndarray
        ``(n_bins, n_rows, n_problems * n_components)``.
    targets : numpy.ndarray
        ``(n_rows, n_problems * n_components)``.
    n_components : int

    Returns
    -------
    dict
        ``r2`` and ``correlation`` of shape ``(n_bins, n_problems,
        n_components)``, and ``score``, the variance-weighted R² over the
        components, ``(n_bins, n_problems)``: ``1 - Σ SS_res / Σ SS_tot`` as
        :func:`sklearn.metrics.r2_score` with ``multioutput="variance_weighted"``.
    """
    return _by_bin_chunks(_regression_scores, predictions, targets, n_components)


def _regression_scores(
    predictions: np.ndarray, targets: np.ndarray, n_components: int
) -> dict[str, np.ndarray]:
    n_bins, _, n_columns = predictions.shape
    shape = (n_bins, n_columns // n_components, n_components)
    deviation = targets - targets.mean(axis=0)
    total = (deviation**2).sum(axis=0)
    residual = ((predictions - targets) ** 2).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        r2 = 1.0 - residual / total
        weighted = 1.0 - residual.reshape(shape).sum(-1) / total.reshape(shape[1:]).sum(
            -1
        )
        centred = predictions - predictions.mean(axis=1, keepdims=True)
        correlation = (centred * deviation).sum(axis=1) / np.sqrt(
            (centred**2).sum(axis=1) * total
        )
    return {
        "score": weighted,
        "r2": r2.reshape(shape),
        "correlation": correlation.reshape(shape),
    }


def classification_scores(
    decisions: np.ndarray, labels: np.ndarray
) -> dict[str, np.ndarray]:
    """Area under the ROC curve and balanced accuracy of held-out decisions.

    Parameters
    ----------
    decisions : numpy.ndarray
        ``(n_bins, n_rows, n_problems)`` decision values (positive: class 1).
    labels : numpy.ndarray
        ``(n_rows, n_problems)`` of 0/1.

    Returns
    -------
    dict
        ``score`` (the AUC, ties counted one half, as the Mann–Whitney U) and
        ``balanced_accuracy`` (mean of the two classes' recall at decision 0),
        each ``(n_bins, n_problems)``.
    """
    return _by_bin_chunks(_classification_scores, decisions, labels)


def _classification_scores(
    decisions: np.ndarray, labels: np.ndarray
) -> dict[str, np.ndarray]:
    positive = labels.astype(bool)
    n_positive = positive.sum(axis=0)
    n_negative = len(labels) - n_positive
    ranks = rankdata(decisions, axis=1)
    rank_sum = (ranks * positive).sum(axis=1)
    predicted = decisions > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = (rank_sum - n_positive * (n_positive + 1) / 2) / (n_positive * n_negative)
        true_positive = (predicted & positive).sum(axis=1) / n_positive
        true_negative = (~predicted & ~positive).sum(axis=1) / n_negative
    return {"score": auc, "balanced_accuracy": (true_positive + true_negative) / 2}
