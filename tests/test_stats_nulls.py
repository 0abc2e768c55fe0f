"""Surrogate nulls (errsig.stats.null_targets) and pseudosessions."""

import warnings

import numpy as np
import pytest
import xarray as xr
from scipy import stats

from errsig import (
    ColumnError,
    ErrsigError,
    InsufficientDataError,
    NullAssumptionWarning,
)
from errsig.behavior import PUBLISHED_PARAMS, AdaptationParams, simulate
from errsig.stats import (
    NullDraw,
    draw_pseudosessions,
    null_targets,
    observed_target,
    permutation_pvalues,
    session_permutation,
)

ALPHA = 0.05
TARGETS = np.arange(8) * np.pi / 4

#: Two-rate learning (Smith et al. 2006) with noise in metres.
LEARNER = AdaptationParams(
    PUBLISHED_PARAMS["smith2006"].retention,
    PUBLISHED_PARAMS["smith2006"].learning_rate,
    planning_noise=0.0005,
    execution_noise=0.002,
)


def learning_session(rng, blocks=(40, 100, 40), field=0.02, reward_radius=0.006):
    """A binned-like dataset of force-field learning with known behaviour.

    Lateral error from the two-rate model through baseline / force field /
    washout, along-reach error as noise, reward when |error| is small (with 10%
    of outcomes flipped).
    """
    n_baseline, n_field, n_washout = blocks
    schedule = np.r_[np.zeros(n_baseline), np.full(n_field, field), np.zeros(n_washout)]
    n_trials = schedule.size
    lateral = simulate(schedule, LEARNER, rng=rng).error
    along = rng.normal(0.0, 0.003, n_trials)
    angle = rng.choice(TARGETS, n_trials)
    error = np.c_[
        along * np.cos(angle) - lateral * np.sin(angle),
        along * np.sin(angle) + lateral * np.cos(angle),
    ]
    success = np.hypot(lateral, along) < reward_radius
    reward = success ^ (rng.random(n_trials) < 0.1)
    phase = ["baseline"] * n_baseline + ["force_field"] * n_field
    phase += ["washout"] * n_washout
    return xr.Dataset(
        {"error": (("trial", "component"), error)},
        coords={
            "trial": np.arange(100, 100 + n_trials),
            "component": ["x", "y"],
            "target_angle": ("trial", angle),
            "phase": ("trial", phase),
            "reward": ("trial", reward),
            "trial_index": ("trial", np.arange(n_trials)),
        },
    )


def correlations(neural, targets):
    """Pearson correlation of one series with each row of ``targets``."""
    neural = (neural - neural.mean()) / neural.std()
    targets = np.asarray(targets, dtype=np.float64)
    centred = targets - targets.mean(axis=-1, keepdims=True)
    scale = targets.std(axis=-1) * targets.shape[-1]
    return centred @ neural / np.where(scale > 0, scale, np.inf)


def lateral_error(ds_or_error, angle):
    error = np.asarray(ds_or_error)
    return -error[..., 0] * np.sin(angle) + error[..., 1] * np.cos(angle)


@pytest.fixture(scope="module")
def session():
    return learning_session(np.random.default_rng(42))


# ------------------------------------------------------------- simple nulls


def test_shuffle_permutes_jointly(session):
    draws = null_targets(
        session, ["reward", "error_magnitude", "error"], 50, null="shuffle", rng=1
    )
    magnitude = observed_target(session, "error_magnitude")
    reward = observed_target(session, "reward")
    assert draws["error"].shape == (50, session.sizes["trial"], 2)
    for row_magnitude, row_reward in zip(
        draws["error_magnitude"], draws["reward"], strict=True
    ):
        order = np.argsort(row_magnitude)
        np.testing.assert_array_equal(np.sort(row_magnitude), np.sort(magnitude))
        np.testing.assert_array_equal(row_reward[order], reward[np.argsort(magnitude)])
    np.testing.assert_allclose(
        np.hypot(draws["error"][..., 0], draws["error"][..., 1]),
        draws["error_magnitude"],
    )


def test_shuffle_is_reproducible_and_seed_dependent(session):
    first = null_targets(session, "target_angle", 20, null="shuffle", rng=3)
    again = null_targets(session, "target_angle", 20, null="shuffle", rng=3)
    other = null_targets(session, "target_angle", 20, null="shuffle", rng=4)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_circular_shift_rotates_and_warns(session):
    values = observed_target(session, "error_magnitude")
    with pytest.warns(NullAssumptionWarning, match="stationary"):
        draws = null_targets(
            session, "error_magnitude", 30, null="circular_shift", rng=0
        )
    for row in draws:
        shift = int(np.flatnonzero(row == values[0])[0])
        assert shift != 0
        np.testing.assert_array_equal(row, np.roll(values, shift))


def test_linear_shift_windows():
    ds = xr.Dataset(
        coords={"trial": np.arange(10), "x": ("trial", np.arange(10) * 1.0)}
    )
    draw = null_targets(ds, "x", 4, null="linear_shift")
    assert isinstance(draw, NullDraw)
    assert draw.neural_trials.tolist() == [2, 3, 4, 5, 6, 7]
    assert draw.shifts.tolist() == [1, -1, 2, -2]
    np.testing.assert_array_equal(draw.observed, [2, 3, 4, 5, 6, 7])
    np.testing.assert_array_equal(draw.values[3], [0, 1, 2, 3, 4, 5])
    joint = null_targets(ds, ["x"], 3, null="linear_shift")
    assert joint["x"].shifts.tolist() == [1, -1, 2]


def test_linear_shift_false_positive_rate_with_a_stationary_target():
    # Drifting neural series against a stationary (white) target: the shift
    # null keeps its level.
    rng = np.random.default_rng(8)
    n_reps, n_trials = 300, 120
    target = rng.normal(size=(n_reps, n_trials))
    neural = np.cumsum(rng.normal(size=(n_reps, n_trials)), axis=1)
    rejected = []
    for series, values in zip(neural, target, strict=True):
        ds = xr.Dataset(coords={"trial": np.arange(n_trials), "v": ("trial", values)})
        with warnings.catch_warnings():
            # the stationarity check is itself a test: ~1 % of white targets
            warnings.simplefilter("ignore", NullAssumptionWarning)
            draw = null_targets(ds, "v", 40, null="linear_shift")
        window = series[draw.neural_trials]
        observed = correlations(window, draw.observed)
        null = correlations(window, draw.values)
        p = permutation_pvalues(observed, null, alternative="two-sided")
        rejected.append(p <= ALPHA)
    low, high = stats.binom.interval(0.95, n_reps, ALPHA)
    assert low / n_reps <= np.mean(rejected) <= high / n_reps


def test_linear_shift_warns_for_a_learning_curve_not_for_white_noise():
    rng = np.random.default_rng(4)
    trials = np.arange(200)
    decaying = 0.02 * np.exp(-trials / 40) + 0.002 * rng.normal(size=200)
    ds = xr.Dataset(
        coords={
            "trial": trials,
            "learning_curve": ("trial", decaying),
            "white": ("trial", rng.normal(size=200)),
        }
    )
    with pytest.warns(NullAssumptionWarning, match=r"learning_curve \(KPSS p"):
        null_targets(ds, "learning_curve", 20, null="linear_shift")
    with warnings.catch_warnings():
        warnings.simplefilter("error", NullAssumptionWarning)
        null_targets(ds, "white", 20, null="linear_shift")


def test_pseudosession_redraws_other_targets_from_their_values(session):
    draws = null_targets(session, "target_angle", 40, rng=5)
    assert draws.shape == (40, session.sizes["trial"])
    assert set(np.unique(draws)) <= set(TARGETS)
    # independent draws, not a permutation: counts per target vary across rows
    counts = np.array([[np.sum(row == t) for t in TARGETS] for row in draws])
    assert np.ptp(counts, axis=0).max() > 0


# ------------------------------------------------------------ pseudosessions


def test_pseudosession_dataset(session):
    pseudo = draw_pseudosessions(session, 300, rng=7)
    n_trials = session.sizes["trial"]
    assert pseudo["error"].dims == ("pseudosession", "trial", "component")
    assert pseudo["error"].shape == (300, n_trials, 2)
    assert pseudo["reward"].shape == (300, n_trials)
    assert pseudo["reward"].dtype == bool
    np.testing.assert_array_equal(pseudo["trial"], session["trial"])
    np.testing.assert_array_equal(pseudo["phase"], session["phase"])
    assert pseudo.attrs["model"] == "two_rate"
    assert len(pseudo.attrs["retention"]) == 2


def test_pseudosession_keeps_the_learning_curve(session):
    angle = session["target_angle"].to_numpy()
    pseudo = draw_pseudosessions(session, 400, rng=8)
    lateral = lateral_error(pseudo["error"], angle)

    # The mean pseudo learning curve follows the true one (the model's
    # noise-free response) within its sampling error.
    schedule = np.r_[np.zeros(40), np.full(100, 0.02), np.zeros(40)]
    noiseless = AdaptationParams(LEARNER.retention, LEARNER.learning_rate, 0.0, 0.0)
    truth = simulate(schedule, noiseless).error
    curve = lateral.mean(axis=0)
    blocks = [slice(40, 50), slice(50, 90), slice(90, 140), slice(140, 150)]
    for block in blocks:
        assert curve[block].mean() == pytest.approx(truth[block].mean(), abs=0.003)
    assert 0.013 < pseudo.attrs["perturbation_size"] < 0.027

    # Along-reach error keeps its spread, and the field size its sign.
    along = pseudo["error"][..., 0] * np.cos(angle) + pseudo["error"][..., 1] * np.sin(
        angle
    )
    assert float(along.std()) == pytest.approx(0.003, rel=0.2)


def test_pseudosession_keeps_reward_coupling_and_rates(session):
    pseudo = draw_pseudosessions(session, 400, rng=9)
    reward = pseudo["reward"].to_numpy()
    magnitude = np.hypot(pseudo["error"][..., 0], pseudo["error"][..., 1]).to_numpy()
    observed_reward = session["reward"].to_numpy()
    phase = session["phase"].to_numpy()
    for label in ("baseline", "force_field", "washout"):
        in_phase = phase == label
        assert reward[:, in_phase].mean() == pytest.approx(
            observed_reward[in_phase].mean(), abs=0.1
        )
    # reward given |error|: about 90% rewarded inside the radius, 10% outside
    inside = magnitude < 0.005
    outside = magnitude > 0.007
    assert reward[inside].mean() > 0.75
    assert reward[outside].mean() < 0.25


def test_pseudosession_handles_dropped_trials(session):
    kept = np.r_[0:50, 55:120, 121:180]
    ds = session.isel(trial=kept)
    pseudo = draw_pseudosessions(ds, 20, rng=10)
    assert pseudo["error"].shape == (20, kept.size, 2)
    np.testing.assert_array_equal(pseudo["trial_index"], kept)


def test_pseudosession_is_reproducible(session):
    first = null_targets(session, "error", 5, rng=11)
    again = null_targets(session, "error", 5, rng=11)
    np.testing.assert_array_equal(first, again)


def test_pseudosession_without_reward(session):
    ds = session.drop_vars("reward")
    pseudo = draw_pseudosessions(ds, 3, rng=0)
    assert "reward" not in pseudo
    with pytest.raises(ColumnError, match="target 'reward' is not in the dataset"):
        null_targets(ds, "reward", 3, rng=0)


# -------------------------------------------------------------- calibration


def test_pseudosession_null_is_calibrated_where_shuffles_are_not():
    """A drifting neuron unrelated to behaviour against learning errors.

    The neural series is AR(1) with ρ = 0.98 and independent of the behaviour;
    the errors decay through the force-field block. Correlating them, a trial
    shuffle calls the pair related far more often than α, while the
    pseudosession null keeps α (Harris 2020; Elber-Dorozko & Loewenstein 2018).
    """
    n_seeds, n_surrogates = 200, 99
    seeds = np.random.SeedSequence(2020).spawn(n_seeds)
    targets = ("lateral", "error_magnitude", "reward")
    rejected = {null: {t: [] for t in targets} for null in ("pseudosession", "shuffle")}
    for seed in seeds:
        rng = np.random.default_rng(seed)
        ds = learning_session(rng, blocks=(30, 90, 30))
        n_trials = ds.sizes["trial"]
        neural = np.empty(n_trials)
        neural[0] = rng.normal() / np.sqrt(1 - 0.98**2)
        for trial in range(1, n_trials):
            neural[trial] = 0.98 * neural[trial - 1] + rng.normal()
        angle = ds["target_angle"].to_numpy()

        for null in rejected:
            draws = null_targets(
                ds,
                ["error", "error_magnitude", "reward"],
                n_surrogates,
                null=null,
                rng=rng,
            )
            surrogates = {
                "lateral": lateral_error(draws["error"], angle),
                "error_magnitude": draws["error_magnitude"],
                "reward": draws["reward"],
            }
            observed = {
                "lateral": lateral_error(ds["error"], angle),
                "error_magnitude": observed_target(ds, "error_magnitude"),
                "reward": observed_target(ds, "reward"),
            }
            for target in targets:
                p = permutation_pvalues(
                    correlations(neural, observed[target]),
                    correlations(neural, surrogates[target]),
                    alternative="two-sided",
                )
                rejected[null][target].append(p <= ALPHA)

    low, high = stats.binom.interval(0.95, n_seeds, ALPHA)
    rates = {
        null: {t: float(np.mean(r)) for t, r in by_target.items()}
        for null, by_target in rejected.items()
    }
    for target in targets:
        assert low / n_seeds <= rates["pseudosession"][target] <= high / n_seeds, rates
    for target in ("lateral", "error_magnitude"):
        assert rates["shuffle"][target] > 2 * high / n_seeds, rates


# ------------------------------------------------------------------- errors


def test_unknown_null(session):
    with pytest.raises(ErrsigError, match="`null` must be one of"):
        null_targets(session, "reward", 3, null="bootstrap")


def test_unknown_target(session):
    with pytest.raises(ColumnError, match="target 'speed' is not in the dataset"):
        null_targets(session, "speed", 3, null="shuffle")
    with pytest.raises(ErrsigError, match="`target` must be a variable name"):
        null_targets(session, [], 3, null="shuffle")


def test_target_must_be_per_trial(session):
    ds = session.assign(kinematics=(("trial", "component"), np.zeros((180, 2))))
    with pytest.raises(ErrsigError, match="per-trial variables"):
        null_targets(ds, "kinematics", 3, null="shuffle")


def test_pseudosession_missing_columns(session):
    with pytest.raises(ColumnError, match="need error, phase in the dataset"):
        draw_pseudosessions(session.drop_vars(["error", "phase"]), 3)
    with pytest.raises(ColumnError, match="need target_angle"):
        null_targets(session.drop_vars("target_angle"), "error_magnitude", 3)


def test_pseudosession_few_trials(session):
    with pytest.raises(InsufficientDataError, match="need at least 30"):
        draw_pseudosessions(session.isel(trial=slice(0, 20)), 3)


def test_pseudosession_unknown_phase(session):
    phase = session["phase"].to_numpy().copy()
    phase[:5] = "error_clamp"
    with pytest.raises(ErrsigError, match=r"`phase` holds \['error_clamp'\]"):
        draw_pseudosessions(session.assign_coords(phase=("trial", phase)), 3)


def test_linear_shift_too_many_surrogates(session):
    with pytest.raises(InsufficientDataError, match="ask for at most 90 surrogates"):
        null_targets(session, "reward", 100, null="linear_shift")


def test_no_trial_dimension():
    with pytest.raises(ErrsigError, match="no `trial` dimension"):
        null_targets(xr.Dataset(), "reward", 3, null="shuffle")


def test_joint_pseudosession_with_new_targets_turns_the_error(session):
    joint = null_targets(session, ["error", "target_angle"], 20, rng=12)
    alone = null_targets(session, "error", 20, rng=12)
    angle = session["target_angle"].to_numpy()
    # same pseudosessions: the same lateral error relative to each reach
    np.testing.assert_allclose(
        lateral_error(joint["error"], joint["target_angle"]),
        lateral_error(alone, angle),
        atol=1e-15,
    )
    np.testing.assert_allclose(
        np.hypot(joint["error"][..., 0], joint["error"][..., 1]),
        np.hypot(alone[..., 0], alone[..., 1]),
    )


def test_pseudosession_with_missing_errors(session):
    error = session["error"].to_numpy().copy()
    error[[3, 60, 61, 150]] = np.nan
    ds = session.assign(error=(("trial", "component"), error))
    pseudo = draw_pseudosessions(ds, 10, rng=13)
    assert np.isfinite(pseudo["error"]).all()
    assert pseudo.attrs["perturbation_size"] > 0.01


def test_shifts_follow_session_order():
    values = np.arange(12.0)
    scrambled = np.random.default_rng(0).permutation(12)
    ds = xr.Dataset(
        coords={
            "trial": scrambled,
            "trial_index": ("trial", scrambled),
            "v": ("trial", values[scrambled]),
        }
    )
    draw = null_targets(ds, "v", 4, null="linear_shift")
    # in session order: window of trials 2..9, shifted by +1, -1, +2, -2
    np.testing.assert_array_equal(
        ds["trial_index"].values[draw.neural_trials], range(2, 10)
    )
    np.testing.assert_array_equal(draw.observed, range(2, 10))
    np.testing.assert_array_equal(draw.values[0], range(3, 11))
    with pytest.warns(NullAssumptionWarning):
        rotated = null_targets(ds, "v", 5, null="circular_shift", rng=1)
    in_session_order = rotated[:, np.argsort(scrambled)]
    for row in in_session_order:
        shift = int((12 - row[0]) % 12)
        assert shift != 0
        np.testing.assert_array_equal(row, np.roll(values, shift))


def test_target_of_the_wrong_type(session):
    with pytest.raises(ErrsigError, match="`target` must be a variable name"):
        null_targets(session, 5, 3, null="shuffle")


# ------------------------------------------------------- session permutation


def test_session_permutation_aligns_phase_by_phase():
    rng = np.random.default_rng(14)
    sessions = [
        learning_session(rng, blocks=blocks)
        for blocks in [(30, 80, 30), (35, 70, 40), (32, 90, 31)]
    ]
    draws = session_permutation(sessions, ["error_magnitude", "reward"])
    assert len(draws) == 3
    first = draws[0]["error_magnitude"]
    # 30 baseline + 70 force-field + 30 washout trials in common
    assert first.values.shape == (2, 130)
    assert first.sources.tolist() == [1, 2]
    phase = sessions[0]["phase"].to_numpy()[first.neural_trials]
    assert (phase[:30] == "baseline").all() and (phase[30:100] == "force_field").all()
    donor = sessions[2]
    donor_trials = draws[2]["reward"].neural_trials
    np.testing.assert_array_equal(
        first.values[1], observed_target(donor, "error_magnitude")[donor_trials]
    )
    np.testing.assert_array_equal(
        first.observed,
        observed_target(sessions[0], "error_magnitude")[first.neural_trials],
    )


def learning_curve_session(rng, n_field):
    """A light session: an exponential learning curve in noise, with phases."""
    curve = np.r_[np.zeros(20), np.exp(-np.arange(n_field) / 15.0), np.zeros(20)]
    phase = ["baseline"] * 20 + ["force_field"] * n_field + ["washout"] * 20
    values = curve + 0.3 * rng.normal(size=curve.size)
    return xr.Dataset(
        coords={
            "trial": np.arange(curve.size),
            "phase": ("trial", phase),
            "v": ("trial", values),
        }
    )


def test_session_permutation_false_positive_rate():
    # Groups of 10 sessions, each with its own learning curve; the first
    # session's drifting neuron is tested against its behaviour with the 9
    # others as surrogates: under the null P(p <= 0.1) is exactly 1 / 10.
    rng = np.random.default_rng(15)
    n_groups, n_sessions, level = 200, 10, 0.1
    rejected = []
    for _ in range(n_groups):
        sessions = [
            learning_curve_session(rng, n_field=int(rng.integers(50, 70)))
            for _ in range(n_sessions)
        ]
        draw = session_permutation(sessions, "v")[0]
        neural = np.cumsum(rng.normal(size=draw.neural_trials.size))
        # |r| against |r|: doubling a one-sided p could never reach 0.1
        p = permutation_pvalues(
            np.abs(correlations(neural, draw.observed)),
            np.abs(correlations(neural, draw.values)),
        )
        rejected.append(p <= level)
    low, high = stats.binom.interval(0.95, n_groups, level)
    assert low / n_groups <= np.mean(rejected) <= high / n_groups


def test_session_permutation_errors(session):
    with pytest.raises(ErrsigError, match="at least 3 sessions"):
        session_permutation([session, session], "reward")
    with pytest.raises(ErrsigError, match="some sessions have a `phase`"):
        session_permutation([session, session, session.drop_vars("phase")], "reward")
    only_field = session.isel(trial=session["phase"] == "force_field")
    with pytest.raises(InsufficientDataError, match="no trials can be aligned"):
        session_permutation(
            [session, session, only_field.isel(trial=slice(0, 0))], "reward"
        )


def test_reward_model_equals_scikit_learn_logistic_regression():
    from sklearn.linear_model import LogisticRegression

    from errsig.stats._pseudosession import REWARD_MODEL_C, fit_logistic

    rng = np.random.default_rng(16)
    features = np.c_[rng.normal(size=300), rng.random(300) < 0.5]
    features = np.c_[features, 1 - features[:, 1]]
    outcome = rng.random(300) < 1 / (1 + np.exp(-(2.0 * features[:, 0] - 0.5)))
    ours = fit_logistic(features, outcome, penalty=1 / REWARD_MODEL_C)
    reference = LogisticRegression(C=REWARD_MODEL_C, fit_intercept=False, tol=1e-10)
    reference.fit(features, outcome)
    np.testing.assert_allclose(ours, reference.coef_[0], atol=1e-5)
