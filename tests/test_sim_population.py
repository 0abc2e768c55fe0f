"""Tests of the spiking populations (sim.population) through simulated sessions."""

import numpy as np
import pytest
from scipy import stats

import sim
from errsig import ErrsigError, bin_trials
from sim.population import (
    LatentConfig,
    UnitGroup,
    _gamma_renewal,
    _group_sizes,
    make_units,
    simulate_latent,
)


@pytest.fixture(scope="module")
def null_session():
    return sim.simulate("S0", rng=11, n_units=60, n_trials=480)


def window_counts(session, align, window):
    dataset = bin_trials(
        session, align=align, window=window, bin_size=window[1] - window[0]
    )
    return dataset["counts"].to_numpy()[:, :, 0].astype(float)


def condition_residuals(counts, trials, keep):
    """Counts minus the mean of their target, on the kept trials."""
    residual = counts.copy()
    angle = trials["target_angle"].to_numpy()
    for target in np.unique(angle):
        same = angle == target
        residual[same] -= residual[same].mean(axis=0)
    return residual[keep]


def fano_factor(counts, trials, keep):
    angle = trials["target_angle"].to_numpy()
    ratios = []
    for target in np.unique(angle):
        block = counts[keep & (angle == target)]
        mean = block.mean(axis=0)
        active = mean > 0.5
        ratios.append(block.var(axis=0, ddof=1)[active] / mean[active])
    return np.mean(np.concatenate(ratios))


def test_fano_factor_is_quenched_by_movement(null_session):
    trials = null_session.trials
    baseline = (trials["phase"] == "baseline").to_numpy()
    rest = window_counts(null_session, "go_cue_time", (-0.3, 0.0))
    moving = window_counts(null_session, "move_onset_time", (-0.1, 0.2))

    rest_ff = fano_factor(rest, trials, baseline)
    moving_ff = fano_factor(moving, trials, baseline)

    # science.md §1.3: about 1.5 at rest, about 1.0 during the reach.
    assert 1.25 < rest_ff < 1.8
    assert 0.85 < moving_ff < 1.2


def test_noise_correlations_are_in_the_published_range(null_session):
    trials = null_session.trials
    baseline = (trials["phase"] == "baseline").to_numpy()
    rest = window_counts(null_session, "go_cue_time", (-0.3, 0.0))

    residual = condition_residuals(rest, trials, baseline)
    correlation = np.corrcoef(residual.T)[np.triu_indices(residual.shape[1], 1)]

    assert 0.02 < np.nanmean(correlation) < 0.15
    assert np.nanpercentile(correlation, 95) < 0.35


def test_shared_latent_drifts_slowly(null_session):
    latent = null_session.meta["truth"]["trials"]["latent_global"].to_numpy()

    lag_one = np.corrcoef(latent[1:], latent[:-1])[0, 1]
    # Half of the variance is an AR(1) with coefficient 0.97.
    assert lag_one == pytest.approx(0.5 * 0.97, abs=0.12)


def test_spikes_are_sorted_float64_and_inside_the_session(null_session):
    times = null_session.spike_times
    starts = null_session.spike_starts

    assert times.dtype == np.float64
    assert null_session.spike_index.dtype == np.int64
    within = np.diff(times) >= 0
    within[null_session.spike_index[:-1] - 1] = True
    assert within.all()
    assert times.min() >= 0
    assert times.max() < null_session.trials["stop_time"].iloc[-1] + 0.5
    assert len(starts) == 60


def test_rates_and_preferred_directions_are_recovered(null_session):
    truth = null_session.meta["truth"]["units"]
    trials = null_session.trials
    baseline = (trials["phase"] == "baseline").to_numpy()
    rest = window_counts(null_session, "go_cue_time", (-0.3, 0.0))
    moving = window_counts(null_session, "move_onset_time", (-0.1, 0.4))

    # The latent gain has mean 1, so resting rates match the planted baselines.
    resting_rate = rest.mean(axis=0) / 0.3
    np.testing.assert_allclose(resting_rate, truth["baseline_rate"], rtol=0.3)

    angle = trials["target_angle"].to_numpy()[baseline]
    design = np.c_[np.ones(baseline.sum()), np.cos(angle), np.sin(angle)]
    coefficients, *_ = np.linalg.lstsq(design, moving[baseline], rcond=None)
    fitted = np.arctan2(coefficients[2], coefficients[1])
    kinematic = (truth["role"] == "kinematic").to_numpy()
    planted = truth["preferred_direction"].to_numpy()
    miss = np.angle(np.exp(1j * (fitted - planted)))[kinematic]
    assert np.median(np.abs(miss)) < np.deg2rad(10)


def test_gamma_renewal_is_more_regular_than_poisson():
    rng = np.random.default_rng(0)
    expected = np.full(100_000, 0.5)  # 50 Hz in 10 ms bins, 1000 s

    spikes = _gamma_renewal(expected, 2.0, 0, rng)
    intervals = np.diff(spikes)

    assert len(spikes) / 1000 == pytest.approx(50, rel=0.02)
    assert intervals.std() / intervals.mean() == pytest.approx(1 / np.sqrt(2), rel=0.05)
    assert np.all(intervals > 0)


def test_gamma_units_in_a_session_are_regular():
    groups = (
        UnitGroup("GPi", "null", 1.0),
        UnitGroup("M1", "null", 1.0, spiking="gamma", gamma_shape=4.0),
    )
    scenario = sim.Scenario("regular", "regular", "gamma-renewal units", groups)
    session = sim.simulate(scenario, rng=4, n_units=2, n_trials=60)
    truth = session.meta["truth"]["units"]

    assert list(truth["spiking"]) == ["gamma", "gamma"]
    assert list(truth["gamma_shape"]) == [2.0, 4.0]
    for unit in (0, 1):
        intervals = np.diff(session.unit_spike_times(unit))
        intervals = intervals[intervals < 0.2]
        assert intervals.std() / intervals.mean() < 0.9


def test_unit_groups_are_apportioned_exactly():
    sizes = _group_sizes([0.45, 0.15, 0.1, 0.3], 7)

    assert sizes.sum() == 7
    assert list(sizes) == [3, 1, 1, 2]


def test_latent_has_unit_variance():
    latent = simulate_latent(20_000, LatentConfig(), np.random.default_rng(1))

    np.testing.assert_allclose(latent.var(axis=0), 1.0, rtol=0.1)


def test_make_units_draws_role_specific_gains():
    groups = [
        UnitGroup("M1", "kinematic", 1.0),
        UnitGroup("PMd", "vector_error", 1.0),
        UnitGroup("striatum", "outcome", 1.0, outcome_coding="failure"),
    ]
    units = make_units(groups, 30, rng=np.random.default_rng(2))

    by_role = units.groupby("role")
    assert (by_role["depth"].min()["kinematic"] > 0) and (
        by_role["depth"].max()["vector_error"] == 0
    )
    assert by_role["error_gain"].min()["vector_error"] > 0
    assert set(units.loc[units["role"] == "outcome", "outcome_coding"]) == {"failure"}
    assert units["error_latency"].isna().sum() == 10
    assert list(units.index) == list(range(30))


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"role": "mirror"}, "unit `role` must be one of"),
        ({"drift_rule": "hebbian"}, "`drift_rule` must be one of"),
        ({"outcome_coding": "value"}, "`outcome_coding` must be one of"),
        ({"fraction": 0.0}, "group `fraction` must be > 0"),
        ({"spiking": "bursty"}, "`spiking` must be 'poisson' or 'gamma'"),
        ({"gamma_shape": 0.0}, "`gamma_shape` must be > 0"),
    ],
)
def test_bad_groups_are_rejected(arguments, message):
    settings = {"area": "M1", "role": "kinematic", "fraction": 1.0} | arguments
    with pytest.raises(ErrsigError, match=message):
        UnitGroup(**settings)


def test_counts_vary_with_reward_only_in_outcome_units():
    session = sim.simulate("S3", rng=5, n_units=40, n_trials=400)
    truth = session.meta["truth"]["units"]
    counts = window_counts(session, "feedback_time", (0.05, 0.45))
    reward = session.trials["reward"].to_numpy()

    p_values = np.array(
        [
            stats.mannwhitneyu(counts[reward, unit], counts[~reward, unit]).pvalue
            for unit in range(session.n_units)
        ]
    )
    outcome = (truth["role"] == "outcome").to_numpy()
    assert (p_values[outcome] < 0.01).mean() > 0.8
    assert (p_values[~outcome] < 0.05).mean() < 0.2


def test_group_rate_and_depth_overrides_scale_the_same_draws():
    default = make_units(
        [UnitGroup("M1", "kinematic", 1.0)], 400, rng=np.random.default_rng(3)
    )
    strong = make_units(
        [UnitGroup("M1", "kinematic", 1.0, rate_median=24.0, depth_range=(0.8, 1.0))],
        400,
        rng=np.random.default_rng(3),
    )

    # The overrides rescale, they do not redraw: the seed's other draws stay.
    np.testing.assert_allclose(strong["baseline_rate"], 2 * default["baseline_rate"])
    np.testing.assert_array_equal(
        strong["preferred_direction"], default["preferred_direction"]
    )
    relative_depth = strong["depth"] / strong["baseline_rate"]
    assert relative_depth.min() >= 0.8 and relative_depth.max() <= 1.0
    assert relative_depth.max() - relative_depth.min() > 0.15


@pytest.mark.parametrize(
    "override", [{"rate_median": 0.0}, {"depth_range": (1.0, 0.5)}]
)
def test_bad_group_overrides_are_named(override):
    name = next(iter(override))
    with pytest.raises(ErrsigError, match=name):
        UnitGroup("M1", "kinematic", 1.0, **override)
