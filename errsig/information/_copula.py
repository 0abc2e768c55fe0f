"""Copula normalisation: ranks mapped onto a standard normal distribution.

The Gaussian-copula estimators (Ince et al. 2017) replace every variable by
``ndtri(rank / (n + 1))``, which keeps the dependence between variables and gives
each one standard normal marginals. Spike counts have many ties, and how they are
ranked is a choice that changes the estimate, so it is an explicit argument here.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy.special import ndtri
from scipy.stats import rankdata

from errsig._exceptions import ErrsigError
from errsig._validation import check_rng

__all__ = ["copnorm"]

try:  # numba ranks counts by counting, one column at a time; numpy otherwise
    from numba import njit as _numba_njit

    # serial, like the engine's kernels (see _engine.py)
    _jit = _numba_njit(cache=True, nogil=True)
except ImportError:  # pragma: no cover - numba is a dependency
    _jit = None

#: Most (rows × distinct values) ranked by counting; beyond it, by sorting.
MAX_COUNTING_CELLS = 50_000_000

Ties = Literal["average", "random"]


def copnorm(
    x: np.ndarray,
    *,
    ties: Ties = "average",
    rng: int | np.random.Generator | None = None,
) -> np.ndarray:
    """Copula-normalise samples along the first axis.

    Each column is replaced by the standard normal quantile of its empirical
    cumulative distribution, ``ndtri(rank / (n + 1))``, so that its marginal is
    standard normal while its rank order (and hence its dependence on any other
    variable) is kept.

    Parameters
    ----------
    x : array_like, shape (n_samples, ...)
        Samples along axis 0; every other axis is normalised separately.
    ties : {"average", "random"}, default="average"
        How equal values are ranked. ``"average"`` gives them their mean rank
        (deterministic; the result has as many distinct values as the input,
        and is then re-centred to mean zero). ``"random"`` breaks ties in a
        random order drawn from ``rng`` independently for every column, which
        gives exactly Gaussian marginals at the price of noise within ties.
    rng : None, int or numpy.random.Generator, optional
        Randomness for ``ties="random"``; ignored otherwise.

    Returns
    -------
    numpy.ndarray
        Float64 array of the same shape as ``x``.

    Raises
    ------
    ErrsigError
        If ``x`` holds NaN (NaN would be ranked like a number and corrupt the
        estimate silently), or ``ties`` is not a known option.

    Notes
    -----
    With ``ties="random"`` the ranks of a column are a permutation of
    ``1 … n``, so every normalised column holds the same set of values and has
    mean exactly zero. Both options are invariant to any strictly increasing
    transform of ``x`` (with ``"random"``, for the same seed).

    Examples
    --------
    >>> import numpy as np
    >>> from errsig.information import copnorm
    >>> copnorm(np.array([3.0, 10.0, 1.0])).round(3)
    array([ 0.   ,  0.674, -0.674])
    >>> copnorm(np.array([0, 0, 1, 5]), ties="random", rng=0).round(3)
    array([-0.253, -0.842,  0.253,  0.842])
    """
    source = np.asarray(x)
    # integer arrays (spike counts) hold no NaN and are counted as they are,
    # without a float copy (uint64 excepted: its values may not fit in int64)
    exact = source.dtype.kind == "i" or (
        source.dtype.kind == "u" and source.dtype.itemsize < 8
    )
    values = source if exact else np.asarray(x, dtype=np.float64)
    if not exact and np.isnan(values).any():
        raise ErrsigError(
            "copnorm: `x` contains NaN; ranks would place NaN above every number. "
            "Drop or impute the missing samples first."
        )
    if ties not in ("average", "random"):
        raise ErrsigError(f"`ties` must be 'average' or 'random'; got {ties!r}.")
    n_samples = values.shape[0]

    integers = exact or np.issubdtype(source.dtype, np.integer)
    integers = integers or _small_integers(values)
    # ranks are multiples of ½ in [1, n]: look their normal quantiles up
    quantiles = ndtri(np.arange(2, 2 * n_samples + 1) / (2.0 * (n_samples + 1)))
    counted = (
        _counted_quantiles(values, quantiles)
        if ties == "average" and integers
        else None
    )
    if counted is not None:
        counted -= counted.mean(axis=-1, keepdims=True)
        return np.moveaxis(counted, -1, 0)

    values = values.astype(np.float64, copy=False)
    # rank along the last axis of a contiguous copy: sorting is much faster there
    columns = np.moveaxis(values, 0, -1).copy()
    if ties == "average":
        ranks = (
            _integer_average_ranks(columns)
            if integers
            else rankdata(columns, method="average", axis=-1)
        )
        normalised = quantiles[(2 * ranks).astype(np.int64) - 2]
        normalised -= normalised.mean(axis=-1, keepdims=True)
    else:
        keys = check_rng(rng).random(columns.shape)
        if integers:
            # half a unit of random offset reorders ties and nothing else
            order = np.argsort(columns + 0.5 * keys, axis=-1)
        else:
            order = np.lexsort((keys, columns), axis=-1)
        normalised = np.empty(columns.shape)
        sorted_values = np.broadcast_to(quantiles[::2], columns.shape)
        np.put_along_axis(normalised, order, sorted_values, -1)
    return np.moveaxis(normalised, -1, 0)


def _small_integers(values: np.ndarray) -> bool:
    """Whether every value is an integer small enough to add 0.5 exactly."""
    return bool(np.all(np.abs(values) < 2**40) and np.all(values == np.round(values)))


def _counted_quantiles(values: np.ndarray, quantiles: np.ndarray) -> np.ndarray | None:
    """Quantiles of the average ranks of whole numbers, counted by compiled code.

    ``values`` holds integers, or floats with integer values. Returns an array
    of shape ``values.shape[1:] + (n_samples,)``, or None without numba, for
    empty input, or when the values span too wide a range to count them (then
    they are sorted instead).
    """
    if _jit is None or not values.size:
        return None
    samples = values.reshape(len(values), -1)
    wide = np.int64 if values.dtype.kind in "iu" else np.float64
    low = samples.min(axis=0).astype(wide)
    # a range that overflows int64 comes out negative, and is sorted
    n_values = int((samples.max(axis=0).astype(wide) - low).max()) + 1
    if not 0 < n_values <= MAX_COUNTING_CELLS // samples.shape[1]:
        return None
    normalised = np.empty(samples.shape[::-1])
    _average_rank_quantiles(samples, low, n_values, quantiles, normalised)
    return normalised.reshape((*values.shape[1:], len(values)))


def _integer_average_ranks(columns: np.ndarray) -> np.ndarray:
    """Average ranks along the last axis of small integers, by counting."""
    low = columns.min(axis=-1, keepdims=True)
    shifted = (columns - low).astype(np.int64)
    n_values = int(shifted.max()) + 1 if shifted.size else 1
    n_rows = int(np.prod(columns.shape[:-1]))
    if n_rows * n_values > MAX_COUNTING_CELLS:
        return rankdata(columns, method="average", axis=-1)
    flat = shifted.reshape(n_rows, -1)
    cells = flat + n_values * np.arange(n_rows)[:, None]
    histogram = np.bincount(cells.ravel(), minlength=n_rows * n_values)
    histogram = histogram.reshape(n_rows, n_values)
    below = np.cumsum(histogram, axis=1) - histogram
    average = below + (histogram + 1) / 2.0
    ranks = np.take_along_axis(average, flat, axis=1)
    return ranks.reshape(columns.shape)


def _average_rank_quantiles_python(
    samples: np.ndarray,
    low: np.ndarray,
    n_values: int,
    quantiles: np.ndarray,
    out: np.ndarray,
) -> None:
    """Write the quantile of the average rank of whole numbers, column by column.

    ``samples`` is (n_samples, n_columns) of whole numbers (integers or floats),
    ``low`` the minimum of each column (int64 or float64), ``n_values`` at least
    the largest range plus one, and ``quantiles[i]`` the normal quantile of rank
    ``(i + 2) / 2``; writes ``out`` (n_columns, n_samples). A value seen
    ``count`` times after ``below`` smaller ones has the average rank
    ``below + (count + 1) / 2``, as in :func:`_integer_average_ranks`.
    """
    n_samples, n_columns = samples.shape
    index = np.empty(n_values, dtype=np.int64)
    shifted = np.empty(n_samples, dtype=np.int64)
    for column in range(n_columns):
        index[:] = 0
        for row in range(n_samples):
            shifted[row] = int(samples[row, column] - low[column])
            index[shifted[row]] += 1
        below = 0
        for value in range(n_values):
            count = index[value]
            index[value] = 2 * below + count - 1  # twice the average rank, less 2
            below += count
        for row in range(n_samples):
            out[column, row] = quantiles[index[shifted[row]]]


_average_rank_quantiles = (
    _jit(_average_rank_quantiles_python) if _jit is not None else None
)
