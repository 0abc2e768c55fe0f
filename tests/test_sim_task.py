"""Tests of the simulated reaching task (sim.task)."""

import numpy as np
import pytest
from scipy import integrate, stats

from errsig import ErrsigError
from errsig.behavior import AdaptationParams
from sim.task import TaskConfig, minimum_jerk_speed, simulate_task


@pytest.fixture(scope="module")
def session():
    return simulate_task(TaskConfig(), rng=0)


def test_naive_deflection_matches_an_ode_solver():
    config = TaskConfig()

    def arm(time, state):
        speed = minimum_jerk_speed(
            time, config.reach_distance, config.movement_duration
        )
        position, velocity = state
        force = config.field_strength * speed
        return [
            velocity,
            (force - config.arm_damping * velocity - config.arm_stiffness * position)
            / config.arm_mass,
        ]

    solution = integrate.solve_ivp(arm, (0, 1.0), [0, 0], max_step=0.001, rtol=1e-8)
    result = simulate_task(config, rng=0)
    naive = np.abs(result.truth["perturbation"]).max()

    assert naive == pytest.approx(solution.y[0].max(), rel=1e-3)
    assert 0.015 < naive < 0.03  # science.md: 1.5-3 cm early in the field


@pytest.mark.parametrize("direction", ["cw", "ccw"])
def test_noiseless_adaptation_curve_has_the_published_sizes(direction):
    quiet = AdaptationParams((0.59, 0.992), (0.21, 0.02), 0.0, 0.0)
    config = TaskConfig(field_direction=direction, adaptation=quiet, extent_noise=0)
    lateral = simulate_task(config, rng=0).truth["arm_lateral_error"].to_numpy()
    sign = 1 if direction == "ccw" else -1

    assert np.all(lateral[:150] == 0)
    assert 0.015 < sign * lateral[150] < 0.03  # early in the field: 1.5-3 cm
    assert sign * lateral[449] < 0.008  # late: below 0.8 cm
    assert sign * lateral[450] < -0.01  # mirror-image after-effect
    assert abs(lateral[-1]) < abs(lateral[450]) / 2


@pytest.mark.parametrize("direction", ["cw", "ccw"])
def test_noisy_adaptation_curve(direction, seed):
    result = simulate_task(TaskConfig(field_direction=direction), rng=seed)
    lateral = result.truth["arm_lateral_error"].to_numpy()
    sign = 1 if direction == "ccw" else -1

    assert sign * lateral[150:155].mean() > 0.012
    assert np.abs(lateral[400:450]).mean() < 0.008
    assert sign * lateral[450:453].mean() < -0.007
    assert np.abs(lateral[-30:]).mean() < 0.008


def test_trial_events_are_ordered(session):
    trials = session.trials
    order = [
        "start_time",
        "go_cue_time",
        "move_onset_time",
        "feedback_time",
        "stop_time",
    ]

    assert np.all(np.diff(trials[order].to_numpy(), axis=1) > 0)
    assert np.all(
        trials["start_time"].to_numpy()[1:] > trials["stop_time"].to_numpy()[:-1]
    )
    assert list(trials["phase"].unique()) == ["baseline", "force_field", "washout"]
    assert trials["reward"].dtype == bool
    counts = trials["target_angle"].round(6).value_counts()
    assert len(counts) == 8 and counts.max() - counts.min() <= 1


def test_shown_error_is_lateral_plus_extent_plus_jump():
    result = simulate_task(TaskConfig(jump_probability=0.5), rng=3)
    trials, truth = result.trials, result.truth
    angle = trials["target_angle"].to_numpy()
    error = trials[["error_x", "error_y"]].to_numpy()
    jump = truth[["cursor_jump_x", "cursor_jump_y"]].to_numpy()

    lateral = -np.sin(angle) * error[:, 0] + np.cos(angle) * error[:, 1]
    along = np.cos(angle) * error[:, 0] + np.sin(angle) * error[:, 1]
    jump_lateral = -np.sin(angle) * jump[:, 0] + np.cos(angle) * jump[:, 1]
    jump_along = np.cos(angle) * jump[:, 0] + np.sin(angle) * jump[:, 1]

    np.testing.assert_allclose(lateral, truth["shown_lateral_error"], atol=1e-12)
    np.testing.assert_allclose(
        lateral - jump_lateral, truth["arm_lateral_error"], atol=1e-12
    )
    np.testing.assert_allclose(along - jump_along, truth["extent_error"], atol=1e-12)
    assert 0.4 < (np.abs(jump).sum(axis=1) > 0).mean() < 0.6


def test_cursor_jumps_decorrelate_shown_error_from_the_arm():
    plain = simulate_task(TaskConfig(), rng=4).truth
    jumped = simulate_task(TaskConfig(jump_probability=0.5), rng=4).truth

    def correlation(truth):
        return np.corrcoef(truth["arm_lateral_error"], truth["shown_lateral_error"])[
            0, 1
        ]

    assert correlation(plain) == pytest.approx(1.0)
    assert correlation(jumped) < 0.9


def test_staircase_holds_the_success_rate(seed):
    truth = simulate_task(TaskConfig(reward_rule="threshold"), rng=seed).truth

    # Weighted up-down: hits settle near the 55 % target although errors shrink.
    assert truth["hit"].iloc[100:].mean() == pytest.approx(0.55, abs=0.08)
    radius = truth["acceptance_radius"].to_numpy()
    assert radius[400:450].mean() < radius[150:200].mean()


def test_threshold_reward_follows_hits_and_random_reward_does_not():
    threshold = simulate_task(TaskConfig(reward_rule="threshold"), rng=5)
    random = simulate_task(TaskConfig(reward_rule="random"), rng=5)
    size = np.hypot(random.trials["error_x"], random.trials["error_y"])

    np.testing.assert_array_equal(threshold.trials["reward"], threshold.truth["hit"])
    rewarded = random.trials["reward"].to_numpy()
    test = stats.mannwhitneyu(size[rewarded], size[~rewarded])
    assert test.pvalue > 0.001
    assert random.trials["reward"].mean() == pytest.approx(0.55, abs=0.06)


def test_expected_reward_is_an_exponential_average():
    result = simulate_task(TaskConfig(), rng=6)
    reward = result.trials["reward"].to_numpy().astype(float)
    expected = result.truth["expected_reward"].to_numpy()

    np.testing.assert_allclose(
        expected[1:], expected[:-1] + 0.1 * (reward[:-1] - expected[:-1])
    )


def test_behaviour_is_sampled_and_follows_the_physics(session):
    position = session.behavior["hand_position"]
    velocity = session.behavior["hand_velocity"]
    force = session.behavior["hand_force"]
    trials, truth = session.trials, session.truth

    assert np.median(np.diff(position.times)) == pytest.approx(0.01)
    # The hand reaches the target (10 cm) by the end of the reach.
    end = np.searchsorted(position.times, trials["feedback_time"].to_numpy()) - 1
    reach = np.hypot(*position.data[end].T)
    assert np.all(np.abs(reach - 0.10) < 0.01)
    # The curl force is perpendicular to velocity, |F| = b |v| in the field, 0 out.
    in_field = np.isin(
        np.searchsorted(trials["start_time"].to_numpy(), force.times) - 1,
        np.flatnonzero(truth["field_strength"].to_numpy() != 0),
    )
    speed = np.hypot(*velocity.data.T)
    magnitude = np.hypot(*force.data.T)
    np.testing.assert_allclose(magnitude[in_field], 15 * speed[in_field], rtol=1e-9)
    assert np.all(magnitude[~in_field] == 0)
    dot = np.einsum("ij,ij->i", force.data, velocity.data)
    np.testing.assert_allclose(dot, 0, atol=1e-9)


def test_bad_task_settings_are_rejected():
    with pytest.raises(ErrsigError, match="`reward_rule` must be one of"):
        TaskConfig(reward_rule="sometimes")
    with pytest.raises(ErrsigError, match="`field_direction` must be"):
        TaskConfig(field_direction="up")
    with pytest.raises(ErrsigError, match="at least 100 Hz"):
        TaskConfig(sampling_rate=50)
    with pytest.raises(ErrsigError, match="block lengths"):
        TaskConfig(n_baseline=-1)
