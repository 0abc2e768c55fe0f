"""Tests of the tuning-drift rules (sim.learning)."""

import numpy as np
import pytest

from errsig import ErrsigError
from sim.learning import drift_preferred_directions

N_TRIALS = 600


def behaviour(rng):
    """Errors, rewards and a compensation curve shaped like a session's."""
    error = rng.normal(0.0, 0.01, (N_TRIALS, 2))
    reward = rng.random(N_TRIALS) < 0.55
    expected = np.full(N_TRIALS, 0.55)
    compensation = np.r_[np.zeros(150), 1 - 0.9 ** np.arange(300), np.zeros(150)]
    compensation[450:] = compensation[449] * 0.97 ** np.arange(150)
    return {
        "error": error,
        "reward": reward,
        "expected_reward": expected,
        "compensation": compensation,
    }


def drift(rule, rate, n_units, seed):
    rng = np.random.default_rng(seed)
    inputs = behaviour(rng)
    paths = drift_preferred_directions(
        rng.uniform(-np.pi, np.pi, n_units),
        np.full(n_units, rule),
        np.full(n_units, rate),
        rng=rng,
        **inputs,
    )
    return paths, inputs


def test_stable_units_never_move():
    paths, _ = drift("stable", 0.0, 5, 0)

    assert np.all(np.diff(paths["preferred_direction"], axis=1) == 0)
    assert np.all(paths["exploration"] == 0)


def test_random_walk_is_diffusive_in_every_block(seed):
    rate = np.deg2rad(1.0)
    paths, _ = drift("random_walk", rate, 400, seed)
    direction = paths["preferred_direction"]

    # Mean-squared displacement grows linearly with lag, at rate**2 per trial,
    # the same in baseline, force field and washout.
    for block in (slice(0, 150), slice(150, 450), slice(450, 600)):
        segment = direction[:, block]
        for lag in (5, 20, 80):
            msd = np.mean((segment[:, lag:] - segment[:, :-lag]) ** 2)
            assert msd == pytest.approx(lag * rate**2, rel=0.2)


def test_gradient_follows_the_projected_signed_error():
    rate = 3.0
    paths, inputs = drift("gradient", rate, 20, 1)
    direction = paths["preferred_direction"]
    error = inputs["error"]

    perpendicular = np.stack([-np.sin(direction), np.cos(direction)], axis=-1)
    projected = np.einsum("utk,tk->ut", perpendicular, error)
    np.testing.assert_allclose(np.diff(direction, axis=1), rate * projected[:, :-1])


def test_reward_gated_keeps_exploration_in_proportion_to_surprise():
    rate = np.deg2rad(12.0)
    paths, inputs = drift("reward_gated", rate, 50, 2)
    explored = paths["exploration"]
    settled = paths["preferred_direction"] - explored
    step = np.diff(settled, axis=1)
    surprise = inputs["reward"] - inputs["expected_reward"]

    np.testing.assert_allclose(step, surprise[:-1] * explored[:, :-1])
    assert explored.std() == pytest.approx(rate, rel=0.05)
    # Nothing of the signed error beyond what reward carries.
    projected = inputs["error"][:-1, 0]
    correlation = np.corrcoef(step.ravel(), np.tile(projected, 50))[0, 1]
    assert abs(correlation) < 0.05


def test_mechanical_shift_tracks_the_compensation_and_reverts():
    rate = np.deg2rad(20.0)
    paths, inputs = drift("mechanical", rate, 3, 3)
    shift = paths["preferred_direction"] - paths["preferred_direction"][:, :1]

    np.testing.assert_allclose(shift, rate * inputs["compensation"] * np.ones((3, 1)))
    assert np.all(np.abs(shift[:, 440]) > np.deg2rad(15))
    assert np.all(np.abs(shift[:, -1]) < np.deg2rad(1))


def test_unknown_rule_is_rejected():
    rng = np.random.default_rng(0)
    with pytest.raises(ErrsigError, match="unknown drift rule"):
        drift_preferred_directions(
            np.zeros(1),
            np.array(["hebbian"]),
            np.zeros(1),
            rng=rng,
            **behaviour(rng),
        )
