"""Trial-aligned binning: from a :class:`~errsig.Session` to an xarray dataset.

The dataset :func:`bin_trials` returns is what every analysis in errsig takes. Its
layout is fixed by the design (``docs/data_model.md``):

- ``counts`` (trial, unit, time): integer spike counts;
- ``error`` (trial, component): the error shown to the subject, metres;
- ``kinematics`` (trial, time, component): hand velocity, m/s, where behaviour
  exists, and ``force`` (trial, time, component) where force was recorded;
- coordinates ``unit``, ``area`` (on unit), ``time`` (bin centres relative to the
  alignment event), ``trial``, and on trial ``reward``, ``target_angle``,
  ``phase``, ``trial_index``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import xarray as xr

from errsig._exceptions import ColumnError, DataRepairWarning, ErrsigError
from errsig.session import BehaviorSeries, Session, _ranges

__all__ = ["bin_trials"]

#: Trial columns carried onto the ``trial`` dimension when present.
TRIAL_COORDINATES = ("reward", "target_angle", "phase")


def bin_trials(
    session: Session,
    align: str = "feedback_time",
    window: tuple[float, float] = (-0.2, 0.8),
    bin_size: float = 0.02,
    *,
    dtype: str | type = "int32",
) -> xr.Dataset:
    """Count spikes in time bins around an event on every trial.

    Parameters
    ----------
    session : Session
        The recording.
    align : str, default="feedback_time"
        Trial column holding the event time (seconds, session clock) the window
        is aligned to. Trials where it is NaN are dropped with a warning.
    window : tuple of float, default=(-0.2, 0.8)
        Start and stop of the window relative to the event, in seconds.
    bin_size : float, default=0.02
        Bin width in seconds; it must divide the window into a whole number of
        bins.
    dtype : {"int32", "smallest"}, default="int32"
        Integer type of ``counts``. ``"smallest"`` stores them in the smallest
        signed type that holds the largest count (int8 when no bin holds more
        than 127 spikes, as with 20-ms bins of single units, else int16 or
        int32): a quarter of the memory of int32 for a big session. Small
        integer types overflow silently in integer arithmetic (``counts ** 2``
        wraps past 127 in int8), so convert with ``.astype(float)`` before
        computing with them; every errsig analysis does.

    Returns
    -------
    xarray.Dataset
        ``counts`` (trial, unit, time) as int32 (or the type ``dtype`` picks),
        ``error`` (trial, component)
        where the trials carry ``error_x``/``error_y``, ``kinematics`` (hand
        velocity) and ``force`` (trial, time, component) where the session has
        that behaviour, and the coordinates described in the module docstring.

    Notes
    -----
    Bins follow :func:`numpy.histogram`: each bin holds spikes ``t`` with
    ``edge[k] <= t < edge[k + 1]``, and the last bin of a trial also holds a
    spike exactly on the window's stop. Absolute edges are the event time plus
    the relative edges, computed once. When trial windows do not overlap (the
    usual case) two binary searches per unit and trial find the spikes inside
    each window, and their bins follow by arithmetic checked against the exact
    edges, vectorised over all those spikes; overlapping windows fall back to
    one binary search of all edges per unit.
    Neither loops over trials × units.

    Examples
    --------
    >>> import pandas as pd
    >>> from errsig import Session, bin_trials
    >>> session = Session.from_spike_trains(
    ...     [[0.05, 0.15, 1.12], [1.01]],
    ...     units=pd.DataFrame({"area": ["M1", "M1"]}),
    ...     trials=pd.DataFrame(
    ...         {"start_time": [0.0, 1.0], "stop_time": [1.0, 2.0],
    ...          "go_cue_time": [0.0, 1.0]}
    ...     ),
    ... )
    >>> ds = bin_trials(session, align="go_cue_time", window=(0, 0.2), bin_size=0.1)
    >>> ds["counts"].values.tolist()
    [[[1, 1], [0, 0]], [[0, 1], [1, 0]]]
    """
    start, stop, n_bins = _check_window(window, bin_size)
    smallest = _check_dtype(dtype)
    trials = _aligned_trials(session, align)
    event_times = trials[align].to_numpy(dtype=np.float64)

    relative_edges = start + bin_size * np.arange(n_bins + 1)
    relative_edges[-1] = stop
    edges = event_times[:, None] + relative_edges[None, :]
    counts = _count_spikes(session, edges, smallest)

    centres = (relative_edges[:-1] + relative_edges[1:]) / 2
    dataset = xr.Dataset(
        {"counts": (("trial", "unit", "time"), counts)},
        coords={
            "trial": trials.index.to_numpy(),
            "unit": session.units.index.to_numpy(),
            "area": ("unit", session.units["area"].astype(str).to_numpy()),
            "time": centres,
            "trial_index": ("trial", trials["_position"].to_numpy()),
        },
        attrs={
            "align": align,
            "bin_size": float(bin_size),
            "window_start": float(start),
            "window_stop": float(stop),
            "source": str(session.meta.get("source_file", "")),
            "session_id": str(session.meta.get("session_id", "")),
        },
    )
    dataset["time"].attrs.update(units="s", long_name=f"time from {align}")
    dataset["counts"].attrs.update(units="spikes", bin_size=float(bin_size))

    for column in TRIAL_COORDINATES:
        if column in trials.columns:
            dataset = dataset.assign_coords(
                {column: ("trial", _trial_values(trials[column]))}
            )
    if {"error_x", "error_y"} <= set(trials.columns):
        error = trials[["error_x", "error_y"]].to_numpy(dtype=np.float64)
        dataset["error"] = (("trial", "component"), error)
        dataset["error"].attrs.update(units="m", long_name="error shown to the subject")
        dataset = dataset.assign_coords(component=["x", "y"])

    behaviour = {
        "kinematics": _velocity_series(session.behavior),
        "force": session.behavior.get("hand_force"),
    }
    for name, series in behaviour.items():
        if series is None:
            continue
        values = _bin_average(series, edges)
        dataset[name] = (("trial", "time", "component"), values[..., :2])
        dataset[name].attrs.update(units=series.unit, long_name=series.description)
        dataset = dataset.assign_coords(component=["x", "y"])
    return dataset


def _check_window(
    window: tuple[float, float], bin_size: float
) -> tuple[float, float, int]:
    try:
        start, stop = (float(value) for value in window)
    except (TypeError, ValueError):
        raise ErrsigError(
            f"`window` must be a pair (start, stop) in seconds; got {window!r}."
        ) from None
    if not (np.isfinite(start) and np.isfinite(stop)) or start >= stop:
        raise ErrsigError(
            f"`window` must have start < stop; got {window!r}. For 200 ms before to "
            "800 ms after the event write window=(-0.2, 0.8)."
        )
    if not (np.isfinite(bin_size) and bin_size > 0):
        raise ErrsigError(
            f"`bin_size` must be a positive number of seconds; got {bin_size!r}."
        )
    n_bins = round((stop - start) / bin_size)
    if n_bins < 1 or abs(n_bins * bin_size - (stop - start)) > 1e-9 * max(
        1.0, stop - start
    ):
        raise ErrsigError(
            f"`bin_size` {bin_size} s does not divide the window {window!r} "
            f"({stop - start:g} s) into whole bins; choose a bin size such as "
            f"{(stop - start) / max(n_bins, 1):g} s."
        )
    return start, stop, int(n_bins)


def _aligned_trials(session: Session, align: str) -> pd.DataFrame:
    trials = session.trials.copy()
    trials["_position"] = np.arange(len(trials))
    source = session.meta.get("source_file", "the session")
    if align not in trials.columns:
        events = [c for c in trials.columns if c.endswith("_time")]
        raise ColumnError(
            f"`align`={align!r} is not a trial column of {source}; event columns "
            f"available: {events}. Pass one of them, or map the file's name with "
            "read_nwb(..., columns={" + repr(align) + ": '<file column>'})."
        )
    event = pd.to_numeric(trials[align], errors="coerce")
    missing = event.isna().to_numpy()
    if missing.all():
        raise ErrsigError(
            f"`align`={align!r} is NaN on all {len(trials)} trials of {source}; "
            "choose another alignment event."
        )
    if missing.any():
        warnings.warn(
            f"{int(missing.sum())} of {len(trials)} trials have no {align!r} "
            f"(NaN) in {source} and were dropped.",
            DataRepairWarning,
            stacklevel=3,
        )
        trials = trials.loc[~missing]
    return trials


#: Count types ``dtype="smallest"`` chooses from, smallest first.
COUNT_TYPES = (np.int8, np.int16, np.int32)


def _check_dtype(dtype: str | type) -> bool:
    """Return whether counts are stored in the smallest type that fits."""
    if isinstance(dtype, str) and dtype == "smallest":
        return True
    try:
        if np.dtype(dtype) == np.int32:
            return False
    except TypeError:
        pass
    raise ErrsigError(
        f"`dtype` must be 'int32' or 'smallest'; got {dtype!r}. Convert afterwards "
        "with ds['counts'].astype(...) for another type."
    )


def _fitting_counts(counts: np.ndarray, largest: int) -> np.ndarray:
    """Return ``counts``, converted to a wider type if ``largest`` overflows it."""
    if largest <= np.iinfo(counts.dtype).max:
        return counts
    wider = [kind for kind in COUNT_TYPES if largest <= np.iinfo(kind).max]
    return counts.astype(wider[0] if wider else np.int64)


def _count_spikes(session: Session, edges: np.ndarray, smallest: bool) -> np.ndarray:
    """Spike counts (trial, unit, bin) with numpy.histogram's edge convention.

    With ``smallest``, the array starts as int8 and is widened only when a
    chunk of units holds a count that does not fit.
    """
    dtype = COUNT_TYPES[0] if smallest else np.int32
    order = np.argsort(edges[:, 0], kind="stable")
    starts, stops = edges[order, 0], edges[order, -1]
    if np.all(starts[1:] > stops[:-1]):
        return _count_by_trial_lookup(session, edges, order, dtype)
    return _count_by_edge_search(session, edges, dtype)


def _count_by_trial_lookup(
    session: Session, edges: np.ndarray, order: np.ndarray, dtype: type
) -> np.ndarray:
    """Count when trial windows do not overlap, touching only in-window spikes.

    Per unit, two binary searches per trial find the run of spikes inside each
    window; those spikes are gathered for many units at once and their bins
    found by arithmetic, corrected against the exact edges so that the result
    equals :func:`numpy.histogram` bit for bit.
    """
    n_trials, n_bins = edges.shape[0], edges.shape[1] - 1
    counts = np.empty((n_trials, session.n_units, n_bins), dtype=dtype)
    window_starts, window_stops = edges[order, 0], edges[order, -1]
    flat_edges = edges.ravel()
    bin_size = (edges[0, -1] - edges[0, 0]) / n_bins
    unit_starts = session.spike_starts

    for first, last in _unit_chunks(session, n_trials * n_bins):
        runs_start = np.empty((last - first, n_trials), dtype=np.int64)
        runs_stop = np.empty_like(runs_start)
        for row, unit in enumerate(range(first, last)):
            spikes = session.spike_times[unit_starts[unit] : session.spike_index[unit]]
            runs_start[row] = np.searchsorted(spikes, window_starts, side="left")
            runs_stop[row] = np.searchsorted(spikes, window_stops, side="right")
        runs_start += unit_starts[first:last, None]
        runs_stop += unit_starts[first:last, None]
        lengths = (runs_stop - runs_start).ravel()

        spikes = session.spike_times[_ranges(runs_start.ravel(), lengths)]
        run_trial = np.tile(order, last - first)
        run_owner = np.repeat(np.arange(last - first), n_trials)
        trial = np.repeat(run_trial, lengths)
        row_start = trial * (n_bins + 1)

        guess = np.floor((spikes - flat_edges[row_start]) / bin_size).astype(np.int64)
        bin_index = np.clip(guess, 0, n_bins - 1)
        bin_index -= (bin_index > 0) & (spikes < flat_edges[row_start + bin_index])
        bin_index += (bin_index < n_bins - 1) & (
            spikes >= flat_edges[row_start + bin_index + 1]
        )

        flat = (np.repeat(run_owner, lengths) * n_trials + trial) * n_bins + bin_index
        per_unit = np.bincount(flat, minlength=(last - first) * n_trials * n_bins)
        counts = _fitting_counts(counts, int(per_unit.max(initial=0)))
        counts[:, first:last, :] = per_unit.reshape(
            last - first, n_trials, n_bins
        ).transpose(1, 0, 2)
    return counts


def _unit_chunks(session: Session, bins_per_unit: int) -> list[tuple[int, int]]:
    """Split units into runs of at most ~0.5 M spikes and ~2 M count cells."""
    max_spikes, max_cells = 2**19, 2**21
    chunks, first = [], 0
    while first < session.n_units:
        spike_budget = session.spike_starts[first] + max_spikes
        last = int(np.searchsorted(session.spike_index, spike_budget, side="right"))
        last = min(last, first + max(1, max_cells // max(1, bins_per_unit)))
        last = max(last, first + 1)
        chunks.append((first, min(last, session.n_units)))
        first = chunks[-1][1]
    return chunks


def _count_by_edge_search(
    session: Session, edges: np.ndarray, dtype: type
) -> np.ndarray:
    """Count for overlapping windows: a binary search of every edge per unit."""
    n_trials, n_edges = edges.shape
    flat_edges = edges.ravel()
    last_edges = edges[:, -1]
    counts = np.empty((n_trials, session.n_units, n_edges - 1), dtype=dtype)
    starts, stops = session.spike_starts, session.spike_index
    for position in range(session.n_units):
        spikes = session.spike_times[starts[position] : stops[position]]
        cumulative = np.searchsorted(spikes, flat_edges, side="left").reshape(
            edges.shape
        )
        # The last bin is closed on the right, as in numpy.histogram.
        cumulative[:, -1] = np.searchsorted(spikes, last_edges, side="right")
        unit_counts = np.diff(cumulative, axis=1)
        counts = _fitting_counts(counts, int(unit_counts.max(initial=0)))
        counts[:, position, :] = unit_counts
    return counts


def _trial_values(column: pd.Series) -> np.ndarray:
    values = column.to_numpy()
    if values.dtype == object or isinstance(column.dtype, pd.StringDtype):
        return column.astype(str).to_numpy(dtype=str)
    return values


def _velocity_series(behavior: dict[str, BehaviorSeries]) -> BehaviorSeries | None:
    if "hand_velocity" in behavior:
        return behavior["hand_velocity"]
    position = behavior.get("hand_position")
    if position is None or len(position.times) < 3:
        return None
    velocity = np.gradient(position.data, position.times, axis=0)
    unit = f"{position.unit}/second" if position.unit else "per second"
    return BehaviorSeries(position.times, velocity, unit, "hand velocity from position")


def _bin_average(series: BehaviorSeries, edges: np.ndarray) -> np.ndarray:
    """Mean of a sampled series in each bin, interpolated where a bin is empty."""
    cumulative = np.vstack(
        [np.zeros((1, series.data.shape[1])), np.cumsum(series.data, 0)]
    )
    low = np.searchsorted(series.times, edges[:, :-1], side="left")
    high = np.searchsorted(series.times, edges[:, 1:], side="left")
    n_samples = (high - low)[..., None]
    with np.errstate(invalid="ignore", divide="ignore"):
        means = (cumulative[high] - cumulative[low]) / n_samples
    centres = (edges[:, :-1] + edges[:, 1:]) / 2
    empty = n_samples[..., 0] == 0
    if empty.any():
        for component in range(series.data.shape[1]):
            means[..., component][empty] = np.interp(
                centres[empty],
                series.times,
                series.data[:, component],
                left=np.nan,
                right=np.nan,
            )
    return means
