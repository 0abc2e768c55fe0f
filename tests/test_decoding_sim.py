"""Recovery of planted signals from simulated sessions (sim scenarios S1, S3, S4)."""

import numpy as np
import pytest

import errsig
import sim
from errsig.decoding import decode, decode_unit_curve
from sim.population import _response_kernel

N_TRIALS = 240
N_UNITS = 30


def simulate_binned(scenario, seed, align="feedback_time", window=(-0.2, 0.4)):
    session = sim.simulate(scenario, rng=seed, n_trials=N_TRIALS, n_units=N_UNITS)
    ds = errsig.bin_trials(session, align=align, window=window, bin_size=0.1)
    return session, ds


def oracle_r2(session, ds, area):
    """Best linear R² of the error from an area's planted error responses.

    Counts of unit i in a bin are baseline_i·Δ + (w_i · e) + Poisson noise, with
    w_i the planted error gain times the integral of the response kernel over
    the bin, along the preferred error direction. With infinitely many training
    trials the best linear decoder explains tr(Σ Wᵀ (W Σ Wᵀ + D)⁻¹ W Σ) / tr(Σ)
    of the error variance (Σ the error covariance, D the Poisson variances).
    The simulator adds shared and private noise on top, so this is an upper
    bound.
    """
    units = session.meta["truth"]["units"]
    units = units[units["area"] == area]
    covariance = np.cov(ds["error"].values.T)
    half = ds.attrs["bin_size"] / 2
    step = 0.001
    bounds = []
    for centre in ds["time"].values:
        times = np.arange(centre - half, centre + half, step) + step / 2
        integral = np.array(
            [
                _response_kernel(times - latency, np.full(times.shape, duration)).sum()
                * step
                for latency, duration in zip(
                    units["error_latency"], units["response_duration"], strict=True
                )
            ]
        )
        angle = units["preferred_error_direction"].to_numpy()
        weights = (units["error_gain"].to_numpy() * integral)[:, None] * np.c_[
            np.cos(angle), np.sin(angle)
        ]
        noise = np.diag(units["baseline_rate"].to_numpy() * 2 * half)
        signal = weights @ covariance @ weights.T
        explained = (
            covariance
            @ weights.T
            @ np.linalg.solve(signal + noise, weights @ covariance)
        )
        bounds.append(np.trace(explained) / np.trace(covariance))
    return np.asarray(bounds)


@pytest.fixture(scope="module")
def vector_error_session():
    return simulate_binned("S1", seed=0)


def test_error_recovered_from_vector_error_area(vector_error_session):
    session, ds = vector_error_session

    result = decode(ds, "error", n_perm=99, rng=0)

    pmd = result.sel(area="PMd")
    bound = oracle_r2(session, ds, "PMd")
    signal = bound > 0.2
    assert signal.any()
    # Cross-validated R² stays below the noiseless-decoder bound and reaches a
    # fair share of it with 240 trials.
    assert np.all(pmd["score"].values[signal] <= bound[signal] + 0.05)
    assert np.all(pmd["score"].values[signal] >= 0.3 * bound[signal])
    assert pmd["significant"].values[signal].all()
    before_feedback = ds["time"].values < 0
    assert not pmd["significant"].values[before_feedback].any()
    assert np.all(pmd["score"].values[before_feedback] < 0.05)
    # M1 holds kinematic, force and untuned units only.
    assert np.all(result["score"].sel(area="M1").values < 0.05)


def test_unit_curve_grows_with_error_units(vector_error_session):
    _, ds = vector_error_session
    peak = ds.sel(time=[0.15], method="nearest")

    curve = decode_unit_curve(peak, "error", n_units=[1, 3, 9], n_repeats=5, rng=0)

    mean = curve["score_mean"].sel(area="PMd").isel(time=0).values
    assert mean[0] < mean[1] < mean[2]


def test_outcome_recovered_from_outcome_areas():
    _, ds = simulate_binned("S3", seed=1)

    result = decode(ds, "reward", n_perm=99, rng=1)

    striatum = result.sel(area="striatum")
    after = ds["time"].values > 0.1
    assert striatum["significant"].values[after].any()
    assert striatum["auc"].values[after].max() > 0.75
    assert not striatum["significant"].values[ds["time"].values < 0].any()


def test_kinematic_units_give_no_gain_beyond_covariates():
    _, ds = simulate_binned("S4", seed=1, align="move_onset_time", window=(0.0, 0.4))

    plain = decode(ds, "error", n_perm=0)
    nested = decode(ds, "error", given=["kinematics", "force"], n_perm=99, rng=2)

    # Movement activity of velocity- and force-tuned units predicts the error
    # in a curl field (the confound), but adds nothing once the movement is in.
    assert plain["score"].max() > 0.1
    assert nested["score_given"].max() > 0.1
    assert not nested["significant"].any()
    assert nested["score"].attrs["metric"].startswith("gain in r2")
