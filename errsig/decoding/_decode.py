"""Public entry points: :func:`decode` and :func:`decode_unit_curve`."""

from __future__ import annotations

import logging
import numbers
import sys
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import xarray as xr
from tqdm.auto import tqdm

from errsig._exceptions import ErrsigError
from errsig._validation import check_positive_int
from errsig.decoding import _inputs
from errsig.decoding._folds import check_folds
from errsig.decoding._inputs import DEFAULT_PENALTIES
from errsig.decoding._linear import (
    logistic_cv_predict,
    ridge_cv_predict,
    standardize,
)
from errsig.decoding._metrics import classification_scores, regression_scores

__all__ = ["DEFAULT_PENALTIES", "decode", "decode_unit_curve"]

logger = logging.getLogger(__name__)


def decode(
    ds: xr.Dataset,
    target: str,
    *,
    by: str | None = "area",
    model: Literal["auto", "ridge", "logistic"] | Any = "auto",
    cv: int | Any = 5,
    gap: int = 0,
    stratify: str | None = None,
    given: str | Sequence[str] | None = None,
    lags: int | Sequence[int] = 0,
    window: int = 1,
    null: str = "pseudosession",
    n_perm: int = 200,
    correction: Literal["maxstat", "cluster", "fdr", "none"] = "maxstat",
    alpha: float = 0.05,
    penalties: float | Sequence[float] | None = None,
    rng: int | np.random.Generator | None = None,
    progress: bool = False,
    surrogates: object | None = None,
) -> xr.Dataset:
    """Predict the error or the outcome from population activity, per area and bin.

    One decoder is trained per time bin (or sliding window of bins), per area
    and per lag, and scored on held-out trials of blocked cross-validation;
    its score is tested against decoders trained on surrogate targets from a
    null that keeps the slow structure of learning.

    Parameters
    ----------
    ds : xarray.Dataset
        Trial-aligned data from :func:`errsig.bin_trials`: ``counts`` (trial,
        unit, time) and the target variable.
    target : str
        ``"error"`` (the 2-D error shown, regression), ``"error_x"``,
        ``"error_y"``, ``"error_magnitude"``, ``"reward"`` (classification), or
        any other trial variable of ``ds`` (boolean or two-valued ones are
        classified, others regressed).
    by : str or None, default="area"
        Unit coordinate that groups units into populations; None decodes from
        all units together.
    model : {"auto", "ridge", "logistic"} or scikit-learn estimator, default="auto"
        "ridge" (regression; penalty chosen by exact leave-one-out inside each
        training fold), "logistic" (L2 logistic regression, classification);
        "auto" picks by the target. Any scikit-learn estimator is cloned and
        fitted on the standardised training features (slower).
    cv : int, scikit-learn splitter or list of (train, test), default=5
        An int makes that many contiguous blocks of trial order. A splitter or
        explicit folds must give every trial to exactly one test set.
    gap : int, default=0
        Trials on each side of a test block dropped from training (blocked
        folds only).
    stratify : {"phase"} or None, default=None
        Split each learning phase into ``cv`` blocks so that every fold tests
        part of every phase (blocked folds only).
    given : str or sequence of str, optional
        Covariates (variables of ``ds`` with a ``trial`` dimension, such as
        ``"kinematics"``): the result's ``score`` is then the held-out gain
        of covariates + activity over covariates alone.
    lags : int or sequence of int, default=0
        Predict the target of trial ``t + k`` from activity on trial ``t``; a
        sequence adds a ``lag`` dimension.
    window : int, default=1
        Number of consecutive bins whose counts are concatenated as features;
        a result's ``time`` is that of the window's last bin.
    null : str, default="pseudosession"
        "pseudosession", "shuffle", "circular_shift" or "linear_shift": surrogate
        targets, drawn by :func:`errsig.stats.null_targets`. "session": the
        behaviour of other sessions, given as ``surrogates``.
    n_perm : int, default=200
        Number of surrogates; 0 skips the test. With ``null="session"`` the
        other sessions set it and ``n_perm`` is ignored.
    correction : {"maxstat", "cluster", "fdr", "none"}, default="maxstat"
        Multiple-comparison correction over the time bins and lags of each
        area (:func:`errsig.stats.correct`).
    alpha : float, default=0.05
        Significance level at which ``significant`` is set (family-wise for
        ``maxstat`` and ``cluster``, false-discovery rate for ``fdr``).
    penalties : float or sequence of float, optional
        Ridge: the penalties searched (default :data:`DEFAULT_PENALTIES`; one value
        fixes the penalty). Logistic: one penalty ``α = 1 / C`` (default 1).
    rng : None, int or numpy.random.Generator, optional
        Seed or generator for the surrogates.
    progress : bool, default=False
        Show a progress bar over areas and lags (only on a terminal).
    surrogates : NullDraw, optional
        With ``null="session"`` only: this session's entry of
        :func:`errsig.stats.session_permutation` for the target (or its
        ``"error"`` draw for ``"error_x"``/``"error_y"``), made from the binned
        datasets of three or more sessions. The decoders are then fitted on
        the session's aligned trials only, and ``lags`` must be 0.

    Returns
    -------
    xarray.Dataset
        Over (``by``, [``lag``], ``time``): ``score`` (R² variance-weighted
        over components, or AUC; the gain over ``given`` when given), ``p``
        (corrected), ``p_uncorrected``, ``significant``, ``score_null``
        (``permutation`` first), ``r2`` and ``correlation`` per ``component``
        (regression) or ``auc`` and ``balanced_accuracy`` (classification),
        ``penalty`` per fold (ridge), ``n_units``. The attrs record the method,
        folds, null, correction and seed.

    Raises
    ------
    ColumnError
        If ``counts``, the target, the ``by`` coordinate or a ``given``
        variable is missing.
    InsufficientDataError
        If there are too few trials for the folds and lags, or one class only.
    ErrsigError
        On other invalid arguments.

    See Also
    --------
    decode_unit_curve : score against the number of units sampled.
    errsig.stats.null_targets : the surrogate targets.

    Notes
    -----
    *Folds.* Neighbouring trials share slow drift in activity and in
    behaviour (learning), so random K-fold splits leak; blocked folds keep
    whole runs of trials out. All time bins of a trial are always on the same
    side, and features are standardised with training-fold statistics.

    *Ridge.* On each training fold and bin the Gram (or kernel) matrix is
    eigendecomposed once; the exact leave-one-out error of every penalty, for
    the target and every surrogate at once, follows from the leverages
    ``h_ii(α)`` (Golub, Heath & Wahba 1979), and each surrogate gets its own
    penalty, so the null repeats the whole procedure. The penalty choice
    matches :class:`sklearn.linear_model.RidgeCV` on standardised features.

    *Scores.* R² is computed once on the pooled held-out predictions, about
    the mean of all trials; it is negative when the decoder does worse than
    that mean. Its upward bias under the null is zero or negative, so the
    permutation test, not R² > 0, decides.

    *Nulls.* The default pseudosession null redraws the error and reward
    sequences from the adaptation model fitted to the session, which keeps
    their slow trends; a trial shuffle does not, and its p-values are
    anti-conservative when activity drifts (Harris 2020). ``given`` guards
    against kinematic units being read as error signals (nested models, as
    Stark et al. 2006 do with partial correlation).

    References
    ----------
    .. [1] Golub GH, Heath M, Wahba G (1979). Generalized cross-validation as a
       method for choosing a good ridge parameter. Technometrics 21:215-223.
    .. [2] Harris KD (2020). Nonsense correlations in neuroscience. bioRxiv
       2020.11.29.402719.

    Examples
    --------
    >>> import numpy as np
    >>> import xarray as xr
    >>> from errsig.decoding import decode
    >>> rng = np.random.default_rng(0)
    >>> error = rng.normal(size=(120, 2))
    >>> rates = np.exp(1 + 0.4 * error @ rng.normal(size=(2, 6)))
    >>> counts = rng.poisson(rates[:, :, None] * np.ones(3))
    >>> ds = xr.Dataset(
    ...     {"counts": (("trial", "unit", "time"), counts),
    ...      "error": (("trial", "component"), error)},
    ...     coords={"area": ("unit", ["M1"] * 6), "time": [0.0, 0.1, 0.2],
    ...             "component": ["x", "y"]},
    ... )
    >>> result = decode(ds, "error", n_perm=0)
    >>> result["score"].sel(area="M1").values.round(2)
    array([0.63, 0.49, 0.56])
    """
    options = _inputs.check_options(
        ds,
        target,
        by,
        model,
        gap,
        stratify,
        lags,
        window,
        null,
        n_perm,
        alpha,
        correction,
        surrogates,
    )
    ds, counts, count_rows = _inputs.split_counts(ds)
    target_info = _inputs.decoding_target(ds, target)
    model_name = _inputs.resolve_model(model, target_info)
    penalties = _inputs.check_penalties(penalties, model_name)
    seed, generator = _inputs.seed_and_generator(rng)
    covariates = _inputs.covariate_features(ds, given, options["window"])
    groups = _inputs.unit_groups(ds, by)
    trial_index = _inputs.trial_positions(ds)

    null_values = None
    null_note = ""
    if n_perm:
        null_values, null_note, window_trials = _null_values(
            ds, target_info, null, n_perm, generator, surrogates
        )
        n_perm = len(null_values)
        if window_trials is not None:
            if options["lags"] != [0]:
                raise ErrsigError(
                    f"`null`={null!r} pairs a fixed set of trials with the "
                    "surrogate targets and supports lags=0 only; use the "
                    "pseudosession null for lagged decoding."
                )
            ds = ds.isel(trial=window_trials)
            count_rows = count_rows[window_trials]
            target_info = _inputs.decoding_target(ds, target)
            trial_index = _inputs.trial_positions(ds)
            if covariates is not None:
                covariates = covariates[:, window_trials]

    logger.info(
        "decoding %r with %s from %d population(s), %d lag(s), %d surrogates (%s)",
        target,
        model_name,
        len(groups),
        len(options["lags"]),
        n_perm,
        null,
    )
    strata = None if stratify is None else np.asarray(ds[stratify].values)
    results: dict[str, list] = {}
    folds_used = []
    bar = tqdm(
        total=len(groups) * len(options["lags"]),
        disable=not progress or not sys.stderr.isatty(),
        desc="decode",
    )
    for lag in options["lags"]:
        neural_rows, target_rows = _inputs.lag_pairs(trial_index, lag, target)
        folds, scheme = check_folds(
            cv,
            trial_index[neural_rows],
            gap=gap,
            strata=None if strata is None else strata[neural_rows],
        )
        folds_used.append(_inputs.describe_folds(folds, trial_index[neural_rows]))
        columns = _target_columns(target_info, null_values, target_rows)
        given_features = None if covariates is None else covariates[:, neural_rows]
        for name, units in groups:
            features = _inputs.PopulationFeatures(
                counts,
                count_rows[neural_rows],
                units,
                options["window"],
                covariates=given_features,
            )
            fit = _fit_and_score(
                features,
                given_features,
                columns,
                folds,
                model_name,
                model,
                penalties,
                target_info,
            )
            fit["n_units"] = int(units.sum())
            results.setdefault(name, []).append(fit)
            bar.update()
    bar.close()

    return _package(
        results,
        ds,
        target_info,
        groups,
        options,
        dict(
            target=target,
            model=model_name if isinstance(model, str) else repr(model),
            cv=scheme,
            folds=folds_used[0],
            gap=gap,
            stratify=str(stratify),
            given=str(given),
            null=null,
            null_note=null_note,
            n_perm=n_perm,
            correction=correction,
            alpha=alpha,
            seed=seed,
            penalties=[float(value) for value in np.atleast_1d(penalties)],
            by=str(by),
            **({"align": ds.attrs["align"]} if "align" in ds.attrs else {}),
        ),
        lag_is_scalar=isinstance(lags, numbers.Integral),
    )


def decode_unit_curve(
    ds: xr.Dataset,
    target: str,
    *,
    n_units: Sequence[int] | None = None,
    n_repeats: int = 10,
    by: str | None = "area",
    model: Literal["auto", "ridge", "logistic"] | Any = "auto",
    cv: int | Any = 5,
    gap: int = 0,
    window: int = 1,
    penalties: float | Sequence[float] | None = None,
    rng: int | np.random.Generator | None = None,
) -> xr.Dataset:
    """Score decoders against the number of units sampled from each area.

    Parameters
    ----------
    ds : xarray.Dataset
        Trial-aligned data, as for :func:`decode`.
    target : str
        As for :func:`decode`.
    n_units : sequence of int, optional
        Population sizes to sample; default 1, 2, 4, ... up to the largest
        area. Sizes larger than an area give NaN for it.
    n_repeats : int, default=10
        Random subsets drawn (without replacement) per size and area.
    by, model, cv, gap, window, penalties
        As for :func:`decode`.
    rng : None, int or numpy.random.Generator, optional
        Seed or generator for the unit subsets.

    Returns
    -------
    xarray.Dataset
        ``score`` (``by``, ``n_units``, ``repeat``, ``time``) and its mean over
        repeats, ``score_mean``; no permutation test.

    Examples
    --------
    >>> import numpy as np
    >>> import xarray as xr
    >>> from errsig.decoding import decode_unit_curve
    >>> rng = np.random.default_rng(1)
    >>> error = rng.normal(size=(100, 2))
    >>> rates = np.exp(1 + 0.3 * error @ rng.normal(size=(2, 8)))
    >>> ds = xr.Dataset(
    ...     {"counts": (("trial", "unit", "time"), rng.poisson(rates)[..., None]),
    ...      "error": (("trial", "component"), error)},
    ...     coords={"area": ("unit", ["PMd"] * 8), "time": [0.1]},
    ... )
    >>> curve = decode_unit_curve(ds, "error", n_units=[1, 8], n_repeats=3, rng=0)
    >>> mean = curve["score_mean"].sel(area="PMd", time=0.1).values
    >>> bool(mean[1] > mean[0])
    True
    """
    _inputs.check_options(
        ds, target, by, model, gap, None, 0, window, "shuffle", 0, 0.05
    )
    ds, counts, count_rows = _inputs.split_counts(ds)
    target_info = _inputs.decoding_target(ds, target)
    model_name = _inputs.resolve_model(model, target_info)
    penalties = _inputs.check_penalties(penalties, model_name)
    seed, generator = _inputs.seed_and_generator(rng)
    n_repeats = check_positive_int(n_repeats, "n_repeats")
    groups = _inputs.unit_groups(ds, by)
    largest = max(int(units.sum()) for _, units in groups)
    if n_units is None:
        n_units = [2**power for power in range(int(np.log2(largest)) + 1)]
    sizes = [check_positive_int(size, "n_units") for size in n_units]

    trial_index = _inputs.trial_positions(ds)
    folds, scheme = check_folds(cv, trial_index, gap=gap, strata=None)
    _inputs.check_classes(target_info.values, target_info)
    n_bins = ds.sizes["time"] - window + 1
    scores = np.full((len(groups), len(sizes), n_repeats, n_bins), np.nan)
    for group, (_, units) in enumerate(groups):
        members = np.flatnonzero(units)
        for position, size in enumerate(sizes):
            if size > len(members):
                continue
            for repeat in range(n_repeats):
                chosen = np.sort(generator.choice(members, size, replace=False))
                features = _inputs.PopulationFeatures(
                    counts, count_rows, chosen, window
                )
                fit = _fit_and_score(
                    features,
                    None,
                    target_info.values,
                    folds,
                    model_name,
                    model,
                    penalties,
                    target_info,
                )
                scores[group, position, repeat] = fit["score"][:, 0]

    dim = by or "area"
    result = xr.Dataset(
        {"score": ((dim, "n_units", "repeat", "time"), scores)},
        coords={
            dim: [name for name, _ in groups],
            "n_units": sizes,
            "repeat": np.arange(n_repeats),
            "time": ds["time"].values[window - 1 :],
        },
    )
    result["score_mean"] = result["score"].mean("repeat")
    result["score"].attrs["metric"] = _metric(target_info)
    result.attrs.update(
        method="decode_unit_curve",
        target=target,
        model=str(model_name),
        cv=scheme,
        seed=seed,
        metric=_metric(target_info),
        window=window,
    )
    return result


def _null_values(
    ds: xr.Dataset,
    target: _inputs.Target,
    null: str,
    n_perm: int,
    generator: np.random.Generator,
    session_draw: object | None = None,
) -> tuple[np.ndarray, str, np.ndarray | None]:
    """Surrogate targets ``(P, n_trials, n_components)``, a note, and the trials.

    The trials are None except for the linear-shift and session nulls, whose
    surrogates pair with a fixed set of neural trials.
    """
    from errsig.stats import NullDraw, null_targets

    if null == "session":
        surrogates = _inputs.check_session_draw(session_draw, target, ds)
    else:
        surrogates = null_targets(
            ds, target.null_source, n_perm, null=null, rng=generator
        )
    window_trials = None
    if isinstance(surrogates, NullDraw):
        window_trials = surrogates.neural_trials
        surrogates = surrogates.values
    values = target.from_null(np.asarray(surrogates))
    note = ""
    if null == "shuffle":
        note = (
            "trial-shuffle null: ignores trial order, so slow drift shared by "
            "activity and behaviour inflates false positives"
        )
    return values, note, window_trials


def _target_columns(
    target: _inputs.Target, null_values: np.ndarray | None, target_rows: np.ndarray
) -> np.ndarray:
    """Observed target then each surrogate, as ``(rows, problems * components)``."""
    observed = target.values[target_rows]
    _inputs.check_classes(observed, target)
    if null_values is None:
        return observed
    stacked = np.concatenate([observed[None], null_values[:, target_rows]])
    return np.moveaxis(stacked, 0, 1).reshape(len(target_rows), -1)


def _fit_and_score(
    features: _inputs.PopulationFeatures | np.ndarray,
    given_features: np.ndarray | None,
    columns: np.ndarray,
    folds: list[tuple[np.ndarray, np.ndarray]],
    model_name: str,
    model: object,
    penalties: np.ndarray,
    target: _inputs.Target,
) -> dict[str, np.ndarray]:
    """Scores of one population (and of its covariates-only model if given).

    ``features`` are the population's, after the covariates when they are
    given; ``given_features`` the covariates alone.
    """
    fit = _predict_and_score(
        features, columns, folds, model_name, model, penalties, target
    )
    if given_features is not None:
        alone = _predict_and_score(
            given_features, columns, folds, model_name, model, penalties, target
        )
        fit["score_full"] = fit["score"]
        fit["score_given"] = alone["score"]
        fit["score"] = fit["score"] - alone["score"]
    return fit


def _predict_and_score(
    features: _inputs.PopulationFeatures | np.ndarray,
    columns: np.ndarray,
    folds: list[tuple[np.ndarray, np.ndarray]],
    model_name: str,
    model: object,
    penalties: np.ndarray,
    target: _inputs.Target,
) -> dict[str, np.ndarray]:
    n_components = len(target.components)
    chosen = None
    if model_name == "ridge":
        predictions, chosen = ridge_cv_predict(
            features, columns, folds, penalties, n_components
        )
    elif model_name == "logistic":
        predictions = logistic_cv_predict(features, columns, folds, float(penalties[0]))
    else:
        predictions = _estimator_cv_predict(features, columns, folds, model, target)

    if target.kind == "classification":
        scores = classification_scores(predictions, columns)
    else:
        scores = regression_scores(predictions, columns, n_components)
    if chosen is not None:
        scores["penalty"] = penalties[chosen[:, :, 0]]
    return scores


def _estimator_cv_predict(
    features: _inputs.PopulationFeatures | np.ndarray,
    columns: np.ndarray,
    folds: list[tuple[np.ndarray, np.ndarray]],
    model: Any,
    target: _inputs.Target,
) -> np.ndarray:
    """Clone, fit and predict one estimator per bin, fold and column (slow path)."""
    from sklearn.base import clone

    n_components = len(target.components)
    n_bins, n_rows, _ = features.shape
    predictions = np.empty((n_bins, n_rows, columns.shape[1]))
    # Folds outer, as the estimators are cloned in this order; an estimator
    # drawing from NumPy's global generator then gets the same draws.
    for train, test in folds:
        for time_bin in range(n_bins):
            bin_features = np.asarray(features[time_bin : time_bin + 1][0], np.float64)
            train_x, test_x = standardize(bin_features[train], bin_features[test])
            for start in range(0, columns.shape[1], n_components):
                block = slice(start, start + n_components)
                labels = columns[train, block]
                if n_components == 1:
                    labels = labels[:, 0]
                estimator = clone(model).fit(train_x, labels)
                predictions[time_bin, test, block] = _estimator_output(
                    estimator, test_x, target
                ).reshape(len(test), -1)
    return predictions


def _estimator_output(
    estimator: Any, test_x: np.ndarray, target: _inputs.Target
) -> np.ndarray:
    if target.kind == "classification":
        if hasattr(estimator, "decision_function"):
            return estimator.decision_function(test_x)
        if hasattr(estimator, "predict_proba"):
            return estimator.predict_proba(test_x)[:, 1] - 0.5
        return estimator.predict(test_x) - 0.5
    return estimator.predict(test_x)


def _metric(target: _inputs.Target) -> str:
    if target.kind == "classification":
        return "roc_auc"
    if len(target.components) > 1:
        return "r2 (variance-weighted over components)"
    return "r2"


def _package(
    results: dict[str, list],
    ds: xr.Dataset,
    target: _inputs.Target,
    groups: list[tuple[str, np.ndarray]],
    options: dict[str, Any],
    attrs: dict[str, Any],
    *,
    lag_is_scalar: bool,
) -> xr.Dataset:
    """Stack the per-area, per-lag fits into the result dataset, with p-values."""
    group_dim = attrs["by"] if attrs["by"] != "None" else "area"
    names = [name for name, _ in groups]
    window = options["window"]

    def stacked(key: str) -> np.ndarray:
        return np.stack(
            [np.stack([fit[key] for fit in results[name]]) for name in names]
        )

    # Fits hold (n_bins, n_problems[, ...]): problem 0 is the observed target.
    score_all = stacked("score")
    coords = {
        group_dim: names,
        "lag": options["lags"],
        "time": ds["time"].values[window - 1 :],
    }
    base = (group_dim, "lag", "time")
    result = xr.Dataset(coords=coords)
    result["score"] = (base, score_all[..., 0])
    if target.kind == "classification":
        result["auc"] = (base, score_all[..., 0])
        result["balanced_accuracy"] = (base, stacked("balanced_accuracy")[..., 0])
    else:
        result = result.assign_coords(component=target.components)
        result["r2"] = ((*base, "component"), stacked("r2")[..., 0, :])
        result["correlation"] = (
            (*base, "component"),
            stacked("correlation")[..., 0, :],
        )
    if "score_full" in results[names[0]][0]:
        result["score_full"] = (base, stacked("score_full")[..., 0])
        result["score_given"] = (base, stacked("score_given")[..., 0])
    if "penalty" in results[names[0]][0]:
        penalty = stacked("penalty")  # (group, lag, fold, bin)
        result["penalty"] = ((group_dim, "lag", "fold", "time"), penalty)
    result["n_units"] = (group_dim, [results[name][0]["n_units"] for name in names])

    metric = _metric(target)
    result["score"].attrs.update(
        metric=metric if "score_full" not in result else f"gain in {metric} over given",
    )
    n_perm = attrs["n_perm"]
    if n_perm:
        _add_tests(result, score_all, group_dim, attrs)

    result.attrs.update(
        method="decode",
        metric=metric,
        window=window,
        time_reference="time of the last bin of each window",
        **attrs,
    )
    if lag_is_scalar:
        result = result.squeeze("lag")
    return result


def _add_tests(
    result: xr.Dataset, score_all: np.ndarray, group_dim: str, attrs: dict[str, Any]
) -> None:
    from errsig.stats import correct, permutation_pvalues

    observed = score_all[..., 0]  # (group, lag, bin)
    null = np.moveaxis(score_all[..., 1:], -1, 0)  # (P, group, lag, bin)
    result["score_null"] = (("permutation", group_dim, "lag", "time"), null)
    result["p_uncorrected"] = (
        (group_dim, "lag", "time"),
        permutation_pvalues(observed, null),
    )
    corrected = np.empty(observed.shape)
    significant = np.zeros(observed.shape, dtype=bool)
    for group in range(observed.shape[0]):
        family = correct(
            observed[group],
            null[:, group],
            method=attrs["correction"],
            alpha=attrs["alpha"],
            time_axis=1,
        )
        corrected[group] = family.p
        significant[group] = family.significant
    result["p"] = ((group_dim, "lag", "time"), corrected)
    result["significant"] = ((group_dim, "lag", "time"), significant)
    result["p"].attrs["correction"] = (
        f"{attrs['correction']} over the lags and time bins of each {group_dim}"
    )
