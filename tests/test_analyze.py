import html.parser
import json
import os

import numpy as np
import pytest
import xarray as xr

import sim
from errsig import ColumnError, ErrsigError
from errsig.analyze import (
    AnalysisConfig,
    analyze_session,
    load_config,
    read_results,
    write_results,
)
from errsig.cli import main
from errsig.io import write_nwb
from errsig.report import has_group, write_report

SMALL = AnalysisConfig(
    bin_size=0.1, n_perm=40, n_perm_decoding=10, n_perm_coupling=10, seed=5
)


@pytest.fixture(scope="module")
def small_mixed():
    return sim.simulate("mixed", rng=11, n_units=16, n_trials=200)


@pytest.fixture(scope="module")
def tree(small_mixed):
    return analyze_session(small_mixed, SMALL)


def test_every_step_leaves_its_group(tree):
    for group in (
        "behavior",
        "psth",
        "rasters",
        "information/error",
        "information/reward",
        "information/area_error",
        "decoding/error",
        "decoding/reward",
        "tuning/drift",
        "tuning/coupling",
        "classification",
    ):
        assert has_group(tree, group), group
    settings = json.loads(tree.attrs["settings"])
    assert settings["n_perm"] == 40
    assert "Gaussian-copula" in tree.attrs["methods"]
    assert "numpy" in json.loads(tree.attrs["versions"])


def test_tuning_is_tracked_by_the_filter_with_the_hand_force(tree):
    attrs = tree["tuning/drift"].attrs
    assert attrs["method"] == "filter"
    assert "force_x" in str(attrs["covariates"]) and "force_y" in str(
        attrs["covariates"]
    )
    assert "the covariates force_x and force_y" in tree.attrs["methods"]


def test_missing_tuning_covariates_are_left_out_with_a_warning(small_mixed, caplog):
    from errsig.analyze import _available_covariates, _movement_dataset
    from errsig.binning import bin_trials

    ds = bin_trials(small_mixed, align="feedback_time", window=(-0.2, 0.2))
    movement = _movement_dataset(small_mixed, ds, SMALL).drop_vars("force")

    with caplog.at_level("WARNING", logger="errsig.analyze"):
        kept = _available_covariates(movement, ("force_x", "speed", "hold"))

    assert kept == ["speed"]
    assert "['force_x', 'hold']" in caplog.text
    assert AnalysisConfig().replace(drift_covariates="").drift_covariates == ()
    with pytest.raises(ErrsigError, match="drift_method"):
        AnalysisConfig().replace(drift_method="kalman")


def test_same_seed_same_numbers(small_mixed, tree):
    again = analyze_session(small_mixed, SMALL.replace(steps=("information",)))
    np.testing.assert_array_equal(
        again["information/error"]["p"].values, tree["information/error"]["p"].values
    )
    np.testing.assert_array_equal(
        again["behavior"]["fitted_lateral_error"].values,
        tree["behavior"]["fitted_lateral_error"].values,
    )


@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
def test_results_round_trip(tree, tmp_path, suffix):
    path = write_results(tree, tmp_path / f"results{suffix}")
    back = read_results(path)
    xr.testing.assert_allclose(
        back["information/error"].to_dataset(), tree["information/error"].to_dataset()
    )
    assert back.attrs["methods"] == tree.attrs["methods"]


def test_interrupted_write_leaves_nothing(tree, tmp_path, monkeypatch):
    def fail_halfway(self, path, **kwargs):
        with open(path, "wb") as partial:
            partial.write(b"\x89HDF half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(xr.DataTree, "to_netcdf", fail_halfway)
    with pytest.raises(KeyboardInterrupt):
        write_results(tree, tmp_path / "results.nc")
    assert list(tmp_path.iterdir()) == []


def test_results_file_has_the_mode_of_an_ordinary_file(tree, tmp_path):
    umask = os.umask(0o022)
    try:
        path = write_results(tree, tmp_path / "results.nc")
    finally:
        os.umask(umask)
    assert os.stat(path).st_mode & 0o777 == 0o644


def test_missing_columns_stop_before_computing(small_mixed, monkeypatch):
    session = small_mixed.select()
    session.trials = session.trials.drop(columns=["reward"])
    called = []
    monkeypatch.setattr("errsig.analyze.bin_trials", lambda *a, **k: called.append(1))
    with pytest.raises(ColumnError, match=r"\['reward'\].*--columns"):
        analyze_session(session, SMALL)
    assert not called


def test_config_from_toml_and_unknown_settings(tmp_path):
    path = tmp_path / "settings.toml"
    path.write_text(
        '[analyze]\nn_perm = 77\nwindow = [-0.1, 0.5]\nsteps = ["decoding"]\n'
    )
    config = load_config(path)
    assert (config.n_perm, config.window, config.steps) == (
        77,
        (-0.1, 0.5),
        ("decoding",),
    )
    path.write_text("n_permutations = 5\n")
    with pytest.raises(ErrsigError, match="unknown analysis setting"):
        load_config(path)
    with pytest.raises(ErrsigError, match="unknown step"):
        AnalysisConfig().replace(steps="information,plotting")


class _Page(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.images, self.text = [], []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.images.append(dict(attrs)["src"])

    def handle_data(self, data):
        self.text.append(data)


@pytest.fixture(scope="module")
def report_index(tree, tmp_path_factory):
    tree = tree.copy()
    tree.attrs["source"] = "/data/monkey_C_2016-10-11.nwb"
    return write_report(tree, tmp_path_factory.mktemp("out") / "report")


def test_report_embeds_every_figure(report_index):
    index = report_index
    page = _Page()
    page.feed(index.read_text())
    assert len(page.images) >= 7
    assert all(src.startswith("data:image/png;base64,") for src in page.images)
    text = " ".join(page.text)
    assert "monkey_C_2016-10-11.nwb" in text
    assert "Summary per area" in text and "Methods" in text
    stems = {path.stem for path in index.parent.glob("*.pdf")}
    assert {"behavior", "information", "decoding", "tuning", "classification"} <= stems
    assert len(list(index.parent.glob("*.png"))) == len(stems)


def test_report_replaces_an_old_report_whole(tree, tmp_path):
    folder = tmp_path / "report"
    folder.mkdir()
    (folder / "stale.png").write_bytes(b"old")
    write_report(
        xr.DataTree.from_dict({"behavior": tree["behavior"].to_dataset()}), folder
    )
    assert not (folder / "stale.png").exists()
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())


def test_command_line_analyze_and_report(small_mixed, tmp_path, capsys):
    nwb = tmp_path / "session.nwb"
    write_nwb(small_mixed, nwb)
    results = tmp_path / "results.nc"
    status = main(
        [
            "analyze",
            str(nwb),
            "-o",
            str(results),
            "--seed",
            "3",
            "--n-perm",
            "20",
            "--steps",
            "information",
            "--no-progress",
        ]
    )
    assert status == 0 and results.exists()
    assert main(["report", str(results), "-o", str(tmp_path / "report")]) == 0
    assert "index.html" in capsys.readouterr().out


def test_command_line_names_missing_columns(small_mixed, tmp_path, capsys):
    session = small_mixed.select()
    session.trials = session.trials.drop(columns=["error_x"])
    nwb = tmp_path / "session.nwb"
    write_nwb(session, nwb)
    status = main(["analyze", str(nwb), "-o", str(tmp_path / "r.nc"), "--no-progress"])
    assert status == 2
    assert "error_x" in capsys.readouterr().err
    assert not (tmp_path / "r.nc").exists()
