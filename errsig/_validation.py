"""Small input-validation helpers shared across errsig."""

from __future__ import annotations

import numbers
import os

import numpy as np

__all__ = ["check_positive_int", "check_rng"]


def check_rng(rng: int | np.random.Generator | None) -> np.random.Generator:
    """Normalise the ``rng`` argument that every random function takes.

    Parameters
    ----------
    rng : None, int, numpy.random.SeedSequence or numpy.random.Generator
        ``None`` draws fresh entropy from the operating system, an integer or a
        ``SeedSequence`` seeds a new generator, and a ``Generator`` is used as
        it is (and so advanced by the caller's use).

    Returns
    -------
    numpy.random.Generator

    Examples
    --------
    >>> from errsig._validation import check_rng
    >>> check_rng(0).integers(10) == check_rng(0).integers(10)
    np.True_
    """
    if isinstance(rng, np.random.RandomState):
        raise TypeError(
            "`rng` must be None, an integer or a numpy.random.Generator; got the "
            "legacy RandomState. Use numpy.random.default_rng(seed) instead."
        )
    return np.random.default_rng(rng)


def check_positive_int(value: object, name: str, *, minimum: int = 1) -> int:
    """Return ``value`` as an int, or raise naming the argument.

    Parameters
    ----------
    value : object
        The value to check.
    name : str
        The argument's name, used in the message.
    minimum : int, default=1
        The smallest value allowed.

    Returns
    -------
    int

    Examples
    --------
    >>> from errsig._validation import check_positive_int
    >>> check_positive_int(5, "n_perm")
    5
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"`{name}` must be an integer; got {value!r}.")
    if value < minimum:
        raise ValueError(f"`{name}` must be at least {minimum}; got {value}.")
    return int(value)


def give_default_permissions(path: str | os.PathLike) -> None:
    """Give a file made by :func:`tempfile.mkstemp` the mode of an ordinary file.

    ``mkstemp`` creates files readable by their owner only (0600); a result
    moved into place from it would stay unreadable to the rest of a lab on a
    shared server. This applies the usual ``0666`` less the process's umask.
    """
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def loaded_counts(ds: object) -> object:
    """Return ``ds`` with dask-backed ``counts`` loaded, in the smallest int type.

    Analyses that need every unit at once (decoding an area, the tuning fits,
    the classification) take a lazily binned session
    (:func:`errsig.batch.bin_trials_chunked`) by loading its counts a chunk at
    a time into one array of the smallest signed integer type that holds them
    — a quarter of int32 for 20-ms bins — instead of letting numpy materialise
    the int32 array at once. Float counts are loaded as float64; in-memory
    counts are returned untouched.

    Parameters
    ----------
    ds : xarray.Dataset
        A trial-aligned dataset.

    Returns
    -------
    xarray.Dataset
    """
    counts = ds["counts"] if "counts" in getattr(ds, "variables", {}) else None
    if counts is None or counts.chunks is None:
        return ds
    unit_axis = counts.dims.index("unit")
    integer = np.dtype(counts.dtype).kind in "iu"
    values = np.empty(counts.shape, dtype=np.int8 if integer else np.float64)
    first = 0
    for size in counts.chunksizes["unit"]:
        chunk = counts.isel(unit=slice(first, first + size))
        part = np.asarray(chunk.compute(scheduler="synchronous").values)
        largest = int(np.abs(part).max(initial=0)) if integer else 0
        if integer and largest > np.iinfo(values.dtype).max:
            wider = [
                kind
                for kind in (np.int16, np.int32, np.int64)
                if largest <= np.iinfo(kind).max
            ]
            values = values.astype(wider[0])
        index = [slice(None)] * counts.ndim
        index[unit_axis] = slice(first, first + size)
        values[tuple(index)] = part
        first += size
    return ds.assign(counts=counts.copy(data=values))
