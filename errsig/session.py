"""The in-memory recording: spikes, units, trials, behaviour and metadata.

A :class:`Session` keeps every unit's spike times in one flat float64 array with
an index of end offsets, the same ragged layout NWB uses on disk, so that reading,
selecting and binning never build a Python list of arrays on the hot path.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from errsig._exceptions import ColumnError, DataRepairWarning, ErrsigError

__all__ = ["ANALYSIS_REQUIREMENTS", "BehaviorSeries", "Session"]

#: Trial columns each analysis needs, used by ``errsig info`` and by the
#: analyses themselves to say what is missing before computing anything.
ANALYSIS_REQUIREMENTS: dict[str, tuple[str, ...]] = {
    "binning": ("start_time", "stop_time"),
    "error information and decoding": ("error_x", "error_y"),
    "outcome information and decoding": ("reward",),
    "tuning drift": ("target_angle",),
    "reward coupling": ("target_angle", "reward", "error_x", "error_y"),
    "pseudosession nulls": ("error_x", "error_y", "phase"),
}


@dataclass(eq=False)
class BehaviorSeries:
    """A sampled behavioural signal such as hand position, velocity or force.

    Parameters
    ----------
    times : numpy.ndarray
        Sample times in seconds, shape ``(n_samples,)``, increasing.
    data : numpy.ndarray
        Samples, shape ``(n_samples, n_components)``.
    unit : str
        Physical unit of ``data`` in SI (``"meters"``, ``"meters/second"``,
        ``"newtons"``).
    description : str, default=""
        Free text, e.g. the reference frame.

    Examples
    --------
    >>> import numpy as np
    >>> from errsig import BehaviorSeries
    >>> t = np.arange(0, 1, 0.01)
    >>> pos = BehaviorSeries(t, np.c_[np.cos(t), np.sin(t)], unit="meters")
    >>> pos.data.shape
    (100, 2)
    """

    times: np.ndarray
    data: np.ndarray
    unit: str
    description: str = ""

    def __post_init__(self) -> None:
        self.times = np.asarray(self.times, dtype=np.float64)
        self.data = np.asarray(self.data, dtype=np.float64)
        if self.data.ndim == 1:
            self.data = self.data[:, None]
        if self.times.ndim != 1 or len(self.times) != len(self.data):
            raise ErrsigError(
                f"behaviour series: `times` has shape {self.times.shape} but `data` "
                f"has {self.data.shape}; they must have one sample per time."
            )
        if len(self.times) > 1 and np.any(np.diff(self.times) <= 0):
            raise ErrsigError(
                "behaviour series: `times` must increase strictly; sort the samples "
                "by time first."
            )


@dataclass(eq=False)
class Session:
    """One recording session: spikes of many units, trials and behaviour.

    Parameters
    ----------
    spike_times : numpy.ndarray
        All spike times of all units, in seconds, concatenated unit after unit
        (float64, shape ``(n_spikes,)``). Each unit's times are sorted.
    spike_index : numpy.ndarray
        End offset of each unit's spikes in ``spike_times`` (int64, shape
        ``(n_units,)``, non-decreasing, last value ``n_spikes``): unit ``i`` owns
        ``spike_times[spike_index[i - 1]:spike_index[i]]``.
    units : pandas.DataFrame
        One row per unit, indexed by unit id, with at least the column ``area``.
    trials : pandas.DataFrame
        One row per trial, indexed by trial id, with at least ``start_time`` and
        ``stop_time``; see the data model in ``docs/data_model.md`` for the
        columns the analyses use.
    behavior : dict of str to BehaviorSeries, optional
        Sampled behaviour, keyed ``hand_position``, ``hand_velocity``,
        ``hand_force``.
    meta : dict, optional
        Session id, subject, source file and, for simulated sessions, the ground
        truth under ``"truth"``.

    Notes
    -----
    Unsorted spike times within a unit are sorted with a
    :class:`~errsig.DataRepairWarning`; non-finite spike times are an error.

    Examples
    --------
    >>> import pandas as pd
    >>> from errsig import Session
    >>> session = Session.from_spike_trains(
    ...     [[0.1, 0.5, 0.7], [0.2]],
    ...     units=pd.DataFrame({"area": ["M1", "PMd"]}),
    ...     trials=pd.DataFrame({"start_time": [0.0], "stop_time": [1.0]}),
    ... )
    >>> session
    <Session: 2 units (M1: 1, PMd: 1), 1 trials, 4 spikes>
    >>> session.unit_spike_times(0)
    array([0.1, 0.5, 0.7])
    >>> session.select(area="PMd").n_units
    1
    """

    spike_times: np.ndarray
    spike_index: np.ndarray
    units: pd.DataFrame
    trials: pd.DataFrame
    behavior: dict[str, BehaviorSeries] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.spike_times = np.ascontiguousarray(self.spike_times, dtype=np.float64)
        self.spike_index = np.asarray(self.spike_index).astype(np.int64)
        self.units = _as_frame(self.units, "units")
        self.trials = _as_frame(self.trials, "trials")
        self.behavior = dict(self.behavior)
        self.meta = dict(self.meta)
        self._check_layout()
        self._sort_within_units()

    # ------------------------------------------------------------------ build
    @classmethod
    def from_spike_trains(
        cls,
        spike_trains: Sequence[Iterable[float]],
        units: pd.DataFrame,
        trials: pd.DataFrame,
        behavior: Mapping[str, BehaviorSeries] | None = None,
        meta: Mapping | None = None,
    ) -> Session:
        """Build a session from one array of spike times per unit.

        Parameters
        ----------
        spike_trains : sequence of array_like
            Spike times in seconds, one array per row of ``units``.
        units, trials, behavior, meta
            As for :class:`Session`.

        Returns
        -------
        Session
        """
        arrays = [np.asarray(train, dtype=np.float64).ravel() for train in spike_trains]
        lengths = np.array([len(train) for train in arrays], dtype=np.int64)
        flat = np.concatenate(arrays) if arrays else np.empty(0)
        return cls(
            spike_times=flat,
            spike_index=np.cumsum(lengths),
            units=units,
            trials=trials,
            behavior=dict(behavior or {}),
            meta=dict(meta or {}),
        )

    # ---------------------------------------------------------------- access
    @property
    def n_units(self) -> int:
        """Number of units."""
        return len(self.spike_index)

    @property
    def n_trials(self) -> int:
        """Number of trials."""
        return len(self.trials)

    @property
    def spike_starts(self) -> np.ndarray:
        """Start offset of each unit's spikes in :attr:`spike_times`."""
        starts = np.empty_like(self.spike_index)
        starts[:1] = 0
        starts[1:] = self.spike_index[:-1]
        return starts

    @property
    def spike_counts(self) -> np.ndarray:
        """Total number of spikes of each unit."""
        return np.diff(self.spike_index, prepend=0)

    @property
    def areas(self) -> list[str]:
        """The brain areas recorded, in order of first appearance."""
        return list(pd.unique(self.units["area"].astype(str)))

    def unit_spike_times(self, unit: object) -> np.ndarray:
        """Return one unit's spike times (a view, not a copy).

        Parameters
        ----------
        unit : object
            A unit id, i.e. a label of ``units.index``.

        Returns
        -------
        numpy.ndarray
        """
        try:
            position = self.units.index.get_loc(unit)
        except KeyError:
            raise KeyError(
                f"unit {unit!r} is not in this session; unit ids run from "
                f"{self.units.index[0]!r} to {self.units.index[-1]!r}."
            ) from None
        start = 0 if position == 0 else self.spike_index[position - 1]
        return self.spike_times[start : self.spike_index[position]]

    def spike_trains(self) -> list[np.ndarray]:
        """Return every unit's spike times as a list of views (not for hot paths)."""
        return np.split(self.spike_times, self.spike_index[:-1])

    # ------------------------------------------------------------- selection
    def select(
        self,
        *,
        area: str | Sequence[str] | None = None,
        units: Sequence | None = None,
        trials: Sequence | None = None,
    ) -> Session:
        """Return a session restricted to some areas, units or trials.

        Spike data are gathered with index arithmetic (one fancy-indexing pass),
        never unit by unit.

        Parameters
        ----------
        area : str or sequence of str, optional
            Keep the units of these areas.
        units : sequence, optional
            Keep these unit ids (in this order).
        trials : sequence, optional
            Keep these trial ids (in this order). Spikes are kept whole; only
            the trials table is restricted.

        Returns
        -------
        Session
        """
        keep = np.ones(self.n_units, dtype=bool)
        if area is not None:
            wanted = [area] if isinstance(area, str) else list(area)
            unknown = sorted(set(wanted) - set(self.areas))
            if unknown:
                raise ErrsigError(
                    f"`area` {unknown} not recorded in this session; the areas are "
                    f"{self.areas}."
                )
            keep &= self.units["area"].isin(wanted).to_numpy()
        positions = np.flatnonzero(keep)
        if units is not None:
            requested = self.units.index.get_indexer(list(units))
            if np.any(requested < 0):
                missing = [u for u, p in zip(units, requested, strict=True) if p < 0]
                raise ErrsigError(f"`units` {missing} are not in this session.")
            positions = requested[np.isin(requested, positions)]

        starts = self.spike_starts[positions]
        counts = self.spike_counts[positions]
        gather = _ranges(starts, counts)
        trial_table = self.trials if trials is None else self.trials.loc[list(trials)]
        return Session(
            spike_times=self.spike_times[gather],
            spike_index=np.cumsum(counts),
            units=self.units.iloc[positions],
            trials=trial_table,
            behavior=self.behavior,
            meta=self.meta,
        )

    def missing_columns(self) -> dict[str, list[str]]:
        """List, for each analysis, the trial columns this session lacks.

        Returns
        -------
        dict of str to list of str
            Only analyses with something missing appear.
        """
        missing = {}
        for analysis, columns in ANALYSIS_REQUIREMENTS.items():
            absent = [c for c in columns if c not in self.trials.columns]
            if absent:
                missing[analysis] = absent
        return missing

    def require_columns(self, columns: Iterable[str], purpose: str) -> None:
        """Raise :class:`~errsig.ColumnError` if trial columns are missing.

        Parameters
        ----------
        columns : iterable of str
            The trial columns needed.
        purpose : str
            What they are needed for, used in the message.
        """
        absent = [c for c in columns if c not in self.trials.columns]
        if absent:
            source = self.meta.get("source_file", "this session")
            raise ColumnError(
                f"{purpose} needs the trial column(s) {absent}, which {source} "
                f"lacks. Its trial columns are {list(self.trials.columns)}. Map "
                "the file's own names with read_nwb(..., columns={...})."
            )

    def equals(self, other: Session) -> bool:
        """Return whether two sessions hold the same data, spikes to the bit.

        Behaviour series and the tables are compared by value; ``meta`` is
        compared on its keys other than ``source_file``.
        """
        if not isinstance(other, Session):
            return False
        same_spikes = np.array_equal(self.spike_index, other.spike_index) and (
            self.spike_times.tobytes() == other.spike_times.tobytes()
        )
        same_behavior = self.behavior.keys() == other.behavior.keys() and all(
            np.array_equal(b.times, other.behavior[k].times)
            and np.array_equal(b.data, other.behavior[k].data)
            for k, b in self.behavior.items()
        )
        return (
            same_spikes
            and same_behavior
            and _frames_equal(self.units, other.units)
            and _frames_equal(self.trials, other.trials)
        )

    def __repr__(self) -> str:
        per_area = self.units["area"].astype(str).value_counts(sort=False)
        areas = ", ".join(f"{a}: {n}" for a, n in per_area.items())
        return (
            f"<Session: {self.n_units} units ({areas}), {self.n_trials} trials, "
            f"{len(self.spike_times)} spikes>"
        )

    # ------------------------------------------------------------ validation
    def _check_layout(self) -> None:
        index = self.spike_index
        if index.ndim != 1:
            raise ErrsigError("`spike_index` must be one-dimensional.")
        if len(index) != len(self.units):
            raise ErrsigError(
                f"`spike_index` has {len(index)} entries but `units` has "
                f"{len(self.units)} rows; give one end offset per unit."
            )
        if len(index) and (
            index[0] < 0
            or np.any(np.diff(index) < 0)
            or index[-1] != len(self.spike_times)
        ):
            raise ErrsigError(
                "`spike_index` must be non-decreasing end offsets that finish at "
                f"len(spike_times) = {len(self.spike_times)}."
            )
        if not len(index) and len(self.spike_times):
            raise ErrsigError("spike times were given but no units.")
        if "area" not in self.units.columns:
            raise ColumnError(
                "the units table needs an `area` column (the brain area of each "
                f"unit); its columns are {list(self.units.columns)}."
            )
        if not np.all(np.isfinite(self.spike_times)):
            bad = int(np.count_nonzero(~np.isfinite(self.spike_times)))
            raise ErrsigError(
                f"{bad} spike times are NaN or infinite; remove them before building "
                "a Session."
            )
        if not self.units.index.is_unique:
            raise ErrsigError("unit ids (the units index) must be unique.")

    def _sort_within_units(self) -> None:
        # Compared as two views, not through np.diff: no float copy of the spikes.
        descending = self.spike_times[1:] < self.spike_times[:-1]
        # A step across a unit boundary is not a disorder.
        boundaries = self.spike_index[:-1] - 1
        boundaries = boundaries[(boundaries >= 0) & (boundaries < len(descending))]
        descending[boundaries] = False
        if not descending.any():
            return
        unit_of_spike = np.repeat(np.arange(self.n_units), self.spike_counts)
        unsorted_units = np.unique(unit_of_spike[np.flatnonzero(descending)])
        order = np.lexsort((self.spike_times, unit_of_spike))
        self.spike_times = self.spike_times[order]
        source = self.meta.get("source_file", "the session")
        warnings.warn(
            f"spike times of {len(unsorted_units)} unit(s) in {source} were not "
            f"sorted (unit ids {list(self.units.index[unsorted_units][:5])}"
            f"{' ...' if len(unsorted_units) > 5 else ''}); they have been sorted.",
            DataRepairWarning,
            stacklevel=3,
        )


def _as_frame(table: object, name: str) -> pd.DataFrame:
    if isinstance(table, pd.DataFrame):
        return table.copy()
    try:
        return pd.DataFrame(table)
    except (TypeError, ValueError) as error:
        raise ErrsigError(f"`{name}` must be a pandas DataFrame: {error}") from None


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenate ``arange(s, s + n)`` for every pair, without a Python loop."""
    total = int(lengths.sum())
    if total == 0:
        return np.empty(0, dtype=np.int64)
    offsets = np.repeat(starts - np.cumsum(lengths) + lengths, lengths)
    return np.arange(total, dtype=np.int64) + offsets


def _frames_equal(left: pd.DataFrame, right: pd.DataFrame) -> bool:
    if list(left.columns) != list(right.columns) or len(left) != len(right):
        return False
    if not np.array_equal(left.index.to_numpy(), right.index.to_numpy()):
        return False
    for column in left.columns:
        a, b = left[column].to_numpy(), right[column].to_numpy()
        if a.dtype.kind in "fc" and b.dtype.kind in "fc":
            if not np.array_equal(a, b, equal_nan=True):
                return False
        elif not all(_values_equal(x, y) for x, y in zip(a, b, strict=True)):
            return False
    return True


def _values_equal(left: object, right: object) -> bool:
    if isinstance(left, np.ndarray) or isinstance(right, np.ndarray):
        return np.array_equal(np.asarray(left), np.asarray(right), equal_nan=True)
    if isinstance(left, float) and isinstance(right, float):
        return left == right or (np.isnan(left) and np.isnan(right))
    return bool(left == right)
