"""Tests of errsig.decoding against scikit-learn and analytic answers."""

import numpy as np
import pytest
import xarray as xr
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge, RidgeCV
from sklearn.metrics import balanced_accuracy_score, r2_score, roc_auc_score
from sklearn.model_selection import KFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import errsig
from errsig import ColumnError, ErrsigError, InsufficientDataError
from errsig.decoding import (
    _linear,
    _metrics,
    blocked_folds,
    decode,
    decode_unit_curve,
)
from errsig.decoding._inputs import PopulationFeatures, windowed_features
from errsig.decoding._linear import logistic_cv_predict, ridge_cv_predict

ALPHAS = np.logspace(-1, 5, 13)


def make_dataset(
    rng,
    n_trials=120,
    n_units=(6,),
    n_bins=3,
    gain=0.4,
    signal_bins=None,
    error=None,
    reward_gain=0.0,
):
    """Poisson counts; units of the first area are tuned to the error."""
    if error is None:
        error = rng.normal(size=(n_trials, 2))
    reward = rng.random(n_trials) < 0.5
    areas, blocks = [], []
    for position, size in enumerate(n_units):
        weights = rng.normal(size=(2, size)) * (gain if position == 0 else 0.0)
        drive = error @ weights + reward_gain * (position == 0) * reward[:, None]
        bins = np.zeros(n_bins, dtype=bool)
        bins[signal_bins if signal_bins is not None else slice(None)] = True
        log_rate = 1.0 + drive[:, :, None] * bins
        blocks.append(rng.poisson(np.exp(log_rate)))
        areas += [f"A{position}"] * size
    return xr.Dataset(
        {
            "counts": (("trial", "unit", "time"), np.concatenate(blocks, axis=1)),
            "error": (("trial", "component"), error),
        },
        coords={
            "area": ("unit", areas),
            "time": 0.05 * np.arange(n_bins),
            "component": ["x", "y"],
            "reward": ("trial", reward),
            "trial_index": ("trial", np.arange(n_trials)),
            "phase": ("trial", np.repeat(["baseline", "force_field"], n_trials // 2)),
        },
    )


def sklearn_pipeline(estimator):
    return make_pipeline(StandardScaler(), estimator)


@pytest.mark.parametrize(("n_trials", "n_features"), [(100, 8), (50, 80)])
def test_ridge_matches_sklearn_ridge_and_ridgecv(seed, n_trials, n_features):
    rng = np.random.default_rng(seed)
    features = rng.poisson(3, size=(3, n_trials, n_features)).astype(float)
    targets = rng.normal(size=(n_trials, 6))
    targets[:, :2] += features[0, :, :2]
    folds = blocked_folds(np.arange(n_trials), 4)

    predictions, chosen = ridge_cv_predict(features, targets, folds, ALPHAS, 2)

    for fold, (train, test) in enumerate(folds):
        for time_bin in range(3):
            for problem in range(3):
                columns = slice(2 * problem, 2 * problem + 2)
                reference = sklearn_pipeline(RidgeCV(alphas=ALPHAS))
                reference.fit(features[time_bin, train], targets[train, columns])
                best = ALPHAS[chosen[fold, time_bin, problem]]
                assert best == reference[-1].alpha_
                fixed = sklearn_pipeline(Ridge(alpha=best))
                fixed.fit(features[time_bin, train], targets[train, columns])
                np.testing.assert_allclose(
                    predictions[time_bin, test, columns],
                    fixed.predict(features[time_bin, test]),
                    rtol=0,
                    atol=1e-8,
                )


@pytest.mark.parametrize("solver", ["direct", "truncated"])
def test_logistic_matches_sklearn(seed, solver, monkeypatch):
    if solver == "truncated":  # conjugate-gradient Newton steps on these 8 columns
        monkeypatch.setattr(_linear, "DIRECT_NEWTON_PARAMETERS", 0)
    rng = np.random.default_rng(seed)
    features = rng.poisson(3, size=(2, 90, 7)).astype(float)
    labels = (rng.random((90, 3)) < 0.4).astype(float)
    labels[:, 0] = features[0, :, 0] > 3
    folds = blocked_folds(np.arange(90), 3)

    decisions = logistic_cv_predict(features, labels, folds, alpha=2.0)

    for train, test in folds:
        for time_bin in range(2):
            for problem in range(3):
                reference = sklearn_pipeline(
                    LogisticRegression(C=0.5, tol=1e-12, max_iter=10_000)
                )
                reference.fit(features[time_bin, train], labels[train, problem])
                np.testing.assert_allclose(
                    decisions[time_bin, test, problem],
                    reference.decision_function(features[time_bin, test]),
                    atol=1e-5,
                )


@pytest.mark.parametrize("signal", [0.0, 0.4, 2.0])
def test_truncated_newton_equals_direct_newton(signal, monkeypatch):
    # Above DIRECT_NEWTON_PARAMETERS the Newton systems are solved by
    # conjugate gradients; the optimum, and so the decisions, must not move,
    # from chance-level surrogates to a nearly separable observed target.
    rng = np.random.default_rng(7)
    n_rows, n_features = 240, 150
    features = rng.poisson(1.0, size=(2, n_rows, n_features)).astype(float)
    drive = features[:, :, :10].sum(axis=-1) - 10.0
    labels = (rng.random((n_rows, 4)) < 0.6).astype(float)
    labels[:, 0] = signal * drive[0] + rng.normal(size=n_rows) > 0
    folds = blocked_folds(np.arange(n_rows), 4)
    assert n_features + 1 > _linear.DIRECT_NEWTON_PARAMETERS

    truncated = logistic_cv_predict(features, labels, folds, alpha=1.0)
    monkeypatch.setattr(_linear, "DIRECT_NEWTON_PARAMETERS", 10**6)
    direct = logistic_cv_predict(features, labels, folds, alpha=1.0)

    np.testing.assert_allclose(truncated, direct, rtol=0, atol=1e-9)


def test_truncated_newton_warns_when_separable(monkeypatch):
    monkeypatch.setattr(_linear, "DIRECT_NEWTON_PARAMETERS", 0)
    rng = np.random.default_rng(1)
    features = rng.normal(size=(1, 60, 3))
    labels = (features[0, :, :1] > 0).astype(float)  # perfectly separable
    folds = blocked_folds(np.arange(60), 3)

    with pytest.warns(errsig.ConvergenceWarning, match="penalty"):
        logistic_cv_predict(features, labels, folds, alpha=1e-12, max_iter=5)


def test_decode_error_scores_match_sklearn_cross_val_predict():
    ds = make_dataset(np.random.default_rng(3), n_units=(7, 5))
    folds = blocked_folds(np.arange(120), 5)

    result = decode(ds, "error", n_perm=0)

    for area in ("A0", "A1"):
        for time_bin in range(3):
            counts = ds["counts"].sel(unit=ds.area == area).isel(time=time_bin).values
            predicted = cross_val_predict(
                sklearn_pipeline(RidgeCV(alphas=ALPHAS)),
                counts,
                ds["error"].values,
                cv=folds,
            )
            cell = result.sel(area=area).isel(time=time_bin)
            expected = r2_score(
                ds["error"].values, predicted, multioutput="variance_weighted"
            )
            np.testing.assert_allclose(cell["score"], expected, atol=1e-8)
            np.testing.assert_allclose(
                cell["r2"],
                r2_score(ds["error"].values, predicted, multioutput="raw_values"),
                atol=1e-8,
            )
            for component in range(2):
                correlation = np.corrcoef(
                    predicted[:, component], ds["error"].values[:, component]
                )[0, 1]
                np.testing.assert_allclose(
                    cell["correlation"][component], correlation, atol=1e-10
                )
    assert result["score"].sel(area="A0").min() > 0.2
    assert result["score"].sel(area="A1").max() < 0.05
    assert result["penalty"].dims == ("area", "fold", "time")


def test_decode_reward_matches_sklearn_metrics():
    rng = np.random.default_rng(4)
    ds = make_dataset(rng, n_trials=150, gain=0.0, reward_gain=0.8)
    folds = blocked_folds(np.arange(150), 5)

    result = decode(ds, "reward", n_perm=0, penalties=0.5)

    counts = ds["counts"].isel(time=1).values
    decision = cross_val_predict(
        sklearn_pipeline(LogisticRegression(C=2.0, tol=1e-12, max_iter=10_000)),
        counts,
        ds["reward"].values,
        cv=folds,
        method="decision_function",
    )
    cell = result.sel(area="A0").isel(time=1)
    np.testing.assert_allclose(
        cell["auc"], roc_auc_score(ds["reward"].values, decision), atol=1e-6
    )
    np.testing.assert_allclose(
        cell["balanced_accuracy"],
        balanced_accuracy_score(ds["reward"].values, decision > 0),
    )
    assert result.attrs["metric"] == "roc_auc"
    assert float(cell["score"]) > 0.75


def test_generic_estimator_equals_ridge_path_with_fixed_penalty():
    ds = make_dataset(np.random.default_rng(5), n_trials=60, n_units=(4,), n_bins=2)

    fast = decode(ds, "error", n_perm=0, penalties=3.0)
    generic = decode(ds, "error", n_perm=0, model=Ridge(alpha=3.0))

    np.testing.assert_allclose(fast["score"], generic["score"], atol=1e-10)
    assert generic.attrs["model"].startswith("Ridge")


def test_lags_pair_activity_with_later_target():
    rng = np.random.default_rng(6)
    error = rng.normal(size=(200, 2))
    # Activity on trial t carries the error of trial t - 1.
    previous = np.roll(error, 1, axis=0)
    ds = make_dataset(rng, n_trials=200, error=previous, n_bins=1, gain=0.6)
    ds["error"] = (("trial", "component"), error)

    result = decode(ds, "error", lags=[-1, 0, 1], n_perm=0)

    scores = result["score"].sel(area="A0").isel(time=0)
    assert scores.sel(lag=-1) > 0.3
    assert abs(scores.sel(lag=0)) < 0.05
    assert abs(scores.sel(lag=1)) < 0.05
    assert "lag" not in decode(ds, "error", lags=-1, n_perm=0)["score"].dims


def test_given_covariates_remove_kinematic_confound():
    rng = np.random.default_rng(7)
    n_trials = 200
    velocity = rng.normal(size=(n_trials, 2))
    error = velocity + 0.3 * rng.normal(size=(n_trials, 2))
    # Units encode the velocity only; the error is a function of velocity.
    ds = make_dataset(rng, n_trials=n_trials, error=velocity, n_bins=1, gain=0.6)
    ds["error"] = (("trial", "component"), error)
    ds["kinematics"] = (("trial", "time", "component"), velocity[:, None, :])

    plain = decode(ds, "error", n_perm=0)
    nested = decode(ds, "error", given="kinematics", n_perm=0)

    assert plain["score"].sel(area="A0").item() > 0.3
    assert nested["score_given"].sel(area="A0").item() > 0.8
    assert abs(nested["score"].sel(area="A0").item()) < 0.02
    np.testing.assert_allclose(
        nested["score"], nested["score_full"] - nested["score_given"]
    )


def test_window_concatenates_bins():
    ds = make_dataset(np.random.default_rng(8), n_bins=4, signal_bins=[1, 2])

    result = decode(ds, "error", window=2, n_perm=0)

    np.testing.assert_allclose(result["time"], ds["time"].values[1:])
    scores = result["score"].sel(area="A0").values
    assert scores[0] > 0.2 and scores[1] > scores[0] and scores[2] > 0.2


def test_blocked_folds_gap_and_strata():
    phases = np.repeat([0, 1], 10)

    folds = blocked_folds(np.arange(20), 2, gap=2, strata=phases)

    assert [test.tolist() for _, test in folds] == [
        [0, 1, 2, 3, 4, 10, 11, 12, 13, 14],
        [5, 6, 7, 8, 9, 15, 16, 17, 18, 19],
    ]
    assert folds[0][0].tolist() == [7, 17, 18, 19]


def test_unit_curve_grows_with_units():
    ds = make_dataset(np.random.default_rng(9), n_units=(12,), n_bins=1, gain=0.3)

    curve = decode_unit_curve(ds, "error", n_units=[1, 4, 12], n_repeats=4, rng=1)

    mean = curve["score_mean"].sel(area="A0").isel(time=0).values
    assert mean[0] < mean[1] < mean[2]
    assert curve["score"].sizes["repeat"] == 4
    np.testing.assert_array_equal(
        curve["score"].values,
        decode_unit_curve(ds, "error", n_units=[1, 4, 12], n_repeats=4, rng=1)[
            "score"
        ].values,
    )


def test_unit_curve_size_beyond_area_is_nan():
    ds = make_dataset(np.random.default_rng(10), n_units=(3, 6), n_bins=1)

    curve = decode_unit_curve(ds, "error", n_units=[2, 6], n_repeats=2, rng=0)

    assert np.isnan(curve["score"].sel(area="A0", n_units=6)).all()
    assert np.isfinite(curve["score"].sel(area="A1", n_units=6)).all()


def test_by_none_pools_all_units():
    ds = make_dataset(np.random.default_rng(11), n_units=(3, 4), n_bins=1)

    result = decode(ds, "error_x", by=None, n_perm=0)

    assert result["area"].values.tolist() == ["all"]
    assert result["n_units"].values.tolist() == [7]
    assert result["r2"].sizes["component"] == 1


# --- features made a chunk of bins at a time -------------------------------------


def test_population_features_equal_windowed_features_of_the_whole_array():
    rng = np.random.default_rng(20)
    counts = rng.poisson(40.0, size=(30, 7, 6)).astype(np.int8)
    rows = np.r_[3:25]
    units = np.array([True, False, True, True, False, True, True])
    covariates = rng.normal(size=(4, len(rows), 2))
    whole = np.concatenate(
        [covariates, windowed_features(counts[rows][:, units].astype(float), 3)],
        axis=-1,
    )

    features = PopulationFeatures(counts, rows, units, 3, covariates=covariates)

    assert features.shape == whole.shape
    for bins in (slice(0, 4), slice(1, 2), slice(2, 4)):
        np.testing.assert_array_equal(features[bins], whole[bins])
        assert features[bins].dtype == np.float64
    labels = (rng.random((len(rows), 2)) < 0.5).astype(float)
    folds = blocked_folds(np.arange(len(rows)), 3)
    np.testing.assert_array_equal(
        logistic_cv_predict(features, labels, folds, 1.0),
        logistic_cv_predict(whole, labels, folds, 1.0),
    )


def chunk_sizes(monkeypatch):
    """Record the number of bins in each chunk of features the decoders make."""
    sizes = []
    make_chunk = PopulationFeatures.__getitem__

    def recorded(features, bins):
        block = make_chunk(features, bins)
        sizes.append(len(block))
        return block

    monkeypatch.setattr(PopulationFeatures, "__getitem__", recorded)
    return sizes


@pytest.mark.parametrize(
    ("target", "kwargs"),
    [
        ("error", {}),
        ("error", {"window": 2, "lags": [0, 1]}),
        ("error_x", {"given": "speed", "by": None}),
        ("error_magnitude", {"model": LinearRegression()}),
    ],
)
def test_decoding_one_bin_at_a_time_equals_one_chunk(monkeypatch, target, kwargs):
    ds = make_dataset(np.random.default_rng(21), n_units=(6, 3), n_bins=6)
    speed = np.random.default_rng(22).normal(size=(120, 6))
    ds["speed"] = (("trial", "time"), speed)
    options = {"n_perm": 4, "null": "shuffle", "rng": 1} | kwargs
    whole = decode(ds, target, **options)
    sizes = chunk_sizes(monkeypatch)

    monkeypatch.setattr(_linear, "WORK_BYTES", 1)
    monkeypatch.setattr(_metrics, "CHUNK_ELEMENTS", 1)
    chunked = decode(ds, target, **options)

    xr.testing.assert_identical(chunked, whole)
    assert set(sizes) == {1}


@pytest.mark.parametrize("dtype", ["int8", "int16", "float32"])
def test_small_integer_counts_decode_as_int32(dtype):
    ds = make_dataset(np.random.default_rng(23), n_units=(6, 3), n_bins=3)
    # Counts up to the int8 limit: their squares and sums would overflow it.
    counts = ds["counts"].values.astype(np.int32)
    ds["counts"] = (ds["counts"].dims, counts + 127 - counts.max())
    small = ds.assign(counts=ds["counts"].astype(dtype))

    for target in ("error", "reward"):
        xr.testing.assert_identical(
            decode(small, target, n_perm=3, null="shuffle", rng=2),
            decode(ds, target, n_perm=3, null="shuffle", rng=2),
        )
    xr.testing.assert_identical(
        decode_unit_curve(small, "error", n_units=[2, 6], n_repeats=2, rng=3),
        decode_unit_curve(ds, "error", n_units=[2, 6], n_repeats=2, rng=3),
    )


def test_trials_out_of_order_decode_as_in_order():
    ds = learning_dataset(np.random.default_rng(24))
    shuffled = ds.isel(trial=np.random.default_rng(25).permutation(ds.sizes["trial"]))

    for null in ("shuffle", "linear_shift"):
        xr.testing.assert_identical(
            decode(shuffled, "error", n_perm=3, null=null, rng=4),
            decode(ds, "error", n_perm=3, null=null, rng=4),
        )


# --- errors -------------------------------------------------------------------


@pytest.fixture
def small_ds():
    return make_dataset(np.random.default_rng(12), n_trials=40, n_bins=2)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"target": "licks"}, ColumnError, "not a trial variable.*available"),
        ({"by": "probe"}, ColumnError, "`by`='probe' is not a coordinate"),
        ({"model": "svm"}, ErrsigError, "`model` must be"),
        ({"model": "logistic"}, ErrsigError, "classifies, but"),
        ({"cv": 1}, ErrsigError, "at least 2 folds"),
        ({"cv": KFold(3).split(np.zeros(10))}, ErrsigError, "exactly once"),
        ({"window": 5}, ErrsigError, "longer than the 2 time bins"),
        ({"lags": 39}, InsufficientDataError, "smaller lags"),
        ({"lags": 0.5}, ErrsigError, "`lags` must be an int"),
        ({"null": "session"}, ErrsigError, "takes them as `surrogates`"),
        ({"null": "bootstrap"}, ErrsigError, "`null` must be one of"),
        ({"penalties": [-1.0]}, ErrsigError, "positive finite"),
        ({"given": "force"}, ColumnError, "`given`='force'"),
        ({"stratify": "block"}, ColumnError, "`stratify`='block'"),
        ({"gap": 15}, InsufficientDataError, "smaller `gap`"),
        ({"alpha": 2.0}, ErrsigError, "`alpha` must be in"),
        ({"correction": "bonferroni"}, ErrsigError, "`correction` must be one of"),
    ],
)
def test_decode_rejects_bad_arguments(small_ds, kwargs, error, match):
    arguments = {"target": "error", "n_perm": 0, "cv": 5} | kwargs
    target = arguments.pop("target")
    with pytest.raises(error, match=match):
        decode(small_ds, target, **arguments)


def test_decode_rejects_bad_data(small_ds):
    with pytest.raises(ErrsigError, match=r"xarray\.Dataset from errsig\.bin_trials"):
        decode(small_ds["counts"], "error")
    with pytest.raises(ColumnError, match="no `counts` variable"):
        decode(small_ds.drop_vars("counts"), "error")
    with pytest.raises(ColumnError, match="needs the `error` variable"):
        decode(small_ds.drop_vars("error"), "error")
    missing = small_ds.copy(deep=True)
    missing["error"][3, 0] = np.nan
    with pytest.raises(ErrsigError, match="NaN on 1 trials"):
        decode(missing, "error", n_perm=0)
    one_class = small_ds.assign_coords(reward=("trial", np.ones(40, bool)))
    with pytest.raises(InsufficientDataError, match="in one class"):
        decode(one_class, "reward", n_perm=0)
    with pytest.raises(ErrsigError, match="model='logistic'"):
        decode(small_ds, "reward", model="ridge", n_perm=0)


def test_generic_regressor_needs_no_special_casing(small_ds):
    result = decode(small_ds, "error_magnitude", model=LinearRegression(), n_perm=0)

    assert result["r2"].sizes["component"] == 1


def learning_dataset(rng, n_trials=160, gain=0.0):
    """A dataset with phases and target angles, as pseudosession nulls need."""
    ds = make_dataset(rng, n_trials=n_trials, n_units=(5,), n_bins=3, gain=gain)
    trial = np.arange(n_trials)
    phase = np.where(
        trial < 40, "baseline", np.where(trial < 120, "force_field", "washout")
    )
    lateral = 0.02 * (phase == "force_field") * np.exp(-(trial - 40) / 20)
    error = np.c_[
        0.003 * rng.normal(size=n_trials), lateral + 0.003 * rng.normal(size=n_trials)
    ]
    return ds.assign_coords(
        phase=("trial", phase),
        target_angle=("trial", np.zeros(n_trials)),
    ).assign(error=(("trial", "component"), error))


def test_result_records_its_method_and_saves_to_netcdf(tmp_path):
    ds = learning_dataset(np.random.default_rng(13))

    result = errsig.decode(ds, "error", n_perm=19, rng=5, correction="cluster")

    assert result["p"].min() >= 1 / 20
    assert result["score_null"].sizes["permutation"] == 19
    assert result.attrs["null"] == "pseudosession"
    assert result.attrs["seed"] == "5"
    assert result.attrs["correction"] == "cluster"
    assert result.attrs["folds"].startswith("test trials")
    path = tmp_path / "decoding.nc"
    result.to_netcdf(path)
    with xr.open_dataset(path) as saved:
        np.testing.assert_allclose(saved["score"], result["score"])
        assert saved.attrs["metric"] == result.attrs["metric"]
    again = errsig.decode(ds, "error", n_perm=19, rng=5, correction="cluster")
    np.testing.assert_array_equal(again["score_null"], result["score_null"])


def test_strong_signal_is_significant_and_p_floor_respected():
    ds = learning_dataset(np.random.default_rng(14))
    ds["error"] = ds["error"] * 0 + np.random.default_rng(15).normal(size=(160, 2))
    planted = make_dataset(
        np.random.default_rng(16),
        n_trials=160,
        n_units=(5,),
        n_bins=3,
        gain=0.6,
        error=ds["error"].values,
    )
    ds["counts"] = planted["counts"]

    result = decode(ds, "error", n_perm=49, null="shuffle", rng=0, stratify="phase")

    np.testing.assert_allclose(result["p"], 1 / 50)
    assert result["significant"].all()
    assert "stratified by phase" in result.attrs["cv"]


def test_linear_shift_null_decodes_on_its_window():
    ds = learning_dataset(np.random.default_rng(17))

    result = decode(ds, "error", n_perm=20, null="linear_shift")

    assert result["score_null"].sizes["permutation"] == 20
    assert result.attrs["folds"].startswith("test trials (session positions) 10-")
    with pytest.raises(ErrsigError, match="supports lags=0 only"):
        decode(ds, "error", n_perm=20, null="linear_shift", lags=[0, 1])
