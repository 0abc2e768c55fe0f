"""Reward coupling of tuning change, and the learning-rule test."""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import numpy as np
import xarray as xr
from scipy import signal, sparse
from scipy import stats as scipy_stats
from statsmodels.stats.multitest import multipletests

from errsig._exceptions import ErrsigError
from errsig._validation import check_positive_int, check_rng
from errsig.stats import NullDraw, correct, null_targets, permutation_pvalues
from errsig.tuning._design import (
    block_labels,
    check_dataset,
    unit_chunks,
    wrap_angle,
)
from errsig.tuning._irls import fit_poisson_glm

__all__ = ["reward_coupling"]

#: Learning-rule labels, in the order of the ``rule`` variable's categories.
RULES = ("stable", "gradient", "reward_gated", "random_walk")

#: The behavioural variables the tests redraw, keys of a session null's draws.
NEEDED_DRAWS = ("error", "reward")

#: Statistics whose null-standardised maximum is the gradient test. The score
#: form relates each trial's residual only to errors of *earlier* trials; the
#: lag-0 increment (``gradient_r2``) also sees trial n's own count, which the
#: movement that produced e_n drives, and so is reported but not tested.
GRADIENT_STATISTICS = ("gradient_score",)

#: Statistics whose null-standardised maximum is the reward-gating test, and
#: whether each is two-sided. The variance–reward correlation is reported but
#: not tested: with strong random walks it rejected too often on the simulator.
GATED_STATISTICS = ("interaction", "gated_score")
GATED_ABSOLUTE = (False, False)

#: Decay per trial of a past update's trace in the filter's innovations: the
#: filter absorbs a step in the preferred direction over some tens of trials.
INNOVATION_MEMORY = 0.95

#: Surrogates whose statistics are computed together (bounds memory).
SURROGATE_CHUNK = 25

#: Bytes of float64 work arrays one chunk of units may hold. Every statistic of
#: a unit depends on that unit's series alone, so the units are taken a chunk at
#: a time and the peak memory does not grow with the number of units.
WORK_BYTES = 128 * 2**20

#: Work arrays of (surrogates, units, trials) that the statistics hold at their
#: peak (about 14, measured with tracemalloc), with a margin.
STATISTICS_ARRAYS = 16

#: Work arrays of (units, trials) that one chunk's tuning series hold.
NEURAL_ARRAYS = 24

#: Floats per unit and window that the drift test's fits and χ² hold.
DRIFT_TEST_WINDOW_FLOATS = 40

#: Largest trial lag of the mean-squared preferred-direction change.
MSD_MAX_LAG = 20


def reward_coupling(
    drift: xr.Dataset,
    ds: xr.Dataset,
    *,
    lags: Iterable[int] = range(-5, 6),
    null: Literal[
        "pseudosession", "shuffle", "circular_shift", "linear_shift", "session"
    ] = "pseudosession",
    n_perm: int = 200,
    alpha: float = 0.05,
    expectation_rate: float = 0.1,
    rng: int | np.random.Generator | None = None,
    surrogates: dict[str, NullDraw] | None = None,
) -> xr.Dataset:
    """Test whether tuning change follows reward or the signed error.

    From the preferred-direction (PD) trajectories of :func:`tuning_drift`, the
    change after trial ``n`` is related to

    - the reward prediction error ``R_n − R̄_n`` (``R̄`` a running average of past
      rewards), at trial lags ``k`` (change at ``n + k`` against trial ``n``);
    - the signed error ``e_n`` projected on the unit's direction and on its
      perpendicular (a gradient-like rule turns the PD by the error seen through
      the unit's output direction). The test uses the score form: each trial's
      residual against the causal filter's prediction (or the session-wide fit
      for windowed drift) regressed on the decaying trace of the projected
      errors of *earlier* trials, times the trial's sensitivity to a PD turn;
    - the reward × exploration interaction ``(R_n − R̄_n)·ξ_n``, with ``ξ_n`` the
      unit's own deviation on trial ``n`` (its Pearson residual times
      ``sin(θ_n − PD_n)``, the direction a PD perturbation moves the count),
      against the change after ``n`` and, in score form, against the residuals
      of later trials;
    - the squared change against reward (variance after failure vs. success).

    Every statistic is compared with the same statistic computed against
    surrogate behaviour from :func:`errsig.stats.null_targets`; pseudosessions
    (default) keep the learning curve and the trial-to-trial autocorrelation of
    behaviour, so a slowly drifting unit and a decaying error do not look
    related (Harris 2020).

    Parameters
    ----------
    drift : xarray.Dataset
        Output of :func:`tuning_drift` on ``ds``, ``method="filter"`` (trial by
        trial, recommended) or ``"glm"`` (windows; each window-to-window change is
        related to the trials whose updates it contains).
    ds : xarray.Dataset
        The binned dataset the drift was computed from, with ``error``,
        ``reward`` and ``phase``.
    lags : iterable of int, default=range(-5, 6)
        Trial lags of the reward coupling. Negative lags (change before the
        reward) are a built-in control.
    null : {"pseudosession", "shuffle", "circular_shift", "linear_shift", "session"}
        Surrogate behaviour. ``"shuffle"`` and ``"circular_shift"`` ignore or
        distort trial order and are offered for comparison only (the latter
        warns); ``"linear_shift"`` restricts the test to the central trials.
        ``"session"`` pairs the tuning changes with the behaviour of other
        sessions, given as ``surrogates``.
    n_perm : int, default=200
        Number of surrogates (with ``null="session"``, the other sessions set
        it, and ``n_perm`` is ignored).
    alpha : float, default=0.05
        False-discovery rate across units (and across areas) of the rule calls.
    expectation_rate : float, default=0.1
        Learning rate of the running reward expectation ``R̄``.
    rng : None, int or numpy.random.Generator
        Seed of the surrogates.
    surrogates : dict of NullDraw, optional
        With ``null="session"`` only: this session's entry of
        ``errsig.stats.session_permutation(datasets, ["error", "reward"])``,
        made from the binned datasets of three or more sessions. The aligned
        trials must form one contiguous run of ``ds`` (sessions with the same
        number of trials in each phase, or differing only at the end).

    Returns
    -------
    xarray.Dataset
        Per unit: ``reward_lag_coef`` and ``p_reward_lag`` (unit, lag; the
        correlation of change with the reward prediction error), ``p_reward``
        (max-statistic over lags); ``error_lag_r2`` (unit, lag);
        ``gradient_score_r2`` and ``p_gradient`` (the score test), with the
        descriptive ``gradient_r2`` (lag-0 change on the projected error) and
        ``gradient_level_r2`` (PD level on the summed past errors);
        ``interaction_coef`` and ``gated_score_coef`` with ``p_gated`` (their
        max-statistic); the descriptive ``variance_coef`` (correlation of
        squared change with reward); ``variance_ratio`` (mean squared
        change after failure over after success); ``drift_chi2``, ``drift_df``
        and ``p_drift`` (is there any tuning change beyond estimation noise);
        ``msd`` (unit, block, msd_lag) and ``diffusion_rate`` (unit, block;
        baseline, thirds of force field, thirds of washout);
        ``rule`` (``stable``, ``gradient``, ``reward_gated``, ``random_walk``)
        and ``significant_gradient``/``significant_gated``/``significant_drift``
        after FDR control across units. Pooled per area (``area`` dimension):
        ``area_p_reward_lag`` (uncorrected per lag) and
        ``area_p_reward_lag_corrected`` (max-statistic over lags),
        ``area_p_reward``, ``area_p_gradient``, ``area_p_gated``,
        ``area_p_drift``, ``area_rule``. Attrs record the null, the corrections
        and the seed.

    Raises
    ------
    ErrsigError
        If ``drift`` is not from :func:`tuning_drift` on these trials and units,
        or an argument is invalid.
    ColumnError
        If ``error``, ``reward``, ``phase`` or ``target_angle`` is missing.

    Warns
    -----
    NullAssumptionWarning
        With ``null="circular_shift"``.

    See Also
    --------
    tuning_drift : the trajectories this function tests.
    errsig.stats.null_targets : the surrogates.

    Notes
    -----
    *Rule.* A unit is ``gradient`` when its gradient statistic is significant,
    ``reward_gated`` when the gated statistic is (the smaller p wins when both
    are), ``random_walk`` when only the drift test is, and ``stable``
    otherwise. The gradient statistic is calibrated against surrogate
    behaviour with the unit's own drift intact, that is, against the
    random-walk null, never by AIC, which prefers an error-driven trend for
    most random-walk units (see ``docs/tuning.md``). The drift test compares
    the (cos, sin) coefficients of non-overlapping windows of
    ``drift.attrs["window"]`` trials with a Wald χ² scaled by the Pearson
    dispersion, so estimation noise and overdispersion are not taken for drift
    (Stevenson et al. 2011).

    *Power.* One unit says little about reward gating: a 6° gated step needs
    about 2,000 trials for 80% power. Read the per-area tests (``area_``),
    which sum the units' null-standardised statistics over the area against the
    same sums on the surrogates (so correlations between units are kept).

    *Reward vs. success.* Where reward follows success closely, "reward-gated"
    means gated by reward or by success; surrogates redraw reward given the
    error, so they cannot separate the two.

    References
    ----------
    Harris, K. D. (2020). Nonsense correlations in neuroscience. bioRxiv
    2020.11.29.402719.

    Stevenson, I. H., et al. (2011). Statistical assessment of the stability of
    neural movement representations. J Neurophysiol 106, 764–774.

    Examples
    --------
    >>> import numpy as np
    >>> import xarray as xr
    >>> from errsig import reward_coupling, tuning_drift
    >>> rng = np.random.default_rng(0)
    >>> n = 160
    >>> angle = rng.choice(np.arange(8) * np.pi / 4, n)
    >>> counts = rng.poisson(np.exp(2 + 0.8 * np.cos(angle)), (2, n)).T[..., None]
    >>> phase = ["baseline"] * 40 + ["force_field"] * 80 + ["washout"] * 40
    >>> lateral = np.r_[np.zeros(40), 0.02 * np.exp(-np.arange(80) / 15),
    ...                 np.zeros(40)] + rng.normal(0, 0.002, n)
    >>> error = lateral[:, None] * np.c_[-np.sin(angle), np.cos(angle)]
    >>> ds = xr.Dataset(
    ...     {"counts": (("trial", "unit", "time"), counts),
    ...      "error": (("trial", "component"), error)},
    ...     coords={"target_angle": ("trial", angle), "phase": ("trial", phase),
    ...             "reward": ("trial", np.abs(lateral) < 0.004),
    ...             "area": ("unit", ["M1", "M1"]), "component": ["x", "y"],
    ...             "time": [0.0]},
    ... )
    >>> drift = tuning_drift(ds, method="filter", n_boot=0)
    >>> result = reward_coupling(drift, ds, n_perm=19, rng=0)
    >>> result["rule"].values.tolist()
    ['stable', 'stable']
    """
    ds = check_dataset(ds, need=("error", "reward", "phase"))
    lags = _check_lags(lags)
    n_perm = check_positive_int(n_perm, "n_perm")
    if not 0 < alpha < 1:
        raise ErrsigError(f"`alpha` must lie in (0, 1); got {alpha!r}.")
    if not 0 < expectation_rate <= 1:
        raise ErrsigError(
            f"`expectation_rate` must lie in (0, 1]; got {expectation_rate!r}."
        )
    _check_drift(drift, ds)
    seed = rng if isinstance(rng, int) else None
    generator = check_rng(rng)

    if null == "session" or surrogates is not None:
        surrogates = _session_draws(null, surrogates, ds)
        n_perm = len(surrogates["error"].values)
    else:
        surrogates = null_targets(
            ds, ["error", "reward"], n_perm, null=null, rng=generator
        )
    error = _error(ds)
    reward = ds["reward"].values.astype(np.float64)
    trials = None
    if isinstance(surrogates["error"], NullDraw):
        trials = surrogates["error"].neural_trials
        observed_error, observed_reward = error[trials], reward[trials]
        null_error = surrogates["error"].values
        null_reward = surrogates["reward"].values.astype(np.float64)
    else:
        observed_error, observed_reward = error, reward
        null_error = surrogates["error"]
        null_reward = surrogates["reward"].astype(np.float64)

    behaviour = [
        _Behaviour.of(observed_error[None], observed_reward[None], expectation_rate)
    ] + [
        _Behaviour.of(null_error[part], null_reward[part], expectation_rate)
        for part in _chunks(n_perm, SURROGATE_CHUNK)
    ]
    observed, null_stats, variance_ratio, diffusion = _unit_statistics(
        drift, ds, trials, behaviour, lags, observed_reward
    )

    units = _unit_tests(observed, null_stats, alpha)
    areas = np.asarray(drift["area"].values) if "area" in drift.coords else None
    drift_test = _drift_test(drift, ds)
    units.update(drift_test)
    units["significant_drift"] = _fdr(drift_test["p_drift"], alpha)
    units["rule"] = _rules(
        units["p_gradient"],
        units["p_gated"],
        units["significant_gradient"],
        units["significant_gated"],
        units["significant_drift"],
    )
    result = _package(drift, units, lags, variance_ratio)
    if areas is not None:
        result = xr.merge(
            [result, _area_tests(observed, null_stats, drift_test, areas, lags, alpha)]
        )
    result = xr.merge([result, diffusion])
    result.attrs.update(
        null=null,
        n_perm=n_perm,
        alpha=alpha,
        expectation_rate=expectation_rate,
        drift_method=drift.attrs.get("method", ""),
        correction_units="fdr (errsig.stats.correct, pooled null; BH for p_drift)",
        correction_lags="maxstat over lags",
        seed="None" if seed is None else seed,
        trial_order=(
            "ignored: shuffle null, for comparison only"
            if null == "shuffle"
            else "kept"
        ),
        reward_success_note=(
            "surrogates redraw reward given the error, so 'reward_gated' means "
            "gated by reward or by success"
        ),
    )
    return result


def _session_draws(null: str, surrogates: object, ds: xr.Dataset) -> dict:
    """Check the session-permutation draws of error and reward for ``ds``."""
    if null != "session" or not isinstance(surrogates, dict):
        raise ErrsigError(
            "`null`='session' pairs the tuning changes with the behaviour of other "
            "sessions and takes them as `surrogates`: this session's entry of "
            "errsig.stats.session_permutation(datasets, ['error', 'reward']) from "
            "three or more sessions; `surrogates` goes with null='session' only. "
            "For one session use null='pseudosession'."
        )
    if not all(isinstance(surrogates.get(name), NullDraw) for name in NEEDED_DRAWS):
        raise ErrsigError(
            f"`surrogates` must hold NullDraws keyed {list(NEEDED_DRAWS)}; got keys "
            f"{sorted(surrogates)}. Make them with session_permutation(datasets, "
            "['error', 'reward'])."
        )
    trials = np.asarray(surrogates["error"].neural_trials)
    contiguous = trials.size > 1 and np.all(np.diff(trials) == 1)
    if not contiguous or trials[-1] >= ds.sizes["trial"]:
        raise ErrsigError(
            "`surrogates`: the trials aligned across sessions are not one "
            "contiguous run of `ds` (the sessions differ in the length of a phase "
            "before the last). Trim every session to common phase lengths with "
            "ds.isel(trial=...) before tuning_drift and session_permutation."
        )
    observed = np.asarray(surrogates["reward"].observed, dtype=bool)
    if not np.array_equal(observed, ds["reward"].values[trials].astype(bool)):
        raise ErrsigError(
            "`surrogates` were drawn for another session: their observed reward "
            "differs from this dataset's. Pass this session's entry of "
            "session_permutation."
        )
    return surrogates


@dataclass(frozen=True)
class _Neural:
    """Per-unit tuning changes and the trial-level series they relate to."""

    change: np.ndarray  # (U, C) PD change, NaN where unknown
    kernel: np.ndarray | None  # (C, T) trials whose updates each change holds
    level: np.ndarray  # (U, E) unwrapped PD estimates, NaN where unknown
    level_kernel: np.ndarray | None  # (E, T) trials each estimate averages
    preferred: np.ndarray  # (U, T) PD on each trial
    exploration: np.ndarray  # (U, T) ξ̂
    residual: np.ndarray  # (U, T) Pearson residual against a reference fit
    sensitivity: np.ndarray  # (U, T) d log-rate / d PD × sqrt(rate), same fit
    reference_preferred: np.ndarray  # (U, T) PD of the reference fit
    reference_exploration: np.ndarray  # (U, T) ξ̂ against the reference fit
    memory: float  # decay per trial of a past update's trace in the residuals
    trial_positions: np.ndarray  # (T,) positions in ds

    @cached_property
    def sparse_kernel(self) -> sparse.csr_array:
        """``kernel`` stored sparse (it is mostly zero), made once."""
        return sparse.csr_array(self.kernel)

    @cached_property
    def sparse_level_kernel(self) -> sparse.csr_array:
        """``level_kernel`` stored sparse, made once."""
        return sparse.csr_array(self.level_kernel)

    def aggregate(self, series: np.ndarray) -> np.ndarray:
        """Trial series (..., T) to change-aligned series (..., C)."""
        if self.kernel is None:
            return series[..., :-1]
        return _apply_kernel(series, self.sparse_kernel)

    def average(self, series: np.ndarray) -> np.ndarray:
        """Trial series (..., T) to estimate-aligned series (..., E)."""
        if self.level_kernel is None:
            return series
        return _apply_kernel(series, self.sparse_level_kernel)

    def restricted(self, trials: np.ndarray) -> _Neural:
        """Restrict the series to a contiguous run of trial positions."""
        first, last = int(trials[0]), int(trials[-1]) + 1
        if self.kernel is None:
            change = self.change[:, first : last - 1]
            kernel = level_kernel = None
            level = self.level[:, first:last]
        else:
            held = np.all(self.level_kernel[:, :first] == 0, axis=1) & np.all(
                self.level_kernel[:, last:] == 0, axis=1
            )
            level = self.level[:, held]
            level_kernel = self.level_kernel[held][:, first:last]
            inside = np.all((self.kernel[:, :first] == 0), axis=1) & np.all(
                self.kernel[:, last:] == 0, axis=1
            )
            change = self.change[:, inside]
            kernel = self.kernel[inside][:, first:last]
        return _Neural(
            change=change,
            kernel=kernel,
            level=level,
            level_kernel=level_kernel,
            preferred=self.preferred[:, first:last],
            exploration=self.exploration[:, first:last],
            residual=self.residual[:, first:last],
            sensitivity=self.sensitivity[:, first:last],
            reference_preferred=self.reference_preferred[:, first:last],
            reference_exploration=self.reference_exploration[:, first:last],
            memory=self.memory,
            trial_positions=self.trial_positions[first:last],
        )


@dataclass(frozen=True)
class _Behaviour:
    """A batch of behaviour series, observed or surrogate: (B, T[, 2])."""

    error: np.ndarray  # (B, T, 2) signed error
    reward: np.ndarray  # (B, T) reward, 0 or 1
    prediction_error: np.ndarray  # (B, T) R_n − R̄_n

    @classmethod
    def of(cls, error: np.ndarray, reward: np.ndarray, rate: float) -> _Behaviour:
        """Make a batch, with its reward prediction errors at learning ``rate``."""
        return cls(error, reward, reward - _running_expectation(reward, rate))


def _unit_statistics(
    drift: xr.Dataset,
    ds: xr.Dataset,
    trials: np.ndarray | None,
    behaviour: list[_Behaviour],
    lags: list[int],
    observed_reward: np.ndarray,
) -> tuple[dict, dict, np.ndarray, xr.Dataset]:
    """Compute every unit's statistics, a chunk of units at a time.

    A unit's statistics depend on its own series only, and the surrogates are
    drawn before, for every unit at once; so the chunks, sized to hold
    :data:`WORK_BYTES` of work arrays, leave the numbers as one chunk makes them.

    Parameters
    ----------
    drift, ds : xarray.Dataset
        As given to :func:`reward_coupling`.
    trials : numpy.ndarray or None
        The contiguous trial positions the surrogates cover, or None for all.
    behaviour : list of _Behaviour
        The observed behaviour (one series), then the surrogates in batches.
    lags : list of int
        Trial lags of the reward coupling.
    observed_reward : numpy.ndarray
        Reward on the tested trials, for the variance ratio.

    Returns
    -------
    observed : dict of str to numpy.ndarray
        Statistics of the observed behaviour, (U[, L]).
    null : dict of str to numpy.ndarray
        The same against every surrogate, (n_perm, U[, L]).
    variance_ratio : numpy.ndarray
        (U,).
    diffusion : xarray.Dataset
        ``msd`` and ``diffusion_rate``.
    """
    counts, design = _fitted(drift)
    n_units, n_trials = counts.shape
    reference_coef = None
    if "predicted_coef" not in drift:
        reference_coef = fit_poisson_glm(design[None], counts[None]).coef[0]
    positions = np.arange(n_trials)
    if trials is not None:
        positions = positions[int(trials[0]) : int(trials[-1]) + 1]
    blocks, msd_lags, msd_pairs = _msd_pairs(drift, ds, positions)
    glm_preferred = drift["preferred_direction"].transpose("unit", ...).values

    batch_sizes = [batch.reward.shape[0] for batch in behaviour]
    unit_bytes = (STATISTICS_ARRAYS * max(batch_sizes) + NEURAL_ARRAYS) * n_trials * 8
    ends = np.cumsum(batch_sizes[1:])
    null_batches = [
        slice(end - size, end) for end, size in zip(ends, batch_sizes[1:], strict=True)
    ]
    observed, null = {}, {}
    variance_ratio = np.empty(n_units)
    msd = np.empty((n_units, len(blocks), len(msd_lags)))
    for units in unit_chunks(n_units, unit_bytes, WORK_BYTES):
        neural = _neural_series(drift, units, reference_coef)
        if trials is not None:
            neural = neural.restricted(trials)
        parts = [_statistics(neural, batch, lags) for batch in behaviour]
        for name, values in parts[0].items():
            if name not in observed:
                observed[name] = np.empty((n_units, *values.shape[2:]))
                null[name] = np.empty((ends[-1], n_units, *values.shape[2:]))
            observed[name][units] = values[0]
            for batch, part in zip(null_batches, parts[1:], strict=True):
                null[name][batch, units] = part[name]
        variance_ratio[units] = _variance_ratio(neural, observed_reward)
        preferred = (
            neural.preferred
            if drift.attrs["method"] == "filter"
            else glm_preferred[units]
        )
        msd[units] = _mean_squared_change(preferred, msd.shape[1:], msd_pairs)
    return observed, null, variance_ratio, _diffusion(msd, blocks, msd_lags, drift)


def _neural_series(
    drift: xr.Dataset, units: slice, reference_coef: np.ndarray | None
) -> _Neural:
    """Compute the tuning series of a chunk of units.

    ``reference_coef`` (U, p) is the session-wide fit of every unit, the reference
    of the residuals when the drift has no filter predictions.
    """
    counts, design = _fitted(drift)
    counts = counts[units]
    n_trials = design.shape[0]
    coef = drift["coef"].transpose("unit", ...).values[units]
    preferred = drift["preferred_direction"].transpose("unit", ...).values[units]

    level = _unwrap(preferred)
    if drift.attrs["method"] == "filter":
        change = wrap_angle(np.diff(preferred, axis=1))
        kernel = level_kernel = None
        trial_coef = coef
        trial_preferred = preferred
    else:
        starts = drift["window_start"].values
        stops = drift["window_stop"].values
        change = wrap_angle(np.diff(preferred, axis=1))
        kernel = _window_kernel(starts, stops, n_trials)
        trial = np.arange(n_trials)[None, :]
        level_kernel = (trial >= starts[:, None]) & (trial < stops[:, None])
        level_kernel = level_kernel / level_kernel.sum(axis=1, keepdims=True)
        centres = (starts + stops - 1) / 2
        nearest = np.abs(np.arange(n_trials)[:, None] - centres[None]).argmin(axis=1)
        trial_coef = coef[:, nearest]
        trial_preferred = preferred[:, nearest]

    rate = np.exp(np.einsum("utp,tp->ut", trial_coef, design))
    pearson = (counts - rate) / np.sqrt(rate)
    angle = np.arctan2(design[:, 2], design[:, 1])
    exploration = pearson * np.sin(angle[None] - trial_preferred)

    if "predicted_coef" in drift:
        # Innovations of the causal filter: what trial n shows beyond what the
        # trials before it predicted.
        reference = drift["predicted_coef"].transpose("unit", "trial", "term").values
        reference = reference[units]
    else:
        reference = np.broadcast_to(
            reference_coef[units][:, None], (*coef.shape[:1], n_trials, design.shape[1])
        )
    reference_rate = np.exp(np.einsum("utp,tp->ut", reference, design))
    reference_preferred = np.arctan2(reference[..., 2], reference[..., 1])
    depth = np.hypot(reference[..., 1], reference[..., 2])
    turn = np.sin(angle[None] - reference_preferred)
    innovation = (counts - reference_rate) / np.sqrt(reference_rate)
    return _Neural(
        change=change,
        kernel=kernel,
        level=level,
        level_kernel=level_kernel,
        preferred=trial_preferred,
        exploration=exploration,
        residual=innovation,
        sensitivity=depth * turn * np.sqrt(reference_rate),
        reference_preferred=reference_preferred,
        reference_exploration=innovation * turn,
        memory=INNOVATION_MEMORY if "predicted_coef" in drift else 1.0,
        trial_positions=np.arange(n_trials),
    )


def _apply_kernel(series: np.ndarray, kernel: sparse.csr_array) -> np.ndarray:
    """``series @ kernel.T`` with the (mostly zero) kernel stored sparse."""
    flat = series.reshape(-1, series.shape[-1])
    product = kernel @ flat.T
    return product.T.reshape(*series.shape[:-1], kernel.shape[0])


def _unwrap(preferred: np.ndarray) -> np.ndarray:
    """Unwrap each unit's PD series along trials, leaving NaN where unknown."""
    finite = np.isfinite(preferred)
    unwrapped = np.unwrap(np.where(finite, preferred, 0.0), axis=1)
    return np.where(finite, unwrapped, np.nan)


def _window_kernel(starts: np.ndarray, stops: np.ndarray, n_trials: int) -> np.ndarray:
    """Weight of trial n's update in the change between consecutive windows.

    A window's estimate is (to first order) the mean PD over its trials, and
    trial n's update reaches every trial after n; so window w holds a fraction
    ``#{m in w : m > n} / |w|`` of it, and the change from w to w + 1 the
    difference of the two fractions.
    """
    trial = np.arange(n_trials)[None, :]
    size = (stops - starts)[:, None]
    after = np.clip(stops[:, None] - np.maximum(starts[:, None], trial + 1), 0, None)
    fraction = after / size
    return np.diff(fraction, axis=0)


def _statistics(
    neural: _Neural, behaviour: _Behaviour, lags: list[int]
) -> dict[str, np.ndarray]:
    """All statistics for a batch of behaviour series: (B, U[, L])."""
    error, reward = behaviour.error, behaviour.reward
    prediction_error = behaviour.prediction_error
    change = neural.change
    valid = np.isfinite(change)

    cos, sin = np.cos(neural.preferred), np.sin(neural.preferred)
    along = error[:, None, :, 0] * cos + error[:, None, :, 1] * sin
    across = -error[:, None, :, 0] * sin + error[:, None, :, 1] * cos

    reward_lag, error_lag = [], []
    for lag in lags:
        shifted_error = [_shift(component, lag) for component in (along, across)]
        error_lag.append(
            _r_squared(change, valid, *(neural.aggregate(s) for s in shifted_error))
        )
        shifted = neural.aggregate(_shift(prediction_error, lag))[:, None]
        reward_lag.append(_correlation(change, valid, shifted))
    # Integrated form: the PD level against the error summed over past trials.
    level_valid = np.isfinite(neural.level)
    cumulative = [
        neural.average(np.cumsum(component, axis=-1) - component)
        for component in (along, across)
    ]
    # Score form: residuals against the reference fit (the causal filter's
    # prediction, or the session-wide fit) against the PD shift that recent
    # updates predict, seen through each trial's sensitivity to the PD.
    reference = neural.reference_preferred[None]
    reference_along = error[:, None, :, 0] * np.cos(reference) + error[
        :, None, :, 1
    ] * np.sin(reference)
    reference_across = -error[:, None, :, 0] * np.sin(reference) + error[
        :, None, :, 1
    ] * np.cos(reference)
    score_predictors = [
        neural.sensitivity * _past_trace(component, neural.memory)
        for component in (reference_along, reference_across)
    ]
    kept = _past_trace(
        prediction_error[:, None] * neural.reference_exploration, neural.memory
    )
    interaction = neural.aggregate(prediction_error[:, None] * neural.exploration)
    rewarded = neural.aggregate(reward)[:, None]
    return {
        "reward_lag": np.stack(reward_lag, axis=-1),
        "error_lag": np.stack(error_lag, axis=-1),
        "gradient": _r_squared(
            change, valid, neural.aggregate(along), neural.aggregate(across)
        ),
        "gradient_level": _r_squared(neural.level, level_valid, *cumulative),
        "gradient_score": _r_squared(
            neural.residual, np.isfinite(neural.residual), *score_predictors
        ),
        "interaction": _correlation(change, valid, interaction),
        "gated_score": _correlation(
            neural.residual,
            np.isfinite(neural.residual),
            neural.sensitivity * kept,
        ),
        "variance": _correlation(change**2, valid, rewarded),
    }


def _past_trace(series: np.ndarray, memory: float) -> np.ndarray:
    """Σ_{m<n} memory^(n-1-m) series_m along the last axis (0 on trial 0)."""
    if memory == 1.0:
        return np.cumsum(series, axis=-1) - series
    return signal.lfilter([0.0, 1.0], [1.0, -memory], series, axis=-1)


def _running_expectation(reward: np.ndarray, rate: float) -> np.ndarray:
    """R̄_n: exponentially weighted mean of rewards before trial n."""
    expectation = np.empty_like(reward)
    running = reward.mean(axis=-1)
    for trial in range(reward.shape[-1]):
        expectation[..., trial] = running
        running = running + rate * (reward[..., trial] - running)
    return expectation


def _shift(series: np.ndarray, lag: int) -> np.ndarray:
    """Series delayed by ``lag`` trials along the last axis, zero-padded."""
    if lag == 0:
        return series
    shifted = np.zeros_like(series)
    if lag > 0:
        shifted[..., lag:] = series[..., :-lag]
    else:
        shifted[..., :lag] = series[..., -lag:]
    return shifted


def _centred(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    values = np.where(valid, values, 0.0)
    count = np.maximum(valid.sum(axis=-1, keepdims=True), 1)
    return np.where(valid, values - values.sum(axis=-1, keepdims=True) / count, 0.0)


def _correlation(
    change: np.ndarray, valid: np.ndarray, other: np.ndarray
) -> np.ndarray:
    """Pearson correlation over valid entries: change (U, C), other (B, U|1, C)."""
    other = np.broadcast_to(other, (other.shape[0], *change.shape))
    x = _centred(change, valid)[None]
    y = _centred(other, valid[None])
    with np.errstate(invalid="ignore", divide="ignore"):
        return (x * y).sum(-1) / np.sqrt((x**2).sum(-1) * (y**2).sum(-1))


def _r_squared(
    change: np.ndarray, valid: np.ndarray, first: np.ndarray, second: np.ndarray
) -> np.ndarray:
    """R² of change on two predictors (with intercept), per batch and unit."""
    y = _centred(change, valid)[None]
    a = _centred(first, valid[None])
    b = _centred(second, valid[None])
    aa, bb, ab = (a * a).sum(-1), (b * b).sum(-1), (a * b).sum(-1)
    ay, by, yy = (a * y).sum(-1), (b * y).sum(-1), (y * y).sum(-1)
    determinant = aa * bb - ab**2
    with np.errstate(invalid="ignore", divide="ignore"):
        explained = (bb * ay**2 - 2 * ab * ay * by + aa * by**2) / determinant
        return explained / yy


def _chunks(total: int, size: int):
    for first in range(0, total, size):
        yield slice(first, min(first + size, total))


def _standardise(
    observed: np.ndarray, null: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """z-scores by each test's null mean and spread (observed pooled in)."""
    pooled = np.concatenate([observed[None], null])
    with warnings.catch_warnings():
        # A unit whose estimate never changes has no statistic (all NaN).
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(pooled, axis=0)
        spread = np.nanstd(pooled, axis=0)
    spread = np.where(spread > 0, spread, 1.0)
    return (observed - mean) / spread, (null - mean) / spread


def _combined(
    observed: dict,
    null: dict,
    names: tuple[str, ...],
    *,
    absolute: tuple[bool, ...],
    pool: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Max over statistics of their null-standardised values (|z| if absolute).

    With ``pool`` (areas × units), the z-scores are first summed over the units
    of each area, on the data and on every surrogate alike.
    """
    combined, combined_null = None, None
    for name, is_absolute in zip(names, absolute, strict=True):
        z, z_null = _standardise(observed[name], null[name])
        if pool is not None:
            z = pool @ np.nan_to_num(z)
            z_null = np.nan_to_num(z_null) @ pool.T
        if is_absolute:
            z, z_null = np.abs(z), np.abs(z_null)
        combined = z if combined is None else np.fmax(combined, z)
        combined_null = (
            z_null if combined_null is None else np.fmax(combined_null, z_null)
        )
    return combined, combined_null


def _gated_statistic(observed: dict, null: dict) -> tuple[np.ndarray, np.ndarray]:
    """Max of the null-standardised gating statistics."""
    return _combined(observed, null, GATED_STATISTICS, absolute=GATED_ABSOLUTE)


def _unit_tests(observed: dict, null: dict, alpha: float) -> dict[str, np.ndarray]:
    n_units = observed["reward_lag"].shape[0]
    units = {
        "reward_lag_coef": observed["reward_lag"],
        "p_reward_lag": permutation_pvalues(
            np.abs(observed["reward_lag"]), np.abs(null["reward_lag"])
        ),
        "error_lag_r2": observed["error_lag"],
        "gradient_r2": observed["gradient"],
        "interaction_coef": observed["interaction"],
        "variance_coef": observed["variance"],
        "gated_score_coef": observed["gated_score"],
    }
    units["p_reward"] = np.full(n_units, np.nan)
    for unit in np.flatnonzero(np.all(np.isfinite(observed["reward_lag"]), axis=1)):
        units["p_reward"][unit] = correct(
            np.abs(observed["reward_lag"][unit]),
            np.abs(null["reward_lag"][:, unit]),
            method="maxstat",
            standardize=True,
        ).p.min()
    units["gradient_level_r2"] = observed["gradient_level"]
    units["gradient_score_r2"] = observed["gradient_score"]
    gradient, gradient_null = _combined(
        observed,
        null,
        GRADIENT_STATISTICS,
        absolute=(False,) * len(GRADIENT_STATISTICS),
    )
    units["p_gradient"] = permutation_pvalues(gradient, gradient_null)
    gated, gated_null = _gated_statistic(observed, null)
    units["p_gated"] = permutation_pvalues(gated, gated_null)
    units["significant_gradient"] = _fdr_permutation(gradient, gradient_null, alpha)
    units["significant_gated"] = _fdr_permutation(gated, gated_null, alpha)
    return units


def _fdr_permutation(observed: np.ndarray, null: np.ndarray, alpha: float):
    finite = np.isfinite(observed)
    significant = np.zeros(observed.shape, dtype=bool)
    if finite.any():
        significant[finite] = correct(
            observed[finite], null[:, finite], method="fdr", alpha=alpha
        ).significant
    return significant


def _fdr(p_values: np.ndarray, alpha: float) -> np.ndarray:
    finite = np.isfinite(p_values)
    significant = np.zeros(p_values.shape, dtype=bool)
    if finite.any():
        significant[finite] = multipletests(
            p_values[finite], alpha=alpha, method="fdr_bh"
        )[0]
    return significant


def _rules(
    p_gradient: np.ndarray,
    p_gated: np.ndarray,
    gradient: np.ndarray,
    gated: np.ndarray,
    drifting: np.ndarray,
) -> np.ndarray:
    gradient_wins = gradient & (~gated | (p_gradient <= p_gated))
    return np.select(
        [gradient_wins, gated, drifting],
        ["gradient", "reward_gated", "random_walk"],
        default="stable",
    ).astype(object)


def _drift_test(drift: xr.Dataset, ds: xr.Dataset) -> dict[str, np.ndarray]:
    """Wald χ² of the (cos, sin) coefficients across non-overlapping windows.

    Covariates (speed, force) keep the coefficients of a fit to the whole
    session in every window, as in the filter, where they do not drift: fitted
    again in each window they would be collinear there with the direction
    terms (in a curl field the force follows the reach direction) and soak up
    the drift of the direction tuning. Held fixed, they explain the change of a
    force unit's apparent direction tuning as the load changes, and only that.
    """
    counts, design = _fitted(drift)
    n_units, n_trials = counts.shape
    window = int(drift.attrs["window"])
    n_windows = design.shape[0] // window
    unit_bytes = 8 * (3 * n_trials + DRIFT_TEST_WINDOW_FLOATS * n_windows)
    chi2 = np.full(n_units, np.nan)
    df = np.zeros(n_units, dtype=np.int64)
    for units in unit_chunks(n_units, unit_bytes, WORK_BYTES):
        offset = _covariate_offset(counts[units], design)
        chi2[units], df[units] = _window_chi2(
            counts[units], design[:, :3], window, offset
        )
    p_drift = np.where(df > 0, scipy_stats.chi2.sf(chi2, np.maximum(df, 1)), np.nan)
    return {"drift_chi2": chi2, "drift_df": df, "p_drift": p_drift}


def _covariate_offset(counts: np.ndarray, design: np.ndarray) -> np.ndarray | None:
    """Covariate terms of each unit's session-wide fit, (U, T), or None.

    A unit whose session-wide fit fails (a silent unit) gets no offset; its
    window fits fail as well.
    """
    if design.shape[1] <= 3:
        return None
    session = fit_poisson_glm(design[None], counts[None]).coef[0]  # (U, p)
    covariate_coef = np.nan_to_num(session[:, 3:])
    return covariate_coef @ design[:, 3:].T


def _window_chi2(
    counts: np.ndarray,
    design: np.ndarray,
    window: int,
    offset: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """χ² and degrees of freedom of the drift test for some units' counts (U, T).

    ``design`` is ``[1, cos θ, sin θ]`` per trial and ``offset`` (U, T), if
    given, a fixed part of each unit's log rate.
    """
    n_windows = design.shape[0] // window
    trials = np.arange(n_windows * window).reshape(n_windows, window)
    fit = fit_poisson_glm(
        design[trials],
        counts[:, trials].transpose(1, 0, 2),
        offset=None if offset is None else offset[:, trials].transpose(1, 0, 2),
    )

    coef = fit.coef[..., 1:3].transpose(1, 0, 2)  # (U, W, 2)
    dispersion = np.nanmean(np.maximum(fit.dispersion, 1.0), axis=0)
    cov = fit.cov[..., 1:3, 1:3].transpose(1, 0, 2, 3) * dispersion[:, None, None, None]
    usable = fit.converged.T & np.all(np.isfinite(cov), axis=(2, 3))
    precision = np.zeros_like(cov)
    precision[usable] = np.linalg.inv(cov[usable])
    coef = np.where(usable[..., None], coef, 0.0)
    pooled_precision = precision.sum(axis=1)
    n_usable = usable.sum(axis=1)
    chi2 = np.full(coef.shape[0], np.nan)
    enough = n_usable >= 2
    if enough.any():
        weighted = np.einsum("uwij,uwj->ui", precision, coef)
        mean = np.linalg.solve(pooled_precision[enough], weighted[enough][..., None])
        deviation = coef[enough] - mean[:, None, :, 0]
        chi2[enough] = np.einsum(
            "uwi,uwij,uwj->u", deviation, precision[enough], deviation
        )
    return chi2, np.where(enough, 2 * (n_usable - 1), 0)


def _area_tests(
    observed: dict,
    null: dict,
    drift_test: dict,
    areas: np.ndarray,
    lags: list[int],
    alpha: float,
) -> xr.Dataset:
    names = list(dict.fromkeys(areas.tolist()))
    member = np.array([[area == name for area in areas] for name in names], float)

    def pooled(values: np.ndarray, null_values: np.ndarray):
        z, z_null = _standardise(values, null_values)
        z, z_null = np.nan_to_num(z), np.nan_to_num(z_null)
        return (
            np.einsum("au,u...->a...", member, z),
            np.einsum("au,pu...->pa...", member, z_null),
        )

    reward_lag, reward_lag_null = pooled(observed["reward_lag"], null["reward_lag"])
    gradient, gradient_null = _combined(
        observed,
        null,
        GRADIENT_STATISTICS,
        absolute=(False,) * len(GRADIENT_STATISTICS),
        pool=member,
    )
    gated, gated_null = _combined(
        observed, null, GATED_STATISTICS, absolute=GATED_ABSOLUTE, pool=member
    )

    chi2 = member @ np.nan_to_num(drift_test["drift_chi2"])
    df = member @ drift_test["drift_df"]
    p_drift = np.where(df > 0, scipy_stats.chi2.sf(chi2, np.maximum(df, 1)), np.nan)
    p_gradient = permutation_pvalues(gradient, gradient_null)
    p_gated = permutation_pvalues(gated, gated_null)
    rule = _rules(
        p_gradient,
        p_gated,
        _fdr(p_gradient, alpha),
        _fdr(p_gated, alpha),
        _fdr(p_drift, alpha),
    )
    # Per lag, corrected over the lags of the area by the max-statistic.
    reward_lag_corrected = np.stack(
        [
            correct(
                np.abs(reward_lag[index]),
                np.abs(reward_lag_null[:, index]),
                method="maxstat",
            ).p
            for index in range(len(names))
        ]
    )
    return xr.Dataset(
        {
            "area_p_reward_lag": (
                ("area", "lag"),
                permutation_pvalues(np.abs(reward_lag), np.abs(reward_lag_null)),
            ),
            "area_p_reward_lag_corrected": (("area", "lag"), reward_lag_corrected),
            "area_p_reward": ("area", reward_lag_corrected.min(axis=1)),
            "area_p_gradient": ("area", p_gradient),
            "area_p_gated": ("area", p_gated),
            "area_p_drift": ("area", p_drift),
            "area_rule": ("area", rule),
            "area_n_units": ("area", member.sum(axis=1).astype(int)),
        },
        coords={"area": names, "lag": lags},
    )


def _msd_pairs(
    drift: xr.Dataset, ds: xr.Dataset, positions: np.ndarray
) -> tuple[list[str], np.ndarray, list[tuple[int, int, np.ndarray, int]]]:
    """Blocks, lags and the pairs of estimates of the mean-squared PD change.

    The blocks are those of the block comparisons of ``tuning_drift``:
    baseline, thirds of force field, thirds of washout.

    Returns
    -------
    names : list of str
        Blocks holding estimates of the trial ``positions`` tested.
    lags : numpy.ndarray
        Trial lags of the mean-squared change.
    pairs : list of tuple
        ``(block index, lag index, first estimates, step)``: the estimates of
        the block whose partner ``step`` estimates later lies in the block too.
    """
    all_names, members = block_labels(np.asarray(ds["phase"].values))
    block_of_trial = np.full(ds.sizes["trial"], -1)
    for index, trials in enumerate(members):
        block_of_trial[trials] = index
    if drift.attrs["method"] == "filter":
        estimate_block = block_of_trial[positions]
        spacing = 1
    else:
        centres = np.round(drift["window_centre"].values).astype(int)
        estimate_block = block_of_trial[centres]
        spacing = int(drift.attrs["step"])
    present = [index for index in range(len(all_names)) if index in estimate_block]
    n_lags = MSD_MAX_LAG if spacing == 1 else max(1, MSD_MAX_LAG // spacing)
    pairs = []
    for block, index_in_session in enumerate(present):
        inside = np.flatnonzero(estimate_block == index_in_session)
        for index in range(n_lags):
            step = index + 1
            first = inside[:-step][np.isin(inside[:-step] + step, inside)]
            if first.size:
                pairs.append((block, index, first, step))
    names = [all_names[index] for index in present]
    return names, spacing * np.arange(1, n_lags + 1), pairs


def _mean_squared_change(
    preferred: np.ndarray, shape: tuple[int, int], pairs: list[tuple]
) -> np.ndarray:
    """Mean-squared PD change (units, blocks, lags) over the pairs of estimates."""
    msd = np.full((preferred.shape[0], *shape), np.nan)
    for block, index, first, step in pairs:
        difference = wrap_angle(preferred[:, first + step] - preferred[:, first])
        msd[:, block, index] = np.nanmean(difference**2, axis=1)
    return msd


def _diffusion(
    msd: np.ndarray, names: list[str], lags: np.ndarray, drift: xr.Dataset
) -> xr.Dataset:
    """Mean-squared PD change against lag within each block, and its slope."""
    design = np.c_[np.ones(len(lags)), lags]
    slope = np.full(msd.shape[:2], np.nan)
    finite = np.all(np.isfinite(msd), axis=-1)
    if finite.any():
        solution = np.linalg.lstsq(design, msd[finite].T, rcond=None)[0]
        slope[finite] = solution[1]
    return xr.Dataset(
        {
            "msd": (("unit", "block", "msd_lag"), msd),
            "diffusion_rate": (("unit", "block"), slope),
        },
        coords={"block": names, "msd_lag": lags, "unit": drift["unit"].values},
    )


def _package(
    drift: xr.Dataset, units: dict, lags: list[int], variance_ratio: np.ndarray
) -> xr.Dataset:
    data = {
        name: (("unit", "lag") if np.ndim(values) == 2 else ("unit",), values)
        for name, values in units.items()
    }
    data["variance_ratio"] = ("unit", variance_ratio)
    coords = {"unit": drift["unit"].values, "lag": lags}
    if "area" in drift.coords:
        coords["area_of_unit"] = ("unit", drift["area"].values)
    result = xr.Dataset(data, coords=coords)
    result["rule"].attrs.update(categories=list(RULES))
    result["lag"].attrs.update(
        long_name="trials from the behaviour to the tuning change", units="trials"
    )
    return result


def _variance_ratio(neural: _Neural, reward: np.ndarray) -> np.ndarray:
    """Mean squared change after failure over after success (trial-resolved)."""
    n_units = neural.change.shape[0]
    if neural.kernel is not None:
        return np.full(n_units, np.nan)
    squared = neural.change**2
    rewarded = reward[:-1].astype(bool)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.nanmean(squared[:, ~rewarded], axis=1) / np.nanmean(
            squared[:, rewarded], axis=1
        )


def _fitted(drift: xr.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Return the summed counts (unit, trial) and design (trial, term) fitted."""
    counts = drift["epoch_counts"].transpose("unit", "trial").values
    design = drift["design"].transpose("trial", "term").values
    return np.asarray(counts, dtype=np.float64), np.asarray(design, dtype=np.float64)


def _error(ds: xr.Dataset) -> np.ndarray:
    error = ds["error"]
    if "component" in error.coords:
        error = error.sel(component=["x", "y"])
    return error.transpose("trial", "component").values.astype(np.float64)


def _check_lags(lags: Iterable[int]) -> list[int]:
    try:
        values = [int(lag) for lag in lags]
    except (TypeError, ValueError):
        raise ErrsigError(f"`lags` must be integers; got {lags!r}.") from None
    if not values or 0 not in values:
        raise ErrsigError(
            f"`lags` must include 0 (the change right after the trial); got {values}."
        )
    return values


def _check_drift(drift: object, ds: xr.Dataset) -> None:
    if not isinstance(drift, xr.Dataset) or drift.attrs.get("method") not in (
        "glm",
        "filter",
    ):
        raise ErrsigError(
            "`drift` must be the dataset errsig.tuning_drift returns (attrs "
            "'method' 'glm' or 'filter'); compute it with tuning_drift(ds, ...)."
        )
    if drift.sizes["unit"] != ds.sizes["unit"]:
        raise ErrsigError(
            f"`drift` has {drift.sizes['unit']} units but `ds` has "
            f"{ds.sizes['unit']}; compute the drift from this dataset."
        )
    if "epoch_counts" not in drift or "design" not in drift:
        raise ErrsigError(
            "`drift` lacks `epoch_counts` and `design`; recompute it with this "
            "version of errsig.tuning_drift."
        )
    if drift.sizes["trial"] != ds.sizes["trial"]:
        raise ErrsigError(
            f"`drift` covers {drift.sizes['trial']} trials but `ds` has "
            f"{ds.sizes['trial']}; pass the dataset of the same session and trials "
            "(it may be binned around another event)."
        )
    if "trial" in ds.coords and not np.array_equal(
        drift["trial"].values, ds["trial"].values
    ):
        raise ErrsigError(
            "`drift` and `ds` hold different trials (their `trial` labels differ); "
            "bin both from the same session and drop the same trials."
        )
