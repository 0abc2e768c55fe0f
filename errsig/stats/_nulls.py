"""Surrogate trial variables for permutation tests: the one entry point."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import xarray as xr

from errsig._exceptions import (
    ColumnError,
    ErrsigError,
    InsufficientDataError,
    NullAssumptionWarning,
)
from errsig._validation import check_positive_int, check_rng

__all__ = ["NULLS", "NullDraw", "null_targets", "observed_target"]

#: Phases in the order a session runs through them.
PHASES = ("baseline", "force_field", "washout")

Null = Literal["pseudosession", "shuffle", "circular_shift", "linear_shift"]

NULLS = ("pseudosession", "shuffle", "circular_shift", "linear_shift")

#: Targets the pseudosession null redraws from the fitted adaptation model.
BEHAVIOURAL_TARGETS = ("error", "error_magnitude", "reward")


@dataclass(frozen=True)
class NullDraw:
    """Surrogates paired with a fixed subset of the neural trials.

    Returned by the linear-shift null (a *fixed window* of neural trials
    against windows of the target shifted by ``s`` trials) and by
    :func:`session_permutation` (the aligned trials of one session against the
    behaviour of the others). The observed statistic must be computed on the
    same neural trials, with ``observed``.

    Attributes
    ----------
    values : numpy.ndarray
        Surrogate target values, shape ``(n_surrogates, n_window)`` (plus a
        trailing component axis of 2 for ``"error"``).
    neural_trials : numpy.ndarray of int
        Positions along the dataset's ``trial`` dimension of the neural data to
        pair with every row of ``values`` (and with ``observed``).
    observed : numpy.ndarray
        The target on ``neural_trials`` itself: compute the observed statistic
        from ``observed`` and the neural data on ``neural_trials``.
    shifts : numpy.ndarray of int or None
        Linear shift: the shift of each surrogate, in trials, never 0.
    sources : numpy.ndarray of int or None
        Session permutation: the index of the session each surrogate's
        behaviour comes from.
    """

    values: np.ndarray
    neural_trials: np.ndarray
    observed: np.ndarray
    shifts: np.ndarray | None = None
    sources: np.ndarray | None = None


def null_targets(
    ds: xr.Dataset,
    target: str | Sequence[str],
    n_surrogates: int,
    *,
    null: Null = "pseudosession",
    rng: int | np.random.Generator | None = None,
) -> np.ndarray | NullDraw | dict[str, np.ndarray | NullDraw]:
    """Draw surrogate values of a trial variable under a null hypothesis.

    The one function the analyses call for their nulls: compute the statistic
    with the neural data against each surrogate in turn.

    Parameters
    ----------
    ds : xarray.Dataset
        Trial-aligned dataset from :func:`errsig.bin_trials`.
    target : str or sequence of str
        ``"error"`` (the 2-D error vector), ``"error_magnitude"`` (its norm),
        ``"reward"``, or any other variable or coordinate on the ``trial``
        dimension alone (e.g. ``"target_angle"``). A sequence draws several
        targets *jointly*: the same permutation, shift or pseudosession for all
        of them, so that their relation (reward given |error|, for conditional
        tests) is kept.
    n_surrogates : int
        Number of surrogates.
    null : {"pseudosession", "shuffle", "circular_shift", "linear_shift"}
        How surrogates are drawn (see Notes); default "pseudosession".
    rng : None, int or numpy.random.Generator, optional
        Source of randomness.

    Returns
    -------
    numpy.ndarray, NullDraw or dict
        For one target: an array of shape ``(n_surrogates, n_trials)``, or
        ``(n_surrogates, n_trials, 2)`` for ``"error"`` (components x, y), in
        the dataset's trial order; for ``null="linear_shift"`` a
        :class:`NullDraw` instead. For a sequence of targets: a dict from each
        name to that.

    Raises
    ------
    ErrsigError
        On an unknown ``null``, or a target that is not a per-trial variable.
    ColumnError
        If the target (or, for pseudosessions, ``error`` / ``phase`` /
        ``target_angle``) is not in the dataset.
    InsufficientDataError
        If there are too few trials for the null asked for.

    Warns
    -----
    NullAssumptionWarning
        For ``"circular_shift"``, which is valid only when one of the two
        series is stationary.

    See Also
    --------
    draw_pseudosessions : the pseudosession draws themselves.
    permutation_pvalues, correct : p-values from the surrogate statistics.

    Notes
    -----
    *pseudosession* (default, Harris 2020). ``error``, ``error_magnitude`` and
    ``reward`` come from :func:`draw_pseudosessions`: new sessions drawn from
    the adaptation model fitted to the observed errors, with the learning
    curve and the trial-to-trial autocorrelation of real behaviour, and reward
    drawn given the new error. Any other target is treated as randomised by
    the experimenter (as the target direction is): its surrogates are
    independent draws, with replacement, from its observed values. That
    matches the experiment only if the variable really was drawn
    independently of the past; a variable with trial-order structure of its
    own (a block design, a staircase) needs a model of that structure. In a
    joint draw of ``"target_angle"`` with ``"error"``, each pseudosession error
    keeps its lateral and along-reach parts and is turned to the new reach
    direction.

    Shifts follow session order (``trial_index``), whatever the order of the
    dataset's trials.

    *shuffle*. A random permutation of the trials. It ignores trial order:
    two slowly drifting series (a learning curve and a drifting neuron) look
    related under it, so it is offered for comparison only, and results that
    use it must say so.

    *circular_shift*. The target rotated by a random number of trials
    ``s ∈ [1, n)``. It keeps the target's autocorrelation but joins its end to
    its start; it is valid only if one of the two series is stationary, which
    learning data are not (Harris 2020 found up to 100% false positives).

    *linear_shift* (Harris 2020). The neural data of a fixed central window of
    ``M = n - 2S`` trials, ``[S, n - S)``, is paired with the target on trials
    ``[S + s, n - S + s)`` for shifts ``s = ±1, ±2, ..., ±S``; the observed
    pairing is ``s = 0``. ``S = ceil(n_surrogates / 2)``, and the window must
    keep at least half the trials, so at most ``n / 2`` surrogates are
    possible and the p floor is ``1 / (n_surrogates + 1)``. The shifts are
    deterministic (``rng`` is unused). The null is valid when the relation
    between the two series would be the same at every shift — at least one of
    them stationary over the window — so use it on errors detrended by the
    learning curve, not raw errors during learning. The observed statistic
    must be recomputed on the window (see :class:`NullDraw`).

    References
    ----------
    .. [1] Harris KD (2020). Nonsense correlations in neuroscience. bioRxiv
       2020.11.29.402719.
    .. [2] Elber-Dorozko L, Loewenstein Y (2018). Striatal action-value neurons
       reconsidered. eLife 7:e34248.

    Examples
    --------
    >>> import numpy as np
    >>> import xarray as xr
    >>> from errsig.stats import null_targets
    >>> ds = xr.Dataset(coords={"trial": np.arange(6),
    ...                         "target_angle": ("trial", np.arange(6) * 0.5)})
    >>> null_targets(ds, "target_angle", 3, null="shuffle", rng=0).shape
    (3, 6)
    >>> draw = null_targets(ds, "target_angle", 2, null="linear_shift")
    >>> draw.neural_trials, draw.shifts
    (array([1, 2, 3, 4]), array([ 1, -1]))
    """
    names = _check_targets(target)
    n_surrogates = check_positive_int(n_surrogates, "n_surrogates")
    if null not in NULLS:
        raise ErrsigError(
            f"`null` must be one of {', '.join(map(repr, NULLS))}; got {null!r}."
        )
    generator = check_rng(rng)
    observed = {name: observed_target(ds, name) for name in names}

    if null == "pseudosession":
        draws = _pseudosession_targets(ds, observed, n_surrogates, generator)
    elif null == "linear_shift":
        draws = _linear_shift(observed, n_surrogates, _chronological(ds))
    else:
        order = _trial_orders(null, n_surrogates, _chronological(ds), generator)
        draws = {name: values[order] for name, values in observed.items()}

    if isinstance(target, str):
        return draws[target]
    return draws


def observed_target(ds: xr.Dataset, target: str) -> np.ndarray:
    """Return the observed values of a trial variable, in the dataset's order.

    Parameters
    ----------
    ds : xarray.Dataset
        Trial-aligned dataset.
    target : str
        ``"error"`` (returned as ``(n_trials, 2)``, components x, y),
        ``"error_magnitude"`` or any variable or coordinate whose only
        dimension is ``trial``.

    Returns
    -------
    numpy.ndarray

    Raises
    ------
    ColumnError
        If the variable is missing.
    ErrsigError
        If it is not a per-trial variable.

    Examples
    --------
    >>> import numpy as np
    >>> import xarray as xr
    >>> from errsig.stats import observed_target
    >>> ds = xr.Dataset({"error": (("trial", "component"), [[3.0, 4.0]])},
    ...                 coords={"component": ["x", "y"]})
    >>> observed_target(ds, "error_magnitude")
    array([5.])
    """
    if "trial" not in ds.dims:
        raise ErrsigError(
            "the dataset has no `trial` dimension; pass the output of "
            "errsig.bin_trials."
        )
    if target in ("error", "error_magnitude"):
        error = _error_vectors(ds)
        return error if target == "error" else np.hypot(error[:, 0], error[:, 1])
    if target not in ds.variables:
        available = sorted(
            str(name)
            for name, values in ds.variables.items()
            if values.dims == ("trial",)
        )
        raise ColumnError(
            f"target {target!r} is not in the dataset. Use 'error', "
            f"'error_magnitude' or a per-trial variable: {', '.join(available)}."
        )
    values = ds[target]
    if values.dims != ("trial",):
        raise ErrsigError(
            f"target {target!r} has dimensions {values.dims}; null_targets draws "
            "surrogates of per-trial variables (dimension ('trial',)) only."
        )
    return values.to_numpy()


def _error_vectors(ds: xr.Dataset) -> np.ndarray:
    if "error" not in ds.data_vars:
        raise ColumnError(
            "the dataset has no `error` variable (trial, component); bin a session "
            "whose trials carry `error_x` and `error_y`."
        )
    error = ds["error"]
    if "component" in error.coords:
        error = error.sel(component=["x", "y"])
    return error.transpose("trial", "component").to_numpy().astype(np.float64)


def _chronological(ds: xr.Dataset) -> np.ndarray:
    """Dataset positions of the trials in session order (by ``trial_index``)."""
    if "trial_index" not in ds.variables:
        return np.arange(ds.sizes["trial"])
    return np.argsort(observed_target(ds, "trial_index"), kind="stable")


def _check_targets(target: object) -> list[str]:
    try:
        names = [target] if isinstance(target, str) else list(target)
    except TypeError:
        names = []
    if not names or not all(isinstance(name, str) for name in names):
        raise ErrsigError(
            f"`target` must be a variable name or a sequence of names; got {target!r}."
        )
    return names


def _trial_orders(
    null: str,
    n_surrogates: int,
    chronological: np.ndarray,
    generator: np.random.Generator,
) -> np.ndarray:
    """Trial indices of each surrogate for the shuffle and circular-shift nulls."""
    n_trials = chronological.size
    if n_trials < 2:
        raise InsufficientDataError(
            f"the dataset has {n_trials} trial(s); a {null} null needs at least 2."
        )
    if null == "shuffle":
        trials = np.arange(n_trials)
        return generator.permuted(np.tile(trials, (n_surrogates, 1)), axis=1)

    warnings.warn(
        "the circular-shift null assumes that the neural data or the target is "
        "stationary; during learning neither is, and it can give many false "
        "positives (Harris 2020). Prefer null='pseudosession'.",
        NullAssumptionWarning,
        stacklevel=3,
    )
    shifts = generator.integers(1, n_trials, size=n_surrogates)
    steps = np.arange(n_trials)
    order = np.empty((n_surrogates, n_trials), dtype=np.intp)
    order[:, chronological] = chronological[
        (steps[None, :] - shifts[:, None]) % n_trials
    ]
    return order


def _linear_shift(
    observed: dict[str, np.ndarray], n_surrogates: int, chronological: np.ndarray
) -> dict[str, NullDraw]:
    n_trials = chronological.size
    max_shift = math.ceil(n_surrogates / 2)
    window = n_trials - 2 * max_shift
    if window < math.ceil(n_trials / 2):
        raise InsufficientDataError(
            f"a linear-shift null with {n_surrogates} surrogates shifts the target "
            f"by up to ±{max_shift} trials, leaving {window} of {n_trials} trials "
            f"in the window; ask for at most {n_trials // 2} surrogates (the "
            "window keeps at least half the trials)."
        )
    _warn_if_trending(observed, chronological)
    magnitudes = np.repeat(np.arange(1, max_shift + 1), 2)
    shifts = (magnitudes * np.tile([1, -1], max_shift))[:n_surrogates]
    steps = np.arange(max_shift, n_trials - max_shift)
    neural_trials = chronological[steps]
    order = chronological[steps[None, :] + shifts[:, None]]
    return {
        name: NullDraw(
            values=values[order],
            neural_trials=neural_trials,
            observed=values[neural_trials],
            shifts=shifts,
        )
        for name, values in observed.items()
    }


def _warn_if_trending(
    observed: dict[str, np.ndarray], chronological: np.ndarray
) -> None:
    """Warn when a target of the linear-shift null is not stationary (KPSS)."""
    from statsmodels.tools.sm_exceptions import InterpolationWarning
    from statsmodels.tsa.stattools import kpss

    trending = []
    for name, values in observed.items():
        series = np.asarray(values)[chronological]
        if series.dtype.kind not in "biuf":
            continue
        columns = series.reshape(len(series), -1).astype(np.float64)
        for column in columns.T:
            if np.ptp(column) == 0 or not np.isfinite(column).all():
                continue
            with warnings.catch_warnings():
                # p is tabulated on [0.01, 0.1]; beyond it the bound is returned.
                # FutureWarning: statsmodels will return a result object
                warnings.simplefilter("ignore", InterpolationWarning)
                warnings.simplefilter("ignore", FutureWarning)
                result = kpss(column, regression="c", nlags="auto")
            p_value = result.pvalue if hasattr(result, "pvalue") else result[1]
            if p_value <= 0.01:
                trending.append(f"{name} (KPSS p = {p_value:.2g})")
                break
    if trending:
        warnings.warn(
            "the linear-shift null is valid only if the target or the neural data "
            f"is stationary over the trials, and {', '.join(trending)} is not; "
            "unless the neural data are, it can give false positives (Harris "
            "2020). Detrend the target, or prefer null='pseudosession'.",
            NullAssumptionWarning,
            stacklevel=4,
        )


def _rotate_to_targets(
    error: np.ndarray, angle: np.ndarray, new_angle: np.ndarray
) -> np.ndarray:
    """Keep each error's lateral and along-reach parts, for new reach angles."""
    turn = np.asarray(new_angle, dtype=np.float64) - angle
    cos, sin = np.cos(turn), np.sin(turn)
    return np.stack(
        [
            cos * error[..., 0] - sin * error[..., 1],
            sin * error[..., 0] + cos * error[..., 1],
        ],
        axis=-1,
    )


def _pseudosession_targets(
    ds: xr.Dataset,
    observed: dict[str, np.ndarray],
    n_surrogates: int,
    generator: np.random.Generator,
) -> dict[str, np.ndarray]:
    from errsig.stats._pseudosession import draw_pseudosessions

    behaviour_rng, other_rng = generator.spawn(2)
    draws = {}
    n_trials = ds.sizes["trial"]
    for name, values in observed.items():
        if name not in BEHAVIOURAL_TARGETS:
            picks = other_rng.integers(0, n_trials, size=(n_surrogates, n_trials))
            draws[name] = values[picks]

    if any(name in BEHAVIOURAL_TARGETS for name in observed):
        sessions = draw_pseudosessions(ds, n_surrogates, rng=behaviour_rng)
        error = sessions["error"].transpose("pseudosession", "trial", "component")
        draws["error"] = error.to_numpy()
        if "target_angle" in draws:
            # A joint draw with new targets: the pseudo-subject reached to them.
            draws["error"] = _rotate_to_targets(
                draws["error"],
                observed_target(ds, "target_angle"),
                draws["target_angle"],
            )
        draws["error_magnitude"] = np.hypot(
            draws["error"][..., 0], draws["error"][..., 1]
        )
        if "reward" in observed:
            draws["reward"] = sessions["reward"].to_numpy()
    return {name: draws[name] for name in observed}
