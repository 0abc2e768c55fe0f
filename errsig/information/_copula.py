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
    values = np.asarray(x, dtype=np.float64)
    if np.isnan(values).any():
        raise ErrsigError(
            "copnorm: `x` contains NaN; ranks would place NaN above every number. "
            "Drop or impute the missing samples first."
        )
    if ties not in ("average", "random"):
        raise ErrsigError(f"`ties` must be 'average' or 'random'; got {ties!r}.")
    n_samples = values.shape[0]

    if ties == "average":
        ranks = rankdata(values, method="average", axis=0)
    else:
        keys = check_rng(rng).random(values.shape)
        order = np.lexsort((keys, values), axis=0)
        ranks = np.empty(values.shape)
        positions = np.arange(1, n_samples + 1, dtype=np.float64)
        positions = positions.reshape((n_samples,) + (1,) * (values.ndim - 1))
        np.put_along_axis(ranks, order, np.broadcast_to(positions, values.shape), 0)

    normalised = ndtri(ranks / (n_samples + 1))
    if ties == "average":
        normalised -= normalised.mean(axis=0)
    return normalised
