"""Build a standard NWB file from a Session (used by ``write_nwb``)."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import numpy as np
import pandas as pd
from hdmf.common import DynamicTable, DynamicTableRegion, VectorData, VectorIndex
from pynwb import NWBFile, TimeSeries
from pynwb.behavior import BehavioralTimeSeries, Position, SpatialSeries
from pynwb.device import DeviceModel
from pynwb.epoch import TimeIntervals
from pynwb.file import Subject
from pynwb.misc import Units

from errsig._exceptions import ErrsigError
from errsig.io._behavior import EXACT_TIMES_PREFIX, SI_UNITS
from errsig.io._sampling import regular_sampling
from errsig.io._units import (
    RESERVED_UNIT_COLUMNS,
    TRUTH_PREFIX,
    TRUTH_TRAJECTORY_PREFIX,
)
from errsig.session import BehaviorSeries, Session

__all__ = [
    "EXTRA_META_NAME",
    "TRUTH_MODULE",
    "TRUTH_TRIALS",
    "build_nwbfile",
]

#: Name of the scratch entry holding the meta data NWB has no field for (JSON).
EXTRA_META_NAME = "errsig_meta"
TRUTH_MODULE = "truth"
TRUTH_TRIALS = "truth_trials"

#: Meta keys stored in NWB's own fields rather than in the JSON scratch entry.
_NWB_META = (
    "session_id",
    "identifier",
    "subject",
    "source_file",
    "session_start_time",
    "session_description",
    "spike_time_resolution",
    "truth",
)
_TRUTH_TABLES = ("units", "trials", "unit_trial")

_TRIAL_DESCRIPTIONS = {
    "start_time": "start of the trial, seconds (session clock)",
    "stop_time": "end of the trial, seconds (session clock)",
    "go_cue_time": "go cue, seconds (session clock)",
    "move_onset_time": "movement onset, seconds (session clock)",
    "feedback_time": "error feedback shown to the subject, seconds (session clock)",
    "target_angle": "reach direction, radians, 0 = +x (right), counter-clockwise",
    "phase": "block of the session: baseline, force_field or washout",
    "error_x": "x component of the error shown to the subject, meters",
    "error_y": "y component of the error shown to the subject, meters",
    "reward": "whether the trial was rewarded (bool)",
}

_DEFAULT_SUBJECT = {
    "subject_id": "unknown",
    "species": "Macaca mulatta",
    "sex": "U",
    "age": "P6Y",
    "description": "subject of an errsig session (simulated unless stated)",
}


def build_nwbfile(session: Session) -> NWBFile:
    """Return an in-memory NWBFile holding every part of ``session``."""
    meta = session.meta
    _check_ids(session.units.index, "units")
    _check_ids(session.trials.index, "trials")

    start = meta.get("session_start_time")
    if not isinstance(start, dt.datetime):
        start = dt.datetime.now(dt.UTC).replace(microsecond=0)
    nwbfile = NWBFile(
        session_description=str(
            meta.get("session_description", "a session written by errsig")
        ),
        identifier=str(meta.get("identifier") or uuid.uuid4()),
        session_start_time=start,
        session_id=_optional_str(meta.get("session_id")),
        experimenter=["errsig"],
        institution="unknown",
        experiment_description="force-field reaching; spikes, trials and behaviour",
        keywords=["errsig", "motor learning", "error signals"],
        subject=_subject(meta.get("subject")),
        trials=_trials_table(session.trials),
    )

    electrode_rows = _add_electrodes(nwbfile, session.units["area"])
    nwbfile.units = _units_table(session, nwbfile, electrode_rows)
    sampling_rules = _add_behavior(nwbfile, session.behavior)
    _add_truth_trials(nwbfile, meta.get("truth"))
    extra = {**_extra_meta(session), "behavior_sampling": sampling_rules}
    nwbfile.add_scratch(
        json.dumps(extra, default=_json_default),
        name=EXTRA_META_NAME,
        description="errsig meta data NWB has no field for (JSON)",
    )
    return nwbfile


def _check_ids(index: pd.Index, table: str) -> None:
    if not pd.api.types.is_integer_dtype(index.dtype) or not index.is_unique:
        raise ErrsigError(
            f"NWB ids are unique integers, but the {table} index is "
            f"{index.dtype} ({list(index[:3])} ...); reset it (e.g. "
            f"session.{table}.reset_index()) before write_nwb."
        )


def _optional_str(value: object) -> str | None:
    return None if value is None else str(value)


def _subject(subject: object) -> Subject:
    fields = dict(_DEFAULT_SUBJECT)
    if isinstance(subject, dict):
        fields.update({k: str(v) for k, v in subject.items() if v not in (None, "")})
    elif subject is not None:
        fields["subject_id"] = str(subject)
    known = ("subject_id", "species", "sex", "age", "description")
    return Subject(**{key: fields[key] for key in known})


def _add_electrodes(nwbfile: NWBFile, areas: pd.Series) -> np.ndarray:
    """One group and one electrode per area; return each unit's electrode row."""
    model = DeviceModel(
        name="errsig_array_model",
        manufacturer="unknown",
        description="recording array (simulated sessions have no real hardware)",
    )
    nwbfile.add_device_model(model)
    device = nwbfile.create_device(
        name="array", description="one array per area", model=model
    )

    names = areas.astype(str).to_numpy()
    unique_areas = list(pd.unique(names))
    for area in unique_areas:
        group = nwbfile.create_electrode_group(
            name=area.replace("/", "_"),
            description=f"electrodes in {area}",
            location=area,
            device=device,
        )
        nwbfile.add_electrode(group=group, location=area)
    return np.array([unique_areas.index(a) for a in names], dtype=np.int64)


def _units_table(
    session: Session, nwbfile: NWBFile, electrode_rows: np.ndarray
) -> Units:
    reserved = sorted(set(session.units.columns) & set(RESERVED_UNIT_COLUMNS))
    if reserved:
        raise ErrsigError(
            f"units columns {reserved} clash with names NWB reserves for the units "
            "table; rename them before write_nwb."
        )

    n_units = session.n_units
    spike_data = VectorData(
        name="spike_times",
        description="spike times, seconds (session clock)",
        data=session.spike_times,
    )
    region = DynamicTableRegion(
        name="electrodes",
        description="the electrode each unit was recorded on",
        data=electrode_rows,
        table=nwbfile.electrodes,
    )
    columns = [
        VectorIndex(
            name="spike_times_index", data=session.spike_index, target=spike_data
        ),
        spike_data,
        VectorIndex(
            name="electrodes_index",
            data=np.arange(1, n_units + 1, dtype=np.int64),
            target=region,
        ),
        region,
    ]
    for name in session.units.columns.drop("area"):
        columns.append(_vector_data(name, session.units[name], "unit property"))

    truth = session.meta.get("truth") or {}
    columns += _truth_unit_columns(truth, session.units.index)
    return Units(
        name="units",
        description="sorted units",
        id=session.units.index.to_numpy(dtype=np.int64),
        columns=columns,
        electrode_table=nwbfile.electrodes,
        resolution=float(session.meta.get("spike_time_resolution", 1 / 30000)),
    )


def _truth_unit_columns(truth: dict, unit_ids: pd.Index) -> list[VectorData]:
    columns = []
    truth_units = truth.get("units")
    if truth_units is not None:
        if not truth_units.index.sort_values().equals(unit_ids.sort_values()):
            raise ErrsigError(
                "meta['truth']['units'] must have one row per unit, indexed by the "
                "same unit ids as session.units."
            )
        aligned = truth_units.loc[unit_ids]
        for name in aligned.columns:
            columns.append(
                _vector_data(TRUTH_PREFIX + str(name), aligned[name], "ground truth")
            )
    for name, values in (truth.get("unit_trial") or {}).items():
        array = np.asarray(values)
        if array.ndim < 2 or array.shape[0] != len(unit_ids):
            raise ErrsigError(
                f"meta['truth']['unit_trial'][{name!r}] has shape {array.shape}; it "
                f"must be (n_units={len(unit_ids)}, n_trials)."
            )
        columns.append(
            VectorData(
                name=TRUTH_TRAJECTORY_PREFIX + str(name),
                description=f"ground truth: per-trial {name} of each unit",
                data=array,
            )
        )
    return columns


def _trials_table(trials: pd.DataFrame) -> TimeIntervals | None:
    columns = [
        _vector_data(name, trials[name], _TRIAL_DESCRIPTIONS.get(name, "trial column"))
        for name in trials.columns
    ]
    return TimeIntervals(
        name="trials",
        description="trials of the session",
        id=trials.index.to_numpy(dtype=np.int64),
        columns=columns,
    )


def _vector_data(name: str, values: pd.Series, description: str) -> VectorData:
    """Make a table column of a pandas column, keeping bool, numbers, text exact."""
    name = str(name)
    if values.isna().any() and values.dtype.kind not in "fc":
        raise ErrsigError(
            f"column {name!r} has {int(values.isna().sum())} missing values and is "
            "not a float column; NWB cannot store them. Fill them, or make the "
            "column float (NaN), before write_nwb."
        )

    raw = values.to_numpy()
    if isinstance(values.dtype, pd.BooleanDtype):
        data = raw.astype(bool)
    elif raw.dtype.kind in "biuf":
        data = raw
    elif all(isinstance(v, str) for v in raw):
        if any("\x00" in v for v in raw):
            raise ErrsigError(
                f"column {name!r} has text with a NUL character, which HDF5 cannot "
                "store; remove it before write_nwb."
            )
        data = [str(v) for v in raw]
    elif all(isinstance(v, np.ndarray | list | tuple) for v in raw):
        data = _stack_rows(name, raw)
    else:
        raise ErrsigError(
            f"column {name!r} holds {type(raw[0]).__name__} values, which write_nwb "
            "cannot store; use numbers, bools, strings or equal-length arrays."
        )
    return VectorData(name=name, description=description, data=data)


def _stack_rows(name: str, raw: np.ndarray) -> np.ndarray:
    try:
        return np.stack([np.asarray(v) for v in raw])
    except ValueError:
        raise ErrsigError(
            f"column {name!r} holds arrays of different lengths; write_nwb stores "
            "array columns only when every row has the same shape."
        ) from None


def _add_behavior(nwbfile: NWBFile, behavior: dict[str, BehaviorSeries]) -> dict:
    """Add the behaviour module; return how to rebuild each series' times."""
    if not behavior:
        return {}
    module = nwbfile.create_processing_module(
        name="behavior", description="hand position, velocity and force"
    )
    sampling_rules = {}
    other_series = []
    for key, series in behavior.items():
        arguments = {
            "name": key,
            "data": series.data,
            "unit": SI_UNITS.get(key, series.unit or "n.a."),
            "description": series.description or key.replace("_", " "),
        }
        sampling = regular_sampling(series.times)
        if sampling is None:
            arguments["timestamps"] = series.times
        else:
            arguments["starting_time"] = sampling["starting_time"]
            arguments["rate"] = sampling["rate"]
            sampling_rules[key] = sampling
        if sampling is not None and sampling["rule"] == "exact":
            nwbfile.add_scratch(
                series.times,
                name=EXACT_TIMES_PREFIX + key,
                description=f"exact sample times of {key}, seconds",
            )

        if key == "hand_position":
            position = SpatialSeries(
                reference_frame="origin at the centre target, +x right, +y away",
                **arguments,
            )
            module.add(Position(spatial_series=position))
        else:
            other_series.append(TimeSeries(**arguments))
    if other_series:
        module.add(BehavioralTimeSeries(time_series=other_series))
    return sampling_rules


def _add_truth_trials(nwbfile: NWBFile, truth: dict | None) -> None:
    trials = (truth or {}).get("trials")
    if trials is None:
        return
    _check_ids(trials.index, "truth['trials']")
    table = DynamicTable(
        name=TRUTH_TRIALS,
        description="ground truth of each trial of a simulated session",
        id=trials.index.to_numpy(dtype=np.int64),
        columns=[_vector_data(name, trials[name], "ground truth") for name in trials],
    )
    module = nwbfile.create_processing_module(
        name=TRUTH_MODULE, description="ground truth of a simulated session"
    )
    module.add(table)


def _extra_meta(session: Session) -> dict:
    truth = session.meta.get("truth") or {}
    return {
        "meta": {k: v for k, v in session.meta.items() if k not in _NWB_META},
        "truth": {k: v for k, v in truth.items() if k not in _TRUTH_TABLES},
        "has_truth": "truth" in session.meta,
        "units_columns": [str(c) for c in session.units.columns],
        "trials_columns": [str(c) for c in session.trials.columns],
        "behavior_keys": list(session.behavior),
        "index_names": {
            "units": session.units.index.name,
            "trials": session.trials.index.name,
            "truth_units": _index_name(truth.get("units")),
            "truth_trials": _index_name(truth.get("trials")),
        },
        "truth_units_columns": _column_names(truth.get("units")),
        "truth_trials_columns": _column_names(truth.get("trials")),
    }


def _index_name(frame: pd.DataFrame | None) -> object:
    return None if frame is None else frame.index.name


def _column_names(frame: pd.DataFrame | None) -> list[str] | None:
    return None if frame is None else [str(c) for c in frame.columns]


def _json_default(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return {"__ndarray__": value.tolist(), "dtype": str(value.dtype)}
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    raise ErrsigError(
        f"meta holds a {type(value).__name__} ({value!r:.60}), which write_nwb "
        "cannot store; keep meta to numbers, strings, lists, dicts and arrays."
    )


def json_object_hook(obj: dict) -> object:
    """Undo :func:`_json_default` for arrays when reading the JSON back."""
    if "__ndarray__" in obj:
        return np.asarray(obj["__ndarray__"], dtype=obj["dtype"])
    return obj
