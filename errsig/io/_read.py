"""Assemble a Session from an open NWB file (shared by read_nwb and describe_nwb)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
from pynwb import NWBHDF5IO, NWBFile

from errsig.io._behavior import read_behavior
from errsig.io._tables import table_to_frame
from errsig.io._trials import read_trials
from errsig.io._units import (
    find_units_table,
    read_spikes,
    read_unit_columns,
    unit_areas,
)
from errsig.io._write import (
    EXTRA_META_NAME,
    TRUTH_MODULE,
    TRUTH_TRIALS,
    json_object_hook,
)
from errsig.session import Session

__all__ = ["read_session"]


def read_session(
    io: NWBHDF5IO,
    nwbfile: NWBFile,
    name: str,
    mapping: dict[str, str],
    area: str | None,
) -> Session:
    """Read a Session from an open file (see ``read_nwb`` for the arguments)."""
    units_table = find_units_table(io, nwbfile, name)
    spike_times, spike_index = read_spikes(units_table, name)
    areas = unit_areas(nwbfile, units_table, area, name)
    unit_columns, truth_units, trajectories = read_unit_columns(units_table)
    units = pd.concat(
        [pd.DataFrame({"area": areas}, index=unit_columns.index), unit_columns],
        axis=1,
    )

    trials = read_trials(nwbfile, mapping, name)
    extra = _extra_meta(nwbfile)
    behavior = read_behavior(
        nwbfile, name, extra.get("behavior_sampling"), extra.get("behavior_keys")
    )
    index_names = extra.get("index_names", {})
    units = _reorder(units, extra.get("units_columns"), index_names.get("units"))
    trials = _reorder(trials, extra.get("trials_columns"), index_names.get("trials"))

    meta = {
        **extra.get("meta", {}),
        "session_id": nwbfile.session_id,
        "identifier": nwbfile.identifier,
        "subject": _subject(nwbfile),
        "source_file": name,
        "session_start_time": nwbfile.session_start_time,
        "session_description": nwbfile.session_description,
    }
    if units_table.resolution is not None and np.isfinite(units_table.resolution):
        meta["spike_time_resolution"] = float(units_table.resolution)
    truth = _truth(nwbfile, truth_units, trajectories, extra)
    if truth is not None:
        meta["truth"] = truth

    # Session's own repair warnings (unsorted spikes) are passed on so that they
    # point at the caller of read_nwb rather than inside the dataclass.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        session = Session(
            spike_times=spike_times,
            spike_index=spike_index,
            units=units,
            trials=trials,
            behavior=behavior,
            meta=meta,
        )
    for warning in caught:
        warnings.warn(warning.message, stacklevel=3)
    return session


def _subject(nwbfile: NWBFile) -> dict | None:
    subject = nwbfile.subject
    if subject is None:
        return None
    fields = ("subject_id", "species", "sex", "age", "description")
    return {key: getattr(subject, key, None) for key in fields}


def _extra_meta(nwbfile: NWBFile) -> dict:
    if EXTRA_META_NAME not in nwbfile.scratch:
        return {}
    text = nwbfile.get_scratch(EXTRA_META_NAME)
    if isinstance(text, bytes | np.ndarray):
        text = np.asarray(text).item()
        text = text.decode() if isinstance(text, bytes) else text
    return json.loads(text, object_hook=json_object_hook)


def _reorder(
    frame: pd.DataFrame, order: list[str] | None, index_name: object = None
) -> pd.DataFrame:
    """Restore the column order and index name a session had when errsig wrote it."""
    if order is None:
        return frame
    if sorted(order) == sorted(map(str, frame.columns)):
        frame = frame[order]
    return frame.rename_axis(index_name)


def _truth(
    nwbfile: NWBFile,
    truth_units: pd.DataFrame,
    trajectories: dict,
    extra: dict,
) -> dict | None:
    truth = dict(extra.get("truth", {}))
    index_names = extra.get("index_names", {})
    if len(truth_units.columns):
        truth["units"] = _reorder(
            truth_units,
            extra.get("truth_units_columns"),
            index_names.get("truth_units"),
        )
    if trajectories:
        truth["unit_trial"] = trajectories
    module = nwbfile.processing.get(TRUTH_MODULE)
    if module is not None and TRUTH_TRIALS in module.data_interfaces:
        truth["trials"] = _reorder(
            table_to_frame(module[TRUTH_TRIALS]),
            extra.get("truth_trials_columns"),
            index_names.get("truth_trials"),
        )
    if not truth and not extra.get("has_truth"):
        return None
    return truth
