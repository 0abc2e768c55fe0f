"""Shared fixtures for errsig's tests."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from errsig import Session

#: Real NWB files written by other people's tools (see its README).
REAL_NWB_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "real_nwb"


@pytest.fixture(params=[0, 1, 2])
def seed(request):
    """Seeds for checks that must hold whatever the random draw."""
    return request.param


def random_session(rng, n_units=5, n_trials=12, rate=20.0, duration=30.0):
    """A small session with Poisson spikes and evenly spaced trials."""
    trains = [
        np.sort(rng.uniform(0, duration, rng.poisson(rate * duration)))
        for _ in range(n_units)
    ]
    starts = np.linspace(0.5, duration - 2.0, n_trials)
    trials = pd.DataFrame(
        {
            "start_time": starts,
            "stop_time": starts + 1.5,
            "feedback_time": starts + rng.uniform(0.6, 0.9, n_trials),
            "target_angle": rng.choice(np.arange(8) * np.pi / 4, n_trials),
            "error_x": rng.normal(0, 0.01, n_trials),
            "error_y": rng.normal(0, 0.01, n_trials),
            "reward": rng.random(n_trials) < 0.6,
            "phase": ["baseline"] * (n_trials // 3)
            + ["force_field"] * (n_trials - 2 * (n_trials // 3))
            + ["washout"] * (n_trials // 3),
        }
    )
    units = pd.DataFrame({"area": rng.choice(["M1", "PMd"], n_units)})
    return Session.from_spike_trains(trains, units=units, trials=trials)


@pytest.fixture
def small_session():
    """A seeded random session of 5 units and 12 trials."""
    return random_session(np.random.default_rng(7))
