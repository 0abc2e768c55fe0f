"""Corrections over a family of permutation tests: max-statistic, cluster, FDR."""

from __future__ import annotations

import itertools
import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
import xarray as xr
from numpy.typing import ArrayLike

from errsig._exceptions import ErrsigError
from errsig._validation import check_positive_int
from errsig.stats._pvalues import (
    Alternative,
    check_alternative,
    check_observed_null,
    permutation_pvalues,
    tie_tolerance,
)

__all__ = ["CorrectionResult", "correct", "onset_latency"]

Method = Literal["maxstat", "cluster", "fdr", "none"]

METHODS = ("maxstat", "cluster", "fdr", "none")

#: Quantile of each test's null that a statistic must exceed to join a cluster,
#: when no ``cluster_threshold`` is given.
DEFAULT_CLUSTER_QUANTILE = 0.95


@dataclass(frozen=True)
class CorrectionResult:
    """Corrected p-values of a family of permutation tests.

    Attributes
    ----------
    p : numpy.ndarray
        Corrected p-values, ``observed``'s shape; NaN where the observed
        statistic is NaN.
    significant : numpy.ndarray of bool
        ``p <= alpha`` (False where ``p`` is NaN).
    method : str
        The correction: "maxstat", "cluster", "fdr" or "none".
    alpha : float
        The family-wise error rate (maxstat, cluster), false-discovery rate
        (fdr) or per-test level (none).
    p_floor : float
        The smallest p-value the method can return with these surrogates:
        ``1 / (P + 1)``, or ``1 / (P·M + 1)`` for the pooled null of "fdr"
        (before the Benjamini–Hochberg step-up).
    alternative : str
        The tail tested.
    standardized : bool
        Whether each test's statistic was z-scored by its own null first.
    n_surrogates : int
        ``P``, the number of surrogates.
    null_max : numpy.ndarray or None
        For "maxstat" the family-wise maximum of each surrogate, for "cluster"
        the largest cluster mass of each surrogate (``-inf`` when it has no
        cluster); NaN for a surrogate that is NaN in every test, which is left
        out (and not counted in ``P``); None otherwise.
    clusters : numpy.ndarray of int or None
        For "cluster": labels of the observed clusters, ``observed``'s shape,
        0 outside clusters and 1, 2, ... inside them.
    cluster_p : numpy.ndarray or None
        For "cluster": the p-value of cluster ``k`` at index ``k - 1``.
    threshold : numpy.ndarray or None
        For "cluster": the threshold used, on the scale of the tested
        statistic (see :func:`correct`).
    """

    p: np.ndarray
    significant: np.ndarray
    method: str
    alpha: float
    p_floor: float
    alternative: str
    standardized: bool
    n_surrogates: int
    null_max: np.ndarray | None = None
    clusters: np.ndarray | None = None
    cluster_p: np.ndarray | None = None
    threshold: np.ndarray | None = None


def correct(
    observed: ArrayLike,
    null: ArrayLike,
    *,
    method: Method = "maxstat",
    alpha: float = 0.05,
    time_axis: int | None = None,
    cluster_threshold: ArrayLike | None = None,
    alternative: Alternative = "greater",
    standardize: bool | None = None,
) -> CorrectionResult:
    """Correct permutation tests for the number of tests in a family.

    Parameters
    ----------
    observed : array_like
        The statistic on the data, one value per test (units × time, areas ×
        lags, ...). Every element belongs to one family.
    null : array_like
        The statistic on ``P`` surrogates, shape ``(P, *observed.shape)``. Each
        surrogate must be one joint draw for the whole family (the same
        surrogate target for every unit and time), so that the correlation
        between tests is kept.
    method : {"maxstat", "cluster", "fdr", "none"}, default="maxstat"
        "maxstat" controls the family-wise error rate with the distribution of
        the family maximum; "cluster" controls it for clusters of adjacent
        supra-threshold tests along ``time_axis`` (Maris & Oostenveld 2007);
        "fdr" controls the false-discovery rate (Benjamini–Hochberg on a
        pooled null); "none" returns per-test p-values.
    alpha : float, default=0.05
        Level at which ``significant`` is set.
    time_axis : int, optional
        Axis of ``observed`` along which clusters form; required for
        "cluster", ignored otherwise.
    cluster_threshold : float or array_like, optional
        Value a statistic must exceed to join a cluster, broadcast to
        ``observed``. It is on the scale of the tested statistic: the
        statistic itself for "greater", its negative for "less", its absolute
        deviation from the null mean for "two-sided", and z-scores when
        ``standardize`` is true. Default: each test's own 95th percentile of
        that statistic under the null.
    alternative : {"greater", "less", "two-sided"}, default="greater"
        The tail tested. For "two-sided" the statistic is first centred on
        each test's null mean and then taken in absolute value.
    standardize : bool, optional
        Z-score each test's statistic by the mean and standard deviation of its
        own null (pooled with the observed value) before the maximum, the
        cluster sums or the pooling. Recommended when tests have different
        null means or spreads, as mutual information of units with different
        firing rates does; otherwise the tests with the widest null dominate
        the family maximum and the others lose power. Default: True for "fdr"
        (its pooled null needs it), False otherwise.

    Returns
    -------
    CorrectionResult
        Corrected ``p``, ``significant``, ``p_floor`` and, per method, the
        family null and cluster labels.

    Raises
    ------
    ErrsigError
        On an unknown ``method`` or ``alternative``, an ``alpha`` outside
        (0, 1), mismatched shapes, or "cluster" without a valid
        ``time_axis``.

    See Also
    --------
    permutation_pvalues : the uncorrected per-test p-values.
    onset_latency : the first significant time from ``significant``.

    Notes
    -----
    Let ``T_i`` be the statistic of test ``i`` (oriented so that large is
    extreme) and ``T_i^(b)`` its value on surrogate ``b = 1..P``.

    *maxstat*. ``M^(b) = max_i T_i^(b)``, and
    ``p_i = (1 + #{b : M^(b) >= T_i}) / (P + 1)``. Rejecting ``p_i <= α``
    controls the family-wise error rate at α in the strong sense, whatever the
    dependence between tests (Westfall & Young 1993; Nichols & Holmes 2002).
    With ``standardize`` the statistic is ``(T_i − m_i) / s_i``, where ``m_i``
    and ``s_i`` are the mean and standard deviation of the ``P + 1`` values
    ``{T_i, T_i^(1), ..., T_i^(P)}``; pooling the observed value keeps the
    data and the surrogates exchangeable, so the test stays exact.

    *cluster*. Along ``time_axis``, runs of adjacent tests with ``T > c`` form
    clusters; a cluster's mass is ``Σ (T − c)`` over its members. Each
    surrogate contributes the largest cluster mass anywhere in the family, and
    each observed cluster's p-value is ``(1 + #{b : mass^(b) >= mass}) / (P +
    1)``; every test in a cluster gets its cluster's p-value, tests outside
    clusters get 1. Summing the excess over the threshold, rather than the
    statistic itself as Maris & Oostenveld did with t-values, makes the mass
    blind to a constant offset of the statistic, as with the positive bias of
    mutual information or the negative bias of cross-validated R², where a
    sum of raw values would rank a long cluster of negative values as weak.
    Clusters control the family-wise error of declaring *a cluster*; they say
    nothing about the exact extent or onset of an effect (Sassenhagen &
    Draschkow 2019), so treat onset latencies from them as estimates.

    *fdr*. Each test is z-scored as for maxstat and compared with the null
    pooled over all ``M`` tests: ``p_i = (1 + #{(j, b) : Z_j^(b) >= Z_i}) /
    (P·M + 1)``; these go through Benjamini–Hochberg
    (:func:`statsmodels.stats.multitest.multipletests`, ``"fdr_bh"``). Per-test
    p-values cannot go below ``1 / (P + 1)``, and with ``M`` tests BH needs
    the smallest below ``α / M``: with 1000 surrogates and 100 units BH could
    never reject anything. The pooled null lowers the floor to ``1 / (P·M +
    1)``, at the cost of an assumption: that the standardised nulls have one
    shape across tests (it is exact when they differ only in location and
    scale).

    The p floor of "maxstat", "cluster" and "none" is ``1 / (P + 1)``.

    References
    ----------
    .. [1] Nichols TE, Holmes AP (2002). Nonparametric permutation tests for
       functional neuroimaging. Hum Brain Mapp 15:1-25.
    .. [2] Maris E, Oostenveld R (2007). Nonparametric statistical testing of
       EEG- and MEG-data. J Neurosci Methods 164:177-190.
    .. [3] Benjamini Y, Hochberg Y (1995). Controlling the false discovery
       rate. J R Stat Soc B 57:289-300.
    .. [4] Sassenhagen J, Draschkow D (2019). Cluster-based permutation tests
       of MEG/EEG data do not establish significance of effect latency or
       location. Psychophysiology 56:e13335.

    Examples
    --------
    Ten units × twenty time bins, one unit with an effect from bin 8 on:

    >>> import numpy as np
    >>> from errsig.stats import correct
    >>> rng = np.random.default_rng(0)
    >>> null = rng.normal(size=(499, 10, 20))
    >>> observed = rng.normal(size=(10, 20))
    >>> observed[3, 8:] += 4.0
    >>> result = correct(observed, null, method="maxstat")
    >>> result.p_floor
    0.002
    >>> np.flatnonzero(result.significant.any(axis=1))
    array([3])
    >>> clusters = correct(observed, null, method="cluster", time_axis=1)
    >>> np.flatnonzero(clusters.significant[3])
    array([ 8,  9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19])
    """
    observed, null = check_observed_null(observed, null)
    alternative = check_alternative(alternative)
    method = _check_method(method)
    alpha = _check_alpha(alpha)
    if standardize is None:
        standardize = method == "fdr"
    n_surrogates = null.shape[0]
    options = {
        "method": method,
        "alpha": alpha,
        "alternative": alternative,
        "standardized": bool(standardize),
        "n_surrogates": n_surrogates,
    }

    if method == "none":
        pvalues = permutation_pvalues(observed, null, alternative=alternative)
        return _result(pvalues, p_floor=1 / (n_surrogates + 1), **options)

    if method == "maxstat":
        return _maxstat(observed, null, alternative, standardize, options)
    statistic, null_statistic = _oriented(observed, null, alternative, standardize)
    if method == "cluster":
        axis = _check_time_axis(time_axis, observed.ndim)
        if cluster_threshold is None:
            threshold = _pooled_quantile(
                statistic, null_statistic, DEFAULT_CLUSTER_QUANTILE
            )
        else:
            threshold = np.broadcast_to(
                np.asarray(cluster_threshold, dtype=np.float64), observed.shape
            )
        return _cluster(statistic, null_statistic, threshold, axis, options)
    return _fdr(statistic, null_statistic, options)


def onset_latency(
    significant: ArrayLike | xr.DataArray,
    time: ArrayLike | None = None,
    *,
    axis: int | str = -1,
    min_bins: int = 1,
) -> np.ndarray | xr.DataArray:
    """Time of the first significant bin (of a run of ``min_bins``) along an axis.

    Parameters
    ----------
    significant : array_like of bool or xarray.DataArray
        Significance per test, e.g. ``CorrectionResult.significant`` of a
        cluster correction over time.
    time : array_like, optional
        The time of each position along ``axis`` (bin centres). Required for
        arrays; for a DataArray the coordinate of the ``axis`` dimension is
        used when omitted.
    axis : int or str, default=-1
        The time axis; a dimension name for a DataArray (default ``"time"``
        when given -1).
    min_bins : int, default=1
        Number of consecutive significant bins that must follow the onset. A
        cluster-corrected map has no isolated false bins to guard against, so
        1 suits it; use more with per-bin corrections.

    Returns
    -------
    numpy.ndarray or xarray.DataArray
        The latency for each remaining index, NaN where no run is found. A
        DataArray in gives a DataArray out, without the time dimension.

    Raises
    ------
    ErrsigError
        If ``time`` does not match the length of the axis, or is missing.

    Notes
    -----
    The latency is the time of a bin, so its resolution is the bin size, and
    it is only as sharp as the significance map: with cluster corrections the
    first bin of a significant cluster is an estimate, not itself a tested
    claim (Sassenhagen & Draschkow 2019). For an interval, recompute it on
    trials resampled with :func:`bootstrap_trials`.

    Examples
    --------
    >>> import numpy as np
    >>> from errsig.stats import onset_latency
    >>> significant = np.array([[0, 0, 1, 1, 0], [0, 0, 0, 0, 0]], dtype=bool)
    >>> onset_latency(significant, [0.0, 0.1, 0.2, 0.3, 0.4], axis=1)
    array([0.2, nan])
    """
    min_bins = check_positive_int(min_bins, "min_bins")
    if isinstance(significant, xr.DataArray):
        dim = "time" if axis == -1 else axis
        if dim not in significant.dims:
            raise ErrsigError(
                f"`axis` {dim!r} is not a dimension of `significant`, which has "
                f"{significant.dims}; pass the time dimension's name."
            )
        if time is None:
            time = significant[dim].values
        values = _first_run_time(
            significant.values, time, significant.get_axis_num(dim), min_bins
        )
        template = significant.isel({dim: 0}, drop=True)
        return template.copy(data=values).rename("onset_latency")

    if time is None:
        raise ErrsigError("`time` is required when `significant` is not a DataArray.")
    if not isinstance(axis, int):
        raise ErrsigError(f"`axis` must be an integer for arrays; got {axis!r}.")
    return _first_run_time(np.asarray(significant), time, axis, min_bins)


def _first_run_time(
    significant: np.ndarray, time: ArrayLike, axis: int, min_bins: int
) -> np.ndarray:
    significant = np.moveaxis(np.asarray(significant, dtype=bool), axis, -1)
    time = np.asarray(time, dtype=np.float64)
    if time.shape != significant.shape[-1:]:
        raise ErrsigError(
            f"`time` has {time.size} values but the time axis of `significant` "
            f"has {significant.shape[-1]}; give one time per bin."
        )

    if min_bins > 1:
        if min_bins > significant.shape[-1]:
            return np.full(significant.shape[:-1], np.nan)
        windows = np.lib.stride_tricks.sliding_window_view(
            significant, min_bins, axis=-1
        )
        significant = windows.all(axis=-1)
    first = np.argmax(significant, axis=-1)
    return np.where(significant.any(axis=-1), time[first], np.nan)


#: Bytes of oriented surrogate statistics the max-statistic path holds at once.
MAXSTAT_CHUNK_BYTES = 32 * 2**20


def _oriented(
    observed: np.ndarray, null: np.ndarray, alternative: str, standardize: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Orient the statistic and its null so that large means extreme."""
    if standardize or alternative == "two-sided":
        pooled = np.concatenate([observed[None], null])
        with warnings.catch_warnings():
            # A test that is NaN throughout stays NaN, which is its answer.
            warnings.simplefilter("ignore", RuntimeWarning)
            centre = np.nanmean(pooled, axis=0)
            spread = np.nanstd(pooled, axis=0)
        observed = observed - centre
        null = null - centre
        if standardize:
            spread = np.where(spread > 0, spread, 1.0)
            observed = observed / spread
            null = null / spread
    if alternative == "less":
        return -observed, -null
    if alternative == "two-sided":
        return np.abs(observed), np.abs(null)
    return observed, null


def _pooled_quantile(
    statistic: np.ndarray, null_statistic: np.ndarray, quantile: float
) -> np.ndarray:
    """Each test's quantile of its null pooled with the observed value."""
    pooled = np.concatenate([statistic[None], null_statistic])
    if np.isnan(pooled).any():  # nanquantile loops over tests: only when needed
        return np.nanquantile(pooled, quantile, axis=0)
    return np.quantile(pooled, quantile, axis=0)


def _maxstat(
    observed: np.ndarray,
    null: np.ndarray,
    alternative: str,
    standardize: bool,
    options: dict,
) -> CorrectionResult:
    """Max-statistic p-values, orienting the null a chunk of tests at a time.

    Only each surrogate's family-wise maximum is kept, so the oriented (and
    standardised) null is never held whole: with 1,000 surrogates of 150,000
    unit × bin tests that would be 1.2 GB per copy. Every test is oriented on
    its own, so the numbers do not depend on the chunking.
    """
    n_surrogates = null.shape[0]
    family = null.reshape(n_surrogates, -1)
    observed_flat = observed.reshape(-1)
    n_tests = family.shape[1]
    # Chunks of at least 8 tests: numpy reduces a single column pairwise, several
    # columns row by row, and the last bits of the means would differ.
    per_chunk = max(8, MAXSTAT_CHUNK_BYTES // (8 * (n_surrogates + 1)))
    n_chunks = max(1, n_tests // per_chunk)
    edges = np.linspace(0, n_tests, n_chunks + 1).round().astype(int)

    statistic = np.empty(n_tests)
    null_max = np.full(n_surrogates, -np.inf)
    valid = np.zeros(n_surrogates, dtype=bool)
    for start, stop in itertools.pairwise(edges):
        chunk_statistic, chunk_null = _oriented(
            observed_flat[start:stop], family[:, start:stop], alternative, standardize
        )
        statistic[start:stop] = chunk_statistic
        defined = ~np.isnan(chunk_null)
        valid |= defined.any(axis=1)
        chunk_max = np.where(defined, chunk_null, -np.inf).max(axis=1)
        np.maximum(null_max, chunk_max, out=null_max)
    null_max[~valid] = np.nan

    # p_i = (1 + #{b : M_b >= T_i}) / (P + 1), counted on the sorted maxima
    threshold = statistic - tie_tolerance(statistic)
    ordered = np.sort(null_max[valid])
    exceed = len(ordered) - np.searchsorted(ordered, threshold, side="left")
    pvalues = (exceed + 1.0) / (valid.sum() + 1.0)
    pvalues = np.where(np.isnan(statistic), np.nan, pvalues)
    return _result(
        pvalues.reshape(observed.shape),
        p_floor=1 / (int(valid.sum()) + 1),
        null_max=null_max,
        **options,
    )


def _defined_surrogates(null_statistic: np.ndarray) -> np.ndarray:
    """Surrogates with at least one non-NaN test; the others do not count."""
    family = null_statistic.reshape(null_statistic.shape[0], -1)
    return ~np.isnan(family).all(axis=1)


def _cluster(
    statistic: np.ndarray,
    null_statistic: np.ndarray,
    threshold: np.ndarray,
    axis: int,
    options: dict,
) -> CorrectionResult:
    n_surrogates = null_statistic.shape[0]
    statistic_runs = np.moveaxis(statistic, axis, -1)
    null_runs = np.moveaxis(null_statistic, axis + 1, -1)
    threshold_runs = np.moveaxis(threshold, axis, -1)

    labels, masses, _ = _label_clusters(statistic_runs[None], threshold_runs)
    _, null_masses, owners = _label_clusters(null_runs, threshold_runs)
    null_max = np.full(n_surrogates, -np.inf)
    np.maximum.at(null_max, owners, null_masses)
    valid = _defined_surrogates(null_statistic)
    null_max[~valid] = np.nan

    exceed = null_max[valid, None] >= masses - tie_tolerance(masses)
    cluster_p = (exceed.sum(axis=0) + 1.0) / (valid.sum() + 1.0)
    pvalues = np.concatenate([[1.0], cluster_p])[labels[0]]
    pvalues = np.where(np.isnan(statistic_runs), np.nan, pvalues)
    return _result(
        np.moveaxis(pvalues, -1, axis),
        p_floor=1 / (int(valid.sum()) + 1),
        null_max=null_max,
        clusters=np.moveaxis(labels[0], -1, axis),
        cluster_p=cluster_p,
        threshold=np.array(threshold),
        **options,
    )


def _label_clusters(
    statistic: np.ndarray, threshold: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Label runs of supra-threshold values along the last axis, per replicate.

    ``statistic`` is ``(R, ..., T)`` and ``threshold`` broadcasts to it. Returns
    the labels (0 outside clusters, 1..K numbered across all replicates), the
    mass ``Σ (statistic − threshold)`` of each cluster and the replicate each
    belongs to.
    """
    n_replicates, n_times = statistic.shape[0], statistic.shape[-1]
    with np.errstate(invalid="ignore"):
        supra = statistic > threshold
    excess = np.where(supra, statistic - threshold, 0.0)

    rows = supra.reshape(-1, n_times)
    starts = rows.copy()
    starts[:, 1:] &= ~rows[:, :-1]
    labels = np.cumsum(starts.reshape(-1)).reshape(rows.shape) * rows
    masses = np.bincount(
        labels.reshape(-1), weights=excess.reshape(-1), minlength=starts.sum() + 1
    )[1:]
    rows_per_replicate = rows.shape[0] // n_replicates
    owners = np.flatnonzero(starts) // n_times // rows_per_replicate
    return labels.reshape(statistic.shape), masses, owners


def _fdr(
    statistic: np.ndarray, null_statistic: np.ndarray, options: dict
) -> CorrectionResult:
    from statsmodels.stats.multitest import multipletests

    pooled = np.sort(null_statistic[~np.isnan(null_statistic)])
    threshold = statistic - tie_tolerance(statistic)
    n_extreme = pooled.size - np.searchsorted(pooled, threshold, side="left")
    raw = (n_extreme + 1.0) / (pooled.size + 1.0)

    valid = ~np.isnan(statistic)
    pvalues = np.full(statistic.shape, np.nan)
    if valid.any():
        _, adjusted, _, _ = multipletests(
            raw[valid], alpha=options["alpha"], method="fdr_bh"
        )
        pvalues[valid] = adjusted
    return _result(pvalues, p_floor=1 / (pooled.size + 1), **options)


def _result(pvalues: np.ndarray, **fields: object) -> CorrectionResult:
    with np.errstate(invalid="ignore"):
        significant = np.asarray(pvalues <= fields["alpha"])
    return CorrectionResult(p=np.asarray(pvalues), significant=significant, **fields)


def _check_method(method: object) -> str:
    if method not in METHODS:
        raise ErrsigError(
            f"`method` must be one of {', '.join(map(repr, METHODS))}; got {method!r}."
        )
    return str(method)


def _check_alpha(alpha: object) -> float:
    try:
        value = float(alpha)
    except (TypeError, ValueError):
        value = np.nan
    if not 0 < value < 1:
        raise ErrsigError(f"`alpha` must be a number in (0, 1); got {alpha!r}.")
    return value


def _check_time_axis(time_axis: object, ndim: int) -> int:
    if time_axis is None:
        raise ErrsigError(
            'method="cluster" needs `time_axis`, the axis of `observed` along '
            "which clusters form (e.g. time_axis=1 for units × time)."
        )
    if isinstance(time_axis, bool) or not isinstance(time_axis, int | np.integer):
        raise ErrsigError(f"`time_axis` must be an integer; got {time_axis!r}.")
    if not -ndim <= time_axis < ndim:
        raise ErrsigError(
            f"`time_axis`={time_axis} is out of range for `observed` with "
            f"{ndim} dimension(s)."
        )
    return int(time_axis) % ndim
