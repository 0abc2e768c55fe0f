"""Figures, each drawn from a result dataset.

Every function takes result datasets (never the raw recording) and an optional
matplotlib ``Axes``, and returns the ``Figure`` it drew on. Colours come from the
Okabe–Ito palette, which stays distinct under the common colour-vision
deficiencies; axes carry labels with units; figures save as vector PDF or PNG.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr
from matplotlib.axes import Axes
from matplotlib.figure import Figure

__all__ = [
    "PALETTE",
    "plot_behavior",
    "plot_class_proportions",
    "plot_decoding",
    "plot_information",
    "plot_psth",
    "plot_raster",
    "plot_reward_coupling",
    "plot_rules",
    "plot_tuning",
]

#: Okabe & Ito (2008) colour-blind-safe palette.
PALETTE = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "purple": "#CC79A7",
}
_CYCLE = [
    PALETTE[name]
    for name in (
        "blue",
        "vermillion",
        "green",
        "orange",
        "purple",
        "sky_blue",
        "black",
        "yellow",
    )
]
_PHASE_COLOURS = {"baseline": "#FFFFFF", "force_field": "#F2E6D9", "washout": "#E3EEF5"}


def _axes(
    ax: Axes | None, size: tuple[float, float] = (6.0, 3.5)
) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.figure, ax
    figure = Figure(figsize=size, layout="constrained")
    return figure, figure.add_subplot()


def _event_name(result: xr.Dataset, default: str) -> str:
    """Name the alignment event of a result in words ("feedback_time": "feedback")."""
    event = str(result.attrs.get("align", default))
    return event.removesuffix("_time").replace("_", " ")


def _colour(index: int) -> str:
    return _CYCLE[index % len(_CYCLE)]


def _shade_phases(ax: Axes, trial_index: np.ndarray, phase: np.ndarray) -> None:
    """Shade contiguous blocks of the same phase and label them once."""
    if len(phase) == 0:
        return
    changes = np.flatnonzero(phase[1:] != phase[:-1]) + 1
    starts = np.r_[0, changes]
    stops = np.r_[changes, len(phase)]
    labelled = set()
    for start, stop in zip(starts, stops, strict=True):
        name = str(phase[start])
        ax.axvspan(
            trial_index[start] - 0.5,
            trial_index[stop - 1] + 0.5,
            color=_PHASE_COLOURS.get(name, "#EEEEEE"),
            zorder=0,
            label=None if name in labelled else name.replace("_", " "),
        )
        labelled.add(name)


def plot_behavior(behavior: xr.Dataset, *, ax: Axes | None = None) -> Figure:
    """Draw the lateral error per trial, rewards and the fitted adaptation curve.

    Parameters
    ----------
    behavior : xarray.Dataset
        From :func:`errsig.summary.summarize_behavior`: ``lateral_error``
        (trial), optional ``fitted_lateral_error``, and trial coordinates
        ``trial_index``, ``phase``, ``reward``.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure is made when omitted.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> import xarray as xr
    >>> from errsig.plot import plot_behavior
    >>> lateral = np.r_[np.zeros(5), np.exp(-np.arange(10) / 3)]
    >>> behavior = xr.Dataset(
    ...     {"lateral_error": ("trial", lateral)},
    ...     coords={"trial_index": ("trial", np.arange(15)),
    ...             "phase": ("trial", ["baseline"] * 5 + ["force_field"] * 10),
    ...             "reward": ("trial", np.arange(15) % 2 == 0)},
    ... )
    >>> figure = plot_behavior(behavior)
    >>> figure.axes[0].get_ylabel()
    'lateral error (cm)'
    """
    figure, ax = _axes(ax, (7.0, 3.2))
    trial = (
        behavior["trial_index"].to_numpy()
        if "trial_index" in behavior.coords
        else np.arange(behavior.sizes["trial"])
    )
    if "phase" in behavior.coords:
        _shade_phases(ax, trial, behavior["phase"].to_numpy().astype(str))

    lateral_cm = 100 * behavior["lateral_error"].to_numpy()
    ax.plot(
        trial, lateral_cm, ".", color=PALETTE["black"], markersize=3, label="observed"
    )
    if "fitted_lateral_error" in behavior:
        fitted = 100 * behavior["fitted_lateral_error"].to_numpy()
        ax.plot(
            trial,
            fitted,
            color=PALETTE["vermillion"],
            linewidth=1.5,
            label="adaptation model",
        )
    if "reward" in behavior.coords:
        rewarded = behavior["reward"].to_numpy().astype(bool)
        top = (
            np.nanmax(np.abs(lateral_cm)) * 1.1
            if np.isfinite(lateral_cm).any()
            else 1.0
        )
        ax.plot(
            trial[rewarded],
            np.full(rewarded.sum(), top),
            "|",
            color=PALETTE["green"],
            markersize=5,
            label="rewarded",
        )

    ax.axhline(0, color=PALETTE["black"], linewidth=0.5)
    ax.set_xlabel("trial")
    ax.set_ylabel("lateral error (cm)")
    ax.legend(loc="lower right", fontsize="small", frameon=False, ncols=3)
    return figure


def plot_psth(
    psth: xr.Dataset,
    unit: object,
    *,
    split: str = "outcome",
    ax: Axes | None = None,
) -> Figure:
    """Draw one unit's mean firing rate split by outcome or by error direction.

    Parameters
    ----------
    psth : xarray.Dataset
        From :func:`errsig.summary.summarize_psth`.
    unit : object
        The unit id.
    split : {"outcome", "error_direction"}, default="outcome"
        Which grouping of trials to draw.
    ax : matplotlib.axes.Axes, optional
        Where to draw.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> import xarray as xr
    >>> from errsig.plot import plot_psth
    >>> psth = xr.Dataset(
    ...     {"rate_by_outcome": (("unit", "outcome", "time"), np.ones((1, 2, 3)))},
    ...     coords={"unit": [4], "outcome": ["rewarded", "unrewarded"],
    ...             "time": [0.0, 0.1, 0.2]},
    ... )
    >>> plot_psth(psth, 4).axes[0].get_xlabel()
    'time from event (s)'
    """
    name = f"rate_by_{split}"
    if name not in psth:
        available = [
            str(v)[len("rate_by_") :]
            for v in psth.data_vars
            if str(v).startswith("rate_by_")
        ]
        raise ValueError(
            f"`split`={split!r} is not in this PSTH summary; available: {available}."
        )
    figure, ax = _axes(ax, (4.0, 3.0))
    rates = psth[name].sel(unit=unit)
    groups = rates[split].to_numpy()
    for position, group in enumerate(groups):
        ax.plot(
            psth["time"],
            rates.sel({split: group}),
            color=_colour(position),
            label=str(group),
        )
    ax.axvline(0, color=PALETTE["black"], linewidth=0.5, linestyle=":")
    ax.set_xlabel(f"time from {_event_name(psth, 'event')} (s)")
    ax.set_ylabel("firing rate (spikes/s)")
    area = f" ({psth['area'].sel(unit=unit).item()})" if "area" in psth.coords else ""
    ax.set_title(f"unit {unit}{area}", fontsize="medium")
    ax.legend(fontsize="small", frameon=False)
    return figure


def plot_raster(
    rasters: xr.Dataset,
    unit: object,
    *,
    split: str = "outcome",
    ax: Axes | None = None,
) -> Figure:
    """Draw one unit's spikes, one row per trial, grouped by outcome or error.

    Parameters
    ----------
    rasters : xarray.Dataset
        From :func:`errsig.summary.example_rasters`.
    unit : object
        The unit id.
    split : {"outcome", "error_direction"}, default="outcome"
        How to order and colour the rows: rewarded trials first, or by the
        direction of the shown error.
    ax : matplotlib.axes.Axes, optional
        Where to draw.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> import xarray as xr
    >>> from errsig.plot import plot_raster
    >>> rasters = xr.Dataset(
    ...     {"spike_time": ("spike", [0.1, 0.2]), "spike_trial": ("spike", [0, 1]),
    ...      "spike_unit": ("spike", [3, 3])},
    ...     coords={"reward": ("trial", [True, False])},
    ...     attrs={"align": "feedback_time", "window_start": -0.2, "window_stop": 0.8},
    ... )
    >>> plot_raster(rasters, 3).axes[0].get_ylabel()
    'trial (grouped)'
    """
    figure, ax = _axes(ax, (4.0, 3.5))
    n_trials = rasters.sizes.get("trial", int(rasters["spike_trial"].max()) + 1)
    if split == "outcome" and "reward" in rasters.coords:
        key = ~rasters["reward"].to_numpy().astype(bool)
        groups = {"rewarded": ~key, "unrewarded": key}
    elif (
        split == "error_direction" and "error" in rasters and rasters["error"].ndim == 2
    ):
        error = rasters["error"].transpose("trial", "component").to_numpy()
        key = np.arctan2(error[:, 1], error[:, 0])
        groups = {"error direction": np.ones(n_trials, bool)}
    else:
        raise ValueError(
            f"`split`={split!r} needs `reward` or `error` in the rasters dataset."
        )
    row_of_trial = np.argsort(np.argsort(key, kind="stable"), kind="stable")

    mine = rasters["spike_unit"].to_numpy() == unit
    spike_trials = rasters["spike_trial"].to_numpy()[mine]
    spike_times = rasters["spike_time"].to_numpy()[mine]
    for position, (label, members) in enumerate(groups.items()):
        chosen = members[spike_trials]
        ax.vlines(
            spike_times[chosen],
            row_of_trial[spike_trials[chosen]],
            row_of_trial[spike_trials[chosen]] + 0.9,
            color=_colour(position),
            linewidth=0.6,
            label=label,
        )
    ax.axvline(0, color=PALETTE["black"], linewidth=0.5, linestyle=":")
    ax.set_xlim(rasters.attrs["window_start"], rasters.attrs["window_stop"])
    ax.set_ylim(0, n_trials)
    ax.set_xlabel(f"time from {rasters.attrs['align']} (s)")
    ax.set_ylabel("trial (grouped)")
    ax.set_title(f"unit {unit}", fontsize="medium")
    ax.legend(fontsize="small", frameon=False, loc="upper right")
    return figure


def _by_area_over_time(
    ax: Axes,
    values: xr.DataArray,
    significant: xr.DataArray | None,
) -> None:
    """Draw one line per area over time, with dots where significant."""
    for position, area in enumerate(values["area"].to_numpy()):
        line = values.sel(area=area)
        colour = _colour(position)
        ax.plot(values["time"], line, color=colour, label=str(area))
        if significant is not None:
            marks = significant.sel(area=area).to_numpy().astype(bool)
            ax.plot(
                values["time"].to_numpy()[marks],
                line.to_numpy()[marks],
                "o",
                color=colour,
                markersize=4,
            )
    ax.axvline(0, color=PALETTE["black"], linewidth=0.5, linestyle=":")


def plot_information(result: xr.Dataset, *, ax: Axes | None = None) -> Figure:
    """Draw information over time per area, with significance and onset latency.

    Parameters
    ----------
    result : xarray.Dataset
        From :func:`errsig.mutual_information`. With an ``area`` dimension
        (``by="area"``) the population MI of each area is drawn, with each
        area's onset latency (dashed) and its bootstrap interval (shaded, with
        ``n_boot``); per-unit results are drawn as the fraction of each area's
        units with significant information in each bin.
    ax : matplotlib.axes.Axes, optional
        Where to draw.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> import xarray as xr
    >>> from errsig.plot import plot_information
    >>> result = xr.Dataset(
    ...     {"mi": (("area", "time"), [[0.0, 0.2, 0.1]]),
    ...      "significant": (("area", "time"), [[False, True, False]])},
    ...     coords={"area": ["PMd"], "time": [0.0, 0.1, 0.2]},
    ...     attrs={"target": "error"},
    ... )
    >>> plot_information(result).axes[0].get_ylabel()
    'information (bits)'
    """
    figure, ax = _axes(ax)
    target = str(result.attrs.get("target", "target")).replace("_", " ")
    if "area" in result["mi"].dims:
        _by_area_over_time(ax, result["mi"], result.get("significant"))
        ax.set_ylabel("information (bits)")
        if "onset_latency" in result and result["onset_latency"].dims == ("area",):
            _draw_onsets(ax, result)
    else:
        area_of_unit = result["area"] if "area" in result.coords else None
        significant = result["significant"].astype(float)
        if area_of_unit is None:
            fraction = significant.mean("unit").expand_dims(area=["all"])
        else:
            fraction = significant.groupby(area_of_unit).mean("unit")
        _by_area_over_time(ax, fraction.transpose("area", "time"), None)
        ax.set_ylabel("fraction of units with information")
    ax.set_xlabel(f"time from {_event_name(result, 'feedback')} (s)")
    ax.set_title(f"information about {target}", fontsize="medium")
    ax.legend(fontsize="small", frameon=False)
    return figure


def _draw_onsets(ax: Axes, result: xr.Dataset) -> None:
    """Dashed onset latency of each area, over its bootstrap interval if any."""
    half_bin = float(np.diff(result["time"].to_numpy()).min()) / 2
    for position, area in enumerate(result["area"].to_numpy()):
        latency = float(result["onset_latency"].sel(area=area))
        if not np.isfinite(latency):
            continue
        colour = _colour(position)
        ax.axvline(latency, color=colour, linestyle="--", linewidth=0.8)
        if "onset_latency_low" not in result:
            continue
        low = float(result["onset_latency_low"].sel(area=area))
        high = float(result["onset_latency_high"].sel(area=area))
        if np.isfinite(low) and np.isfinite(high):
            # bins, not points: the interval covers its first and last bins
            ax.axvspan(
                low - half_bin, high + half_bin, color=colour, alpha=0.12, linewidth=0
            )


def plot_decoding(result: xr.Dataset, *, ax: Axes | None = None) -> Figure:
    """Draw cross-validated decoding performance over time per area.

    Parameters
    ----------
    result : xarray.Dataset
        From :func:`errsig.decode`, with ``score`` (area, time) and
        ``significant``.
    ax : matplotlib.axes.Axes, optional
        Where to draw.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import xarray as xr
    >>> from errsig.plot import plot_decoding
    >>> result = xr.Dataset(
    ...     {"score": (("area", "time"), [[0.0, 0.3]]),
    ...      "significant": (("area", "time"), [[False, True]])},
    ...     coords={"area": ["M1"], "time": [0.0, 0.1]},
    ...     attrs={"metric": "r2", "target": "error"},
    ... )
    >>> plot_decoding(result).axes[0].get_ylabel()
    'r2 (held out)'
    """
    figure, ax = _axes(ax)
    score, significant = result["score"], result.get("significant")
    extra = [dim for dim in score.dims if dim not in ("area", "time")]
    if extra:
        score = score.isel({dim: 0 for dim in extra})
        significant = (
            None if significant is None else significant.isel({d: 0 for d in extra})
        )
    _by_area_over_time(
        ax,
        score.transpose("area", "time"),
        None if significant is None else significant.transpose("area", "time"),
    )
    metric = str(result.attrs.get("metric", "score")).split(" ")[0]
    chance = (
        0.5 if metric in ("roc_auc", "auc", "balanced_accuracy", "accuracy") else 0.0
    )
    ax.axhline(chance, color=PALETTE["black"], linewidth=0.5)
    ax.set_xlabel(f"time from {_event_name(result, 'feedback')} (s)")
    ax.set_ylabel(f"{metric} (held out)")
    target = str(result.attrs.get("target", "target")).replace("_", " ")
    ax.set_title(f"decoding {target}", fontsize="medium")
    ax.legend(fontsize="small", frameon=False)
    return figure


def plot_tuning(
    drift: xr.Dataset,
    units: Sequence | None = None,
    *,
    ax: Axes | None = None,
) -> Figure:
    """Draw preferred-direction trajectories with their intervals.

    Parameters
    ----------
    drift : xarray.Dataset
        From :func:`errsig.tuning_drift`: ``preferred_direction`` (unit,
        window) with ``_low``/``_high`` bounds and ``window_centre``, or
        (unit, trial) from ``method="filter"``.
    units : sequence, optional
        Unit ids to draw; the first four by default.
    ax : matplotlib.axes.Axes, optional
        Where to draw.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> import xarray as xr
    >>> from errsig.plot import plot_tuning
    >>> pd_ = np.array([[0.1, 0.2, 0.4]])
    >>> drift = xr.Dataset(
    ...     {"preferred_direction": (("unit", "window"), pd_),
    ...      "preferred_direction_low": (("unit", "window"), pd_ - 0.1),
    ...      "preferred_direction_high": (("unit", "window"), pd_ + 0.1)},
    ...     coords={"unit": [7], "window_centre": ("window", [20.0, 25.0, 30.0])},
    ... )
    >>> plot_tuning(drift).axes[0].get_ylabel()
    'preferred direction (deg)'
    """
    figure, ax = _axes(ax)
    units = list(drift["unit"].to_numpy()[:4]) if units is None else list(units)
    by_trial = "trial" in drift["preferred_direction"].dims  # method="filter"
    if by_trial:
        centre = (
            drift["trial_position"].to_numpy()
            if "trial_position" in drift.coords
            else np.arange(drift.sizes["trial"])
        )
    elif "window_centre" in drift.coords:
        centre = drift["window_centre"].to_numpy()
    else:
        centre = drift["window"].to_numpy()
    for position, unit in enumerate(units):
        colour = _colour(position)
        raw = drift["preferred_direction"].sel(unit=unit).to_numpy()
        # Unwrap across the fitted windows only: a NaN (a fit that did not
        # converge) would otherwise turn every later window NaN too.
        fitted = np.isfinite(raw)
        angle = np.full(raw.shape, np.nan)
        angle[fitted] = np.degrees(np.unwrap(raw[fitted]))
        offset = angle - np.degrees(raw)
        ax.plot(centre, angle, color=colour, label=f"unit {unit}")
        if "preferred_direction_low" in drift:
            low = (
                np.degrees(drift["preferred_direction_low"].sel(unit=unit).to_numpy())
                + offset
            )
            high = (
                np.degrees(drift["preferred_direction_high"].sel(unit=unit).to_numpy())
                + offset
            )
            ax.fill_between(centre, low, high, color=colour, alpha=0.2, linewidth=0)
    ax.set_xlabel("trial" if by_trial else "trial (window centre)")
    ax.set_ylabel("preferred direction (deg)")
    ax.legend(fontsize="small", frameon=False)
    return figure


def plot_reward_coupling(coupling: xr.Dataset, *, ax: Axes | None = None) -> Figure:
    """Draw how tuning change follows reward, as a profile over trial lags.

    Parameters
    ----------
    coupling : xarray.Dataset
        From :func:`errsig.reward_coupling`: ``reward_lag_coef`` (unit, lag),
        ``area_of_unit`` and optionally ``area_p_reward_lag_corrected`` (area,
        lag): lags whose p, corrected over the lags by the max-statistic, is
        at most ``attrs["alpha"]`` are starred.
    ax : matplotlib.axes.Axes, optional
        Where to draw.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import xarray as xr
    >>> from errsig.plot import plot_reward_coupling
    >>> coupling = xr.Dataset(
    ...     {"reward_lag_coef": (("unit", "lag"), [[0.0, 0.5, 0.1]])},
    ...     coords={"lag": [-1, 0, 1], "area_of_unit": ("unit", ["M1"])},
    ... )
    >>> plot_reward_coupling(coupling).axes[0].get_xlabel()
    'lag (trials after reward)'
    """
    figure, ax = _axes(ax)
    coefficient = coupling["reward_lag_coef"]
    areas = (
        coupling["area_of_unit"].to_numpy()
        if "area_of_unit" in coupling.coords
        else np.full(coupling.sizes["unit"], "all")
    )
    lags = coupling["lag"].to_numpy()
    for position, area in enumerate(dict.fromkeys(areas.tolist())):
        mean = coefficient.to_numpy()[areas == area].mean(axis=0)
        colour = _colour(position)
        ax.plot(lags, mean, "-o", color=colour, markersize=3, label=str(area))
        corrected = "area_p_reward_lag_corrected"
        if corrected in coupling and area in coupling["area"].to_numpy():
            alpha = float(coupling.attrs.get("alpha", 0.05))
            marks = coupling[corrected].sel(area=area).to_numpy() <= alpha
            ax.plot(lags[marks], mean[marks], "*", color=colour, markersize=10)
    ax.axhline(0, color=PALETTE["black"], linewidth=0.5)
    ax.axvline(0, color=PALETTE["black"], linewidth=0.5, linestyle=":")
    ax.set_xlabel("lag (trials after reward)")
    ax.set_ylabel("tuning change per reward surprise")
    ax.legend(fontsize="small", frameon=False)
    return figure


def _stacked_bars(
    ax: Axes, counts: np.ndarray, areas: Sequence, names: Sequence[str]
) -> None:
    bottom = np.zeros(len(areas))
    for position, name in enumerate(names):
        ax.bar(
            np.arange(len(areas)),
            counts[:, position],
            bottom=bottom,
            color=_colour(position),
            label=name.replace("_", " "),
        )
        bottom += counts[:, position]
    ax.set_xticks(np.arange(len(areas)), [str(a) for a in areas])
    ax.set_xlabel("area")


def plot_rules(coupling: xr.Dataset, *, ax: Axes | None = None) -> Figure:
    """Draw how many units of each area follow each learning rule.

    Parameters
    ----------
    coupling : xarray.Dataset
        From :func:`errsig.reward_coupling`, with ``rule`` (unit) and
        ``area_of_unit``.
    ax : matplotlib.axes.Axes, optional
        Where to draw.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import xarray as xr
    >>> from errsig.plot import plot_rules
    >>> coupling = xr.Dataset(
    ...     {"rule": ("unit", ["stable", "gradient", "stable"])},
    ...     coords={"area_of_unit": ("unit", ["M1", "M1", "PMd"])},
    ... )
    >>> plot_rules(coupling).axes[0].get_ylabel()
    'units'
    """
    figure, ax = _axes(ax, (5.0, 3.5))
    rules = ["gradient", "reward_gated", "random_walk", "stable"]
    areas = list(dict.fromkeys(coupling["area_of_unit"].to_numpy().tolist()))
    unit_rules = coupling["rule"].to_numpy().astype(str)
    unit_areas = coupling["area_of_unit"].to_numpy()
    counts = np.array(
        [[np.sum((unit_areas == a) & (unit_rules == r)) for r in rules] for a in areas]
    )
    _stacked_bars(ax, counts, areas, rules)
    ax.set_ylabel("units")
    ax.set_title("learning rule of each unit's tuning change", fontsize="medium")
    ax.legend(fontsize="small", frameon=False)
    return figure


def plot_class_proportions(
    classification: xr.Dataset, *, ax: Axes | None = None
) -> Figure:
    """Draw the share of each area's units in each class, with 95% intervals.

    Parameters
    ----------
    classification : xarray.Dataset
        From :func:`errsig.classify_units`, with ``area_fraction`` (area,
        label_name) and its ``_low``/``_high`` bounds.
    ax : matplotlib.axes.Axes, optional
        Where to draw.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import xarray as xr
    >>> from errsig.plot import plot_class_proportions
    >>> shares = xr.Dataset(
    ...     {"area_fraction": (("area", "label_name"), [[0.25, 0.75]]),
    ...      "area_fraction_low": (("area", "label_name"), [[0.1, 0.5]]),
    ...      "area_fraction_high": (("area", "label_name"), [[0.5, 0.9]])},
    ...     coords={"area": ["PMd"], "label_name": ["vector_error", "none"]},
    ... )
    >>> plot_class_proportions(shares).axes[0].get_ylabel()
    'fraction of units'
    """
    figure, ax = _axes(ax, (6.0, 3.5))
    fraction = classification["area_fraction"].transpose("area", "label_name")
    names = [str(n) for n in fraction["label_name"].to_numpy()]
    areas = fraction["area"].to_numpy()
    n_labels = len(names)
    width = 0.8 / n_labels
    for position, name in enumerate(names):
        x = np.arange(len(areas)) - 0.4 + width * (position + 0.5)
        share = fraction.sel(label_name=name).to_numpy()
        low = classification["area_fraction_low"].sel(label_name=name).to_numpy()
        high = classification["area_fraction_high"].sel(label_name=name).to_numpy()
        ax.bar(
            x, share, width=width, color=_colour(position), label=name.replace("_", " ")
        )
        ax.errorbar(
            x,
            share,
            yerr=np.clip([share - low, high - share], 0, None),
            fmt="none",
            ecolor=PALETTE["black"],
            linewidth=0.7,
        )
    ax.set_xticks(np.arange(len(areas)), [str(a) for a in areas])
    ax.set_xlabel("area")
    ax.set_ylabel("fraction of units")
    ax.set_ylim(0, 1)
    ax.legend(fontsize="x-small", frameon=False, ncols=2)
    return figure
