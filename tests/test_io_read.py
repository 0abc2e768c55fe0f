"""read_nwb on files laid out the way other labs lay them out."""

import datetime as dt

import h5py
import numpy as np
import pandas as pd
import pytest
from pynwb import NWBHDF5IO, NWBFile, TimeSeries
from pynwb.behavior import Position, SpatialSeries
from pynwb.file import Subject
from pynwb.misc import Units

from errsig import ColumnError, DataRepairWarning, ErrsigError, NWBReadError, Session
from errsig.io import PRESETS, read_nwb, write_nwb
from tests.conftest import random_session

START = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def nwbfile_with_units(spike_trains, *, locations=None, unit_electrodes=None):
    """An NWBFile whose units sit on electrodes with the given locations."""
    nwbfile = NWBFile("test", "test-id", START, subject=Subject(subject_id="m1"))
    device = nwbfile.create_device("probe")
    if locations is not None:
        groups = {}
        for location in locations:
            if location not in groups:
                groups[location] = nwbfile.create_electrode_group(
                    f"group{len(groups)}", "g", location=location, device=device
                )
            nwbfile.add_electrode(group=groups[location], location=location)
    for unit, train in enumerate(spike_trains):
        arguments = {"spike_times": train}
        if unit_electrodes is not None:
            arguments["electrodes"] = unit_electrodes[unit]
        nwbfile.add_unit(**arguments)
    return nwbfile


def save(nwbfile, path):
    with NWBHDF5IO(path, "w") as io:
        io.write(nwbfile)
    return path


def write_with_trials(tmp_path, trials, name="s.nwb"):
    """Write a small session whose trials table has exactly these columns."""
    session = random_session(np.random.default_rng(0), n_units=3, n_trials=len(trials))
    session.trials = pd.DataFrame(trials)
    path = tmp_path / name
    write_nwb(session, path)
    return path


TRIALDATA_TRIALS = {
    "start_time": [0.0, 1.0, 2.0, 3.0],
    "stop_time": [1.0, 2.0, 3.0, 4.0],
    "epoch": ["BL", "AD", "AD", "WO"],
    "result": ["R", "F", "A", "R"],
    "target_direction": [0.0, np.pi / 2, np.pi, 3 * np.pi / 2],
    "monkey": ["Chewie"] * 4,
}


def test_trialdata_preset_converts_codes(tmp_path):
    path = write_with_trials(tmp_path, TRIALDATA_TRIALS)
    for preset in ("trialdata", "pyaldata"):
        trials = read_nwb(path, columns=preset).trials
        assert list(trials["phase"]) == [
            "baseline",
            "force_field",
            "force_field",
            "washout",
        ]
        assert list(trials["reward"]) == [True, False, False, True]
        assert trials["reward"].dtype == bool
        np.testing.assert_array_equal(
            trials["target_angle"], TRIALDATA_TRIALS["target_direction"]
        )
        assert list(trials["monkey"]) == ["Chewie"] * 4  # unmapped columns kept


def test_dandi_000127_preset_converts_degrees(tmp_path):
    trials = {
        "start_time": [0.0, 1.0, 2.0],
        "stop_time": [1.0, 2.0, 3.0],
        "go_cue_time": [0.2, 1.2, 2.2],
        "move_onset_time": [0.5, 1.5, 2.5],
        "target_dir": [0.0, 90.0, 180.0],
        "result": ["R", "I", "R"],
    }
    path = write_with_trials(tmp_path, trials)
    read = read_nwb(path, columns="dandi-000127").trials
    np.testing.assert_allclose(read["target_angle"], [0.0, np.pi / 2, np.pi])
    assert list(read["reward"]) == [True, False, True]
    np.testing.assert_array_equal(read["move_onset_time"], trials["move_onset_time"])


def test_dandi_000128_preset_reads_success(tmp_path):
    trials = {"start_time": [0.0, 1.0], "stop_time": [1.0, 2.0], "success": [1, 0]}
    path = write_with_trials(tmp_path, trials)
    assert list(read_nwb(path, columns="dandi-000128").trials["reward"]) == [
        True,
        False,
    ]


def test_dandi_000688_preset_reads_result_codes_and_target_direction(tmp_path):
    # the 000688 trials columns (Perich/Miller centre-out): R/A/F/I results and
    # target_dir, here in radians, which the preset's "auto" rule keeps
    trials = {
        "start_time": [0.0, 1.0, 2.0, 3.0],
        "stop_time": [1.0, 2.0, 3.0, 4.0],
        "target_on_time": [0.1, 1.1, 2.1, 3.1],
        "go_cue_time": [0.3, 1.3, 2.3, 3.3],
        "result": ["R", "F", "A", "R"],
        "target_dir": [0.0, np.pi / 2, np.pi, 3 * np.pi / 2],
        "target_id": [0, 2, 4, 6],
    }
    path = write_with_trials(tmp_path, trials)
    read = read_nwb(path, columns="dandi-000688").trials
    np.testing.assert_allclose(read["target_angle"], trials["target_dir"])
    assert list(read["reward"]) == [True, False, False, True]
    np.testing.assert_array_equal(read["go_cue_time"], trials["go_cue_time"])


def test_presets_name_only_known_errsig_columns():
    errsig_names = {"phase", "reward", "target_angle", "error_x", "error_y"}
    for mapping in PRESETS.values():
        assert set(mapping) - {"angle_unit", "trials_table"} <= errsig_names


def test_angles_beyond_two_pi_are_read_as_degrees_with_a_warning(tmp_path):
    trials = {
        "start_time": [0.0, 1.0, 2.0],
        "stop_time": [1.0, 2.0, 3.0],
        "target_dir": [0.0, 45.0, 315.0],
    }
    path = write_with_trials(tmp_path, trials)
    with pytest.warns(DataRepairWarning, match="read as degrees.*exceed"):
        read = read_nwb(path, columns={"target_angle": "target_dir"})
    np.testing.assert_allclose(read.trials["target_angle"], np.deg2rad([0, 45, 315]))
    explicit = read_nwb(
        path, columns={"target_angle": "target_dir", "angle_unit": "radians"}
    )
    np.testing.assert_array_equal(explicit.trials["target_angle"], [0.0, 45, 315])


def test_zero_one_reward_becomes_bool_and_other_numbers_are_refused(tmp_path):
    trials = {"start_time": [0.0, 1.0], "stop_time": [1.0, 2.0], "outcome": [1, 0]}
    path = write_with_trials(tmp_path, trials)
    read = read_nwb(path, columns={"reward": "outcome"}).trials
    assert read["reward"].dtype == bool and list(read["reward"]) == [True, False]

    trials["outcome"] = [2, 0]
    path = write_with_trials(tmp_path, trials, name="bad.nwb")
    with pytest.raises(ColumnError, match=r"'outcome'.*other than 0/1"):
        read_nwb(path, columns={"reward": "outcome"})


def test_unknown_result_codes_are_refused(tmp_path):
    trials = {"start_time": [0.0], "stop_time": [1.0], "result": ["maybe"]}
    path = write_with_trials(tmp_path, trials)
    with pytest.raises(ColumnError, match=r"cannot read as an outcome: \['maybe'\]"):
        read_nwb(path, columns={"reward": "result"})


def test_mapping_to_a_missing_column_names_everything(tmp_path):
    path = write_with_trials(tmp_path, TRIALDATA_TRIALS)
    with pytest.raises(ColumnError) as caught:
        read_nwb(path, columns={"reward": "outcome"})
    message = str(caught.value)
    for part in ("'reward'", "'outcome'", str(path), "'result'", "'epoch'"):
        assert part in message
    with pytest.raises(ColumnError, match=r"'target_dir', which .* lacks"):
        read_nwb(path, columns="dandi-000127")
    with pytest.raises(ErrsigError, match=r"not a preset; presets are \['dandi"):
        read_nwb(path, columns="dandi-999")


def test_mapped_column_replaces_a_same_named_file_column(tmp_path):
    trials = {
        "start_time": [0.0, 1.0],
        "stop_time": [1.0, 2.0],
        "reward": [0.5, 0.7],  # e.g. juice volume
        "result": ["R", "F"],
    }
    path = write_with_trials(tmp_path, trials)
    read = read_nwb(path, columns={"reward": "result"}).trials
    assert list(read["reward"]) == [True, False]
    np.testing.assert_array_equal(read["file_reward"], [0.5, 0.7])


def test_event_times_relative_to_trial_start_are_converted(tmp_path):
    trials = {
        "start_time": [300.0, 310.0, 320.0],
        "stop_time": [np.nan] * 3,
        "cue_time": [4.0, 5.0, 4.5],
        "lick_time": [6.0, np.nan, 7.0],
    }
    path = write_with_trials(tmp_path, trials)
    with pytest.warns(DataRepairWarning) as caught:
        read = read_nwb(path).trials
    messages = " ".join(str(w.message) for w in caught)
    assert "['cue_time', 'lick_time']" in messages
    assert "stop_time is NaN on every trial" in messages
    np.testing.assert_array_equal(read["cue_time"], [304.0, 315.0, 324.5])
    np.testing.assert_array_equal(read["lick_time"], [306.0, np.nan, 327.0])
    assert read["stop_time"].isna().all()


def test_session_clock_events_are_left_alone(tmp_path):
    trials = {
        "start_time": [300.0, 310.0, 320.0],
        "stop_time": [305.0, 315.0, 325.0],
        "cue_time": [301.0, 311.0, 321.0],
        "fixation_time": [299.0, 309.0, 319.0],  # before its trial, session clock
    }
    path = write_with_trials(tmp_path, trials)
    read = read_nwb(path).trials
    np.testing.assert_array_equal(read["cue_time"], trials["cue_time"])
    np.testing.assert_array_equal(read["fixation_time"], trials["fixation_time"])


def test_area_argument_column_or_constant(tmp_path):
    path = tmp_path / "s.nwb"
    nwbfile = nwbfile_with_units([[0.1, 0.2], [0.3]])
    nwbfile.units.add_column("region", "brain area", data=["M1", "PMd"])
    save(nwbfile, path)
    with pytest.warns(DataRepairWarning, match="no trials table"):
        by_column = read_nwb(path, area="region")
    assert list(by_column.units["area"]) == ["M1", "PMd"]
    assert list(by_column.units["region"]) == ["M1", "PMd"]
    with pytest.warns(DataRepairWarning, match="no trials table"):
        constant = read_nwb(path, area="SMA")
    assert list(constant.units["area"]) == ["SMA", "SMA"]


def test_no_area_link_names_the_candidate_columns(tmp_path):
    nwbfile = nwbfile_with_units([[0.1, 0.2], [0.3]])
    nwbfile.units.add_column("region", "brain area", data=["M1", ""])
    path = save(nwbfile, tmp_path / "s.nwb")
    with pytest.raises(NWBReadError, match=r"linked to no brain area.*\['region'\]"):
        read_nwb(path)
    with pytest.raises(NWBReadError, match=r"1 of 2 units.*empty units column"):
        read_nwb(path, area="region")
    with pytest.raises(NWBReadError, match="more than one value per unit"):
        read_nwb(path, area="spike_times")


def test_area_from_electrodes_with_long_location_strings(tmp_path):
    long_form = "brain_region: ALM; cortical_layer: 5; hemisphere: left"
    nwbfile = nwbfile_with_units(
        [[0.1], [0.2], [0.3]],
        locations=[long_form, "brain_region: M2; hemisphere: left", long_form],
        unit_electrodes=[[0], [1], [2, 0]],
    )
    path = save(nwbfile, tmp_path / "s.nwb")
    with pytest.warns(DataRepairWarning) as caught:
        session = read_nwb(path)
    messages = " ".join(str(w.message) for w in caught)
    assert "brain_region entry (['ALM', 'M2'])" in messages
    assert list(session.units["area"]) == ["ALM", "M2", "ALM"]


def test_first_electrode_wins_when_a_unit_spans_areas(tmp_path):
    nwbfile = nwbfile_with_units(
        [[0.1], [0.2]], locations=["M1", "PMd"], unit_electrodes=[[0, 1], [1]]
    )
    path = save(nwbfile, tmp_path / "s.nwb")
    with pytest.warns(DataRepairWarning) as caught:
        session = read_nwb(path)
    assert any("more than one location" in str(w.message) for w in caught)
    assert list(session.units["area"]) == ["M1", "PMd"]


def test_area_from_electrode_group_when_units_have_no_electrodes(tmp_path):
    nwbfile = NWBFile("test", "test-id", START)
    device = nwbfile.create_device("probe")
    groups = [
        nwbfile.create_electrode_group(f"g{i}", "g", location=area, device=device)
        for i, area in enumerate(["GPi", "striatum"])
    ]
    nwbfile.add_unit(spike_times=[0.1, 0.5], electrode_group=groups[1])
    nwbfile.add_unit(spike_times=[0.2], electrode_group=groups[0])
    path = save(nwbfile, tmp_path / "s.nwb")
    with pytest.warns(DataRepairWarning, match="no trials table"):
        session = read_nwb(path)
    assert list(session.units["area"]) == ["striatum", "GPi"]


def test_units_outside_slash_units_are_found_with_a_warning(tmp_path):
    nwbfile = NWBFile("test", "test-id", START)
    units = Units(name="units_kilosort", description="sorted")
    units.add_unit(spike_times=[0.3, 0.1, 0.2])
    module = nwbfile.create_processing_module("ecephys", "sorting")
    module.add(units)
    path = save(nwbfile, tmp_path / "s.nwb")
    with pytest.warns(DataRepairWarning) as caught:
        session = read_nwb(path, area="CA1")
    messages = " ".join(str(w.message) for w in caught)
    assert "/processing/ecephys/units_kilosort" in messages
    assert "were not sorted" in messages
    np.testing.assert_array_equal(session.spike_times, [0.1, 0.2, 0.3])


def test_no_trials_table_lists_interval_tables_and_one_can_be_chosen(tmp_path):
    nwbfile = nwbfile_with_units([[0.1, 0.2]], locations=["M1"], unit_electrodes=[[0]])
    table = nwbfile.create_time_intervals("reaches", "reaching movements")
    table.add_column("outcome", "0/1")
    table.add_row(start_time=0.0, stop_time=1.0, outcome=1)
    table.add_row(start_time=1.0, stop_time=2.0, outcome=0)
    path = save(nwbfile, tmp_path / "s.nwb")
    with pytest.warns(DataRepairWarning, match=r"no trials table.*\['reaches'\]"):
        session = read_nwb(path)
    assert session.n_trials == 0
    assert list(session.trials.columns) == ["start_time", "stop_time"]
    chosen = read_nwb(path, columns={"trials_table": "reaches", "reward": "outcome"})
    assert list(chosen.trials["reward"]) == [True, False]
    with pytest.raises(ColumnError, match=r"'laps'.*\['reaches'\]"):
        read_nwb(path, columns={"trials_table": "laps"})


def test_behaviour_in_centimetres_directly_in_the_module(tmp_path):
    nwbfile = nwbfile_with_units([[0.1]], locations=["M1"], unit_electrodes=[[0]])
    module = nwbfile.create_processing_module("behavior", "hand")
    samples = np.arange(20, dtype=float).reshape(10, 2)
    module.add(
        SpatialSeries(
            name="hand_pos",
            data=samples,
            reference_frame="centre",
            unit="cm",
            rate=100.0,
            starting_time=1.0,
        )
    )
    module.add(
        TimeSeries(
            name="hand_vel", data=samples, unit="mm/s", rate=100.0, conversion=2.0
        )
    )
    module.add(
        TimeSeries(name="force", data=samples, unit="N", timestamps=np.arange(10.0))
    )
    path = save(nwbfile, tmp_path / "s.nwb")
    with pytest.warns(DataRepairWarning, match="no trials table"):
        behavior = read_nwb(path).behavior
    assert set(behavior) == {"hand_position", "hand_velocity", "hand_force"}
    np.testing.assert_allclose(behavior["hand_position"].data, samples / 100)
    np.testing.assert_allclose(behavior["hand_position"].times, 1 + np.arange(10) / 100)
    assert behavior["hand_position"].unit == "meters"
    np.testing.assert_allclose(behavior["hand_velocity"].data, samples * 2 / 1000)
    assert behavior["hand_velocity"].unit == "meters/second"
    np.testing.assert_array_equal(behavior["hand_force"].times, np.arange(10.0))


def test_behaviour_inside_position_container(tmp_path):
    nwbfile = nwbfile_with_units([[0.1]], locations=["M1"], unit_electrodes=[[0]])
    module = nwbfile.create_processing_module("behavior", "hand")
    position = Position(name="Position")
    position.create_spatial_series(
        name="Hand", data=np.ones((5, 2)), reference_frame="c", unit="mm", rate=10.0
    )
    module.add(position)
    path = save(nwbfile, tmp_path / "s.nwb")
    with pytest.warns(DataRepairWarning, match="no trials table"):
        behavior = read_nwb(path).behavior
    np.testing.assert_allclose(behavior["hand_position"].data, 1e-3)


def test_spike_times_are_read_flat_once(tmp_path, monkeypatch):
    session = random_session(np.random.default_rng(1), n_units=20)
    path = tmp_path / "s.nwb"
    write_nwb(session, path)

    reads = []
    original = h5py.Dataset.__getitem__

    def counting(self, selection):
        reads.append((self.name, selection))
        return original(self, selection)

    monkeypatch.setattr(h5py.Dataset, "__getitem__", counting)
    again = read_nwb(path)
    assert again.equals(session)
    spike_reads = [s for name, s in reads if name == "/units/spike_times"]
    index_reads = [s for name, s in reads if name == "/units/spike_times_index"]
    assert len(spike_reads) == 1 and len(index_reads) == 1
    assert spike_reads[0] == slice(None)


def test_open_file_objects_are_read(tmp_path):
    session = random_session(np.random.default_rng(2))
    path = tmp_path / "s.nwb"
    write_nwb(session, path)
    with open(path, "rb") as handle:
        again = read_nwb(handle)
    assert again.equals(session)
    assert isinstance(again, Session)
