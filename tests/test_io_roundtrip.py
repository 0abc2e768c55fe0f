"""write_nwb then read_nwb gives the same session back, and nwbinspector is happy."""

import os

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nwbinspector import Importance, inspect_nwbfile

from errsig import BehaviorSeries, ErrsigError, Session
from errsig.io import read_nwb, write_nwb
from tests.conftest import random_session


def full_session(seed):
    """A random session with everything write_nwb stores, including truth."""
    rng = np.random.default_rng(seed)
    session = random_session(rng, n_units=6, n_trials=15)
    trains = session.spike_trains()
    trains[2] = np.empty(0)  # a silent unit
    units = session.units.assign(
        quality=rng.choice(["good", "mua"], session.n_units),
        snr=rng.gamma(2.0, 2.0, session.n_units),
        isolated=rng.random(session.n_units) < 0.5,
        channel=rng.integers(0, 96, session.n_units),
    )
    units.index = pd.Index([3, 7, 11, 12, 40, 41])
    trials = session.trials.assign(
        move_onset_time=session.trials["start_time"] + 0.3,
        condition=rng.choice(["cw", "ccw"], session.n_trials),
        catch=rng.random(session.n_trials) < 0.2,
    )
    trials.loc[trials.index[4], "move_onset_time"] = np.nan
    times = np.arange(0, 30, 0.01)
    irregular = np.sort(rng.uniform(0, 30, 500))
    behavior = {
        "hand_position": BehaviorSeries(
            times, rng.normal(size=(len(times), 2)), "meters", "hand in the plane"
        ),
        "hand_velocity": BehaviorSeries(
            np.arange(len(times)) / 100.0, rng.normal(size=(len(times), 2)), "m/s"
        ),
        "hand_force": BehaviorSeries(irregular, rng.normal(size=(500, 2)), "newtons"),
        "eye_position": BehaviorSeries(
            np.linspace(0, 30, 301), rng.normal(size=(301, 2)), "degrees"
        ),
    }
    truth = {
        "units": pd.DataFrame(
            {
                "role": rng.choice(["vector_error", "outcome", "null"], 6),
                "drift_rule": ["stable"] * 6,
                "gain": rng.normal(size=6),
            },
            index=units.index.rename("unit_id"),
        ),
        "trials": pd.DataFrame(
            {
                "field_strength": rng.uniform(0, 1, session.n_trials),
                "cursor_jump": rng.random(session.n_trials) < 0.1,
            },
            index=trials.index,
        ),
        "unit_trial": {
            "preferred_direction": rng.uniform(-np.pi, np.pi, (6, session.n_trials))
        },
        "scenario": "S5",
        "parameters": {"eta": 0.05, "n_areas": 2, "areas": ["M1", "PMd"]},
    }
    return Session.from_spike_trains(
        trains,
        units=units,
        trials=trials,
        behavior=behavior,
        meta={"session_id": f"sim-{seed}", "truth": truth, "seed": seed},
    )


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    session = full_session(3)
    path = tmp_path_factory.mktemp("roundtrip") / "session.nwb"
    write_nwb(session, path)
    return session, path


def test_round_trip_is_exact(written):
    session, path = written
    again = read_nwb(path)
    assert again.equals(session)
    assert again.spike_times.tobytes() == session.spike_times.tobytes()
    np.testing.assert_array_equal(again.spike_counts, session.spike_counts)
    assert again.spike_counts[2] == 0
    for key, series in session.behavior.items():
        assert again.behavior[key].times.tobytes() == series.times.tobytes()
        assert again.behavior[key].data.tobytes() == series.data.tobytes()
    assert again.behavior["hand_velocity"].unit == "meters/second"
    assert again.behavior["eye_position"].unit == "degrees"
    assert again.trials["reward"].dtype == bool
    assert again.units["isolated"].dtype == bool


def test_truth_and_meta_are_restored(written):
    session, path = written
    again = read_nwb(path)
    truth, expected = again.meta["truth"], session.meta["truth"]
    pd.testing.assert_frame_equal(truth["units"], expected["units"])
    pd.testing.assert_frame_equal(truth["trials"], expected["trials"])
    pd.testing.assert_frame_equal(again.units, session.units)
    pd.testing.assert_frame_equal(again.trials, session.trials)
    for column in ("role", "drift_rule"):
        assert list(truth["units"][column]) == list(expected["units"][column])
    trajectory = truth["unit_trial"]["preferred_direction"]
    assert trajectory.tobytes() == (
        expected["unit_trial"]["preferred_direction"].tobytes()
    )
    assert truth["scenario"] == "S5"
    assert truth["parameters"] == expected["parameters"]
    assert again.meta["session_id"] == "sim-3"
    assert again.meta["seed"] == 3
    assert again.meta["subject"]["species"] == "Macaca mulatta"
    assert again.meta["source_file"] == str(path)


@pytest.mark.parametrize("seed", [0, 1])
def test_round_trip_of_random_sessions(tmp_path, seed):
    session = full_session(seed)
    path = tmp_path / "s.nwb"
    write_nwb(session, path)
    assert read_nwb(path).equals(session)


def test_written_file_passes_nwbinspector(written):
    _, path = written
    messages = list(inspect_nwbfile(nwbfile_path=str(path)))
    serious = [
        (m.importance.name, m.check_function_name, m.message)
        for m in messages
        if m.importance in (Importance.CRITICAL, Importance.BEST_PRACTICE_VIOLATION)
    ]
    assert serious == []
    # The inspector really ran on our file: it makes its usual suggestions.
    assert any(m.importance == Importance.BEST_PRACTICE_SUGGESTION for m in messages)


def test_area_comes_from_the_electrodes_table(written):
    import h5py

    session, path = written
    with h5py.File(path, "r") as file:
        locations = file["general/extracellular_ephys/electrodes/location"][:]
        assert sorted(v.decode() for v in locations) == sorted(session.areas)
        assert file["units/spike_times"].attrs["resolution"] > 0


def test_existing_file_needs_overwrite(written, tmp_path):
    session, _ = written
    path = tmp_path / "s.nwb"
    write_nwb(session, path)
    first = path.stat().st_mtime_ns
    with pytest.raises(ErrsigError, match=r"already exists.*overwrite=True"):
        write_nwb(session, path)
    write_nwb(session, path, overwrite=True)
    assert path.stat().st_mtime_ns >= first
    assert read_nwb(path).equals(session)
    assert os.listdir(tmp_path) == ["s.nwb"]  # no temporary file left behind


def test_failed_write_leaves_no_file(tmp_path):
    session = random_session(np.random.default_rng(0))
    session.units.index = pd.Index(["a", "b", "c", "d", "e"])
    with pytest.raises(ErrsigError, match=r"unique integers.*reset"):
        write_nwb(session, tmp_path / "s.nwb")
    assert os.listdir(tmp_path) == []


def test_written_file_has_the_mode_of_an_ordinary_file(tmp_path):
    # the temporary file it is moved from is private (0600); the result must
    # not be, or the rest of a lab cannot read it
    umask = os.umask(0o022)
    try:
        path = tmp_path / "s.nwb"
        write_nwb(random_session(np.random.default_rng(0)), path)
    finally:
        os.umask(umask)
    assert os.stat(path).st_mode & 0o777 == 0o644


def test_missing_folder_is_named(tmp_path):
    session = random_session(np.random.default_rng(0))
    with pytest.raises(ErrsigError, match="does not exist"):
        write_nwb(session, tmp_path / "nowhere" / "s.nwb")


@pytest.mark.parametrize(
    ("column", "values", "match"),
    [
        ("label", ["a", None, "b"], "missing values"),
        ("label", [{"a": 1}, {"b": 2}, {"c": 3}], "cannot store"),
        ("spike_times", [1, 2, 3], "reserves"),
        ("label", ["a", "b\x00", "c"], "NUL character"),
    ],
)
def test_unstorable_unit_columns_are_refused(tmp_path, column, values, match):
    session = random_session(np.random.default_rng(0), n_units=3)
    session.units[column] = pd.Series(values, index=session.units.index, dtype=object)
    with pytest.raises(ErrsigError, match=match):
        write_nwb(session, tmp_path / "s.nwb")


area_names = st.sampled_from(["M1", "PMd", "area 2", "GPi/GPe", "S1"])
spike_train = st.lists(
    st.floats(0, 1e4, allow_nan=False, allow_subnormal=False), max_size=30
).map(sorted)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    trains=st.lists(spike_train, min_size=1, max_size=6),
    data=st.data(),
)
def test_round_trip_property(tmp_path_factory, trains, data):
    n_units = len(trains)
    n_trials = data.draw(st.integers(0, 5))
    units = pd.DataFrame(
        {"area": data.draw(st.lists(area_names, min_size=n_units, max_size=n_units))},
        index=pd.Index(
            data.draw(
                st.lists(
                    st.integers(0, 10_000),
                    min_size=n_units,
                    max_size=n_units,
                    unique=True,
                )
            )
        ),
    )
    starts = np.arange(n_trials, dtype=float)
    trials = pd.DataFrame(
        {
            "start_time": starts,
            "stop_time": starts + 0.5,
            "score": data.draw(
                st.lists(
                    st.floats(allow_nan=True, allow_infinity=False, width=64),
                    min_size=n_trials,
                    max_size=n_trials,
                )
            ),
            "reward": data.draw(
                st.lists(st.booleans(), min_size=n_trials, max_size=n_trials)
            ),
            "label": data.draw(
                st.lists(
                    st.text(
                        st.characters(
                            codec="utf-8",
                            exclude_categories=["Cs"],
                            exclude_characters="\x00",
                        )
                    ),
                    min_size=n_trials,
                    max_size=n_trials,
                )
            ),
        }
    )
    session = Session.from_spike_trains(trains, units=units, trials=trials)
    path = tmp_path_factory.mktemp("property") / "s.nwb"
    write_nwb(session, path)
    again = read_nwb(path)
    assert again.equals(session)
    assert again.spike_times.tobytes() == session.spike_times.tobytes()
