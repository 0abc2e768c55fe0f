"""Small descriptive summaries of a session that figures and reports draw from.

The analyses answer questions; these functions only describe the data (the error
and reward per trial, mean firing split by outcome or by error direction, spike
rasters of a few units) in result datasets, so that a results file is enough to
redraw every figure without the raw recording.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from errsig._exceptions import ColumnError
from errsig.session import Session

__all__ = [
    "ERROR_DIRECTIONS",
    "error_components",
    "example_rasters",
    "summarize_behavior",
    "summarize_psth",
]

#: Number of sectors the error direction is split into for PSTHs.
ERROR_DIRECTIONS = 4


def error_components(ds: xr.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Split the shown error into its lateral and along-reach components.

    Parameters
    ----------
    ds : xarray.Dataset
        A trial-aligned dataset with ``error`` (trial, component) and the trial
        coordinate ``target_angle`` (radians).

    Returns
    -------
    lateral : numpy.ndarray
        Component perpendicular to the reach, positive to the left of the reach
        direction (counter-clockwise), metres, shape ``(n_trials,)``.
    along : numpy.ndarray
        Component along the reach direction (positive = overshoot), metres.

    Examples
    --------
    >>> import numpy as np
    >>> import xarray as xr
    >>> from errsig.summary import error_components
    >>> ds = xr.Dataset(
    ...     {"error": (("trial", "component"), [[0.0, 0.01]])},
    ...     coords={"target_angle": ("trial", [0.0])},
    ... )
    >>> lateral, along = error_components(ds)
    >>> float(lateral[0]), float(along[0])
    (0.01, 0.0)
    """
    for name in ("error", "target_angle"):
        if name not in ds.variables:
            raise ColumnError(
                f"the dataset has no {name!r}; the error components need the "
                "trial columns error_x, error_y and target_angle."
            )
    error = ds["error"].transpose("trial", "component").to_numpy()
    angle = ds["target_angle"].to_numpy().astype(np.float64)
    cos, sin = np.cos(angle), np.sin(angle)
    along = error[:, 0] * cos + error[:, 1] * sin
    lateral = -error[:, 0] * sin + error[:, 1] * cos
    return lateral, along


def summarize_behavior(
    ds: xr.Dataset, fitted_lateral: np.ndarray | None = None
) -> xr.Dataset:
    """Collect the per-trial behaviour a figure of learning needs.

    Parameters
    ----------
    ds : xarray.Dataset
        The trial-aligned dataset.
    fitted_lateral : numpy.ndarray, optional
        The lateral error predicted by a fitted adaptation model, one value per
        trial.

    Returns
    -------
    xarray.Dataset
        ``lateral_error`` and ``along_error`` (trial, metres) where the error
        exists, ``fitted_lateral_error`` when given, and the trial coordinates
        ``reward``, ``phase``, ``target_angle`` and ``trial_index``.

    Examples
    --------
    >>> import numpy as np
    >>> import xarray as xr
    >>> from errsig.summary import summarize_behavior
    >>> ds = xr.Dataset(
    ...     {"error": (("trial", "component"), np.zeros((3, 2)))},
    ...     coords={"target_angle": ("trial", [0.0, 1.0, 2.0]),
    ...             "trial_index": ("trial", [0, 1, 2])},
    ... )
    >>> summarize_behavior(ds)["lateral_error"].shape
    (3,)
    """
    keep = [
        c for c in ("reward", "phase", "target_angle", "trial_index") if c in ds.coords
    ]
    summary = xr.Dataset(coords={name: ds[name] for name in ["trial", *keep]})
    if "error" in ds and "target_angle" in ds.coords:
        lateral, along = error_components(ds)
        summary["lateral_error"] = ("trial", lateral, {"units": "m"})
        summary["along_error"] = ("trial", along, {"units": "m"})
    if fitted_lateral is not None:
        summary["fitted_lateral_error"] = (
            "trial",
            np.asarray(fitted_lateral),
            {"units": "m"},
        )
    return summary


#: Bytes of float64 rates :func:`summarize_psth` holds at a time.
RATE_CHUNK_BYTES = 64 * 2**20


def summarize_psth(ds: xr.Dataset) -> xr.Dataset:
    """Mean firing rate of every unit split by outcome and by error direction.

    Parameters
    ----------
    ds : xarray.Dataset
        The trial-aligned dataset.

    Returns
    -------
    xarray.Dataset
        ``rate_by_outcome`` (unit, outcome, time) in spikes/s where ``reward``
        exists, ``rate_by_error_direction`` (unit, error_direction, time) where
        ``error`` exists, with the error direction split into
        :data:`ERROR_DIRECTIONS` sectors centred on 0, 90, 180 and 270 degrees,
        and ``n_trials`` per group.

    Examples
    --------
    >>> import numpy as np
    >>> import xarray as xr
    >>> from errsig.summary import summarize_psth
    >>> ds = xr.Dataset(
    ...     {"counts": (("trial", "unit", "time"), np.ones((4, 1, 2), int))},
    ...     coords={"reward": ("trial", [True, False, True, True]),
    ...             "time": [0.01, 0.03]},
    ...     attrs={"bin_size": 0.02},
    ... )
    >>> summarize_psth(ds)["rate_by_outcome"].sel(outcome="rewarded").values
    array([[50., 50.]])
    """
    counts = ds["counts"].transpose("trial", "unit", "time")
    bin_size = float(ds.attrs["bin_size"])
    summary = xr.Dataset(
        coords={"time": ds["time"]}, attrs={"align": ds.attrs.get("align", "event")}
    )
    if "area" in ds.coords:
        summary = summary.assign_coords(area=ds["area"])

    if "reward" in ds.coords:
        outcome = np.where(
            ds["reward"].to_numpy().astype(bool), "rewarded", "unrewarded"
        )
        grouped = _group_mean(
            counts, bin_size, outcome, ["rewarded", "unrewarded"], "outcome"
        )
        summary["rate_by_outcome"], summary["n_trials_by_outcome"] = grouped

    if "error" in ds:
        error = ds["error"].transpose("trial", "component").to_numpy()
        sector_width = 2 * np.pi / ERROR_DIRECTIONS
        direction = np.arctan2(error[:, 1], error[:, 0])
        sector = (
            np.floor((direction + sector_width / 2) / sector_width) % ERROR_DIRECTIONS
        )
        labels = [
            f"{round(np.degrees(k * sector_width))} deg"
            for k in range(ERROR_DIRECTIONS)
        ]
        names = np.array(labels)[sector.astype(int)]
        grouped = _group_mean(counts, bin_size, names, labels, "error_direction")
        summary["rate_by_error_direction"], summary["n_trials_by_error_direction"] = (
            grouped
        )

    for name in [v for v in summary.data_vars if str(v).startswith("rate_")]:
        summary[name].attrs["units"] = "spikes/s"
    return summary


def example_rasters(
    session: Session,
    ds: xr.Dataset,
    units: list,
) -> xr.Dataset:
    """Spike times of a few units around the alignment event of ``ds``.

    Parameters
    ----------
    session : Session
        The recording ``ds`` was binned from.
    ds : xarray.Dataset
        The trial-aligned dataset; its ``align`` and window attrs are used.
    units : list
        Unit ids to keep.

    Returns
    -------
    xarray.Dataset
        Along a ``spike`` dimension: ``spike_time`` (s, relative to the event),
        ``spike_trial`` (position in ``ds.trial``) and ``spike_unit``; the trial
        coordinates of ``ds`` are kept for splitting the rows.
    """
    events = session.trials.loc[ds["trial"].to_numpy(), ds.attrs["align"]].to_numpy()
    start, stop = ds.attrs["window_start"], ds.attrs["window_stop"]
    times, trials, owners = [], [], []
    for unit in units:
        spikes = session.unit_spike_times(unit)
        low = np.searchsorted(spikes, events + start, side="left")
        high = np.searchsorted(spikes, events + stop, side="right")
        per_trial = high - low
        index = np.concatenate(
            [np.arange(a, b) for a, b in zip(low, high, strict=True)]
        )
        trial_of_spike = np.repeat(np.arange(len(events)), per_trial)
        times.append(spikes[index.astype(np.int64)] - events[trial_of_spike])
        trials.append(trial_of_spike)
        owners.append(np.full(len(trial_of_spike), unit))
    trial_coords = {
        name: ds[name]
        for name in ("reward", "phase", "target_angle", "trial_index")
        if name in ds.coords
    }
    return xr.Dataset(
        {
            "spike_time": ("spike", np.concatenate(times) if times else np.empty(0)),
            "spike_trial": (
                "spike",
                np.concatenate(trials) if trials else np.empty(0, int),
            ),
            "spike_unit": (
                "spike",
                np.concatenate(owners) if owners else np.empty(0, int),
            ),
            "error": ds["error"] if "error" in ds else xr.DataArray(np.nan),
        },
        coords=trial_coords,
        attrs={"align": ds.attrs["align"], "window_start": start, "window_stop": stop},
    )


def _group_mean(
    counts: xr.DataArray,
    bin_size: float,
    labels: np.ndarray,
    order: list[str],
    dim: str,
) -> tuple[xr.DataArray, xr.DataArray]:
    """Mean rate (unit, group, time) of the trials of each label, and their number.

    Units are converted to rates a chunk at a time, so a big session's counts
    (int8 from ``bin_trials(..., dtype="smallest")``) are never all floats.
    """
    values = counts.values
    n_trials, n_units, n_time = values.shape
    means = np.full((n_units, len(order), n_time), np.nan)
    chosen = [labels == label for label in order]
    sizes = np.array([int(rows.sum()) for rows in chosen], dtype=np.int64)
    units_per_chunk = max(1, RATE_CHUNK_BYTES // (8 * n_trials * max(n_time, 1)))

    for first in range(0, n_units, units_per_chunk):
        last = min(first + units_per_chunk, n_units)
        rates = values[:, first:last].astype(np.float64) / bin_size
        for position, rows in enumerate(chosen):
            if sizes[position]:
                means[first:last, position, :] = rates[rows].mean(axis=0)

    mean = xr.DataArray(
        means,
        dims=("unit", dim, "time"),
        coords={"unit": counts["unit"], dim: order, "time": counts["time"]},
    )
    return mean, xr.DataArray(sizes, dims=(dim,), coords={dim: order})
