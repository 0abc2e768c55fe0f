"""Cosine tuning per unit per window of trials, and its change across blocks."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
import xarray as xr
from numpy.lib.stride_tricks import sliding_window_view

from errsig._exceptions import ErrsigError
from errsig._validation import check_positive_int, check_rng
from errsig.tuning._design import (
    block_labels,
    check_dataset,
    cosine_design,
    epoch_counts,
    require_trials,
    unit_chunks,
    wrap_angle,
)
from errsig.tuning._filter import track_tuning
from errsig.tuning._irls import fit_poisson_glm

__all__ = ["tuning_drift"]

#: Two-sided 95% normal quantile for Wald intervals.
Z_95 = 1.959963984540054

#: Bytes of float64 work arrays one chunk of units may hold. Every fit is one
#: unit's, so the units are fitted a chunk at a time and the peak memory beyond
#: the results does not grow with the number of units.
WORK_BYTES = 128 * 2**20

#: Floats per unit and window that a window fit and its summary hold.
WINDOW_FIT_FLOATS = 64

#: Floats per unit and trial that the adaptive filter and smoother hold: the
#: filtered (then smoothed) states, the predictions and the summary.
FILTER_FLOATS = 40


def tuning_drift(
    ds: xr.Dataset,
    *,
    window: int = 40,
    step: int = 5,
    method: Literal["glm", "filter"] = "glm",
    covariates: Sequence[str] | None = None,
    epoch: tuple[float, float] | None = None,
    n_boot: int = 200,
    interval: Literal["wald", "bootstrap"] = "wald",
    rng: int | np.random.Generator | None = None,
) -> xr.Dataset:
    """Track every unit's cosine tuning to reach direction across trials.

    Each unit's spike count in ``epoch`` on trial ``n`` is modelled as Poisson with
    ``log λ = b0 + b1 cos θ_n + b2 sin θ_n (+ covariates)``, θ the target angle.
    The preferred direction is ``atan2(b2, b1)`` and the depth ``sqrt(b1² + b2²)``.

    Parameters
    ----------
    ds : xarray.Dataset
        Output of :func:`errsig.bin_trials`, with ``target_angle`` on trial (and
        ``phase`` for the block comparisons).
    window : int, default=40
        Trials per window (``method="glm"``); with ``method="filter"``, the trials
        used for the filter's starting estimate.
    step : int, default=5
        Trials between the starts of consecutive windows.
    method : {"glm", "filter"}, default="glm"
        ``"glm"`` fits a Poisson GLM per unit per window, all at once by batched
        IRLS. ``"filter"`` tracks the coefficients trial by trial with a
        point-process adaptive filter and a fixed-interval smoother (Eden et al.
        2004) whose process noise is fitted by maximum likelihood.
    covariates : sequence of str, optional
        Extra terms, each a trial variable of ``ds`` or one of ``"speed"``,
        ``"velocity_x"``, ``"velocity_y"`` (from ``kinematics``), ``"force"``,
        ``"force_x"``, ``"force_y"`` (from ``force``), averaged over ``epoch``
        and standardised. Adding speed and force guards against "tuning changes"
        that are the load or the speed changing (Perich & Miller 2017).
    epoch : tuple of float, optional
        ``(start, stop)`` in seconds relative to the alignment event of ``ds``;
        counts in bins whose centres fall in it are summed. The default takes
        every bin of ``ds``, so bin around the event you mean: for movement
        tuning, ``bin_trials(session, align="move_onset_time", window=(-0.1,
        0.4))``.
    n_boot : int, default=200
        Bootstrap resamples (trials drawn with replacement) for the block
        comparisons, and for the window intervals when ``interval="bootstrap"``.
    interval : {"wald", "bootstrap"}, default="wald"
        How the window intervals (``preferred_direction_low`` ...) are made: from
        the Wald covariance by the delta method, or as bootstrap percentiles.
    rng : None, int or numpy.random.Generator
        Seed of the bootstrap.

    Returns
    -------
    xarray.Dataset
        With ``method="glm"``, dimensions ``unit``, ``window``, ``term`` and
        ``block``:

        - ``preferred_direction``, ``depth``, ``baseline`` (unit, window) with
          ``_low``/``_high`` 95% bounds; ``coef`` and ``coef_se`` (unit, window,
          term); ``converged`` and ``n_iter`` (unit, window). Fits that did not
          converge (a silent unit, a direction with no spikes) are NaN and
          flagged, never dropped.
        - coordinates ``window_start``/``window_stop`` (trial positions, stop
          exclusive) and ``window_centre``.
        - per block (``baseline``, ``force_field_1..3``, ``washout_1..3`` from the
          ``phase`` coordinate): ``block_preferred_direction``, ``block_depth``
          (with bootstrap ``_low``/``_high``), ``block_pd_change`` (relative to
          baseline, with ``_low``/``_high``), ``block_p_change`` (two-sided
          bootstrap test of zero change) and ``block_converged``.

        Both methods keep what was fitted: ``epoch_counts`` (unit, trial), the
        summed counts, and ``design`` (trial, term), the design matrix.

        With ``method="filter"`` the window dimension is replaced by ``trial``,
        ``process_noise`` (unit) gives the fitted per-trial variance of the
        tuning coefficients (``baseline_process_noise`` for the baseline term),
        and ``predicted_coef`` (unit, trial, term) the causal one-step
        prediction of each trial's coefficients from the trials before it.

    Raises
    ------
    ErrsigError
        If an argument is invalid.
    ColumnError
        If ``counts``, ``target_angle`` or a covariate is missing.
    InsufficientDataError
        If the dataset has fewer trials than one window.

    See Also
    --------
    reward_coupling : does the change follow reward or the signed error?

    Notes
    -----
    ``depth`` is the modulation of the *log* rate: the rate swings by a factor
    ``exp(±depth)`` around ``exp(baseline)``. Intervals are 95%. The preferred
    direction is undefined when the depth is near zero; its interval is then
    wide and should be read as such (Stevenson et al. 2011). Overlapping windows
    share trials, so neighbouring windows are not independent estimates.

    The bootstrap of the blocks resamples trials within each block; the change
    relative to baseline combines independent resamples of both blocks, and its
    p-value is twice the smaller tail beyond zero, ``(1 + k) / (1 + B)``. It
    costs units × blocks × ``n_boot`` GLM fits (500 units, 7 blocks and 200
    resamples take minutes, where the windows take seconds); ``n_boot=0``
    skips it.

    References
    ----------
    Eden, U. T., Frank, L. M., Barbieri, R., Solo, V., & Brown, E. N. (2004).
    Dynamic analysis of neural encoding by point process adaptive filtering.
    Neural Computation, 16, 971–998.

    Perich, M. G., & Miller, L. E. (2017). Altered tuning in primary motor cortex
    does not account for behavioral adaptation during force field learning.
    Experimental Brain Research, 235, 2689–2704.

    Examples
    --------
    >>> import numpy as np
    >>> import xarray as xr
    >>> from errsig import tuning_drift
    >>> rng = np.random.default_rng(0)
    >>> angle = rng.choice(np.arange(8) * np.pi / 4, 120)
    >>> rate = np.exp(1.5 + 0.8 * np.cos(angle - np.pi / 2))
    >>> counts = rng.poisson(rate)[:, None, None]
    >>> ds = xr.Dataset(
    ...     {"counts": (("trial", "unit", "time"), counts)},
    ...     coords={"target_angle": ("trial", angle), "time": [0.0]},
    ... )
    >>> drift = tuning_drift(ds, window=60, step=30, n_boot=0, rng=0)
    >>> np.degrees(drift["preferred_direction"].values).round(-1)
    array([[90., 90., 90.]])
    """
    ds = check_dataset(ds)
    window = check_positive_int(window, "window", minimum=4)
    step = check_positive_int(step, "step")
    n_boot = check_positive_int(n_boot, "n_boot", minimum=0)
    if method not in ("glm", "filter"):
        raise ErrsigError(f"`method` must be 'glm' or 'filter'; got {method!r}.")
    if interval not in ("wald", "bootstrap"):
        raise ErrsigError(
            f"`interval` must be 'wald' or 'bootstrap'; got {interval!r}."
        )
    if interval == "bootstrap" and n_boot < 20:
        raise ErrsigError(
            f"`interval`='bootstrap' needs `n_boot` of at least 20; got {n_boot}."
        )
    seed = rng if isinstance(rng, int) else None
    window_rng, block_rng = check_rng(rng).spawn(2)

    counts, used_epoch = epoch_counts(ds, epoch)
    design, terms = cosine_design(ds, covariates, used_epoch)
    n_trials = design.shape[0]
    require_trials(n_trials, max(window, design.shape[1] + 2), "tuning_drift")

    if method == "glm":
        result = _window_fits(
            counts, design, window, step, n_boot, interval, window_rng
        )
    else:
        result = _filter_fits(counts, design, window)
    result = result.assign_coords(
        unit=ds["unit"].values if "unit" in ds.coords else np.arange(counts.shape[0]),
        term=terms,
    )
    if "area" in ds.coords:
        result = result.assign_coords(area=("unit", ds["area"].values))
    # What was fitted, so that reward_coupling needs only the behaviour of ds.
    result["epoch_counts"] = (("unit", "trial"), counts)
    result["design"] = (("trial", "term"), design)
    trial_labels = ds["trial"].values if "trial" in ds.coords else np.arange(n_trials)
    result = result.assign_coords(
        trial=trial_labels, trial_position=("trial", np.arange(n_trials))
    )
    if "phase" in ds.coords or "phase" in ds:
        blocks = _block_fits(
            counts, design, np.asarray(ds["phase"].values), n_boot, block_rng
        )
        result = xr.merge([result, blocks.assign_coords(unit=result["unit"])])

    result.attrs.update(
        method=method,
        window=window,
        step=step,
        epoch_start=used_epoch[0],
        epoch_stop=used_epoch[1],
        epoch_all_bins=int(epoch is None),
        align=str(ds.attrs.get("align", "")),
        covariates=list(terms[3:]),
        n_boot=n_boot,
        interval=interval if method == "glm" else "smoother",
        seed="None" if seed is None else seed,
        depth_units="log-rate modulation (rate varies by exp(±depth))",
        angle_units="radians, 0 = +x, counter-clockwise",
        source=str(ds.attrs.get("source", "")),
        session_id=str(ds.attrs.get("session_id", "")),
    )
    return result


def tuning_summary(coef: np.ndarray, cov: np.ndarray) -> dict[str, np.ndarray]:
    """Preferred direction and depth with delta-method 95% intervals.

    Parameters
    ----------
    coef : numpy.ndarray
        Coefficients ``(..., p)`` with the cos and sin terms at positions 1, 2.
    cov : numpy.ndarray
        Covariances ``(..., p, p)``.

    Returns
    -------
    dict of str to numpy.ndarray
    """
    b1, b2 = coef[..., 1], coef[..., 2]
    v11, v22, v12 = cov[..., 1, 1], cov[..., 2, 2], cov[..., 1, 2]
    depth = np.hypot(b1, b2)
    direction = np.arctan2(b2, b1)
    with np.errstate(divide="ignore", invalid="ignore"):
        depth_se = np.sqrt(b1**2 * v11 + b2**2 * v22 + 2 * b1 * b2 * v12) / depth
        direction_se = np.sqrt(b2**2 * v11 + b1**2 * v22 - 2 * b1 * b2 * v12) / depth**2
    direction_half = np.minimum(Z_95 * direction_se, np.pi)
    return {
        "preferred_direction": direction,
        "preferred_direction_low": direction - direction_half,
        "preferred_direction_high": direction + direction_half,
        "depth": depth,
        "depth_low": np.maximum(depth - Z_95 * depth_se, 0.0),
        "depth_high": depth + Z_95 * depth_se,
        "baseline": coef[..., 0],
        "baseline_low": coef[..., 0] - Z_95 * np.sqrt(cov[..., 0, 0]),
        "baseline_high": coef[..., 0] + Z_95 * np.sqrt(cov[..., 0, 0]),
    }


def _window_fits(
    counts: np.ndarray,
    design: np.ndarray,
    window: int,
    step: int,
    n_boot: int,
    interval: str,
    rng: np.random.Generator,
) -> xr.Dataset:
    n_units, n_trials = counts.shape
    starts = np.arange(0, n_trials - window + 1, step)
    trial_of = starts[:, None] + np.arange(window)
    n_windows, n_terms = len(starts), design.shape[1]
    window_design = design[trial_of]
    # (window, unit, trial of the window): a view, no copy of the counts.
    window_counts = sliding_window_view(counts, window, axis=1)[:, ::step]
    window_counts = window_counts.transpose(1, 0, 2)

    unit_bytes = 8 * n_windows * WINDOW_FIT_FLOATS
    multiplicity = boot_design = None
    if interval == "bootstrap":
        # Drawn once for every unit, so the draws do not depend on the chunks.
        multiplicity = _bootstrap_weights(window, (n_windows, n_boot), rng)
        boot_design = window_design[np.repeat(np.arange(n_windows), n_boot)]
        unit_bytes += 8 * n_windows * n_boot * (2 * window + n_terms**2 + 16)

    def fit_chunk(units: slice) -> dict[str, np.ndarray]:
        fit = fit_poisson_glm(window_design, window_counts[:, units])
        arrays = tuning_summary(fit.coef, fit.cov)
        if multiplicity is not None:
            arrays.update(
                _bootstrap_windows(
                    window_counts[:, units], boot_design, fit, multiplicity
                )
            )
        arrays["coef"] = fit.coef
        arrays["coef_se"] = np.sqrt(np.diagonal(fit.cov, axis1=-2, axis2=-1))
        arrays["coef_cov"] = fit.cov
        arrays["converged"] = fit.converged
        arrays["n_iter"] = fit.n_iter
        arrays["dispersion"] = fit.dispersion
        return arrays

    arrays = _by_unit_chunks(n_units, unit_bytes, fit_chunk, unit_axis=1)
    dims = ("window", "unit", "term", "term_")
    result = xr.Dataset(
        {name: (dims[: values.ndim], values) for name, values in arrays.items()},
        coords={
            "window": np.arange(len(starts)),
            "window_start": ("window", starts),
            "window_stop": ("window", starts + window),
            "window_centre": ("window", starts + (window - 1) / 2),
        },
    )
    result["preferred_direction"].attrs.update(units="rad")
    return result.transpose("unit", "window", ...)


def _by_unit_chunks(
    n_units: int,
    unit_bytes: int,
    compute: Callable[[slice], dict[str, np.ndarray]],
    *,
    unit_axis: int,
) -> dict[str, np.ndarray]:
    """Run ``compute`` on chunks of units and gather its arrays.

    Parameters
    ----------
    n_units : int
        Number of units.
    unit_bytes : int
        Bytes of work arrays ``compute`` needs per unit; chunks hold at most
        :data:`WORK_BYTES` of them.
    compute : callable
        Takes a slice of units, returns named arrays with that many units along
        ``unit_axis``.
    unit_axis : int
        Axis of the units in every array.

    Returns
    -------
    dict of str to numpy.ndarray
        The arrays of every unit, in the order ``compute`` names them.
    """
    chunks = unit_chunks(n_units, unit_bytes, WORK_BYTES)
    if len(chunks) == 1:
        return compute(chunks[0])
    gathered = {}
    for units in chunks:
        for name, values in compute(units).items():
            if name not in gathered:
                shape = list(values.shape)
                shape[unit_axis] = n_units
                gathered[name] = np.empty(shape, dtype=values.dtype)
            index = [slice(None)] * values.ndim
            index[unit_axis] = units
            gathered[name][tuple(index)] = values
    return gathered


def _bootstrap_windows(
    window_counts: np.ndarray,
    boot_design: np.ndarray,
    fit,
    multiplicity: np.ndarray,
) -> dict[str, np.ndarray]:
    """Bootstrap intervals of some units' window fits.

    ``window_counts`` (window, unit, trial of the window) are the units' counts,
    ``boot_design`` the design of every window repeated once per resample and
    ``multiplicity`` (window, resample, trial of the window) the resamples.
    """
    n_windows, n_boot, window = multiplicity.shape
    groups = np.repeat(np.arange(n_windows), n_boot)
    boot = fit_poisson_glm(
        boot_design,
        window_counts[groups],
        multiplicity.reshape(n_windows * n_boot, 1, window),
    )
    n_units = window_counts.shape[1]
    coef = boot.coef.reshape(n_windows, n_boot, n_units, -1)
    direction = np.arctan2(coef[..., 2], coef[..., 1])
    depth = np.hypot(coef[..., 1], coef[..., 2])
    centre = np.arctan2(fit.coef[..., 2], fit.coef[..., 1])[:, None]
    low, high = _circular_percentiles(direction, centre, axis=1)
    return {
        "preferred_direction_low": low,
        "preferred_direction_high": high,
        "depth_low": _nan_percentile(depth, 2.5, axis=1),
        "depth_high": _nan_percentile(depth, 97.5, axis=1),
    }


def _bootstrap_weights(
    n_obs: int, shape: tuple[int, ...], rng: np.random.Generator
) -> np.ndarray:
    """Multiplicities of ``n_obs`` items drawn with replacement, per resample."""
    draws = rng.integers(0, n_obs, size=(*shape, n_obs))
    flat = draws.reshape(-1, n_obs) + n_obs * np.arange(int(np.prod(shape)))[:, None]
    return (
        np.bincount(flat.ravel(), minlength=flat.shape[0] * n_obs)
        .reshape(*shape, n_obs)
        .astype(np.float64)
    )


def _circular_percentiles(
    angles: np.ndarray, centre: np.ndarray, axis: int
) -> tuple[np.ndarray, np.ndarray]:
    """2.5 and 97.5 percentiles of angles unwrapped around ``centre``."""
    unwrapped = centre + wrap_angle(angles - centre)
    return (
        _nan_percentile(unwrapped, 2.5, axis=axis),
        _nan_percentile(unwrapped, 97.5, axis=axis),
    )


def _nan_percentile(values: np.ndarray, q: float, axis: int) -> np.ndarray:
    """Percentile ignoring NaN; NaN, silently, where every resample failed.

    A unit whose bootstrap fits all failed to converge (a silent unit in a
    window, say) has no interval; its NaN bounds say so, and numpy's
    "All-NaN slice" warning would only repeat it.
    """
    with warnings.catch_warnings(), np.errstate(invalid="ignore"):
        warnings.filterwarnings(
            "ignore", message="All-NaN slice encountered", category=RuntimeWarning
        )
        return np.nanpercentile(values, q, axis=axis)


def _block_fits(
    counts: np.ndarray,
    design: np.ndarray,
    phase: np.ndarray,
    n_boot: int,
    rng: np.random.Generator,
) -> xr.Dataset:
    names, positions = block_labels(phase)
    n_units, n_trials = counts.shape
    n_blocks, n_terms = len(names), design.shape[1]
    fitted = [trials.size >= n_terms + 2 for trials in positions]
    # Drawn once for every unit, so the draws do not depend on the chunks.
    block_rngs = rng.spawn(max(n_blocks, 1))
    weights = [
        _bootstrap_weights(trials.size, (n_boot,), block_rng)
        if n_boot and is_fitted
        else None
        for trials, is_fitted, block_rng in zip(
            positions, fitted, block_rngs[:n_blocks], strict=True
        )
    ]
    with_changes = bool(n_boot and names and names[0] == "baseline")
    unit_bytes = 8 * (n_trials + n_boot * (n_terms**2 + n_terms + 8 + 12 * n_blocks))

    def fit_chunk(units: slice) -> dict[str, np.ndarray]:
        return _block_chunk(
            counts[units], design, positions, weights, n_boot, with_changes
        )

    arrays = _by_unit_chunks(n_units, unit_bytes, fit_chunk, unit_axis=1)
    result = xr.Dataset(
        {name: (("block", "unit"), values) for name, values in arrays.items()},
        coords={
            "block": names,
            "block_n_trials": ("block", [len(trials) for trials in positions]),
        },
    )
    return result.transpose("unit", "block")


def _block_chunk(
    counts: np.ndarray,
    design: np.ndarray,
    positions: list[np.ndarray],
    weights: list[np.ndarray | None],
    n_boot: int,
    with_changes: bool,
) -> dict[str, np.ndarray]:
    """Block fits, bootstrap intervals and changes of some units' counts (U, T).

    ``weights`` holds each block's bootstrap multiplicities (resample, trial),
    or None for a block with too few trials to fit.
    """
    n_units = counts.shape[0]
    n_blocks = len(positions)
    estimate = np.full((n_blocks, n_units, 2), np.nan)
    boot_direction = np.full((n_blocks, n_boot, n_units), np.nan)
    boot_depth = np.full((n_blocks, n_boot, n_units), np.nan)
    converged = np.zeros((n_blocks, n_units), dtype=bool)
    for index, trials in enumerate(positions):
        if trials.size < design.shape[1] + 2:
            continue
        block_design = design[trials][None]
        block_counts = counts[:, trials][None]
        fit = fit_poisson_glm(block_design, block_counts)
        coef = fit.coef[0]
        estimate[index] = np.c_[
            np.arctan2(coef[:, 2], coef[:, 1]), np.hypot(coef[:, 1], coef[:, 2])
        ]
        converged[index] = fit.converged[0]
        if n_boot:
            boot = fit_poisson_glm(
                np.broadcast_to(block_design, (n_boot, *block_design.shape[1:])),
                block_counts,
                weights[index][:, None, :],
            )
            boot_direction[index] = np.arctan2(boot.coef[..., 2], boot.coef[..., 1])
            boot_depth[index] = np.hypot(boot.coef[..., 1], boot.coef[..., 2])

    direction, depth = estimate[..., 0], estimate[..., 1]
    data = {
        "block_preferred_direction": direction,
        "block_depth": depth,
        "block_converged": converged,
    }
    if n_boot:
        low, high = _circular_percentiles(boot_direction, direction[:, None], axis=1)
        data["block_preferred_direction_low"] = low
        data["block_preferred_direction_high"] = high
        data["block_depth_low"] = _nan_percentile(boot_depth, 2.5, axis=1)
        data["block_depth_high"] = _nan_percentile(boot_depth, 97.5, axis=1)
    if with_changes:
        data.update(_block_changes(direction, boot_direction))
    return data


def _block_changes(
    direction: np.ndarray, boot_direction: np.ndarray
) -> dict[str, np.ndarray]:
    """Bootstrap change in preferred direction of each block from baseline."""
    change = wrap_angle(direction - direction[:1])
    boot_change = wrap_angle(boot_direction - boot_direction[:1])
    unwrapped = change[:, None] + wrap_angle(boot_change - change[:, None])
    valid = np.isfinite(unwrapped)
    n_valid = valid.sum(axis=1)
    below = (valid & (unwrapped <= 0)).sum(axis=1)
    above = (valid & (unwrapped >= 0)).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        p_value = np.minimum(1.0, 2 * (1 + np.minimum(below, above)) / (1 + n_valid))
        low = _nan_percentile(unwrapped, 2.5, axis=1)
        high = _nan_percentile(unwrapped, 97.5, axis=1)
    p_value = np.where(np.isfinite(change) & (n_valid > 0), p_value, np.nan)
    p_value[0] = np.nan
    return {
        "block_pd_change": change,
        "block_pd_change_low": low,
        "block_pd_change_high": high,
        "block_p_change": p_value,
    }


def _filter_fits(counts: np.ndarray, design: np.ndarray, window: int) -> xr.Dataset:
    n_units, n_trials = counts.shape

    def track_chunk(units: slice) -> dict[str, np.ndarray]:
        start = fit_poisson_glm(design[None, :window], counts[None, units, :window])
        session = fit_poisson_glm(design[None], counts[None, units])
        track = track_tuning(
            design,
            counts[units],
            start_coef=start.coef[0],
            start_cov=start.cov[0],
            fallback_coef=session.coef[0],
        )
        arrays = tuning_summary(track.coef, track.cov)
        arrays["coef"] = track.coef
        arrays["coef_se"] = np.sqrt(np.diagonal(track.cov, axis1=-2, axis2=-1))
        arrays["predicted_coef"] = track.predicted_coef
        arrays["process_noise"] = track.process_noise
        arrays["baseline_process_noise"] = track.baseline_process_noise
        arrays["log_likelihood"] = track.log_likelihood
        arrays["converged"] = track.converged
        return arrays

    arrays = _by_unit_chunks(
        n_units, 8 * n_trials * FILTER_FLOATS, track_chunk, unit_axis=0
    )
    dims = ("unit", "trial", "term")
    return xr.Dataset(
        {name: (dims[: values.ndim], values) for name, values in arrays.items()}
    )
