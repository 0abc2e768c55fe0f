"""``errsig info``: what an NWB file holds, and what each analysis still lacks."""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from typing import BinaryIO

import numpy as np
import pandas as pd

from errsig._exceptions import ErrsigWarning
from errsig.io._columns import resolve_mapping
from errsig.io._open import describe_source, open_nwb
from errsig.io._read import read_session
from errsig.io._units import NoAreaError, NoUnitsError
from errsig.session import ANALYSIS_REQUIREMENTS, Session

__all__ = ["describe_nwb"]

_UNKNOWN_AREA = "<unknown area>"


def describe_nwb(
    path: str | os.PathLike | BinaryIO,
    *,
    columns: Mapping[str, str] | str | None = None,
    area: str | None = None,
) -> str:
    """Summarise an NWB file for ``errsig info``.

    Reads the file as :func:`~errsig.io.read_nwb` does and reports the units per
    area with their spike counts, the trials and their columns, the event
    columns available for alignment, the behaviour found, the repairs made on
    reading and, for each analysis, the trial columns still missing. When no
    brain area can be found the summary says so (and how to give one) instead
    of failing.

    Parameters
    ----------
    path : str, path-like or binary file object
        The NWB file.
    columns : dict of str to str, or str, optional
        Column mapping or preset name, as for :func:`~errsig.io.read_nwb`.
    area : str, optional
        Units column (or single name) giving each unit's area, as for
        :func:`~errsig.io.read_nwb`.

    Returns
    -------
    str
        A multi-line, human-readable summary.

    Raises
    ------
    NWBReadError
        If the file cannot be read at all (see :func:`~errsig.io.read_nwb`).
    ColumnError
        If ``columns`` names a column the file lacks.

    Examples
    --------
    >>> import pandas as pd, pathlib, tempfile
    >>> from errsig import Session
    >>> from errsig.io import describe_nwb, write_nwb
    >>> session = Session.from_spike_trains(
    ...     [[0.1, 0.4], [0.2]],
    ...     units=pd.DataFrame({"area": ["M1", "PMd"]}),
    ...     trials=pd.DataFrame({"start_time": [0.0], "stop_time": [1.0],
    ...                          "go_cue_time": [0.3]}),
    ... )
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "tiny.nwb"
    >>> write_nwb(session, path)
    >>> print(describe_nwb(path))  # doctest: +ELLIPSIS
    File: .../tiny.nwb
    ...
    Units: 2 in 2 area(s), 3 spikes...
    ...
    Event columns for alignment: go_cue_time
    ...
    """
    name = describe_source(path)
    mapping = resolve_mapping(columns)
    area_problem = None
    with (
        open_nwb(path) as (io, nwbfile),
        warnings.catch_warnings(record=True) as caught,
    ):
        warnings.simplefilter("always", ErrsigWarning)
        try:
            session = read_session(io, nwbfile, name, mapping, area)
        except NoUnitsError as error:
            return "\n".join(_without_units(nwbfile, name, str(error)))
        except NoAreaError as error:
            area_problem = str(error)
            session = read_session(io, nwbfile, name, mapping, _UNKNOWN_AREA)
        repairs = list(
            dict.fromkeys(
                str(w.message) for w in caught if issubclass(w.category, ErrsigWarning)
            )
        )
        header = _header(nwbfile, name)

    lines = [*header, ""]
    lines += _units_lines(session, area_problem)
    lines += ["", *_trials_lines(session)]
    lines += ["", *_behavior_lines(session)]
    if repairs:
        lines += ["", "Repairs made on reading:", *(f"  - {r}" for r in repairs)]
    lines += ["", *_missing_lines(session)]
    return "\n".join(lines)


def _without_units(nwbfile: object, name: str, problem: str) -> list[str]:
    """Describe a file with no units table: what it holds instead."""
    lines = [*_header(nwbfile, name), "", f"Units: none. {problem}"]
    for label, group in (
        ("Interval tables", nwbfile.intervals),
        ("Acquisition", nwbfile.acquisition),
        ("Processing modules", nwbfile.processing),
    ):
        names = ", ".join(sorted(group)) if group else "none"
        lines.append(f"{label}: {names}")
    lines += ["", "Analyses: none can run without units (spike times)."]
    return lines


def _header(nwbfile: object, name: str) -> list[str]:
    subject = nwbfile.subject
    who = (
        "no subject"
        if subject is None
        else f"subject {subject.subject_id or '?'} ({subject.species or '?'})"
    )
    return [
        f"File: {name}",
        f"  identifier {nwbfile.identifier}, session_id {nwbfile.session_id}, {who}",
        f"  session start {nwbfile.session_start_time}",
    ]


def _units_lines(session: Session, area_problem: str | None) -> list[str]:
    counts = session.spike_counts
    lines = [
        f"Units: {session.n_units} in {len(session.areas)} area(s), "
        f"{int(counts.sum())} spikes"
        + (
            f", {session.spike_times.min():.3f}–{session.spike_times.max():.3f} s"
            if len(session.spike_times)
            else ""
        ),
        f"  {'area':<24}{'units':>7}{'spikes':>12}{'median/unit':>13}",
    ]
    areas = session.units["area"].astype(str).to_numpy()
    for area in session.areas:
        in_area = counts[areas == area]
        lines.append(
            f"  {area:<24}{len(in_area):>7}{int(in_area.sum()):>12}"
            f"{float(np.median(in_area)):>13.0f}"
        )
    silent = int(np.count_nonzero(counts == 0))
    if silent:
        lines.append(f"  {silent} unit(s) have no spikes")
    other = [c for c in session.units.columns if c != "area"]
    lines.append(f"  unit columns: {', '.join(other) if other else 'none'}")
    if area_problem:
        lines += ["  AREA NOT FOUND: " + area_problem]
    return lines


def _trials_lines(session: Session) -> list[str]:
    trials = session.trials
    if not len(trials):
        return ["Trials: none"]
    events = [
        c
        for c in trials.columns
        if c.endswith("_time") and c not in ("start_time", "stop_time")
    ]
    lines = [
        f"Trials: {len(trials)}",
        f"  columns: {', '.join(map(str, trials.columns))}",
        f"Event columns for alignment: {', '.join(events) if events else 'none'}",
    ]
    if "reward" in trials.columns:
        rewarded = pd.Series(trials["reward"]).astype("boolean")
        lines.append(
            f"  reward: {int(rewarded.sum())} of {int(rewarded.notna().sum())} "
            "trials rewarded"
        )
    if "phase" in trials.columns:
        phases = trials["phase"].astype(str).value_counts(sort=False)
        lines.append("  phase: " + ", ".join(f"{p} {n}" for p, n in phases.items()))
    return lines


def _behavior_lines(session: Session) -> list[str]:
    if not session.behavior:
        return ["Behaviour: none found (hand position, velocity, force)"]
    lines = ["Behaviour:"]
    for key, series in session.behavior.items():
        lines.append(
            f"  {key}: {series.data.shape[0]} samples × {series.data.shape[1]}, "
            f"{series.unit}"
        )
    return lines


def _missing_lines(session: Session) -> list[str]:
    missing = session.missing_columns()
    if not session.n_trials:
        missing = {analysis: ["trials"] for analysis in ANALYSIS_REQUIREMENTS}
    lines = ["Analyses:"]
    for analysis in ANALYSIS_REQUIREMENTS:
        if analysis in missing:
            lines.append(f"  {analysis}: missing {', '.join(missing[analysis])}")
        else:
            lines.append(f"  {analysis}: ready")
    if missing:
        lines.append(
            "  (map the file's own column names with --columns / read_nwb(columns=))"
        )
    return lines
