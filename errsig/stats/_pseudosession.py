r"""Pseudosessions: new behaviour drawn from the adaptation model of a session.

A pseudosession is a session the subject could have produced: the same
perturbation schedule, the same learning dynamics (fitted to the observed
errors), new noise. Statistics computed between the recorded neural activity
and many pseudosessions form a null distribution that keeps the trial-order
structure of learning, unlike a trial shuffle.
"""

from __future__ import annotations

import logging
import warnings
from typing import Literal

import numpy as np
import xarray as xr
from scipy import special

from errsig import behavior
from errsig._exceptions import (
    ColumnError,
    ConvergenceWarning,
    ErrsigError,
    InsufficientDataError,
)
from errsig._validation import check_positive_int, check_rng
from errsig.stats._nulls import PHASES, observed_target

__all__ = ["draw_pseudosessions"]

logger = logging.getLogger(__name__)

#: Fewest trials with a finite error that a pseudosession model is fitted to.
MIN_TRIALS = 30

#: Rounds of (fit the adaptation model, then the perturbation size given it).
N_SCALE_ROUNDS = 1

#: Inverse regularisation of the reward model; large, since reward is often an
#: almost deterministic function of |error| and must stay one in the draws.
REWARD_MODEL_C = 100.0


def draw_pseudosessions(
    ds: xr.Dataset,
    n_sessions: int,
    *,
    model: Literal["two_rate", "single_rate"] = "two_rate",
    n_starts: int = 2,
    rng: int | np.random.Generator | None = None,
) -> xr.Dataset:
    r"""Draw error and reward sequences from the adaptation model of a session.

    Parameters
    ----------
    ds : xarray.Dataset
        Trial-aligned dataset (:func:`errsig.bin_trials`) with the data
        variable ``error`` (trial, component) and the trial coordinates
        ``phase`` and ``target_angle``; ``reward`` and ``trial_index`` are used
        when present.
    n_sessions : int
        Number of pseudosessions.
    model : {"two_rate", "single_rate"}, default="two_rate"
        State-space model of adaptation (:func:`errsig.behavior.fit`).
    n_starts : int, default=2
        Local optimisations per model fit (:func:`errsig.behavior.fit`). On
        simulated force-field sessions of 150 trials, 1, 2, 4 and 8 starts
        reached the same maximum (within 0.6 log-likelihood units) in 20 of
        20 fits; raise it if the fit warns that it did not converge.
    rng : None, int or numpy.random.Generator, optional
        Source of randomness (model fit, errors and rewards draw from
        independent streams spawned from it).

    Returns
    -------
    xarray.Dataset
        ``error`` (pseudosession, trial, component) in metres and, when ``ds``
        has ``reward``, ``reward`` (pseudosession, trial) as bool; the trial
        coordinates of ``ds`` (except ``reward``); attrs record the method and
        every fitted number.

    Raises
    ------
    ColumnError
        If ``error``, ``phase`` or ``target_angle`` is missing.
    ErrsigError
        If ``phase`` holds a label other than baseline, force_field, washout.
    InsufficientDataError
        If fewer than 30 trials have a finite error.

    See Also
    --------
    null_targets : surrogates of one trial variable, pseudosession by default.
    errsig.behavior.fit : the adaptation model fit.

    Notes
    -----
    *Error.* Each error vector is split into a lateral component
    :math:`e^\perp_n = -e_{x,n}\sin\theta_n + e_{y,n}\cos\theta_n`
    (perpendicular to the reach direction :math:`\theta_n`, the signed error
    a curl field causes) and an along-reach component
    :math:`e^\parallel_n = e_{x,n}\cos\theta_n + e_{y,n}\sin\theta_n`.
    The lateral error, less its baseline mean :math:`c`, is modelled as in
    :mod:`errsig.behavior`:

    .. math::

        e^\perp_n - c = F\,u_n - \sum_k x_{k,n} + v_n, \qquad
        x_{k,n+1} = A_k x_{k,n} + B_k (e^\perp_n - c) + w_{k,n},

    with :math:`u_n = 1` on force-field trials and 0 in baseline and washout.
    The field's size :math:`F` (signed, in metres) is unknown: given the other
    parameters the log-likelihood is exactly quadratic in :math:`F` (the
    Kalman innovations are linear in the inputs). So the model is fitted by
    maximum likelihood (:math:`A, B, \sigma_w, \sigma_v`) with :math:`F` set
    to the mean of the first five force-field errors, and :math:`F` is then
    moved to its exact maximum under that fit, found from three likelihood
    evaluations; the likelihood can only rise. (Further alternation moves
    :math:`F` and the learning rates slowly along a nearly flat ridge — the
    data hardly tell a larger field learnt faster from a smaller one — for
    gains of one or two log-likelihood units, not worth a model fit each.) New
    lateral sequences are drawn from the fitted model with the same schedule;
    the along-reach component, which the field does not drive, is drawn with
    replacement from the observed along-reach errors of the same phase. Both are
    rotated back to x and y with each trial's own target angle. Gaps in
    ``trial_index`` (trials dropped before binning) are kept as missing trials:
    the model integrates over them and the pseudo-subject learns through them.

    *Reward.* A logistic regression of reward on :math:`|e|` with one
    intercept per phase, :math:`P(r_n = 1) = \sigma(\beta |e_n| +
    \gamma_{\mathrm{phase}(n)})`, is fitted to the observed trials (lightly
    regularised, ``C = 100`` on standardised :math:`|e|`) and rewards are
    drawn given the pseudosession's errors. This keeps the reward–|error|
    coupling and each phase's reward rate; it drops any other structure of
    reward (a reward probability that drifts for other reasons).

    References
    ----------
    .. [1] Harris KD (2020). Nonsense correlations in neuroscience. bioRxiv
       2020.11.29.402719.
    .. [2] Smith MA, Ghazizadeh A, Shadmehr R (2006). Interacting adaptive
       processes with different timescales underlie short-term motor
       learning. PLoS Biol 4:e179.

    Examples
    --------
    >>> import numpy as np
    >>> import xarray as xr
    >>> from errsig.behavior import AdaptationParams, simulate
    >>> from errsig.stats import draw_pseudosessions
    >>> rng = np.random.default_rng(0)
    >>> schedule = np.r_[np.zeros(30), np.full(60, 0.02), np.zeros(30)]
    >>> params = AdaptationParams((0.9,), (0.2,), 0.001, 0.003)
    >>> lateral = simulate(schedule, params, rng=1).error
    >>> angle = rng.choice(np.arange(8) * np.pi / 4, schedule.size)
    >>> error = lateral[:, None] * np.c_[-np.sin(angle), np.cos(angle)]
    >>> ds = xr.Dataset(
    ...     {"error": (("trial", "component"), error)},
    ...     coords={"component": ["x", "y"], "target_angle": ("trial", angle),
    ...             "phase": ("trial", ["baseline"] * 30 + ["force_field"] * 60
    ...                       + ["washout"] * 30),
    ...             "reward": ("trial", np.abs(lateral) < 0.005)},
    ... )
    >>> pseudo = draw_pseudosessions(ds, 100, model="single_rate", rng=2)
    >>> pseudo["error"].shape
    (100, 120, 2)
    >>> round(pseudo.attrs["perturbation_size"], 2)
    0.02
    """
    n_sessions = check_positive_int(n_sessions, "n_sessions")
    generator = check_rng(rng)
    fit_rng, lateral_rng, along_rng, reward_rng = generator.spawn(4)
    behaviour = _session_behaviour(ds)

    lateral_fit = _fit_lateral(behaviour, model, n_starts, fit_rng)
    lateral = lateral_fit["model"].simulate(
        lateral_fit["schedule"], n_sessions=n_sessions, rng=lateral_rng
    )
    lateral = lateral[:, behaviour["position"]] + lateral_fit["offset"]
    along = _resample_within_phase(
        behaviour["along"], behaviour["phase"], n_sessions, along_rng
    )
    angle = behaviour["target_angle"]
    error = np.stack(
        [
            along * np.cos(angle) - lateral * np.sin(angle),
            along * np.sin(angle) + lateral * np.cos(angle),
        ],
        axis=-1,
    )

    pseudosessions = _package(ds, error, lateral_fit, model)
    if behaviour["reward"] is not None:
        reward_model = _fit_reward(behaviour)
        probability = _reward_probability(
            reward_model, np.hypot(error[..., 0], error[..., 1]), behaviour["phase"]
        )
        pseudosessions["reward"] = (
            ("pseudosession", "trial"),
            reward_rng.random(probability.shape) < probability,
        )
        pseudosessions.attrs.update(
            {f"reward_{key}": value for key, value in reward_model.items()}
        )
    return pseudosessions


def _session_behaviour(ds: xr.Dataset) -> dict:
    """Lateral and along-reach errors, phases, rewards and trial positions."""
    missing = [
        name for name in ("error", "phase", "target_angle") if name not in ds.variables
    ]
    if missing:
        raise ColumnError(
            f"pseudosessions need {', '.join(missing)} in the dataset: the error "
            "(trial, component) and the trial coordinates phase and target_angle "
            "(bin a session whose trials table has error_x, error_y, phase and "
            "target_angle)."
        )
    error = observed_target(ds, "error")
    angle = observed_target(ds, "target_angle").astype(np.float64)
    phase = observed_target(ds, "phase").astype(str)
    unknown = sorted(str(label) for label in set(phase) - set(PHASES))
    if unknown:
        raise ErrsigError(
            f"`phase` holds {unknown}; pseudosessions know the phases "
            f"{', '.join(PHASES)}. Relabel the trials' phase column."
        )
    n_finite = int(np.isfinite(error).all(axis=1).sum())
    if n_finite < MIN_TRIALS:
        raise InsufficientDataError(
            f"the dataset has {n_finite} trials with a finite error; pseudosessions "
            f"fit an adaptation model and need at least {MIN_TRIALS}."
        )

    if "trial_index" in ds.variables:
        trial_index = observed_target(ds, "trial_index").astype(np.int64)
    else:
        trial_index = np.arange(len(phase))
    if len(np.unique(trial_index)) != len(trial_index):
        raise ErrsigError(
            "`trial_index` has repeated values; pseudosessions need each trial's "
            "position in the session once."
        )

    reward = None
    if "reward" in ds.variables:
        reward = observed_target(ds, "reward").astype(bool)
    return {
        "lateral": -error[:, 0] * np.sin(angle) + error[:, 1] * np.cos(angle),
        "along": error[:, 0] * np.cos(angle) + error[:, 1] * np.sin(angle),
        "phase": phase,
        "target_angle": angle,
        "reward": reward,
        "position": trial_index - trial_index.min(),
    }


def _fit_lateral(
    behaviour: dict, model: str, n_starts: int, generator: np.random.Generator
) -> dict:
    """Fit the adaptation model and the field size to the lateral error."""
    position = behaviour["position"]
    n_timeline = int(position.max()) + 1
    in_field = np.zeros(n_timeline)
    in_field[position] = behaviour["phase"] == "force_field"
    # A dropped trial takes the phase of the last kept trial before it.
    kept = np.zeros(n_timeline, dtype=bool)
    kept[position] = True
    last_kept = np.maximum.accumulate(np.where(kept, np.arange(n_timeline), 0))
    in_field = in_field[last_kept]

    baseline = behaviour["phase"] == "baseline"
    offset = (
        float(np.nanmean(behaviour["lateral"][baseline])) if baseline.any() else 0.0
    )
    lateral = np.full(n_timeline, np.nan)
    lateral[position] = behaviour["lateral"] - offset

    early_field = lateral[in_field.astype(bool)]
    early_field = early_field[np.isfinite(early_field)][:5]
    size = float(early_field.mean()) if early_field.size else 0.0
    # Each round fits the model at the current size, then moves the size to its
    # likelihood maximum under that fit: the likelihood never decreases.
    for round_rng in generator.spawn(N_SCALE_ROUNDS):
        fitted = _fit_adaptation(lateral, size * in_field, model, n_starts, round_rng)
        size = _best_perturbation_size(lateral, in_field, fitted.params, size)
    logger.debug("pseudosession model: %s, field size %.4g", fitted.params, size)
    return {
        "model": fitted,
        "schedule": size * in_field,
        "size": size,
        "offset": offset,
    }


def _fit_adaptation(
    lateral: np.ndarray,
    schedule: np.ndarray,
    model: str,
    n_starts: int,
    generator: np.random.Generator,
) -> object:
    """Fit the adaptation model, retrying with more starts if none converged."""
    for attempt, attempt_rng in enumerate(generator.spawn(2)):
        starts = n_starts * 4**attempt
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            fitted = behavior.fit(
                lateral, schedule, model=model, n_starts=starts, rng=attempt_rng
            )
        if fitted.converged:
            return fitted
        logger.debug("adaptation fit with %d starts did not converge", starts)

    for warning in caught:
        warnings.warn(
            f"pseudosessions: {warning.message}", ConvergenceWarning, stacklevel=4
        )
    return fitted


def _best_perturbation_size(
    lateral: np.ndarray, in_field: np.ndarray, params: object, size: float
) -> float:
    """Find the field size that maximises the likelihood, other parameters fixed.

    The log-likelihood is a quadratic function of the size, so three values
    determine it: ``L(c) = a + b c + q c²`` is maximal at ``-b / (2 q)``.
    """
    if not in_field.any():
        return 0.0
    step = max(abs(size), float(np.nanstd(lateral)), 1e-12)
    values = [
        behavior.log_likelihood(lateral, scale * in_field, params)
        for scale in (-step, 0.0, step)
    ]
    slope = (values[2] - values[0]) / (2 * step)
    curvature = (values[2] + values[0] - 2 * values[1]) / (2 * step**2)
    if not curvature < 0:
        return size
    return float(-slope / (2 * curvature))


def _resample_within_phase(
    values: np.ndarray,
    phase: np.ndarray,
    n_sessions: int,
    generator: np.random.Generator,
) -> np.ndarray:
    """Draw each trial's value from the finite observed values of its phase."""
    draws = np.empty((n_sessions, len(values)))
    pool_all = values[np.isfinite(values)]
    for label in np.unique(phase):
        trials = np.flatnonzero(phase == label)
        pool = values[trials]
        pool = pool[np.isfinite(pool)]
        if pool.size == 0:
            pool = pool_all
        draws[:, trials] = generator.choice(pool, size=(n_sessions, trials.size))
    return draws


def _fit_reward(behaviour: dict) -> dict:
    """Logistic regression of reward on |error| with one intercept per phase."""
    magnitude = np.hypot(behaviour["lateral"], behaviour["along"])
    finite = np.isfinite(magnitude)
    phases = sorted(set(behaviour["phase"]))
    scale = float(np.std(magnitude[finite])) or 1.0

    features = _reward_features(
        magnitude[finite] / scale, behaviour["phase"][finite], phases
    )
    coefficients = fit_logistic(
        features, behaviour["reward"][finite], penalty=1 / REWARD_MODEL_C
    )
    return {
        "phases": phases,
        "scale": scale,
        "slope": float(coefficients[0]),
        "intercepts": [float(value) for value in coefficients[1:]],
    }


def fit_logistic(
    features: np.ndarray, outcome: np.ndarray, *, penalty: float, n_iter: int = 100
) -> np.ndarray:
    """Ridge-penalised logistic regression by Newton's method.

    Minimises ``Σ log(1 + exp(-s_n x_n·w)) + penalty · |w|² / 2`` with
    ``s_n = ±1`` (scikit-learn's ``LogisticRegression(C=1 / penalty,
    fit_intercept=False)``). The penalty keeps the solution finite when the
    outcome is separable, as when reward is a step function of |error|.
    """
    outcome = np.asarray(outcome, dtype=np.float64)
    weights = np.zeros(features.shape[1])
    identity = np.eye(features.shape[1])
    for _ in range(n_iter):
        probability = special.expit(features @ weights)
        gradient = features.T @ (probability - outcome) + penalty * weights
        curvature = probability * (1 - probability)
        hessian = (features.T * curvature) @ features + penalty * identity
        step = np.linalg.solve(hessian, gradient)
        weights -= step
        if np.max(np.abs(step)) < 1e-10 * max(1.0, np.max(np.abs(weights))):
            break
    return weights


def _reward_features(
    scaled_magnitude: np.ndarray, phase: np.ndarray, phases: list[str]
) -> np.ndarray:
    indicators = (phase[..., None] == np.array(phases)).astype(np.float64)
    indicators = np.broadcast_to(indicators, (*scaled_magnitude.shape, len(phases)))
    return np.concatenate([scaled_magnitude[..., None], indicators], axis=-1)


def _reward_probability(
    reward_model: dict, magnitude: np.ndarray, phase: np.ndarray
) -> np.ndarray:
    features = _reward_features(
        magnitude / reward_model["scale"], phase, reward_model["phases"]
    )
    coefficients = np.r_[reward_model["slope"], reward_model["intercepts"]]
    return special.expit(features @ coefficients)


def _package(
    ds: xr.Dataset, error: np.ndarray, lateral_fit: dict, model: str
) -> xr.Dataset:
    trial_coords = {
        name: coord
        for name, coord in ds.coords.items()
        if coord.dims == ("trial",) and name != "reward"
    }
    params = lateral_fit["model"].params
    pseudosessions = xr.Dataset(
        {"error": (("pseudosession", "trial", "component"), error)},
        coords={
            "pseudosession": np.arange(error.shape[0]),
            "trial": ds["trial"].to_numpy(),
            "component": ["x", "y"],
            **{name: coord.variable for name, coord in trial_coords.items()},
        },
        attrs={
            "method": (
                "pseudosession: lateral error from a state-space adaptation model "
                "fitted to the observed lateral error; along-reach error resampled "
                "within phase; reward from a logistic model of |error| and phase"
            ),
            "model": model,
            "retention": list(params.retention),
            "learning_rate": list(params.learning_rate),
            "planning_noise": params.planning_noise,
            "execution_noise": params.execution_noise,
            "log_likelihood": lateral_fit["model"].log_likelihood,
            "converged": int(lateral_fit["model"].converged),
            "perturbation_size": lateral_fit["size"],
            "baseline_offset": lateral_fit["offset"],
        },
    )
    pseudosessions["error"].attrs.update(units="m", long_name="pseudosession error")
    return pseudosessions
