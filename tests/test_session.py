import numpy as np
import pandas as pd
import pytest

from errsig import ColumnError, DataRepairWarning, ErrsigError, Session


def test_flat_layout_and_views(small_session):
    trains = small_session.spike_trains()
    assert len(trains) == small_session.n_units
    assert sum(len(t) for t in trains) == len(small_session.spike_times)
    unit = small_session.units.index[2]
    np.testing.assert_array_equal(small_session.unit_spike_times(unit), trains[2])
    assert np.shares_memory(
        small_session.unit_spike_times(unit), small_session.spike_times
    )


def test_select_by_area_units_and_trials(small_session):
    area = small_session.areas[0]
    chosen = small_session.select(area=area)
    expected = small_session.units.index[small_session.units["area"] == area]
    assert list(chosen.units.index) == list(expected)
    for unit in expected:
        np.testing.assert_array_equal(
            chosen.unit_spike_times(unit), small_session.unit_spike_times(unit)
        )
    reordered = small_session.select(units=[3, 0])
    np.testing.assert_array_equal(
        reordered.unit_spike_times(3), small_session.unit_spike_times(3)
    )
    assert list(reordered.units.index) == [3, 0]
    assert small_session.select(trials=[1, 2]).n_trials == 2


def test_select_unknown_area_names_the_areas(small_session):
    with pytest.raises(ErrsigError, match="areas are"):
        small_session.select(area="GPi")


def test_unsorted_spikes_are_sorted_with_a_warning():
    with pytest.warns(DataRepairWarning, match="1 unit"):
        session = Session.from_spike_trains(
            [[0.3, 0.1, 0.2], [0.5, 0.6]],
            units=pd.DataFrame({"area": ["M1", "M1"]}),
            trials=pd.DataFrame({"start_time": [0.0], "stop_time": [1.0]}),
        )
    np.testing.assert_array_equal(session.unit_spike_times(0), [0.1, 0.2, 0.3])
    np.testing.assert_array_equal(session.unit_spike_times(1), [0.5, 0.6])


def test_unit_boundary_is_not_a_disorder():
    # The second unit starts earlier than the first ends: that is fine.
    session = Session.from_spike_trains(
        [[0.5, 0.9], [0.1, 0.2]],
        units=pd.DataFrame({"area": ["M1", "M1"]}),
        trials=pd.DataFrame({"start_time": [0.0], "stop_time": [1.0]}),
    )
    np.testing.assert_array_equal(session.spike_times, [0.5, 0.9, 0.1, 0.2])


@pytest.mark.parametrize(
    ("units", "trains", "match"),
    [
        (pd.DataFrame({"region": ["M1"]}), [[0.1]], "`area` column"),
        (pd.DataFrame({"area": ["M1"]}), [[0.1, np.nan]], "NaN or infinite"),
        (pd.DataFrame({"area": ["M1", "M1"]}), [[0.1]], "one end offset per unit"),
    ],
)
def test_bad_layouts_are_named(units, trains, match):
    with pytest.raises(ErrsigError, match=match):
        Session.from_spike_trains(
            trains, units=units, trials=pd.DataFrame({"start_time": [0.0]})
        )


def test_require_columns_names_what_is_missing(small_session):
    with pytest.raises(ColumnError, match=r"\['cursor_err'\].*read_nwb"):
        small_session.require_columns(["error_x", "cursor_err"], "error decoding")
    assert small_session.missing_columns() == {}


def test_equals_is_bitwise(small_session):
    copy = Session(
        small_session.spike_times.copy(),
        small_session.spike_index.copy(),
        small_session.units,
        small_session.trials,
    )
    assert copy.equals(small_session)
    copy.spike_times[0] = np.nextafter(copy.spike_times[0], 1.0)
    assert not copy.equals(small_session)
