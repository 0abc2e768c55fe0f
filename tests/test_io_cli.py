"""`errsig info` through errsig.cli.main."""

import json

import numpy as np
import pytest

from errsig.cli import main
from errsig.io import write_nwb
from tests.conftest import random_session


@pytest.fixture
def session_file(tmp_path):
    session = random_session(np.random.default_rng(4), n_units=4)
    session.trials = session.trials.rename(columns={"reward": "outcome"})
    session.trials["outcome"] = session.trials["outcome"].astype(int)
    path = tmp_path / "session.nwb"
    write_nwb(session, path)
    return path


def test_info_prints_the_summary(session_file, capsys):
    assert main(["info", str(session_file)]) == 0
    output = capsys.readouterr().out
    assert f"File: {session_file}" in output
    assert "Units: 4 in" in output
    assert "Trials: 12" in output
    assert "Event columns for alignment: feedback_time" in output
    assert "outcome information and decoding: missing reward" in output


def test_info_with_a_mapping_file(session_file, tmp_path, capsys):
    mapping = tmp_path / "map.json"
    mapping.write_text(json.dumps({"reward": "outcome"}))
    assert main(["info", str(session_file), "--columns", str(mapping)]) == 0
    output = capsys.readouterr().out
    assert "outcome information and decoding: ready" in output
    assert "reward: " in output and "trials rewarded" in output


def test_info_with_area_column(session_file, capsys):
    assert main(["info", str(session_file), "--area", "Cerebellum"]) == 0
    assert "Cerebellum" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("arguments", "match"),
    [
        (["info", "{missing}"], "no such file"),
        (["info", "{session}", "--columns", "dandi-000127"], "'result'"),
        (["info", "{session}", "--columns", "nonsense"], "neither a preset"),
    ],
)
def test_info_errors_exit_2_with_the_message(
    session_file, tmp_path, capsys, arguments, match
):
    filled = [
        a.format(missing=tmp_path / "absent.nwb", session=session_file)
        for a in arguments
    ]
    assert main(filled) == 2
    error = capsys.readouterr().err
    assert error.startswith("errsig info: error:")
    assert match in error
