"""Small synthetic trial-aligned datasets with known information content."""

import numpy as np
import xarray as xr


def learning_behaviour(rng, n_trials):
    """Errors and rewards of a baseline / force-field / washout session."""
    n_baseline = n_trials // 4
    n_washout = n_trials // 4
    phase = np.array(
        ["baseline"] * n_baseline
        + ["force_field"] * (n_trials - n_baseline - n_washout)
        + ["washout"] * n_washout
    )
    field = np.where(phase == "force_field", 0.02, 0.0)
    state = 0.0
    lateral = np.empty(n_trials)
    for trial in range(n_trials):
        lateral[trial] = field[trial] - state + rng.normal(0, 0.003)
        state = 0.98 * state + 0.1 * lateral[trial]
    along = rng.normal(0, 0.004, n_trials)
    angle = rng.choice(np.arange(8) * np.pi / 4, n_trials)
    error = np.stack(
        [
            along * np.cos(angle) - lateral * np.sin(angle),
            along * np.sin(angle) + lateral * np.cos(angle),
        ],
        axis=1,
    )
    magnitude = np.hypot(error[:, 0], error[:, 1])
    reward = rng.random(n_trials) < np.where(magnitude < 0.008, 0.85, 0.2)
    return error, reward, angle, phase


def information_dataset(
    rng,
    *,
    n_trials=200,
    n_units=4,
    n_time=5,
    error_gain=None,
    reward_gain=None,
    drift=0.0,
    baseline=2.0,
):
    """Poisson counts whose log rate is linear in the error and the reward.

    ``error_gain`` (n_units, n_time, 2) and ``reward_gain`` (n_units, n_time)
    give the planted coding; ``drift`` adds a slow shared trend over trials.
    """
    error, reward, angle, phase = learning_behaviour(rng, n_trials)
    log_rate = np.full((n_trials, n_units, n_time), np.log(baseline))
    if error_gain is not None:
        scaled = error / error.std(axis=0)
        log_rate += np.einsum("nc,utc->nut", scaled, np.asarray(error_gain))
    if reward_gain is not None:
        log_rate += (reward - reward.mean())[:, None, None] * np.asarray(reward_gain)
    trend = np.cumsum(rng.normal(0, 1, n_trials))
    trend = (trend - trend.mean()) / (trend.std() + 1e-12)
    log_rate += drift * trend[:, None, None]
    counts = rng.poisson(np.exp(log_rate)).astype(np.int32)
    return xr.Dataset(
        {
            "counts": (("trial", "unit", "time"), counts),
            "error": (("trial", "component"), error),
        },
        coords={
            "trial": np.arange(n_trials),
            "unit": np.arange(n_units),
            "area": ("unit", np.where(np.arange(n_units) < n_units // 2, "M1", "PMd")),
            "time": 0.02 * np.arange(n_time),
            "component": ["x", "y"],
            "reward": ("trial", reward),
            "target_angle": ("trial", angle),
            "phase": ("trial", phase),
            "trial_index": ("trial", np.arange(n_trials)),
        },
        attrs={"align": "feedback_time", "bin_size": 0.02},
    )
