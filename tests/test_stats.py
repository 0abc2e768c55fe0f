"""Permutation p-values and family-wise / FDR corrections (errsig.stats)."""

import warnings

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage, stats
from statsmodels.stats.multitest import multipletests

from errsig import ErrsigError
from errsig.stats import (
    bootstrap_interval,
    bootstrap_trials,
    correct,
    onset_latency,
    permutation_pvalues,
)

ALPHA = 0.05


def binomial_interval(n_reps, rate=ALPHA, confidence=0.95):
    """Range of rejection fractions compatible with the nominal rate."""
    low, high = stats.binom.interval(confidence, n_reps, rate)
    return low / n_reps, high / n_reps


# ----------------------------------------------------------------- p-values


@pytest.mark.parametrize(
    ("observed", "alternative", "expected"),
    [
        (0.5, "greater", 3 / 5),  # 0.5 (tie) and 0.9
        (0.5, "less", 4 / 5),  # 0.1, 0.3, 0.5 (tie)
        (0.5, "two-sided", 1.0),
        (0.95, "greater", 1 / 5),
        (0.95, "less", 5 / 5),
        (0.95, "two-sided", 2 / 5),
        (0.0, "less", 1 / 5),
    ],
)
def test_pvalue_hand_case(observed, alternative, expected):
    null = np.array([0.1, 0.5, 0.9, 0.3])
    pvalue = permutation_pvalues(observed, null, alternative=alternative)
    assert pvalue == pytest.approx(expected, abs=1e-15)


def test_pvalue_nan_observed_and_nan_surrogates():
    null = np.array([[np.nan, 0.0], [1.0, 0.0], [2.0, np.nan]])
    pvalues = permutation_pvalues([1.5, np.nan], null)
    # test 0: two valid surrogates, one (2.0) as large -> (1 + 1) / (2 + 1)
    assert pvalues[0] == pytest.approx(2 / 3)
    assert np.isnan(pvalues[1])
    assert np.isnan(permutation_pvalues(1.0, [np.nan, np.nan]))


def test_pvalue_counts_rounding_ties_as_exceedances():
    values = np.random.default_rng(3).normal(size=50)
    observed = np.sum(values)
    null = np.array([np.sum(values[::-1]), np.sum(np.sort(values)), -1e9])
    assert permutation_pvalues(observed, null) == pytest.approx(3 / 4)


def test_pvalue_broadcasts_a_shared_null():
    null = np.arange(9.0)[:, None]
    assert permutation_pvalues([8.0, 0.0], null).tolist() == [0.2, 1.0]


def test_pvalues_uniform_under_the_null(seed):
    rng = np.random.default_rng(seed)
    n_tests, n_surrogates = 3000, 999
    draws = rng.standard_t(3, size=(n_surrogates + 1, n_tests))
    pvalues = permutation_pvalues(draws[0], draws[1:])
    assert stats.kstest(pvalues, "uniform").pvalue > 0.001
    for alternative in ("less", "two-sided"):
        pvalues = permutation_pvalues(draws[0], draws[1:], alternative=alternative)
        assert stats.kstest(pvalues, "uniform").pvalue > 0.001


def test_pvalues_exact_level_with_few_surrogates():
    # With P = 19 exchangeable surrogates, P(p <= 0.05) is exactly 1 / 20.
    rng = np.random.default_rng(11)
    draws = rng.normal(size=(20, 20000))
    rejected = permutation_pvalues(draws[0], draws[1:]) <= ALPHA
    assert stats.binomtest(int(rejected.sum()), rejected.size, ALPHA).pvalue > 0.01


# ---------------------------------------------------------------- maxstat


def test_maxstat_hand_case():
    observed = np.array([3.0, 1.0])
    null = np.array([[2.0, 0.0], [0.5, 4.0], [1.0, 1.0]])
    result = correct(observed, null, method="maxstat")
    assert result.null_max.tolist() == [2.0, 4.0, 1.0]
    assert result.p.tolist() == [2 / 4, 4 / 4]
    assert result.p_floor == pytest.approx(1 / 4)
    less = correct(-observed, -null, method="maxstat", alternative="less")
    np.testing.assert_allclose(less.p, result.p)


def _correlated_null_family(rng, n_reps, n_draws, shape, scales=None):
    """Exchangeable draws (data + surrogates) of a family with shared noise."""
    shared = rng.normal(size=(n_reps, n_draws, 1, *shape[1:]))
    draws = 0.6 * shared + 0.8 * rng.normal(size=(n_reps, n_draws, *shape))
    if scales is not None:
        draws = draws * scales
    return draws


@pytest.mark.parametrize("standardize", [False, True])
def test_maxstat_family_wise_error_rate(standardize):
    rng = np.random.default_rng(2024)
    n_reps, n_surrogates = 400, 99
    scales = np.linspace(0.2, 3.0, 12)
    draws = _correlated_null_family(rng, n_reps, n_surrogates + 1, (12,), scales)
    any_rejected = [
        correct(rep[0], rep[1:], standardize=standardize).significant.any()
        for rep in draws
    ]
    low, high = binomial_interval(n_reps)
    assert low <= np.mean(any_rejected) <= high


def test_maxstat_standardization_recovers_power_on_narrow_tests():
    rng = np.random.default_rng(5)
    scales = np.r_[10.0, np.ones(9)]  # one test with a wide null swamps the max
    null = rng.normal(size=(499, 10)) * scales
    observed = rng.normal(size=10) * scales
    observed[4] = 4.5
    plain = correct(observed, null)
    standardized = correct(observed, null, standardize=True)
    assert not plain.significant[4]
    assert standardized.significant[4]
    assert standardized.significant.sum() == 1


def test_maxstat_two_sided_finds_negative_effects():
    rng = np.random.default_rng(6)
    null = rng.normal(size=(999, 5))
    observed = np.array([0.0, -5.0, 0.3, 5.0, 0.0])
    result = correct(observed, null, alternative="two-sided")
    assert result.significant.tolist() == [False, True, False, True, False]


def test_nan_tests_are_left_out_of_the_family():
    null = np.random.default_rng(0).normal(size=(99, 3))
    result = correct([np.nan, 10.0, 0.0], null)
    assert np.isnan(result.p[0]) and not result.significant[0]
    assert result.p[1] == pytest.approx(0.01)


# ---------------------------------------------------------------- cluster


def test_cluster_hand_case():
    observed = np.array([0.0, 2.0, 3.0, 0.0, 5.0])
    null = np.array(
        [
            [0.0, 0.0, 0.0, 0.0, 0.0],  # no cluster
            [2.5, 2.5, 0.0, 0.0, 0.0],  # mass 1.5 + 1.5 = 3
            [0.0, 0.0, 0.0, 0.0, 6.0],  # mass 5
        ]
    )
    result = correct(observed, null, method="cluster", time_axis=0, cluster_threshold=1)
    assert result.clusters.tolist() == [0, 1, 1, 0, 2]
    # observed masses: (2 - 1) + (3 - 1) = 3 and 5 - 1 = 4
    assert result.null_max.tolist() == [-np.inf, 3.0, 5.0]
    assert result.cluster_p.tolist() == [3 / 4, 2 / 4]
    assert result.p.tolist() == [1.0, 3 / 4, 3 / 4, 1.0, 2 / 4]


def test_cluster_runs_do_not_join_across_units():
    observed = np.array([[0.0, 0.0, 2.0], [2.0, 0.0, 0.0]])
    null = np.zeros((4, 2, 3))
    result = correct(observed, null, method="cluster", time_axis=1, cluster_threshold=1)
    assert result.clusters.tolist() == [[0, 0, 1], [2, 0, 0]]
    by_time_first = correct(
        observed.T,
        null.transpose(0, 2, 1),
        method="cluster",
        time_axis=0,
        cluster_threshold=1,
    )
    np.testing.assert_array_equal(by_time_first.clusters.T > 0, result.clusters > 0)


@pytest.mark.parametrize("standardize", [False, True])
def test_cluster_family_wise_error_rate_on_smooth_series(standardize):
    rng = np.random.default_rng(77)
    n_reps, n_surrogates, n_units, n_times = 200, 99, 4, 30
    white = rng.normal(size=(n_reps, n_surrogates + 1, n_units, n_times))
    smooth = ndimage.gaussian_filter1d(white, sigma=2.0, axis=-1)
    smooth *= np.array([1.0, 2.0, 0.5, 1.0])[:, None]
    any_rejected = [
        correct(
            rep[0], rep[1:], method="cluster", time_axis=1, standardize=standardize
        ).significant.any()
        for rep in smooth
    ]
    low, high = binomial_interval(n_reps)
    assert low <= np.mean(any_rejected) <= high


def test_cluster_has_more_power_than_maxstat_for_extended_effects():
    rng = np.random.default_rng(8)
    null = ndimage.gaussian_filter1d(rng.normal(size=(499, 3, 40)), 2.0, axis=-1)
    observed = ndimage.gaussian_filter1d(rng.normal(size=(3, 40)), 2.0, axis=-1)
    observed[1, 10:30] += 0.9
    clusters = correct(observed, null, method="cluster", time_axis=1)
    maxstat = correct(observed, null, method="maxstat")
    assert clusters.significant[1].sum() > maxstat.significant[1].sum()
    assert not clusters.significant[[0, 2]].any()


# -------------------------------------------------------------------- fdr


def test_fdr_equals_statsmodels_bh_on_the_pooled_null():
    rng = np.random.default_rng(9)
    null = rng.normal(size=(199, 30)) * 2.0 + 1.0
    observed = rng.normal(size=30) * 2.0 + 1.0
    observed[:5] += 8.0
    result = correct(observed, null, method="fdr")

    pooled = np.concatenate([observed[None], null])
    z_obs = (observed - pooled.mean(0)) / pooled.std(0)
    z_null = (null - pooled.mean(0)) / pooled.std(0)
    raw = np.array([(1 + np.sum(z_null >= z)) / (z_null.size + 1) for z in z_obs])
    reject, expected, _, _ = multipletests(raw, alpha=ALPHA, method="fdr_bh")
    np.testing.assert_allclose(result.p, expected)
    np.testing.assert_array_equal(result.significant, reject)
    assert result.p_floor == pytest.approx(1 / (199 * 30 + 1))
    assert result.significant[:5].all()


def test_fdr_can_reject_where_per_test_pvalues_cannot():
    # 99 surrogates, 200 tests: per-test p >= 0.01 > 0.05 / 200 for every test.
    rng = np.random.default_rng(10)
    null = rng.normal(size=(99, 200))
    observed = rng.normal(size=200)
    observed[:10] = 6.0
    per_test = permutation_pvalues(observed, null)
    bh_on_per_test = multipletests(per_test, alpha=ALPHA, method="fdr_bh")[0]
    result = correct(observed, null, method="fdr")
    assert not bh_on_per_test.any()
    assert result.significant[:10].all() and result.significant.sum() <= 12


def test_fdr_error_rate_under_the_global_null():
    rng = np.random.default_rng(12)
    n_reps = 300
    draws = _correlated_null_family(rng, n_reps, 100, (20,))
    any_rejected = [
        correct(rep[0], rep[1:], method="fdr").significant.any() for rep in draws
    ]
    # Under the global null the FDR is the family-wise error rate: at most α.
    assert np.mean(any_rejected) <= binomial_interval(n_reps)[1]


def test_none_returns_per_test_pvalues():
    rng = np.random.default_rng(13)
    null = rng.normal(size=(50, 4))
    observed = rng.normal(size=4)
    result = correct(observed, null, method="none", alternative="two-sided")
    expected = permutation_pvalues(observed, null, alternative="two-sided")
    np.testing.assert_array_equal(result.p, expected)
    assert result.p_floor == pytest.approx(1 / 51)


# ---------------------------------------------------------------- latency


def test_onset_latency_arrays_and_runs():
    significant = np.array([[0, 1, 0, 1, 1, 1], [0, 0, 0, 0, 0, 0]], dtype=bool)
    time = np.arange(6) * 0.1
    np.testing.assert_allclose(onset_latency(significant, time, axis=1), [0.1, np.nan])
    np.testing.assert_allclose(
        onset_latency(significant, time, axis=1, min_bins=2), [0.3, np.nan]
    )
    np.testing.assert_allclose(
        onset_latency(significant.T, time, axis=0, min_bins=7), [np.nan, np.nan]
    )


def test_onset_latency_dataarray():
    significant = xr.DataArray(
        np.array([[0, 0, 1], [1, 1, 1]], dtype=bool),
        dims=("unit", "time"),
        coords={"unit": ["a", "b"], "time": [0.0, 0.02, 0.04]},
    )
    latency = onset_latency(significant)
    assert latency.dims == ("unit",)
    assert latency.sel(unit="a").item() == pytest.approx(0.04)
    assert latency.sel(unit="b").item() == pytest.approx(0.0)


# ----------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"method": "bonferroni"}, "`method` must be one of"),
        ({"alternative": "bigger"}, "`alternative` must be one of"),
        ({"alpha": 1.5}, r"`alpha` must be a number in \(0, 1\)"),
        ({"alpha": "high"}, "`alpha` must be a number"),
        ({"method": "cluster"}, "needs `time_axis`"),
        ({"method": "cluster", "time_axis": 2}, "out of range"),
        ({"method": "cluster", "time_axis": 0.5}, "must be an integer"),
    ],
)
def test_correct_errors(kwargs, match):
    with pytest.raises(ErrsigError, match=match):
        correct(np.zeros(3), np.zeros((5, 3)), **kwargs)


def test_shape_errors():
    with pytest.raises(ErrsigError, match="first axis must index surrogates"):
        permutation_pvalues(np.zeros(3), np.zeros((5, 4)))
    with pytest.raises(ErrsigError, match="at least one surrogate"):
        permutation_pvalues(np.zeros(3), np.zeros((0, 3)))
    with pytest.raises(ErrsigError, match="`alternative` must be one of"):
        permutation_pvalues(0.0, [1.0], alternative="both")


def test_onset_latency_errors():
    with pytest.raises(ErrsigError, match="`time` has 2 values"):
        onset_latency(np.zeros((2, 3), dtype=bool), [0.0, 0.1])
    with pytest.raises(ErrsigError, match="`time` is required"):
        onset_latency(np.zeros(3, dtype=bool))
    with pytest.raises(ErrsigError, match="not a dimension"):
        onset_latency(xr.DataArray(np.zeros(3, dtype=bool), dims="bin"))


# -------------------------------------------------------------- bootstrap


def test_bootstrap_trials_blocks_are_runs():
    resamples = bootstrap_trials(50, 30, block_length=5, rng=0)
    assert resamples.shape == (30, 50)
    runs = resamples.reshape(30, 10, 5)
    np.testing.assert_array_equal(np.diff(runs, axis=-1), 1)
    assert resamples.min() >= 0 and resamples.max() <= 49
    np.testing.assert_array_equal(
        resamples, bootstrap_trials(50, 30, block_length=5, rng=0)
    )


def test_bootstrap_interval_coverage_of_a_mean():
    rng = np.random.default_rng(21)
    n_reps, n_trials = 200, 80
    covered = []
    for _ in range(n_reps):
        values = rng.exponential(1.0, n_trials)
        interval = bootstrap_interval(
            lambda trials, values=values: values[trials].mean(),
            n_trials,
            n_boot=300,
            rng=rng,
        )
        covered.append(interval.low <= 1.0 <= interval.high)
    # The percentile interval of a skewed mean under-covers a little.
    assert 0.88 <= np.mean(covered) <= 0.99


def test_bootstrap_interval_matches_scipy_percentile():
    values = np.random.default_rng(4).normal(size=120)
    ours = bootstrap_interval(
        lambda trials: values[trials].std(), 120, n_boot=4000, rng=1
    )
    reference = stats.bootstrap(
        (values,), np.std, n_resamples=4000, method="percentile", rng=2
    ).confidence_interval
    assert ours.low == pytest.approx(reference.low, abs=0.02)
    assert ours.high == pytest.approx(reference.high, abs=0.02)


def test_bootstrap_interval_counts_undefined_replicates():
    flags = np.r_[np.ones(2), np.zeros(98)]

    def first_flag_time(trials):
        hits = np.flatnonzero(flags[trials])
        return [float(hits[0]) if hits.size else np.nan, np.nan]

    interval = bootstrap_interval(first_flag_time, 100, n_boot=100, rng=3)
    assert 0 < interval.n_undefined[0] < 100
    assert interval.n_undefined[1] == 100 and np.isnan(interval.high[1])


def test_bootstrap_errors():
    with pytest.raises(ErrsigError, match="`block_length` \\(20\\) must not exceed"):
        bootstrap_trials(10, 5, block_length=20)
    with pytest.raises(ErrsigError, match="`confidence` must be in"):
        bootstrap_interval(np.mean, 10, confidence=95)


def test_cluster_default_threshold_ignores_nan_surrogates():
    rng = np.random.default_rng(14)
    null = rng.normal(size=(200, 2, 10))
    observed = rng.normal(size=(2, 10))
    with_nan = null.copy()
    with_nan[::2, 1] = np.nan
    result = correct(observed, with_nan, method="cluster", time_axis=1)
    expected = np.quantile(
        np.concatenate([observed[None, 1], null[1::2, 1]]), 0.95, axis=0
    )
    np.testing.assert_allclose(result.threshold[1], expected)


@pytest.mark.parametrize("method", ["maxstat", "cluster"])
def test_undefined_surrogates_do_not_count(method):
    null = np.array([[1.0, 0.0], [np.nan, np.nan], [3.0, 0.0], [0.0, 0.0]])
    result = correct(
        [2.0, 0.0], null, method=method, time_axis=0, cluster_threshold=0.5
    )
    # three usable surrogates; one of them (3.0) beats 2.0
    assert result.p[0] == pytest.approx(2 / 4)
    assert result.p_floor == pytest.approx(1 / 4)
    assert np.isnan(result.null_max[1])


def test_all_nan_test_gives_no_runtime_warning():
    null = np.random.default_rng(0).normal(size=(20, 3))
    null[:, 0] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = correct([np.nan, 1.0, 0.0], null, standardize=True)
    assert np.isnan(result.p[0])


# --------------------------------------------------------------- properties

finite_floats = st.floats(-1e6, 1e6, allow_nan=False, allow_subnormal=False)


@settings(max_examples=60, deadline=None)
@given(
    hnp.arrays(
        np.float64,
        st.tuples(st.integers(1, 30), st.integers(1, 6)),
        elements=finite_floats,
    ),
    hnp.arrays(np.float64, st.integers(1, 6), elements=finite_floats),
)
def test_pvalue_properties(null, observed):
    observed = np.resize(observed, null.shape[1])
    n_surrogates = null.shape[0]
    greater = permutation_pvalues(observed, null)
    less = permutation_pvalues(observed, null, alternative="less")
    two_sided = permutation_pvalues(observed, null, alternative="two-sided")
    floor = 1 / (n_surrogates + 1)
    for pvalues in (greater, less, two_sided):
        assert np.all((pvalues >= floor - 1e-15) & (pvalues <= 1))
    # every surrogate is counted in at least one tail
    assert np.all(greater + less >= 1 + floor - 1e-12)
    # the family-wise max can only make p larger
    maxstat = correct(observed, null, method="maxstat")
    assert np.all(maxstat.p >= greater - 1e-15)
    assert np.all(
        correct(observed, null, method="maxstat", alternative="less").p >= less - 1e-15
    )


@pytest.mark.parametrize(("alternative", "tail"), [("greater", 1), ("less", -1)])
def test_maxstat_agrees_with_frites(alternative, tail):
    # frites reports k / P (floored at 1 / P); errsig reports (k + 1) / (P + 1).
    from frites.stats import testwise_correction_mcp

    rng = np.random.default_rng(15)
    null = rng.normal(size=(500, 6, 8))
    observed = rng.normal(size=(6, 8)) + np.linspace(0, 4, 8) * (1 if tail == 1 else -1)
    ours = correct(observed, null, method="maxstat", alternative=alternative).p
    theirs = testwise_correction_mcp(observed, null, tail=tail, mcp="maxstat")
    n_exceeding = np.round(ours * 501 - 1)
    np.testing.assert_allclose(np.maximum(n_exceeding, 1) / 500, theirs)


@pytest.mark.parametrize("alternative", ["greater", "less", "two-sided"])
def test_maxstat_in_chunks_of_tests_equals_one_chunk(alternative, monkeypatch):
    from errsig.stats import _corrections

    rng = np.random.default_rng(12)
    null = rng.gamma(2.0, size=(199, 30, 20))
    observed = rng.gamma(2.0, size=(30, 20))
    observed[3, 8:] += 3.0
    null[:, 5] = np.nan  # a masked unit
    observed[5] = np.nan
    null[7] = np.nan  # a surrogate undefined everywhere
    observed[1, 1] = null[:, 1, 1].max()  # a tie with a surrogate
    whole = correct(observed, null, alternative=alternative, standardize=True)
    monkeypatch.setattr(_corrections, "MAXSTAT_CHUNK_BYTES", 1)  # 8 tests a chunk
    chunked = correct(observed, null, alternative=alternative, standardize=True)
    np.testing.assert_array_equal(chunked.p, whole.p)
    np.testing.assert_array_equal(chunked.null_max, whole.null_max)
    assert chunked.p_floor == whole.p_floor == 1 / 199
