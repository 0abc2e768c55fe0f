"""mutual_information against the simulator's ground truth, and its calibration."""

import numpy as np
import pytest
import xarray as xr
from scipy.stats import binom

import errsig
from errsig.information import mutual_information
from tests._null_sessions import drifting_null_dataset

sim = pytest.importorskip("sim")

BIN = 0.05


def feedback_dataset(scenario, seed, **options):
    session = sim.simulate(scenario, rng=seed, **options)
    session.behavior.clear()  # only the counts and the trial variables are used
    dataset = errsig.bin_trials(
        session, align="feedback_time", window=(-0.1, 0.4), bin_size=BIN
    )
    return dataset, session.meta["truth"]["units"]


def test_s1_vector_error_units_found_at_their_latency():
    dataset, truth = feedback_dataset("S1", 0, n_trials=600, n_units=30)
    result = mutual_information(
        dataset, "error", correction="cluster", n_perm=200, rng=1
    )
    error_units = (truth["role"] == "vector_error").to_numpy()
    called = result["significant"].any("time").to_numpy()
    assert called[error_units].mean() >= 0.9
    assert called[~error_units].sum() <= 1

    # the onset bin holds the planted latency, give or take one bin
    onset = result["onset_latency"].to_numpy()[error_units & called]
    planted = truth["error_latency"].to_numpy()[error_units & called]
    assert np.all(np.abs(onset - (planted + BIN / 2)) <= BIN + 1e-9)


def test_s1_onset_bootstrap_intervals_hold_the_planted_latency():
    dataset, truth = feedback_dataset("S1", 0, n_trials=600, n_units=30)
    result = mutual_information(
        dataset, "error", correction="cluster", n_perm=200, rng=1, n_boot=40
    )
    error_units = (truth["role"] == "vector_error").to_numpy()
    planted = truth["error_latency"].to_numpy() + BIN / 2
    low = result["onset_latency_low"].to_numpy()
    high = result["onset_latency_high"].to_numpy()
    inside = (low - 1e-9 <= planted) & (planted <= high + 1e-9)
    assert inside[error_units].mean() >= 0.8
    assert (high[error_units] - low[error_units] <= 4 * BIN + 1e-9).mean() >= 0.8
    detected = result["onset_detected"].to_numpy()
    assert detected[error_units].mean() >= 0.9
    assert detected[~error_units].mean() <= 0.1

    # the population estimate of PMd starts with its earliest error units
    by_area = mutual_information(
        dataset, "error", by="area", correction="cluster", n_perm=200, rng=1, n_boot=40
    ).sel(area="PMd")
    earliest = planted[error_units].min()
    assert by_area["onset_latency_low"] - 1e-9 <= earliest + BIN
    assert earliest - BIN <= by_area["onset_latency_high"] + 1e-9
    assert by_area["onset_detected"] == 1.0


def test_s3_outcome_units_found_and_not_called_error_units():
    dataset, truth = feedback_dataset("S3", 1, n_trials=600, n_units=30)
    outcome_units = (truth["role"] == "outcome").to_numpy()

    reward = mutual_information(
        dataset, "reward", correction="cluster", n_perm=200, rng=2
    )
    called = reward["significant"].any("time").to_numpy()
    assert called[outcome_units].mean() >= 0.9
    assert called[~outcome_units].sum() <= 1

    error = mutual_information(
        dataset,
        "error",
        given="error_magnitude",
        correction="cluster",
        n_perm=200,
        rng=3,
    )
    assert not error["significant"].any("time").to_numpy()[outcome_units].any()


def test_s4_movement_units_not_called_error_units_given_kinematics_and_force():
    # S4 has velocity- and force-tuned units: condition on both. The rate of
    # false sessions over 16-20 seeds is in docs/validation-information.md.
    session = sim.simulate("S4", rng=2, n_trials=400, n_units=20)
    dataset = errsig.bin_trials(
        session, align="move_onset_time", window=(0.0, 0.5), bin_size=BIN
    )
    result = mutual_information(
        dataset,
        "error",
        given=["kinematics", "force"],
        correction="cluster",
        n_perm=200,
        rng=4,
    )
    assert not result["significant"].any()


def test_conditioning_on_kinematics_removes_a_planted_confound():
    # units follow the hand velocity of the next bin (they lead the movement);
    # the error follows the velocity
    rng = np.random.default_rng(11)
    n_trials, n_units, n_time = 400, 3, 4
    velocity = rng.normal(size=(n_trials, n_time, 2))
    error = 0.01 * velocity.mean(axis=1) + 0.002 * rng.normal(size=(n_trials, 2))
    leading = np.roll(velocity[:, :, 0], -1, axis=1)
    rate = np.exp(1.0 + 0.6 * leading[:, None, :]) * np.ones((1, n_units, 1))
    dataset = _dataset(rng.poisson(rate), error)
    dataset["kinematics"] = (("trial", "time", "component"), velocity)

    plain = mutual_information(dataset, "error", null="shuffle", n_perm=99, rng=0)
    assert plain["significant"].all()
    conditional = mutual_information(
        dataset, "error", given="kinematics", null="shuffle", n_perm=99, rng=0
    )
    assert not conditional["significant"].any()


def _dataset(counts, error):
    n_trials, n_units, n_time = counts.shape
    return xr.Dataset(
        {
            "counts": (("trial", "unit", "time"), counts),
            "error": (("trial", "component"), error),
        },
        coords={
            "trial": np.arange(n_trials),
            "unit": np.arange(n_units),
            "area": ("unit", ["M1"] * n_units),
            "time": BIN * np.arange(n_time),
            "component": ["x", "y"],
        },
    )


N_SEEDS = 200


def test_family_wise_false_positives_on_s0():
    """Default null: nominal rate; trial shuffle: inflated (slow drift x learning).

    The shared slow latent is made slower and stronger than S0's default so that
    the nonsense correlation between drifting units and the decaying error
    magnitude shows within 120 trials (kept short: the pseudosession null fits
    the adaptation model to every session).
    """
    false_positives = {"pseudosession": 0, "shuffle": 0}
    for seed in range(N_SEEDS):
        dataset = drifting_null_dataset(seed)
        for null in false_positives:
            result = mutual_information(
                dataset, "error_magnitude", null=null, n_perm=100, rng=seed
            )
            false_positives[null] += bool(result["significant"].any())

    # the central 95% of Binomial(200, 0.05) / 200: [0.02, 0.08]
    interval = _binomial_interval(N_SEEDS, 0.05)
    assert interval[0] <= false_positives["pseudosession"] / N_SEEDS <= interval[1]
    assert false_positives["shuffle"] / N_SEEDS > interval[1]


def _binomial_interval(n, p):
    return binom.ppf(0.025, n, p) / n, binom.ppf(0.975, n, p) / n
