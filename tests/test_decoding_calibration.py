"""False-positive rates of errsig.decoding's permutation tests on null data.

Neural activity drifts slowly and independently of behaviour; the error follows
a learning curve drawn from the adaptation model (errsig.stats pseudosessions of
a template session), so the observed behaviour is exchangeable with the
surrogates of the default null.
"""

import warnings

import numpy as np
import pytest
import xarray as xr
from scipy.stats import binomtest, kstest
from sklearn.model_selection import KFold

from errsig.decoding import decode
from errsig.stats import draw_pseudosessions
from tests._null_sessions import drifting_null_dataset

N_SEEDS = 200
N_TRIALS = 150
LEVEL = 0.05


def template_session(rng):
    """Baseline, force field and washout; the lateral error decays in the field."""
    trial = np.arange(N_TRIALS)
    phase = np.repeat(["baseline", "force_field", "washout"], [40, 70, 40])
    angle = rng.choice(np.arange(8) * np.pi / 4, N_TRIALS)
    lateral = (
        0.02 * (phase == "force_field") * np.exp(-(trial - 40) / 20)
        - 0.012 * (phase == "washout") * np.exp(-(trial - 110) / 10)
        + 0.003 * rng.normal(size=N_TRIALS)
    )
    along = 0.003 * rng.normal(size=N_TRIALS)
    error = np.c_[
        along * np.cos(angle) - lateral * np.sin(angle),
        along * np.sin(angle) + lateral * np.cos(angle),
    ]
    return xr.Dataset(
        {"error": (("trial", "component"), error)},
        coords={
            "component": ["x", "y"],
            "phase": ("trial", phase),
            "target_angle": ("trial", angle),
            "reward": ("trial", np.hypot(*error.T) < 0.008),
            "trial_index": ("trial", trial),
        },
    )


def drifting_counts(rng, n_units=3, n_bins=2, drift=1.0):
    """Poisson counts whose rates follow a slow ramp plus random walk."""
    ramp = np.linspace(-1, 1, N_TRIALS) * rng.choice([-1, 1])
    walk = 0.3 * np.cumsum(rng.normal(size=N_TRIALS)) / np.sqrt(N_TRIALS)
    log_rate = 1.0 + drift * np.outer(ramp + walk, np.abs(rng.normal(size=n_units)))
    return rng.poisson(np.exp(log_rate)[:, :, None] * np.ones(n_bins))


@pytest.fixture(scope="module")
def null_sessions():
    """One drifting null dataset per seed, its behaviour a pseudosession draw."""
    template = template_session(np.random.default_rng(2024))
    behaviour = draw_pseudosessions(template, N_SEEDS, rng=2025)
    sessions = []
    for seed in range(N_SEEDS):
        counts = drifting_counts(np.random.default_rng([seed, 11]))
        ds = template.assign_coords(
            reward=("trial", behaviour["reward"].values[seed]),
            area=("unit", ["M1"] * counts.shape[1]),
            time=[0.0, 0.02],
        )
        ds["error"] = (("trial", "component"), behaviour["error"].values[seed])
        ds["counts"] = (("trial", "unit", "time"), counts)
        sessions.append(ds)
    return sessions


def family_rejected(result):
    return bool(result["significant"].values.any())


def test_pseudosession_null_is_calibrated_under_drift(null_sessions):
    """Default null and blocked folds: FPR at the nominal level; shuffles are not."""
    rejected = {"default": [], "shuffled_kfold": []}
    shuffle_p = []
    for seed, ds in enumerate(null_sessions):
        default = decode(ds, "error_magnitude", n_perm=99, rng=seed)
        rejected["default"].append(family_rejected(default))
        with warnings.catch_warnings():
            shuffled = decode(
                ds,
                "error_magnitude",
                n_perm=99,
                null="shuffle",
                cv=KFold(5, shuffle=True, random_state=seed),
                rng=seed,
            )
            blocked_shuffle = decode(
                ds, "error_magnitude", n_perm=99, null="shuffle", rng=seed
            )
        rejected["shuffled_kfold"].append(family_rejected(shuffled))
        shuffle_p.append(float(blocked_shuffle["p"].min()))

    n_default = sum(rejected["default"])
    # Two-sided binomial test of the family-wise FPR against the nominal level.
    assert binomtest(n_default, N_SEEDS, LEVEL).pvalue > 0.001, n_default
    # Shuffled K-fold lets neighbouring trials leak the drift into the test set,
    # and the shuffle null cannot know: the FPR is inflated.
    n_leaky = sum(rejected["shuffled_kfold"])
    assert binomtest(n_leaky, N_SEEDS, LEVEL, alternative="greater").pvalue < 1e-4
    # With blocked folds the shuffle null is miscalibrated the other way: the
    # drift that does not generalise across blocks is absent from its
    # surrogates, and its p-values pile up near 1 (no power).
    assert kstest(shuffle_p, "uniform").pvalue < 1e-3
    assert "ignores trial order" in blocked_shuffle.attrs["null_note"]


def test_outcome_decoding_is_calibrated_without_drift():
    """Logistic decoding of a reward unrelated to stationary activity."""
    p_values = []
    for seed in range(N_SEEDS):
        rng = np.random.default_rng([seed, 12])
        counts = rng.poisson(3.0, size=(N_TRIALS, 3, 1))
        ds = xr.Dataset(
            {"counts": (("trial", "unit", "time"), counts)},
            coords={
                "reward": ("trial", rng.random(N_TRIALS) < 0.6),
                "area": ("unit", ["GPi"] * 3),
                "time": [0.0],
            },
        )
        result = decode(ds, "reward", n_perm=99, null="shuffle", rng=seed)
        p_values.append(float(result["p"].min()))

    n_rejected = int(np.sum(np.asarray(p_values) <= LEVEL))
    assert binomtest(n_rejected, N_SEEDS, LEVEL).pvalue > 0.001, n_rejected


def test_family_wise_false_positives_on_s0():
    """The simulator's null scenario, as for mutual information.

    S0 has no error or outcome coding; its shared slow latent is made slower
    and stronger than the default so that drifting units and the decaying error
    magnitude trend together within 120 trials. Default folds and null: the
    nominal rate. Shuffled K-fold with a trial shuffle: inflated.
    """
    rejected = {"default": 0, "shuffled": 0}
    for seed in range(N_SEEDS):
        ds = drifting_null_dataset(seed)
        default = decode(ds, "error_magnitude", n_perm=99, rng=seed)
        shuffled = decode(
            ds,
            "error_magnitude",
            cv=KFold(5, shuffle=True, random_state=seed),
            null="shuffle",
            n_perm=99,
            rng=seed,
        )
        rejected["default"] += family_rejected(default)
        rejected["shuffled"] += family_rejected(shuffled)

    # the central 95% of Binomial(200, 0.05) / 200 is [0.02, 0.08]
    assert 0.02 <= rejected["default"] / N_SEEDS <= 0.08
    assert binomtest(rejected["shuffled"], N_SEEDS, LEVEL).pvalue < 1e-4
    assert rejected["shuffled"] > rejected["default"]
