"""Tests of sim.simulate and the named scenarios."""

import numpy as np
import pandas as pd
import pytest

import sim
from errsig import ErrsigError, Session, bin_trials
from sim.scenarios import ALIASES, SCENARIOS

TRUTH_UNIT_COLUMNS = [
    "area",
    "role",
    "drift_rule",
    "preferred_direction",
    "baseline_rate",
    "depth",
    "error_gain",
    "preferred_error_direction",
    "error_latency",
    "magnitude_gain",
    "outcome_gain",
]
TRIAL_COLUMNS = [
    "start_time",
    "go_cue_time",
    "move_onset_time",
    "feedback_time",
    "stop_time",
    "target_angle",
    "phase",
    "error_x",
    "error_y",
    "reward",
]


@pytest.fixture(scope="module")
def error_session():
    return sim.simulate("S1", rng=21, n_units=45, n_trials=480)


def test_same_seed_same_session_bit_for_bit():
    first = sim.simulate("mixed", rng=7, n_units=30, n_trials=48)
    second = sim.simulate("mixed", rng=7, n_units=30, n_trials=48)
    other = sim.simulate("mixed", rng=8, n_units=30, n_trials=48)

    assert first.equals(second)
    for name, array in first.meta["truth"]["unit_trial"].items():
        np.testing.assert_array_equal(array, second.meta["truth"]["unit_trial"][name])
    pd.testing.assert_frame_equal(
        first.meta["truth"]["units"], second.meta["truth"]["units"]
    )
    assert not first.equals(other)


def test_streams_are_independent_of_population_size_and_chunking():
    small = sim.simulate("S1", rng=3, n_units=8, n_trials=64)
    large = sim.simulate("S1", rng=3, n_units=16, n_trials=64, chunk_trials=7)

    # The behaviour has its own stream: more units do not change it.
    pd.testing.assert_frame_equal(small.trials, large.trials)
    np.testing.assert_array_equal(
        small.behavior["hand_position"].data, large.behavior["hand_position"].data
    )
    pd.testing.assert_frame_equal(
        small.meta["truth"]["trials"], large.meta["truth"]["trials"]
    )


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_every_scenario_returns_a_session_with_its_truth(name):
    session = sim.simulate(name, rng=0, n_units=12, n_trials=40)
    truth = session.meta["truth"]

    assert isinstance(session, Session)
    assert truth["scenario"] == name
    assert list(session.units.columns) == ["area"]
    assert list(session.units.index) == list(range(12))
    assert set(TRIAL_COLUMNS) <= set(session.trials.columns)
    assert set(TRUTH_UNIT_COLUMNS) <= set(truth["units"].columns)
    assert truth["units"].index.equals(session.units.index)
    assert truth["trials"].index.equals(session.trials.index)
    for array in truth["unit_trial"].values():
        assert array.shape == (12, 40)
    assert set(session.behavior) == {"hand_position", "hand_velocity", "hand_force"}
    assert SCENARIOS[name].description in sim.list_scenarios()["description"].tolist()


def test_aliases_and_case_resolve_to_the_same_scenario():
    by_alias = sim.simulate("vector_error", rng=1, n_units=6, n_trials=20)
    by_name = sim.simulate("s1", rng=1, n_units=6, n_trials=20)

    assert by_alias.equals(by_name)
    assert ALIASES["null"] == "S0" and ALIASES["demo"] == "mixed"


def test_null_scenario_plants_no_error_or_outcome_code():
    truth = sim.simulate("null", rng=2, n_units=40, n_trials=20).meta["truth"]["units"]

    assert set(truth["role"]) <= {"kinematic", "force", "null"}
    assert (truth[["error_gain", "magnitude_gain", "outcome_gain"]] == 0).all().all()
    assert set(truth["drift_rule"]) == {"stable"}


def test_overrides_reach_the_task_and_the_latent():
    session = sim.simulate(
        "S0", rng=4, n_units=4, n_trials=40, field_direction="ccw", slow_correlation=0.5
    )
    truth = session.meta["truth"]

    assert truth["field_direction"] == "ccw"
    assert truth["trials"]["field_strength"].max() == 15.0


def test_vector_error_units_are_recovered_by_regression(error_session):
    truth = error_session.meta["truth"]["units"]
    dataset = bin_trials(error_session, window=(0.0, 0.5), bin_size=0.01)
    counts = dataset["counts"].to_numpy().astype(float)  # trial, unit, time
    error = dataset["error"].to_numpy()
    design = np.c_[np.ones(len(error)), error]
    time = dataset["time"].to_numpy()

    coefficients = []
    for unit in range(error_session.n_units):
        latency = truth["error_latency"].iloc[unit]
        duration = truth["response_duration"].iloc[unit]
        if np.isnan(latency):
            latency, duration = 0.1, 0.2
        inside = (time > latency) & (time < latency + duration)
        response = counts[:, unit, inside].sum(axis=1)
        coefficients.append(np.linalg.lstsq(design, response, rcond=None)[0])
    coefficients = np.array(coefficients)

    error_units = (truth["role"] == "vector_error").to_numpy()
    fitted = np.arctan2(coefficients[:, 2], coefficients[:, 1])
    planted = truth["preferred_error_direction"].to_numpy()
    miss = np.abs(np.angle(np.exp(1j * (fitted - planted))))[error_units]
    assert np.median(miss) < np.deg2rad(15)
    assert np.all(miss < np.deg2rad(45))

    # Slope (spikes per metre) ≈ gain × kernel area; the kernel is a 20 ms
    # rise then a half-cosine fall, so its area is about duration / 2.
    slope = np.hypot(coefficients[:, 1], coefficients[:, 2])[error_units]
    area = truth["response_duration"].to_numpy()[error_units] / 2
    expected = truth["error_gain"].to_numpy()[error_units] * area
    assert np.median(slope / expected) == pytest.approx(1.0, abs=0.35)


def test_error_latency_is_recovered_within_one_bin(error_session):
    truth = error_session.meta["truth"]["units"]
    dataset = bin_trials(error_session, window=(-0.1, 0.6), bin_size=0.02)
    counts = dataset["counts"].to_numpy().astype(float)
    error = dataset["error"].to_numpy()
    time = dataset["time"].to_numpy()

    error_units = np.flatnonzero((truth["role"] == "vector_error").to_numpy())
    for latency in (0.05, 0.1, 0.2):
        group = error_units[truth["error_latency"].to_numpy()[error_units] == latency]
        direction = truth["preferred_error_direction"].to_numpy()[group]
        projected = error @ np.array([np.cos(direction), np.sin(direction)])
        # Covariance of each bin's count with the projected error, pooled.
        centred = counts[:, group, :] - counts[:, group, :].mean(axis=0)
        signal = np.einsum("nut,nu->t", centred, projected - projected.mean(axis=0))
        onset = time[np.argmax(signal > 0.25 * signal.max())] - 0.01
        assert onset == pytest.approx(latency, abs=0.021)


def test_progress_bar_is_shown_on_request(capsys):
    sim.simulate("S0", rng=0, n_units=3, n_trials=70, progress=True, chunk_trials=32)

    assert "3/3" in capsys.readouterr().err


def test_behaviour_can_be_left_out_without_changing_the_rest():
    full = sim.simulate("S0", rng=9, n_units=5, n_trials=40)
    bare = sim.simulate("S0", rng=9, n_units=5, n_trials=40, record_behavior=False)

    assert bare.behavior == {}
    np.testing.assert_array_equal(bare.spike_times, full.spike_times)
    pd.testing.assert_frame_equal(bare.trials, full.trials)


def test_areas_restrict_the_population():
    session = sim.simulate("mixed", rng=6, n_units=20, n_trials=20, areas=["PMd"])

    assert set(session.units["area"]) == {"PMd"}
    assert session.n_units == 20
    with pytest.raises(ErrsigError, match="match none of scenario mixed"):
        sim.simulate("mixed", n_trials=20, areas="V1")


def test_bad_requests_are_rejected():
    with pytest.raises(ErrsigError, match="unknown scenario 'S99'"):
        sim.simulate("S99")
    with pytest.raises(ErrsigError, match=r"unknown simulate\(\) override"):
        sim.simulate("S0", n_trials=20, field_colour="red")
    with pytest.raises(ValueError, match="`n_units` must be at least 1"):
        sim.simulate("S0", n_units=0)
    with pytest.raises(ValueError, match="`n_trials` must be at least 4"):
        sim.simulate("S0", n_trials=2)


def test_simulated_file_passes_nwbinspector_and_keeps_its_truth(tmp_path):
    from nwbinspector import Importance, inspect_nwbfile

    from errsig.io import read_nwb, write_nwb

    session = sim.simulate("mixed", rng=5, n_units=16, n_trials=40)
    path = tmp_path / "simulated.nwb"
    write_nwb(session, path)

    serious = {Importance.CRITICAL, Importance.BEST_PRACTICE_VIOLATION}
    messages = list(inspect_nwbfile(nwbfile_path=str(path)))
    assert [m.message for m in messages if m.importance in serious] == []

    loaded = read_nwb(path)
    truth, planted = loaded.meta["truth"], session.meta["truth"]
    assert loaded.equals(session)
    assert truth["scenario"] == "mixed"
    pd.testing.assert_frame_equal(
        truth["units"], planted["units"], check_dtype=False, check_names=False
    )
    pd.testing.assert_frame_equal(
        truth["trials"], planted["trials"], check_dtype=False, check_names=False
    )
    for name, array in planted["unit_trial"].items():
        np.testing.assert_array_equal(truth["unit_trial"][name], array)


def window_counts(session, align, window):
    dataset = bin_trials(
        session, align=align, window=window, bin_size=window[1] - window[0]
    )
    return dataset["counts"].to_numpy()[:, :, 0].astype(float)


def test_magnitude_units_code_size_not_direction():
    import statsmodels.api as sm

    session = sim.simulate("S2", rng=31, n_units=30, n_trials=400)
    truth = session.meta["truth"]["units"]
    counts = window_counts(session, "feedback_time", (0.05, 0.45))
    error = session.trials[["error_x", "error_y"]].to_numpy()
    design = sm.add_constant(np.c_[error, np.hypot(*error.T)])

    magnitude_units = np.flatnonzero((truth["role"] == "error_magnitude").to_numpy())
    magnitude_t, direction_p = [], []
    for unit in magnitude_units:
        model = sm.OLS(counts[:, unit], design).fit()
        magnitude_t.append(model.tvalues[3])
        direction_p.append(model.f_test("x1 = 0, x2 = 0").pvalue)

    assert np.mean(np.array(magnitude_t) > 3) > 0.8
    assert np.mean(np.array(direction_p) < 0.01) < 0.25


def test_movement_activity_carries_the_error_in_the_confound_scenario():
    import statsmodels.api as sm

    def share_carrying_error(track_arm):
        session = sim.simulate(
            "S4", rng=32, n_units=24, n_trials=400, track_arm=track_arm
        )
        trials = session.trials
        counts = window_counts(session, "move_onset_time", (-0.1, 0.7))
        targets = pd.get_dummies(trials["target_angle"].round(6)).to_numpy(float)
        design = np.c_[targets, trials[["error_x", "error_y"]].to_numpy()]
        error_terms = np.eye(design.shape[1])[-2:]
        p_values = [
            sm.OLS(counts[:, unit], design).fit().f_test(error_terms).pvalue
            for unit in range(session.n_units)
        ]
        assert (session.meta["truth"]["units"]["error_gain"] == 0).all()
        return np.mean(np.array(p_values) < 0.01)

    # No unit codes the error, yet it is read off their movement activity once
    # they follow the arm's deflection (science.md §3.1): the confound S4 plants.
    following_the_arm = share_carrying_error(True)
    assert following_the_arm > 0.3
    assert following_the_arm > share_carrying_error(False) + 0.2


def test_mechanical_shift_is_seen_in_the_spikes_and_reverts():
    session = sim.simulate("S8", rng=33, n_units=20, n_trials=800)
    truth = session.meta["truth"]
    trials = session.trials
    counts = window_counts(session, "move_onset_time", (-0.1, 0.4))
    angle = trials["target_angle"].to_numpy()
    planted = truth["unit_trial"]["preferred_direction"]
    mechanical = np.flatnonzero(
        (truth["units"]["drift_rule"] == "mechanical").to_numpy()
    )

    def fitted_direction(block):
        design = np.c_[np.ones(len(block)), np.cos(angle[block]), np.sin(angle[block])]
        coefficients, *_ = np.linalg.lstsq(design, counts[block], rcond=None)
        return np.arctan2(coefficients[2], coefficients[1])[mechanical]

    baseline = fitted_direction(np.arange(0, 200))
    late_field = fitted_direction(np.arange(450, 600))
    late_washout = fitted_direction(np.arange(700, 800))

    shift = np.angle(np.exp(1j * (late_field - baseline)))
    planted_shift = planted[mechanical, 450:600].mean(axis=1) - planted[mechanical, 0]
    assert np.mean(planted_shift) < np.deg2rad(-10)  # clockwise field
    assert np.mean(shift) == pytest.approx(np.mean(planted_shift), abs=np.deg2rad(6))
    after = np.angle(np.exp(1j * (late_washout - baseline)))
    assert abs(np.mean(after)) < np.deg2rad(6)


@pytest.mark.parametrize("name", ["S5", "S6", "S7"])
def test_drift_scenarios_wire_the_session_into_the_rules(name):
    session = sim.simulate(name, rng=41, n_units=10, n_trials=200)
    truth = session.meta["truth"]
    units = truth["units"]
    drifting = np.flatnonzero((units["drift_rule"] != "stable").to_numpy())
    explored = truth["unit_trial"]["exploration"][drifting]
    settled = truth["unit_trial"]["preferred_direction"][drifting] - explored
    step = np.diff(settled, axis=1)
    error = session.trials[["error_x", "error_y"]].to_numpy()[:-1]
    reward = session.trials["reward"].to_numpy()[:-1]
    surprise = reward - truth["trials"]["expected_reward"].to_numpy()[:-1]
    rate = units["drift_rate"].to_numpy()[drifting, None]

    if name == "S5":
        direction = settled[:, :-1]
        projected = -np.sin(direction) * error[:, 0] + np.cos(direction) * error[:, 1]
        np.testing.assert_allclose(step, rate * projected)
    elif name == "S6":
        np.testing.assert_allclose(step, surprise * explored[:, :-1])
    else:
        assert np.all(explored == 0)
        assert np.std(step) == pytest.approx(rate[0, 0], rel=0.1)
        assert abs(np.corrcoef(step.mean(axis=0), reward)[0, 1]) < 0.25
    assert (units.loc[units["drift_rule"] == "stable", "drift_rate"] == 0).all()


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_every_scenario_is_deterministic_and_passes_nwbinspector(name, tmp_path):
    from nwbinspector import Importance, inspect_nwbfile

    from errsig.io import write_nwb

    first = sim.simulate(name, rng=3, n_units=10, n_trials=24)
    assert first.equals(sim.simulate(name, rng=3, n_units=10, n_trials=24))
    assert not first.equals(sim.simulate(name, rng=4, n_units=10, n_trials=24))

    path = tmp_path / f"{name}.nwb"
    write_nwb(first, path)
    serious = {Importance.CRITICAL, Importance.BEST_PRACTICE_VIOLATION}
    messages = list(inspect_nwbfile(nwbfile_path=str(path)))
    assert [m.message for m in messages if m.importance in serious] == []


def test_simulate_command_writes_the_scenario(tmp_path, capsys):
    from errsig.cli import main
    from errsig.io import read_nwb

    path = tmp_path / "s3.nwb"
    arguments = ["simulate", "outcome", "-o", str(path), "--seed", "2"]
    status = main([*arguments, "--n-units", "6", "--n-trials", "40", "--no-progress"])

    assert status == 0
    written = read_nwb(path)
    assert written.meta["truth"]["scenario"] == "S3"
    assert written.equals(sim.simulate("S3", rng=2, n_units=6, n_trials=40))

    status = main(["simulate", "S99", "-o", str(tmp_path / "x.nwb"), "--no-progress"])
    assert status == 2
    assert "S99" in capsys.readouterr().err
    assert not (tmp_path / "x.nwb").exists()
