"""Cross-validation folds that respect trial order."""

from __future__ import annotations

import numbers
from collections.abc import Iterable

import numpy as np

from errsig._exceptions import ErrsigError, InsufficientDataError

__all__ = ["blocked_folds", "check_folds"]


def blocked_folds(
    trial_index: np.ndarray,
    n_folds: int,
    *,
    gap: int = 0,
    strata: np.ndarray | None = None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Split trials into contiguous blocks of trial order, one test block per fold.

    Parameters
    ----------
    trial_index : numpy.ndarray
        Position of each row in the session, increasing, shape ``(n_rows,)``.
    n_folds : int
        Number of folds (and of test blocks).
    gap : int, default=0
        Trials on either side of a test block (in session positions) left out
        of that fold's training set, so that slow drift shared by neighbouring
        trials cannot carry over from training to test.
    strata : numpy.ndarray, optional
        A label per row (e.g. the learning phase). Each stratum is split into
        ``n_folds`` contiguous blocks and fold ``k`` tests the ``k``-th block of
        every stratum, so that every fold sees every phase.

    Returns
    -------
    list of (numpy.ndarray, numpy.ndarray)
        ``(train_rows, test_rows)`` per fold; the test rows partition the rows.

    Raises
    ------
    InsufficientDataError
        If a stratum has fewer rows than folds, or a fold is left with no
        training rows once the gap is removed.

    Examples
    --------
    >>> import numpy as np
    >>> from errsig.decoding import blocked_folds
    >>> folds = blocked_folds(np.arange(10), 2, gap=1)
    >>> [test.tolist() for _, test in folds]
    [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]
    >>> folds[0][0].tolist()  # trial 5 borders the test block and is left out
    [6, 7, 8, 9]
    """
    n_rows = len(trial_index)
    if strata is None:
        strata = np.zeros(n_rows, dtype=int)
    labels = list(dict.fromkeys(np.asarray(strata).tolist()))

    blocks_per_fold: list[list[np.ndarray]] = [[] for _ in range(n_folds)]
    for label in labels:
        rows = np.flatnonzero(np.asarray(strata) == label)
        if len(rows) < n_folds:
            raise InsufficientDataError(
                f"`cv`={n_folds} folds need at least {n_folds} trials in every "
                f"stratum, but stratum {label!r} has {len(rows)}; use fewer folds "
                "or no stratification."
            )
        for fold, block in enumerate(np.array_split(rows, n_folds)):
            blocks_per_fold[fold].append(block)

    folds = []
    for fold, blocks in enumerate(blocks_per_fold):
        test = np.sort(np.concatenate(blocks))
        train_mask = np.ones(n_rows, dtype=bool)
        train_mask[test] = False
        if gap > 0:
            for block in blocks:
                low = trial_index[block[0]] - gap
                high = trial_index[block[-1]] + gap
                train_mask &= (trial_index < low) | (trial_index > high)
        train = np.flatnonzero(train_mask)
        if len(train) < 3:
            raise InsufficientDataError(
                f"fold {fold} keeps {len(train)} training trials after removing a "
                f"gap of {gap} trials around its test block; use a smaller `gap` "
                "or fewer folds."
            )
        folds.append((train, test))
    return folds


def check_folds(
    cv: object,
    trial_index: np.ndarray,
    *,
    gap: int,
    strata: np.ndarray | None,
) -> tuple[list[tuple[np.ndarray, np.ndarray]], str]:
    """Turn the ``cv`` argument into folds, and describe the scheme.

    ``cv`` is an int (blocked folds), a scikit-learn splitter (anything with a
    ``split`` method), or an iterable of ``(train, test)`` row arrays. The test
    rows must partition the rows, since every trial gets one held-out
    prediction.
    """
    n_rows = len(trial_index)
    if isinstance(cv, numbers.Integral) and not isinstance(cv, bool):
        if cv < 2:
            raise ErrsigError(f"`cv` must be at least 2 folds; got {cv}.")
        folds = blocked_folds(trial_index, int(cv), gap=gap, strata=strata)
        scheme = f"blocked, {int(cv)} contiguous folds in trial order"
        if strata is not None:
            scheme += ", stratified by phase"
        if gap:
            scheme += f", gap of {gap} trials"
        return folds, scheme

    if hasattr(cv, "split"):
        folds = list(cv.split(np.zeros((n_rows, 1))))
        scheme = repr(cv)
    elif isinstance(cv, Iterable):
        folds = list(cv)
        scheme = "user-supplied folds"
    else:
        raise ErrsigError(
            "`cv` must be a number of blocked folds, a scikit-learn splitter or a "
            f"list of (train, test) index arrays; got {cv!r}."
        )
    folds = [(np.asarray(train, int), np.asarray(test, int)) for train, test in folds]
    tested = np.sort(np.concatenate([test for _, test in folds]))
    if not np.array_equal(tested, np.arange(n_rows)):
        raise ErrsigError(
            "`cv`: the test sets must hold every trial exactly once (each trial "
            "gets one held-out prediction); use a K-fold-like splitter, not "
            "ShuffleSplit or TimeSeriesSplit."
        )
    return folds, scheme
