import dataclasses
import functools
import json
import os

import dask
import numpy as np
import pytest
import xarray as xr

import sim
from errsig import ErrsigError
from errsig.analyze import AnalysisConfig, analyze_session, read_results
from errsig.batch import analyze_many, select_session, stack_sessions
from errsig.cli import main
from errsig.io import read_nwb, write_nwb

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
