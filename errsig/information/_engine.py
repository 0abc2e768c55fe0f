"""Vectorised Gaussian-copula MI for many tests against many surrogate targets.

Every (unit, time bin) test and every surrogate target meet in ONE matrix
product. The idea: after copula normalisation, centre each neural variable and
scale it to unit norm, and replace each surrogate target (with the variable it
is conditioned on, if any) by an orthonormal basis of its columns. The Gaussian
(conditional) MI then depends only on the projections of the neural variable on
that basis:

- univariate activity ``x`` (unit norm), target basis ``Q = [Qz, Qy]`` (``Qz``
  spans the conditioning variable, ``Qy`` the part of the target orthogonal to
  it), ``a = Qzᵀx``, ``b = Qyᵀx``:
  ``I(x; y | z) = ½ [log(1 - |a|²) - log(1 - |a|² - |b|²)]``;
- multivariate activity ``X`` with orthonormal columns, ``P = Xᵀ Q``, Gram
  matrix ``G = PᵀP``: ``I = ½ [log det(I - G_zz) - log det(I - G)]``.

These equal the determinant formulas of ``_gcmi.py`` exactly (Schur
complements), including the analytic bias correction, which depends only on
the sample size and the dimensions and is computed once.

For a discrete target the class-conditional covariances are sums over the
trials of each class, so they too are one product: the per-trial features
``x`` and ``x xᵀ`` against the class indicators of every surrogate.
"""

from __future__ import annotations

import logging
import mmap
from collections.abc import Iterator

import numpy as np
from scipy.special import ndtri
from scipy.stats import rankdata
from tqdm.auto import tqdm

from errsig.information._gcmi import LN2, _mi_bias, entropy_bias

logger = logging.getLogger(__name__)

#: Bytes of product output computed at once; bounds the engine's memory.
CHUNK_BYTES = 32 * 2**20

#: Bytes of scratch values per elementwise pass over a block: small enough to
#: stay in a core's cache between the compiled passes and numpy's logs.
SCRATCH_BYTES = 512 * 2**10

#: Results from this size on are mapped on ordinary pages (see _empty_results).
SMALL_PAGES_FROM_BYTES = 16 * 2**20

#: Fewest tests in a block of the GCMI products: narrower products run BLAS well
#: below its rate (256 tests about a quarter slower than 2,000).
MIN_BLOCK_TESTS = 512

try:  # numba fuses the elementwise passes over each block; numpy does them otherwise
    from numba import njit as _numba_njit

    # Serial on purpose: numba's default threading layer aborts the process when
    # parallel kernels are launched from several threads at once (a threaded
    # dask worker, say); BLAS threads already share the products.
    _jit = _numba_njit(cache=True, nogil=True)
except ImportError:  # pragma: no cover - numba is a dependency
    _jit = None


def unit_norm_columns(normalised: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centre and scale each column of (n_trials, n_tests) to unit norm.

    Returns the scaled array and a boolean mask of constant (zero-variance)
    columns, which are set to zero so that their MI comes out as 0 and can be
    replaced by NaN afterwards.
    """
    centred = normalised - normalised.mean(axis=0)
    norms = np.sqrt(np.einsum("ij,ij->j", centred, centred))
    constant = norms <= 1e-12 * np.sqrt(len(centred))
    norms[constant] = 1.0
    centred /= norms
    centred[:, constant] = 0.0
    return centred, constant


def rank_normalise_rows(values: np.ndarray) -> np.ndarray:
    """Copula-normalise along the last axis (trials), ties at their mean rank."""
    n_trials = values.shape[-1]
    order = np.argsort(values, axis=-1)
    # no ties (the usual case for a continuous target): one sort suffices
    quantiles = ndtri(np.arange(1, n_trials + 1) / (n_trials + 1.0))
    normalised = np.empty(values.shape)
    if _jit is not None and values.size:
        rows = (-1, n_trials)
        untied = _place_quantiles(
            np.ascontiguousarray(values).reshape(rows),
            order.reshape(rows),
            quantiles,
            normalised.reshape(rows),
        )
    else:
        ordered = np.take_along_axis(values, order, axis=-1)
        untied = not np.any(ordered[..., 1:] == ordered[..., :-1])
        if untied:
            quantiles = np.broadcast_to(quantiles, values.shape)
            np.put_along_axis(normalised, order, quantiles, -1)
    if not untied:
        ranks = rankdata(values, method="average", axis=-1)
        return ndtri(ranks / (n_trials + 1.0))
    return normalised


def orthonormal_target_basis(
    target: np.ndarray, given: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Orthonormal basis of ``[given, target]`` per surrogate.

    Parameters
    ----------
    target : numpy.ndarray, shape (n_surrogates, n_trials, n_target_dims)
        Copula-normalised target values.
    given : numpy.ndarray, shape (n_surrogates, n_trials, n_given_dims), optional
        Copula-normalised conditioning values.

    Returns
    -------
    basis : numpy.ndarray, shape (n_surrogates, n_trials, n_given + n_target)
        Columns orthonormal and orthogonal to the constant; the first
        ``n_given`` span ``given``.
    degenerate : numpy.ndarray of bool, shape (n_surrogates,)
        Surrogates whose columns are (nearly) linearly dependent.
    """
    columns = target if given is None else np.concatenate([given, target], axis=-1)
    columns = columns - columns.mean(axis=1, keepdims=True)
    basis, triangular = np.linalg.qr(columns)
    diagonal = np.abs(np.diagonal(triangular, axis1=-2, axis2=-1))
    scale = np.sqrt(np.einsum("sij,sij->sj", columns, columns)).max(axis=-1)
    degenerate = (diagonal < 1e-8 * scale[:, None]).any(axis=-1)
    return basis, degenerate


def continuous_mi(
    neural: np.ndarray,
    basis: np.ndarray,
    *,
    n_given: int,
    neural_dims: int = 1,
    progress: bool = False,
) -> np.ndarray:
    """Bias-corrected Gaussian (conditional) MI, in bits, for all tests × surrogates.

    Parameters
    ----------
    neural : numpy.ndarray, shape (n_trials, n_tests * neural_dims)
        Unit-norm centred columns; with ``neural_dims > 1`` each test's columns
        are consecutive and orthonormal.
    basis : numpy.ndarray, shape (n_surrogates, n_trials, n_given + n_target)
        From :func:`orthonormal_target_basis`.
    n_given : int
        Number of leading basis columns that span the conditioning variable.
    neural_dims : int, default=1
        Dimension of each test's neural variable.
    progress : bool, default=False
        Show a progress bar over the blocks of products.

    Returns
    -------
    numpy.ndarray, shape (n_surrogates, n_tests)
    """
    n_surrogates, n_trials, n_basis = basis.shape
    n_tests = neural.shape[1] // neural_dims
    bias = _mi_bias(n_trials, neural_dims, n_basis - n_given, n_given)
    # (n_trials, n_surrogates * n_basis), surrogate-major, copied once
    stacked = np.ascontiguousarray(basis.transpose(1, 0, 2)).reshape(n_trials, -1)
    mi = _empty_results((n_surrogates, n_tests))

    blocks, max_pairs = _blocks(n_surrogates, n_tests, n_basis * neural_dims, progress)
    product = np.empty(max_pairs * n_basis * neural_dims)  # reused by every block
    widest = min(n_tests, max_pairs)
    work = np.empty((2, max(SCRATCH_BYTES // 16, widest))) if neural_dims == 1 else None
    for surrogates, tests in blocks:
        n_chunk = surrogates.stop - surrogates.start
        left = stacked[:, surrogates.start * n_basis : surrogates.stop * n_basis].T
        right = neural[:, tests.start * neural_dims : tests.stop * neural_dims]
        projection = np.matmul(
            left, right, out=_view(product, (left.shape[0], right.shape[1]))
        ).reshape(n_chunk, n_basis, -1)
        if neural_dims == 1:
            _univariate_continuous_mi(
                projection, n_given, bias, mi, surrogates, tests, work
            )
            continue
        projection = projection.reshape(n_chunk, n_basis, -1, neural_dims)
        gram = np.einsum("smtp,sntp->stmn", projection, projection)
        eye = np.eye(n_basis)
        log_ratio = _logdet(eye[:n_given, :n_given] - gram[..., :n_given, :n_given])
        log_ratio -= _logdet(eye - gram)
        mi[surrogates, tests] = (0.5 * log_ratio - bias) / LN2
    return mi


def _univariate_continuous_mi(
    projection: np.ndarray,
    n_given: int,
    bias: float,
    mi: np.ndarray,
    surrogates: slice,
    tests: slice,
    work: np.ndarray,
) -> None:
    """Fill a block of ``mi`` from the projections of 1-D neural variables.

    ``projection`` is (n_chunk, n_basis, n_block_tests) and ``work`` two rows
    of scratch space, filled by one run of surrogates after another. Compiled,
    the squared norms take one pass, their logs a vectorised numpy pass (several
    times faster than the scalar log of compiled code) and the scaling to bits a
    second compiled pass.
    """
    if _jit is None:  # pragma: no cover - numba is a dependency
        total = np.einsum("smt,smt->st", projection, projection)
        log_ratio = -np.log1p(-np.minimum(total, 1.0))
        if n_given:
            given = projection[:, :n_given]
            log_ratio += np.log1p(-np.einsum("smt,smt->st", given, given))
        mi[surrogates, tests] = (0.5 * log_ratio - bias) / LN2
        return

    n_chunk, _, n_block_tests = projection.shape
    for first, count in _row_runs(n_chunk, 2 * n_block_tests):
        shape = (count, n_block_tests)
        total, given = _view(work[0], shape), _view(work[1], shape)
        _negated_squared_norms(projection, n_given, first, total, given)
        np.log1p(total, out=total)
        if n_given:
            np.log1p(given, out=given)
        _continuous_bits(
            total, given, n_given, bias, mi, surrogates.start + first, tests.start
        )


def discrete_mi(
    neural: np.ndarray,
    codes: np.ndarray,
    *,
    n_classes: int,
    neural_dims: int = 1,
    progress: bool = False,
) -> np.ndarray:
    """Bias-corrected Gaussian-model MI, in bits, with class labels.

    Parameters
    ----------
    neural : numpy.ndarray, shape (n_trials, n_tests * neural_dims)
        As in :func:`continuous_mi`: unit-norm centred (orthonormal per test).
    codes : numpy.ndarray of int, shape (n_surrogates, n_trials)
        Class index ``0 … n_classes - 1`` of every trial in every surrogate.
    n_classes : int
        Number of classes.
    neural_dims : int, default=1
        Dimension of each test's neural variable.
    progress : bool, default=False
        Show a progress bar over the blocks of products.

    Returns
    -------
    numpy.ndarray, shape (n_surrogates, n_tests)
        NaN for surrogates in which a class has ``neural_dims + 1`` trials or
        fewer.

    Notes
    -----
    The moments of the last class are the totals minus those of the others,
    so a binary target costs one product, not two.
    """
    n_surrogates, n_trials = codes.shape
    n_tests = neural.shape[1] // neural_dims
    class_sizes = np.stack(
        [np.count_nonzero(codes == k, axis=1) for k in range(n_classes)]
    ).astype(np.float64)  # (n_classes, n_surrogates)
    too_small = (class_sizes <= neural_dims + 1).any(axis=0)
    safe_sizes = np.where(class_sizes > neural_dims + 1, class_sizes, np.nan)
    weights = class_sizes / n_trials
    bias = entropy_bias(n_trials, neural_dims) - np.einsum(
        "ks,ks->s", weights, entropy_bias(safe_sizes, neural_dims)
    )
    # pooled covariance of orthonormal columns is I / (n - 1)
    pooled = -0.5 * neural_dims * np.log(n_trials - 1.0)
    indicators = [
        np.ascontiguousarray((codes == k).T, dtype=np.float64)
        for k in range(n_classes - 1)
    ]
    mi = _empty_results((n_surrogates, n_tests))

    if _jit is not None and neural_dims == 1:
        _univariate_discrete_mi(
            neural, indicators, safe_sizes, weights, pooled - bias, mi, progress
        )
        mi[too_small] = np.nan
        return mi

    features, pairs = _moment_features(neural, neural_dims)
    n_features = features.shape[1]
    flat = features.reshape(n_trials, -1)
    totals = flat.sum(axis=0).reshape(n_features, n_tests)
    for start, stop in _chunks(n_surrogates, flat.shape[1] * n_classes, progress):
        sums = np.empty((n_classes, stop - start, n_features, n_tests))
        for k, indicator in enumerate(indicators):
            np.matmul(
                indicator[:, start:stop].T, flat, out=sums[k].reshape(stop - start, -1)
            )
        sums[-1] = totals - sums[:-1].sum(axis=0)
        sizes = safe_sizes[:, start:stop]
        conditional = _class_half_logdet(sums, sizes, neural_dims, pairs)
        weighted = np.einsum("ks,kst->st", weights[:, start:stop], conditional)
        mi[start:stop] = (pooled - weighted - bias[start:stop, None]) / LN2
    mi[too_small] = np.nan
    return mi


def _univariate_discrete_mi(
    neural: np.ndarray,
    indicators: list[np.ndarray],
    sizes: np.ndarray,
    weights: np.ndarray,
    offsets: np.ndarray,
    mi: np.ndarray,
    progress: bool,
) -> None:
    """Fill ``mi`` with the discrete-target MI of 1-D neural variables, in bits.

    The per-class sums of ``x`` and ``x²`` of a block of tests are two products
    per class (the last class is the totals less the others); a compiled pass
    turns them into class variances, numpy takes their logs (vectorised) and a
    second compiled pass weights them: ``mi = (offset - Σ_k w_k · ½ log var_k) /
    ln 2``, with ``offset`` the pooled term less the bias.
    """
    n_surrogates, n_tests = mi.shape
    n_classes = len(indicators) + 1
    totals = np.stack([neural.sum(axis=0), np.einsum("ij,ij->j", neural, neural)])
    half_weights = np.ascontiguousarray(weights * 0.5)
    offsets = np.ascontiguousarray(offsets)

    blocks, max_pairs = _blocks(n_surrogates, n_tests, 2 * (n_classes - 1), progress)
    # reused by every block: the products, x² of the block's tests, scratch
    product = np.empty(max_pairs * 2 * (n_classes - 1))
    squares_buffer = np.empty(len(neural) * min(n_tests, max_pairs))
    scratch = np.empty(max(SCRATCH_BYTES // 8, n_classes * min(n_tests, max_pairs)))
    for surrogates, tests in blocks:
        n_chunk = surrogates.stop - surrogates.start
        n_block_tests = tests.stop - tests.start
        sums = _view(product, (n_classes - 1, 2, n_chunk, n_block_tests))
        values = neural[:, tests]
        squares = np.multiply(values, values, out=_view_like(squares_buffer, values))
        for k, indicator in enumerate(indicators):
            left = indicator[:, surrogates].T
            np.matmul(left, values, out=sums[k, 0])
            np.matmul(left, squares, out=sums[k, 1])
        block_totals = np.ascontiguousarray(totals[:, tests])
        block_sizes = np.ascontiguousarray(sizes[:, surrogates])
        for first, count in _row_runs(n_chunk, n_classes * n_block_tests):
            variances = _view(scratch, (n_classes, count, n_block_tests))
            _class_variances(sums, block_totals, block_sizes, first, variances)
            with np.errstate(divide="ignore", invalid="ignore"):  # constant columns
                np.log(variances, out=variances)
            _weighted_bits(
                variances,
                half_weights,
                offsets,
                mi,
                surrogates.start + first,
                tests.start,
            )


def _moment_features(
    neural: np.ndarray, neural_dims: int
) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Per trial: each test's ``x_a`` and products ``x_a x_b`` (a <= b).

    Returns (n_trials, n_features, n_tests) and the (a, b) of each product.
    """
    n_trials = neural.shape[0]
    blocks = neural.reshape(n_trials, -1, neural_dims)
    pairs = [(a, b) for a in range(neural_dims) for b in range(a, neural_dims)]
    columns = [blocks[..., a] for a in range(neural_dims)]
    columns += [blocks[..., a] * blocks[..., b] for a, b in pairs]
    return np.stack(columns, axis=1), pairs


def _class_half_logdet(
    sums: np.ndarray, sizes: np.ndarray, neural_dims: int, pairs: list
) -> np.ndarray:
    """½ log det of each class covariance from its first and second moments.

    ``sums`` is (n_classes, n_chunk, n_features, n_tests) and ``sizes``
    (n_classes, n_chunk); returns (n_classes, n_chunk, n_tests).
    """
    sizes = sizes[..., None]
    first, second = sums[:, :, :neural_dims], sums[:, :, neural_dims:]
    if neural_dims == 1:
        scatter = second[:, :, 0] - first[:, :, 0] ** 2 / sizes
        with np.errstate(divide="ignore", invalid="ignore"):
            return 0.5 * np.log(scatter / (sizes - 1.0))
    covariance = np.empty(first.shape[:2] + first.shape[3:] + (neural_dims,) * 2)
    for index, (a, b) in enumerate(pairs):
        value = (second[:, :, index] - first[:, :, a] * first[:, :, b] / sizes) / (
            sizes - 1.0
        )
        covariance[..., a, b] = covariance[..., b, a] = value
    return 0.5 * _logdet(covariance)


def _place_quantiles_python(
    values: np.ndarray, order: np.ndarray, quantiles: np.ndarray, out: np.ndarray
) -> bool:
    """Give the ``i``-th smallest value of every row the quantile ``quantiles[i]``.

    ``order`` sorts each row of ``values`` (n_rows, n); returns False as soon as
    two sorted neighbours are equal (a tie, which needs average ranks), leaving
    ``out`` partly written.
    """
    n_rows, n_values = values.shape
    for row in range(n_rows):
        previous = np.nan
        for position in range(n_values):
            column = order[row, position]
            value = values[row, column]
            if value == previous:
                return False
            out[row, column] = quantiles[position]
            previous = value
    return True


def _negated_squared_norms_python(
    projection: np.ndarray,
    n_given: int,
    first: int,
    total: np.ndarray,
    given: np.ndarray,
) -> None:
    """Write ``-min(|a|² + |b|², 1)`` and ``-|a|²`` of a run of surrogates.

    ``projection`` is (n_chunk, n_basis, n_tests), the first ``n_given`` basis
    rows being ``a`` (the conditioning variable) and the others ``b``; the
    results for its surrogates ``first, first + 1, …`` go to the rows of
    ``total`` and, if ``n_given``, ``given`` (n_run, n_tests), ready for
    ``log1p``.
    """
    n_run, n_tests = total.shape
    n_basis = projection.shape[1]
    for surrogate in range(n_run):
        row = total[surrogate]
        row[:] = 0.0
        for basis in range(n_basis):
            if basis == n_given and n_given:
                given[surrogate] = -row
            values = projection[first + surrogate, basis]
            for test in range(n_tests):
                row[test] += values[test] * values[test]
        for test in range(n_tests):
            row[test] = -min(row[test], 1.0)


def _continuous_bits_python(
    log_total: np.ndarray,
    log_given: np.ndarray,
    n_given: int,
    bias: float,
    mi: np.ndarray,
    first_surrogate: int,
    first_test: int,
) -> None:
    """Write ``(½ [log(1 - |a|²) - log(1 - |a|² - |b|²)] - bias) / ln 2`` into ``mi``.

    ``log_total`` and ``log_given`` (n_run, n_tests) hold the two logs (the
    second is ignored without conditioning) of the surrogates from
    ``first_surrogate`` on, and of the tests from ``first_test`` on (whole
    arrays are passed so that numba compiles one signature only).
    """
    n_chunk, n_tests = log_total.shape
    for surrogate in range(n_chunk):
        row = mi[first_surrogate + surrogate, first_test : first_test + n_tests]
        for test in range(n_tests):
            log_ratio = -log_total[surrogate, test]
            if n_given:
                log_ratio += log_given[surrogate, test]
            row[test] = (0.5 * log_ratio - bias) / LN2


def _class_variances_python(
    sums: np.ndarray,
    totals: np.ndarray,
    sizes: np.ndarray,
    start: int,
    variances: np.ndarray,
) -> None:
    """Write the variance of a 1-D neural variable per class, surrogate and test.

    ``sums`` is (n_classes - 1, 2, n_chunk, n_tests), the sums of ``x`` and
    ``x²`` over the trials of every class but the last, whose moments are the
    ``totals`` (2, n_tests) less the others'; ``sizes`` is (n_classes, n_chunk).
    Fills ``variances`` (n_classes, n_run, n_tests) for the surrogates
    ``start, start + 1, …`` of the chunk; the same arithmetic as
    :func:`_class_half_logdet`, with the test loop innermost so that it
    vectorises.
    """
    n_known, _, _, n_tests = sums.shape
    n_run = variances.shape[1]
    rest_first = np.empty(n_tests)
    for run in range(n_run):
        surrogate = start + run
        rest_second = variances[n_known, run]
        rest_first[:] = totals[0]
        rest_second[:] = totals[1]
        for k in range(n_known):
            size = sizes[k, surrogate]
            first = sums[k, 0, surrogate]
            second = sums[k, 1, surrogate]
            variance = variances[k, run]
            for test in range(n_tests):
                rest_first[test] -= first[test]
                rest_second[test] -= second[test]
                variance[test] = (second[test] - first[test] * first[test] / size) / (
                    size - 1.0
                )
        size = sizes[n_known, surrogate]
        for test in range(n_tests):
            rest_second[test] = (
                rest_second[test] - rest_first[test] * rest_first[test] / size
            ) / (size - 1.0)


def _weighted_bits_python(
    log_variances: np.ndarray,
    half_weights: np.ndarray,
    offsets: np.ndarray,
    mi: np.ndarray,
    first_surrogate: int,
    first_test: int,
) -> None:
    """Write ``(offset - Σ_k w_k · ½ log var_k) / ln 2`` into a block of ``mi``.

    ``log_variances`` (n_classes, n_run, n_tests) belongs to the surrogates from
    ``first_surrogate`` on and the tests from ``first_test`` on; ``half_weights``
    (n_classes, n_surrogates) holds ``w_k / 2`` and ``offsets`` (n_surrogates,)
    the pooled term less the bias (whole arrays are passed so that numba
    compiles one signature only).
    """
    n_classes, n_run, n_tests = log_variances.shape
    weighted = np.empty(n_tests)
    for run in range(n_run):
        surrogate = first_surrogate + run
        weighted[:] = 0.0
        for k in range(n_classes):
            half_weight = half_weights[k, surrogate]
            log_variance = log_variances[k, run]
            for test in range(n_tests):
                weighted[test] += half_weight * log_variance[test]
        row = mi[surrogate, first_test : first_test + n_tests]
        offset = offsets[surrogate]
        for test in range(n_tests):
            row[test] = (offset - weighted[test]) / LN2


if _jit is not None:
    _place_quantiles = _jit(_place_quantiles_python)
    _negated_squared_norms = _jit(_negated_squared_norms_python)
    _continuous_bits = _jit(_continuous_bits_python)
    _class_variances = _jit(_class_variances_python)
    _weighted_bits = _jit(_weighted_bits_python)


def _logdet(matrices: np.ndarray) -> np.ndarray:
    """Compute log det of a stack of positive definite matrices (NaN if not)."""
    if matrices.shape[-1] == 0:
        return np.zeros(matrices.shape[:-2])
    sign, log_det = np.linalg.slogdet(matrices)
    return np.where(sign > 0, log_det, np.nan)


def _empty_results(shape: tuple[int, int]) -> np.ndarray:
    """Return an uninitialised float64 array for MI results, on ordinary pages.

    numpy asks Linux for transparent huge pages for every large array. Results
    are new memory that the caller keeps, and where freed memory is handed back
    to a hypervisor (free page reporting, as on the development VM) new huge
    pages are slow to fault in: filling 64 MB of new memory took 160-210 ms on
    2 MiB pages against about 30 ms on 4 KiB pages (and 9-14 ms on 2 MiB pages
    that had just been freed). Results of ``SMALL_PAGES_FROM_BYTES`` or more are
    therefore mapped with ``MADV_NOHUGEPAGE`` where the platform has it.
    """
    n_bytes = 8 * int(np.prod(shape))
    if n_bytes < SMALL_PAGES_FROM_BYTES or not hasattr(mmap, "MADV_NOHUGEPAGE"):
        return np.empty(shape)
    memory = mmap.mmap(-1, n_bytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    memory.madvise(mmap.MADV_NOHUGEPAGE)
    return np.frombuffer(memory, dtype=np.float64).reshape(shape)


def _blocks(
    n_surrogates: int, n_tests: int, cells_per_pair: int, progress: bool
) -> tuple[Iterator[tuple[slice, slice]], int]:
    """Blocks of surrogates × tests for the engine's products.

    A block's product output (``cells_per_pair`` values per surrogate and test)
    stays under ``CHUNK_BYTES``. It spans all the surrogates next to at least
    ``MIN_BLOCK_TESTS`` tests when it can (and fewer surrogates otherwise), so
    that every product is wide and tall enough for BLAS to run near its rate.
    Returns the (surrogate slice, test slice) of every block, behind a progress
    bar, and the surrogate × test pairs of the largest.
    """
    pairs = max(1, CHUNK_BYTES // (8 * max(cells_per_pair, 1)))
    width = min(n_tests, max(MIN_BLOCK_TESTS, pairs // max(n_surrogates, 1)))
    height = min(n_surrogates, max(1, pairs // max(width, 1)))
    # as many blocks as these sizes need, of (nearly) equal sizes
    width = -(-n_tests // -(-n_tests // width)) if width else 0
    height = -(-n_surrogates // -(-n_surrogates // height)) if height else 0
    slices = [
        (slice(s, min(s + height, n_surrogates)), slice(t, min(t + width, n_tests)))
        for s in range(0, n_surrogates, max(height, 1))
        for t in range(0, n_tests, max(width, 1))
    ]
    bar = tqdm(
        slices,
        desc="surrogates × tests",
        unit="block",
        disable=None if progress else True,
        leave=False,
    )
    return iter(bar), height * width


def _view_like(buffer: np.ndarray, array: np.ndarray) -> np.ndarray:
    """Return a view of a flat buffer with the shape of a 2-D ``array``.

    Laid out in the same order (C or Fortran), so that copying into it is a
    straight pass.
    """
    if array.flags.f_contiguous and not array.flags.c_contiguous:
        return _view(buffer, array.shape[::-1]).T
    return _view(buffer, array.shape)


def _row_runs(n_rows: int, values_per_row: int) -> Iterator[tuple[int, int]]:
    """(first, count) runs of rows whose values fit in ``SCRATCH_BYTES``.

    A run holds one row at least, whatever its size.
    """
    size = max(1, SCRATCH_BYTES // (8 * max(values_per_row, 1)))
    for first in range(0, n_rows, size):
        yield first, min(size, n_rows - first)


def _view(buffer: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Return a C-contiguous array of ``shape`` on the front of a flat buffer."""
    return buffer[: int(np.prod(shape))].reshape(shape)


def _chunks(n_surrogates: int, columns_per_surrogate: int, progress: bool) -> Iterator:
    """Surrogate ranges whose projection output stays under CHUNK_BYTES."""
    size = max(1, CHUNK_BYTES // (8 * max(columns_per_surrogate, 1)))
    starts = range(0, n_surrogates, size)
    bar = tqdm(
        starts,
        total=len(starts),
        desc="surrogates",
        unit="chunk",
        disable=None if progress else True,
        leave=False,
    )
    for start in bar:
        yield start, min(start + size, n_surrogates)
