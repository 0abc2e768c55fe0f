"""Units: find the table, read all spike times flat, and work out each unit's area."""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pandas as pd
from hdmf.common import DynamicTableRegion, VectorIndex
from pynwb import NWBHDF5IO, NWBFile
from pynwb.misc import Units

from errsig._exceptions import DataRepairWarning, NWBReadError
from errsig.io._tables import decode_strings, holds_scalars

__all__ = [
    "RESERVED_UNIT_COLUMNS",
    "TRUTH_PREFIX",
    "TRUTH_TRAJECTORY_PREFIX",
    "NoAreaError",
    "find_units_table",
    "read_spikes",
    "read_unit_columns",
    "unit_areas",
]

logger = logging.getLogger(__name__)

TRUTH_PREFIX = "truth_"
TRUTH_TRAJECTORY_PREFIX = "truth_trajectory_"

#: Units columns NWB reserves for structure rather than per-unit properties.
RESERVED_UNIT_COLUMNS = (
    "spike_times",
    "obs_intervals",
    "electrodes",
    "electrode_group",
    "waveform_mean",
    "waveform_sd",
    "waveforms",
)

_WARN_LEVEL = 4  # user's read_nwb call, through read_nwb and _read_session


class NoAreaError(NWBReadError):
    """No brain area could be found for some unit (``errsig info`` reports it)."""


class NoUnitsError(NWBReadError):
    """The file has no units table (``errsig info`` still describes the rest)."""


def find_units_table(io: NWBHDF5IO, nwbfile: NWBFile, name: str) -> Units:
    """Return ``/units``, else the first Units table anywhere else in the file."""
    if nwbfile.units is not None:
        return nwbfile.units

    found = []
    for container in nwbfile.objects.values():
        if isinstance(container, Units):
            builder = io.manager.get_builder(container)
            path = builder.path.removeprefix("root") if builder else container.name
            found.append((path, container))
    if not found:
        raise NoUnitsError(
            f"{name} has no units table (no /units and no Units table elsewhere), "
            "so there are no spike times to analyse. errsig needs sorted units."
        )

    found.sort(key=lambda item: item[0])
    path, table = found[0]
    others = [p for p, _ in found[1:]]
    warnings.warn(
        f"{name} has no /units table; using the Units table found at {path}"
        + (f" (others: {others})" if others else "")
        + ".",
        DataRepairWarning,
        stacklevel=_WARN_LEVEL,
    )
    return table


def read_spikes(units: Units, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Read every spike time and the end offsets, each dataset in one read."""
    if "spike_times" not in units.colnames:
        raise NWBReadError(
            f"the units table of {name} has no spike_times column (its columns are "
            f"{list(units.colnames)}); errsig needs spike times."
        )

    column = units["spike_times"]
    spike_times = np.asarray(column.target.data[:], dtype=np.float64)
    spike_index = np.asarray(column.data[:]).astype(np.int64)

    if len(spike_index) and (
        spike_index[0] < 0
        or np.any(np.diff(spike_index) < 0)
        or spike_index[-1] != len(spike_times)
    ):
        raise NWBReadError(
            f"the spike_times_index of {name} is inconsistent (offsets must rise and "
            f"end at {len(spike_times)}); the file is damaged."
        )
    if not np.all(np.isfinite(spike_times)):
        bad = int(np.count_nonzero(~np.isfinite(spike_times)))
        raise NWBReadError(
            f"{name} has {bad} NaN or infinite spike times; the file is damaged or "
            "was written with placeholders. Remove them before analysis."
        )
    return spike_times, spike_index


def read_unit_columns(units: Units) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Read per-unit scalar columns, truth columns and truth trajectories.

    Returns the plain columns, the ``truth_`` columns (prefix removed) and the
    ``truth_trajectory_`` arrays, each read whole, one column at a time.
    """
    ids = pd.Index(np.asarray(units.id[:]).astype(np.int64), name="unit")
    plain = pd.DataFrame(index=ids)
    truth = pd.DataFrame(index=ids)
    trajectories = {}
    for column_name in units.colnames:
        column = units[column_name]
        if column_name in RESERVED_UNIT_COLUMNS or isinstance(
            column, VectorIndex | DynamicTableRegion
        ):
            continue
        values = decode_strings(np.asarray(column.data[:]))
        if column_name.startswith(TRUTH_TRAJECTORY_PREFIX):
            trajectories[column_name.removeprefix(TRUTH_TRAJECTORY_PREFIX)] = values
        elif values.ndim != 1 or (values.dtype == object and not holds_scalars(values)):
            continue
        elif column_name.startswith(TRUTH_PREFIX):
            truth[column_name.removeprefix(TRUTH_PREFIX)] = values
        else:
            plain[column_name] = values
    return plain, truth, trajectories


def unit_areas(
    nwbfile: NWBFile, units: Units, area: str | None, name: str
) -> np.ndarray:
    """Each unit's brain area, following the fallback chain of ``docs/io.md``."""
    n_units = len(units.id)
    if area is not None:
        if area in units.colnames:
            column = units[area]
            values = decode_strings(np.asarray(column.data[:]))
            if isinstance(column, VectorIndex | DynamicTableRegion) or values.ndim != 1:
                raise NWBReadError(
                    f"units column {area!r} of {name} holds more than one value per "
                    "unit, so it cannot be the area; pass a column with one name "
                    "per unit."
                )
            areas = values.astype(str)
            source = f"units column {area!r}"
        else:
            logger.debug("%s: area %r given for all %d units", name, area, n_units)
            return np.full(n_units, str(area), dtype=object)
    else:
        areas, source = _linked_locations(units, name)
        if areas is None:
            raise NoAreaError(
                _no_area_message(
                    units,
                    f"the units of {name} are linked to no brain area (no electrodes "
                    "link with a location, no electrode group)."
                    + _unlinked_locations(nwbfile),
                )
            )

    areas = _brain_regions(areas, name)
    empty = np.char.str_len(areas.astype(str)) == 0
    if empty.any():
        raise NoAreaError(
            _no_area_message(
                units,
                f"{int(empty.sum())} of {n_units} units of {name} have an empty "
                f"{source}, so their brain area is unknown.",
            )
        )
    logger.debug("%s: unit areas from the %s", name, source)
    return areas.astype(object)


def _linked_locations(units: Units, name: str) -> tuple[np.ndarray | None, str]:
    """Areas through units.electrodes -> electrodes.location, else electrode_group."""
    if "electrodes" in units.colnames:
        column = units["electrodes"]
        if isinstance(column, VectorIndex):
            region = column.target
            ends = np.asarray(column.data[:]).astype(np.int64)
            rows = np.asarray(region.data[:]).astype(np.int64)
            first_rows = _first_of_each(rows, ends, name, region)
        else:
            region = column
            first_rows = np.asarray(region.data[:]).astype(np.int64)
        table = region.table
        if first_rows is not None and "location" in table.colnames:
            locations = decode_strings(np.asarray(table["location"].data[:]))
            return locations[first_rows].astype(str), "electrodes table location"

    if "electrode_group" in units.colnames:
        groups = units["electrode_group"].data[:]
        locations = np.array([str(group.location or "") for group in groups])
        return locations, "electrode group location"
    return None, ""


def _first_of_each(
    rows: np.ndarray, ends: np.ndarray, name: str, region: DynamicTableRegion
) -> np.ndarray | None:
    counts = np.diff(ends, prepend=0)
    if np.any(counts == 0):
        return None
    starts = ends - counts
    locations = decode_strings(np.asarray(region.table["location"].data[:]))
    spans_areas = [
        len(set(locations[rows[s:e]])) > 1 for s, e in zip(starts, ends, strict=True)
    ]
    if any(spans_areas):
        warnings.warn(
            f"{sum(spans_areas)} unit(s) of {name} are linked to electrodes in more "
            "than one location; each unit was given the location of its first "
            "electrode.",
            DataRepairWarning,
            stacklevel=_WARN_LEVEL + 2,
        )
    return rows[starts]


def _brain_regions(areas: np.ndarray, name: str) -> np.ndarray:
    """Shorten 'brain_region: ALM; hemisphere: left; ...' to 'ALM' (with a warning)."""
    long_form = [";" in a and ":" in a for a in areas]
    if not any(long_form):
        return areas

    parsed = []
    for text, is_long in zip(areas, long_form, strict=True):
        fields = (
            dict(part.split(":", 1) for part in text.split(";") if ":" in part)
            if is_long
            else {}
        )
        fields = {key.strip(): value.strip() for key, value in fields.items()}
        parsed.append(fields.get("brain_region", text))
    parsed = np.array(parsed, dtype=object)
    warnings.warn(
        f"the electrode locations of {name} are 'key: value; ...' lists, e.g. "
        f"{str(areas[int(np.argmax(long_form))])!r}; the brain_region entry "
        f"({sorted(set(parsed))}) was used as the area.",
        DataRepairWarning,
        stacklevel=_WARN_LEVEL + 1,
    )
    return parsed


def _no_area_message(units: Units, problem: str) -> str:
    candidates = [
        c
        for c in units.colnames
        if c not in RESERVED_UNIT_COLUMNS and not c.startswith(TRUTH_PREFIX)
    ]
    return (
        f"{problem} Pass area=<units column> naming the column "
        f"that holds each unit's area (candidates: {candidates}), or "
        "area='<name>' to give every unit the same area."
    )


def _unlinked_locations(nwbfile: NWBFile) -> str:
    """Name the electrode locations a file has, when its units do not use them."""
    electrodes = nwbfile.electrodes
    if electrodes is None or "location" not in electrodes.colnames:
        return ""
    locations = sorted(set(decode_strings(np.asarray(electrodes["location"].data[:]))))
    locations = [str(location) for location in locations if location]
    if not locations:
        return ""
    return (
        f" Its electrodes table has the locations {locations[:10]}, but the units "
        "do not say which electrodes they were recorded on."
    )
