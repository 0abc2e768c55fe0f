"""Many sessions at once on ``dask.distributed``.

:func:`analyze_many` runs :func:`errsig.analyze.analyze_session` on every file
of a list, one task per session, on a dask cluster (a local one by default, or
any cluster a :class:`distributed.Client` points at, for example one started by
dask-jobqueue on a SLURM cluster). The results come back as one
``xarray.DataTree`` whose group datasets carry a ``session`` dimension;
:func:`select_session` takes one session back out of it. ``docs/scale.md``
describes the set-up, the measured costs and the limitations.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from errsig._exceptions import ErrsigError
from errsig.analyze import AnalysisConfig, analyze_session
from errsig.session import Session

__all__ = [
    "POSITIONAL_DIMS",
    "analyze_many",
    "bin_trials_chunked",
    "select_session",
    "stack_sessions",
]

logger = logging.getLogger(__name__)

#: Dimensions that number things of one session only (its units, trials, spikes
#: and windows of trials): sessions are stacked along them by position.
POSITIONAL_DIMS = ("unit", "trial", "spike", "window")

#: Worker deaths a task may be part of before dask gives up on it, on the local
#: cluster :func:`analyze_many` starts (dask's own default is 3).
ALLOWED_WORKER_DEATHS = 3


@dataclasses.dataclass(frozen=True)
class _Failure:
    """A session that could not be analysed: its file and the error."""

    file: str
    error: str
    message: str


def analyze_many(
    paths: Sequence[str | os.PathLike],
    *,
    client: object | None = None,
    config: AnalysisConfig | None = None,
    columns: dict[str, str] | None = None,
    area: str | None = None,
    progress: bool = False,
    retries: int = 1,
    read: Callable[[str], Session] | None = None,
) -> xr.DataTree:
    """Analyse many sessions on a dask cluster, one task per session.

    Each task reads one file and runs :func:`~errsig.analyze.analyze_session`
    with ``config`` (and so with its seed) on a worker, so every session's
    numbers are those of analysing it alone, to the bit. A session that fails
    is logged and listed in ``attrs["failures"]`` while the others complete.

    Parameters
    ----------
    paths : sequence of path
        NWB files, one session each, in the order the results should keep.
    client : distributed.Client, optional
        The cluster to run on. Without one, a ``LocalCluster`` of one
        single-threaded worker process per core is started and closed when the
        sessions are done; its dashboard address is logged.
    config : AnalysisConfig, optional
        Settings of every session; the documented defaults when omitted.
    columns : dict, optional
        Column mapping handed to :func:`errsig.io.read_nwb` for every file.
    area : str, optional
        Units column holding the area, handed to :func:`errsig.io.read_nwb`.
    progress : bool, default=False
        Show a progress bar of the sessions completed.
    retries : int, default=1
        Times a task that raised an unexpected error (not an
        :class:`~errsig.ErrsigError`, which names a problem of the data and is
        reported at once) is run again. A task whose *worker died* is re-run by
        the scheduler up to ``distributed.scheduler.allowed-failures`` times
        (3 on the local cluster started here).
    read : callable, optional
        ``read(path) -> Session`` in place of :func:`errsig.io.read_nwb`, for
        other file formats; it must be importable by the workers.

    Returns
    -------
    xarray.DataTree
        The groups of :func:`~errsig.analyze.analyze_session`, each stacked
        over a ``session`` dimension labelled by the file paths as given (see
        :func:`stack_sessions` for how sessions with different numbers of
        units or trials are combined). The root's attrs hold the settings, the
        seed, the package versions, ``sessions`` (JSON: file, session id and
        methods paragraph of each session analysed) and ``failures`` (JSON: one
        ``{"file", "error", "message"}`` per session that failed).

    Raises
    ------
    ErrsigError
        If ``paths`` is empty or names a file twice, if ``config.null`` is
        ``"session"`` (not available for every step yet, see
        ``docs/scale.md``), or if every session failed (the message lists each
        file and its error).

    See Also
    --------
    errsig.analyze.analyze_session, select_session, stack_sessions

    Notes
    -----
    Cost: one session per task, so the wall time is about that of the slowest
    sessions divided among the workers; each worker holds one session's
    binned counts and surrogates at a time (``docs/scale.md`` gives measured
    numbers). Worker processes are used rather than threads because much of
    the analysis holds the GIL.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import sim
    >>> from distributed import Client, LocalCluster
    >>> from errsig.analyze import AnalysisConfig
    >>> from errsig.batch import analyze_many
    >>> from errsig.io import write_nwb
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> paths = []
    >>> for seed in (1, 2):
    ...     session = sim.simulate("S1", rng=seed, n_units=6, n_trials=160)
    ...     write_nwb(session, folder / f"s{seed}.nwb")
    ...     paths.append(folder / f"s{seed}.nwb")
    >>> config = AnalysisConfig(steps=("information",), n_perm=20, seed=0)
    >>> with LocalCluster(n_workers=1, processes=False,
    ...                   dashboard_address=None) as cluster, Client(cluster) as c:
    ...     tree = analyze_many(paths, client=c, config=config)
    >>> tree["information/error"]["mi"].dims
    ('session', 'unit', 'time')
    """
    paths = _check_paths(paths)
    config = config or AnalysisConfig()
    if config.null == "session":
        raise ErrsigError(
            "analyze_many cannot run null='session': it analyses each session "
            "alone, while a session permutation pairs each session with the "
            "others' behaviour (and the unit classification has no such null). "
            "Run the sessions with the default null, or draw the surrogates with "
            "errsig.stats.session_permutation and pass them as `surrogates` to "
            "mutual_information, decode or reward_coupling (docs/scale.md)."
        )
    retries = int(retries)

    own_cluster = client is None
    if own_cluster:
        client = _local_client()
    try:
        results = _run_tasks(
            client, paths, config, columns, area, read, progress, retries
        )
    finally:
        if own_cluster:
            cluster = client.cluster
            client.close()
            cluster.close()

    trees = {path: result for path, result in results.items() if _is_tree(result)}
    failures = [result for result in results.values() if not _is_tree(result)]
    for failure in failures:
        logger.error("%s failed: %s: %s", failure.file, failure.error, failure.message)
    if not trees:
        listing = "; ".join(f"{f.file}: {f.error}: {f.message}" for f in failures)
        raise ErrsigError(
            f"every session failed, so there is nothing to return: {listing}"
        )

    tree = _combine(trees)
    tree.attrs["failures"] = json.dumps([dataclasses.asdict(f) for f in failures])
    logger.info("%d sessions analysed, %d failed", len(trees), len(failures))
    return tree


def stack_sessions(datasets: Sequence[xr.Dataset], labels: Sequence[str]) -> xr.Dataset:
    """Stack one result group of several sessions along a ``session`` dimension.

    Dimensions that name the same thing in every session (``time``, ``area``,
    ``component``, ``lag``, ...) are joined by label, the union of the labels
    kept. Units, trials and spikes (:data:`POSITIONAL_DIMS`) are different
    things in each session, so they are numbered by position within their
    session: unit 0 is the first unit *of each session*. Their original labels
    are kept as coordinates ``unit_id`` / ``trial_id`` (session, unit / trial),
    and a boolean coordinate ``valid_unit`` / ``valid_trial`` /
    ``valid_spike`` marks the positions a session really has; the others are
    padding: NaN for numbers (integer variables become floating point), False
    for flags, "" for labels. Every non-index coordinate gets the ``session``
    dimension.

    Parameters
    ----------
    datasets : sequence of xarray.Dataset
        The same result group (e.g. ``information/error``) of each session.
    labels : sequence of str
        A unique label per session.

    Returns
    -------
    xarray.Dataset

    Notes
    -----
    To pool the units of all sessions into one flat ``unit`` axis, stack and
    drop the padding: ``ds.stack(pooled=("session", "unit"))`` then
    ``.isel(pooled=ds.valid_unit.stack(pooled=("session", "unit")).values)``.

    Examples
    --------
    >>> import numpy as np
    >>> import xarray as xr
    >>> from errsig.batch import stack_sessions
    >>> a = xr.Dataset({"mi": ("unit", [0.1, 0.2])}, coords={"unit": [4, 7]})
    >>> b = xr.Dataset({"mi": ("unit", [0.3])}, coords={"unit": [2]})
    >>> stacked = stack_sessions([a, b], ["a", "b"])
    >>> stacked["mi"].values
    array([[0.1, 0.2],
           [0.3, nan]])
    >>> stacked["unit_id"].values
    array([[ 4.,  7.],
           [ 2., nan]])
    """
    labels = [str(label) for label in labels]
    positional = [_by_position(ds) for ds in datasets]
    sizes = {
        dim: max(ds.sizes.get(dim, 0) for ds in positional)
        for dim in POSITIONAL_DIMS
        if any(dim in ds.dims for ds in positional)
    }
    padded = []
    for ds in positional:
        valid = {
            f"valid_{dim}": (dim, np.ones(ds.sizes[dim], dtype=bool))
            for dim in sizes
            if dim in ds.dims
        }
        ds = ds.assign_coords(valid)
        wanted = {dim: np.arange(size) for dim, size in sizes.items() if dim in ds.dims}
        padded.append(ds.reindex(wanted, fill_value=_fill_values(ds)))
    aligned = xr.align(
        *padded, join="outer", exclude=list(sizes), fill_value=_merged_fills(padded)
    )
    stacked = xr.concat(
        aligned,
        dim=xr.Variable("session", np.asarray(labels)),
        data_vars="all",
        coords="all",
        join="exact",
        combine_attrs="drop_conflicts",
    )
    for name, variable in stacked.variables.items():
        dtypes = {str(ds[name].dtype) for ds in positional if name in ds.variables}
        if variable.dtype.kind == "f" and len(dtypes) == 1 and "int" in min(dtypes):
            variable.attrs["dtype_before_padding"] = min(dtypes)
    differing = _differing_attrs(datasets, stacked.attrs)
    if differing:
        stacked.attrs["session_attrs"] = json.dumps(differing, default=_jsonable)
    return stacked


def bin_trials_chunked(
    session: Session, *, unit_chunk: int = 250, **options: object
) -> xr.Dataset:
    """Bin a big session lazily: ``counts`` as a dask array chunked over units.

    Each chunk of ``unit_chunk`` units is binned only when it is computed, by
    :func:`errsig.bin_trials` on that chunk's units, so a session with
    thousands of units never holds all its counts at once in analyses that
    work chunk by chunk (the per-unit information of
    :func:`errsig.information.mutual_information`).

    Parameters
    ----------
    session : Session
        The recording.
    unit_chunk : int, default=250
        Units per chunk. At 2,000 trials × 50 bins the per-unit information
        test needs about 4.3 GB per 1,000 units held at once
        (``docs/scale.md``), so 250 keeps it near 1 GB.
    **options
        ``align``, ``window`` and ``bin_size`` of :func:`errsig.bin_trials`.

    Returns
    -------
    xarray.Dataset
        As :func:`errsig.bin_trials`, with the same values, but ``counts``
        backed by a dask array with chunks ``(n_trials, unit_chunk, n_bins)``.

    Examples
    --------
    >>> import sim
    >>> from errsig import bin_trials
    >>> from errsig.batch import bin_trials_chunked
    >>> session = sim.simulate("S0", rng=0, n_units=5, n_trials=100)
    >>> lazy = bin_trials_chunked(session, unit_chunk=2, bin_size=0.1)
    >>> lazy["counts"].chunksizes["unit"]
    (2, 2, 1)
    >>> bool((lazy["counts"] == bin_trials(session, bin_size=0.1)["counts"]).all())
    True
    """
    import dask
    import dask.array

    from errsig.binning import bin_trials

    if not isinstance(unit_chunk, int) or unit_chunk < 1:
        raise ErrsigError(
            f"`unit_chunk` must be a positive integer; got {unit_chunk!r}."
        )
    unit_ids = session.units.index.to_numpy()
    template = bin_trials(session.select(units=unit_ids[:1]), **options)
    n_trials, _, n_bins = template["counts"].transpose("trial", "unit", "time").shape

    chunks = []
    for start in range(0, len(unit_ids), unit_chunk):
        units = unit_ids[start : start + unit_chunk]
        counts = dask.delayed(_chunk_counts)(session, units, options)
        chunks.append(
            dask.array.from_delayed(
                counts, shape=(n_trials, len(units), n_bins), dtype=np.int32
            )
        )
    counts = dask.array.concatenate(chunks, axis=1)
    return (
        template.drop_vars(["counts", "unit", "area"])
        .assign(counts=(("trial", "unit", "time"), counts, template["counts"].attrs))
        .assign_coords(
            unit=unit_ids, area=("unit", session.units["area"].to_numpy().astype(str))
        )
    )


def _chunk_counts(session: Session, units: np.ndarray, options: dict) -> np.ndarray:
    from errsig.binning import bin_trials

    counts = bin_trials(session.select(units=units), **options)["counts"]
    return counts.transpose("trial", "unit", "time").values.astype(np.int32)


def select_session(tree: xr.DataTree, session: int | str) -> xr.DataTree:
    """Take one session out of the result of :func:`analyze_many`.

    The padding of :func:`stack_sessions` is dropped and the units and trials
    get their own labels back, so the groups read as those of
    :func:`~errsig.analyze.analyze_session` for that session (integer
    variables of padded sessions stay floating point).

    Parameters
    ----------
    tree : xarray.DataTree
        From :func:`analyze_many` (or :func:`errsig.analyze.read_results`).
    session : int or str
        Position in the ``session`` dimension, or the session's label (its
        file path as given).

    Returns
    -------
    xarray.DataTree

    Examples
    --------
    >>> import numpy as np
    >>> import xarray as xr
    >>> from errsig.batch import select_session, stack_sessions
    >>> a = xr.Dataset({"mi": ("unit", [0.1, 0.2])}, coords={"unit": [4, 7]})
    >>> b = xr.Dataset({"mi": ("unit", [0.3])}, coords={"unit": [2]})
    >>> tree = xr.DataTree.from_dict({"information": stack_sessions([a, b], "ab")})
    >>> select_session(tree, "b")["information"]["unit"].values
    array([2])
    """
    groups = {}
    for node in tree.subtree:
        ds = node.to_dataset(inherit=False)
        if "session" not in ds.dims:
            continue
        labels = [str(label) for label in ds["session"].values]
        if isinstance(session, str):
            if session not in labels:
                continue
            position = labels.index(session)
        elif -len(labels) <= session < len(labels):
            position = session % len(labels)
        else:
            continue
        groups[node.path] = _restore_labels(ds.isel(session=position), position)
    if not groups:
        raise ErrsigError(
            f"`session`={session!r} is not in the results; the sessions are "
            f"{_session_labels(tree)}."
        )
    selected = xr.DataTree.from_dict(groups)
    selected.attrs.update(tree.attrs)
    # the session's own record (file, identifier, methods paragraph), so that
    # the selection reads as that session's own results
    records = json.loads(selected.attrs.pop("sessions", "[]"))
    if position < len(records):
        record = records[position]
        selected.attrs.update(
            source=record["file"],
            session_id=record["session_id"],
            methods=record["methods"],
        )
    return selected


def _check_paths(paths: Sequence[str | os.PathLike]) -> list[str]:
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    paths = [str(path) for path in paths]
    if not paths:
        raise ErrsigError("`paths` is empty; give at least one NWB file.")
    repeated = sorted({path for path in paths if paths.count(path) > 1})
    if repeated:
        raise ErrsigError(
            f"`paths` names {repeated} more than once; each session is analysed "
            "once, so list every file once."
        )
    return paths


def _local_client() -> object:
    import dask
    from distributed import Client, LocalCluster

    n_workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    with dask.config.set(
        {"distributed.scheduler.allowed-failures": ALLOWED_WORKER_DEATHS}
    ):
        cluster = LocalCluster(
            n_workers=max(1, n_workers), threads_per_worker=1, processes=True
        )
    client = Client(cluster)
    logger.info(
        "started a local dask cluster of %d worker processes; dashboard: %s",
        len(cluster.workers),
        client.dashboard_link,
    )
    return client


def _run_tasks(
    client: object,
    paths: list[str],
    config: AnalysisConfig,
    columns: dict[str, str] | None,
    area: str | None,
    read: Callable[[str], Session] | None,
    progress: bool,
    retries: int,
) -> dict[str, xr.DataTree | _Failure]:
    """Submit one task per file; results keyed by path, in the given order."""
    from distributed import as_completed
    from tqdm.auto import tqdm

    logger.info(
        "analysing %d sessions on %s (dashboard: %s)",
        len(paths),
        client.scheduler.address,
        getattr(client, "dashboard_link", "none"),
    )
    level = logging.getLogger("errsig").getEffectiveLevel()
    client.forward_logging("errsig", level=level)
    futures = {
        client.submit(
            _analyze_file,
            path,
            config,
            columns,
            area,
            read,
            level,
            key=f"errsig-analyze-{index}-{Path(path).name}",
            retries=retries,
            pure=False,
        ): path
        for index, path in enumerate(paths)
    }
    results: dict[str, xr.DataTree | _Failure] = {}
    bar = tqdm(total=len(paths), desc="sessions", disable=None if progress else True)
    for future in as_completed(futures):
        path = futures[future]
        if future.status == "error":
            error = future.exception()
            results[path] = _Failure(path, type(error).__name__, str(error))
        else:
            results[path] = future.result()
        if _is_tree(results[path]):
            logger.info("session done: %s", path)
        future.release()
        bar.update()
    bar.close()
    return {path: results[path] for path in paths}


def _analyze_file(
    path: str,
    config: AnalysisConfig,
    columns: dict[str, str] | None,
    area: str | None,
    read: Callable[[str], Session] | None,
    log_level: int,
) -> xr.DataTree | _Failure:
    """Read one file and analyse it (the task); data errors come back as values."""
    from errsig.io import read_nwb

    logging.getLogger("errsig").setLevel(log_level)
    try:
        session = read(path) if read else read_nwb(path, columns=columns, area=area)
        return analyze_session(session, config)
    except ErrsigError as error:
        return _Failure(path, type(error).__name__, str(error))


def _is_tree(result: object) -> bool:
    return isinstance(result, xr.DataTree)


def _combine(trees: dict[str, xr.DataTree]) -> xr.DataTree:
    """One tree: every group stacked over the sessions that have it."""
    paths: list[str] = []
    for tree in trees.values():
        for node in tree.subtree:
            if node.has_data and node.path not in paths:
                paths.append(node.path)

    groups = {}
    for path in paths:
        members = {
            label: tree[path].to_dataset(inherit=False)
            for label, tree in trees.items()
            if _has_group(tree, path)
        }
        stacked = stack_sessions(list(members.values()), list(members))
        session_ids = [trees[label].attrs.get("session_id", "") for label in members]
        groups[path] = stacked.assign_coords(session_id=("session", session_ids))

    combined = xr.DataTree.from_dict(groups)
    first = next(iter(trees.values()))
    combined.attrs.update(
        {key: first.attrs[key] for key in ("settings", "seed", "versions")}
    )
    combined.attrs["sessions"] = json.dumps(
        [
            {
                "file": label,
                "session_id": str(tree.attrs.get("session_id", "")),
                "methods": str(tree.attrs.get("methods", "")),
            }
            for label, tree in trees.items()
        ]
    )
    return combined


def _has_group(tree: xr.DataTree, path: str) -> bool:
    try:
        return tree[path].has_data
    except KeyError:
        return False


def _by_position(ds: xr.Dataset) -> xr.Dataset:
    """Renumber the positional dimensions 0, 1, ...; keep labels as ``*_id``."""
    for dim in POSITIONAL_DIMS:
        if dim not in ds.dims:
            continue
        if dim in ds.variables:
            labels = ds[dim].values
            ds = ds.drop_vars(dim).assign_coords({f"{dim}_id": (dim, labels)})
        ds = ds.assign_coords({dim: np.arange(ds.sizes[dim])})
    return ds


def _fill_values(ds: xr.Dataset) -> dict[str, object]:
    """Return the padding of each variable: False, "" or NaN."""
    fills: dict[str, object] = {}
    for name, variable in ds.variables.items():
        if variable.dtype == bool:
            fills[name] = False
        elif variable.dtype.kind in "US":
            fills[name] = ""
        else:
            fills[name] = np.nan
    return fills


def _merged_fills(datasets: list[xr.Dataset]) -> dict[str, object]:
    fills: dict[str, object] = {}
    for ds in datasets:
        fills.update(_fill_values(ds))
    return fills


def _differing_attrs(
    datasets: Sequence[xr.Dataset], kept: dict[str, object]
) -> dict[str, list[object]]:
    """Attrs whose values differ between sessions: {name: value of each session}."""
    names = dict.fromkeys(name for ds in datasets for name in ds.attrs)
    return {
        name: [ds.attrs.get(name) for ds in datasets]
        for name in names
        if name not in kept
    }


def _jsonable(value: object) -> object:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def _restore_labels(ds: xr.Dataset, position: int) -> xr.Dataset:
    """Drop a session's padding and give its units and trials their labels back."""
    ds = ds.drop_vars(["session", "session_id"], errors="ignore")
    differing = json.loads(ds.attrs.pop("session_attrs", "{}"))
    for name, values in differing.items():
        if values[position] is not None:
            ds.attrs[name] = values[position]
    for dim in POSITIONAL_DIMS:
        if dim not in ds.dims:
            continue
        valid = ds[f"valid_{dim}"].values.astype(bool)
        ds = ds.isel({dim: valid}).drop_vars(f"valid_{dim}")
        ds = ds.drop_vars(dim)
        if f"{dim}_id" in ds.variables:
            labels = ds[f"{dim}_id"].values
            dtype = ds[f"{dim}_id"].attrs.get("dtype_before_padding")
            labels = labels if dtype is None else labels.astype(dtype)
            ds = ds.drop_vars(f"{dim}_id").assign_coords({dim: labels})
    for name, variable in list(ds.variables.items()):
        dtype = variable.attrs.pop("dtype_before_padding", None)
        if dtype is not None and not np.isnan(variable.values).any():
            ds[name] = variable.astype(dtype)
    return ds


def _session_labels(tree: xr.DataTree) -> list[str]:
    for node in tree.subtree:
        if "session" in node.dims:
            return [str(label) for label in node["session"].values]
    return []
