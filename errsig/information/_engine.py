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
from collections.abc import Iterator

import numpy as np
from scipy.special import ndtri
from scipy.stats import rankdata
from tqdm.auto import tqdm

from errsig.information._gcmi import LN2, _mi_bias, entropy_bias

logger = logging.getLogger(__name__)

#: Bytes of projection output computed at once; bounds the engine's memory.
CHUNK_BYTES = 32 * 2**20

try:  # numba fuses the per-class moments into one pass; numpy does it otherwise
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
    ordered = np.take_along_axis(values, order, axis=-1)
    if np.any(ordered[..., 1:] == ordered[..., :-1]):
        ranks = rankdata(values, method="average", axis=-1)
        return ndtri(ranks / (n_trials + 1.0))
    # no ties (the usual case for a continuous target): one sort suffices
    quantiles = ndtri(np.arange(1, n_trials + 1) / (n_trials + 1.0))
    normalised = np.empty(values.shape)
    np.put_along_axis(normalised, order, np.broadcast_to(quantiles, values.shape), -1)
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
        Show a progress bar over the surrogate chunks.

    Returns
    -------
    numpy.ndarray, shape (n_surrogates, n_tests)
    """
    n_surrogates, n_trials, n_basis = basis.shape
    n_tests = neural.shape[1] // neural_dims
    bias = _mi_bias(n_trials, neural_dims, n_basis - n_given, n_given)
    # (n_trials, n_surrogates * n_basis), surrogate-major, copied once
    stacked = np.ascontiguousarray(basis.transpose(1, 0, 2)).reshape(n_trials, -1)
    mi = np.empty((n_surrogates, n_tests))

    for start, stop in _chunks(n_surrogates, neural.shape[1] * n_basis, progress):
        block = stacked[:, start * n_basis : stop * n_basis]
        projection = (block.T @ neural).reshape(stop - start, n_basis, -1)
        if neural_dims == 1:
            total = np.einsum("smt,smt->st", projection, projection)
            log_ratio = -np.log1p(-np.minimum(total, 1.0))
            if n_given:
                given = projection[:, :n_given]
                log_ratio += np.log1p(-np.einsum("smt,smt->st", given, given))
        else:
            projection = projection.reshape(stop - start, n_basis, n_tests, neural_dims)
            gram = np.einsum("smtp,sntp->stmn", projection, projection)
            eye = np.eye(n_basis)
            log_ratio = _logdet(eye[:n_given, :n_given] - gram[..., :n_given, :n_given])
            log_ratio -= _logdet(eye - gram)
        mi[start:stop] = (0.5 * log_ratio - bias) / LN2
    return mi


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
        Show a progress bar over the surrogate chunks.

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
    features, pairs = _moment_features(neural, neural_dims)
    n_features, n_tests = features.shape[1:]
    flat = features.reshape(n_trials, -1)
    totals = flat.sum(axis=0).reshape(n_features, n_tests)
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
    mi = np.empty((n_surrogates, n_tests))

    fused = _jit is not None and neural_dims == 1
    for start, stop in _chunks(n_surrogates, flat.shape[1] * n_classes, progress):
        sums = np.empty((n_classes, stop - start, n_features, n_tests))
        for k, indicator in enumerate(indicators):
            np.matmul(
                indicator[:, start:stop].T, flat, out=sums[k].reshape(stop - start, -1)
            )
        sizes = safe_sizes[:, start:stop]
        if fused:
            # contiguous, so that numba compiles (and caches) one signature only
            weighted = _weighted_class_half_logvar(
                sums,
                np.ascontiguousarray(totals),
                np.ascontiguousarray(sizes),
                np.ascontiguousarray(weights[:, start:stop]),
            )
        else:
            sums[-1] = totals - sums[:-1].sum(axis=0)
            conditional = _class_half_logdet(sums, sizes, neural_dims, pairs)
            weighted = np.einsum("ks,kst->st", weights[:, start:stop], conditional)
        mi[start:stop] = (pooled - weighted - bias[start:stop, None]) / LN2
    mi[too_small] = np.nan
    return mi


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


def _weighted_class_half_logvar_python(
    sums: np.ndarray, totals: np.ndarray, sizes: np.ndarray, weights: np.ndarray
) -> np.ndarray:
    """Σ_k w_k · ½ log var_k of a 1-D neural variable, in one pass per test.

    ``sums`` is (n_classes, n_chunk, 2, n_tests), the first and second moments
    of every class but the last (whose slot is ignored: its moments are the
    ``totals`` (2, n_tests) less the others'); ``sizes`` and ``weights`` are
    (n_classes, n_chunk). The same arithmetic as :func:`_class_half_logdet`
    followed by the weighting, without the temporaries.
    """
    n_classes, n_chunk, _, n_tests = sums.shape
    weighted = np.empty((n_chunk, n_tests))
    for surrogate in range(n_chunk):
        for test in range(n_tests):
            rest_first = totals[0, test]
            rest_second = totals[1, test]
            total = 0.0
            for k in range(n_classes):
                if k < n_classes - 1:
                    first = sums[k, surrogate, 0, test]
                    second = sums[k, surrogate, 1, test]
                    rest_first -= first
                    rest_second -= second
                else:
                    first, second = rest_first, rest_second
                size = sizes[k, surrogate]
                variance = (second - first * first / size) / (size - 1.0)
                total += weights[k, surrogate] * 0.5 * np.log(variance)
            weighted[surrogate, test] = total
    return weighted


_weighted_class_half_logvar = (
    _jit(_weighted_class_half_logvar_python)
    if _jit is not None
    else _weighted_class_half_logvar_python
)


def _logdet(matrices: np.ndarray) -> np.ndarray:
    """Compute log det of a stack of positive definite matrices (NaN if not)."""
    if matrices.shape[-1] == 0:
        return np.zeros(matrices.shape[:-2])
    sign, log_det = np.linalg.slogdet(matrices)
    return np.where(sign > 0, log_det, np.nan)


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
