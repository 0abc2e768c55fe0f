"""Bootstrap intervals over trials, with blocks that keep trial order."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from errsig._exceptions import ErrsigError
from errsig._validation import check_positive_int, check_rng

__all__ = ["BootstrapInterval", "bootstrap_interval", "bootstrap_trials"]


@dataclass(frozen=True)
class BootstrapInterval:
    """A percentile bootstrap interval.

    Attributes
    ----------
    low, high : numpy.ndarray
        Interval bounds, the statistic's shape; NaN where every replicate is NaN.
    replicates : numpy.ndarray
        The statistic on each resample, shape ``(n_boot, *shape)``.
    confidence : float
        Coverage asked for.
    n_undefined : numpy.ndarray of int
        Replicates where the statistic was NaN (e.g. no onset found), per
        element; the bounds are quantiles of the others, so report this count
        with the interval.
    """

    low: np.ndarray
    high: np.ndarray
    replicates: np.ndarray
    confidence: float
    n_undefined: np.ndarray


def bootstrap_trials(
    n_trials: int,
    n_boot: int,
    *,
    block_length: int = 1,
    rng: int | np.random.Generator | None = None,
) -> np.ndarray:
    """Trial indices of bootstrap resamples, optionally in moving blocks.

    Parameters
    ----------
    n_trials : int
        Number of trials.
    n_boot : int
        Number of resamples.
    block_length : int, default=1
        Length of the runs of consecutive trials drawn together (moving-block
        bootstrap, Künsch 1989). 1 gives the ordinary bootstrap, which is
        right only for trials that are independent; with learning or drift,
        neighbouring trials are alike and blocks of a few times the
        autocorrelation length keep that.
    rng : None, int or numpy.random.Generator, optional
        Source of randomness.

    Returns
    -------
    numpy.ndarray of int
        Shape ``(n_boot, n_trials)``; each row lists the resampled trials,
        blocks kept in their order.

    Raises
    ------
    ErrsigError
        If ``block_length`` exceeds ``n_trials``.

    Examples
    --------
    >>> from errsig.stats import bootstrap_trials
    >>> bootstrap_trials(6, 2, block_length=3, rng=0)
    array([[3, 4, 5, 2, 3, 4],
           [2, 3, 4, 1, 2, 3]])
    """
    n_trials = check_positive_int(n_trials, "n_trials")
    n_boot = check_positive_int(n_boot, "n_boot")
    block_length = check_positive_int(block_length, "block_length")
    if block_length > n_trials:
        raise ErrsigError(
            f"`block_length` ({block_length}) must not exceed the number of trials "
            f"({n_trials})."
        )
    generator = check_rng(rng)

    n_blocks = -(-n_trials // block_length)
    starts = generator.integers(0, n_trials - block_length + 1, (n_boot, n_blocks))
    trials = starts[:, :, None] + np.arange(block_length)
    return trials.reshape(n_boot, -1)[:, :n_trials]


def bootstrap_interval(
    statistic: Callable[[np.ndarray], ArrayLike],
    n_trials: int,
    *,
    n_boot: int = 200,
    block_length: int = 1,
    confidence: float = 0.95,
    rng: int | np.random.Generator | None = None,
) -> BootstrapInterval:
    """Percentile bootstrap interval of a statistic computed from trials.

    Parameters
    ----------
    statistic : callable
        ``statistic(trials)`` takes an integer array of trial positions (a
        resample, with repeats) and returns a number or an array (e.g. an onset
        latency per area), NaN where undefined.
    n_trials : int
        Number of trials in the data.
    n_boot : int, default=200
        Number of resamples.
    block_length : int, default=1
        See :func:`bootstrap_trials`.
    confidence : float, default=0.95
        Coverage of the interval.
    rng : None, int or numpy.random.Generator, optional
        Source of randomness.

    Returns
    -------
    BootstrapInterval

    Raises
    ------
    ErrsigError
        If ``confidence`` is not in (0, 1).

    Notes
    -----
    The interval is the ``(1 ± confidence) / 2`` quantiles of the replicates
    (Efron & Tibshirani 1993, ch. 13). It assumes the statistic varies smoothly
    with the data; a latency read off a thresholded significance map does not
    quite, so treat its interval as approximate, and mind ``n_undefined``:
    resamples in which no onset is found are left out, which narrows the
    interval.

    Examples
    --------
    >>> import numpy as np
    >>> from errsig.stats import bootstrap_interval
    >>> values = np.random.default_rng(0).normal(1.0, 1.0, size=400)
    >>> interval = bootstrap_interval(lambda trials: values[trials].mean(), 400,
    ...                               rng=1)
    >>> bool(interval.low < 1.0 < interval.high)
    True
    """
    if not 0 < confidence < 1:
        raise ErrsigError(f"`confidence` must be in (0, 1); got {confidence!r}.")
    resamples = bootstrap_trials(n_trials, n_boot, block_length=block_length, rng=rng)

    replicates = np.array(
        [np.asarray(statistic(trials), dtype=np.float64) for trials in resamples]
    )
    undefined = np.isnan(replicates)
    tails = [(1 - confidence) / 2, (1 + confidence) / 2]
    with warnings.catch_warnings():
        # An element NaN in every replicate gets NaN bounds, which is the answer.
        warnings.simplefilter("ignore", RuntimeWarning)
        bounds = np.nanquantile(replicates, tails, axis=0)
    return BootstrapInterval(
        low=bounds[0],
        high=bounds[1],
        replicates=replicates,
        confidence=float(confidence),
        n_undefined=undefined.sum(axis=0),
    )
