import numpy as np
import pandas as pd
import pytest

from errsig import (
    BehaviorSeries,
    ColumnError,
    DataRepairWarning,
    ErrsigError,
    Session,
    bin_trials,
)
from tests.conftest import random_session


def reference_counts(session, align, window, bin_size):
    """Slow reference: one numpy.histogram per trial and unit."""
    n_bins = round((window[1] - window[0]) / bin_size)
    relative = window[0] + bin_size * np.arange(n_bins + 1)
    relative[-1] = window[1]
    events = session.trials[align].to_numpy()
    out = np.zeros((len(events), session.n_units, n_bins), dtype=np.int64)
    for trial, event in enumerate(events):
        for position, train in enumerate(session.spike_trains()):
            out[trial, position], _ = np.histogram(train, bins=event + relative)
    return out


def test_counts_match_histogram_reference(seed):
    session = random_session(np.random.default_rng(seed), n_units=7, n_trials=15)
    ds = bin_trials(session, window=(-0.2, 0.8), bin_size=0.02)
    expected = reference_counts(session, "feedback_time", (-0.2, 0.8), 0.02)
    np.testing.assert_array_equal(ds["counts"].values, expected)
    assert ds["counts"].dims == ("trial", "unit", "time")


def test_spikes_exactly_on_edges_match_reference():
    rng = np.random.default_rng(3)
    events = np.array([1.0, 2.5, 4.1])
    window, bin_size = (-0.1, 0.3), 0.05
    relative = window[0] + bin_size * np.arange(9)
    relative[-1] = window[1]
    on_edges = (events[:, None] + relative[None, :]).ravel()
    trains = [np.sort(np.r_[on_edges, rng.uniform(0, 5, 40)]), np.sort(on_edges)]
    session = Session.from_spike_trains(
        trains,
        units=pd.DataFrame({"area": ["M1", "PMd"]}),
        trials=pd.DataFrame(
            {"start_time": events - 0.5, "stop_time": events + 0.5, "go": events}
        ),
    )
    ds = bin_trials(session, align="go", window=window, bin_size=bin_size)
    np.testing.assert_array_equal(
        ds["counts"].values, reference_counts(session, "go", window, bin_size)
    )
    # Every bin of the edge-only unit holds its left edge; the last also its stop.
    assert ds["counts"].values[:, 1, :-1].tolist() == [[1] * 7] * 3
    assert ds["counts"].values[:, 1, -1].tolist() == [2, 2, 2]


def test_coordinates_and_trial_variables(small_session):
    ds = bin_trials(small_session)
    assert list(ds["area"].values) == list(small_session.units["area"])
    np.testing.assert_allclose(ds["time"].values[:2], [-0.19, -0.17])
    np.testing.assert_array_equal(
        ds["error"].sel(component="x").values, small_session.trials["error_x"]
    )
    assert ds["reward"].dtype == bool
    assert set(ds["phase"].values) == {"baseline", "force_field", "washout"}
    assert ds.attrs["align"] == "feedback_time"
    assert ds["trial_index"].values.tolist() == list(range(12))


def test_kinematics_are_bin_means_of_velocity(small_session):
    times = np.arange(0, 30, 0.001)
    velocity = np.c_[times, -2 * times]
    small_session.behavior["hand_velocity"] = BehaviorSeries(
        times, velocity, "meters/second"
    )
    ds = bin_trials(small_session, window=(0.0, 0.1), bin_size=0.05)
    event = small_session.trials["feedback_time"].to_numpy()[0]
    inside = (times >= event) & (times < event + 0.05)
    np.testing.assert_allclose(
        ds["kinematics"].values[0, 0], velocity[inside].mean(axis=0), rtol=1e-12
    )


def test_nan_alignment_drops_trials_with_a_count(small_session):
    small_session.trials.loc[[2, 5], "feedback_time"] = np.nan
    with pytest.warns(DataRepairWarning, match="2 of 12 trials"):
        ds = bin_trials(small_session)
    assert ds.sizes["trial"] == 10
    assert 2 not in ds["trial"].values


def test_all_nan_alignment_is_an_error(small_session):
    small_session.trials["feedback_time"] = np.nan
    with pytest.raises(ErrsigError, match="NaN on all 12 trials"):
        bin_trials(small_session)


@pytest.mark.parametrize(
    ("window", "bin_size", "match"),
    [
        ((0.5, 0.5), 0.1, "start < stop"),
        ((0.8, -0.2), 0.1, "start < stop"),
        ((0.0, 1.0), 0.3, "does not divide"),
        ((0.0, 1.0), 0.0, "positive number"),
    ],
)
def test_bad_window_or_bin_size(small_session, window, bin_size, match):
    with pytest.raises(ErrsigError, match=match):
        bin_trials(small_session, window=window, bin_size=bin_size)


def test_unknown_alignment_lists_events(small_session):
    with pytest.raises(ColumnError, match=r"feedback_time"):
        bin_trials(small_session, align="go_cue_time")


@pytest.mark.parametrize("window", [(-0.2, 0.8), (-1.0, 2.5)])
def test_overlapping_and_separate_windows_agree_with_reference(window):
    # Trials 2 s apart: the second window overlaps its neighbours.
    session = random_session(np.random.default_rng(11), n_units=4, n_trials=14)
    ds = bin_trials(session, window=window, bin_size=0.05)
    expected = reference_counts(session, "feedback_time", window, 0.05)
    np.testing.assert_array_equal(ds["counts"].values, expected)


def test_many_units_span_several_chunks():
    rng = np.random.default_rng(5)
    trains = [np.sort(rng.uniform(0, 50, 400_000)) for _ in range(6)]
    trains += [np.empty(0), np.sort(rng.uniform(0, 50, 10))]
    events = np.arange(1.0, 49.0, 1.5)
    session = Session.from_spike_trains(
        trains,
        units=pd.DataFrame({"area": ["M1"] * len(trains)}),
        trials=pd.DataFrame(
            {"start_time": events, "stop_time": events + 1, "go": events}
        ),
    )
    ds = bin_trials(session, align="go", window=(0.0, 1.0), bin_size=0.1)
    np.testing.assert_array_equal(
        ds["counts"].values, reference_counts(session, "go", (0.0, 1.0), 0.1)
    )


@pytest.mark.parametrize("window", [(0.0, 1.0), (-1.0, 2.5)])
def test_smallest_dtype_widens_when_a_later_unit_overflows_it(window):
    # Units 0-1 fit in int8; unit 2 has 200 spikes in one bin (int16), unit 3
    # 40,000 (int32).
    rng = np.random.default_rng(8)
    events = np.arange(1.0, 20.0, 2.0)
    trains = [np.sort(rng.uniform(0, 21, 30)), np.sort(rng.uniform(0, 21, 300))]
    trains.append(np.sort(np.r_[rng.uniform(0, 21, 50), np.full(200, 5.05)]))
    trains.append(np.sort(np.r_[rng.uniform(0, 21, 50), np.full(40_000, 9.05)]))
    session = Session.from_spike_trains(
        trains,
        units=pd.DataFrame({"area": ["M1"] * len(trains)}),
        trials=pd.DataFrame(
            {"start_time": events, "stop_time": events + 1, "go": events}
        ),
    )
    expected = reference_counts(session, "go", window, 0.1)
    compact = bin_trials(
        session, align="go", window=window, bin_size=0.1, dtype="smallest"
    )
    assert compact["counts"].dtype == np.int32
    np.testing.assert_array_equal(compact["counts"].values, expected)

    first_three = bin_trials(
        session.select(units=session.units.index[:3]),
        align="go",
        window=window,
        bin_size=0.1,
        dtype="smallest",
    )
    assert first_three["counts"].dtype == np.int16
    np.testing.assert_array_equal(first_three["counts"].values, expected[:, :3])


def test_smallest_dtype_is_int8_for_sparse_counts(small_session):
    compact = bin_trials(small_session, dtype="smallest")
    assert compact["counts"].dtype == np.int8
    np.testing.assert_array_equal(
        compact["counts"].values, bin_trials(small_session)["counts"].values
    )


def test_unknown_count_dtype_is_an_error(small_session):
    with pytest.raises(ErrsigError, match="`dtype` must be 'int32' or 'smallest'"):
        bin_trials(small_session, dtype="float64")
