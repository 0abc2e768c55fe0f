"""Permutation p-values, ``(k + 1) / (P + 1)``, from surrogate statistics."""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from errsig._exceptions import ErrsigError

__all__ = ["permutation_pvalues"]

Alternative = Literal["greater", "less", "two-sided"]

ALTERNATIVES = ("greater", "less", "two-sided")

#: A surrogate within this relative distance of the observed statistic counts as a
#: tie (and so as at least as extreme): the same number computed along another
#: path of floating-point operations must not look significant.
TIE_TOLERANCE = 1e-12


def permutation_pvalues(
    observed: ArrayLike,
    null: ArrayLike,
    *,
    alternative: Alternative = "greater",
) -> np.ndarray:
    r"""Per-test permutation p-values from a null distribution of surrogates.

    Parameters
    ----------
    observed : array_like
        The statistic computed on the data, any shape (units × time, ...).
    null : array_like
        The same statistic computed on ``P`` surrogates, shape ``(P, *shape)``
        where ``shape`` broadcasts to ``observed.shape``: the leading axis
        indexes surrogates.
    alternative : {"greater", "less", "two-sided"}, default="greater"
        "greater" counts surrogates at least as large as the observed value,
        "less" those at least as small; "two-sided" doubles the smaller of the
        two one-sided p-values (capped at 1), which needs no symmetry of the
        null.

    Returns
    -------
    numpy.ndarray
        p-values of ``observed``'s shape, each in ``[1 / (P + 1), 1]``. NaN
        where ``observed`` is NaN or every surrogate of that test is NaN.

    Raises
    ------
    ErrsigError
        If ``alternative`` is unknown, ``null`` has no surrogate axis, or its
        trailing shape does not broadcast to ``observed``.

    See Also
    --------
    correct : p-values corrected over a family of tests.

    Notes
    -----
    With ``k`` the number of surrogates at least as extreme as the observed
    value and ``P`` the number of (non-NaN) surrogates,

    .. math:: p = \frac{k + 1}{P + 1},

    which counts the observed data as one member of the null distribution. Under
    the null hypothesis, and when the surrogates and the data are exchangeable,
    ``P(p <= α) <= α`` for every α: the test is exact, never anti-conservative,
    while ``k / P`` is (and can be 0). The smallest attainable p-value is
    ``1 / (P + 1)``: to claim ``p < 0.001`` you need at least 999 surrogates.
    Ties count as exceedances, with a relative tolerance of ``1e-12`` so that
    floating-point rounding cannot break a tie in the data's favour.

    References
    ----------
    .. [1] Phipson B, Smyth GK (2010). Permutation p-values should never be
       zero: calculating exact p-values when permutations are randomly drawn.
       Stat Appl Genet Mol Biol 9:39.

    Examples
    --------
    >>> import numpy as np
    >>> from errsig.stats import permutation_pvalues
    >>> null = np.array([0.1, 0.5, 0.9, 0.3])
    >>> permutation_pvalues(0.5, null)  # 0.5 and 0.9 are as large: (2 + 1) / 5
    array(0.6)
    >>> rng = np.random.default_rng(0)
    >>> permutation_pvalues([3.0, 0.0], rng.normal(size=(999, 2)))
    array([0.001, 0.482])
    """
    observed, null = check_observed_null(observed, null)
    alternative = check_alternative(alternative)

    if alternative == "two-sided":
        greater = tail_pvalues(observed, null)
        less = tail_pvalues(-observed, -null)
        return np.minimum(1.0, 2.0 * np.minimum(greater, less))
    sign = 1.0 if alternative == "greater" else -1.0
    return tail_pvalues(sign * observed, sign * null)


def tail_pvalues(observed: np.ndarray, null: np.ndarray) -> np.ndarray:
    """``(k + 1) / (P + 1)`` for the upper tail, ignoring NaN surrogates."""
    n_valid = (~np.isnan(null)).sum(axis=0)
    with np.errstate(invalid="ignore"):
        n_extreme = (null >= observed - tie_tolerance(observed)).sum(axis=0)
    pvalues = (n_extreme + 1.0) / (n_valid + 1.0)
    return np.where(np.isnan(observed) | (n_valid == 0), np.nan, pvalues)


def tie_tolerance(values: np.ndarray) -> np.ndarray:
    """Return the absolute tolerance under which two statistics tie."""
    magnitude = np.abs(values)
    return np.where(np.isfinite(magnitude), TIE_TOLERANCE * magnitude, 0.0)


def check_alternative(alternative: object) -> str:
    """Return ``alternative`` if it is a known one, else raise naming it."""
    if alternative not in ALTERNATIVES:
        raise ErrsigError(
            f"`alternative` must be one of {', '.join(map(repr, ALTERNATIVES))}; "
            f"got {alternative!r}."
        )
    return str(alternative)


def check_observed_null(
    observed: ArrayLike, null: ArrayLike
) -> tuple[np.ndarray, np.ndarray]:
    """Float arrays with ``null`` broadcast to ``(P, *observed.shape)``."""
    observed = np.asarray(observed, dtype=np.float64)
    null = np.asarray(null, dtype=np.float64)
    if null.ndim == 0 or null.shape[0] == 0:
        raise ErrsigError(
            "`null` must hold at least one surrogate along its first axis "
            f"(shape (n_surrogates, *observed.shape)); got shape {null.shape}."
        )
    try:
        null = np.broadcast_to(null, null.shape[:1] + observed.shape)
    except ValueError:
        raise ErrsigError(
            f"`null` has shape {null.shape}, but its first axis must index "
            f"surrogates and the rest must match `observed`'s shape "
            f"{observed.shape}."
        ) from None
    return observed, null
