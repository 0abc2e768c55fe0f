"""read_nwb and describe_nwb on real NWB files written by other people's tools.

The files and what is odd about each are listed in the folder's README
(``shared/data/real_nwb``); there is one test per file.
"""

import warnings

import numpy as np
import pytest

from errsig import DataRepairWarning, NWBReadError
from errsig.io import describe_nwb, read_nwb
from tests.conftest import REAL_NWB_DIR


def real_file(name):
    if not REAL_NWB_DIR.is_dir():
        pytest.skip(f"real NWB files: folder absent ({REAL_NWB_DIR})")
    path = REAL_NWB_DIR / name
    if not path.is_file():
        pytest.skip(f"real NWB file {name} absent from {REAL_NWB_DIR}")
    return path


def read_with_warnings(path, **arguments):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        session = read_nwb(path, **arguments)
    repairs = [str(w.message) for w in caught if w.category is DataRepairWarning]
    return session, " | ".join(repairs)


def check_sorted(session):
    for train in session.spike_trains():
        assert np.all(np.diff(train) >= 0)


@pytest.mark.parametrize(
    ("name", "n_trials", "n_spikes"),
    [
        ("economo_alm_sub-anm369963_ses-20170228.nwb", 178, 1679),
        ("economo_alm_sub-anm372793_ses-20170508.nwb", 340, 2434),
    ],
)
def test_economo_alm(name, n_trials, n_spikes):
    path = real_file(name)
    session, repairs = read_with_warnings(path)

    assert session.n_units == 1 and len(session.spike_times) == n_spikes
    assert session.areas == ["ALM"]
    assert "brain_region entry (['ALM'])" in repairs
    assert "were not sorted" in repairs
    check_sorted(session)

    trials = session.trials
    assert len(trials) == n_trials
    assert "stop_time is NaN on every trial" in repairs
    assert "['cue_start_time', 'pole_in_time', 'pole_out_time']" in repairs
    for event in ("cue_start_time", "pole_in_time", "pole_out_time"):
        assert (trials[event] > trials["start_time"]).all()
    assert trials["stim_present"].isin([0, 1]).all()
    assert session.meta["subject"]["species"] == "Mus musculus"

    description = describe_nwb(path)
    assert "Trials: " + str(n_trials) in description
    assert "Event columns for alignment: cue_start_time, pole_in_time" in description
    assert "error information and decoding: missing error_x, error_y" in description
    assert "were not sorted" in description


def test_zheng_mtl_two_areas_and_non_indexed_electrodes():
    path = real_file("zheng_mtl_sub-4_ses-4_ecephys+image.nwb")
    session, repairs = read_with_warnings(path)
    counts = session.units["area"].value_counts()
    assert counts.to_dict() == {"hippocampus_right": 25, "amygdala_right": 10}
    assert len(session.spike_times) == 214_278
    check_sorted(session)
    assert session.n_trials == 0
    assert "'encoding_table', 'recognition_table', 'timediscrimination_table'" in (
        repairs
    )

    # fixcross_time precedes each video but is on the session clock: kept as is.
    encoding = read_nwb(path, columns={"trials_table": "encoding_table"})
    assert encoding.n_trials == 90
    fixation = encoding.trials["fixcross_time"]
    assert (fixation < encoding.trials["start_time"]).all()
    assert fixation.iloc[-1] > 0.9 * encoding.trials["start_time"].iloc[-1]
    assert describe_nwb(path).count("hippocampus_right") == 1


def test_pynapple_phy_empty_locations_need_area():
    path = real_file("pynapple_phy_A8604-211122.nwb")
    with pytest.raises(NWBReadError, match=r"3 of 3 units.*\['location', 'group'\]"):
        read_nwb(path)

    session, repairs = read_with_warnings(path, area="PoSub")
    assert list(session.units.index) == [6, 191, 206]
    assert len(session.spike_times) == 21_354
    assert session.areas == ["PoSub"]
    assert "no trials table" in repairs and "['epochs']" in repairs
    assert "AREA NOT FOUND" in describe_nwb(path)
    assert "PoSub" in describe_nwb(path, area="PoSub")


def test_neuroconv_tingley_units_not_linked_to_electrodes():
    path = real_file("neuroconv_tingley_test.nwb")
    with pytest.raises(NWBReadError, match=r"linked to no brain area.*'hpc', 'ls'"):
        read_nwb(path)
    session, repairs = read_with_warnings(path, area="hpc")
    assert repairs.endswith("has no trials table; the session has no trials.")
    assert session.n_units == 10
    counts = session.spike_counts
    assert counts.min() >= 1 and counts.max() == 625
    check_sorted(session)
    description = describe_nwb(path)
    assert "Units: 10 in 1 area(s)" in description
    assert "Trials: none" in description
    assert "binning: missing trials" in description


def test_neuroconv_ecephys_tutorial():
    path = real_file("neuroconv_ecephys_tutorial_v2.5.0.nwb")
    with pytest.raises(NWBReadError, match=r"candidates: \['quality'\]"):
        read_nwb(path)
    session, repairs = read_with_warnings(path, area="cortex")
    assert repairs.endswith("has no trials table; the session has no trials.")
    assert session.n_units == 10
    assert list(session.units.columns) == ["area", "quality"]  # no waveform_mean
    assert session.meta["subject"] is None
    assert "unit columns: quality" in describe_nwb(path, area="cortex")


def test_nwbexplorer_units_in_acquisition():
    path = real_file("nwbexplorer_test_Units_in_acquisition.nwb")
    session, repairs = read_with_warnings(path, area="unknown")
    assert "using the Units table found at /acquisition/UnitsTest" in repairs
    assert "no trials table" in repairs
    assert session.n_units == 2
    np.testing.assert_array_equal(session.spike_counts, [3, 3])
    description = describe_nwb(path, area="unknown")
    assert "/acquisition/UnitsTest" in description


def test_nwbexplorer_prerelease_file_is_refused():
    path = real_file("nwbexplorer_prerelease_nwb_version_1.2.0.nwb")
    with pytest.raises(NWBReadError, match=r"prerelease.*not an NWB 2 file"):
        read_nwb(path)
    with pytest.raises(NWBReadError, match="not an NWB 2 file"):
        describe_nwb(path)


def test_matnwb_file_is_refused():
    path = real_file("matnwb_ecephys_tutorial_unreadable.nwb")
    with pytest.raises(NWBReadError, match=r"pynwb cannot read .*matnwb.*MatNWB"):
        read_nwb(path)
    with pytest.raises(NWBReadError, match="pynwb cannot read"):
        describe_nwb(path)


def test_pynwb_back_compat_file_has_no_units():
    path = real_file("pynwb_back_compat_1.0.2_nwbfile.nwb")
    with pytest.raises(NWBReadError, match=r"1\.0\.2_nwbfile\.nwb has no units table"):
        read_nwb(path)
    summary = describe_nwb(path)
    assert "Units: none" in summary and "no units table" in summary
    assert "Analyses: none can run without units" in summary
