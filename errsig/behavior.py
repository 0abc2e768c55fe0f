r"""State-space models of motor adaptation: simulate, evaluate and fit.

The models describe how a scalar signed error (for reaching: the lateral error,
perpendicular to the target direction) shrinks while a subject adapts to a
perturbation. On trial ``n`` the subject makes the error

.. math::

    e_n = f_n - \sum_k x_{k,n} + v_n,

where :math:`f_n` is the perturbation (the error it would cause if nothing were
learnt), :math:`x_{k,n}` the adaptive states and :math:`v_n \sim N(0, \sigma_v^2)`
execution noise. After the trial each state retains a fraction of itself and
learns from the error:

.. math::

    x_{k,n+1} = A_k x_{k,n} + B_k e_n + w_{k,n},
    \qquad w_{k,n} \sim N(0, \sigma_w^2).

One state gives the single-rate model; a fast and a slow state
(:math:`A_f < A_s`, :math:`B_f > B_s`) give the two-rate model of Smith,
Ghazizadeh & Shadmehr (2006), which reproduces savings, rapid unlearning,
after-effects and spontaneous recovery.

The same execution noise :math:`v_n` enters the error and, through
:math:`B_k e_n`, the next state, so observation and state noise are correlated.
:func:`log_likelihood` handles this exactly: on an observed trial the update uses
the observed error, which is then a known input; on a missing trial (NaN error)
the error is integrated out, with its noise entering the state through ``B``.

These models supply the *pseudosession* nulls of errsig: :func:`fit` the model to
the observed errors, then :meth:`AdaptationFit.simulate` draws new error
sequences with the same learning structure.

References
----------
.. [1] Smith, M. A., Ghazizadeh, A. & Shadmehr, R. (2006). Interacting adaptive
   processes with different timescales underlie short-term motor learning.
   PLoS Biology 4(6), e179.
.. [2] Joiner, W. M. & Smith, M. A. (2008). Long-term retention explained by a
   model of short-term learning in the adaptive control of reaching. Journal of
   Neurophysiology 100, 2948-2955.
.. [3] Tanaka, H., Krakauer, J. W. & Sejnowski, T. J. (2012). Generalization and
   multirate models of motor adaptation. Neural Computation 24, 939-966.
.. [4] Durbin, J. & Koopman, S. J. (2012). Time Series Analysis by State Space
   Methods, 2nd ed. Oxford University Press.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy import optimize, special

from errsig._exceptions import ConvergenceWarning, ErrsigError, InsufficientDataError
from errsig._validation import check_positive_int, check_rng

__all__ = [
    "PUBLISHED_PARAMS",
    "AdaptationFit",
    "AdaptationParams",
    "AdaptationTrace",
    "fit",
    "log_likelihood",
    "simulate",
]

logger = logging.getLogger(__name__)

try:  # numba compiles the Kalman filter; without it the same code runs in Python.
    from numba import njit as _numba_njit

    _jit = _numba_njit(cache=True, nogil=True)
except ImportError:  # pragma: no cover - numba is optional

    def _jit(function):
        return function


MODELS = ("single_rate", "two_rate")

#: Fewest observed (non-NaN) errors :func:`fit` accepts.
MIN_OBSERVED_TRIALS = 20


@dataclass(frozen=True)
class AdaptationParams:
    """Parameters of a state-space adaptation model.

    Parameters
    ----------
    retention : tuple of float
        Retention factor :math:`A_k` of each state, in [0, 1]; ``(A,)`` for the
        single-rate model, ``(A_f, A_s)`` (fast, slow) for the two-rate model.
    learning_rate : tuple of float
        Learning rate :math:`B_k` of each state, in [0, 1], same order.
    planning_noise : float
        Standard deviation of each state's per-trial noise :math:`w`, in error
        units (e.g. metres).
    execution_noise : float
        Standard deviation of the execution noise :math:`v`, in error units.

    Examples
    --------
    >>> from errsig.behavior import AdaptationParams
    >>> params = AdaptationParams((0.59, 0.992), (0.21, 0.02), 0.001, 0.003)
    >>> params.n_states
    2
    """

    retention: tuple[float, ...]
    learning_rate: tuple[float, ...]
    planning_noise: float
    execution_noise: float

    def __post_init__(self) -> None:
        retention = tuple(float(a) for a in np.atleast_1d(self.retention))
        learning_rate = tuple(float(b) for b in np.atleast_1d(self.learning_rate))
        object.__setattr__(self, "retention", retention)
        object.__setattr__(self, "learning_rate", learning_rate)
        object.__setattr__(self, "planning_noise", float(self.planning_noise))
        object.__setattr__(self, "execution_noise", float(self.execution_noise))

        if len(retention) != len(learning_rate) or not retention:
            raise ErrsigError(
                f"`retention` has {len(retention)} values and `learning_rate` "
                f"{len(learning_rate)}; give one of each per state (1 or 2 states)."
            )
        values = np.array(retention + learning_rate)
        if not np.all((values >= 0) & (values <= 1)):
            raise ErrsigError(
                f"`retention` {retention} and `learning_rate` {learning_rate} must "
                "lie in [0, 1]."
            )
        noise = (self.planning_noise, self.execution_noise)
        if not all(np.isfinite(s) and s >= 0 for s in noise):
            raise ErrsigError(
                f"`planning_noise` and `execution_noise` must be finite and >= 0; "
                f"got {noise}."
            )

    @property
    def n_states(self) -> int:
        """Number of adaptive states (1 or 2)."""
        return len(self.retention)


#: Published two-rate parameter sets for force-field adaptation (science.md §1.2),
#: with noise levels (in units of the perturbation) chosen for simulation.
PUBLISHED_PARAMS: dict[str, AdaptationParams] = {
    "smith2006": AdaptationParams((0.59, 0.992), (0.21, 0.02), 0.01, 0.05),
    "joiner2008": AdaptationParams((0.85, 0.998), (0.11, 0.021), 0.01, 0.05),
}


@dataclass(frozen=True)
class AdaptationTrace:
    """One simulated sequence of errors and states.

    Parameters
    ----------
    error : numpy.ndarray
        The error made on each trial, shape ``(n_trials,)``.
    state : numpy.ndarray
        Each state before trial ``n``'s update, shape ``(n_trials, n_states)``;
        the net adaptation is ``state.sum(axis=1)``.
    perturbation : numpy.ndarray
        The perturbation of each trial, shape ``(n_trials,)``.

    Examples
    --------
    >>> import numpy as np
    >>> from errsig.behavior import AdaptationParams, simulate
    >>> params = AdaptationParams((0.95,), (0.2,), 0.0, 0.0)
    >>> trace = simulate(np.ones(3), params)
    >>> trace.state[:, 0]
    array([0.  , 0.2 , 0.35])
    """

    error: np.ndarray
    state: np.ndarray
    perturbation: np.ndarray


@dataclass(frozen=True)
class AdaptationFit:
    """A state-space model fitted by maximum likelihood.

    Parameters
    ----------
    params : AdaptationParams
        The maximum-likelihood parameters.
    model : str
        ``"single_rate"`` or ``"two_rate"``.
    log_likelihood : float
        The maximised log-likelihood of the observed errors (natural log).
    n_trials : int
        Number of trials, missing ones included.
    converged : bool
        Whether the best optimisation run reported convergence.
    perturbation : numpy.ndarray, optional
        The perturbation sequence of the fitted session, the default for
        :meth:`simulate`.

    Examples
    --------
    >>> import numpy as np
    >>> from errsig.behavior import AdaptationParams, fit, simulate
    >>> schedule = np.r_[np.zeros(50), np.ones(150), np.zeros(100)]
    >>> truth = AdaptationParams((0.9,), (0.2,), 0.02, 0.1)
    >>> trace = simulate(schedule, truth, rng=1)
    >>> result = fit(trace.error, schedule, model="single_rate", rng=2)
    >>> result.simulate(n_sessions=4, rng=3).shape
    (4, 300)
    """

    params: AdaptationParams
    model: str
    log_likelihood: float
    n_trials: int
    converged: bool
    perturbation: np.ndarray | None = field(default=None, repr=False)

    @property
    def n_parameters(self) -> int:
        """Number of free parameters (retentions, learning rates, two noises)."""
        return 2 * self.params.n_states + 2

    @property
    def aic(self) -> float:
        """Akaike's information criterion, ``2 k - 2 log L``."""
        return 2 * self.n_parameters - 2 * self.log_likelihood

    def simulate(
        self,
        perturbation: np.ndarray | None = None,
        *,
        n_sessions: int = 1,
        rng: int | np.random.Generator | None = None,
    ) -> np.ndarray:
        """Draw pseudo-error sequences from the fitted model.

        Parameters
        ----------
        perturbation : array_like, optional
            Perturbation schedule, shape ``(n_trials,)``; the fitted session's
            by default.
        n_sessions : int, default=1
            Number of independent sequences.
        rng : None, int or numpy.random.Generator, optional
            Source of randomness.

        Returns
        -------
        numpy.ndarray
            Errors, shape ``(n_sessions, n_trials)``.

        Examples
        --------
        >>> import numpy as np
        >>> from errsig.behavior import AdaptationFit, AdaptationParams
        >>> params = AdaptationParams((0.9,), (0.2,), 0.01, 0.05)
        >>> fitted = AdaptationFit(params, "single_rate", 0.0, 10, True, np.ones(10))
        >>> fitted.simulate(n_sessions=3, rng=0).shape
        (3, 10)
        """
        if perturbation is None:
            if self.perturbation is None:
                raise ErrsigError(
                    "this fit stores no perturbation schedule; pass `perturbation`."
                )
            perturbation = self.perturbation
        n_sessions = check_positive_int(n_sessions, "n_sessions")
        schedule = _check_perturbation(perturbation)
        errors, _ = _simulate_batch(schedule, self.params, n_sessions, check_rng(rng))
        return errors


def simulate(
    perturbation: np.ndarray,
    params: AdaptationParams,
    *,
    rng: int | np.random.Generator | None = None,
    initial_state: np.ndarray | None = None,
    clamp: np.ndarray | None = None,
) -> AdaptationTrace:
    """Simulate one sequence of errors from a state-space adaptation model.

    Parameters
    ----------
    perturbation : array_like
        Perturbation of each trial, shape ``(n_trials,)``, in error units: the
        error the subject would make with no adaptation (0 in baseline and
        washout).
    params : AdaptationParams
        Model parameters.
    rng : None, int or numpy.random.Generator, optional
        Source of the planning and execution noise.
    initial_state : array_like, optional
        States before the first trial, shape ``(n_states,)``; zeros by default.
    clamp : array_like of bool, optional
        Error-clamp (force-channel) trials, shape ``(n_trials,)``: on these the
        error is held at zero, so the states only decay (and take their planning
        noise). The recorded error is 0 on clamp trials.

    Returns
    -------
    AdaptationTrace

    See Also
    --------
    fit : maximum-likelihood estimation of ``params`` from observed errors.

    Examples
    --------
    The after-effect of the two-rate model of Smith et al. (2006): errors shrink
    in the field and reverse sign when it is removed.

    >>> import numpy as np
    >>> from errsig.behavior import PUBLISHED_PARAMS, simulate
    >>> schedule = np.r_[np.zeros(20), np.ones(200), np.zeros(50)]
    >>> trace = simulate(schedule, PUBLISHED_PARAMS["smith2006"], rng=0)
    >>> bool(trace.error[20] > 0.8), bool(trace.error[220] < -0.5)
    (True, True)
    """
    schedule = _check_perturbation(perturbation)
    clamp_mask = _check_clamp(clamp, len(schedule))
    start = _check_initial_state(initial_state, params.n_states)
    errors, states = _simulate_batch(
        schedule, params, 1, check_rng(rng), initial_state=start, clamp=clamp_mask
    )
    return AdaptationTrace(error=errors[0], state=states[0], perturbation=schedule)


def log_likelihood(
    error: np.ndarray,
    perturbation: np.ndarray,
    params: AdaptationParams,
    *,
    initial_state: np.ndarray | None = None,
) -> float:
    r"""Log-likelihood of an error sequence under a state-space model.

    Computed exactly with a Kalman filter. NaN errors mark missing trials: the
    subject still made (and learnt from) an error, which is integrated out.

    Parameters
    ----------
    error : array_like
        Observed errors, shape ``(n_trials,)``; NaN where missing.
    perturbation : array_like
        Perturbation of each trial, shape ``(n_trials,)``.
    params : AdaptationParams
        Model parameters.
    initial_state : array_like, optional
        The (known) states before the first trial; zeros by default.

    Returns
    -------
    float
        The natural-log likelihood of the observed errors.

    Notes
    -----
    The states before the first trial are taken as known (no prior variance),
    so the first error has variance :math:`\sigma_v^2` only. On an observed
    trial the state posterior is updated with the error and the states then
    advance with that error as a known input, so the correlation between the
    observation noise and the state noise needs no approximation. On a missing
    trial the states advance through :math:`A - B\mathbf{1}^T` with the extra
    state noise :math:`\sigma_v^2 B B^T`.

    Examples
    --------
    >>> import numpy as np
    >>> from errsig.behavior import AdaptationParams, log_likelihood
    >>> params = AdaptationParams((0.9,), (0.2,), 0.0, 1.0)
    >>> round(log_likelihood(np.zeros(1), np.zeros(1), params), 4)
    -0.9189
    """
    observed, schedule = _check_error_and_perturbation(error, perturbation)
    start = _check_initial_state(initial_state, params.n_states)
    retention = np.array([params.retention])
    learning_rate = np.array([params.learning_rate])
    noise = np.array([[params.planning_noise, params.execution_noise]])
    return float(
        _kalman_log_likelihood(
            observed, schedule, retention, learning_rate, noise, start
        )[0]
    )


def fit(
    error: np.ndarray,
    perturbation: np.ndarray,
    *,
    model: str = "two_rate",
    n_starts: int = 8,
    rng: int | np.random.Generator | None = None,
) -> AdaptationFit:
    """Fit a state-space adaptation model to observed errors by maximum likelihood.

    Parameters
    ----------
    error : array_like
        Observed signed errors, shape ``(n_trials,)``; NaN for missing trials
        (they are integrated out, not dropped).
    perturbation : array_like
        Perturbation of each trial, shape ``(n_trials,)``, in the units of
        ``error`` (its size sets the scale of the learnt states).
    model : {"two_rate", "single_rate"}, default="two_rate"
        Two states with :math:`A_f < A_s` and :math:`B_f > B_s`, or one state.
    n_starts : int, default=8
        Number of local optimisations, started from the best points of a random
        screen of the parameter space.
    rng : None, int or numpy.random.Generator, optional
        Source of the random screen.

    Returns
    -------
    AdaptationFit

    Raises
    ------
    ErrsigError
        If ``model`` is unknown, or the arrays disagree in length or hold
        non-finite perturbations.
    InsufficientDataError
        If fewer than 20 errors are observed, or they are all equal.

    Warns
    -----
    ConvergenceWarning
        If no optimisation run converged.

    Notes
    -----
    Parameters are optimised on an unbounded scale that maps onto the
    constraints: the slow retention and the fast learning rate through a
    logistic function, the fast retention and the slow learning rate as
    logistic fractions of those, so :math:`0 < A_f < A_s < 1` and
    :math:`0 < B_s < B_f < 1` always hold. The execution-noise variance is
    profiled out of the likelihood analytically and the ratio of planning to
    execution noise is optimised on a log scale. The first states are taken as
    zero (an unadapted subject). The two-rate and single-rate models are hard
    to tell apart when the time scales are close (Tanaka et al. 2012): compare
    their :attr:`AdaptationFit.aic`.

    Examples
    --------
    >>> import numpy as np
    >>> from errsig.behavior import AdaptationParams, fit, simulate
    >>> schedule = np.r_[np.zeros(100), np.ones(250), np.zeros(150)]
    >>> truth = AdaptationParams((0.95,), (0.15,), 0.01, 0.05)
    >>> trace = simulate(schedule, truth, rng=0)
    >>> result = fit(trace.error, schedule, model="single_rate", rng=0)
    >>> result.model, result.converged
    ('single_rate', True)
    >>> np.round(result.params.learning_rate, 1)
    array([0.1])
    """
    if model not in MODELS:
        raise ErrsigError(f"`model` must be one of {MODELS}; got {model!r}.")
    n_starts = check_positive_int(n_starts, "n_starts")
    observed, schedule = _check_error_and_perturbation(error, perturbation)
    n_observed = int(np.count_nonzero(np.isfinite(observed)))
    if n_observed < MIN_OBSERVED_TRIALS:
        raise InsufficientDataError(
            f"`error` has {n_observed} observed (non-NaN) trials; fitting an "
            f"adaptation model needs at least {MIN_OBSERVED_TRIALS}."
        )
    finite = observed[np.isfinite(observed)]
    if np.ptp(finite) == 0:
        raise InsufficientDataError(
            f"every observed error equals {finite[0]!r}; a state-space model "
            "needs errors that vary from trial to trial."
        )
    n_states = 2 if model == "two_rate" else 1
    generator = check_rng(rng)

    objective = _ProfiledObjective(observed, schedule, n_states)
    candidates = _screen_candidates(objective, n_states, n_starts, generator)
    best_run = None
    converged_any = False
    for start in candidates:
        run = optimize.minimize(
            objective.value_and_gradient, start, jac=True, method="BFGS"
        )
        converged_any |= bool(run.success)
        if best_run is None or run.fun < best_run.fun:
            best_run = run

    if not converged_any:
        warnings.warn(
            f"no {model} fit of {n_starts} start(s) converged ({best_run.message}); "
            "the parameters may be off. Try more `n_starts` or the other `model`.",
            ConvergenceWarning,
            stacklevel=2,
        )
    params = objective.params(best_run.x)
    logger.debug("fitted %s: %s (%d evaluations)", model, params, best_run.nfev)
    return AdaptationFit(
        params=params,
        model=model,
        log_likelihood=-float(best_run.fun),
        n_trials=len(schedule),
        converged=converged_any,
        perturbation=schedule,
    )


# --------------------------------------------------------------------- internals
def _simulate_batch(
    schedule: np.ndarray,
    params: AdaptationParams,
    n_sessions: int,
    rng: np.random.Generator,
    *,
    initial_state: np.ndarray | None = None,
    clamp: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Simulate many sessions at once; a loop over trials, none over sessions."""
    n_trials, n_states = len(schedule), params.n_states
    retention = np.asarray(params.retention)
    learning_rate = np.asarray(params.learning_rate)
    execution = rng.normal(0.0, params.execution_noise, (n_trials, n_sessions))
    planning = rng.normal(0.0, params.planning_noise, (n_trials, n_sessions, n_states))
    clamp = np.zeros(n_trials, dtype=bool) if clamp is None else clamp

    states = np.empty((n_trials, n_sessions, n_states))
    errors = np.empty((n_trials, n_sessions))
    state = np.zeros((n_sessions, n_states))
    if initial_state is not None:
        state[:] = initial_state
    for trial in range(n_trials):
        states[trial] = state
        if clamp[trial]:
            errors[trial] = 0.0
        else:
            errors[trial] = schedule[trial] - state.sum(axis=1) + execution[trial]
        state = retention * state + learning_rate * errors[trial][:, None]
        state += planning[trial]

    return errors.T.copy(), states.transpose(1, 0, 2).copy()


def _kalman_log_likelihood(
    observed: np.ndarray,
    schedule: np.ndarray,
    retention: np.ndarray,
    learning_rate: np.ndarray,
    noise: np.ndarray,
    initial_state: np.ndarray | None = None,
) -> np.ndarray:
    """Exact log-likelihood for a batch of parameter sets, shape (batch,)."""
    log_variances, squares = _kalman_terms(
        observed, schedule, retention, learning_rate, noise, initial_state
    )
    return -0.5 * (log_variances + squares)


def _kalman_terms(
    observed: np.ndarray,
    schedule: np.ndarray,
    retention: np.ndarray,
    learning_rate: np.ndarray,
    noise: np.ndarray,
    initial_state: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Run the Kalman filter for a batch of parameter sets.

    ``retention`` and ``learning_rate`` have shape (batch, n_states), ``noise``
    (batch, 2) with the planning and execution SDs. Returns the sums over
    observed trials of ``log(2 pi S_n)`` and of ``r_n**2 / S_n`` (innovation
    ``r_n``, its variance ``S_n``), each of shape (batch,).
    """
    batch, n_states = retention.shape
    start = np.zeros(n_states) if initial_state is None else initial_state
    log_variances = np.zeros(batch)
    squares = np.zeros(batch)
    _filter_batch(
        np.ascontiguousarray(observed, dtype=np.float64),
        np.ascontiguousarray(schedule, dtype=np.float64),
        np.ascontiguousarray(retention, dtype=np.float64),
        np.ascontiguousarray(learning_rate, dtype=np.float64),
        np.ascontiguousarray(noise, dtype=np.float64) ** 2,
        np.ascontiguousarray(start, dtype=np.float64),
        log_variances,
        squares,
    )
    return log_variances, squares


@_jit
def _filter_batch(
    observed, schedule, retention, learning_rate, variances, start, log_out, square_out
):  # pragma: no cover - compiled
    """Kalman filter over trials for each parameter set (scalar loops, compiled)."""
    batch, n_states = retention.shape
    mean = np.empty(n_states)
    covariance = np.empty((n_states, n_states))
    row_sums = np.empty(n_states)
    for index in range(batch):
        retain = retention[index]
        learn = learning_rate[index]
        planning_variance = variances[index, 0]
        execution_variance = variances[index, 1]
        mean[:] = start
        covariance[:] = 0.0
        log_total = 0.0
        square_total = 0.0
        for trial in range(len(observed)):
            error = observed[trial]
            force = schedule[trial]
            for i in range(n_states):
                row_sums[i] = covariance[i].sum()
            total_variance = row_sums.sum()
            state_sum = mean.sum()

            if np.isnan(error):
                # The error was made but not seen: it enters the state through
                # B, with its execution noise. Transition T = diag(A) - B 1^T.
                for i in range(n_states):
                    mean[i] = retain[i] * mean[i] + learn[i] * (force - state_sum)
                for i in range(n_states):
                    for j in range(n_states):
                        covariance[i, j] = (
                            retain[i] * retain[j] * covariance[i, j]
                            - retain[i] * learn[j] * row_sums[i]
                            - learn[i] * retain[j] * row_sums[j]
                            + learn[i]
                            * learn[j]
                            * (total_variance + execution_variance)
                        )
                    covariance[i, i] += planning_variance
                continue

            # Condition the states on the error, then advance with the error as a
            # known input (this is what makes the correlated noise exact).
            innovation_variance = total_variance + execution_variance
            innovation = error - force + state_sum
            log_total += np.log(2.0 * np.pi * innovation_variance)
            square_total += innovation * innovation / innovation_variance
            for i in range(n_states):
                posterior = mean[i] - row_sums[i] / innovation_variance * innovation
                mean[i] = retain[i] * posterior + learn[i] * error
            for i in range(n_states):
                for j in range(n_states):
                    covariance[i, j] = (
                        retain[i]
                        * retain[j]
                        * (
                            covariance[i, j]
                            - row_sums[i] * row_sums[j] / innovation_variance
                        )
                    )
                covariance[i, i] += planning_variance
        log_out[index] = log_total
        square_out[index] = square_total


class _ProfiledObjective:
    """Negative log-likelihood on an unbounded scale, execution noise profiled.

    The unbounded vector is, for two states, ``(logit A_s, logit(A_f / A_s),
    logit B_f, logit(B_s / B_f), log(planning / execution noise))`` and, for
    one state, ``(logit A, logit B, log noise ratio)``.
    """

    def __init__(self, observed: np.ndarray, schedule: np.ndarray, n_states: int):
        self.observed = observed
        self.schedule = schedule
        self.n_states = n_states
        self.n_observed = int(np.count_nonzero(np.isfinite(observed)))
        self.n_parameters = 2 * n_states + 1

    def constrained(
        self, theta: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Map a batch of unbounded vectors to (retention, learning_rate, ratio)."""
        theta = np.atleast_2d(theta)
        if self.n_states == 1:
            retention = special.expit(theta[:, :1])
            learning_rate = special.expit(theta[:, 1:2])
        else:
            slow_retention = special.expit(theta[:, 0])
            fast_retention = slow_retention * special.expit(theta[:, 1])
            fast_rate = special.expit(theta[:, 2])
            slow_rate = fast_rate * special.expit(theta[:, 3])
            retention = np.c_[fast_retention, slow_retention]
            learning_rate = np.c_[fast_rate, slow_rate]
        ratio = np.exp(np.clip(theta[:, -1], -20.0, 10.0))
        return retention, learning_rate, ratio

    def evaluate(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Profiled negative log-likelihood and execution SD for a batch."""
        retention, learning_rate, ratio = self.constrained(theta)
        unit_noise = np.c_[ratio, np.ones_like(ratio)]
        log_variances, squares = _kalman_terms(
            self.observed, self.schedule, retention, learning_rate, unit_noise
        )

        # With execution SD 1 all variances are in units of sigma_v**2; the
        # maximising sigma_v**2 is the mean squared standardised innovation.
        n = self.n_observed
        execution_variance = squares / n
        negative = 0.5 * (log_variances + n * np.log(execution_variance) + n)
        negative = np.where(np.isfinite(negative), negative, np.inf)
        return negative, np.sqrt(execution_variance)

    def value_and_gradient(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """Value and central-difference gradient, in one batched filter pass."""
        step = 1e-5
        offsets = np.vstack([np.zeros(len(theta)), step * np.eye(len(theta))])
        points = theta + np.vstack([offsets, -offsets[1:]])
        values, _ = self.evaluate(points)
        n = len(theta)
        gradient = (values[1 : n + 1] - values[n + 1 :]) / (2 * step)
        if not np.all(np.isfinite(gradient)):
            gradient = np.zeros(n)
        return float(values[0]), gradient

    def params(self, theta: np.ndarray) -> AdaptationParams:
        """Return the :class:`AdaptationParams` of one unbounded vector."""
        retention, learning_rate, ratio = self.constrained(theta)
        _, execution = self.evaluate(theta)
        return AdaptationParams(
            retention=tuple(retention[0]),
            learning_rate=tuple(learning_rate[0]),
            planning_noise=float(ratio[0] * execution[0]),
            execution_noise=float(execution[0]),
        )


def _screen_candidates(
    objective: _ProfiledObjective,
    n_states: int,
    n_starts: int,
    rng: np.random.Generator,
    n_screen: int = 256,
) -> np.ndarray:
    """Evaluate random points in one batch and return the best ``n_starts``."""
    points = rng.normal(0.0, 1.5, (n_screen, objective.n_parameters))
    points[:, 0] += 2.5 if n_states == 1 else 4.0  # retention near 1
    points[:, -1] -= 1.5  # planning noise below execution noise
    values, _ = objective.evaluate(points)
    order = np.argsort(values)
    return points[order[:n_starts]]


def _check_perturbation(perturbation: object) -> np.ndarray:
    schedule = np.asarray(perturbation, dtype=np.float64)
    if schedule.ndim != 1 or not len(schedule):
        raise ErrsigError(
            f"`perturbation` must be a non-empty 1-D array (one value per trial); "
            f"got shape {schedule.shape}."
        )
    if not np.all(np.isfinite(schedule)):
        raise ErrsigError(
            "`perturbation` holds NaN or infinite values; give the perturbation of "
            "every trial (0 where there is none)."
        )
    return schedule


def _check_error_and_perturbation(
    error: object, perturbation: object
) -> tuple[np.ndarray, np.ndarray]:
    schedule = _check_perturbation(perturbation)
    observed = np.asarray(error, dtype=np.float64)
    if observed.shape != schedule.shape:
        raise ErrsigError(
            f"`error` has shape {observed.shape} but `perturbation` has "
            f"{schedule.shape}; give one value of each per trial (NaN for a "
            "missing error)."
        )
    if np.any(np.isinf(observed)):
        raise ErrsigError("`error` holds infinite values; use NaN for missing trials.")
    return observed, schedule


def _check_initial_state(initial_state: object, n_states: int) -> np.ndarray | None:
    if initial_state is None:
        return None
    start = np.asarray(initial_state, dtype=np.float64).reshape(-1)
    if start.shape != (n_states,) or not np.all(np.isfinite(start)):
        raise ErrsigError(
            f"`initial_state` must hold {n_states} finite value(s), one per state; "
            f"got {initial_state!r}."
        )
    return start


def _check_clamp(clamp: object, n_trials: int) -> np.ndarray | None:
    if clamp is None:
        return None
    mask = np.asarray(clamp)
    if mask.shape != (n_trials,) or mask.dtype != bool:
        raise ErrsigError(
            f"`clamp` must be a boolean array with one value per trial "
            f"({n_trials}); got dtype {mask.dtype} and shape {mask.shape}."
        )
    return mask
