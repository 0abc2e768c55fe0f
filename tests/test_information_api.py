"""mutual_information on small synthetic datasets: answers, shapes, errors."""

import numpy as np
import pytest
import xarray as xr

from errsig import (
    ColumnError,
    DataRepairWarning,
    ErrsigError,
    InsufficientDataError,
)
from errsig.information import gccmi, gcmi_continuous, gcmi_discrete, mutual_information
from tests._information_data import information_dataset


@pytest.fixture(scope="module")
def planted():
    """Unit 0 codes the error x from bin 2 on; unit 1 codes the reward."""
    error_gain = np.zeros((4, 5, 2))
    error_gain[0, 2:, 0] = 0.5
    reward_gain = np.zeros((4, 5))
    reward_gain[1] = 0.6
    return information_dataset(
        np.random.default_rng(0), error_gain=error_gain, reward_gain=reward_gain
    )


def test_finds_planted_units_where_they_are(planted):
    error = mutual_information(planted, "error", n_perm=199, rng=1)
    np.testing.assert_array_equal(
        error["significant"].values[0], [False, False, True, True, True]
    )
    assert not error["significant"].values[1:].any()
    assert error["onset_latency"].values[0] == pytest.approx(0.04)

    reward = mutual_information(planted, "reward", n_perm=199, rng=1)
    assert reward["significant"].values[1].all()
    assert not reward["significant"].values[[0, 2, 3]].any()


def test_mi_is_the_estimator_on_each_unit_and_bin(planted):
    result = mutual_information(planted, "error", n_perm=19, null="shuffle", rng=0)
    counts = planted["counts"].values
    error = planted["error"].values
    for unit, time in [(0, 3), (2, 1)]:
        expected = gcmi_continuous(counts[:, unit, time], error)
        assert result["mi"].values[unit, time] == pytest.approx(expected, abs=1e-10)

    reward = mutual_information(planted, "reward", n_perm=19, null="shuffle", rng=0)
    expected = gcmi_discrete(counts[:, 1, 0], planted["reward"].values)
    assert reward["mi"].values[1, 0] == pytest.approx(expected, abs=1e-10)

    magnitude = np.hypot(error[:, 0], error[:, 1])
    conditional = mutual_information(
        planted, "error", given="error_magnitude", n_perm=19, null="shuffle", rng=0
    )
    expected = gccmi(counts[:, 0, 4], error, magnitude)
    assert conditional["mi"].values[0, 4] == pytest.approx(expected, abs=1e-10)


def test_result_records_how_it_was_made(planted):
    result = mutual_information(
        planted, "error", n_perm=49, null="shuffle", correction="fdr", rng=3
    )
    assert result["mi"].dims == ("unit", "time")
    assert result["mi"].attrs["units"] == "bits"
    assert result.attrs["seed"] == "3"
    assert result.attrs["null_ignores_trial_order"] == 1
    assert "ignores trial order" in result.attrs["null_note"]
    assert result.attrs["p_floor"] == pytest.approx(1 / (49 * 20 + 1))
    assert result.attrs["correction"] == "fdr"
    p_uncorrected = result["p_uncorrected"].values * 50
    np.testing.assert_allclose(p_uncorrected, np.round(p_uncorrected))  # (k+1)/(P+1)
    again = mutual_information(
        planted, "error", n_perm=49, null="shuffle", correction="fdr", rng=3
    )
    np.testing.assert_array_equal(result["p"].values, again["p"].values)


@pytest.mark.parametrize(
    "options",
    [
        dict(target="error", given="kinematics"),
        dict(target="reward"),
        dict(target="error_magnitude", ties="random"),
        dict(target="error", by="area", n_boot=3),
        dict(target="reward", by="area"),
    ],
)
def test_small_chunks_and_small_integers_give_the_same_numbers(
    planted, options, monkeypatch
):
    from errsig.information import _api

    kinematics = np.random.default_rng(5).normal(size=(200, 5, 2))
    data = planted.assign(kinematics=(("trial", "time", "component"), kinematics))
    whole = mutual_information(data, n_perm=19, rng=4, **options)
    compact = data.assign(counts=data["counts"].astype(np.int8))
    # one unit (per-unit tests) or one bin of one area (area tests) per chunk
    monkeypatch.setattr(_api, "UNIT_CHUNK_BYTES", 1)
    xr.testing.assert_identical(
        mutual_information(compact, n_perm=19, rng=4, **options), whole
    )


def test_population_by_area(planted):
    result = mutual_information(planted, "error", by="area", n_perm=99, rng=2)
    assert result["mi"].dims == ("area", "time")
    assert list(result["area"].values) == ["M1", "PMd"]
    assert result["significant"].values[0, 2:].all()
    assert not result["significant"].values[1].any()
    assert result.attrs["n_components"] == 10
    assert result["onset_latency"].dims == ("area",)


def test_conditioning_on_the_kinematic_trajectory_and_cluster(planted):
    kinematics = np.random.default_rng(5).normal(size=(200, 5, 2))
    data = planted.assign(kinematics=(("trial", "time", "component"), kinematics))
    result = mutual_information(
        data, "error", given="kinematics", correction="cluster", n_perm=99, rng=2
    )
    assert result["significant"].values[0, 2:].all()
    counts = data["counts"].values
    trajectory = kinematics.reshape(200, -1)  # 10 dims: no reduction at 200 trials
    expected = gccmi(counts[:, 0, 2], data["error"].values, trajectory)
    assert result["mi"].values[0, 2] == pytest.approx(expected, abs=1e-10)


def test_conditioning_on_several_variables_jointly(planted):
    kinematics = np.random.default_rng(6).normal(size=(200, 5, 2))
    data = planted.assign(kinematics=(("trial", "time", "component"), kinematics))
    result = mutual_information(
        data,
        "error",
        given=["reward", "kinematics", "target_angle"],
        null="shuffle",
        n_perm=49,
        rng=2,
    )
    assert result.attrs["given"] == "reward,kinematics,target_angle"
    counts = data["counts"].values
    conditioning = np.column_stack(
        [
            data["reward"].values,
            data["target_angle"].values,
            kinematics.reshape(200, -1),
        ]
    )
    expected = gccmi(counts[:, 0, 3], data["error"].values, conditioning)
    assert result["mi"].values[0, 3] == pytest.approx(expected, abs=1e-10)
    assert result["significant"].values[0, 2:].all()


def test_linear_shift_uses_a_window_of_trials(planted):
    result = mutual_information(planted, "error", null="linear_shift", n_perm=40)
    assert result.attrs["p_floor"] == pytest.approx(1 / 41)
    assert result["significant"].values[0, 2:].all()


@pytest.mark.parametrize("method", ["binned", "ksg"])
def test_other_estimators_find_the_planted_unit(planted, method):
    subset = planted.isel(unit=[0, 2], time=[0, 4])
    result = mutual_information(
        subset, "error", method=method, null="shuffle", n_perm=49, rng=4
    )
    assert result["significant"].values[0, 1]
    assert not result["significant"].values[1].any()
    assert result.attrs["method"] == method


def test_constant_units_are_masked_with_a_warning(planted):
    data = planted.copy()
    counts = data["counts"].values.copy()
    counts[:, 3, :] = 2
    data["counts"] = (("trial", "unit", "time"), counts)
    with pytest.warns(DataRepairWarning, match="5 of 20 unit × time bins"):
        result = mutual_information(data, "error", n_perm=19, null="shuffle", rng=0)
    assert result["masked"].values[3].all()
    assert np.isnan(result["mi"].values[3]).all()
    assert np.isnan(result["p"].values[3]).all()
    assert not result["masked"].values[:3].any()


@pytest.mark.parametrize(
    ("arguments", "error", "match"),
    [
        ({"method": "plugin"}, ErrsigError, "`method` must be one of"),
        ({"null": "session"}, ErrsigError, "needs several sessions"),
        ({"null": "bootstrap"}, ErrsigError, "`null` must be"),
        ({"by": "unit"}, ErrsigError, "`by` must be None or 'area'"),
        ({"by": "area", "method": "ksg"}, ErrsigError, "needs method='gcmi'"),
        ({"correction": "bonferroni"}, ErrsigError, "`correction` must be"),
        ({"alpha": 1.5}, ErrsigError, "`alpha` must lie in"),
        ({"method": "binned", "bias": "miller"}, ErrsigError, "`bias` must be"),
        ({"given": "error"}, ErrsigError, "conditioning a variable on itself"),
        ({"given": ["reward", "reward"]}, ErrsigError, "names a variable twice"),
        ({"given": [3]}, ErrsigError, "a variable name or a sequence"),
        ({"given": "speed"}, ColumnError, "`given`"),
        ({"target": "lick_rate"}, ColumnError, "`target`"),
        ({"target": "reward", "given": "error_magnitude"}, ErrsigError, "continuous"),
    ],
)
def test_bad_arguments_are_named(planted, arguments, error, match):
    arguments = {"target": "error", **arguments}
    target = arguments.pop("target")
    with pytest.raises(error, match=match):
        mutual_information(planted, target, n_perm=9, rng=0, **arguments)


def test_bad_datasets_are_explained(planted):
    with pytest.raises(ColumnError, match="`counts` variable"):
        mutual_information(planted.drop_vars("counts"), "error")
    with pytest.raises(InsufficientDataError, match="at least 10 trials"):
        mutual_information(planted.isel(trial=slice(0, 8)), "error")
    with pytest.raises(InsufficientDataError, match="single value"):
        mutual_information(
            planted.assign_coords(reward=("trial", np.ones(200, bool))),
            "reward",
            null="shuffle",
            n_perm=9,
        )
    counts = planted["counts"].astype(float).values
    counts[0, 0, 0] = np.nan
    with pytest.raises(ErrsigError, match="contains NaN"):
        mutual_information(
            planted.assign(counts=(("trial", "unit", "time"), counts)), "error"
        )


def test_fixed_given_shortcut_equals_the_joined_basis():
    from errsig.information import _api, _engine
    from errsig.information._copula import copnorm

    rng = np.random.default_rng(9)
    n_trials = 300
    given_values = copnorm(rng.normal(size=(n_trials, 12)))
    error = rng.normal(size=(31, n_trials, 2))
    error[0] += 0.3 * given_values[:, :2]  # the target depends on the given too
    counts = rng.poisson(np.exp(0.5 + 0.4 * given_values[:, :3] @ np.ones((3, 40))))
    neural, _ = _engine.unit_norm_columns(copnorm(counts))
    target = _api._TrialVariable("error", error, False)
    given = _api._TrialVariable("given", given_values[None], False)

    prepared = _api._prepare_target(target, given)
    assert prepared.given_basis is not None  # the shortcut is taken
    shortcut = _api._gaussian_mi(neural, prepared, 1, False)
    joined = _api._gaussian_mi(neural, _api._joined_basis(prepared), 1, False)
    np.testing.assert_allclose(shortcut, joined, rtol=0, atol=1e-12)
    reference = gccmi(neural[:, 5], copnorm(error[0]), given_values)
    assert shortcut[0, 5] == pytest.approx(reference, abs=1e-10)


@pytest.mark.parametrize("shape", [(400, 60), (120, 400)])
def test_leading_components_span_the_svd_subspace(shape):
    from errsig.information import _api

    rng = np.random.default_rng(3)
    n_trials, n_units = shape
    latent = rng.normal(size=(n_trials, 4)) @ rng.normal(size=(4, n_units))
    active = latent + rng.normal(size=shape)
    active -= active.mean(axis=0)
    active /= np.linalg.norm(active, axis=0)
    fast = _api._leading_components(active, 10)
    exact = _api._svd_components(active, 10)
    assert fast.shape == exact.shape == (n_trials, 10)
    np.testing.assert_allclose(fast.T @ fast, np.eye(10), atol=1e-12)
    np.testing.assert_allclose(fast @ fast.T, exact @ exact.T, atol=1e-12)


def test_leading_components_of_a_rank_deficient_area_keep_its_rank():
    from errsig.information import _api

    rng = np.random.default_rng(4)
    columns = rng.normal(size=(300, 4))
    active = np.hstack([columns] * 10)  # 40 units, rank 4
    active -= active.mean(axis=0)
    active /= np.linalg.norm(active, axis=0)
    assert _api._leading_components(active, 10).shape == (300, 4)


def test_result_does_not_keep_the_surrogates_alive(planted):
    result = mutual_information(planted, "error", n_perm=19, rng=1)
    for name in result.data_vars:
        values = result[name].values
        owner = values if values.base is None else values.base
        assert owner.size <= values.size, name  # no view into a draws array
