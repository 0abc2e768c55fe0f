"""Checking and preparing the inputs of :func:`~errsig.decoding.decode`.

Arguments are validated in one place (:func:`check_options`), the target is
turned into columns with the recipe for its surrogates, and spike counts and
covariates into per-bin feature arrays.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from errsig._exceptions import ColumnError, ErrsigError, InsufficientDataError
from errsig._validation import check_positive_int, check_rng, loaded_counts

__all__ = [
    "CORRECTIONS",
    "DEFAULT_LOGISTIC_ALPHA",
    "DEFAULT_PENALTIES",
    "NULLS",
    "PopulationFeatures",
    "Target",
    "check_classes",
    "check_options",
    "check_penalties",
    "check_session_draw",
    "covariate_features",
    "decoding_target",
    "describe_folds",
    "lag_pairs",
    "resolve_model",
    "seed_and_generator",
    "split_counts",
    "trial_positions",
    "unit_groups",
    "windowed_features",
]

#: Ridge penalties searched by default (on standardised features): 13 values,
#: half a decade apart, from 0.1 to 100 000.
DEFAULT_PENALTIES = np.logspace(-1, 5, 13)

#: Penalty of the logistic decoder when none is given (scikit-learn's C = 1).
DEFAULT_LOGISTIC_ALPHA = 1.0

NULLS = ("pseudosession", "shuffle", "circular_shift", "linear_shift", "session")

CORRECTIONS = ("maxstat", "cluster", "fdr", "none")


@dataclass
class Target:
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


def check_options(
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
    alpha: object,
    correction: object = "none",
    surrogates: object | None = None,
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
    if (null == "session") != (surrogates is not None):
        raise ErrsigError(
            "`null`='session' pairs the activity with the behaviour of other "
            "sessions and takes them as `surrogates` (this session's entry of "
            "errsig.stats.session_permutation(datasets, target), from three or "
            "more sessions); `surrogates` goes with null='session' only. For one "
            "session use null='pseudosession'."
        )
    check_positive_int(n_perm, "n_perm", minimum=0)
    if correction not in CORRECTIONS:
        raise ErrsigError(
            f"`correction` must be one of {CORRECTIONS}; got {correction!r}."
        )
    if not (isinstance(alpha, numbers.Real) and 0 < alpha < 1):
        raise ErrsigError(f"`alpha` must be in (0, 1); got {alpha!r}.")
    return {"lags": [int(lag) for lag in lag_values], "window": window}


def split_counts(ds: xr.Dataset) -> tuple[xr.Dataset, np.ndarray, np.ndarray]:
    """Separate the counts from the dataset, and put its trials in order.

    The counts ``(trial, unit, time)`` are left as they are, in their own
    dtype and order, not copied; ``rows[i]`` is the row of the counts that
    holds trial ``i`` of the returned dataset. Putting trials in order, or
    selecting some, then copies the small trial variables only.
    """
    ds = loaded_counts(ds)  # lazy (dask) counts: loaded chunk by chunk, small
    counts = np.asarray(ds["counts"].transpose("trial", "unit", "time").values)
    missing = {
        dim: np.arange(ds.sizes[dim])
        for dim in ("unit", "time")
        if dim not in ds.coords
    }
    rest = ds.drop_vars("counts").assign_coords(missing)
    rows = np.arange(ds.sizes["trial"])
    if "trial_index" in ds.coords:
        order = np.argsort(ds["trial_index"].values, kind="stable")
        if np.any(order != rows):
            rest = rest.isel(trial=order)
            rows = order
    return rest, counts, rows


def trial_positions(ds: xr.Dataset) -> np.ndarray:
    if "trial_index" in ds.coords:
        return np.asarray(ds["trial_index"].values, dtype=np.int64)
    return np.arange(ds.sizes["trial"], dtype=np.int64)


def decoding_target(ds: xr.Dataset, target: str) -> Target:
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
        return _checked_target(Target(target, values, components, "regression", source))

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
        return Target(
            target, values, [target], "classification", target, levels[-1].item()
        )
    if raw.dtype.kind not in "iuf":
        raise ErrsigError(
            f"`target`={target!r} has {len(levels)} distinct non-numeric values; "
            "decode a numeric or two-valued trial variable."
        )
    return _checked_target(
        Target(target, raw.astype(np.float64)[:, None], [target], "regression", target)
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


def _checked_target(target: Target) -> Target:
    missing = np.isnan(target.values).any(axis=1)
    if missing.any():
        _raise_nan(target.name, int(missing.sum()))
    return target


def check_classes(values: np.ndarray, target: Target) -> None:
    if target.kind != "classification":
        return
    n_positive = int(values.sum())
    if n_positive < 2 or n_positive > len(values) - 2:
        raise InsufficientDataError(
            f"`target`={target.name!r} has {n_positive} of {len(values)} trials in "
            "one class; decoding an outcome needs at least 2 trials of each."
        )


def resolve_model(model: object, target: Target) -> str:
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


def check_session_draw(draw: object, target: Target, ds: xr.Dataset) -> object:
    """Check this session's draw of :func:`errsig.stats.session_permutation`."""
    from errsig.stats import NullDraw

    if isinstance(draw, dict):
        draw = draw.get(target.null_source)
    if not isinstance(draw, NullDraw):
        raise ErrsigError(
            "`surrogates` must be this session's NullDraw of "
            f"errsig.stats.session_permutation(datasets, {target.null_source!r}); "
            f"got {type(draw).__name__}."
        )
    trials = np.asarray(draw.neural_trials)
    if trials.size == 0 or trials.max() >= ds.sizes["trial"]:
        raise ErrsigError(
            "`surrogates` pair with trials that `ds` does not have: make them "
            "from the same binned datasets that are decoded."
        )
    drawn_observed = target.from_null(np.asarray(draw.observed)[None])[0]
    own = target.values[trials]
    if drawn_observed.shape != own.shape or not np.allclose(
        drawn_observed, own, equal_nan=True
    ):
        raise ErrsigError(
            f"`surrogates` were drawn for another target or session: their observed "
            f"{target.null_source!r} differs from this dataset's. Pass this "
            "session's entry of session_permutation for the decoded target."
        )
    return draw


def check_penalties(penalties: object, model_name: str) -> np.ndarray:
    if penalties is None:
        if model_name == "logistic":
            return np.array([DEFAULT_LOGISTIC_ALPHA])
        return DEFAULT_PENALTIES.copy()
    values = np.atleast_1d(np.asarray(penalties, dtype=np.float64))
    if values.ndim != 1 or not np.all(np.isfinite(values)) or np.any(values <= 0):
        raise ErrsigError(
            f"`penalties` must be positive finite numbers; got {penalties!r}."
        )
    if model_name == "logistic" and len(values) != 1:
        raise ErrsigError(
            "`penalties`: the logistic decoder takes one penalty (α = 1/C); got "
            f"{len(values)}."
        )
    return values


def seed_and_generator(rng: object) -> tuple[str, np.random.Generator]:
    if rng is None:
        sequence = np.random.SeedSequence()
        return str(sequence.entropy), np.random.default_rng(sequence)
    if isinstance(rng, np.random.Generator):
        return "numpy Generator supplied by the caller", rng
    generator = check_rng(rng)
    return str(rng), generator


def unit_groups(ds: xr.Dataset, by: str | None) -> list[tuple[str, np.ndarray]]:
    n_units = ds.sizes["unit"]
    if by is None:
        return [("all", np.ones(n_units, dtype=bool))]
    labels = np.asarray(ds[by].values).astype(str)
    return [(label, labels == label) for label in dict.fromkeys(labels.tolist())]


def covariate_features(
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
            block = windowed_features(values, window)
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


class PopulationFeatures:
    """The features of one population, made from the counts a few bins at a time.

    Indexing with a slice of bins gives the float64 features of those bins,
    ``(n_bins, n_rows, n_features)``: the covariates of the bin (if any), then
    the counts of each unit over the bin's window, as :func:`windowed_features`
    orders them. Only the counts of the bins asked for are converted to
    float64, so the memory a decoder needs grows with the bins it fits at
    once, not with the whole recording. The counts may be of any integer or
    float dtype and are never used for arithmetic before the conversion.

    Parameters
    ----------
    counts : numpy.ndarray
        ``(trial, unit, time)`` spike counts of the session.
    rows : numpy.ndarray
        The trials (rows of ``counts``) whose features are made, in order.
    units : numpy.ndarray
        Boolean mask or indices of the population's units.
    window : int
        Consecutive bins per feature window; result bin ``b`` ends at bin
        ``b + window - 1`` of ``counts``.
    covariates : numpy.ndarray, optional
        ``(n_bins, n_rows, n_covariates)`` float64 features placed first.
    """

    def __init__(
        self,
        counts: np.ndarray,
        rows: np.ndarray,
        units: np.ndarray,
        window: int,
        covariates: np.ndarray | None = None,
    ) -> None:
        units = np.asarray(units)
        self.counts = counts
        self.rows = np.asarray(rows, dtype=np.intp)
        self.units = np.flatnonzero(units) if units.dtype == bool else units
        self.window = window
        self.covariates = covariates
        n_covariates = 0 if covariates is None else covariates.shape[-1]
        self.shape = (
            counts.shape[2] - window + 1,
            len(self.rows),
            n_covariates + len(self.units) * window,
        )

    def __getitem__(self, bins: slice) -> np.ndarray:
        start, stop, step = bins.indices(self.shape[0])
        if step != 1 or stop <= start:
            raise ValueError(f"features are made for a run of bins; got {bins!r}")
        in_window = self.counts[:, :, start : stop + self.window - 1]
        block = in_window[np.ix_(self.rows, self.units)]
        features = windowed_features(block, self.window)
        if self.covariates is None:
            return features
        return np.concatenate([self.covariates[start:stop], features], axis=-1)


def windowed_features(values: np.ndarray, window: int) -> np.ndarray:
    """``(trial, feature, time)`` → ``(n_bins, trial, feature * window)``."""
    values = np.asarray(values, dtype=np.float64)
    windows = np.lib.stride_tricks.sliding_window_view(values, window, axis=2)
    n_trials, n_features, n_bins, _ = windows.shape
    ordered = np.transpose(windows, (2, 0, 1, 3))
    return np.ascontiguousarray(ordered).reshape(n_bins, n_trials, n_features * window)


def lag_pairs(
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


def describe_folds(
    folds: list[tuple[np.ndarray, np.ndarray]], trial_index: np.ndarray
) -> str:
    blocks = [
        f"{int(trial_index[test].min())}-{int(trial_index[test].max())}"
        for _, test in folds
    ]
    return "test trials (session positions) " + ", ".join(blocks)
