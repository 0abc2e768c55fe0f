"""Tests of the state-space adaptation models in errsig.behavior."""

import numpy as np
import pytest
from scipy import stats

from errsig import ErrsigError, InsufficientDataError
from errsig.behavior import (
    PUBLISHED_PARAMS,
    AdaptationFit,
    AdaptationParams,
    fit,
    log_likelihood,
    simulate,
)

#: Baseline, force field, washout: 500 trials as in the brief.
SCHEDULE = np.r_[np.zeros(100), np.ones(250), np.zeros(150)]


def noiseless(params):
    return AdaptationParams(params.retention, params.learning_rate, 0.0, 0.0)


def brute_force_log_likelihood(error, perturbation, params, initial_state):
    """Gaussian likelihood of the whole sequence from its explicit covariance.

    The errors are a linear function of the execution noises v_n and the
    planning noises w_{k,n}; the map is read off by pushing unit impulses
    through the model's recursion, with no Kalman filter involved.
    """
    n_trials, n_states = len(error), params.n_states
    retention = np.array(params.retention)
    learning_rate = np.array(params.learning_rate)

    def errors_given(execution, planning):
        state = np.array(initial_state, dtype=float)
        errors = np.empty(n_trials)
        for trial in range(n_trials):
            errors[trial] = perturbation[trial] - state.sum() + execution[trial]
            state = retention * state + learning_rate * errors[trial]
            state = state + planning[trial]
        return errors

    no_planning = np.zeros((n_trials, n_states))
    mean = errors_given(np.zeros(n_trials), no_planning)
    columns = []
    for trial in range(n_trials):
        impulse = np.zeros(n_trials)
        impulse[trial] = params.execution_noise
        columns.append(errors_given(impulse, no_planning) - mean)
        for state in range(n_states):
            kick = np.zeros((n_trials, n_states))
            kick[trial, state] = params.planning_noise
            columns.append(errors_given(np.zeros(n_trials), kick) - mean)
    loading = np.column_stack(columns)
    covariance = loading @ loading.T

    seen = np.isfinite(error)
    return stats.multivariate_normal(mean[seen], covariance[np.ix_(seen, seen)]).logpdf(
        error[seen]
    )


@pytest.mark.parametrize("model", ["single_rate", "two_rate"])
def test_log_likelihood_matches_explicit_covariance(model, seed):
    rng = np.random.default_rng(seed)
    if model == "two_rate":
        params = AdaptationParams((0.6, 0.97), (0.3, 0.05), 0.2, 0.5)
        initial_state = np.array([0.1, -0.2])
    else:
        params = AdaptationParams((0.9,), (0.3,), 0.2, 0.5)
        initial_state = np.array([0.3])
    perturbation = np.r_[0.0, 0.0, np.ones(5), 0.0]
    error = simulate(perturbation, params, rng=rng, initial_state=initial_state).error
    error[[1, 4, 5]] = np.nan  # missing trials, one pair in a row

    kalman = log_likelihood(error, perturbation, params, initial_state=initial_state)
    explicit = brute_force_log_likelihood(error, perturbation, params, initial_state)

    assert kalman == pytest.approx(explicit, rel=1e-10, abs=1e-10)


def test_simulate_noiseless_follows_the_recursion():
    params = AdaptationParams((0.6, 0.99), (0.2, 0.02), 0.0, 0.0)
    trace = simulate(np.ones(3), params)

    # x1 = B * e0 with e0 = 1; e1 = 1 - (0.2 + 0.02)
    np.testing.assert_allclose(trace.state[1], [0.2, 0.02])
    # x2 = (0.6 * 0.2 + 0.2 * 0.78, 0.99 * 0.02 + 0.02 * 0.78) = (0.276, 0.0354)
    np.testing.assert_allclose(trace.error, [1.0, 0.78, 1 - 0.276 - 0.0354])


def test_simulate_is_reproducible_and_seeds_differ():
    params = PUBLISHED_PARAMS["smith2006"]

    first = simulate(SCHEDULE, params, rng=3).error
    again = simulate(SCHEDULE, params, rng=3).error
    other = simulate(SCHEDULE, params, rng=4).error

    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)


def test_single_rate_parameters_are_recovered():
    # Tolerances (500 trials, sigma_w = 0.01, sigma_v = 0.05, 5 seeds): A within
    # 0.01, B within 0.03, execution SD within 15 %, planning SD within 50 %.
    truth = AdaptationParams((0.95,), (0.15,), 0.01, 0.05)
    for seed in range(5):
        trace = simulate(SCHEDULE, truth, rng=seed)
        result = fit(trace.error, SCHEDULE, model="single_rate", rng=seed)

        assert result.converged
        assert result.params.retention[0] == pytest.approx(0.95, abs=0.01)
        assert result.params.learning_rate[0] == pytest.approx(0.15, abs=0.03)
        assert result.params.execution_noise == pytest.approx(0.05, rel=0.15)
        assert result.params.planning_noise == pytest.approx(0.01, rel=0.5)


def test_two_rate_parameters_are_recovered():
    # Smith et al. (2006) parameters, 500 trials, 5 seeds. Tolerances: A_s within
    # 0.005, B_s within 0.006, A_f within 0.15, B_f within 0.07, execution SD
    # within 15 %, planning SD within 50 %. The fast process is the harder one.
    truth = PUBLISHED_PARAMS["smith2006"]
    for seed in range(5):
        trace = simulate(SCHEDULE, truth, rng=seed)
        result = fit(trace.error, SCHEDULE, rng=seed)
        fast_retention, slow_retention = result.params.retention
        fast_rate, slow_rate = result.params.learning_rate

        assert result.converged
        assert slow_retention == pytest.approx(0.992, abs=0.005)
        assert slow_rate == pytest.approx(0.02, abs=0.006)
        assert fast_retention == pytest.approx(0.59, abs=0.15)
        assert fast_rate == pytest.approx(0.21, abs=0.07)
        assert result.params.execution_noise == pytest.approx(0.05, rel=0.15)
        assert result.params.planning_noise == pytest.approx(0.01, rel=0.5)


def test_fit_reaches_the_maximum_and_reports_it():
    truth = PUBLISHED_PARAMS["joiner2008"]
    trace = simulate(SCHEDULE, truth, rng=11)
    result = fit(trace.error, SCHEDULE, rng=0)

    at_fit = log_likelihood(trace.error, SCHEDULE, result.params)
    at_truth = log_likelihood(trace.error, SCHEDULE, truth)
    assert result.log_likelihood == pytest.approx(at_fit, abs=1e-6)
    assert result.log_likelihood >= at_truth
    assert result.params.retention[0] < result.params.retention[1]
    assert result.params.learning_rate[0] > result.params.learning_rate[1]


def test_fit_handles_missing_trials():
    truth = AdaptationParams((0.95,), (0.15,), 0.01, 0.05)
    trace = simulate(SCHEDULE, truth, rng=5)
    error = trace.error.copy()
    error[np.random.default_rng(6).random(len(error)) < 0.2] = np.nan

    result = fit(error, SCHEDULE, model="single_rate", rng=0)

    assert result.params.retention[0] == pytest.approx(0.95, abs=0.015)
    assert result.params.learning_rate[0] == pytest.approx(0.15, abs=0.04)


def test_single_rate_data_prefer_single_rate_by_aic():
    truth = AdaptationParams((0.9,), (0.25,), 0.01, 0.05)
    trace = simulate(SCHEDULE, truth, rng=2)

    single = fit(trace.error, SCHEDULE, model="single_rate", rng=0)
    double = fit(trace.error, SCHEDULE, model="two_rate", rng=0)

    assert single.n_parameters == 4 and double.n_parameters == 6
    assert double.log_likelihood >= single.log_likelihood - 1e-6
    assert single.aic < double.aic


@pytest.mark.parametrize("name", ["smith2006", "joiner2008"])
def test_published_parameters_show_the_after_effect(name):
    params = noiseless(PUBLISHED_PARAMS[name])
    error = simulate(SCHEDULE, params).error

    early, late, washout = error[100], error[349], error[350]
    assert early == pytest.approx(1.0)
    assert abs(late) < 0.3 * early
    # Mirror-image after-effect, then a decay back toward zero.
    assert washout < -0.5
    assert abs(error[-1]) < abs(washout) / 2


@pytest.mark.parametrize("name", ["smith2006", "joiner2008"])
def test_published_parameters_show_savings(name):
    params = noiseless(PUBLISHED_PARAMS[name])
    # Learn, wash out until the net adaptation is back near zero, relearn.
    schedule = np.r_[np.ones(200), -np.ones(200)]
    trace = simulate(schedule, params)
    net = trace.state.sum(axis=1)
    back_to_zero = 200 + int(np.argmax(net[200:] < 0))
    relearn = np.r_[np.ones(200), -np.ones(back_to_zero - 200), np.ones(30)]
    second = simulate(relearn, params).error[back_to_zero:]
    first = simulate(np.ones(30), params).error

    # After the same 30 trials, the second exposure has reduced the error more.
    assert second[10] < first[10]
    assert second[20] < first[20]


def test_smith2006_shows_spontaneous_recovery():
    params = noiseless(PUBLISHED_PARAMS["smith2006"])
    adapt, clamped = 300, 100
    # De-adapt with the opposite field until the net adaptation crosses zero.
    reversal = simulate(np.r_[np.ones(adapt), -np.ones(100)], params)
    deadapt = int(np.argmax(reversal.state[adapt:].sum(axis=1) < 0))
    schedule = np.r_[np.ones(adapt), -np.ones(deadapt), np.zeros(clamped)]
    clamp = np.r_[np.zeros(adapt + deadapt, bool), np.ones(clamped, bool)]

    trace = simulate(schedule, params, clamp=clamp)
    net = trace.state.sum(axis=1)

    assert abs(net[adapt + deadapt]) < 0.1  # de-adapted
    assert net[adapt + deadapt + 10 :].max() > 0.3  # then rebounds
    assert np.all(trace.error[adapt + deadapt :] == 0)


def test_fitted_simulate_is_vectorised_and_follows_the_model():
    params = AdaptationParams((0.9,), (0.2,), 0.02, 0.1)
    fitted = AdaptationFit(params, "single_rate", 0.0, len(SCHEDULE), True, SCHEDULE)

    errors = fitted.simulate(n_sessions=2000, rng=0)
    again = fitted.simulate(n_sessions=2000, rng=0)
    expected = simulate(SCHEDULE, noiseless(params)).error

    assert errors.shape == (2000, len(SCHEDULE))
    np.testing.assert_array_equal(errors, again)
    # Mean within 5 standard errors of the noiseless curve on every trial.
    standard_error = errors.std(axis=0) / np.sqrt(2000)
    assert np.all(np.abs(errors.mean(axis=0) - expected) < 5 * standard_error)
    # Independent sessions: residuals of two sessions are uncorrelated.
    residuals = errors - expected
    correlation = np.corrcoef(residuals[:50])[np.triu_indices(50, 1)]
    assert np.abs(correlation).mean() < 0.2


def test_fitted_simulate_takes_a_new_schedule():
    params = AdaptationParams((0.9,), (0.2,), 0.0, 0.0)
    fitted = AdaptationFit(params, "single_rate", 0.0, 10, True)

    errors = fitted.simulate(np.ones(4), n_sessions=2)

    np.testing.assert_allclose(errors[0], simulate(np.ones(4), params).error)
    with pytest.raises(ErrsigError, match="pass `perturbation`"):
        fitted.simulate()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (((0.9, 0.5), (0.1,), 0.1, 0.1), "one of each per state"),
        (((1.2,), (0.1,), 0.1, 0.1), r"must lie in \[0, 1\]"),
        (((0.9,), (0.1,), -0.1, 0.1), "must be finite and >= 0"),
    ],
)
def test_bad_parameters_are_rejected(arguments, message):
    with pytest.raises(ErrsigError, match=message):
        AdaptationParams(*arguments)


def test_bad_inputs_are_rejected():
    params = AdaptationParams((0.9,), (0.1,), 0.1, 0.1)

    with pytest.raises(ErrsigError, match="`model` must be one of"):
        fit(np.zeros(50), np.zeros(50), model="three_rate")
    with pytest.raises(ErrsigError, match="`error` has shape"):
        fit(np.zeros(50), np.zeros(49))
    with pytest.raises(ErrsigError, match="`perturbation` holds NaN"):
        simulate(np.r_[0.0, np.nan], params)
    with pytest.raises(ErrsigError, match="non-empty 1-D"):
        simulate(np.zeros((2, 2)), params)
    with pytest.raises(ErrsigError, match="infinite values"):
        log_likelihood(np.r_[0.0, np.inf], np.zeros(2), params)
    with pytest.raises(ErrsigError, match="`initial_state` must hold 1"):
        simulate(np.zeros(3), params, initial_state=[0.0, 0.0])
    with pytest.raises(ErrsigError, match="`clamp` must be a boolean"):
        simulate(np.zeros(3), params, clamp=[0, 1, 0])
    with pytest.raises(InsufficientDataError, match="at least 20"):
        fit(np.r_[np.zeros(10), np.full(40, np.nan)], np.zeros(50))
    with pytest.raises(ValueError, match="`n_starts` must be at least 1"):
        fit(np.zeros(50), np.zeros(50), n_starts=0)
    with pytest.raises(InsufficientDataError, match="every observed error equals"):
        fit(np.r_[np.ones(30), np.nan], np.zeros(31))


def test_fit_warns_when_no_start_converges(monkeypatch):
    from errsig import ConvergenceWarning
    from errsig import behavior as module

    real_minimize = module.optimize.minimize

    def failing(*args, **kwargs):
        run = real_minimize(*args, **kwargs)
        run.success = False
        run.message = "stopped early"
        return run

    monkeypatch.setattr(module.optimize, "minimize", failing)
    trace = simulate(SCHEDULE, AdaptationParams((0.9,), (0.2,), 0.01, 0.05), rng=0)

    with pytest.warns(ConvergenceWarning, match="no single_rate fit of 2 start"):
        result = fit(trace.error, SCHEDULE, model="single_rate", n_starts=2, rng=0)
    assert not result.converged


def test_python_fallback_of_the_filter_agrees_with_the_compiled_one():
    from errsig import behavior as module

    python_filter = getattr(module._filter_batch, "py_func", module._filter_batch)
    params = AdaptationParams((0.6, 0.97), (0.3, 0.05), 0.2, 0.5)
    perturbation = np.r_[np.zeros(5), np.ones(10)]
    error = simulate(perturbation, params, rng=0).error
    error[[3, 7]] = np.nan
    retention = np.array([params.retention, (0.5, 0.9)])
    learning_rate = np.array([params.learning_rate, (0.2, 0.1)])
    variances = np.array([[0.04, 0.25], [0.01, 1.0]])

    compiled = [np.zeros(2), np.zeros(2)]
    python = [np.zeros(2), np.zeros(2)]
    arguments = (error, perturbation, retention, learning_rate, variances, np.zeros(2))
    module._filter_batch(*arguments, *compiled)
    python_filter(*arguments, *python)

    np.testing.assert_allclose(python, compiled, rtol=1e-12)
    assert log_likelihood(error, perturbation, params) == pytest.approx(
        -0.5 * (python[0][0] + python[1][0])
    )
