import dataclasses
import functools
import json
import os
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import sim
from errsig import ErrsigError
from errsig.analyze import AnalysisConfig, analyze_session, read_results
from errsig.batch import (
    analyze_many,
    bin_trials_chunked,
    select_session,
    stack_sessions,
)
from errsig.binning import bin_trials
from errsig.classify import classify_units
from errsig.cli import main
from errsig.decoding import decode
from errsig.information import mutual_information
from errsig.io import read_nwb, write_nwb
from errsig.report import write_report
from errsig.stats import session_permutation

dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")

FULL = AnalysisConfig(
    bin_size=0.1, n_perm=20, n_perm_decoding=5, n_perm_coupling=5, seed=7
)
INFORMATION = FULL.replace(steps=("information",))


@pytest.fixture(scope="module")
def client():
    with dask.config.set({"distributed.scheduler.allowed-failures": 3}):
        cluster = distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        )
    with cluster, distributed.Client(cluster) as client:
        yield client


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sessions")
    paths = []
    # different unit and trial counts, so that stacking has to pad
    for seed, n_units, n_trials in [(1, 6, 160), (2, 5, 170), (3, 6, 160)]:
        path = folder / f"session{seed}.nwb"
        session = sim.simulate("S1", rng=seed, n_units=n_units, n_trials=n_trials)
        write_nwb(session, path)
        paths.append(str(path))
    return paths


def _assert_same_as_alone(tree, paths, config):
    for position, path in enumerate(paths):
        alone = analyze_session(read_nwb(path), config)
        selected = select_session(tree, path)
        groups = [node.path for node in alone.subtree if node.has_data]
        assert groups == [node.path for node in selected.subtree if node.has_data]
        for group in groups:
            xr.testing.assert_identical(
                selected[group].to_dataset(), alone[group].to_dataset()
            )
            for name, variable in alone[group].variables.items():
                if variable.dtype.kind in "biuf":
                    assert selected[group][name].dtype == variable.dtype, name
        assert tree.attrs["seed"] == alone.attrs["seed"]
        sessions = json.loads(tree.attrs["sessions"])
        assert sessions[position]["methods"] == alone.attrs["methods"]


def test_equals_each_session_alone(client, paths):
    tree = analyze_many(paths, client=client, config=FULL)

    mi = tree["information/error"]["mi"]
    assert mi.dims == ("session", "unit", "time")
    assert list(tree["information/error"]["session"].values) == paths
    # the 5-unit session is padded: NaN numbers, no valid unit
    assert tree["information/error"]["valid_unit"].sum("unit").values.tolist() == [
        6,
        5,
        6,
    ]
    assert np.isnan(mi.isel(session=1, unit=5)).all()
    assert json.loads(tree.attrs["failures"]) == []
    _assert_same_as_alone(tree, paths, FULL)


def _read_or_die(path, marker):
    """Kill this worker process the first time any task gets here."""
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL))
    except FileExistsError:
        return read_nwb(path)
    os._exit(1)


def test_killed_worker_task_is_rerun(client, paths, tmp_path):
    marker = str(tmp_path / "killed-once")
    read = functools.partial(_read_or_die, marker=marker)

    tree = analyze_many(paths, client=client, config=INFORMATION, read=read)

    assert os.path.exists(marker)
    assert json.loads(tree.attrs["failures"]) == []
    assert tree["information/error"].sizes["session"] == len(paths)
    _assert_same_as_alone(tree, paths, INFORMATION)


def test_failed_session_is_reported_and_others_complete(client, paths, tmp_path):
    corrupt = tmp_path / "corrupt.nwb"
    corrupt.write_bytes(b"this is not an HDF5 file")
    ordered = [paths[0], str(corrupt), paths[2]]

    tree = analyze_many(ordered, client=client, config=INFORMATION)

    failures = json.loads(tree.attrs["failures"])
    assert [f["file"] for f in failures] == [str(corrupt)]
    assert failures[0]["error"] == "NWBReadError"
    assert "not an HDF5 file" in failures[0]["message"]
    labels = list(tree["information/error"]["session"].values)
    assert labels == [paths[0], paths[2]]


def test_missing_column_is_a_session_failure(client, paths, tmp_path):
    session = sim.simulate("S1", rng=4, n_units=6, n_trials=160)
    without_reward = dataclasses.replace(
        session, trials=session.trials.drop(columns=["reward"])
    )
    lacking = tmp_path / "no_reward.nwb"
    write_nwb(without_reward, lacking)

    tree = analyze_many([paths[0], lacking], client=client, config=INFORMATION)

    failures = json.loads(tree.attrs["failures"])
    assert [f["file"] for f in failures] == [str(lacking)]
    assert failures[0]["error"] == "ColumnError"
    assert "reward" in failures[0]["message"]


def test_all_failed_raises(client, tmp_path):
    corrupt = tmp_path / "corrupt.nwb"
    corrupt.write_bytes(b"garbage")
    with pytest.raises(ErrsigError, match=r"every session failed.*corrupt\.nwb"):
        analyze_many([corrupt], client=client, config=INFORMATION)


def test_bad_paths():
    with pytest.raises(ErrsigError, match="`paths` is empty"):
        analyze_many([])
    with pytest.raises(ErrsigError, match="more than once"):
        analyze_many(["a.nwb", "a.nwb"])
    with pytest.raises(ErrsigError, match="cannot run null='session'"):
        analyze_many(["a.nwb"], config=INFORMATION.replace(null="session"))


def _cli_information(paths, output, scheduler):
    return main(
        [
            "analyze",
            *map(str, paths),
            "-o",
            str(output),
            "--scheduler",
            scheduler,
            "--steps",
            "information",
            "--n-perm",
            "20",
            "--seed",
            "7",
            "--no-progress",
        ]
    )


def test_cli_several_files(client, paths, tmp_path):
    output = tmp_path / "results.nc"

    status = _cli_information(paths, output, client.scheduler.address)

    assert status == 0
    back = read_results(output)
    assert list(back["information/reward"]["session"].values) == paths
    alone = analyze_session(
        read_nwb(paths[1]), AnalysisConfig(steps=("information",), n_perm=20, seed=7)
    )
    xr.testing.assert_identical(
        select_session(back, 1)["information/reward"].to_dataset(),
        alone["information/reward"].to_dataset(),
    )


def test_report_of_several_sessions_draws_the_one_asked_for(
    client, paths, tmp_path, capsys
):
    output = tmp_path / "results.nc"
    assert _cli_information(paths, output, client.scheduler.address) == 0

    with pytest.raises(ErrsigError, match=r"hold 3 sessions .*--session"):
        write_report(output, tmp_path / "report")
    assert not (tmp_path / "report").exists()

    status = main(
        ["report", str(output), "-o", str(tmp_path / "report"), "--session", "1"]
    )
    assert status == 0
    page = (tmp_path / "report" / "index.html").read_text()
    alone = analyze_session(
        read_nwb(paths[1]), AnalysisConfig(steps=("information",), n_perm=20, seed=7)
    )
    assert Path(paths[1]).name in page
    assert alone.attrs["methods"].split(".")[0] in page


def test_cli_partial_failure_exit_status(client, paths, tmp_path, capsys):
    corrupt = tmp_path / "corrupt.nwb"
    corrupt.write_bytes(b"garbage")
    output = tmp_path / "results.nc"

    status = _cli_information([paths[0], corrupt], output, client.scheduler.address)

    assert status == 1
    assert "corrupt.nwb" in capsys.readouterr().err
    assert output.exists()


def test_cli_unreachable_scheduler(paths, tmp_path, capsys):
    status = main(
        [
            "analyze",
            *paths,
            "-o",
            str(tmp_path / "r.nc"),
            "--scheduler",
            "nonsense://127.0.0.1:9",
        ]
    )
    assert status == 2
    assert "no dask scheduler answered" in capsys.readouterr().err


def test_stack_sessions_pads_flags_and_labels():
    a = xr.Dataset(
        {"significant": ("unit", [True, False]), "label": ("unit", ["vector", "none"])},
        coords={"unit": [10, 11], "area": ("unit", ["M1", "M1"])},
    )
    b = xr.Dataset(
        {"significant": ("unit", [True]), "label": ("unit", ["scalar"])},
        coords={"unit": [3], "area": ("unit", ["PMd"])},
    )
    stacked = stack_sessions([a, b], ["a", "b"])
    assert stacked["significant"].dtype == bool
    assert stacked["significant"].values.tolist() == [[True, False], [True, False]]
    assert stacked["label"].values.tolist() == [["vector", "none"], ["scalar", ""]]
    assert stacked["valid_unit"].values.tolist() == [[True, True], [True, False]]
    tree = xr.DataTree.from_dict({"classification": stacked})
    xr.testing.assert_identical(
        select_session(tree, "b")["classification"].to_dataset(), b
    )
    with pytest.raises(ErrsigError, match="not in the results"):
        select_session(tree, "c")


def test_chunked_counts_give_the_same_information():
    session = sim.simulate("S1", rng=5, n_units=7, n_trials=160)
    eager = bin_trials(session, bin_size=0.1)
    lazy = bin_trials_chunked(session, unit_chunk=3, bin_size=0.1)
    assert lazy["counts"].chunksizes["unit"] == (3, 3, 1)
    xr.testing.assert_identical(lazy.compute(), eager)

    for options in (
        dict(target="error"),
        dict(target="reward"),
        dict(target="error_magnitude", ties="random"),
        dict(target="error", by="area"),
    ):
        alone = mutual_information(eager, n_perm=20, rng=3, **options)
        chunked = mutual_information(lazy, n_perm=20, rng=3, **options)
        xr.testing.assert_identical(chunked, alone)


def test_bad_unit_chunk():
    session = sim.simulate("S1", rng=5, n_units=3, n_trials=100)
    with pytest.raises(ErrsigError, match="`unit_chunk` must be a positive"):
        bin_trials_chunked(session, unit_chunk=0)


def _binned(scenario, seeds):
    return [
        bin_trials(
            sim.simulate(scenario, rng=seed, n_units=6, n_trials=160), bin_size=0.1
        )
        for seed in seeds
    ]


def test_session_null_false_positive_rate():
    datasets = _binned("S0", range(10))
    draws = session_permutation(datasets, "error")

    p_values, family_wise = [], []
    for ds, draw in zip(datasets, draws, strict=True):
        result = mutual_information(
            ds, "error", null="session", surrogates=draw, alpha=0.2
        )
        assert result.attrs["n_perm"] == 9
        p_values.append(result["p_uncorrected"].values.ravel())
        family_wise.append(bool(result["significant"].any()))
    p_values = np.concatenate(p_values)

    # 9 other sessions: p takes the values 0.1, 0.2, ..., 1, uniformly under the null
    for level in (0.1, 0.3, 0.5):
        assert abs(np.mean(p_values <= level + 1e-9) - level) < 0.07, level
    assert np.mean(family_wise) <= 0.4


def test_session_null_finds_error_units():
    datasets = _binned("S1", range(3, 9))
    draws = session_permutation(datasets, "error")
    detected = []
    for ds, draw in zip(datasets, draws, strict=True):
        result = mutual_information(ds, "error", null="session", surrogates=draw)
        detected.append(result["p_uncorrected"].min().item())
    assert np.mean(np.isclose(detected, 1 / 6)) >= 0.8


def test_session_null_needs_its_draws():
    (ds,) = _binned("S0", [0])
    with pytest.raises(ErrsigError, match=r"needs several sessions: pass `surrogates`"):
        mutual_information(ds, "error", null="session")
    draws = session_permutation(_binned("S0", [0, 1, 2]), "error")
    with pytest.raises(ErrsigError, match="`surrogates` are the draws of"):
        mutual_information(ds, "error", surrogates=draws[0])
    with pytest.raises(ErrsigError, match=r"keys \['error'\]"):
        mutual_information(ds, "error", null="session", surrogates={"x": draws[0]})


def test_decode_session_null_is_uniform_on_null_sessions_and_finds_error_areas():
    datasets = _binned("S0", range(10))
    draws = session_permutation(datasets, "error")
    p_values = []
    for ds, draw in zip(datasets, draws, strict=True):
        result = decode(ds, "error", null="session", surrogates=draw)
        assert result.attrs["n_perm"] == 9
        p_values.append(result["p_uncorrected"].values.ravel())
    p_values = np.concatenate(p_values)
    for level in (0.1, 0.3, 0.5):
        assert abs(np.mean(p_values <= level + 1e-9) - level) < 0.07, level

    # S1 plants error units in PMd: its decoder beats every other session's
    # behaviour (p at its floor, 1/6) in most sessions.
    datasets = _binned("S1", range(3, 9))
    draws = session_permutation(datasets, "error")
    floors = [
        decode(ds, "error", null="session", surrogates=draw)["p_uncorrected"]
        .sel(area="PMd")
        .min()
        .item()
        for ds, draw in zip(datasets, draws, strict=True)
    ]
    assert np.mean(np.isclose(floors, 1 / 6)) >= 0.8


def test_decode_session_null_checks_its_draws():
    datasets = _binned("S0", [0, 1, 2])
    draws = session_permutation(datasets, "error")
    with pytest.raises(ErrsigError, match="takes them as `surrogates`"):
        decode(datasets[0], "error", null="session")
    with pytest.raises(ErrsigError, match="goes with null='session' only"):
        decode(datasets[0], "error", surrogates=draws[0])
    with pytest.raises(ErrsigError, match="drawn for another target or session"):
        decode(datasets[0], "error", null="session", surrogates=draws[1])
    with pytest.raises(ErrsigError, match="supports lags=0 only"):
        decode(datasets[0], "error", null="session", surrogates=draws[0], lags=[0, 1])


def test_chunked_counts_are_loaded_small_for_the_whole_unit_analyses():
    from errsig._validation import loaded_counts

    session = sim.simulate("S1", rng=5, n_units=7, n_trials=160)
    eager = bin_trials(session, bin_size=0.1)
    lazy = bin_trials_chunked(session, unit_chunk=3, bin_size=0.1)
    loaded = loaded_counts(lazy)
    assert loaded["counts"].chunks is None
    assert loaded["counts"].dtype == np.int8
    np.testing.assert_array_equal(loaded["counts"].values, eager["counts"].values)
    assert loaded_counts(eager) is eager

    alone = classify_units(eager, n_perm=20, rng=3)
    xr.testing.assert_identical(classify_units(lazy, n_perm=20, rng=3), alone)


def test_decoding_lazy_counts_equals_eager():
    session = sim.simulate("S1", rng=5, n_units=7, n_trials=160)
    eager = bin_trials(session, bin_size=0.1)
    lazy = bin_trials_chunked(session, unit_chunk=3, bin_size=0.1)
    alone = decode(eager, "error", n_perm=5, rng=3)
    xr.testing.assert_identical(decode(lazy, "error", n_perm=5, rng=3), alone)
