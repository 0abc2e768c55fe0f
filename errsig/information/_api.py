"""``mutual_information``: which units and areas carry information about what.

The analysis takes the trial-aligned dataset of :func:`errsig.bin_trials`,
estimates the MI between every unit's (or every area's) activity in every time
bin and a trial variable, and tests each estimate against surrogate targets
drawn by :func:`errsig.stats.null_targets`, corrected over the whole family of
units × time bins by :func:`errsig.stats.correct`.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import xarray as xr

from errsig._exceptions import (
    ColumnError,
    DataRepairWarning,
    ErrsigError,
    InsufficientDataError,
)
from errsig._validation import check_positive_int, check_rng, loaded_counts
from errsig.information import _engine
from errsig.information._binned import BIAS_CORRECTIONS, binned_mi_batch
from errsig.information._copula import Ties, copnorm
from errsig.information._ksg import ksg_mi

__all__ = ["mutual_information"]

logger = logging.getLogger(__name__)

METHODS = ("gcmi", "binned", "ksg")
NULLS = ("pseudosession", "shuffle", "circular_shift", "linear_shift", "session")
CORRECTIONS = ("maxstat", "cluster", "fdr", "none")

#: Trial variables the behavioural nulls redraw; a ``given`` among them is drawn
#: jointly with the target, any other ``given`` is held fixed with the neurons.
BEHAVIOURAL = ("error", "error_magnitude", "reward")

#: Trials per dimension of the population estimate: an area's activity is
#: reduced to at most ``n_trials // TRIALS_PER_COMPONENT`` principal components.
TRIALS_PER_COMPONENT = 20

#: Upper bound on the number of principal components per area.
MAX_COMPONENTS = 10

#: Bytes of float64 counts the GCMI normalises at a time (per-unit tests: a run
#: of units; area tests: a few bins of one area), so memory stays bounded.
UNIT_CHUNK_BYTES = 32 * 2**20

#: Surrogates each trial bootstrap of the onset latency is tested against.
BOOTSTRAP_SURROGATES = 200


@dataclass
class _TrialVariable:
    """A target or conditioning variable, observed (row 0) and surrogates."""

    name: str
    values: np.ndarray  # (n_draws, n_trials, n_dims); one draw if held fixed
    discrete: bool


def mutual_information(
    ds: xr.Dataset,
    target: str,
    *,
    given: str | Sequence[str] | None = None,
    method: Literal["gcmi", "binned", "ksg"] = "gcmi",
    by: Literal["area"] | None = None,
    null: Literal[
        "pseudosession", "shuffle", "circular_shift", "linear_shift", "session"
    ] = "pseudosession",
    n_perm: int = 1000,
    correction: Literal["maxstat", "cluster", "fdr", "none"] = "maxstat",
    alpha: float = 0.05,
    rng: int | np.random.Generator | None = None,
    progress: bool = False,
    ties: Ties = "average",
    bias: str = "panzeri-treves",
    k: int = 3,
    surrogates: object | None = None,
    n_boot: int = 0,
) -> xr.Dataset:
    """Mutual information between neural activity and a trial variable, with tests.

    Parameters
    ----------
    ds : xarray.Dataset
        Trial-aligned data from :func:`errsig.bin_trials`: ``counts`` (trial,
        unit, time), ``error`` (trial, component) and trial coordinates.
    target : str
        ``"error"`` (the 2-D error vector), ``"error_magnitude"`` (its length),
        ``"reward"``, or the name of any variable or coordinate on ``trial``.
        Bool, integer and string variables are discrete (classes); floating
        ones are continuous.
    given : str or sequence of str, optional
        Condition on this variable (or these, jointly): conditional MI
        ``I(activity; target | given)``, e.g. ``["kinematics", "force"]``.
        A variable on (trial, time[, component]) enters as its whole
        trajectory in the window (all time-resolved ones together reduced to
        at most ``n_trials // 20`` principal components), held fixed with
        the neurons; the behavioural variables ``"error"``,
        ``"error_magnitude"`` and ``"reward"`` are redrawn jointly with the
        target in every surrogate; any other trial variable is held fixed.
        Only with ``method="gcmi"`` and a continuous target.
    method : {"gcmi", "binned", "ksg"}, default="gcmi"
        Estimator: Gaussian copula (:func:`gcmi_continuous`,
        :func:`gcmi_discrete`, :func:`gccmi`), plug-in on binned counts with a
        bias correction (:func:`binned_mi`), or k-nearest neighbours
        (:func:`ksg_mi`, slow: one tree search per test and surrogate).
    by : {"area"}, optional
        ``None`` estimates per unit; ``"area"`` pools each area's units into
        one multivariate GCMI per time bin, after reducing them to at most
        ``min(10, n_trials // 20)`` principal components.
    null : str, default="pseudosession"
        Surrogate targets, from :func:`errsig.stats.null_targets`:
        ``"pseudosession"`` redraws error and reward from the adaptation model
        fitted to the session, which keeps their slow trends across trials;
        ``"shuffle"`` ignores trial order and is offered only for comparison
        (it is anti-conservative on learning data, see
        ``docs/validation-information.md``); ``"circular_shift"`` and
        ``"linear_shift"`` assume stationarity (the latter estimates MI on a
        central window of trials only). ``"session"`` pairs the neurons with
        the behaviour of other sessions, given as ``surrogates``.
    n_perm : int, default=1000
        Number of surrogates (with ``null="session"``, the other sessions
        set it, and ``n_perm`` is ignored).
    correction : {"maxstat", "cluster", "fdr", "none"}, default="maxstat"
        Correction over all tests (units × time bins, or areas × time bins) by
        :func:`errsig.stats.correct`; each test's statistic is standardised
        by its own null first. "cluster" forms clusters along time.
    alpha : float, default=0.05
        Level for ``significant``.
    rng : None, int or numpy.random.Generator, optional
        Randomness of the surrogates (and of tie-breaking with
        ``ties="random"``).
    progress : bool, default=False
        Show progress bars (only on a terminal).
    ties : {"average", "random"}, default="average"
        How tied counts are ranked by the copula normalisation (gcmi), see
        :func:`copnorm`; also the tie-breaking jitter of ksg (``"random"``
        there always).
    bias : {"panzeri-treves", "quadratic", "shuffle", "none"}, default="panzeri-treves"
        Bias correction of ``method="binned"``.
    k : int, default=3
        Neighbours of ``method="ksg"``.
    surrogates : NullDraw or dict of NullDraw, optional
        With ``null="session"`` only: this session's entry of
        :func:`errsig.stats.session_permutation` (a dict when ``given``
        names behavioural variables drawn jointly with the target, keyed by
        name), made from the binned datasets of three or more sessions.
    n_boot : int, default=0
        Trial bootstraps for an interval on the onset latency (0: none). Each
        resamples the trials with replacement, in the activity and in the
        target and its first 200 surrogates alike, and repeats the test with
        the same correction; the onsets of the bootstraps give the interval.
        Each bootstrap costs about as much as 200 surrogates.

    Returns
    -------
    xarray.Dataset
        ``mi`` (unit, time) or (area, time) in bits, bias-corrected, negative
        values kept; ``p`` (corrected) and ``significant``; ``p_uncorrected``;
        ``null_mean`` and ``null_std`` of the surrogate MI; ``masked`` (True
        where a unit's counts do not vary, so MI is NaN); ``onset_latency``
        (per unit, or per area with ``by="area"``: the first significant time
        bin; per area from a per-unit result with
        ``result.onset_latency.groupby("area").min()``). With ``n_boot``:
        ``onset_latency_low`` and ``onset_latency_high`` (the central 95 % of
        the bootstrap onsets, rounded outwards to bins; a bootstrap without an
        onset counts as later than the window, so a bound beyond it is NaN) and
        ``onset_detected`` (the fraction of bootstraps with an onset). Attrs
        record every parameter, the seed and ``p_floor``.

    Raises
    ------
    ColumnError
        If ``target`` or ``given`` is not in ``ds``.
    ErrsigError
        On an unknown option or an unsupported combination.
    InsufficientDataError
        With too few trials for the estimate.

    Warns
    -----
    DataRepairWarning
        When units or time bins with constant counts are masked.

    See Also
    --------
    gcmi_continuous, gcmi_discrete, gccmi, binned_mi, ksg_mi
    errsig.stats.null_targets, errsig.stats.correct

    Notes
    -----
    With ``method="gcmi"`` every surrogate is evaluated in one matrix
    product against the copula-normalised activity (``docs/methods.md``), so
    1000 surrogates cost about as much as a few plain correlations. The
    observed MI and the surrogates' MI go through the same estimator, so the
    bias correction does not affect the p-values; it only makes ``mi``
    comparable across units and sessions.

    When ``counts`` is a dask array chunked over units
    (:func:`errsig.batch.bin_trials_chunked`), the per-unit GCMI (``by=None``)
    loads and normalises one chunk of units at a time, so memory grows with the
    chunk rather than the session, with the same numbers (``ties="average"``);
    the other estimators and ``by="area"`` load the whole array.

    Examples
    --------
    >>> import numpy as np
    >>> import xarray as xr
    >>> from errsig.information import mutual_information
    >>> rng = np.random.default_rng(0)
    >>> error = rng.normal(0, 0.01, (200, 2))
    >>> rate = np.exp(1 + 60 * error[:, :1, None] * np.ones((1, 3, 4)))
    >>> rate[:, 1:] = np.e  # units 1 and 2 ignore the error
    >>> ds = xr.Dataset(
    ...     {"counts": (("trial", "unit", "time"), rng.poisson(rate)),
    ...      "error": (("trial", "component"), error)},
    ...     coords={"area": ("unit", ["M1"] * 3), "time": [0.0, 0.1, 0.2, 0.3]},
    ... )
    >>> result = mutual_information(ds, "error", null="shuffle", n_perm=199, rng=1)
    >>> result["significant"].any("time").values
    array([ True, False, False])
    """
    _check_options(method, by, null, correction, alpha, bias, k, surrogates)
    givens = _check_given(given, target)
    n_perm = check_positive_int(n_perm, "n_perm")
    n_boot = check_positive_int(n_boot, "n_boot", minimum=0)
    counts = _counts(ds)
    seed, generator = _seed(rng)
    null_stream, tie_stream = generator.spawn(2)

    discrete_target = _is_discrete(_trial_values(ds, target, "target"))
    if givens and (discrete_target or method != "gcmi"):
        raise ErrsigError(
            f"`given`={given!r} needs method='gcmi' and a continuous target; got "
            f"method={method!r} and target {target!r}"
            f"{' (discrete)' if discrete_target else ''}. Condition a discrete "
            "target by splitting the trials instead."
        )
    target_variable, given_variable, neural_trials = _draw_variables(
        ds, target, givens, n_perm, null, null_stream, surrogates
    )
    n_perm = len(target_variable.values) - 1
    if neural_trials is not None:
        counts = counts.isel(trial=neural_trials)

    estimator = dict(method=method, by=by, ties=ties, bias=bias, k=k)
    if counts.chunks is not None and (method != "gcmi" or by is not None):
        # only the per-unit GCMI streams dask chunks; the others need all units
        counts = loaded_counts(xr.Dataset({"counts": counts}))["counts"]
    draws, masked, n_components = _estimate(
        counts, target_variable, given_variable, estimator, tie_stream, progress
    )
    _warn_masked(masked, by)

    # a copy: a view would keep every surrogate alive with the result
    observed, surrogates = draws[0].copy(), draws[1:]
    result = _test(observed, surrogates, correction, alpha)
    dataset = _package(counts, by, observed, surrogates, masked, result)
    if n_boot:
        onsets = _bootstrap_onsets(
            counts,
            target_variable,
            given_variable,
            estimator,
            dict(correction=correction, alpha=alpha, n_boot=n_boot),
            generator.spawn(1)[0],
        )
        dataset = _add_onset_intervals(dataset, onsets)
    dataset.attrs.update(
        method=method,
        target=target,
        given=",".join(givens) if givens else "None",
        null=null,
        null_ignores_trial_order=int(null == "shuffle"),
        n_perm=n_perm,
        correction=correction,
        alpha=float(alpha),
        p_floor=float(result.p_floor),
        seed=seed,
        ties=ties,
        bias_correction=_bias_label(method, bias),
        statistic_standardized=int(result.standardized),
        n_boot=n_boot,
        **({"k": k} if method == "ksg" else {}),
        **({"align": ds.attrs["align"]} if "align" in ds.attrs else {}),
        **({"n_components": n_components} if by == "area" else {}),
    )
    if null == "shuffle":
        dataset.attrs["null_note"] = (
            "trial shuffle: ignores trial order, so slow trends shared by the "
            "activity and the target count as information (anti-conservative "
            "on learning data)"
        )
    return dataset


def _check_options(
    method: str,
    by: str | None,
    null: str,
    correction: str,
    alpha: float,
    bias: str,
    k: int,
    surrogates: object | None = None,
) -> None:
    choices = {"method": (method, METHODS), "correction": (correction, CORRECTIONS)}
    for name, (value, allowed) in choices.items():
        if value not in allowed:
            raise ErrsigError(
                f"`{name}` must be one of {', '.join(map(repr, allowed))}; got "
                f"{value!r}."
            )
    if null == "session" and surrogates is None:
        raise ErrsigError(
            "null='session' pairs one session's neurons with another session's "
            "behaviour, so it needs several sessions: pass `surrogates`, this "
            "session's entry of "
            "errsig.stats.session_permutation(datasets, target), made from three "
            "or more sessions. For one session use null='pseudosession' (the "
            "default)."
        )
    if null != "session" and surrogates is not None:
        raise ErrsigError(
            f"`surrogates` are the draws of null='session'; got null={null!r}. "
            "Pass null='session' with them, or leave them out."
        )
    if null not in NULLS:
        raise ErrsigError(
            f"`null` must be 'pseudosession', 'shuffle', 'circular_shift', "
            f"'linear_shift' or 'session'; got {null!r}."
        )
    if by not in (None, "area"):
        raise ErrsigError(f"`by` must be None or 'area'; got {by!r}.")
    if by == "area" and method != "gcmi":
        raise ErrsigError(
            f"by='area' (a multivariate population estimate) needs method='gcmi'; "
            f"got method={method!r}."
        )
    if not 0 < alpha < 1:
        raise ErrsigError(f"`alpha` must lie in (0, 1); got {alpha!r}.")
    if method == "binned" and bias not in BIAS_CORRECTIONS:
        raise ErrsigError(
            f"`bias` must be one of {', '.join(map(repr, BIAS_CORRECTIONS))}; got "
            f"{bias!r}."
        )
    if method == "ksg":
        check_positive_int(k, "k")


def _check_given(given: str | Sequence[str] | None, target: str) -> tuple[str, ...]:
    givens = (given,) if isinstance(given, str) else tuple(given or ())
    for name in givens:
        if not isinstance(name, str):
            raise ErrsigError(
                "`given` must be a variable name or a sequence of names; got "
                f"{given!r}."
            )
        if name == target:
            raise ErrsigError(
                f"`given` and `target` are both {target!r}; conditioning a "
                "variable on itself leaves no information."
            )
    if len(set(givens)) != len(givens):
        raise ErrsigError(f"`given` names a variable twice: {given!r}.")
    return givens


def _counts(ds: xr.Dataset) -> xr.DataArray:
    if not isinstance(ds, xr.Dataset) or "counts" not in ds:
        raise ColumnError(
            "`ds` must be the dataset of errsig.bin_trials with a `counts` "
            "variable (trial, unit, time)."
        )
    counts = ds["counts"]
    if "time" not in counts.dims:
        counts = counts.expand_dims(time=[0.0], axis=-1)
    missing = {"trial", "unit"} - set(counts.dims)
    if missing:
        raise ColumnError(
            f"`counts` must have dimensions (trial, unit, time); it has "
            f"{counts.dims}, missing {sorted(missing)}."
        )
    counts = counts.transpose("trial", "unit", "time")
    if counts.dtype.kind == "f" and bool(counts.isnull().any()):
        raise ErrsigError(
            "`counts` contains NaN; drop the affected trials (ds.dropna('trial')) "
            "before estimating MI."
        )
    if counts.sizes["trial"] < 10:
        raise InsufficientDataError(
            f"mutual_information needs at least 10 trials; the dataset has "
            f"{counts.sizes['trial']}."
        )
    return counts


def _seed(
    rng: int | np.random.Generator | None,
) -> tuple[str, np.random.Generator]:
    """Return the generator and a record of its seed for the result's attrs."""
    if isinstance(rng, np.random.Generator):
        return "numpy Generator (seed not recorded)", rng
    if rng is None:
        rng = np.random.SeedSequence().entropy
    return str(rng), check_rng(rng)


def _draw_variables(
    ds: xr.Dataset,
    target: str,
    givens: tuple[str, ...],
    n_perm: int,
    null: str,
    rng: np.random.Generator,
    surrogates: object | None = None,
) -> tuple[_TrialVariable, _TrialVariable | None, np.ndarray | None]:
    """Observed and surrogate target, the conditioning set, and neural trials.

    Behavioural conditioning variables are drawn jointly with the target; the
    others are held fixed. The conditioning set comes back copula-normalised,
    (n_draws or 1, n_trials, n_dims). The neural trials are None except for
    the linear-shift null, which pairs every surrogate with one fixed window
    of neural trials.
    """
    from errsig import stats

    observed_target = _trial_values(ds, target, "target")
    for name in givens:
        if name not in ds.variables and name not in BEHAVIOURAL:
            _trial_values(ds, name, "given")  # raises, naming what is available
    joint = [name for name in givens if name in BEHAVIOURAL and target in BEHAVIOURAL]
    fixed = [name for name in givens if name not in joint]

    if null == "session":
        draws = _session_draws(surrogates, [target, *joint])
    else:
        draws = stats.null_targets(ds, [target, *joint], n_perm, null=null, rng=rng)
    neural_trials = getattr(draws[target], "neural_trials", None)
    target_variable = _variable(target, observed_target, draws[target])
    if not givens:
        return target_variable, None, neural_trials

    parts = [
        _normalised_target(
            _variable(name, _trial_values(ds, name, "given"), draws[name])
        )
        for name in joint
    ]
    if fixed:
        parts.append(_fixed_given(ds, fixed, neural_trials)[None])
    n_draws = max(len(part) for part in parts)
    shape = (n_draws, len(parts[0][0]))
    values = np.concatenate(
        [np.broadcast_to(part, shape + part.shape[-1:]) for part in parts], axis=-1
    )
    return (
        target_variable,
        _TrialVariable(",".join(givens), values, False),
        neural_trials,
    )


def _session_draws(surrogates: object, names: list[str]) -> dict[str, object]:
    """Check the session-permutation draws and key them by variable name."""
    from errsig.stats import NullDraw

    draws = {names[0]: surrogates} if isinstance(surrogates, NullDraw) else surrogates
    if not isinstance(draws, dict) or not all(
        isinstance(draws.get(name), NullDraw) for name in names
    ):
        raise ErrsigError(
            f"`surrogates` must be a NullDraw of errsig.stats.session_permutation, "
            f"or a dict of them with the keys {names}; got {type(surrogates).__name__}"
            f"{' with keys ' + str(sorted(draws)) if isinstance(draws, dict) else ''}."
        )
    trials = [draws[name].neural_trials for name in names]
    if any(not np.array_equal(trials[0], other) for other in trials[1:]):
        raise ErrsigError(
            "`surrogates`: the draws of the variables pair with different neural "
            "trials; make them in one call, session_permutation(datasets, names)."
        )
    return draws


def _variable(name: str, observed: np.ndarray, draws: object) -> _TrialVariable:
    observed = getattr(draws, "observed", observed)
    surrogates = np.asarray(getattr(draws, "values", draws))
    if surrogates.ndim == 2:
        surrogates = surrogates[..., None]
    observed = observed.reshape(len(observed), -1)
    values = np.concatenate([observed[None], surrogates.astype(observed.dtype)])
    return _TrialVariable(name, values, discrete=_is_discrete(observed))


def _trial_values(ds: xr.Dataset, name: str, argument: str) -> np.ndarray:
    from errsig import stats

    try:
        values = stats.observed_target(ds, name)
    except ColumnError as error:
        raise ColumnError(f"`{argument}`: {error}") from None
    if values.dtype.kind == "f" and np.isnan(values).any():
        raise ErrsigError(
            f"`{argument}`={name!r} is NaN on some trials; drop them first, e.g. "
            f"ds.where(ds[{name!r}].notnull(), drop=True)."
        )
    return values


def _fixed_given(
    ds: xr.Dataset, names: list[str], neural_trials: np.ndarray | None
) -> np.ndarray:
    """Copula-normalised conditioning variables held fixed, (n_trials, n_dims).

    Time-resolved variables (kinematics, force) enter as their whole
    trajectories in the window: a unit may encode the movement at a lead or
    lag, so conditioning on the same bin alone would leave part of a
    kinematic confound in place. Their bins × components are copula-normalised
    together and, when there are more than ``n_trials //
    TRIALS_PER_COMPONENT``, reduced to that many principal components.
    """
    if neural_trials is not None:
        ds = ds.isel(trial=neural_trials)
    n_trials = ds.sizes["trial"]
    trajectories, columns = [], []
    for name in names:
        if name in ds.variables and "time" in ds[name].dims:
            values = ds[name].transpose("trial", ...).values.reshape(n_trials, -1)
            trajectories.append(values)
        else:
            values = _trial_values(ds, name, "given")
            if values.dtype.kind not in "biuf":
                raise ErrsigError(
                    f"`given`={name!r} is not numeric (dtype {values.dtype}); "
                    "conditional MI needs numeric conditioning variables."
                )
            columns.append(values.reshape(n_trials, -1).astype(np.float64))
        if np.isnan(values.astype(np.float64)).any():
            raise ErrsigError(
                f"`given`={name!r} is NaN in some trials or bins; drop or fill "
                "them before conditioning on it."
            )

    parts = [copnorm(np.hstack(columns))] if columns else []
    if trajectories:
        trajectory = copnorm(np.hstack(trajectories))
        trajectory = trajectory[:, trajectory.std(axis=0) > 0]
        max_dims = max(1, n_trials // TRIALS_PER_COMPONENT)
        if trajectory.shape[1] > max_dims:
            centred = trajectory - trajectory.mean(axis=0)
            trajectory = np.linalg.svd(centred, full_matrices=False)[0][:, :max_dims]
        parts.append(trajectory)
    return np.hstack(parts)


def _is_discrete(values: np.ndarray) -> bool:
    return values.dtype.kind in "biuUSO"


def _class_codes(variable: _TrialVariable) -> tuple[np.ndarray, int]:
    values = variable.values[..., 0]
    classes = np.unique(values[0])
    codes = np.searchsorted(classes, values)
    codes = np.minimum(codes, len(classes) - 1)
    if (classes[codes] != values).any():
        raise ErrsigError(
            f"the surrogates of {variable.name!r} contain values the data do not; "
            "this is a bug in the null, please report it."
        )
    if len(classes) < 2:
        raise InsufficientDataError(
            f"target {variable.name!r} takes a single value on every trial; it "
            "carries no information to estimate."
        )
    return codes, len(classes)


def _normalised_target(variable: _TrialVariable) -> np.ndarray:
    """(n_draws, n_trials, n_dims) with every draw copula-normalised over trials."""
    values = np.moveaxis(variable.values.astype(np.float64), -1, 1)
    return np.moveaxis(_engine.rank_normalise_rows(values), 1, -1)


def _gcmi_units(
    counts: xr.DataArray,
    target: _TrialVariable,
    given: _TrialVariable | None,
    ties: Ties,
    rng: np.random.Generator,
    progress: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """GCMI of every unit in every bin: (n_draws, n_units, n_time) and the mask.

    Units are normalised and tested a chunk at a time — the chunks of a dask
    array (:func:`errsig.batch.bin_trials_chunked`), or runs of units holding
    :data:`UNIT_CHUNK_BYTES` of float64 counts — so that memory grows with the
    chunk, not the session. Every unit × bin is normalised on its own and the
    tie-breaking draws run through the units in order, so the numbers do not
    depend on the chunking.
    """
    n_trials, n_units, n_time = counts.shape
    per_chunk = max(1, UNIT_CHUNK_BYTES // (8 * n_trials * max(n_time, 1)))
    if counts.chunks is not None:
        loads = list(counts.chunksizes["unit"])
    else:
        loads = [n_units]
    prepared = _prepare_target(target, given)

    mi = np.empty((prepared.n_draws, n_units, n_time))
    masked = np.empty((n_units, n_time), dtype=bool)
    n_blocks = sum(-(-size // per_chunk) for size in loads)
    bar = _progress_bar(n_blocks, progress and n_blocks > 1)
    first = 0
    for size in loads:
        loaded = counts.isel(unit=slice(first, first + size))
        if loaded.chunks is not None:  # one dask chunk is binned at a time
            loaded = loaded.compute(scheduler="synchronous")
        for start in range(0, size, per_chunk):
            stop = min(start + per_chunk, size)
            values = loaded.values[:, start:stop].reshape(n_trials, -1)
            normalised = copnorm(values, ties=ties, rng=rng)
            neural, constant = _engine.unit_norm_columns(normalised)
            del normalised
            block_mi = _gaussian_mi(neural, prepared, 1, progress and n_blocks == 1)
            units = slice(first + start, first + stop)
            mi[:, units] = block_mi.reshape(-1, stop - start, n_time)
            masked[units] = constant.reshape(stop - start, n_time)
            bar.update()
        first += size
    bar.close()
    mi[:, masked] = np.nan
    return mi, masked


def _progress_bar(total: int, show: bool) -> object:
    """Return a progress bar over blocks of units (silent unless ``show``)."""
    from tqdm.auto import tqdm

    return tqdm(
        total=total, desc="unit blocks", unit="block", disable=None if show else True
    )


@dataclass
class _PreparedTarget:
    """What every chunk of neural columns is tested against, computed once."""

    n_draws: int
    codes: np.ndarray | None = None  # discrete: (n_draws, n_trials) class codes
    n_classes: int = 0
    basis: np.ndarray | None = None  # continuous: orthonormal [given, target]
    degenerate: np.ndarray | None = None
    n_given: int = 0
    # A given held fixed across draws: its orthonormal basis (n_trials, n_given),
    # with ``basis`` then spanning only the target's part orthogonal to it, and
    # the bias of the conditional MI minus that of the unconditional one.
    given_basis: np.ndarray | None = None
    bias_shift: float = 0.0


def _prepare_target(
    target: _TrialVariable, given: _TrialVariable | None
) -> _PreparedTarget:
    """Class codes, or the orthonormal basis of given and target, per draw."""
    if target.discrete:
        codes, n_classes = _class_codes(target)
        return _PreparedTarget(len(target.values), codes=codes, n_classes=n_classes)

    normalised_target = _normalised_target(target)
    if given is not None and len(given.values) == 1:
        prepared = _prepare_fixed_given(normalised_target, given.values[0])
        if prepared is not None:
            return prepared
    given_values = None
    if given is not None:  # already copula-normalised
        given_values = np.broadcast_to(
            given.values, normalised_target.shape[:2] + given.values.shape[-1:]
        )
    basis, degenerate = _engine.orthonormal_target_basis(
        normalised_target, given_values
    )
    return _PreparedTarget(
        len(target.values),
        basis=basis,
        degenerate=degenerate,
        n_given=0 if given is None else given.values.shape[-1],
    )


def _prepare_fixed_given(
    normalised_target: np.ndarray, given: np.ndarray
) -> _PreparedTarget | None:
    """Split off a conditioning variable that every draw shares.

    With ``G`` fixed, I(X; T | G) is the MI between X and T once both are made
    orthogonal to G: -½ log(1 - |Rᵀx̂|²), where x̂ is X's part orthogonal to G
    scaled to unit norm and R an orthonormal basis of T's part orthogonal to
    G. The per-draw products then involve the target's few columns instead of
    the given's many (100 components of a movement trajectory at 2,000
    trials). Returns None when G is rank-deficient (the general path marks
    every draw degenerate then).
    """
    from errsig.information._gcmi import _mi_bias

    given_basis, degenerate = _engine.orthonormal_target_basis(given[None])
    if degenerate[0]:
        return None
    given_basis = given_basis[0]
    n_draws, n_trials, n_target = normalised_target.shape

    centred = normalised_target - normalised_target.mean(axis=1, keepdims=True)
    inside = np.einsum("tg,dtk->dgk", given_basis, centred)
    residual = centred - np.einsum("tg,dgk->dtk", given_basis, inside)
    basis, triangular = np.linalg.qr(residual)
    diagonal = np.abs(np.diagonal(triangular, axis1=-2, axis2=-1))
    scale = np.sqrt(np.einsum("dtk,dtk->dk", centred, centred)).max(axis=-1)
    degenerate = (diagonal < 1e-8 * scale[:, None]).any(axis=-1)

    n_given = given_basis.shape[1]
    bias_shift = _mi_bias(n_trials, 1, n_target, 0) - _mi_bias(
        n_trials, 1, n_target, n_given
    )
    return _PreparedTarget(
        n_draws,
        basis=basis,
        degenerate=degenerate,
        given_basis=given_basis,
        bias_shift=bias_shift / np.log(2.0),
    )


def _gaussian_mi(
    neural: np.ndarray,
    prepared: _PreparedTarget,
    neural_dims: int,
    progress: bool,
) -> np.ndarray:
    """Engine dispatch; ``neural`` columns are ordered (test, dim)."""
    if prepared.given_basis is not None and neural_dims == 1:
        return _fixed_given_mi(neural, prepared, progress)
    if prepared.given_basis is not None:
        prepared = _joined_basis(prepared)
    if prepared.codes is not None:
        return _engine.discrete_mi(
            neural,
            prepared.codes,
            n_classes=prepared.n_classes,
            neural_dims=neural_dims,
            progress=progress,
        )
    mi = _engine.continuous_mi(
        neural,
        prepared.basis,
        n_given=prepared.n_given,
        neural_dims=neural_dims,
        progress=progress,
    )
    mi[prepared.degenerate] = np.nan
    return mi


def _fixed_given_mi(
    neural: np.ndarray, prepared: _PreparedTarget, progress: bool
) -> np.ndarray:
    """Conditional MI of unit-norm columns given a fixed variable, all draws."""
    given_basis = prepared.given_basis
    residual = neural - given_basis @ (given_basis.T @ neural)
    norms = np.sqrt(np.einsum("ij,ij->j", residual, residual))
    explained = norms <= 1e-12
    residual /= np.where(explained, 1.0, norms)
    residual[:, explained] = 0.0
    mi = _engine.continuous_mi(
        residual, prepared.basis, n_given=0, neural_dims=1, progress=progress
    )
    mi += prepared.bias_shift
    mi[prepared.degenerate] = np.nan
    return mi


def _joined_basis(prepared: _PreparedTarget) -> _PreparedTarget:
    """Return the general form, [given, target ⊥ given] per draw (multi-dim tests)."""
    n_draws = prepared.n_draws
    given_basis = np.broadcast_to(
        prepared.given_basis, (n_draws, *prepared.given_basis.shape)
    )
    return _PreparedTarget(
        n_draws,
        basis=np.concatenate([given_basis, prepared.basis], axis=-1),
        degenerate=prepared.degenerate,
        n_given=prepared.given_basis.shape[1],
    )


def _gcmi_areas(
    counts: xr.DataArray,
    target: _TrialVariable,
    given: _TrialVariable | None,
    ties: Ties,
    rng: np.random.Generator,
    progress: bool,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Estimate population GCMI per area and bin on leading components.

    Each area's units are normalised a few bins at a time (as many as fit in
    :data:`UNIT_CHUNK_BYTES` of float64), so memory does not grow with the
    session; with ``ties="average"`` the numbers do not depend on the chunking.
    """
    if "area" not in counts.coords:
        raise ColumnError(
            "by='area' needs an `area` coordinate on the unit dimension of `ds`."
        )
    n_trials, _, n_time = counts.shape
    areas = np.unique(counts["area"].values.astype(str))
    max_components = max(1, min(MAX_COMPONENTS, n_trials // TRIALS_PER_COMPONENT))
    prepared = _prepare_target(target, given)

    mi = np.full((prepared.n_draws, len(areas), n_time), np.nan)
    masked = np.zeros((len(areas), n_time), dtype=bool)
    for area_index, area in enumerate(areas):
        members = np.flatnonzero(counts["area"].values.astype(str) == area)
        components = _area_components(
            counts.isel(unit=members), ties, rng, max_components
        )
        masked[area_index] = np.array([c is None for c in components])
        widths = {c.shape[1] for c in components if c is not None}
        for width in widths:
            bins = [
                t
                for t, c in enumerate(components)
                if c is not None and c.shape[1] == width
            ]
            stacked = np.concatenate([components[t] for t in bins], axis=1)
            values = _gaussian_mi(stacked, prepared, width, progress)
            mi[:, area_index, bins] = values
    return mi, masked, max_components


def _area_components(
    counts: xr.DataArray, ties: Ties, rng: np.random.Generator, max_components: int
) -> list[np.ndarray | None]:
    """Orthonormal leading principal components of each bin (None if none)."""
    n_trials, n_units, n_time = counts.shape
    per_group = max(1, UNIT_CHUNK_BYTES // (8 * n_trials * max(n_units, 1)))
    components = []
    for first in range(0, n_time, per_group):
        group = counts.isel(time=slice(first, first + per_group))
        n_bins = group.sizes["time"]
        normalised = copnorm(group.values.reshape(n_trials, -1), ties=ties, rng=rng)
        neural, constant = _engine.unit_norm_columns(normalised)
        neural = neural.reshape(n_trials, n_units, n_bins)
        constant = constant.reshape(n_units, n_bins)
        for time_index in range(n_bins):
            active = neural[:, ~constant[:, time_index], time_index]
            if active.shape[1] == 0:
                components.append(None)
                continue
            components.append(_leading_components(active, max_components))
    return components


def _leading_components(active: np.ndarray, max_components: int) -> np.ndarray:
    """Orthonormal leading left singular vectors of (n_trials, n_units).

    Only the first ``max_components`` are needed, so they come from the
    eigenvectors of the smaller Gram matrix (units × units or trials × trials)
    rather than a full SVD: at 2,000 trials × 1,000 units about a sixth of the
    work. The Gram matrix squares the condition number, so when a kept
    eigenvalue is within 1e-8 of the largest (the area is nearly
    rank-deficient), the SVD decides the rank as before.
    """
    from scipy.linalg import eigh

    n_trials, n_units = active.shape
    wanted = min(max_components, n_trials, n_units)
    if wanted >= min(n_trials, n_units) // 2:
        return _svd_components(active, max_components)
    by_units = n_units <= n_trials
    gram = active.T @ active if by_units else active @ active.T
    size = len(gram)
    values, vectors = eigh(gram, subset_by_index=(size - wanted, size - 1))
    values, vectors = values[::-1], vectors[:, ::-1]
    if values[0] <= 0 or values[-1] <= 1e-8 * values[0]:
        return _svd_components(active, max_components)
    if not by_units:
        return vectors
    return np.linalg.qr(active @ vectors)[0]


def _svd_components(active: np.ndarray, max_components: int) -> np.ndarray:
    left, singular, _ = np.linalg.svd(active, full_matrices=False)
    rank = int((singular > 1e-10 * singular[0]).sum())
    return left[:, : min(rank, max_components)]


def _binned_units(
    counts: xr.DataArray, target: _TrialVariable, bias: str, progress: bool
) -> tuple[np.ndarray, np.ndarray]:
    n_trials, n_units, n_time = counts.shape
    flat = counts.values.reshape(n_trials, -1)
    masked = (flat == flat[:1]).all(axis=0)
    if target.discrete:
        codes, _ = _class_codes(target)
    else:
        codes = None
    mi = binned_mi_batch(
        flat, target.values, target_codes=codes, bias=bias, progress=progress
    )
    mi[:, masked] = np.nan
    return mi.reshape(len(mi), n_units, n_time), masked.reshape(n_units, n_time)


def _ksg_units(
    counts: xr.DataArray,
    target: _TrialVariable,
    k: int,
    rng: np.random.Generator,
    progress: bool,
) -> tuple[np.ndarray, np.ndarray]:
    from tqdm.auto import tqdm

    n_trials, n_units, n_time = counts.shape
    flat = counts.values.reshape(n_trials, -1).astype(np.float64)
    masked = (flat == flat[:1]).all(axis=0)
    values = target.values.astype(np.float64)
    mi = np.full((len(values), flat.shape[1]), np.nan)
    tests = np.flatnonzero(~masked)
    streams = rng.spawn(len(tests))
    bar = tqdm(tests, desc="ksg tests", disable=None if progress else True)
    for test, stream in zip(bar, streams, strict=True):
        for draw in range(len(values)):
            mi[draw, test] = ksg_mi(flat[:, test], values[draw], k=k, rng=stream)
    return mi.reshape(len(mi), n_units, n_time), masked.reshape(n_units, n_time)


def _warn_masked(masked: np.ndarray, by: str | None) -> None:
    if not masked.any():
        return
    what = "area" if by == "area" else "unit"
    warnings.warn(
        f"{int(masked.sum())} of {masked.size} {what} × time bins have constant "
        "activity across trials (no information can be estimated); their MI "
        "and p are NaN and listed in the `masked` variable.",
        DataRepairWarning,
        stacklevel=3,
    )


def _test(observed: np.ndarray, surrogates: np.ndarray, correction: str, alpha: float):
    from errsig import stats

    with warnings.catch_warnings():
        # masked tests are all-NaN: their standardisation is NaN, as it should be
        warnings.filterwarnings("ignore", "Mean of empty slice", RuntimeWarning)
        warnings.filterwarnings("ignore", "Degrees of freedom", RuntimeWarning)
        return stats.correct(
            observed,
            surrogates,
            method=correction,
            alpha=alpha,
            time_axis=1 if correction == "cluster" else None,
            standardize=correction != "none",
        )


def _package(
    counts: xr.DataArray,
    by: str | None,
    observed: np.ndarray,
    surrogates: np.ndarray,
    masked: np.ndarray,
    result: object,
) -> xr.Dataset:
    from errsig import stats

    if by == "area":
        rows = "area"
        coords = {"area": np.unique(counts["area"].values.astype(str))}
    else:
        rows = "unit"
        coords = {"unit": counts["unit"].values}
        if "area" in counts.coords:
            coords["area"] = ("unit", counts["area"].values)
    coords["time"] = counts["time"].values
    dims = (rows, "time")
    null_mean, null_std = _null_moments(surrogates)
    uncorrected = stats.permutation_pvalues(observed, surrogates)

    dataset = xr.Dataset(
        {
            "mi": (
                dims,
                observed,
                {"units": "bits", "long_name": "mutual information"},
            ),
            "p": (dims, result.p, {"long_name": "corrected p-value"}),
            "significant": (dims, result.significant),
            "p_uncorrected": (dims, uncorrected),
            "null_mean": (dims, null_mean, {"units": "bits"}),
            "null_std": (dims, null_std, {"units": "bits"}),
            "masked": (dims, masked),
        },
        coords=coords,
    )
    dataset["onset_latency"] = stats.onset_latency(dataset["significant"])
    dataset["onset_latency"].attrs.update(
        units="s", long_name="first significant time bin"
    )
    return dataset


def _null_moments(surrogates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of each test's surrogates, rows in chunks.

    ``nanstd`` makes several copies of what it is given; given a few rows at a
    time it never copies the whole (n_draws, rows, time) array.
    """
    n_draws, n_rows = surrogates.shape[:2]
    row_bytes = 8 * n_draws * int(np.prod(surrogates.shape[2:]))
    per_chunk = max(1, UNIT_CHUNK_BYTES // max(row_bytes, 1))
    mean = np.empty(surrogates.shape[1:])
    std = np.empty(surrogates.shape[1:])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN masked tests
        for first in range(0, n_rows, per_chunk):
            rows = surrogates[:, first : first + per_chunk]
            mean[first : first + per_chunk] = np.nanmean(rows, axis=0)
            std[first : first + per_chunk] = np.nanstd(rows, axis=0)
    return mean, std


def _estimate(
    counts: xr.DataArray,
    target: _TrialVariable,
    given: _TrialVariable | None,
    estimator: dict,
    rng: np.random.Generator,
    progress: bool,
) -> tuple[np.ndarray, np.ndarray, int | None]:
    """MI of every draw of the target: ``(n_draws, rows, time)``, masked, PCs."""
    method, ties = estimator["method"], estimator["ties"]
    if method == "gcmi" and estimator["by"] is None:
        return (*_gcmi_units(counts, target, given, ties, rng, progress), None)
    if method == "gcmi":
        return _gcmi_areas(counts, target, given, ties, rng, progress)
    if method == "binned":
        return (*_binned_units(counts, target, estimator["bias"], progress), None)
    return (*_ksg_units(counts, target, estimator["k"], rng, progress), None)


def _bootstrap_onsets(
    counts: xr.DataArray,
    target: _TrialVariable,
    given: _TrialVariable | None,
    estimator: dict,
    test: dict,
    rng: np.random.Generator,
) -> np.ndarray:
    """Onset latency of each row in each trial bootstrap, ``(n_boot, rows)``.

    Each bootstrap resamples the trials of the activity and of every draw of
    the target (observed and the first :data:`BOOTSTRAP_SURROGATES`
    surrogates) alike and repeats the test: repeated trials inflate the MI of
    the data and of the surrogates in the same way, so the test stays fair.
    """
    from errsig import stats

    n_trials = counts.sizes["trial"]
    n_draws = min(len(target.values), BOOTSTRAP_SURROGATES + 1)
    time = counts["time"].values
    tie_stream, resample_stream = rng.spawn(2)
    onsets = []
    for _ in range(test["n_boot"]):
        trials = resample_stream.integers(0, n_trials, n_trials)
        resampled_target = _TrialVariable(
            target.name, target.values[:n_draws, trials], target.discrete
        )
        resampled_given = (
            None
            if given is None
            else _TrialVariable(given.name, given.values[:n_draws, trials], False)
        )
        draws, _, _ = _estimate(
            counts.isel(trial=trials),
            resampled_target,
            resampled_given,
            estimator,
            tie_stream,
            False,
        )
        result = _test(draws[0], draws[1:], test["correction"], test["alpha"])
        onsets.append(stats.onset_latency(result.significant, time))
    return np.array(onsets)


def _add_onset_intervals(dataset: xr.Dataset, onsets: np.ndarray) -> xr.Dataset:
    """Add the central 95 % of the bootstrap onsets, and how often one exists."""
    rows = dataset["onset_latency"].dims
    detected = np.isfinite(onsets)
    # A bootstrap without an onset counts as later than every bin of the window.
    later_than_window = np.where(detected, onsets, np.inf)
    low = np.quantile(later_than_window, 0.025, axis=0, method="lower")
    high = np.quantile(later_than_window, 0.975, axis=0, method="higher")
    low, high = (np.where(np.isinf(bound), np.nan, bound) for bound in (low, high))
    attrs = {"units": "s"}
    return dataset.assign(
        onset_latency_low=(rows, low, {**attrs, "long_name": "2.5 % bootstrap"}),
        onset_latency_high=(rows, high, {**attrs, "long_name": "97.5 % bootstrap"}),
        onset_detected=(
            rows,
            detected.mean(axis=0),
            {"long_name": "fraction of bootstraps with an onset"},
        ),
    )


def _bias_label(method: str, bias: str) -> str:
    if method == "gcmi":
        return "analytic Gaussian entropy bias (Ince et al. 2017)"
    if method == "binned":
        return bias
    return "none (KSG is nearly unbiased at small k)"
