"""Files read_nwb cannot read give an NWBReadError that names the file and a fix."""

import json

import h5py
import numpy as np
import pytest

from errsig import ErrsigError, NWBReadError
from errsig.io import describe_nwb, load_column_mapping, read_nwb, write_nwb
from tests.conftest import random_session


@pytest.fixture(scope="module")
def good_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("good") / "good.nwb"
    write_nwb(random_session(np.random.default_rng(0)), path)
    return path


def test_missing_path(tmp_path):
    path = tmp_path / "absent.nwb"
    with pytest.raises(NWBReadError, match=r"absent\.nwb: no such file"):
        read_nwb(path)


def test_directory(tmp_path):
    with pytest.raises(NWBReadError, match="is not a file"):
        read_nwb(tmp_path)


def test_zero_byte_file(tmp_path):
    path = tmp_path / "empty.nwb"
    path.touch()
    with pytest.raises(NWBReadError, match=r"empty\.nwb is empty \(0 bytes\).*again"):
        read_nwb(path)


def test_not_hdf5(tmp_path):
    path = tmp_path / "notes.nwb"
    path.write_text("trial,reward\n1,1\n")
    with pytest.raises(NWBReadError, match=r"notes\.nwb is not an HDF5 file"):
        read_nwb(path)


def test_truncated_copy(good_file, tmp_path):
    path = tmp_path / "cut.nwb"
    path.write_bytes(good_file.read_bytes()[: good_file.stat().st_size // 2])
    with pytest.raises(NWBReadError, match=r"cut\.nwb is truncated.*Copy the file"):
        read_nwb(path)


def test_plain_hdf5_is_not_nwb(tmp_path):
    path = tmp_path / "plain.h5"
    with h5py.File(path, "w") as file:
        file["spikes"] = np.arange(5.0)
    with pytest.raises(NWBReadError, match=r"plain\.h5 is an HDF5 file but not an NWB"):
        read_nwb(path)


def test_unreadable_nwb_version_attribute(good_file, tmp_path):
    # The way an early MatNWB stored the version: an array, not a string.
    path = tmp_path / "matnwb.nwb"
    path.write_bytes(good_file.read_bytes())
    with h5py.File(path, "r+") as file:
        file.attrs["nwb_version"] = np.array([b"2.0b"])
    with pytest.raises(
        NWBReadError, match=r"pynwb cannot read .*matnwb\.nwb.*re-export"
    ):
        read_nwb(path)


def test_no_units_table(tmp_path):
    import datetime as dt

    from pynwb import NWBHDF5IO, NWBFile

    path = tmp_path / "nounits.nwb"
    nwbfile = NWBFile("x", "x", dt.datetime(2024, 1, 1, tzinfo=dt.UTC))
    with NWBHDF5IO(path, "w") as io:
        io.write(nwbfile)
    with pytest.raises(NWBReadError, match=r"nounits\.nwb has no units table"):
        read_nwb(path)
    # errsig info still describes what the file holds, and says why not more
    summary = describe_nwb(path)
    assert "Units: none" in summary and "nounits.nwb has no units table" in summary


def test_input_file_is_opened_read_only(good_file):
    before = good_file.read_bytes()
    good_file.chmod(0o444)
    try:
        read_nwb(good_file)
    finally:
        good_file.chmod(0o644)
    assert good_file.read_bytes() == before


def test_load_column_mapping_from_json_and_toml(tmp_path):
    assert load_column_mapping("trialdata") == "trialdata"
    as_json = tmp_path / "map.json"
    as_json.write_text(json.dumps({"reward": "outcome", "angle_unit": "degrees"}))
    assert load_column_mapping(str(as_json)) == {
        "reward": "outcome",
        "angle_unit": "degrees",
    }
    as_toml = tmp_path / "map.toml"
    as_toml.write_text('reward = "outcome"\ntarget_angle = "target_dir"\n')
    assert load_column_mapping(str(as_toml)) == {
        "reward": "outcome",
        "target_angle": "target_dir",
    }


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("trial_data", None, r"neither a preset \(\['dandi-000127'"),
        ("absent.json", None, r"absent\.json does not exist"),
        ("broken.json", "{reward: ", r"broken\.json could not be parsed"),
        ("nested.json", '{"reward": {"col": "x"}}', r"flat table"),
        ("unit.toml", 'angle_unit = "gradians"', r"`angle_unit` must be one of"),
    ],
)
def test_load_column_mapping_errors(tmp_path, name, content, match):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    text = name if content is None and "." not in name else str(path)
    with pytest.raises(ErrsigError, match=match):
        load_column_mapping(text)
