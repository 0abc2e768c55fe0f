"""Batched Poisson GLM fits by iteratively reweighted least squares (IRLS).

Every unit × window (or unit × bootstrap resample) is one small Poisson regression
with a log link and a handful of terms. Fitting them one by one spends nearly all
the time in Python overhead, so this module fits all of them at once: the weighted
normal equations of every fit are stacked into ``(n_fits, p, p)`` arrays and solved
together with one batched :func:`numpy.linalg.solve` per iteration.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["PoissonFit", "fit_poisson_glm"]

#: Largest absolute coefficient taken as finite. A log-rate coefficient beyond this
#: means the maximum-likelihood estimate does not exist (the unit is silent on some
#: directions), so the fit is stopped and reported as not converged.
DIVERGENCE_BOUND = 30.0

#: Bytes of float64 work arrays one chunk of fits may hold; bounds the memory of
#: one iteration. Fits are independent, so the chunks do not change the results.
#: Much smaller chunks are slower: an iteration allocates a dozen arrays of
#: fits × observations, and below 4 MB numpy does not back them with huge pages,
#: so the page faults multiply (64 MiB made tuning_drift 14% slower; 128 and
#: 256 MiB ran alike).
WORK_BYTES = 128 * 2**20

#: Work floats per observation of a fit beyond its design row: the iteration
#: holds about three copies of the design row and 16 series (measured with
#: tracemalloc).
OBSERVATION_FLOATS = 16


@dataclass(frozen=True)
class PoissonFit:
    """Stacked results of many Poisson GLM fits.

    Parameters
    ----------
    coef : numpy.ndarray
        Coefficients, shape ``(..., p)``; NaN where the fit did not converge.
    cov : numpy.ndarray
        Covariance of the coefficients (inverse Fisher information, Poisson scale
        1), shape ``(..., p, p)``.
    converged : numpy.ndarray
        Boolean, whether the iterations met the tolerance.
    n_iter : numpy.ndarray
        Iterations used.
    deviance : numpy.ndarray
        Residual deviance.
    dispersion : numpy.ndarray
        Pearson χ² divided by the residual degrees of freedom (1 for Poisson
        data; larger when the counts are overdispersed).
    """

    coef: np.ndarray
    cov: np.ndarray
    converged: np.ndarray
    n_iter: np.ndarray
    deviance: np.ndarray
    dispersion: np.ndarray


def fit_poisson_glm(
    design: np.ndarray,
    counts: np.ndarray,
    weights: np.ndarray | None = None,
    *,
    offset: np.ndarray | None = None,
    max_iter: int = 100,
    tol: float = 1e-10,
) -> PoissonFit:
    """Fit many Poisson GLMs with a log link at once.

    Parameters
    ----------
    design : numpy.ndarray
        Design matrices, shape ``(n_groups, n_obs, p)``. All fits of a group share
        its design.
    counts : numpy.ndarray
        Responses, shape ``(n_groups or 1, n_fits_per_group, n_obs)``.
    weights : numpy.ndarray, optional
        Frequency weights (e.g. bootstrap multiplicities), broadcastable to
        ``(n_groups, n_fits_per_group, n_obs)``.
    offset : numpy.ndarray, optional
        A known part of each log rate, ``log λ = offset + design · coef``
        (statsmodels' ``offset``), broadcastable to ``(n_groups,
        n_fits_per_group, n_obs)``; e.g. covariate terms held at fixed
        coefficients.
    max_iter : int, default=100
        Iteration limit.
    tol : float, default=1e-10
        Convergence tolerance on the coefficient step (relative to the
        coefficients' size) and on the relative change in deviance.

    Returns
    -------
    PoissonFit
        Arrays of shape ``(n_groups, n_fits_per_group, ...)``.

    Notes
    -----
    The iterations start, as statsmodels does, from ``mu = (y + mean(y)) / 2``.
    A fit whose responses are all zero, whose weighted design is rank deficient,
    or whose coefficients run past ±30 (no finite maximum-likelihood estimate)
    is reported with ``converged=False`` and NaN coefficients.

    Examples
    --------
    >>> import numpy as np
    >>> from errsig.tuning._irls import fit_poisson_glm
    >>> rng = np.random.default_rng(0)
    >>> angle = rng.uniform(0, 2 * np.pi, 200)
    >>> design = np.c_[np.ones(200), np.cos(angle), np.sin(angle)][None]
    >>> counts = rng.poisson(np.exp(1 + 0.5 * np.cos(angle)))[None, None]
    >>> fit = fit_poisson_glm(design, counts)
    >>> np.round(fit.coef[0, 0], 1), bool(fit.converged[0, 0])
    (array([ 1. ,  0.5, -0.1]), True)
    """
    design = np.asarray(design, dtype=np.float64)
    counts = np.asarray(counts, dtype=np.float64)
    n_groups, n_obs, n_terms = design.shape
    n_per_group = counts.shape[1]
    if weights is None:
        weights = np.ones((1, 1, n_obs))
    weights = np.broadcast_to(
        np.asarray(weights, dtype=np.float64), (n_groups, n_per_group, n_obs)
    )
    counts = np.broadcast_to(counts, (n_groups, n_per_group, n_obs))
    offset = np.broadcast_to(
        np.zeros(1) if offset is None else np.asarray(offset, dtype=np.float64),
        (n_groups, n_per_group, n_obs),
    )

    group_of_fit = np.repeat(np.arange(n_groups), n_per_group)
    member_of_fit = np.tile(np.arange(n_per_group), n_groups)
    n_fits = n_groups * n_per_group
    fit_bytes = 8 * n_obs * (3 * n_terms + OBSERVATION_FLOATS)
    chunk = max(1, WORK_BYTES // max(1, fit_bytes))

    coef = np.full((n_fits, n_terms), np.nan)
    cov = np.full((n_fits, n_terms, n_terms), np.nan)
    converged = np.zeros(n_fits, dtype=bool)
    n_iter = np.zeros(n_fits, dtype=np.int64)
    deviance = np.full(n_fits, np.nan)
    dispersion = np.full(n_fits, np.nan)
    for first in range(0, n_fits, chunk):
        fits = slice(first, min(first + chunk, n_fits))
        groups, members = group_of_fit[fits], member_of_fit[fits]
        (
            coef[fits],
            cov[fits],
            converged[fits],
            n_iter[fits],
            deviance[fits],
            dispersion[fits],
        ) = _irls(
            design[groups],
            counts[groups, members],
            weights[groups, members],
            offset[groups, members],
            max_iter=max_iter,
            tol=tol,
        )

    shape = (n_groups, n_per_group)
    return PoissonFit(
        coef=coef.reshape(*shape, n_terms),
        cov=cov.reshape(*shape, n_terms, n_terms),
        converged=converged.reshape(shape),
        n_iter=n_iter.reshape(shape),
        deviance=deviance.reshape(shape),
        dispersion=dispersion.reshape(shape),
    )


def _irls(
    design: np.ndarray,
    counts: np.ndarray,
    weights: np.ndarray,
    offset: np.ndarray,
    *,
    max_iter: int,
    tol: float,
) -> tuple[np.ndarray, ...]:
    """IRLS on stacked fits: design (F, n, p), counts, weights, offset (F, n)."""
    n_fits, _, n_terms = design.shape
    total_weight = weights.sum(axis=1)
    mean_count = (weights * counts).sum(axis=1) / np.where(
        total_weight > 0, total_weight, 1.0
    )
    usable = (mean_count > 0) & (total_weight > n_terms)

    start_mean = (counts + mean_count[:, None]) / 2
    eta = np.log(np.where(start_mean > 0, start_mean, 1.0))
    count_log_count = np.where(counts > 0, counts * np.log(np.maximum(counts, 1)), 0.0)
    coef = np.zeros((n_fits, n_terms))
    old_deviance = np.full(n_fits, np.inf)
    converged = np.zeros(n_fits, dtype=bool)
    n_iter = np.zeros(n_fits, dtype=np.int64)
    active = usable.copy()

    for iteration in range(1, max_iter + 1):
        index = np.flatnonzero(active)
        if index.size == 0:
            break
        # While every fit iterates (the first iterations), views, not copies.
        rows = slice(None) if index.size == n_fits else index
        x, y, w = design[rows], counts[rows], weights[rows]
        current_eta, current_offset = eta[rows], offset[rows]
        mean = np.exp(current_eta)
        working = current_eta - current_offset + (y - mean) / mean
        weighted_x = x * (w * mean)[..., None]
        information = np.matmul(weighted_x.transpose(0, 2, 1), x)
        score = np.einsum("fnp,fn->fp", weighted_x, working)
        new_coef, solvable = _solve(information, score)

        linear = np.einsum("fnp,fp->fn", x, new_coef) + current_offset
        new_eta = np.minimum(linear, 700.0)
        new_deviance = 2 * (
            w * (count_log_count[rows] - y * new_eta - y + np.exp(new_eta))
        ).sum(axis=1)
        step = np.abs(new_coef - coef[rows]).max(axis=1)
        size = np.abs(new_coef).max(axis=1)
        deviance_change = np.abs(new_deviance - old_deviance[rows])
        done = (
            solvable
            & (step <= tol * (1.0 + size))
            & (deviance_change <= tol * (np.abs(new_deviance) + 0.1))
        )
        diverged = ~solvable | ~np.isfinite(size) | (size > DIVERGENCE_BOUND)

        coef[index] = new_coef
        eta[index] = new_eta
        old_deviance[index] = new_deviance
        n_iter[index] = iteration
        converged[index[done & ~diverged]] = True
        active[index[done | diverged]] = False

    coef[~converged] = np.nan
    eta = np.einsum("fnp,fp->fn", design, np.nan_to_num(coef)) + offset
    mean = np.exp(np.minimum(eta, 700.0))
    weighted_x = design * (weights * mean)[..., None]
    information = np.matmul(weighted_x.transpose(0, 2, 1), design)
    cov = np.full((n_fits, n_terms, n_terms), np.nan)
    if converged.any():
        cov[converged] = np.linalg.inv(information[converged])
    deviance = np.where(converged, _deviance(counts, mean, weights), np.nan)
    pearson = (weights * (counts - mean) ** 2 / mean).sum(axis=1)
    dispersion = np.where(converged, pearson / (total_weight - n_terms), np.nan)
    return coef, cov, converged, n_iter, deviance, dispersion


def _solve(matrices: np.ndarray, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Solve a stack of linear systems; flag the (near-)singular ones."""
    scale = np.einsum("fii->fi", matrices)
    scale = np.where(scale > 0, scale, 1.0)
    inverse_root = 1.0 / np.sqrt(scale)
    balanced = matrices * inverse_root[:, :, None] * inverse_root[:, None, :]
    # A balanced information matrix with a tiny determinant is (near-)singular:
    # the design does not identify every term for these responses.
    determinant = np.linalg.det(balanced)
    solvable = np.isfinite(determinant) & (determinant > 1e-12)
    solution = np.full_like(vectors, np.nan)
    if solvable.any():
        solution[solvable] = np.linalg.solve(
            matrices[solvable], vectors[solvable][..., None]
        )[..., 0]
    return solution, solvable


def _deviance(counts: np.ndarray, mean: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Poisson deviance, 2 Σ w [y log(y / mu) − (y − mu)], per fit."""
    with np.errstate(divide="ignore", invalid="ignore"):
        log_ratio = np.where(counts > 0, counts * np.log(counts / mean), 0.0)
    return 2 * (weights * (log_ratio - (counts - mean))).sum(axis=1)
