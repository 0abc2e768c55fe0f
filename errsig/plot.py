"""Figures, each drawn from a result dataset.

Every function takes result datasets (never the raw recording) and an optional
matplotlib ``Axes``, and returns the ``Figure`` it drew on. Colours come from the
Okabe–Ito palette, which stays distinct under the common colour-vision
deficiencies; axes carry labels with units; figures save as vector PDF or PNG.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from matplotlib.axes import Axes
from matplotlib.figure import Figure

__all__ = [
    "PALETTE",
    "plot_behavior",
    "plot_psth",
    "plot_raster",
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
    ax.set_xlabel(f"time from {psth.attrs.get('align', 'event')} (s)")
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
