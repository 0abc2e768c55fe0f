"""Batched linear decoders: ridge with leave-one-out penalty choice, L2 logistic.

Both take the features of many time bins at once, shape ``(n_bins, n_rows,
n_features)``, and many targets at once, one column per right-hand side (the
observed target and every surrogate of the null), and return held-out
predictions for every row, bin and column. The features are read a chunk of
bins at a time (``features[start:stop]``), so they may be an array or a
:class:`~errsig.decoding._inputs.PopulationFeatures` that makes each chunk
from the counts only when it is fitted.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable

import numpy as np
from threadpoolctl import threadpool_limits

from errsig._exceptions import ConvergenceWarning

__all__ = ["logistic_cv_predict", "ridge_cv_predict", "standardize"]

#: Elements of one (bins × rows × columns) work array; bins are processed in
#: chunks of this size to bound memory.
CHUNK_ELEMENTS = 4_000_000

#: Bytes of the feature-sized float64 arrays of one chunk of bins fitted by
#: ridge (the features, their standardised copies, the Gram or kernel matrix
#: and its factors); a chunk holds fewer bins when they would exceed it, down
#: to one bin.
WORK_BYTES = 128 * 2**20

#: Above this many coefficients (features + intercept), logistic regression
#: takes truncated Newton steps (conjugate gradients) instead of factorising
#: one Hessian per surrogate: at 600 features and 1,600 rows a Hessian costs
#: about 1.2 GFLOP per surrogate and Newton step, a conjugate-gradient
#: iteration for all surrogates at once a few hundred MFLOP.
DIRECT_NEWTON_PARAMETERS = 128

#: Conjugate-gradient iterations per truncated Newton step, at most.
MAX_CG_ITERATIONS = 200

#: Below this many multiply-adds per matrix product, BLAS runs on one thread:
#: many small products lose more to thread start-up and contention than they
#: gain (16-fold slower on a loaded 2-core machine).
THREADED_PRODUCT_SIZE = 20_000_000


def _blas_threads(n_rows: int, n_features: int, n_columns: int):
    """One BLAS thread for small problems, the library's default otherwise."""
    if n_rows * min(n_rows, n_features) * n_columns < THREADED_PRODUCT_SIZE:
        return threadpool_limits(limits=1, user_api="blas")
    return contextlib.nullcontext()


def standardize(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centre and scale features by the training rows' mean and standard deviation.

    Features constant over the training rows keep a scale of 1, as in
    :class:`sklearn.preprocessing.StandardScaler`. Arrays are ``(..., rows,
    features)``.
    """
    mean = train.mean(axis=-2, keepdims=True)
    scale = train.std(axis=-2, keepdims=True)
    scale[scale < 10 * np.finfo(np.float64).eps * np.maximum(1.0, np.abs(mean))] = 1.0
    return (train - mean) / scale, (test - mean) / scale


def ridge_cv_predict(
    features: np.ndarray,
    targets: np.ndarray,
    folds: list[tuple[np.ndarray, np.ndarray]],
    alphas: np.ndarray,
    n_components: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Held-out ridge predictions, the penalty chosen by leave-one-out per fold.

    Parameters
    ----------
    features : numpy.ndarray
        ``(n_bins, n_rows, n_features)``.
    targets : numpy.ndarray
        ``(n_rows, n_problems * n_components)``: consecutive groups of
        ``n_components`` columns form one problem (the observed target, then
        each surrogate), which shares one penalty.
    folds : list of (train_rows, test_rows)
    alphas : numpy.ndarray
        Candidate penalties.
    n_components : int

    Returns
    -------
    predictions : numpy.ndarray
        ``(n_bins, n_rows, n_columns)``, each row predicted by the fold that
        held it out.
    chosen : numpy.ndarray
        ``(n_folds, n_bins, n_problems)`` index into ``alphas`` of the penalty
        chosen on each fold's training rows.
    """
    n_bins, n_rows, n_features = features.shape
    n_columns = targets.shape[1]
    n_problems = n_columns // n_components
    predictions = np.empty((n_bins, n_rows, n_columns))
    chosen = np.empty((len(folds), n_bins, n_problems), dtype=np.intp)
    target_means = [targets[train].mean(axis=0) for train, _ in folds]

    # Each bin is fitted on its own: the chunks bound the memory and leave the
    # numbers as they are (but for the rounding noted in _ridge_chunk).
    chunk = _ridge_chunk(n_rows, n_features, n_columns)
    with _blas_threads(n_rows, n_features, n_columns):
        for start in range(0, n_bins, chunk):
            bins = slice(start, min(start + chunk, n_bins))
            block = np.asarray(features[bins], dtype=np.float64)
            for fold, (train, test) in enumerate(folds):
                centred = targets[train] - target_means[fold]
                train_x, test_x = standardize(block[:, train], block[:, test])
                prediction, best = _ridge_fold(
                    train_x, test_x, centred, alphas, n_components
                )
                predictions[bins, test] = prediction + target_means[fold]
                chosen[fold, bins] = best
    return predictions, chosen


def _ridge_chunk(n_rows: int, n_features: int, n_columns: int) -> int:
    """Bins per ridge chunk: CHUNK_ELEMENTS and WORK_BYTES both bound it.

    Per bin, the feature-sized arrays are the features and about four more
    arrays of their size (the training and test copies, standardised, and the
    fold's factors), and the Gram or kernel matrix with its eigenvectors and
    LAPACK workspace. Small populations keep the chunks set by the rows ×
    columns arrays alone (those of a one-feature population round its
    standard deviation differently in a chunk of one bin).
    """
    rank = min(n_rows, n_features)
    feature_bytes = 8 * (5 * n_rows * n_features + 5 * rank**2)
    return max(
        1, min(CHUNK_ELEMENTS // (n_rows * n_columns), WORK_BYTES // feature_bytes)
    )


def _ridge_fold(
    train_x: np.ndarray,
    test_x: np.ndarray,
    centred: np.ndarray,
    alphas: np.ndarray,
    n_components: int,
) -> tuple[np.ndarray, np.ndarray]:
    """One fold, a chunk of bins: choose the penalty by exact LOO, then predict.

    With the eigendecomposition of the training Gram matrix (primal, when there
    are fewer features than rows) or kernel matrix (dual), the fit for any
    penalty is ``L diag(1 / (λ + α)) Rᵀ y`` and the held-out prediction
    ``T diag(1 / (λ + α)) Rᵀ y``; ``Rᵀ y`` is computed once for all penalties
    and all right-hand sides. No singular value is ever divided by.
    """
    n_train, n_features = train_x.shape[-2:]
    transposed = np.swapaxes(train_x, -1, -2)
    if n_features <= n_train:
        eigenvalues, vectors = np.linalg.eigh(transposed @ train_x)
        left = train_x @ vectors
        right = left
        test_factor = test_x @ vectors
    else:
        eigenvalues, vectors = np.linalg.eigh(train_x @ transposed)
        eigenvalues = np.clip(eigenvalues, 0.0, None)
        left = vectors * eigenvalues[:, None, :]
        right = vectors
        test_factor = test_x @ (transposed @ vectors)
    eigenvalues = np.clip(eigenvalues, 0.0, None)
    projected = np.swapaxes(right, -1, -2) @ centred
    leverage_base = left * right

    n_bins = train_x.shape[0]
    n_problems = centred.shape[1] // n_components
    loo_error = np.empty((len(alphas), n_bins, n_problems))
    for position, alpha in enumerate(alphas):
        shrink = 1.0 / (eigenvalues + alpha)
        residual = left @ (shrink[..., None] * projected)
        np.subtract(centred, residual, out=residual)
        np.square(residual, out=residual)
        # The intercept is fitted without penalty: it adds 1/n to each leverage.
        leverage = leverage_base @ shrink[..., None] + 1.0 / n_train
        weight = np.swapaxes((1.0 - leverage) ** -2, -1, -2)
        squared_sum = (weight @ residual)[:, 0]
        loo_error[position] = squared_sum.reshape(n_bins, n_problems, n_components).sum(
            axis=-1
        )
    best = np.argmin(loo_error, axis=0)

    shrink = 1.0 / (eigenvalues[None] + alphas[:, None, None])
    shrink_best = np.take_along_axis(np.moveaxis(shrink, 0, 1), best[..., None], axis=1)
    shrink_columns = np.repeat(np.swapaxes(shrink_best, 1, 2), n_components, axis=2)
    return test_factor @ (shrink_columns * projected), best


def logistic_cv_predict(
    features: np.ndarray,
    labels: np.ndarray,
    folds: list[tuple[np.ndarray, np.ndarray]],
    alpha: float,
    *,
    max_iter: int = 100,
    tol: float = 1e-10,
) -> np.ndarray:
    """Held-out decision values of L2 logistic regression, batched Newton.

    Minimises ``Σ log(1 + exp(-s·η)) + α/2·‖w‖²`` (intercept unpenalised) on
    standardised features, which is scikit-learn's ``LogisticRegression`` with
    ``C = 1 / α``.

    Parameters
    ----------
    features : numpy.ndarray
        ``(n_bins, n_rows, n_features)``.
    labels : numpy.ndarray
        ``(n_rows, n_problems)`` of 0/1.
    folds : list of (train_rows, test_rows)
    alpha : float
    max_iter : int, default=100
    tol : float, default=1e-10
        Newton stops when the largest step in any coefficient falls below it.

    Returns
    -------
    numpy.ndarray
        ``(n_bins, n_rows, n_problems)`` decision values ``η = b + x·w``.
    """
    n_bins, n_rows, n_features = features.shape
    n_problems = labels.shape[1]
    decisions = np.empty((n_bins, n_rows, n_problems))
    penalty = alpha * np.eye(n_features + 1)
    penalty[0, 0] = 0.0

    n_parameters = n_features + 1
    truncated = n_parameters > DIRECT_NEWTON_PARAMETERS
    if truncated:  # design, preconditioner and a few rows-or-parameters × problems
        per_bin = n_parameters * (n_rows + n_parameters + 6 * n_problems)
    else:  # the work of one Hessian per problem
        per_bin = n_problems * n_rows * n_parameters**2
    # All bins of a chunk take Newton steps until the slowest has converged,
    # so the chunks, unlike ridge's, change the decision values (below `tol`).
    chunk = max(1, 4 * CHUNK_ELEMENTS // max(per_bin, 1))
    solve = _truncated_newton if truncated else _newton
    with _blas_threads(n_rows, n_features + 1, n_problems):
        for start in range(0, n_bins, chunk):
            bins = slice(start, min(start + chunk, n_bins))
            block = np.asarray(features[bins], dtype=np.float64)
            for train, test in folds:
                train_x, test_x = standardize(block[:, train], block[:, test])
                coefficients = solve(
                    _with_intercept(train_x), labels[train], penalty, max_iter, tol
                )
                decisions[bins, test] = _with_intercept(test_x) @ coefficients
    return decisions


def _with_intercept(design: np.ndarray) -> np.ndarray:
    ones = np.ones((*design.shape[:-1], 1))
    return np.concatenate([ones, design], axis=-1)


def _newton(
    design: np.ndarray,
    labels: np.ndarray,
    penalty: np.ndarray,
    max_iter: int,
    tol: float,
) -> np.ndarray:
    """Fit penalised logistic regressions; ``(bins, p + 1, problems)``."""
    return _newton_iterations(
        design,
        labels,
        penalize=lambda coefficients: penalty @ coefficients,
        solve=lambda weight, gradient: _newton_step(design, weight, gradient, penalty),
        max_iter=max_iter,
        tol=tol,
    )


def _truncated_newton(
    design: np.ndarray,
    labels: np.ndarray,
    penalty: np.ndarray,
    max_iter: int,
    tol: float,
) -> np.ndarray:
    """Fit penalised logistic regressions by truncated Newton steps.

    The same problem, line search and stopping rule as :func:`_newton`, but
    each Newton system ``(Xᵀ W X + Λ) step = gradient`` is solved by
    preconditioned conjugate gradients for all problems at once: every
    iteration is two products of the design with a (parameters × problems)
    block, and no Hessian is formed. The preconditioner is the inverse of
    ``XᵀX / 4 + Λ``, which bounds every problem's Hessian from above (a
    logistic weight ``p (1 - p)`` is at most ¼; Böhning 1992), so one
    factorisation per bin serves every problem and step. Each system is solved
    to a relative residual of ``min(0.1, √‖gradient‖∞)``, tightening as the
    fit converges, so the steps converge superlinearly to the same optimum
    (Dembo, Eisenstat & Steihaug 1982).
    """
    n_parameters = design.shape[2]
    penalty_diagonal = np.diagonal(penalty)[:, None]  # the penalty is diagonal
    design_t = np.swapaxes(design, 1, 2)
    bound = design_t @ design / 4.0
    bound[:, np.arange(n_parameters), np.arange(n_parameters)] += penalty_diagonal.T
    preconditioner = np.linalg.inv(bound)
    del bound

    return _newton_iterations(
        design,
        labels,
        penalize=lambda coefficients: penalty_diagonal * coefficients,
        solve=lambda weight, gradient: _conjugate_gradient(
            design, design_t, weight, penalty_diagonal, gradient, preconditioner
        ),
        max_iter=max_iter,
        tol=tol,
    )


def _newton_iterations(
    design: np.ndarray,
    labels: np.ndarray,
    *,
    penalize: Callable[[np.ndarray], np.ndarray],
    solve: Callable[[np.ndarray, np.ndarray], np.ndarray],
    max_iter: int,
    tol: float,
) -> np.ndarray:
    """Newton's method with step halving, for a given way to solve each step.

    ``penalize`` gives the penalty's gradient ``Λ w`` at some coefficients and
    ``solve(weight, gradient)`` the step.
    Stops when no coefficient moves by more than ``tol``.
    """
    n_bins, _, n_parameters = design.shape
    n_problems = labels.shape[1]
    coefficients = np.zeros((n_bins, n_parameters, n_problems))

    def objective_of(trial: np.ndarray) -> np.ndarray:
        return _logistic_objective(design, labels, trial, penalize(trial))

    objective = objective_of(coefficients)

    for _ in range(max_iter):
        linear = design @ coefficients
        probability = 1.0 / (1.0 + np.exp(-linear))
        gradient = np.swapaxes(design, 1, 2) @ (probability - labels)
        gradient += penalize(coefficients)
        weight = probability * (1.0 - probability)
        step = solve(weight, gradient)

        # Halve the step where it does not lower the objective (rare).
        size = np.ones((n_bins, 1, n_problems))
        for _ in range(30):
            trial = coefficients - size * step
            trial_objective = objective_of(trial)
            worse = trial_objective > objective + 1e-12 * np.abs(objective)
            if not worse.any():
                break
            size[:, 0][worse] /= 2
        coefficients, objective = trial, trial_objective
        if np.max(np.abs(size * step)) < tol:
            return coefficients

    warnings.warn(
        f"logistic regression did not converge in {max_iter} Newton steps; the "
        "classes may be nearly separable. Raise the penalty (`penalties`).",
        ConvergenceWarning,
        stacklevel=5,
    )
    return coefficients


def _conjugate_gradient(
    design: np.ndarray,
    design_t: np.ndarray,
    weight: np.ndarray,
    penalty_diagonal: np.ndarray,
    gradient: np.ndarray,
    preconditioner: np.ndarray,
) -> np.ndarray:
    """Solve ``(Xᵀ W X + Λ) step = gradient`` by preconditioned CG, batched.

    Arrays are ``(bins, rows, parameters)`` for the design, ``(bins, rows,
    problems)`` for the weights and ``(bins, parameters, problems)`` for the
    gradient and the returned step; a system stops changing once its residual
    is small enough (see :func:`_truncated_newton`).
    """
    gradient_norm = np.sqrt((gradient * gradient).sum(axis=1))
    largest = np.abs(gradient).max(axis=1)
    forcing = np.minimum(0.1, np.sqrt(largest))
    threshold = (forcing * gradient_norm) ** 2

    step = np.zeros_like(gradient)
    residual = gradient.copy()
    preconditioned = preconditioner @ residual
    direction = preconditioned.copy()
    residual_dot = (residual * preconditioned).sum(axis=1)
    active = gradient_norm > 0
    for _ in range(min(MAX_CG_ITERATIONS, gradient.shape[1])):
        if not active.any():
            break
        curved = design_t @ (weight * (design @ direction))
        curved += penalty_diagonal * direction
        curvature = (direction * curved).sum(axis=1)
        length = np.divide(
            residual_dot, curvature, out=np.zeros_like(curvature), where=active
        )
        step += length[:, None] * direction
        residual -= length[:, None] * curved
        active &= (residual * residual).sum(axis=1) > threshold
        preconditioned = preconditioner @ residual
        new_dot = (residual * preconditioned).sum(axis=1)
        ratio = np.divide(
            new_dot, residual_dot, out=np.zeros_like(new_dot), where=active
        )
        direction = preconditioned + ratio[:, None] * direction
        residual_dot = new_dot
    return step


def _newton_step(
    design: np.ndarray, weight: np.ndarray, gradient: np.ndarray, penalty: np.ndarray
) -> np.ndarray:
    """Solve ``(Xᵀ W X + penalty) step = gradient`` for each bin and problem.

    One problem at a time, so that the weighted design and the Hessian are
    held for one problem only (``rows × parameters`` and ``parameters²`` per
    bin), not for all surrogates at once.
    """
    n_bins, _, n_parameters = design.shape
    n_problems = weight.shape[2]
    transposed_gradient = np.moveaxis(gradient, 2, 1)
    step = np.empty((n_bins, n_problems, n_parameters, 1))
    for problem in range(n_problems):
        weighted = design * weight[:, :, problem, None]
        hessian = np.swapaxes(weighted, -1, -2) @ design + penalty
        step[:, problem] = np.linalg.solve(
            hessian, transposed_gradient[:, problem, :, None]
        )
    return np.moveaxis(step[..., 0], 1, 2)


def _logistic_objective(
    design: np.ndarray,
    labels: np.ndarray,
    coefficients: np.ndarray,
    penalty_gradient: np.ndarray,
) -> np.ndarray:
    """Penalised loss of each bin and problem; ``penalty_gradient`` is ``Λ w``."""
    linear = design @ coefficients
    loss = np.logaddexp(0.0, linear) - labels * linear
    penalised = 0.5 * (coefficients * penalty_gradient).sum(axis=1)
    return loss.sum(axis=1) + penalised
