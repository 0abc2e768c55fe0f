"""Trial-by-trial tuning from a point-process adaptive filter and smoother.

The tuning coefficients of each unit follow a Gaussian random walk,
``x_n = x_{n-1} + w_n`` with ``w_n ~ N(0, Q)``, and the spike count on trial ``n``
is Poisson with ``log λ_n = h_nᵀ x_n``, ``h_n = [1, cos θ_n, sin θ_n, ...]``. The
filter is Eden et al.'s (2004) stochastic-state point-process filter with the
rate evaluated at the one-step prediction; the smoother is the fixed-interval
(Rauch–Tung–Striebel) backward pass. ``Q`` is diagonal, one variance for the
baseline and one shared by the cos and sin terms, chosen per unit by maximising
the Laplace approximation of the marginal likelihood over a grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["TuningTrack", "track_tuning"]

#: Candidate per-trial variances of the cos/sin coefficients.
TUNING_NOISE_GRID = np.logspace(-7, -1.5, 12)

#: Candidate per-trial variances of the baseline coefficient.
BASELINE_NOISE_GRID = np.array([0.0, 1e-5, 1e-4, 1e-3])

#: Prior covariance used when no starting fit is available.
FALLBACK_PRIOR_VARIANCE = 0.5


@dataclass(frozen=True)
class TuningTrack:
    """Smoothed trial-by-trial tuning of many units."""

    coef: np.ndarray
    cov: np.ndarray
    predicted_coef: np.ndarray
    process_noise: np.ndarray
    baseline_process_noise: np.ndarray
    log_likelihood: np.ndarray
    converged: np.ndarray


def track_tuning(
    design: np.ndarray,
    counts: np.ndarray,
    *,
    start_coef: np.ndarray,
    start_cov: np.ndarray,
    fallback_coef: np.ndarray,
) -> TuningTrack:
    """Smoothed trial-by-trial coefficients of every unit.

    Parameters
    ----------
    design : numpy.ndarray
        ``(n_trials, p)`` rows ``[1, cos θ, sin θ, covariates...]``.
    counts : numpy.ndarray
        ``(n_units, n_trials)`` spike counts.
    start_coef, start_cov : numpy.ndarray
        A fit on the first trials, ``(n_units, p)`` and ``(n_units, p, p)``; its
        covariance sets the prior spread of the first trial's coefficients.
    fallback_coef : numpy.ndarray
        A fit on the whole session, ``(n_units, p)``: the prior mean.

    Returns
    -------
    TuningTrack
        ``coef`` (n_units, n_trials, p), ``cov`` (n_units, n_trials, p, p),
        ``predicted_coef`` (the filter's one-step prediction of each trial's
        coefficients from the trials before it, (n_units, n_trials, p)),
        ``process_noise`` and ``baseline_process_noise`` (n_units,), the
        approximate ``log_likelihood`` at the chosen noise, and ``converged``
        (False where no prior fit existed, e.g. a silent unit).

    Examples
    --------
    >>> import numpy as np
    >>> from errsig.tuning._filter import track_tuning
    >>> rng = np.random.default_rng(1)
    >>> angle = rng.uniform(0, 2 * np.pi, 300)
    >>> design = np.c_[np.ones(300), np.cos(angle), np.sin(angle)]
    >>> counts = rng.poisson(np.exp(design @ [1.0, 0.8, 0.0]))[None]
    >>> coef = np.array([[1.0, 0.8, 0.0]])
    >>> track = track_tuning(design, counts, start_coef=coef,
    ...                      start_cov=0.01 * np.eye(3)[None], fallback_coef=coef)
    >>> track.coef.shape
    (1, 300, 3)
    """
    n_units = counts.shape[0]
    n_terms = design.shape[1]
    prior_mean = np.where(np.isfinite(fallback_coef), fallback_coef, start_coef)
    converged = np.all(np.isfinite(prior_mean), axis=1)
    prior_mean = np.where(converged[:, None], prior_mean, 0.0)
    usable_cov = np.all(np.isfinite(start_cov), axis=(1, 2))
    prior_cov = np.where(
        usable_cov[:, None, None],
        np.nan_to_num(start_cov),
        FALLBACK_PRIOR_VARIANCE * np.eye(n_terms),
    )

    grid_base, grid_tune = np.meshgrid(
        BASELINE_NOISE_GRID, TUNING_NOISE_GRID, indexing="ij"
    )
    grid_base, grid_tune = grid_base.ravel(), grid_tune.ravel()
    n_grid = grid_base.size
    noise = _noise_matrices(
        np.tile(grid_base, n_units), np.tile(grid_tune, n_units), n_terms
    )
    log_likelihood = _forward(
        design,
        counts,
        np.repeat(prior_mean, n_grid, axis=0),
        np.repeat(prior_cov, n_grid, axis=0),
        noise,
        store=False,
        repeats=n_grid,
    )[0].reshape(n_units, n_grid)
    best = np.argmax(log_likelihood, axis=1)

    chosen_noise = _noise_matrices(grid_base[best], grid_tune[best], n_terms)
    _, filtered_mean, filtered_cov = _forward(
        design, counts, prior_mean, prior_cov, chosen_noise, store=True
    )
    predicted = np.concatenate([prior_mean[:, None], filtered_mean[:, :-1]], axis=1)
    coef, cov = _smooth(filtered_mean, filtered_cov, chosen_noise)
    predicted[~converged] = np.nan
    coef[~converged] = np.nan
    cov[~converged] = np.nan
    return TuningTrack(
        coef=coef,
        cov=cov,
        predicted_coef=predicted,
        process_noise=np.where(converged, grid_tune[best], np.nan),
        baseline_process_noise=np.where(converged, grid_base[best], np.nan),
        log_likelihood=np.where(
            converged, log_likelihood[np.arange(n_units), best], np.nan
        ),
        converged=converged,
    )


def _noise_matrices(baseline: np.ndarray, tuning: np.ndarray, n_terms: int):
    noise = np.zeros((baseline.size, n_terms, n_terms))
    noise[:, 0, 0] = baseline
    noise[:, 1, 1] = tuning
    noise[:, 2, 2] = tuning
    return noise


def _forward(
    design: np.ndarray,
    counts: np.ndarray,
    prior_mean: np.ndarray,
    prior_cov: np.ndarray,
    noise: np.ndarray,
    *,
    store: bool,
    repeats: int = 1,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Filter every series; return the approximate log likelihood (and states).

    Each row of ``counts`` is the spike counts of ``repeats`` consecutive series
    (one unit under several process noises), repeated trial by trial rather
    than copied whole.
    """
    n_trials = counts.shape[1]
    n_series = counts.shape[0] * repeats
    n_terms = design.shape[1]
    mean = prior_mean.copy()
    cov = prior_cov - noise  # so that the first prediction has the prior's spread
    log_likelihood = np.zeros(n_series)
    filtered_mean = np.empty((n_series, n_trials, n_terms)) if store else None
    filtered_cov = np.empty((n_series, n_trials, n_terms, n_terms)) if store else None
    for trial in range(n_trials):
        row = design[trial]
        cov = cov + noise
        spread = cov @ row
        curvature = spread @ row
        rate = np.exp(np.minimum(mean @ row, 50.0))
        count = counts[:, trial]
        if repeats > 1:
            count = np.repeat(count, repeats)
        residual = count - rate
        gain = rate * curvature

        # Laplace approximation of log p(y_n | y_1..n-1), up to log y_n!.
        posterior_shift = residual * curvature / (1 + gain)
        log_likelihood += (
            count * (np.log(rate) + posterior_shift)
            - rate * np.exp(posterior_shift)
            - 0.5 * residual**2 * curvature / (1 + gain) ** 2
            - 0.5 * np.log1p(gain)
        )

        cov = (
            cov
            - (spread[:, :, None] * spread[:, None, :])
            * (rate / (1 + gain))[:, None, None]
        )
        mean = mean + (cov @ row) * residual[:, None]
        if store:
            filtered_mean[:, trial] = mean
            filtered_cov[:, trial] = cov
    return log_likelihood, filtered_mean, filtered_cov


def _smooth(
    filtered_mean: np.ndarray, filtered_cov: np.ndarray, noise: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Rauch–Tung–Striebel fixed-interval smoother for a random-walk state.

    Smooths in place: going back from the last trial, each trial's filtered
    state is overwritten by its smoothed state, which is all that the trials
    before it need.
    """
    mean, cov = filtered_mean, filtered_cov
    n_trials = mean.shape[1]
    for trial in range(n_trials - 2, -1, -1):
        current = filtered_cov[:, trial]
        predicted = current + noise
        gain = np.linalg.solve(predicted, current).transpose(0, 2, 1)
        mean[:, trial] = filtered_mean[:, trial] + np.einsum(
            "uij,uj->ui", gain, mean[:, trial + 1] - filtered_mean[:, trial]
        )
        cov[:, trial] = current + gain @ (
            cov[:, trial + 1] - predicted
        ) @ gain.transpose(0, 2, 1)
    return mean, cov
