"""Public entry points: :func:`decode` and :func:`decode_unit_curve`."""

from __future__ import annotations

import logging
import numbers
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import xarray as xr
from tqdm.auto import tqdm

from errsig._exceptions import ColumnError, ErrsigError, InsufficientDataError
from errsig._validation import check_positive_int, check_rng
from errsig.decoding._folds import check_folds
from errsig.decoding._linear import (
    logistic_cv_predict,
    ridge_cv_predict,
    standardize,
)
from errsig.decoding._metrics import classification_scores, regression_scores

__all__ = ["DEFAULT_ALPHAS", "decode", "decode_unit_curve"]

logger = logging.getLogger(__name__)

#: Ridge penalties searched by default (on standardised features): 13 values,
#: half a decade apart, from 0.1 to 100 000.
DEFAULT_ALPHAS = np.logspace(-1, 5, 13)

#: Penalty of the logistic decoder when none is given (scikit-learn's C = 1).
DEFAULT_LOGISTIC_ALPHA = 1.0

NULLS = ("pseudosession", "shuffle", "circular_shift", "linear_shift", "session")

CORRECTIONS = ("maxstat", "cluster", "fdr", "none")


@dataclass
class _Target:
    """The trial variable to decode, as columns, and how to make its nulls."""

    name: str
    values: np.ndarray  # (n_trials, n_components)
    components: list[str]
    kind: str  # "regression" or "classification"
    null_source: str  # the name handed to errsig.stats.null_targets
    positive: object = True  # the level coded 1 when classifying

    def from_null(self, surrogates: np.ndarray) -> np.ndarray:
        """Surrogates of ``null_source`` → ``(P, n_trials, n_components)``."""
        if self.kind == "classification":
            return (np.asarray(surrogates) == self.positive).astype(np.float64)[
                ..., None
            ]
        surrogates = np.asarray(surrogates, dtype=np.float64)
        if self.name in ("error_x", "error_y"):
            index = 0 if self.name == "error_x" else 1
            return surrogates[..., index : index + 1]
        if surrogates.ndim == 2:
            return surrogates[..., None]
        return surrogates


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
    level: float = 0.05,
    alphas: float | Sequence[float] | None = None,
    rng: int | np.random.Generator | None = None,
    progress: bool = False,
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
        targets, drawn by :func:`errsig.stats.null_targets`.
    n_perm : int, default=200
        Number of surrogates; 0 skips the test.
    correction : {"maxstat", "cluster", "fdr", "none"}, default="maxstat"
        Multiple-comparison correction over the time bins and lags of each
        area (:func:`errsig.stats.correct`).
    level : float, default=0.05
        Level at which ``significant`` is set.
    alphas : float or sequence of float, optional
        Ridge: the penalties searched (default :data:`DEFAULT_ALPHAS`; one value
        fixes the penalty). Logistic: one penalty ``α = 1 / C`` (default 1).
    rng : None, int or numpy.random.Generator, optional
        Seed or generator for the surrogates.
    progress : bool, default=False
        Show a progress bar over areas and lags (only on a terminal).

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
    options = _check_options(
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
        level,
        correction,
    )
    ds = _in_trial_order(ds)
    target_info = _target(ds, target)
    model_name = _model_name(model, target_info)
    penalties = _penalties(alphas, model_name)
    seed, generator = _seed(rng)
    covariates = _covariates(ds, given, options["window"])
    groups = _groups(ds, by)
    trial_index = _trial_positions(ds)

    null_values = None
    null_note = ""
    if n_perm:
        null_values, null_note, window_trials = _null_values(
            ds, target_info, null, n_perm, generator
        )
        if window_trials is not None:
            if options["lags"] != [0]:
                raise ErrsigError(
                    "`null`='linear_shift' pairs a fixed window of trials with "
                    "shifted targets and supports lags=0 only; use the "
                    "pseudosession null for lagged decoding."
                )
            ds = ds.isel(trial=window_trials)
            target_info = _target(ds, target)
            trial_index = _trial_positions(ds)
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
    counts = np.asarray(ds["counts"].transpose("trial", "unit", "time").values)
    strata = None if stratify is None else np.asarray(ds[stratify].values)
    results: dict[str, list] = {}
    folds_used = []
    bar = tqdm(
        total=len(groups) * len(options["lags"]),
        disable=not progress or not sys.stderr.isatty(),
        desc="decode",
    )
    for lag in options["lags"]:
        neural_rows, target_rows = _lag_pairs(trial_index, lag, target)
        folds, scheme = check_folds(
            cv,
            trial_index[neural_rows],
            gap=gap,
            strata=None if strata is None else strata[neural_rows],
        )
        folds_used.append(_describe_folds(folds, trial_index[neural_rows]))
        columns = _target_columns(target_info, null_values, target_rows)
        for name, units in groups:
            fit = _fit_and_score(
                _features(counts[neural_rows][:, units], options["window"]),
                None if covariates is None else covariates[:, neural_rows],
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
            level=level,
            seed=seed,
            alphas=[float(value) for value in np.atleast_1d(penalties)],
            by=str(by),
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
    alphas: float | Sequence[float] | None = None,
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
    by, model, cv, gap, window, alphas
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
    _check_options(ds, target, by, model, gap, None, 0, window, "shuffle", 0, 0.05)
    ds = _in_trial_order(ds)
    target_info = _target(ds, target)
    model_name = _model_name(model, target_info)
    penalties = _penalties(alphas, model_name)
    seed, generator = _seed(rng)
    n_repeats = check_positive_int(n_repeats, "n_repeats")
    groups = _groups(ds, by)
    largest = max(int(units.sum()) for _, units in groups)
    if n_units is None:
        n_units = [2**power for power in range(int(np.log2(largest)) + 1)]
    sizes = [check_positive_int(size, "n_units") for size in n_units]

    trial_index = _trial_positions(ds)
    folds, scheme = check_folds(cv, trial_index, gap=gap, strata=None)
    _check_classes(target_info.values, target_info)
    counts = np.asarray(ds["counts"].transpose("trial", "unit", "time").values)
    n_bins = ds.sizes["time"] - window + 1
    scores = np.full((len(groups), len(sizes), n_repeats, n_bins), np.nan)
    for group, (_, units) in enumerate(groups):
        members = np.flatnonzero(units)
        for position, size in enumerate(sizes):
            if size > len(members):
                continue
            for repeat in range(n_repeats):
                chosen = np.sort(generator.choice(members, size, replace=False))
                features = _features(counts[:, chosen], window)
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


def _check_options(
    ds: object,
    target: object,
    by: object,
    model: object,
    gap: object,
    stratify: object,
    lags: object,
    window: object,
    null: object,
    n_perm: object,
    level: object,
    correction: object = "none",
) -> dict[str, Any]:
    if not isinstance(ds, xr.Dataset):
        raise ErrsigError(
            f"`ds` must be the xarray.Dataset from errsig.bin_trials; got "
            f"{type(ds).__name__}."
        )
    if "counts" not in ds or set(ds["counts"].dims) != {"trial", "unit", "time"}:
        raise ColumnError(
            "`ds` has no `counts` variable with dimensions (trial, unit, time); "
            "make it with errsig.bin_trials(session, ...)."
        )
    if not isinstance(target, str):
        raise ErrsigError(f"`target` must be a variable name; got {target!r}.")
    if by is not None and by not in ds["counts"].coords:
        raise ColumnError(
            f"`by`={by!r} is not a coordinate on the units of `ds`; pass None to "
            "decode from all units, or add the coordinate with "
            "ds.assign_coords(...)."
        )
    if isinstance(model, str) and model not in ("auto", "ridge", "logistic"):
        raise ErrsigError(
            f"`model` must be 'auto', 'ridge', 'logistic' or a scikit-learn "
            f"estimator; got {model!r}."
        )
    if not isinstance(model, str) and not hasattr(model, "fit"):
        raise ErrsigError(
            f"`model` must be 'auto', 'ridge', 'logistic' or a scikit-learn "
            f"estimator with fit(); got {model!r}."
        )
    check_positive_int(gap, "gap", minimum=0)
    if stratify is not None and (
        stratify not in ds.coords or ds[stratify].dims != ("trial",)
    ):
        raise ColumnError(
            f"`stratify`={stratify!r} is not a trial coordinate of `ds`; use "
            "'phase' (from the trials table) or None."
        )
    lag_values = [lags] if isinstance(lags, numbers.Integral) else lags
    if (
        not isinstance(lag_values, Sequence)
        or not lag_values
        or not all(
            isinstance(lag, numbers.Integral) and not isinstance(lag, bool)
            for lag in lag_values
        )
    ):
        raise ErrsigError(f"`lags` must be an int or a sequence of ints; got {lags!r}.")
    window = check_positive_int(window, "window")
    if window > ds.sizes["time"]:
        raise ErrsigError(
            f"`window`={window} bins is longer than the {ds.sizes['time']} time "
            "bins of `ds`; use a shorter window or bin a longer period."
        )
    if null not in NULLS:
        raise ErrsigError(f"`null` must be one of {NULLS}; got {null!r}.")
    if null == "session":
        raise ErrsigError(
            "`null`='session' permutes behaviour across sessions and needs several "
            "sessions; run decode per session through errsig.batch, or use "
            "null='pseudosession' for one session."
        )
    check_positive_int(n_perm, "n_perm", minimum=0)
    if correction not in CORRECTIONS:
        raise ErrsigError(
            f"`correction` must be one of {CORRECTIONS}; got {correction!r}."
        )
    if not (isinstance(level, numbers.Real) and 0 < level < 1):
        raise ErrsigError(f"`level` must be in (0, 1); got {level!r}.")
    return {"lags": [int(lag) for lag in lag_values], "window": window}


def _in_trial_order(ds: xr.Dataset) -> xr.Dataset:
    if "trial_index" in ds.coords:
        order = np.argsort(ds["trial_index"].values, kind="stable")
        if np.any(order != np.arange(len(order))):
            ds = ds.isel(trial=order)
    return ds


def _trial_positions(ds: xr.Dataset) -> np.ndarray:
    if "trial_index" in ds.coords:
        return np.asarray(ds["trial_index"].values, dtype=np.int64)
    return np.arange(ds.sizes["trial"], dtype=np.int64)


def _target(ds: xr.Dataset, target: str) -> _Target:
    if target in ("error", "error_x", "error_y", "error_magnitude"):
        if "error" not in ds:
            raise ColumnError(
                f"`target`={target!r} needs the `error` variable (trial, component) "
                "in `ds`, which bin_trials makes from the trial columns error_x and "
                "error_y; map them with read_nwb(..., columns=...)."
            )
        error = np.asarray(ds["error"].transpose("trial", ...).values, np.float64)
        if target == "error":
            values, components = error, ["x", "y"]
        elif target == "error_magnitude":
            values, components = np.linalg.norm(error, axis=1)[:, None], ["magnitude"]
        else:
            index = 0 if target == "error_x" else 1
            values, components = error[:, index : index + 1], [target[-1]]
        source = "error_magnitude" if target == "error_magnitude" else "error"
        return _checked_target(
            _Target(target, values, components, "regression", source)
        )

    if target not in ds.variables or ds[target].dims != ("trial",):
        available = sorted(
            str(name) for name in ds.variables if ds[name].dims == ("trial",)
        )
        raise ColumnError(
            f"`target`={target!r} is not a trial variable of `ds`; available: "
            f"['error', 'error_x', 'error_y', 'error_magnitude'] and {available}."
        )
    raw = np.asarray(ds[target].values)
    levels = np.unique(raw[~_isnan(raw)]) if raw.dtype.kind in "fc" else np.unique(raw)
    if raw.dtype == bool or len(levels) == 2:
        if raw.dtype.kind in "fc" and _isnan(raw).any():
            _raise_nan(target, int(_isnan(raw).sum()))
        values = (raw == levels[-1]).astype(np.float64)[:, None]
        return _Target(
            target, values, [target], "classification", target, levels[-1].item()
        )
    if raw.dtype.kind not in "iuf":
        raise ErrsigError(
            f"`target`={target!r} has {len(levels)} distinct non-numeric values; "
            "decode a numeric or two-valued trial variable."
        )
    return _checked_target(
        _Target(target, raw.astype(np.float64)[:, None], [target], "regression", target)
    )


def _isnan(values: np.ndarray) -> np.ndarray:
    return (
        np.isnan(values) if values.dtype.kind in "fc" else np.zeros(len(values), bool)
    )


def _raise_nan(target: str, n_missing: int) -> None:
    raise ErrsigError(
        f"`target`={target!r} is NaN on {n_missing} trials; drop them first, e.g. "
        f"ds.isel(trial=~ds[{target!r}].isnull().any('component')) for the error."
    )


def _checked_target(target: _Target) -> _Target:
    missing = np.isnan(target.values).any(axis=1)
    if missing.any():
        _raise_nan(target.name, int(missing.sum()))
    return target


def _check_classes(values: np.ndarray, target: _Target) -> None:
    if target.kind != "classification":
        return
    n_positive = int(values.sum())
    if n_positive < 2 or n_positive > len(values) - 2:
        raise InsufficientDataError(
            f"`target`={target.name!r} has {n_positive} of {len(values)} trials in "
            "one class; decoding an outcome needs at least 2 trials of each."
        )


def _model_name(model: object, target: _Target) -> str:
    if not isinstance(model, str):
        return "estimator"
    if model == "auto":
        return "logistic" if target.kind == "classification" else "ridge"
    if model == "logistic" and target.kind != "classification":
        raise ErrsigError(
            f"`model`='logistic' classifies, but `target`={target.name!r} is "
            "continuous; use model='ridge'."
        )
    if model == "ridge" and target.kind == "classification":
        raise ErrsigError(
            f"`model`='ridge' regresses, but `target`={target.name!r} has two "
            "values; use model='logistic' (or 'auto')."
        )
    return model


def _penalties(alphas: object, model_name: str) -> np.ndarray:
    if alphas is None:
        if model_name == "logistic":
            return np.array([DEFAULT_LOGISTIC_ALPHA])
        return DEFAULT_ALPHAS.copy()
    values = np.atleast_1d(np.asarray(alphas, dtype=np.float64))
    if values.ndim != 1 or not np.all(np.isfinite(values)) or np.any(values <= 0):
        raise ErrsigError(
            f"`alphas` must be positive finite penalties; got {alphas!r}."
        )
    if model_name == "logistic" and len(values) != 1:
        raise ErrsigError(
            "`alphas`: the logistic decoder takes one penalty (α = 1/C); got "
            f"{len(values)}."
        )
    return values


def _seed(rng: object) -> tuple[str, np.random.Generator]:
    if rng is None:
        sequence = np.random.SeedSequence()
        return str(sequence.entropy), np.random.default_rng(sequence)
    if isinstance(rng, np.random.Generator):
        return "numpy Generator supplied by the caller", rng
    generator = check_rng(rng)
    return str(rng), generator


def _groups(ds: xr.Dataset, by: str | None) -> list[tuple[str, np.ndarray]]:
    n_units = ds.sizes["unit"]
    if by is None:
        return [("all", np.ones(n_units, dtype=bool))]
    labels = np.asarray(ds[by].values).astype(str)
    return [(label, labels == label) for label in dict.fromkeys(labels.tolist())]


def _covariates(
    ds: xr.Dataset, given: str | Sequence[str] | None, window: int
) -> np.ndarray | None:
    """Covariate features ``(n_bins, n_trials, n_covariates)``, or None."""
    if given is None:
        return None
    names = [given] if isinstance(given, str) else list(given)
    n_bins = ds.sizes["time"] - window + 1
    blocks = []
    for name in names:
        if name not in ds.variables or "trial" not in ds[name].dims:
            raise ColumnError(
                f"`given`={name!r} is not a variable of `ds` with a trial dimension; "
                "bin_trials makes 'kinematics' and 'force' where the session has "
                "behaviour."
            )
        variable = ds[name]
        if "time" in variable.dims:
            values = variable.transpose("trial", ..., "time").values
            values = values.reshape(values.shape[0], -1, values.shape[-1])
            block = _features(values, window)
        else:
            values = variable.transpose("trial", ...).values.reshape(
                ds.sizes["trial"], -1
            )
            block = np.broadcast_to(values, (n_bins, *values.shape))
        if not np.all(np.isfinite(block)):
            raise ErrsigError(
                f"`given`={name!r} has NaN or infinite values; fill or drop those "
                "trials (or bins) before decoding."
            )
        blocks.append(np.asarray(block, dtype=np.float64))
    return np.concatenate(blocks, axis=-1)


def _features(values: np.ndarray, window: int) -> np.ndarray:
    """``(trial, feature, time)`` → ``(n_bins, trial, feature * window)``."""
    values = np.asarray(values, dtype=np.float64)
    windows = np.lib.stride_tricks.sliding_window_view(values, window, axis=2)
    n_trials, n_features, n_bins, _ = windows.shape
    ordered = np.transpose(windows, (2, 0, 1, 3))
    return np.ascontiguousarray(ordered).reshape(n_bins, n_trials, n_features * window)


def _lag_pairs(
    trial_index: np.ndarray, lag: int, target: str
) -> tuple[np.ndarray, np.ndarray]:
    """Rows of the activity on trial t and of the target on trial t + lag."""
    position = {int(index): row for row, index in enumerate(trial_index)}
    neural, targets = [], []
    for row, index in enumerate(trial_index):
        partner = position.get(int(index) + lag)
        if partner is not None:
            neural.append(row)
            targets.append(partner)
    if len(neural) < 10:
        raise InsufficientDataError(
            f"`lags`: only {len(neural)} trials have a partner {lag} trials away "
            f"for target {target!r}; use smaller lags."
        )
    return np.asarray(neural), np.asarray(targets)


def _describe_folds(
    folds: list[tuple[np.ndarray, np.ndarray]], trial_index: np.ndarray
) -> str:
    blocks = [
        f"{int(trial_index[test].min())}-{int(trial_index[test].max())}"
        for _, test in folds
    ]
    return "test trials (session positions) " + ", ".join(blocks)


def _null_values(
    ds: xr.Dataset,
    target: _Target,
    null: str,
    n_perm: int,
    generator: np.random.Generator,
) -> tuple[np.ndarray, str, np.ndarray | None]:
    """Surrogate targets ``(P, n_trials, n_components)``, a note, and the trials.

    The trials are None except for the linear-shift null, whose surrogates
    pair with a fixed window of neural trials.
    """
    from errsig.stats import NullDraw, null_targets

    surrogates = null_targets(ds, target.null_source, n_perm, null=null, rng=generator)
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
    target: _Target, null_values: np.ndarray | None, target_rows: np.ndarray
) -> np.ndarray:
    """Observed target then each surrogate, as ``(rows, problems * components)``."""
    observed = target.values[target_rows]
    _check_classes(observed, target)
    if null_values is None:
        return observed
    stacked = np.concatenate([observed[None], null_values[:, target_rows]])
    return np.moveaxis(stacked, 0, 1).reshape(len(target_rows), -1)


def _fit_and_score(
    features: np.ndarray,
    given_features: np.ndarray | None,
    columns: np.ndarray,
    folds: list[tuple[np.ndarray, np.ndarray]],
    model_name: str,
    model: object,
    penalties: np.ndarray,
    target: _Target,
) -> dict[str, np.ndarray]:
    """Scores of one population (and of its covariates-only model if given)."""
    full = features
    if given_features is not None:
        full = np.concatenate([given_features, features], axis=-1)
    fit = _predict_and_score(full, columns, folds, model_name, model, penalties, target)
    if given_features is not None:
        alone = _predict_and_score(
            given_features, columns, folds, model_name, model, penalties, target
        )
        fit["score_full"] = fit["score"]
        fit["score_given"] = alone["score"]
        fit["score"] = fit["score"] - alone["score"]
    return fit


def _predict_and_score(
    features: np.ndarray,
    columns: np.ndarray,
    folds: list[tuple[np.ndarray, np.ndarray]],
    model_name: str,
    model: object,
    penalties: np.ndarray,
    target: _Target,
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
    features: np.ndarray,
    columns: np.ndarray,
    folds: list[tuple[np.ndarray, np.ndarray]],
    model: Any,
    target: _Target,
) -> np.ndarray:
    """Clone, fit and predict one estimator per bin, fold and column (slow path)."""
    from sklearn.base import clone

    n_components = len(target.components)
    n_bins, n_rows, _ = features.shape
    predictions = np.empty((n_bins, n_rows, columns.shape[1]))
    for train, test in folds:
        for time_bin in range(n_bins):
            train_x, test_x = standardize(
                features[time_bin, train], features[time_bin, test]
            )
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
    estimator: Any, test_x: np.ndarray, target: _Target
) -> np.ndarray:
    if target.kind == "classification":
        if hasattr(estimator, "decision_function"):
            return estimator.decision_function(test_x)
        if hasattr(estimator, "predict_proba"):
            return estimator.predict_proba(test_x)[:, 1] - 0.5
        return estimator.predict(test_x) - 0.5
    return estimator.predict(test_x)


def _metric(target: _Target) -> str:
    if target.kind == "classification":
        return "roc_auc"
    if len(target.components) > 1:
        return "r2 (variance-weighted over components)"
    return "r2"


def _package(
    results: dict[str, list],
    ds: xr.Dataset,
    target: _Target,
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
            alpha=attrs["level"],
            time_axis=1,
        )
        corrected[group] = family.p
        significant[group] = family.significant
    result["p"] = ((group_dim, "lag", "time"), corrected)
    result["significant"] = ((group_dim, "lag", "time"), significant)
    result["p"].attrs["correction"] = (
        f"{attrs['correction']} over the lags and time bins of each {group_dim}"
    )
