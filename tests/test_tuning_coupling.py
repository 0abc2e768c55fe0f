"""Tests of errsig.tuning.reward_coupling and the learning-rule labels."""

import dataclasses
import warnings

import numpy as np
import pytest
import statsmodels.api as sm
import xarray as xr
from scipy.stats import binom

import errsig
import sim
from errsig import ErrsigError, NullAssumptionWarning, reward_coupling, tuning_drift
from errsig.stats import null_targets, permutation_pvalues, session_permutation
from errsig.tuning import _coupling
from errsig.tuning._design import wrap_angle
from sim.scenarios import SCENARIOS
from tests.test_tuning import make_drift_dataset, shrink_budgets


def _bin(session):
    """Movement-epoch counts: 0–300 ms after movement onset, one bin per 100 ms."""
    return errsig.bin_trials(
        session, align="move_onset_time", window=(0.0, 0.3), bin_size=0.1
    )


def _scenario(name, rate=None):
    spec = SCENARIOS[name]
    if rate is None:
        return spec
    groups = tuple(
        dataclasses.replace(group, drift_rate=rate)
        if group.drift_rule != "stable"
        else group
        for group in spec.groups
    )
    return dataclasses.replace(spec, groups=groups)


# --- building blocks against analytic answers and reference implementations ---


def test_window_kernel_is_exact_for_window_means():
    rng = np.random.default_rng(0)
    n_trials, window, step = 120, 20, 7
    updates = rng.normal(0, 1, n_trials)
    level = np.concatenate([[0.0], np.cumsum(updates[:-1])])  # update n acts on n+1
    starts = np.arange(0, n_trials - window + 1, step)
    stops = starts + window
    means = np.array([level[a:b].mean() for a, b in zip(starts, stops, strict=True)])

    kernel = _coupling._window_kernel(starts, stops, n_trials)

    np.testing.assert_allclose(kernel @ updates, np.diff(means), atol=1e-12)


def test_r_squared_and_correlation_match_least_squares():
    rng = np.random.default_rng(1)
    change = rng.normal(0, 1, (3, 50))
    valid = rng.random((3, 50)) > 0.1
    change[~valid] = np.nan
    first = rng.normal(0, 1, (2, 3, 50))
    second = rng.normal(0, 1, (2, 3, 50)) + 0.5 * first

    r_squared = _coupling._r_squared(change, valid, first, second)
    correlation = _coupling._correlation(change, valid, first)

    for batch in range(2):
        for unit in range(3):
            keep = valid[unit]
            design = sm.add_constant(
                np.c_[first[batch, unit, keep], second[batch, unit, keep]]
            )
            reference = sm.OLS(change[unit, keep], design).fit().rsquared
            np.testing.assert_allclose(r_squared[batch, unit], reference, rtol=1e-10)
            np.testing.assert_allclose(
                correlation[batch, unit],
                np.corrcoef(change[unit, keep], first[batch, unit, keep])[0, 1],
                rtol=1e-10,
            )


def test_running_expectation_and_past_trace_follow_their_recursions():
    rng = np.random.default_rng(2)
    reward = (rng.random((2, 30)) < 0.6).astype(float)
    series = rng.normal(0, 1, (2, 30))

    expectation = _coupling._running_expectation(reward, 0.2)
    trace = _coupling._past_trace(series, 0.9)

    for row in range(2):
        running = reward[row].mean()
        past = 0.0
        for trial in range(30):
            assert expectation[row, trial] == pytest.approx(running)
            assert trace[row, trial] == pytest.approx(past)
            running += 0.2 * (reward[row, trial] - running)
            past = 0.9 * past + series[row, trial]


# --- recovery and labels on a generator with planted rules (fast) ---


def test_strong_rules_are_labelled_on_planted_data():
    rng = np.random.default_rng(3)
    rules = ["stable"] * 6 + ["gradient"] * 6 + ["random_walk"] * 6
    ds, _ = make_drift_dataset(
        rng,
        n_trials=400,
        rules=rules,
        step_deg={"gradient": 8.0, "random_walk": np.radians(5.0)},
    )

    drift = tuning_drift(ds, method="filter", n_boot=0)
    result = reward_coupling(drift, ds, n_perm=100, rng=0)

    labels = result["rule"].values
    assert (labels[:6] == "stable").mean() >= 5 / 6
    assert (labels[6:12] == "gradient").mean() >= 5 / 6
    assert (labels[12:] == "random_walk").mean() >= 5 / 6
    assert result["p_gradient"][6:12].max() < 0.05
    assert set(result.attrs) >= {"null", "n_perm", "seed", "alpha"}
    assert result.attrs["null"] == "pseudosession"


def test_windowed_drift_gives_the_same_kind_of_answer():
    rng = np.random.default_rng(4)
    rules = ["gradient"] * 6 + ["stable"] * 4
    ds, _ = make_drift_dataset(
        rng, n_trials=400, rules=rules, step_deg={"gradient": 8.0}
    )

    drift = tuning_drift(ds, window=40, step=5, n_boot=0)
    result = reward_coupling(drift, ds, n_perm=100, rng=0)

    assert result["area_rule"].item() == "gradient"
    assert result["area_p_gradient"].item() < 0.05
    assert np.isnan(result["variance_ratio"]).all()  # trial-resolved only


# --- the simulator: recovery at stated strengths, calibration ---


@pytest.fixture(scope="module")
def random_walk_sessions():
    """S7 at its default 1°/trial: four sessions of 50 units (200 null units)."""
    results = []
    for seed in range(4):
        session = sim.simulate("S7", rng=seed, n_trials=400, n_units=50)
        ds = _bin(session)
        drift = tuning_drift(ds, method="filter", n_boot=0)
        results.append((session, ds, drift))
    return results


def test_reward_coupling_keeps_nominal_false_positive_rate_on_random_walks(
    random_walk_sessions,
):
    p_values = {"p_gradient": [], "p_gated": [], "p_reward": []}
    labels = []
    for seed, (_, ds, drift) in enumerate(random_walk_sessions):
        result = reward_coupling(drift, ds, n_perm=100, rng=seed)
        for name in p_values:
            p_values[name].append(result[name].values)
        labels.append(result["rule"].values)

    # 200 units; under the null P(p <= 0.05) <= 0.05, and 0.10 is more than
    # three binomial standard deviations (0.015) above it.
    for name, values in p_values.items():
        values = np.concatenate(values)
        assert np.isfinite(values).mean() > 0.9, name
        assert np.nanmean(values <= 0.05) <= 0.10, name
    labels = np.concatenate(labels)
    assert np.mean(np.isin(labels, ["gradient", "reward_gated"])) <= 0.05


def test_area_tests_keep_their_level_over_200_random_walk_sessions():
    # 200 independent S7 sessions (drift unrelated to reward or error, errors
    # decaying through the field): each area-level test, and the call of any
    # unit as gradient or reward-gated, is a false positive at most 5 % of the
    # time. The central 95 % of Binomial(200, 0.05) / 200 is [0.02, 0.08].
    # The same holds with the hand force as covariates (held at fixed
    # coefficients in the drift test).
    options = {"plain": None, "force": ["force_x", "force_y"]}
    rejected = {
        (option, name): []
        for option in options
        for name in ("area_p_gradient", "area_p_gated", "area_p_reward")
    }
    labelled = {option: [] for option in options}
    for seed in range(200):
        session = sim.simulate("S7", rng=seed, n_trials=300, n_units=6)
        ds = _bin(session)
        for option, covariates in options.items():
            drift = tuning_drift(ds, method="filter", n_boot=0, covariates=covariates)
            result = reward_coupling(drift, ds, n_perm=50, rng=seed)
            for key, values in rejected.items():
                if key[0] == option:
                    values.append(bool((result[key[1]] <= 0.05).any()))
            labelled[option].append(
                np.isin(result["rule"], ["gradient", "reward_gated"]).any()
            )

    upper = binom.ppf(0.975, 200, 0.05) / 200
    for key, values in rejected.items():
        assert np.mean(values) <= upper, key
    for option, values in labelled.items():
        assert np.mean(values) <= upper, option


def test_circular_shift_null_fails_on_the_same_random_walks(random_walk_sessions):
    """The level relation (PD against lateral error) that naive analyses test.

    A random-walking PD and a decaying error trend together; the circular shift
    keeps each series but breaks their alignment in a way that makes the null
    correlations too small, so it calls many of these units error-related,
    while the pseudosession null keeps its level.
    """
    false_positive = {"pseudosession": [], "circular_shift": []}
    for seed, (_, ds, drift) in enumerate(random_walk_sessions[:2]):
        level = np.unwrap(drift["preferred_direction"].values, axis=1)
        angle = ds["target_angle"].values
        observed = _lateral(ds["error"].values, angle)[None]
        statistic = _abs_correlation(level, observed)[0]
        for null in false_positive:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NullAssumptionWarning)
                surrogate = null_targets(ds, "error", 200, null=null, rng=seed)
            null_statistic = _abs_correlation(level, _lateral(surrogate, angle))
            p_value = permutation_pvalues(statistic, null_statistic)
            false_positive[null].append(p_value <= 0.05)

    assert np.mean(false_positive["pseudosession"]) <= 0.10
    assert np.mean(false_positive["circular_shift"]) >= 0.3


def test_circular_shift_in_reward_coupling_warns(random_walk_sessions):
    _, ds, drift = random_walk_sessions[0]
    with pytest.warns(NullAssumptionWarning, match="stationary"):
        result = reward_coupling(drift, ds, n_perm=20, null="circular_shift", rng=0)
    assert result.attrs["null"] == "circular_shift"


def _recover(spec, seed, n_trials=600, n_units=30, covariates=None):
    session = sim.simulate(spec, rng=seed, n_trials=n_trials, n_units=n_units)
    ds = _bin(session)
    drift = tuning_drift(ds, method="filter", n_boot=0, covariates=covariates)
    result = reward_coupling(drift, ds, n_perm=100, rng=seed)
    truth = session.meta["truth"]["units"]
    kinematic = (truth["role"] == "kinematic").to_numpy()
    rule = truth["drift_rule"].to_numpy()
    return result, kinematic, rule, session, drift


def test_gradient_units_are_recovered_on_s5():
    """S5 at 20 rad/m (default 3): each 1 cm error turns the PD by 11°."""
    result, kinematic, rule, session, drift = _recover(_scenario("S5", 20.0), 0)

    labels = result["rule"].values
    assert np.mean(labels[kinematic & (rule == "gradient")] == "gradient") >= 0.8
    assert np.mean(labels[kinematic & (rule == "stable")] == "stable") >= 0.8
    assert result["area_rule"].sel(area="M1").item() == "gradient"

    planted = session.meta["truth"]["unit_trial"]["preferred_direction"]
    error = np.abs(wrap_angle(drift["preferred_direction"].values - planted))
    assert np.degrees(np.median(error[kinematic])) < 20


def test_reward_gated_drift_is_found_per_area_on_s6():
    """S6 with 0.6 rad exploration (default 0.21): pooled per area."""
    result, kinematic, rule, _, _ = _recover(
        _scenario("S6", 0.6), 0, n_trials=800, n_units=40
    )

    assert result["area_rule"].sel(area="M1").item() == "reward_gated"
    # One unit says little about gating (science.md §8): per unit, the gated
    # units are mostly called drifting, rarely gradient.
    gated_labels = result["rule"].values[kinematic & (rule == "reward_gated")]
    assert np.mean(gated_labels != "stable") >= 0.8
    assert np.mean(gated_labels == "gradient") <= 0.1


def test_reward_gated_units_are_recovered_per_unit_when_well_tuned():
    """S6 per unit needs informative single trials (science.md §8).

    Well-isolated, strongly tuned units (median 30 Hz, depth 0.8–1.0 of the
    baseline: about 17 spikes in the 0–500 ms reach) over 1,600 trials, with
    0.6 rad exploration. At the simulator's M1 defaults (about 4 spikes a trial
    in 0–300 ms) one unit's calls are mostly ``random_walk``; see
    docs/validation-tuning.md.
    """
    spec = _scenario("S6", 0.6)
    strong = tuple(
        dataclasses.replace(group, rate_median=30.0, depth_range=(0.8, 1.0))
        for group in spec.groups
    )
    spec = dataclasses.replace(spec, groups=strong)
    labels = {"reward_gated": [], "stable": []}
    for seed in (0, 1):
        session = sim.simulate(spec, rng=seed, n_trials=1600, n_units=40)
        ds = errsig.bin_trials(
            session, align="move_onset_time", window=(0.0, 0.5), bin_size=0.1
        )
        force = ["force_x", "force_y"]
        drift = tuning_drift(ds, method="filter", n_boot=0, covariates=force)
        result = reward_coupling(drift, ds, n_perm=200, rng=seed)

        assert result["area_rule"].sel(area="M1").item() == "reward_gated"
        truth = session.meta["truth"]["units"]
        kinematic = (truth["role"] == "kinematic").to_numpy()
        for rule, found in labels.items():
            chosen = kinematic & (truth["drift_rule"] == rule).to_numpy()
            found.append(result["rule"].values[chosen])

    gated, stable = (np.concatenate(found) for found in labels.values())
    assert np.mean(gated == "reward_gated") >= 0.8
    assert np.mean(gated == "gradient") == 0
    assert np.mean(stable == "stable") >= 0.8


def test_random_walk_units_are_recovered_on_s7():
    """S7 at 5°/trial (default 1°)."""
    result, kinematic, rule, _, _ = _recover(_scenario("S7", np.radians(5.0)), 0)

    labels = result["rule"].values
    assert np.mean(labels[kinematic & (rule == "random_walk")] == "random_walk") >= 0.8
    assert np.mean(labels[kinematic & (rule == "stable")] == "stable") >= 0.8
    assert result["area_rule"].sel(area="M1").item() == "random_walk"


def test_force_units_are_stable_given_force_covariates():
    """Force units change their apparent direction tuning through the load.

    With the hand force as covariates (fixed coefficients, in the filter and in
    the drift test) that change is explained and they are called stable, while
    the random-walk units are still found.
    """
    result, kinematic, rule, session, _ = _recover(
        _scenario("S7", np.radians(5.0)), 0, covariates=["force_x", "force_y"]
    )
    without, *_ = _recover(_scenario("S7", np.radians(5.0)), 0)

    force = (session.meta["truth"]["units"]["role"] == "force").to_numpy()
    labels = result["rule"].values
    assert np.mean(labels[force] == "stable") >= 0.8
    assert np.mean(without["rule"].values[force] == "stable") < 0.5
    assert np.mean(labels[kinematic & (rule == "random_walk")] == "random_walk") >= 0.8
    assert np.mean(labels[kinematic & (rule == "stable")] == "stable") >= 0.8


def test_default_random_walk_is_diffusive_and_stable_units_stay_stable(
    random_walk_sessions,
):
    """At S7's default 1°/trial and 400 trials few walkers are called drifting
    (see docs/validation-tuning.md), but their mean-squared change grows faster
    than the stable units', and stable units are called stable."""
    calls = {"random_walk": [], "stable": []}
    stable_p_drift = []
    for seed, (session, ds, drift) in enumerate(random_walk_sessions[:2]):
        truth = session.meta["truth"]["units"]
        kinematic = (truth["role"] == "kinematic").to_numpy()
        result = reward_coupling(drift, ds, n_perm=50, rng=seed)
        for rule in calls:
            chosen = kinematic & (truth["drift_rule"] == rule).to_numpy()
            calls[rule].append(result["rule"].values[chosen])
        stable = kinematic & (truth["drift_rule"] == "stable").to_numpy()
        stable_p_drift.append(result["p_drift"].values[stable])
        # The walk is the same in every block (baseline, thirds of the field and
        # of washout): walking units diffuse faster than stable ones in each.
        assert list(result["block"].values) == list(drift["block"].values)
        rates = result["diffusion_rate"].transpose("unit", "block").values
        walking = (truth["drift_rule"] == "random_walk").to_numpy()
        walking_rates = np.nanmedian(rates[walking], axis=0)
        assert np.all(walking_rates > np.nanmedian(rates[kinematic & ~walking], axis=0))

    assert np.mean(np.concatenate(calls["stable"]) == "stable") >= 0.8
    # The drift test (Wald χ² with dispersion) holds its level on stable units.
    assert np.mean(np.concatenate(stable_p_drift) <= 0.05) <= 0.15
    walker_labels = np.concatenate(calls["random_walk"])
    assert np.mean(np.isin(walker_labels, ["gradient", "reward_gated"])) <= 0.1


# --- memory: chunks of units ---


@pytest.mark.parametrize("method", ["glm", "filter"])
@pytest.mark.parametrize("null", ["pseudosession", "linear_shift"])
def test_chunks_of_units_give_the_coupling_of_one_chunk(monkeypatch, method, null):
    rng = np.random.default_rng(23)
    rules = ["stable", "random_walk", "gradient", "reward_gated", "stable"]
    areas = ["M1", "M1", "PMd", "PMd", "M1"]
    ds, _ = make_drift_dataset(rng, n_trials=160, rules=rules, areas=areas)
    drift = tuning_drift(ds, method=method, n_boot=0)
    # More surrogates than one batch holds, so that batches and chunks cross.
    n_perm = _coupling.SURROGATE_CHUNK + 5
    whole = reward_coupling(drift, ds, null=null, n_perm=n_perm, rng=0)

    n_chunks = shrink_budgets(monkeypatch)
    chunked = reward_coupling(drift, ds, null=null, n_perm=n_perm, rng=0)

    assert max(n_chunks) >= 2
    xr.testing.assert_identical(chunked, whole)


def test_small_integer_counts_give_the_coupling_of_int32_counts():
    rng = np.random.default_rng(24)
    ds, _ = make_drift_dataset(rng, n_trials=160, rules=["stable", "gradient"])
    expected = reward_coupling(tuning_drift(ds, n_boot=0), ds, n_perm=20, rng=0)

    for dtype in ("int8", "int16"):
        small = ds.assign(counts=ds["counts"].astype(dtype))
        coupling = reward_coupling(
            tuning_drift(small, n_boot=0), small, n_perm=20, rng=0
        )
        xr.testing.assert_identical(coupling, expected)


# --- errors ---


@pytest.fixture(scope="module")
def small_pair():
    rng = np.random.default_rng(0)
    ds, _ = make_drift_dataset(rng, n_trials=120, rules=["stable", "stable"])
    return ds, tuning_drift(ds, method="filter", n_boot=0)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"lags": [1, 2]}, "must include 0"),
        ({"lags": ["a"]}, "must be integers"),
        ({"alpha": 1.5}, r"`alpha` must lie in \(0, 1\)"),
        ({"expectation_rate": 0.0}, "`expectation_rate` must lie"),
        ({"null": "bootstrap"}, "`null` must be one of"),
    ],
)
def test_bad_arguments_raise(small_pair, change, match):
    ds, drift = small_pair
    with pytest.raises(ErrsigError, match=match):
        reward_coupling(drift, ds, n_perm=10, **change)


def test_drift_from_another_dataset_is_rejected(small_pair):
    ds, drift = small_pair
    with pytest.raises(ErrsigError, match=r"must be the dataset errsig\.tuning_drift"):
        reward_coupling(xr.Dataset(), ds)
    with pytest.raises(ErrsigError, match="covers 120 trials but `ds` has 100"):
        reward_coupling(drift, ds.isel(trial=slice(0, 100)))
    with pytest.raises(ErrsigError, match="has 2 units but `ds` has 1"):
        reward_coupling(drift, ds.isel(unit=[0]))


def test_missing_reward_is_named(small_pair):
    ds, drift = small_pair
    with pytest.raises(errsig.ColumnError, match="'reward' is missing"):
        reward_coupling(drift, ds.drop_vars("reward"))


def _lateral(error, angle):
    return -error[..., 0] * np.sin(angle) + error[..., 1] * np.cos(angle)


def _abs_correlation(level, other):
    level = level - level.mean(axis=1, keepdims=True)
    other = other - other.mean(axis=-1, keepdims=True)
    product = (level[None] * other[:, None]).sum(-1)
    norm = np.sqrt((level**2).sum(-1)[None] * (other**2).sum(-1)[:, None])
    return np.abs(product / norm)


def test_linear_shift_and_shuffle_nulls_say_what_they_did(small_pair):
    ds, drift = small_pair
    shifted = reward_coupling(drift, ds, n_perm=20, null="linear_shift")
    shuffled = reward_coupling(drift, ds, n_perm=20, null="shuffle", rng=0)

    # Linear shifts are deterministic and test the central trials only.
    again = reward_coupling(drift, ds, n_perm=20, null="linear_shift")
    np.testing.assert_array_equal(shifted["p_gradient"], again["p_gradient"])
    assert shifted.attrs["null"] == "linear_shift"
    assert "ignored" in shuffled.attrs["trial_order"]
    assert shifted.attrs["trial_order"] == "kept"


def test_area_reward_lags_are_corrected_over_lags(small_pair):
    ds, drift = small_pair
    result = reward_coupling(drift, ds, n_perm=50, rng=0)

    uncorrected = result["area_p_reward_lag"].values
    corrected = result["area_p_reward_lag_corrected"].values
    assert np.all(corrected >= uncorrected)
    assert np.any(corrected > uncorrected)
    np.testing.assert_array_equal(corrected.min(axis=1), result["area_p_reward"])


def test_results_round_trip_through_netcdf(small_pair, tmp_path):
    ds, drift = small_pair
    result = reward_coupling(drift, ds, n_perm=20, rng=0)

    for name, dataset in {"drift": drift, "coupling": result}.items():
        path = tmp_path / f"{name}.nc"
        dataset.to_netcdf(path, engine="h5netcdf")
        with xr.open_dataset(path, engine="h5netcdf") as back:
            xr.testing.assert_allclose(back.load(), dataset)


def test_coupling_accepts_a_drift_read_back_from_netcdf(tmp_path):
    rng = np.random.default_rng(5)
    ds, _ = make_drift_dataset(rng, n_trials=120, rules=["stable", "random_walk"])
    ds["hold_time"] = ("trial", rng.normal(0, 1, 120))
    drift = tuning_drift(ds, method="filter", n_boot=0, covariates=["hold_time"])
    path = tmp_path / "drift.nc"
    drift.to_netcdf(path, engine="h5netcdf")

    with xr.open_dataset(path, engine="h5netcdf") as back:
        # NetCDF stores a one-element list attribute as a plain string.
        result = reward_coupling(back.load(), ds, n_perm=10, rng=0)
    direct = reward_coupling(drift, ds, n_perm=10, rng=0)

    xr.testing.assert_allclose(result, direct)


def test_behaviour_may_come_from_a_dataset_binned_around_another_event():
    session = sim.simulate("S7", rng=0, n_trials=160, n_units=6)
    movement = _bin(session)
    feedback = errsig.bin_trials(session)  # aligned to feedback, other bins
    drift = tuning_drift(movement, n_boot=0)

    from_feedback = reward_coupling(drift, feedback, n_perm=20, rng=0)
    from_movement = reward_coupling(drift, movement, n_perm=20, rng=0)

    xr.testing.assert_allclose(from_feedback, from_movement)
    with pytest.raises(ErrsigError, match="hold different trials"):
        reward_coupling(drift, feedback.assign_coords(trial=feedback["trial"] + 1))


# --- the session-permutation null ---


@pytest.fixture(scope="module")
def random_walk_design():
    """Ten S7 sessions of one design (8 units, 300 trials), movement epoch."""
    return [
        _bin(sim.simulate("S7", rng=seed, n_trials=300, n_units=8))
        for seed in range(10)
    ]


def test_session_null_gives_uniform_p_values_on_random_walks(random_walk_design):
    draws = session_permutation(random_walk_design, ["error", "reward"])
    p_values = {"p_gradient": [], "p_gated": [], "p_reward": []}
    for ds, draw in zip(random_walk_design, draws, strict=True):
        drift = tuning_drift(ds, method="filter", n_boot=0)
        result = reward_coupling(drift, ds, null="session", surrogates=draw)
        assert result.attrs["n_perm"] == 9 and result.attrs["null"] == "session"
        for name in p_values:
            p_values[name].append(result[name].values)

    # 80 units: p takes the values 0.1, ..., 1, uniformly under the null. The
    # units of a session share their behaviour, so the tolerance is wide.
    for name, values in p_values.items():
        values = np.concatenate(values)
        assert np.isfinite(values).all(), name
        for level in (0.1, 0.3, 0.5):
            assert abs(np.mean(values <= level + 1e-9) - level) < 0.12, (name, level)


def test_session_null_checks_its_draws(random_walk_design):
    datasets = random_walk_design[:3]
    draws = session_permutation(datasets, ["error", "reward"])
    ds = datasets[0]
    drift = tuning_drift(ds, method="filter", n_boot=0)
    with pytest.raises(ErrsigError, match="takes them as `surrogates`"):
        reward_coupling(drift, ds, null="session")
    with pytest.raises(ErrsigError, match="goes with null='session' only"):
        reward_coupling(drift, ds, surrogates=draws[0])
    with pytest.raises(ErrsigError, match=r"keyed \['error', 'reward'\]"):
        reward_coupling(
            drift, ds, null="session", surrogates={"error": draws[0]["error"]}
        )
    with pytest.raises(ErrsigError, match="drawn for another session"):
        reward_coupling(drift, ds, null="session", surrogates=draws[1])
    shorter = [ds.isel(trial=np.r_[0:20, 25:300]), *datasets[1:]]
    gapped = session_permutation(shorter, ["error", "reward"])[1]
    with pytest.raises(ErrsigError, match="not one contiguous run"):
        reward_coupling(
            tuning_drift(datasets[1], method="filter", n_boot=0),
            datasets[1],
            null="session",
            surrogates=gapped,
        )
