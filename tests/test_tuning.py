"""Tests of errsig.tuning.tuning_drift: batched GLM, blocks, filter, errors."""

import warnings

import numpy as np
import pytest
import statsmodels.api as sm
import xarray as xr

from errsig import ColumnError, ErrsigError, InsufficientDataError, tuning_drift
from errsig.tuning import _coupling, _design, _drift, _irls
from errsig.tuning._design import unit_chunks, wrap_angle
from errsig.tuning._irls import fit_poisson_glm

TARGETS = np.arange(8) * np.pi / 4


def make_drift_dataset(
    rng,
    *,
    n_trials=240,
    rules=("stable",),
    areas=None,
    baseline_rate=2.5,
    depth=0.8,
    step_deg=None,
    n_bins=1,
):
    """A binned dataset whose units' preferred directions follow planted rules.

    Behaviour: a one-state learner (A=0.98, B=0.1) in a field that pushes the
    hand sideways (perpendicular to the reach) in the force-field phase, so the
    shown error decays over the block and flips in washout. Reward is 1 when
    |error| is below a radius that gives about 60% success, flipped on 10% of
    trials.

    Rules, per unit, for the change of the preferred direction θ after trial n:
    ``stable`` none; ``random_walk`` N(0, 3°); ``gradient`` −η e_n·d⊥(θ_n)
    (the error projected on the unit's perpendicular direction); ``reward_gated``
    (R_n − R̄_n) ξ_n where ξ_n ~ N(0, 12°) is the exploration the unit showed on
    trial n (its tuning on trial n is θ_n + ξ_n).
    """
    n_units = len(rules)
    step = {
        "stable": 0.0,
        "random_walk": np.radians(3.0),
        "gradient": 2.0,
        "reward_gated": np.radians(25.0),
    }
    if step_deg is not None:
        step = {**step, **step_deg}
    thirds = n_trials // 4
    phase = np.array(
        ["baseline"] * thirds
        + ["force_field"] * (n_trials - 2 * thirds)
        + ["washout"] * thirds
    )
    field = np.where(phase == "force_field", 1.0, 0.0)
    angle = rng.choice(TARGETS, n_trials)
    state = 0.0
    lateral = np.empty(n_trials)
    for trial in range(n_trials):
        lateral[trial] = 0.02 * (field[trial] - state) + rng.normal(0, 0.004)
        state = 0.98 * state + 0.1 * (field[trial] - state)
    along = rng.normal(0, 0.004, n_trials)
    error = np.c_[
        along * np.cos(angle) - lateral * np.sin(angle),
        along * np.sin(angle) + lateral * np.cos(angle),
    ]
    magnitude = np.hypot(error[:, 0], error[:, 1])
    reward = magnitude < np.quantile(magnitude, 0.6)
    reward ^= rng.random(n_trials) < 0.1
    expectation = np.empty(n_trials)
    running = 0.5
    for trial in range(n_trials):
        expectation[trial] = running
        running += 0.1 * (reward[trial] - running)

    preferred = np.empty((n_units, n_trials))
    shown = np.empty((n_units, n_trials))
    for unit, rule in enumerate(rules):
        theta = rng.uniform(-np.pi, np.pi)
        for trial in range(n_trials):
            preferred[unit, trial] = theta
            exploration = 0.0
            if rule == "reward_gated":
                exploration = rng.normal(0, np.radians(12.0))
            shown[unit, trial] = theta + exploration
            if rule == "random_walk":
                theta += rng.normal(0, step[rule])
            elif rule == "gradient":
                perpendicular = np.array([-np.sin(theta), np.cos(theta)])
                theta -= step[rule] * error[trial] @ perpendicular
            elif rule == "reward_gated":
                gate = reward[trial] - expectation[trial]
                theta += step[rule] / np.radians(12.0) * gate * exploration
    rate = np.exp(baseline_rate + depth * np.cos(angle[None] - shown)) / n_bins
    counts = rng.poisson(rate[..., None] * np.ones(n_bins)).transpose(1, 0, 2)
    ds = xr.Dataset(
        {
            "counts": (("trial", "unit", "time"), counts.astype(np.int32)),
            "error": (("trial", "component"), error),
        },
        coords={
            "trial": np.arange(n_trials),
            "unit": np.arange(n_units),
            "area": ("unit", list(areas) if areas is not None else ["M1"] * n_units),
            "time": 0.01 + 0.02 * np.arange(n_bins),
            "component": ["x", "y"],
            "target_angle": ("trial", angle),
            "phase": ("trial", phase),
            "reward": ("trial", reward),
            "trial_index": ("trial", np.arange(n_trials)),
        },
        attrs={"align": "feedback_time", "bin_size": 0.02, "source": "test"},
    )
    return ds, preferred


def _statsmodels_fit(counts, design):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return sm.GLM(counts, design, family=sm.families.Poisson()).fit(
                tol=1e-13, maxiter=300
            )
        except (ValueError, np.linalg.LinAlgError):
            return None


def test_batched_glm_matches_statsmodels_on_every_unit_and_window():
    rng = np.random.default_rng(11)
    rules = ["stable", "random_walk", "gradient", "reward_gated"] * 2
    ds, _ = make_drift_dataset(rng, n_trials=200, rules=rules, baseline_rate=1.0)
    # Nearly silent units: a handful of spikes, some windows without any, some
    # windows where a direction with spikes is missing (no finite estimate).
    silent = rng.poisson(0.04 * np.exp(2.5 * np.cos(ds["target_angle"].values)))
    counts = ds["counts"].values.copy()
    counts[:, 0, 0] = silent
    counts[:, 1, 0] = (rng.random(200) < 0.03).astype(np.int32)
    ds["counts"] = (("trial", "unit", "time"), counts)

    drift = tuning_drift(ds, window=30, step=10, n_boot=0)

    angle = ds["target_angle"].values
    design = np.c_[np.ones(200), np.cos(angle), np.sin(angle)]
    n_compared = n_flagged = 0
    for unit in range(counts.shape[1]):
        for window in range(drift.sizes["window"]):
            start = int(drift["window_start"][window])
            trials = slice(start, start + 30)
            reference = _statsmodels_fit(counts[trials, unit, 0], design[trials])
            ours = drift.isel(unit=unit, window=window)
            if bool(ours["converged"]):
                n_compared += 1
                np.testing.assert_allclose(ours["coef"], reference.params, atol=1e-6)
                np.testing.assert_allclose(ours["coef_se"], reference.bse, atol=1e-6)
            else:
                n_flagged += 1
                assert np.all(np.isnan(ours["coef"]))
                # No finite MLE: statsmodels fails, or its estimate runs off.
                assert (
                    reference is None
                    or not reference.converged
                    or np.abs(reference.params).max() > 15
                    or counts[trials, unit, 0].sum() == 0
                )
    assert n_compared > 100
    assert n_flagged >= 5


def test_batched_glm_with_covariate_and_weights_matches_statsmodels():
    rng = np.random.default_rng(3)
    n_obs = 80
    angle = rng.choice(TARGETS, n_obs)
    speed = rng.normal(0, 1, n_obs)
    design = np.c_[np.ones(n_obs), np.cos(angle), np.sin(angle), speed]
    counts = rng.poisson(np.exp(design @ [1.0, 0.4, -0.3, 0.2]))
    weights = rng.integers(0, 3, n_obs).astype(float)

    fit = fit_poisson_glm(design[None], counts[None, None], weights[None, None])

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = sm.GLM(
            counts, design, family=sm.families.Poisson(), freq_weights=weights
        ).fit(tol=1e-13)
    np.testing.assert_allclose(fit.coef[0, 0], reference.params, atol=1e-8)
    np.testing.assert_allclose(
        np.sqrt(np.diag(fit.cov[0, 0])), reference.bse, atol=1e-7
    )


def test_batched_glm_with_offset_matches_statsmodels():
    # Covariate terms held at fixed coefficients enter as an offset.
    rng = np.random.default_rng(4)
    n_obs, n_fits = 60, 3
    angle = rng.choice(TARGETS, n_obs)
    design = np.c_[np.ones(n_obs), np.cos(angle), np.sin(angle)]
    offset = rng.normal(0, 0.4, (n_fits, n_obs))
    counts = rng.poisson(np.exp(design @ [0.8, 0.5, 0.1] + offset))

    fit = fit_poisson_glm(design[None], counts[None], offset=offset[None])

    for member in range(n_fits):
        reference = sm.GLM(
            counts[member],
            design,
            family=sm.families.Poisson(),
            offset=offset[member],
        ).fit(tol=1e-13)
        np.testing.assert_allclose(fit.coef[0, member], reference.params, atol=1e-8)
        np.testing.assert_allclose(
            np.sqrt(np.diag(fit.cov[0, member])), reference.bse, atol=1e-7
        )
        np.testing.assert_allclose(fit.deviance[0, member], reference.deviance)


def test_planted_preferred_direction_and_wald_coverage():
    rng = np.random.default_rng(5)
    ds, preferred = make_drift_dataset(rng, n_trials=400, rules=["stable"] * 30)

    drift = tuning_drift(ds, window=40, step=40, n_boot=0)

    truth = preferred[:, :1]
    low = drift["preferred_direction_low"].values
    high = drift["preferred_direction_high"].values
    estimate = drift["preferred_direction"].values
    inside = np.abs(wrap_angle(truth - estimate)) <= (high - low) / 2
    assert drift["converged"].all()
    assert 0.9 <= inside.mean() <= 0.99
    np.testing.assert_allclose(drift["depth"].median(), 0.8, atol=0.05)


def test_block_comparison_finds_a_planted_shift_and_not_a_null_one():
    rng = np.random.default_rng(8)
    ds, _ = make_drift_dataset(rng, n_trials=360, rules=["stable"] * 40)
    counts = ds["counts"].values.copy()
    angle = ds["target_angle"].values
    force_field = ds["phase"].values == "force_field"
    shifted_rate = np.exp(2.5 + 0.8 * np.cos(angle - np.pi / 2))
    for unit in range(20):
        counts[force_field, unit, 0] = rng.poisson(shifted_rate[force_field])
        counts[~force_field, unit, 0] = rng.poisson(
            np.exp(2.5 + 0.8 * np.cos(angle[~force_field]))
        )
    ds["counts"] = (("trial", "unit", "time"), counts)

    drift = tuning_drift(ds, window=40, step=20, n_boot=100, rng=1)

    changed = drift["block_p_change"].sel(block="force_field_2").values
    assert (changed[:20] < 0.05).mean() >= 0.9
    np.testing.assert_allclose(
        drift["block_pd_change"].sel(block="force_field_2")[:20].median(),
        np.pi / 2,
        atol=0.1,
    )
    unchanged = drift["block_p_change"].sel(block="washout_2").values
    assert (unchanged[20:] < 0.05).mean() <= 0.15
    assert list(drift["block"].values) == [
        "baseline",
        "force_field_1",
        "force_field_2",
        "force_field_3",
        "washout_1",
        "washout_2",
        "washout_3",
    ]


@pytest.mark.parametrize("rotation", [0.3, -2.0, np.pi / 2])
def test_rotating_every_target_rotates_every_preferred_direction(rotation):
    rng = np.random.default_rng(12)
    ds, _ = make_drift_dataset(rng, n_trials=120, rules=["stable"] * 3)
    turned = ds.assign_coords(target_angle=ds["target_angle"] + rotation)

    drift = tuning_drift(ds, window=40, step=40, n_boot=0)
    turned_drift = tuning_drift(turned, window=40, step=40, n_boot=0)

    np.testing.assert_allclose(
        wrap_angle(turned_drift["preferred_direction"] - drift["preferred_direction"]),
        wrap_angle(np.full(drift["preferred_direction"].shape, rotation)),
        atol=1e-8,
    )
    np.testing.assert_allclose(turned_drift["depth"], drift["depth"], rtol=1e-8)


def test_bootstrap_window_intervals_cover_the_estimate():
    rng = np.random.default_rng(2)
    ds, _ = make_drift_dataset(rng, n_trials=120, rules=["stable"] * 3)

    drift = tuning_drift(ds, window=60, step=30, n_boot=50, interval="bootstrap", rng=0)

    estimate = drift["preferred_direction"]
    assert (drift["preferred_direction_low"] <= estimate).all()
    assert (drift["preferred_direction_high"] >= estimate).all()
    wald = tuning_drift(ds, window=60, step=30, n_boot=0)
    width = drift["preferred_direction_high"] - drift["preferred_direction_low"]
    wald_width = wald["preferred_direction_high"] - wald["preferred_direction_low"]
    np.testing.assert_allclose(width.median(), wald_width.median(), rtol=0.4)


def test_filter_tracks_a_random_walk_better_than_a_constant():
    rng = np.random.default_rng(4)
    ds, preferred = make_drift_dataset(
        rng, n_trials=300, rules=["random_walk"] * 6, step_deg={"random_walk": 0.08}
    )

    drift = tuning_drift(ds, method="filter", window=40)

    estimate = drift["preferred_direction"].values
    tracking_error = np.abs(wrap_angle(estimate - preferred))
    constant_error = np.abs(wrap_angle(preferred - preferred.mean(1, keepdims=True)))
    assert np.median(tracking_error) < 0.5 * np.median(constant_error)
    assert np.degrees(np.median(tracking_error)) < 15
    assert (drift["process_noise"] > 0).all()
    assert drift.sizes["trial"] == 300


def test_filter_chooses_little_process_noise_for_stable_units():
    rng = np.random.default_rng(6)
    ds, _ = make_drift_dataset(rng, n_trials=300, rules=["stable"] * 8)

    drift = tuning_drift(ds, method="filter")

    assert np.median(drift["process_noise"]) <= 1e-5


def test_epoch_and_covariate_enter_the_fit():
    rng = np.random.default_rng(9)
    ds, _ = make_drift_dataset(rng, n_trials=120, rules=["stable"] * 2, n_bins=4)
    ds["speed_proxy"] = ("trial", rng.normal(0, 1, 120))

    drift = tuning_drift(ds, epoch=(0.0, 0.04), covariates=["speed_proxy"], n_boot=0)

    assert list(drift["term"].values) == ["baseline", "cos", "sin", "speed_proxy"]
    assert drift.attrs["epoch_start"] == 0.0
    # Two of four bins: the baseline drops by log 2.
    full = tuning_drift(ds, n_boot=0)
    np.testing.assert_allclose(
        (full["baseline"] - drift["baseline"]).median(), np.log(2), atol=0.1
    )


# --- memory: chunks of units, small integer counts ---


def shrink_budgets(monkeypatch) -> list[int]:
    """Shrink every byte budget of errsig.tuning so that units come two at a time.

    Returns the list that collects how many chunks each split made.
    """
    monkeypatch.setattr(_drift, "WORK_BYTES", 1)
    monkeypatch.setattr(_coupling, "WORK_BYTES", 1)
    monkeypatch.setattr(_design, "EPOCH_WORK_BYTES", 1)
    monkeypatch.setattr(_irls, "WORK_BYTES", 20_000)  # a few fits per chunk
    n_chunks = []

    def counted(n_units, unit_bytes, budget):
        chunks = unit_chunks(n_units, unit_bytes, budget)
        n_chunks.append(len(chunks))
        return chunks

    for module in (_drift, _coupling, _design):
        monkeypatch.setattr(module, "unit_chunks", counted)
    return n_chunks


def test_unit_chunks_cover_every_unit_and_never_hold_one_alone():
    for n_units in range(1, 12):
        for size in range(1, 5):
            chunks = unit_chunks(n_units, unit_bytes=10, budget=10 * size)
            covered = np.concatenate([np.arange(n_units)[chunk] for chunk in chunks])
            np.testing.assert_array_equal(covered, np.arange(n_units))
            lengths = [chunk.stop - chunk.start for chunk in chunks]
            assert min(lengths) >= min(2, n_units)
            assert max(lengths) <= max(size, 2) + 1


@pytest.mark.parametrize(
    "settings",
    [
        {"n_boot": 20},
        {"n_boot": 20, "interval": "bootstrap", "window": 60, "step": 30},
        {"method": "filter", "n_boot": 0},
        {"epoch": (0.0, 0.04), "n_boot": 0},
    ],
    ids=["windows_and_blocks", "bootstrap_windows", "filter", "epoch"],
)
def test_chunks_of_units_give_the_numbers_of_one_chunk(monkeypatch, settings):
    rng = np.random.default_rng(21)
    rules = ["stable", "random_walk", "gradient", "reward_gated", "stable"]
    ds, _ = make_drift_dataset(rng, n_trials=160, rules=rules, n_bins=3)
    whole = tuning_drift(ds, rng=3, **settings)

    n_chunks = shrink_budgets(monkeypatch)
    chunked = tuning_drift(ds, rng=3, **settings)

    assert max(n_chunks) >= 2
    xr.testing.assert_identical(chunked, whole)


def test_small_integer_counts_give_the_numbers_of_int32_counts():
    rng = np.random.default_rng(22)
    ds, _ = make_drift_dataset(
        rng,
        n_trials=160,
        rules=["stable", "random_walk", "gradient"],
        n_bins=4,
        baseline_rate=4.5,
    )
    # Each bin fits in int8, but the sums over bins do not.
    assert ds["counts"].max() < 128 and ds["counts"].sum("time").max() > 127
    expected = {
        method: tuning_drift(ds, method=method, n_boot=10, rng=0)
        for method in ("glm", "filter")
    }

    for dtype in ("int8", "int16"):
        small = ds.assign(counts=ds["counts"].astype(dtype))
        for method, drift in expected.items():
            xr.testing.assert_identical(
                tuning_drift(small, method=method, n_boot=10, rng=0), drift
            )


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        ({"drop": "counts"}, ColumnError, "`counts`"),
        ({"drop": "target_angle"}, ColumnError, "'target_angle' is missing"),
        ({"method": "kalman"}, ErrsigError, "`method` must be"),
        ({"interval": "profile"}, ErrsigError, "`interval` must be"),
        ({"epoch": (5.0, 6.0)}, ErrsigError, "holds no time bin"),
        ({"covariates": ["speed"]}, ColumnError, "needs `kinematics`"),
        ({"covariates": ["nonsense"]}, ColumnError, "neither one of"),
        ({"window": 500}, InsufficientDataError, "at least 500 trials"),
        ({"interval": "bootstrap", "n_boot": 5}, ErrsigError, "at least 20"),
    ],
)
def test_bad_input_raises_with_a_helpful_message(change, error, match):
    rng = np.random.default_rng(0)
    ds, _ = make_drift_dataset(rng, n_trials=60, rules=["stable"])
    if "drop" in change:
        ds = ds.drop_vars(change.pop("drop"))
    with pytest.raises(error, match=match):
        tuning_drift(ds, **change)


def test_non_dataset_and_nan_angles_are_rejected():
    with pytest.raises(ErrsigError, match=r"must be the xarray\.Dataset"):
        tuning_drift(np.zeros((3, 3)))
    rng = np.random.default_rng(0)
    ds, _ = make_drift_dataset(rng, n_trials=60, rules=["stable"])
    angle = ds["target_angle"].values.copy()
    angle[3] = np.nan
    ds = ds.assign_coords(target_angle=("trial", angle))
    with pytest.raises(ErrsigError, match="non-finite"):
        tuning_drift(ds)
