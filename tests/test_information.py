"""The MI estimators on plain arrays: analytic truths, frites, properties, errors."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import ndtri
from scipy.stats import multivariate_normal, rankdata

from errsig import ErrsigError, InsufficientDataError
from errsig.information import (
    _copula,
    _engine,
    binned_mi,
    copnorm,
    gccmi,
    gcmi_continuous,
    gcmi_discrete,
    ksg_mi,
)

frites_core = pytest.importorskip("frites.core")


def gaussian_mi(covariance, x_dims):
    """-½ log2 det(R) for a joint Gaussian split after ``x_dims`` variables."""
    covariance = np.asarray(covariance)
    _, joint = np.linalg.slogdet(covariance)
    _, x_part = np.linalg.slogdet(covariance[:x_dims, :x_dims])
    _, y_part = np.linalg.slogdet(covariance[x_dims:, x_dims:])
    return 0.5 * (x_part + y_part - joint) / np.log(2)


#: More neighbours than the default 3: lower variance, and a bias under 1% here.
KSG_K = 8

BIVARIATE = np.array([[1.0, 0.8], [0.8, 1.0]])
MULTIVARIATE = np.array(
    [
        [1.0, 0.5, 0.4, 0.2],
        [0.5, 1.0, 0.3, 0.5],
        [0.4, 0.3, 1.0, 0.1],
        [0.2, 0.5, 0.1, 1.0],
    ]
)


@pytest.mark.parametrize("estimator", ["gcmi", "ksg"])
@pytest.mark.parametrize(
    ("covariance", "x_dims"), [(BIVARIATE, 1), (MULTIVARIATE, 2)], ids=["2d", "4d"]
)
def test_gaussian_truth_within_two_percent(estimator, covariance, x_dims):
    # mean over seeds: one draw of 5000 has a sampling SD of 2-4% of the MI
    truth = gaussian_mi(covariance, x_dims)
    estimates = []
    # KSG has a larger sampling variance than GCMI: average more draws
    for seed in range(8 if estimator == "gcmi" else 32):
        rng = np.random.default_rng(seed)
        samples = rng.multivariate_normal(np.zeros(len(covariance)), covariance, 5000)
        x, y = samples[:, :x_dims], samples[:, x_dims:]
        if estimator == "gcmi":
            estimates.append(gcmi_continuous(np.exp(x), y**3))  # monotone
        else:
            estimates.append(ksg_mi(x, y, k=KSG_K, rng=seed))
    assert np.mean(estimates) == pytest.approx(truth, rel=0.02)


def test_gccmi_gaussian_truth():
    # x and y both depend on z; I(x; y | z) from the partial covariance
    covariance = np.array([[1.0, 0.5, 0.7], [0.5, 1.0, 0.3], [0.7, 0.3, 1.0]])
    order = [0, 2, 1]  # x, y, z
    joint = covariance[np.ix_(order, order)]
    partial = joint[:2, :2] - np.outer(joint[:2, 2], joint[:2, 2]) / joint[2, 2]
    truth = gaussian_mi(partial, 1)
    estimates = []
    for seed in range(8):
        samples = np.random.default_rng(seed).multivariate_normal(
            np.zeros(3), joint, 5000
        )
        estimates.append(gccmi(samples[:, 0], samples[:, 1], samples[:, 2]))
    assert np.mean(estimates) == pytest.approx(truth, rel=0.03)


def test_gcmi_discrete_gaussian_classes():
    # two equiprobable unit-variance Gaussians 1 apart: MI by quadrature
    grid = np.linspace(-8, 9, 20001)
    low, high = (multivariate_normal(mean, 1).pdf(grid) for mean in (0.0, 1.0))
    mixture = (low + high) / 2
    truth = 0.5 * sum(np.trapezoid(p * np.log2(p / mixture), grid) for p in (low, high))
    estimates = []
    for seed in range(8):
        rng = np.random.default_rng(seed)
        labels = rng.random(5000) < 0.5
        estimates.append(gcmi_discrete(rng.normal(size=5000) + labels, labels))
    # the copula of a Gaussian mixture is close to, not exactly, Gaussian
    assert np.mean(estimates) == pytest.approx(truth, rel=0.05)


JOINT = np.array([[0.30, 0.05, 0.05], [0.05, 0.10, 0.05], [0.02, 0.08, 0.30]])


@pytest.mark.parametrize("bias", ["panzeri-treves", "quadratic", "shuffle", "none"])
def test_binned_known_discrete_distribution(bias):
    p_x, p_y = JOINT.sum(axis=1), JOINT.sum(axis=0)
    truth = np.sum(JOINT * np.log2(JOINT / np.outer(p_x, p_y)))
    estimates = []
    for seed in range(10):
        rng = np.random.default_rng(seed)
        cells = rng.choice(9, size=400, p=JOINT.ravel())
        x, y = np.divmod(cells, 3)
        estimates.append(binned_mi(x, y, bias=bias, rng=seed))
    error = abs(np.mean(estimates) - truth)
    if bias == "none":
        assert np.mean(estimates) > truth  # the plug-in bias is upwards
    else:
        assert error < 0.01, (np.mean(estimates), truth)


def test_binned_corrections_remove_most_of_the_bias():
    rng = np.random.default_rng(3)
    estimates = {bias: [] for bias in ("none", "panzeri-treves", "quadratic")}
    for _ in range(20):
        x, y = rng.integers(0, 5, 120), rng.integers(0, 4, 120)  # independent
        for bias in estimates:
            estimates[bias].append(binned_mi(x, y, bias=bias, rng=rng))
    naive = np.mean(estimates["none"])
    assert naive > 0.05
    for bias in ("panzeri-treves", "quadratic"):
        assert abs(np.mean(estimates[bias])) < naive / 3


# --- frites gives the same numbers on the same copula-normalised inputs ---------


def test_matches_frites_continuous():
    rng = np.random.default_rng(0)
    x = copnorm(rng.normal(size=(300, 2)))
    y = copnorm(rng.normal(size=(300, 2)) + x[:, ::-1])
    ours = gcmi_continuous(x, y, copula=False)
    theirs = frites_core.mi_nd_gg(x.T.copy(), y.T.copy(), mvaxis=0)
    assert ours == pytest.approx(float(theirs), abs=1e-10)
    uncorrected = frites_core.mi_nd_gg(
        x.T.copy(), y.T.copy(), mvaxis=0, biascorrect=False
    )
    assert gcmi_continuous(x, y, copula=False, bias_correct=False) == pytest.approx(
        float(uncorrected), abs=1e-10
    )


def test_matches_frites_discrete_and_conditional():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 3, 400)
    x = copnorm(rng.normal(size=400) + 0.5 * labels)
    theirs = frites_core.mi_model_nd_gd(x[None].copy(), labels, mvaxis=0)
    assert gcmi_discrete(x, labels, copula=False) == pytest.approx(
        float(theirs), abs=1e-10
    )

    z = copnorm(rng.normal(size=400))
    y = copnorm(z + rng.normal(size=400))
    w = copnorm(z + y + rng.normal(size=400))
    theirs = frites_core.cmi_nd_ggg(
        w[None].copy(), y[None].copy(), z[None].copy(), mvaxis=0
    )
    assert gccmi(w, y, z, copula=False) == pytest.approx(float(theirs), abs=1e-10)


def test_engine_matches_frites_for_every_test_and_surrogate():
    # the one-matrix-product engine against frites' per-test path
    rng = np.random.default_rng(2)
    n_trials, n_tests, n_draws = 150, 6, 5
    counts = rng.poisson(2.0, (n_trials, n_tests))
    targets = rng.normal(size=(n_draws, n_trials, 2))
    targets[0, :, 0] += 0.2 * counts[:, 0]
    neural_normalised = copnorm(counts, ties="random", rng=0)
    neural, _ = _engine.unit_norm_columns(neural_normalised)
    target_normalised = np.moveaxis(
        _engine.rank_normalise_rows(np.moveaxis(targets, -1, 1)), 1, -1
    )
    basis, _ = _engine.orthonormal_target_basis(target_normalised)
    ours = _engine.continuous_mi(neural, basis, n_given=0)

    x = np.broadcast_to(neural_normalised.T[:, None, :], (n_tests, 1, n_trials))
    for draw in range(n_draws):
        y = np.broadcast_to(target_normalised[draw].T, (n_tests, 2, n_trials))
        theirs = frites_core.mi_nd_gg(x.copy(), y.copy(), shape_checking=False)
        np.testing.assert_allclose(ours[draw], theirs, atol=1e-10)

    codes = (rng.random((n_draws, n_trials)) < 0.4).astype(int)
    ours = _engine.discrete_mi(neural, codes, n_classes=2)
    for draw in range(n_draws):
        theirs = frites_core.mi_model_nd_gd(x.copy(), codes[draw], shape_checking=False)
        np.testing.assert_allclose(ours[draw], theirs, atol=1e-10)


def test_engine_population_and_conditional_match_reference():
    rng = np.random.default_rng(4)
    n_trials = 200
    activity = rng.normal(size=(n_trials, 3))
    left = np.linalg.svd(activity - activity.mean(0), full_matrices=False)[0]
    target = rng.normal(size=(3, n_trials, 2)) + left[None, :, :2]
    given = rng.normal(size=(3, n_trials, 1)) + left[None, :, 2:]
    basis, _ = _engine.orthonormal_target_basis(target, given)
    ours = _engine.continuous_mi(left, basis, n_given=1, neural_dims=3)
    for draw in range(3):
        reference = gccmi(left, target[draw], given[draw], copula=False)
        assert ours[draw, 0] == pytest.approx(reference, abs=1e-10)

    codes = rng.integers(0, 2, (3, n_trials))
    ours = _engine.discrete_mi(left, codes, n_classes=2, neural_dims=3)
    for draw in range(3):
        reference = gcmi_discrete(left, codes[draw], copula=False)
        assert ours[draw, 0] == pytest.approx(reference, abs=1e-10)


def test_engine_blocks_and_runs_leave_the_values_unchanged(monkeypatch):
    # the products are cut into blocks of surrogates x tests and the elementwise
    # passes into runs of surrogates; tiny ones must give the same numbers,
    # here for a 1-D conditional target and three classes
    rng = np.random.default_rng(7)
    n_trials, n_tests, n_draws = 80, 11, 9
    neural, _ = _engine.unit_norm_columns(
        copnorm(rng.poisson(2.0, (n_trials, n_tests)))
    )
    target = rng.normal(size=(n_draws, n_trials, 1)) + neural[None, :, :1]
    given = rng.normal(size=(n_draws, n_trials, 1))
    basis, _ = _engine.orthonormal_target_basis(target, given)
    codes = rng.integers(0, 3, (n_draws, n_trials))

    def both():
        return (
            _engine.continuous_mi(neural, basis, n_given=1),
            _engine.discrete_mi(neural, codes, n_classes=3),
        )

    whole = both()
    monkeypatch.setattr(_engine, "CHUNK_BYTES", 8 * 2 * 4 * 3)
    monkeypatch.setattr(_engine, "MIN_BLOCK_TESTS", 3)
    monkeypatch.setattr(_engine, "SCRATCH_BYTES", 8 * 3 * 4)
    for ours, reference in zip(both(), whole, strict=True):
        np.testing.assert_allclose(ours, reference, rtol=0, atol=1e-12)
    for draw in range(n_draws):
        assert whole[0][draw, 0] == pytest.approx(
            gccmi(neural[:, 0], target[draw], given[draw], copula=False), abs=1e-10
        )
        assert whole[1][draw, 0] == pytest.approx(
            gcmi_discrete(neural[:, 0], codes[draw], copula=False), abs=1e-10
        )


# --- properties -----------------------------------------------------------------

samples = st.integers(min_value=0, max_value=2**32 - 1)


@settings(max_examples=25, deadline=None)
@given(seed=samples, power=st.floats(0.2, 3.0))
def test_gcmi_invariant_to_monotone_transforms_of_counts(seed, power):
    rng = np.random.default_rng(seed)
    counts = rng.poisson(2.0, 80)
    y = rng.normal(size=80) + 0.3 * counts
    for ties in ("average", "random"):
        plain = gcmi_continuous(counts, y, ties=ties, rng=1)
        transformed = gcmi_continuous(
            np.log1p(counts) ** power * 7, y, ties=ties, rng=1
        )
        assert plain == pytest.approx(transformed, abs=1e-12)


@settings(max_examples=25, deadline=None)
@given(seed=samples)
def test_gcmi_symmetric(seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(60, 2))
    y = rng.normal(size=60) + x[:, 0]
    assert gcmi_continuous(x, y) == pytest.approx(gcmi_continuous(y, x), abs=1e-12)
    assert ksg_mi(x, y, rng=3) == pytest.approx(ksg_mi(y, x, rng=3), abs=1e-9)


@settings(max_examples=10, deadline=None)
@given(seed=samples)
def test_corrected_mi_of_independent_data_is_zero_on_average(seed):
    rng = np.random.default_rng(seed)
    estimates = [
        gcmi_continuous(rng.poisson(1.5, 50), rng.normal(size=(50, 2)))
        for _ in range(200)
    ]
    # unbiased: the mean is within 3 standard errors of zero, not above it
    spread = np.std(estimates) / np.sqrt(len(estimates))
    assert abs(np.mean(estimates)) < 3 * spread + 1e-3


def test_copnorm_ties():
    counts = np.array([0, 0, 0, 1, 3, 3])
    average = copnorm(counts)
    assert len(np.unique(average)) == 3
    assert average.mean() == pytest.approx(0, abs=1e-12)
    broken = copnorm(counts, ties="random", rng=0)
    assert len(np.unique(broken)) == 6
    assert np.all(np.diff(broken[np.argsort(counts, kind="stable")][[0, 3, 4]]) > 0)
    np.testing.assert_array_equal(broken, copnorm(counts, ties="random", rng=0))


def test_copnorm_counts_ranks_like_sorting():
    # whole numbers are ranked by counting (compiled, or numpy's bincount), any
    # other values by sorting: every route gives the average ranks of scipy
    rng = np.random.default_rng(5)
    counts = rng.poisson(3.0, (80, 4, 3)) - 2
    ranks = rankdata(counts, method="average", axis=0)
    expected = ndtri(ranks / 81.0)
    expected -= expected.mean(axis=0)
    for x in (
        counts,
        (counts * 15).astype(np.int8),  # ranges that overflow int8
        (counts + 2).astype(np.uint16),
        (counts + 2).astype(np.uint64),
        counts + 2**62,
        counts.astype(float),
        counts + 0.5,
    ):
        np.testing.assert_allclose(copnorm(x), expected, atol=1e-12)

    samples = counts.reshape(80, -1).astype(float)
    low = samples.min(axis=0)
    n_values = int((samples.max(axis=0) - low).max()) + 1
    quantiles = ndtri(np.arange(2, 161) / 162.0)
    compiled, source = np.empty((2, 12, 80))
    _copula._average_rank_quantiles(samples, low, n_values, quantiles, compiled)
    _copula._average_rank_quantiles_python(samples, low, n_values, quantiles, source)
    numpy_ranks = _copula._integer_average_ranks(np.ascontiguousarray(samples.T))
    np.testing.assert_array_equal(compiled, source)
    np.testing.assert_array_equal(
        compiled, quantiles[(2 * numpy_ranks).astype(int) - 2]
    )


def test_rank_normalise_rows_with_and_without_ties():
    rng = np.random.default_rng(6)
    values = rng.normal(size=(4, 2, 50))
    tied = values.round(1)
    for rows in (values, tied, np.moveaxis(values, 1, 0)):
        expected = ndtri(rankdata(rows, method="average", axis=-1) / 51.0)
        np.testing.assert_allclose(_engine.rank_normalise_rows(rows), expected)

    order = np.argsort(values.reshape(8, 50), axis=-1)
    quantiles = ndtri(np.arange(1, 51) / 51.0)
    compiled, source = np.empty((2, 8, 50))
    assert _engine._place_quantiles(values.reshape(8, 50), order, quantiles, compiled)
    assert _engine._place_quantiles_python(
        values.reshape(8, 50), order, quantiles, source
    )
    np.testing.assert_array_equal(compiled, source)
    tied_order = np.argsort(tied.reshape(8, 50), axis=-1)
    assert not _engine._place_quantiles(
        tied.reshape(8, 50), tied_order, quantiles, compiled
    )


# --- errors ---------------------------------------------------------------------


def test_errors_name_the_argument():
    x = np.arange(10.0)
    with pytest.raises(ErrsigError, match="`y` contains NaN"):
        gcmi_continuous(x, np.r_[np.nan, x[1:]])
    with pytest.raises(ErrsigError, match="one sample each per trial"):
        gcmi_continuous(x, x[:5])
    with pytest.raises(InsufficientDataError, match="too few"):
        gcmi_continuous(x[:3], x[:3])
    with pytest.raises(InsufficientDataError, match="class"):
        gcmi_discrete(x, x > 7.5)
    with pytest.raises(InsufficientDataError, match="singular"):
        gcmi_continuous(np.ones(10), x)
    with pytest.raises(ErrsigError, match="`ties` must be"):
        copnorm(x, ties="first")
    with pytest.raises(ErrsigError, match="`bias` must be one of"):
        binned_mi(x, x, bias="miller")
    with pytest.raises(InsufficientDataError, match="at least 8"):
        binned_mi(x[:4], x[:4])
    with pytest.raises(InsufficientDataError, match="more than k"):
        ksg_mi(x[:3], x[:3], k=3)
    with pytest.raises(ErrsigError, match="`x` must be 1-D or 2-D"):
        ksg_mi(np.ones((2, 2, 2)), x)


@pytest.mark.parametrize("rho", [0.5, 0.8])
def test_ksg_matches_scikit_learn_on_standardised_data(rho):
    from sklearn.feature_selection import mutual_info_regression

    rng = np.random.default_rng(0)
    samples = rng.multivariate_normal([0, 0], [[1, rho], [rho, 1]], size=2000)
    # scikit-learn scales each variable to unit variance (the max-norm of KSG is
    # not scale-free) and clips negative estimates to 0: compare where positive
    samples = (samples - samples.mean(axis=0)) / samples.std(axis=0)
    reference = mutual_info_regression(
        samples[:, :1], samples[:, 1], n_neighbors=3, random_state=0
    )[0]
    ours = ksg_mi(samples[:, 0], samples[:, 1], k=3, rng=0)
    np.testing.assert_allclose(ours, reference / np.log(2), rtol=1e-10)


def test_compiled_class_moments_equal_the_numpy_path():
    # the compiled passes of discrete_mi (class variances, then the weighted
    # log-variances in bits), their Python sources and the general numpy path
    # (per-class moments, then the weighted half log-determinants)
    rng = np.random.default_rng(3)
    n_classes, n_chunk, n_tests, n_trials = 3, 5, 7, 60
    x = rng.normal(size=(n_trials, n_tests))
    codes = rng.integers(0, n_classes, (n_chunk, n_trials))
    sums = np.stack(
        [
            np.stack([(codes == k) @ x, (codes == k) @ x**2], axis=1)
            for k in range(n_classes)
        ]
    )
    totals = np.stack([x.sum(axis=0), (x**2).sum(axis=0)])
    sizes = np.stack([(codes == k).sum(axis=1) for k in range(n_classes)]) * 1.0
    weights = sizes / n_trials
    offsets = rng.normal(size=n_chunk)

    weighted = np.einsum(
        "ks,kst->st",
        weights,
        _engine._class_half_logdet(sums, sizes, 1, [(0, 0)]),
    )
    reference = (offsets[:, None] - weighted) / np.log(2.0)
    # the compiled code takes (class, moment, surrogate, test), without the last
    # class, and works on runs of surrogates; the weights and offsets of all
    # surrogates are indexed from the run's first (here 1: row 0 is padding)
    known = np.ascontiguousarray(sums[:-1].transpose(0, 2, 1, 3))
    half_weights = np.pad(weights * 0.5, ((0, 0), (1, 0)), constant_values=np.nan)
    padded_offsets = np.pad(offsets, (1, 0), constant_values=np.nan)
    for variances_of, bits_of in [
        (_engine._class_variances, _engine._weighted_bits),
        (_engine._class_variances_python, _engine._weighted_bits_python),
    ]:
        variances = np.empty((n_classes, n_chunk, n_tests))
        for first, stop in [(0, 2), (2, n_chunk)]:
            run = np.empty((n_classes, stop - first, n_tests))
            variances_of(known, totals, sizes, first, run)
            variances[:, first:stop] = run
        mi = np.full((n_chunk + 2, n_tests + 3), np.nan)
        bits_of(np.log(variances), half_weights, padded_offsets, mi, 1, 2)
        np.testing.assert_allclose(mi[1:-1, 2:-1], reference, rtol=1e-12)
        assert np.isnan(mi[[0, -1]]).all() and np.isnan(mi[:, [0, 1, -1]]).all()
