"""Behaviour: find hand position, velocity and force, and bring them to SI units."""

from __future__ import annotations

import logging
import warnings

import numpy as np
from pynwb import NWBFile, TimeSeries

from errsig._exceptions import DataRepairWarning, ErrsigError
from errsig.io._sampling import rebuild_times
from errsig.session import BehaviorSeries

__all__ = ["SERIES_NAMES", "SI_UNITS", "behavior_series", "read_behavior"]

logger = logging.getLogger(__name__)

#: Scratch entries holding exact sample times (must match errsig.io._write).
EXACT_TIMES_PREFIX = "errsig_times_"

_WARN_LEVEL = 5  # user -> read_nwb -> _read_session -> read_behavior -> helper

#: File series names recognised for each behaviour key, best match first
#: (compared without regard to case).
SERIES_NAMES = {
    "hand_position": (
        "hand_position",
        "hand_pos",
        "hand",
        "cursor_position",
        "cursor_pos",
        "cursor",
    ),
    "hand_velocity": ("hand_velocity", "hand_vel", "cursor_velocity", "cursor_vel"),
    "hand_force": ("hand_force", "force"),
}

#: The unit each behaviour key is stored in, in a Session and in files we write.
SI_UNITS = {
    "hand_position": "meters",
    "hand_velocity": "meters/second",
    "hand_force": "newtons",
}

_LENGTHS = {
    "m": 1.0,
    "meter": 1.0,
    "meters": 1.0,
    "metre": 1.0,
    "metres": 1.0,
    "cm": 1e-2,
    "centimeter": 1e-2,
    "centimeters": 1e-2,
    "mm": 1e-3,
    "millimeter": 1e-3,
    "millimeters": 1e-3,
}
_SECONDS = ("s", "sec", "second", "seconds")
_FORCES = {"n": 1.0, "newton": 1.0, "newtons": 1.0}


def behavior_series(nwbfile: NWBFile) -> dict[str, TimeSeries]:
    """Every TimeSeries in the behaviour module, by lower-case name.

    Series may sit directly in the module or inside containers such as Position
    or BehavioralTimeSeries.
    """
    module = None
    for module_name, candidate in nwbfile.processing.items():
        if module_name.lower() in ("behavior", "behaviour"):
            module = candidate
            break
    if module is None:
        return {}

    found = {}
    for interface in module.data_interfaces.values():
        if isinstance(interface, TimeSeries):
            found.setdefault(interface.name.lower(), interface)
            continue
        for attribute in ("spatial_series", "time_series"):
            for series in (getattr(interface, attribute, None) or {}).values():
                found.setdefault(series.name.lower(), series)
    return found


def read_behavior(
    nwbfile: NWBFile,
    name: str,
    sampling: dict | None = None,
    written_keys: list[str] | None = None,
) -> dict[str, BehaviorSeries]:
    """Hand position, velocity and force in SI units, where the file has them.

    For files errsig wrote, ``sampling`` says how to rebuild regular sample
    times to the bit (see :mod:`errsig.io._sampling`) and ``written_keys`` names
    the session's other behaviour series, read back under their own names.
    """
    available = behavior_series(nwbfile)
    sampling = sampling or {}
    wanted = dict(SERIES_NAMES)
    for key in written_keys or ():
        wanted.setdefault(key, (key.lower(),))
    behavior = {}
    for key, candidates in wanted.items():
        series = next((available[c] for c in candidates if c in available), None)
        if series is None:
            continue
        times = _sample_times(nwbfile, series, key, sampling.get(key))
        converted = _as_behavior(series, times, key, name)
        if converted is not None:
            behavior[key] = converted
    return behavior


def _as_behavior(
    series: TimeSeries, times: np.ndarray, key: str, name: str
) -> BehaviorSeries | None:
    data = np.asarray(series.data[:], dtype=np.float64)
    conversion = float(series.conversion)
    offset = float(getattr(series, "offset", 0.0) or 0.0)
    if conversion != 1.0 or offset != 0.0:
        data = data * conversion + offset

    scale, unit = _si_scale(series.unit or "", key)
    if scale is None:
        logger.info(
            "%s: %s is in %r, which errsig does not convert", name, series.name, unit
        )
    elif scale != 1.0:
        data = data * scale

    try:
        return BehaviorSeries(times, data, unit, series.description or "")
    except ErrsigError as error:
        warnings.warn(
            f"behaviour series {series.name!r} of {name} was left out: {error}",
            DataRepairWarning,
            stacklevel=_WARN_LEVEL,
        )
        return None


def _si_scale(unit: str, key: str) -> tuple[float | None, str]:
    text = unit.strip().lower()
    if key not in SI_UNITS:
        return 1.0, unit
    if key == "hand_force":
        factor = _FORCES.get(text)
        return (factor, SI_UNITS[key]) if factor is not None else (None, unit)
    if key == "hand_position":
        factor = _LENGTHS.get(text)
        return (factor, SI_UNITS[key]) if factor is not None else (None, unit)
    numerator, _, denominator = text.partition("/")
    factor = _LENGTHS.get(numerator.strip())
    if factor is None or denominator.strip() not in _SECONDS:
        return None, unit
    return factor, SI_UNITS[key]


def _sample_times(
    nwbfile: NWBFile, series: TimeSeries, key: str, rule: dict | None
) -> np.ndarray:
    if series.timestamps is not None:
        return np.asarray(series.timestamps[:], dtype=np.float64)
    n_samples = len(series.data)
    if rule is not None and rule["rule"] == "exact":
        return np.asarray(nwbfile.get_scratch(EXACT_TIMES_PREFIX + key)[:])
    start = float(series.starting_time or 0.0)
    if rule is not None:
        return rebuild_times(start, series.rate, rule["step"], n_samples, rule["rule"])
    return rebuild_times(start, float(series.rate), None, n_samples, "divide")
