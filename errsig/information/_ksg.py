"""Kraskov–Stögbauer–Grassberger k-nearest-neighbour mutual information."""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree
from scipy.special import digamma

from errsig._exceptions import ErrsigError, InsufficientDataError
from errsig._validation import check_positive_int, check_rng

__all__ = ["ksg_mi"]

#: Size of the tie-breaking jitter, relative to each column's standard deviation.
JITTER = 1e-10


def ksg_mi(
    x: np.ndarray,
    y: np.ndarray,
    *,
    k: int = 3,
    rng: int | np.random.Generator | None = None,
) -> float:
    """Mutual information by the KSG k-nearest-neighbour estimator (algorithm 1).

    Parameters
    ----------
    x, y : array_like, shape (n_samples,) or (n_samples, n_dims)
        Paired samples.
    k : int, default=3
        Number of neighbours in the joint space. Small ``k`` gives less bias and
        more variance.
    rng : None, int or numpy.random.Generator, optional
        Randomness of the tie-breaking jitter.

    Returns
    -------
    float
        Mutual information in bits (can be slightly negative).

    Raises
    ------
    ErrsigError
        On NaN or mismatched lengths.
    InsufficientDataError
        If there are no more samples than ``k``.

    Notes
    -----
    Each column is scaled to unit standard deviation and jittered by
    ``1e-10`` standard deviations of Gaussian noise, so that tied values
    (spike counts) get distinct, randomly ordered neighbours; the estimator
    assumes continuous variables, and with heavily tied counts it measures the
    information of the jittered (continuous) variable. For every sample, ε is
    the max-norm distance to its k-th neighbour in the joint space, and
    ``n_x``, ``n_y`` count the samples strictly closer than ε in each
    marginal space; then (Kraskov et al. 2004, eq. 8)

    ``I = ψ(k) + ψ(N) - ⟨ψ(n_x + 1) + ψ(n_y + 1)⟩``   (nats; returned in bits).

    The estimator is nearly unbiased for independent variables and has a
    small bias otherwise, which grows with the dimension and with strong
    dependence. Cost: O(N log N) per pair with scipy's cKDTree.

    References
    ----------
    .. [1] Kraskov, A., Stögbauer, H. & Grassberger, P. (2004). Estimating
       mutual information. Phys. Rev. E 69, 066138.

    Examples
    --------
    >>> import numpy as np
    >>> from errsig.information import ksg_mi
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=2000)
    >>> y = 0.6 * x + 0.8 * rng.normal(size=2000)
    >>> round(ksg_mi(x, y, rng=0), 2)  # truth 0.32
    0.3
    """
    k = check_positive_int(k, "k")
    generator = check_rng(rng)
    x = _prepare(x, "x", generator)
    y = _prepare(y, "y", generator)
    if len(x) != len(y):
        raise ErrsigError(
            f"`x` and `y` must have one sample each; got {len(x)} and {len(y)}."
        )
    n_samples = len(x)
    if n_samples <= k + 1:
        raise InsufficientDataError(
            f"ksg_mi needs more than k + 1 = {k + 1} samples; got {n_samples}."
        )

    joint = np.hstack([x, y])
    distances, _ = cKDTree(joint).query(joint, k=k + 1, p=np.inf)
    radius = np.nextafter(distances[:, -1], 0)  # strictly closer than ε

    x_count = cKDTree(x).query_ball_point(x, radius, p=np.inf, return_length=True)
    y_count = cKDTree(y).query_ball_point(y, radius, p=np.inf, return_length=True)
    # the counts include the sample itself: n_x + 1 = x_count
    mi = digamma(k) + digamma(n_samples) - np.mean(digamma(x_count) + digamma(y_count))
    return float(mi / np.log(2.0))


def _prepare(values: np.ndarray, name: str, rng: np.random.Generator) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2:
        raise ErrsigError(
            f"`{name}` must be 1-D or 2-D (n_samples, n_dims); got shape {array.shape}."
        )
    if np.isnan(array).any():
        raise ErrsigError(f"`{name}` contains NaN; drop those samples first.")
    scale = array.std(axis=0)
    scale[scale == 0] = 1.0
    array = (array - array.mean(axis=0)) / scale
    return array + JITTER * rng.standard_normal(array.shape)
