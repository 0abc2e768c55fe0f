"""Trials: pick the table, apply the column mapping, convert codes and units."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from pynwb import NWBFile

from errsig._exceptions import ColumnError, DataRepairWarning
from errsig.io._columns import OPTION_KEYS
from errsig.io._tables import table_to_frame

__all__ = ["PHASE_CODES", "REWARD_CODES", "read_trials"]

_WARN_LEVEL = 5  # user -> read_nwb -> _read_session -> read_trials -> helper

#: Result codes of the Miller lab (TrialData, DANDI 000127/000688): only R is a
#: rewarded trial; aborted, failed and incomplete trials are not.
REWARD_CODES = {"R": True, "A": False, "F": False, "I": False}

_REWARD_WORDS = {
    "true": True,
    "false": False,
    "success": True,
    "failure": False,
    "rewarded": True,
    "unrewarded": False,
    "hit": True,
    "miss": False,
}

#: Block codes of the Miller lab's TrialData ``epoch`` column.
PHASE_CODES = {"BL": "baseline", "AD": "force_field", "WO": "washout"}

#: Interval-table columns that are references into other objects.
_REFERENCE_COLUMNS = ("timeseries",)


def read_trials(nwbfile: NWBFile, mapping: dict[str, str], name: str) -> pd.DataFrame:
    """Read the trials table and bring it to errsig's names, codes and units."""
    table = _pick_table(nwbfile, mapping.get("trials_table"), name)
    if table is None:
        return pd.DataFrame(
            {"start_time": np.empty(0), "stop_time": np.empty(0)},
            index=pd.Index(np.empty(0, dtype=np.int64), name="trial"),
        )

    trials = table_to_frame(table, skip=_REFERENCE_COLUMNS)
    trials.index.name = "trial"
    descriptions = {column.name: column.description or "" for column in table.columns}
    trials = _apply_mapping(trials, mapping, name)

    if "reward" in trials.columns:
        trials["reward"] = _as_reward(trials["reward"], mapping.get("reward"), name)
    if "phase" in trials.columns:
        trials["phase"] = _as_phase(trials["phase"])
    if "target_angle" in trials.columns:
        file_column = mapping.get("target_angle", "target_angle")
        trials["target_angle"] = _as_radians(
            trials["target_angle"],
            mapping.get("angle_unit", "auto"),
            descriptions.get(file_column, ""),
            file_column,
            name,
        )
    _to_session_clock(trials, name)
    if len(trials) and trials["stop_time"].isna().all():
        warnings.warn(
            f"stop_time is NaN on every trial of {name}; kept as NaN. Align on an "
            "event column rather than on the trial bounds.",
            DataRepairWarning,
            stacklevel=_WARN_LEVEL - 1,
        )
    return trials


def _pick_table(nwbfile: NWBFile, wanted: str | None, name: str) -> object:
    intervals = dict(nwbfile.intervals) if nwbfile.intervals else {}
    if wanted is not None:
        if wanted not in intervals:
            raise ColumnError(
                f"`columns` asks for the interval table {wanted!r} "
                f"(trials_table), which {name} lacks; its interval tables are "
                f"{sorted(intervals)}."
            )
        return intervals[wanted]
    if nwbfile.trials is not None:
        return nwbfile.trials

    others = sorted(intervals)
    hint = (
        f" It has other interval tables {others}; read one as trials with "
        "columns={'trials_table': '<name>'}."
        if others
        else ""
    )
    warnings.warn(
        f"{name} has no trials table; the session has no trials.{hint}",
        DataRepairWarning,
        stacklevel=_WARN_LEVEL,
    )
    return None


def _apply_mapping(
    trials: pd.DataFrame, mapping: dict[str, str], name: str
) -> pd.DataFrame:
    renames = {}
    for errsig_name, file_column in mapping.items():
        if errsig_name in OPTION_KEYS:
            continue
        if file_column not in trials.columns:
            raise ColumnError(
                f"the column mapping sends errsig's {errsig_name!r} to the trial "
                f"column {file_column!r}, which {name} lacks. Its trial columns are "
                f"{list(trials.columns)}; fix the mapping (columns=...)."
            )
        renames[file_column] = errsig_name
    if len(set(renames.values())) < len(renames):
        raise ColumnError(
            f"the column mapping sends several file columns to one errsig column: "
            f"{renames}; map each errsig column once."
        )

    # A file column that already bears a mapped errsig name gives way to the
    # column the mapping chose (it is kept under a "file_" prefix).
    clashes = {
        target: f"file_{target}"
        for target in renames.values()
        if target in trials.columns and target not in renames
    }
    return trials.rename(columns={**clashes, **renames})


def _as_reward(values: pd.Series, file_column: str | None, name: str) -> pd.Series:
    column = file_column or "reward"
    raw = values.to_numpy()
    if raw.dtype == bool:
        return values
    if raw.dtype.kind in "iuf":
        finite = raw[~pd.isna(raw)]
        if not np.isin(finite, (0, 1)).all():
            raise ColumnError(
                f"trial column {column!r} of {name} (errsig's reward) holds numbers "
                f"other than 0/1 ({sorted(set(finite.tolist()))[:6]}); map reward to "
                "a 0/1, bool or R/A/F/I result column."
            )
        if len(finite) < len(raw):
            warnings.warn(
                f"{len(raw) - len(finite)} trial(s) of {name} have no outcome in "
                f"{column!r}; their reward is <NA>.",
                DataRepairWarning,
                stacklevel=_WARN_LEVEL,
            )
            return values.astype("boolean")
        return pd.Series(raw.astype(bool), index=values.index)

    codes = {**REWARD_CODES, **_REWARD_WORDS}
    text = values.astype(str).str.strip()
    lookup = text.where(text.isin(list(REWARD_CODES)), text.str.lower())
    unknown = sorted(set(lookup) - set(codes))
    if unknown:
        raise ColumnError(
            f"trial column {column!r} of {name} (errsig's reward) holds values errsig "
            f"cannot read as an outcome: {unknown[:6]}. Expected bool, 0/1 or the "
            "result codes R/A/F/I (R = rewarded)."
        )
    return lookup.map(codes).astype(bool)


def _as_phase(values: pd.Series) -> pd.Series:
    text = values.astype(str).str.strip()
    return text.map(lambda code: PHASE_CODES.get(code.upper(), code))


def _as_radians(
    values: pd.Series, unit: str, description: str, column: str, name: str
) -> pd.Series:
    angles = pd.to_numeric(values, errors="coerce").astype(np.float64)
    if unit == "radians":
        return angles
    if unit == "auto" and "radian" in description.lower():
        return angles
    if unit == "auto":
        said_degrees = "degree" in description.lower() or "deg)" in description
        too_large = np.nanmax(np.abs(angles), initial=0.0) > 2 * np.pi + 1e-6
        if not (said_degrees or too_large):
            return angles
        reason = (
            "its description says degrees" if said_degrees else "its values exceed 2π"
        )
        warnings.warn(
            f"trial column {column!r} of {name} (errsig's target_angle) was read "
            f"as degrees because {reason}, and converted to radians. Set "
            "'angle_unit' in the column mapping to say so explicitly.",
            DataRepairWarning,
            stacklevel=_WARN_LEVEL,
        )
    return np.deg2rad(angles)


def _to_session_clock(trials: pd.DataFrame, name: str) -> None:
    """Convert event columns stored relative to trial start into session time."""
    if len(trials) < 2 or "start_time" not in trials.columns:
        return
    start = trials["start_time"].to_numpy(dtype=np.float64)
    relative = []
    for column in trials.columns:
        if not column.endswith("_time") or column in ("start_time", "stop_time"):
            continue
        if trials[column].to_numpy().dtype.kind not in "iuf":
            continue
        values = trials[column].to_numpy(dtype=np.float64)
        # Relative times stay small while start_time grows: every event comes
        # before the first trial starts. (Session-clock events that merely
        # precede their own trial's start, like a fixation cross, track
        # start_time and fail this test.)
        finite = values[np.isfinite(values)]
        if len(finite) >= 2 and finite.max() < np.nanmin(start):
            trials[column] = values + start
            relative.append(column)
    if relative:
        warnings.warn(
            f"the event columns {relative} of {name} are all earlier than the first "
            "trial's start_time, so they count from trial start; start_time was "
            "added to convert them to the session clock.",
            DataRepairWarning,
            stacklevel=_WARN_LEVEL,
        )
