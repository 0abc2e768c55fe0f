"""Read and write NWB files: :func:`read_nwb` and :func:`write_nwb`.

Reading turns any NWB 2 file with a units table into a :class:`~errsig.Session`:
spike times are read flat (one read of the data, one of the index), the brain
area of each unit follows a fallback chain, and the trials table is brought to
errsig's column names, codes and units through a column mapping. Every repair is
announced with a :class:`~errsig.DataRepairWarning`; every failure is an
:class:`~errsig.NWBReadError` or :class:`~errsig.ColumnError` that names the file.
``docs/io.md`` is the user guide.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO

from pynwb import NWBHDF5IO

from errsig._exceptions import ErrsigError
from errsig._validation import give_default_permissions
from errsig.io._columns import resolve_mapping
from errsig.io._open import describe_source, open_nwb
from errsig.io._read import read_session
from errsig.io._write import build_nwbfile
from errsig.session import Session

__all__ = ["read_nwb", "write_nwb"]


def read_nwb(
    path: str | os.PathLike | BinaryIO,
    *,
    columns: Mapping[str, str] | str | None = None,
    area: str | None = None,
) -> Session:
    """Read an NWB file into a :class:`~errsig.Session`.

    The file is opened read-only. Spike times are read as one flat array with
    one read of the data and one of the index, never unit by unit.

    Parameters
    ----------
    path : str, path-like or binary file object
        An NWB 2 (HDF5) file, or an open binary file object such as a
        ``remfile.File`` for a remote file.
    columns : dict of str to str, or str, optional
        How the file names errsig's trial columns, ``{errsig name: file
        column}``, e.g. ``{"reward": "outcome"}``; or a preset name from
        :data:`errsig.io.PRESETS`. The option keys ``"trials_table"`` (read another
        interval table as trials) and ``"angle_unit"`` (``"radians"``,
        ``"degrees"`` or ``"auto"``) may be added. Unmapped columns are kept.
    area : str, optional
        Where each unit's brain area is: the name of a units-table column, or
        else a name given to every unit. By default the area is the
        ``location`` of each unit's first electrode, else of its electrode
        group.

    Returns
    -------
    Session
        ``meta`` holds ``session_id``, ``identifier``, ``subject`` (a dict),
        ``source_file``, ``session_start_time`` and, for files written by
        :func:`write_nwb` from a simulation, the ground truth under ``"truth"``.

    Raises
    ------
    NWBReadError
        If the file is missing, empty, truncated, not HDF5, not NWB 2, unreadable
        by pynwb, has no units table, or gives no brain area for some unit.
    ColumnError
        If ``columns`` names a column the file lacks, or a reward column holds
        values that are not an outcome.

    Warns
    -----
    DataRepairWarning
        For each repair: units found outside ``/units``, unsorted spike times,
        'key: value' location strings, event times relative to trial start,
        ``stop_time`` all NaN, angles read as degrees, no trials table.

    See Also
    --------
    write_nwb : the inverse.
    describe_nwb : a summary of a file, for ``errsig info``.

    Examples
    --------
    >>> import numpy as np, pandas as pd, pathlib, tempfile
    >>> from errsig import Session
    >>> from errsig.io import read_nwb, write_nwb
    >>> rng = np.random.default_rng(0)
    >>> session = Session.from_spike_trains(
    ...     [np.sort(rng.uniform(0, 10, 50)), np.sort(rng.uniform(0, 10, 20))],
    ...     units=pd.DataFrame({"area": ["M1", "PMd"]}),
    ...     trials=pd.DataFrame({"start_time": [0.0, 5.0], "stop_time": [5.0, 10.0],
    ...                          "reward": [True, False]}),
    ... )
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "session.nwb"
    >>> write_nwb(session, path)
    >>> again = read_nwb(path)
    >>> again
    <Session: 2 units (M1: 1, PMd: 1), 2 trials, 70 spikes>
    >>> again.equals(session)
    True
    """
    name = describe_source(path)
    with open_nwb(path) as (io, nwbfile):
        return read_session(io, nwbfile, name, resolve_mapping(columns), area)


def write_nwb(
    session: Session, path: str | os.PathLike, *, overwrite: bool = False
) -> None:
    """Write a session as a standard NWB file that :func:`read_nwb` reads back.

    The file holds a Subject (macaque by default), a device, one electrode group
    and electrode per area (its ``location`` is the area), the units table with
    every spike time, unit columns and ``resolution``, the trials table, the
    behaviour (``Position``/``SpatialSeries`` in meters, velocity and force
    ``TimeSeries``) in a ``behavior`` processing module and, for simulated
    sessions, the ground truth. It passes nwbinspector with no critical issue and
    no best-practice violation.

    Parameters
    ----------
    session : Session
        The session; unit and trial ids must be integers.
    path : str or path-like
        The file to write. It is written under a temporary name in the same
        folder and moved into place, so a reader never sees half a file.
    overwrite : bool, default=False
        Replace an existing file.

    Raises
    ------
    ErrsigError
        If ``path`` exists and ``overwrite`` is False, its folder does not exist,
        or the session holds something NWB cannot store (non-integer ids,
        missing values in a non-float column, ragged array columns).

    Notes
    -----
    Ground truth (``meta["truth"]``): ``units`` become unit columns prefixed
    ``truth_``, ``unit_trial`` arrays become 2-D unit columns
    ``truth_trajectory_<name>``, ``trials`` a table ``truth_trials`` in a
    processing module ``truth``. Other meta entries and the column order are
    kept as JSON in the scratch entry ``errsig_meta``.

    Examples
    --------
    >>> import numpy as np, pandas as pd, pathlib, tempfile
    >>> from errsig import Session
    >>> from errsig.io import write_nwb
    >>> session = Session.from_spike_trains(
    ...     [[0.1, 0.4], [0.2]],
    ...     units=pd.DataFrame({"area": ["M1", "M1"]}),
    ...     trials=pd.DataFrame({"start_time": [0.0], "stop_time": [1.0]}),
    ... )
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "tiny.nwb"
    >>> write_nwb(session, path)
    >>> path.exists()
    True
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise ErrsigError(
            f"{path} already exists; pass overwrite=True to replace it, or choose "
            "another name."
        )
    if not path.parent.is_dir():
        raise ErrsigError(f"cannot write {path}: folder {path.parent} does not exist.")

    nwbfile = build_nwbfile(session)
    descriptor, temporary = tempfile.mkstemp(
        prefix=f".{path.stem}.", suffix=".part.nwb", dir=path.parent
    )
    os.close(descriptor)
    try:
        with NWBHDF5IO(temporary, mode="w") as io:
            io.write(nwbfile)
        give_default_permissions(temporary)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
