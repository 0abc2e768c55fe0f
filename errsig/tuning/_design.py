"""Input checks and the cosine-tuning design shared by the tuning analyses."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from errsig._exceptions import ColumnError, ErrsigError, InsufficientDataError

__all__ = [
    "TUNING_TERMS",
    "block_labels",
    "check_dataset",
    "cosine_design",
    "covariate_available",
    "epoch_counts",
    "unit_chunks",
    "wrap_angle",
]

#: Names of the cosine-tuning terms, in the order of the design's columns.
TUNING_TERMS = ("baseline", "cos", "sin")

#: Bytes of float64 counts summed together by :func:`epoch_counts`.
EPOCH_WORK_BYTES = 64 * 2**20

#: Covariates computed from the behaviour in the epoch rather than read as-is.
BEHAVIOUR_COVARIATES = {
    "speed": "mean hand speed in the epoch (from `kinematics`)",
    "velocity_x": "mean hand velocity along x in the epoch (from `kinematics`)",
    "velocity_y": "mean hand velocity along y in the epoch (from `kinematics`)",
    "force_x": "mean hand force along x in the epoch (from `force`)",
    "force_y": "mean hand force along y in the epoch (from `force`)",
    "force": "mean hand force magnitude in the epoch (from `force`)",
}


def wrap_angle(angle: np.ndarray) -> np.ndarray:
    """Wrap angles to [-π, π).

    Parameters
    ----------
    angle : numpy.ndarray
        Angles in radians.

    Returns
    -------
    numpy.ndarray

    Examples
    --------
    >>> import numpy as np
    >>> from errsig.tuning._design import wrap_angle
    >>> float(wrap_angle(np.array(3 * np.pi / 2))) == -np.pi / 2
    True
    """
    return (np.asarray(angle) + np.pi) % (2 * np.pi) - np.pi


def unit_chunks(n_units: int, unit_bytes: int, budget: int) -> list[slice]:
    """Split the units into chunks whose work arrays fit a byte budget.

    Parameters
    ----------
    n_units : int
        Number of units.
    unit_bytes : int
        Bytes of work arrays one unit needs.
    budget : int
        Bytes one chunk may hold.

    Returns
    -------
    list of slice
        Consecutive chunks covering every unit. Each holds at least two units
        (unless there is only one): numpy lays out and reduces a single row
        differently from several, so a chunk of one unit could change the last
        bits of its sums, and the results would depend on the budget.

    Examples
    --------
    >>> from errsig.tuning._design import unit_chunks
    >>> unit_chunks(7, unit_bytes=10, budget=30)
    [slice(0, 3, None), slice(3, 7, None)]
    """
    size = max(2, budget // max(unit_bytes, 1))
    starts = list(range(0, n_units, size))
    if len(starts) > 1 and n_units - starts[-1] == 1:
        starts.pop()  # the last unit joins the chunk before it
    return [
        slice(start, stop)
        for start, stop in zip(starts, [*starts[1:], n_units], strict=True)
    ]


def check_dataset(ds: object, *, need: Sequence[str] = ()) -> xr.Dataset:
    """Check that ``ds`` is a binned dataset with counts and target angles.

    Parameters
    ----------
    ds : object
        What the user passed.
    need : sequence of str, default=()
        Further trial variables or coordinates the caller needs.

    Returns
    -------
    xarray.Dataset
    """
    if not isinstance(ds, xr.Dataset):
        raise ErrsigError(
            f"`ds` must be the xarray.Dataset that errsig.bin_trials returns; got "
            f"{type(ds).__name__}."
        )
    source = ds.attrs.get("source") or "the dataset"
    if "counts" not in ds or set(ds["counts"].dims) != {"trial", "unit", "time"}:
        raise ColumnError(
            f"`counts` (trial, unit, time) is missing from {source}; build the dataset "
            "with errsig.bin_trials(session, ...)."
        )
    for name in ("target_angle", *need):
        if name not in ds.variables:
            raise ColumnError(
                f"{name!r} is missing from {source}; it must be a trial variable. "
                f"Map the file's column onto it with read_nwb(path, columns="
                f"{{{name!r}: '<file column>'}}) before binning."
            )
    angle = np.asarray(ds["target_angle"].values, dtype=np.float64)
    if not np.all(np.isfinite(angle)):
        raise ErrsigError(
            f"'target_angle' of {source} has {int((~np.isfinite(angle)).sum())} "
            "non-finite values; drop those trials first (ds.isel(trial=...))."
        )
    return ds


def epoch_counts(
    ds: xr.Dataset, epoch: tuple[float, float] | None
) -> tuple[np.ndarray, tuple[float, float]]:
    """Spike counts summed over the bins whose centres lie in ``epoch``.

    Parameters
    ----------
    ds : xarray.Dataset
        Binned dataset.
    epoch : tuple of float or None
        ``(start, stop)`` in seconds relative to the alignment event; ``None``
        takes every bin.

    Returns
    -------
    counts : numpy.ndarray
        Shape ``(n_units, n_trials)``, float64.
    epoch : tuple of float
        The epoch actually used.
    """
    time = np.asarray(ds["time"].values, dtype=np.float64)
    if epoch is None:
        half_bin = float(ds.attrs.get("bin_size", 0.0)) / 2
        used = (float(time.min() - half_bin), float(time.max() + half_bin))
        return _summed_counts(ds["counts"], np.arange(time.size)), used
    try:
        start, stop = (float(value) for value in epoch)
    except (TypeError, ValueError):
        raise ErrsigError(
            f"`epoch` must be None or a pair (start, stop) in seconds; got {epoch!r}."
        ) from None
    inside = (time >= start) & (time < stop)
    if not inside.any():
        raise ErrsigError(
            f"`epoch`={epoch!r} holds no time bin; the bin centres run from "
            f"{time.min():g} to {time.max():g} s relative to "
            f"{ds.attrs.get('align', 'the alignment event')!r}."
        )
    return _summed_counts(ds["counts"], np.flatnonzero(inside)), (start, stop)


def _summed_counts(counts: xr.DataArray, bins: np.ndarray) -> np.ndarray:
    """Sum counts (trial, unit, time) over ``bins``, as float64 (unit, trial).

    A chunk of units at a time, each converted to float64 before it is summed
    (counts may come as small integers), so that the work arrays stay within
    :data:`EPOCH_WORK_BYTES`. The result is laid out trial-major, as the sum of
    the whole array would be.
    """
    n_trials, n_units = counts.sizes["trial"], counts.sizes["unit"]
    summed = np.empty((n_trials, n_units))
    unit_bytes = 8 * n_trials * bins.size
    for units in unit_chunks(n_units, unit_bytes, EPOCH_WORK_BYTES):
        chunk = counts.isel(unit=units, time=bins).astype(np.float64)
        summed[:, units] = chunk.sum("time").transpose("trial", "unit").values
    return summed.T


def cosine_design(
    ds: xr.Dataset,
    covariates: Sequence[str] | None,
    epoch: tuple[float, float],
) -> tuple[np.ndarray, list[str]]:
    """Design matrix ``[1, cos θ, sin θ, covariates...]`` of every trial.

    Covariates are centred and scaled to unit standard deviation, so that the
    baseline term is the log rate at the session's mean covariate values.

    Parameters
    ----------
    ds : xarray.Dataset
        Binned dataset.
    covariates : sequence of str or None
        Names from :data:`BEHAVIOUR_COVARIATES` or trial variables of ``ds``.
    epoch : tuple of float
        Epoch over which behavioural covariates are averaged.

    Returns
    -------
    design : numpy.ndarray
        Shape ``(n_trials, 3 + n_covariates)``.
    terms : list of str
        Column names.
    """
    angle = np.asarray(ds["target_angle"].values, dtype=np.float64)
    columns = [np.ones_like(angle), np.cos(angle), np.sin(angle)]
    terms = list(TUNING_TERMS)
    if isinstance(covariates, str):
        covariates = [covariates]
    for name in covariates or ():
        values = _covariate(ds, name, epoch)
        spread = values.std()
        if not np.all(np.isfinite(values)) or spread == 0:
            raise ErrsigError(
                f"covariate {name!r} is constant or has non-finite values in the "
                "epoch; drop it from `covariates` or drop those trials."
            )
        columns.append((values - values.mean()) / spread)
        terms.append(name)
    return np.column_stack(columns), terms


def covariate_available(ds: xr.Dataset, name: str) -> bool:
    """Whether ``ds`` holds what covariate ``name`` is computed from.

    Parameters
    ----------
    ds : xarray.Dataset
        A binned dataset.
    name : str
        One of :data:`BEHAVIOUR_COVARIATES` or a trial variable's name.

    Returns
    -------
    bool
    """
    if name in BEHAVIOUR_COVARIATES:
        return _covariate_source(name) in ds
    return name in ds.variables and ds[name].dims == ("trial",)


def _covariate_source(name: str) -> str:
    return "force" if name.startswith("force") else "kinematics"


def _covariate(ds: xr.Dataset, name: str, epoch: tuple[float, float]) -> np.ndarray:
    if name in BEHAVIOUR_COVARIATES:
        source = _covariate_source(name)
        if source not in ds:
            raise ColumnError(
                f"covariate {name!r} needs `{source}` (trial, time, component) in the "
                "dataset, which has none; bin a session with hand "
                f"{'force' if source == 'force' else 'velocity'} behaviour."
            )
        time = np.asarray(ds["time"].values, dtype=np.float64)
        inside = np.flatnonzero((time >= epoch[0]) & (time < epoch[1]))
        series = ds[source].isel(time=inside).mean("time")
        series = series.transpose("trial", "component").values
        if name in ("speed", "force"):
            return np.hypot(series[:, 0], series[:, 1])
        return series[:, 0 if name.endswith("_x") else 1]
    if covariate_available(ds, name):
        return np.asarray(ds[name].values, dtype=np.float64)
    trial_variables = [v for v in ds.variables if ds[v].dims == ("trial",)]
    raise ColumnError(
        f"covariate {name!r} is neither one of {sorted(BEHAVIOUR_COVARIATES)} nor a "
        f"trial variable of the dataset; trial variables: {trial_variables}."
    )


def require_trials(n_trials: int, minimum: int, what: str) -> None:
    """Raise :class:`InsufficientDataError` when there are too few trials."""
    if n_trials < minimum:
        raise InsufficientDataError(
            f"{what} needs at least {minimum} trials; the dataset has {n_trials}. "
            "Use a smaller `window` or a longer session."
        )


def block_labels(phase: np.ndarray) -> tuple[list[str], list[np.ndarray]]:
    """Trial positions of baseline, thirds of force field and thirds of washout.

    Parameters
    ----------
    phase : numpy.ndarray
        Phase of every trial.

    Returns
    -------
    names : list of str
    positions : list of numpy.ndarray
    """
    names, positions = [], []
    phase = phase.astype(str)
    if (phase == "baseline").any():
        names.append("baseline")
        positions.append(np.flatnonzero(phase == "baseline"))
    for name in ("force_field", "washout"):
        trials = np.flatnonzero(phase == name)
        if trials.size == 0:
            continue
        for third, part in enumerate(np.array_split(trials, 3), start=1):
            names.append(f"{name}_{third}")
            positions.append(part)
    return names, positions
