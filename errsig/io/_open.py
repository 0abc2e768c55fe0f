"""Open an NWB file read-only, turning every failure into a clear NWBReadError."""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import h5py
from pynwb import NWBHDF5IO, NWBFile

from errsig._exceptions import NWBReadError

__all__ = ["describe_source", "open_nwb"]

logger = logging.getLogger(__name__)

#: HDF5 chunk cache per dataset: larger than hdmf's ~4 MiB chunks, so reading a
#: compressed dataset never decompresses the same chunk twice.
_CHUNK_CACHE_BYTES = 64 * 2**20


def describe_source(source: str | os.PathLike | BinaryIO) -> str:
    """Name a file (a path, or an open file object) for messages."""
    if isinstance(source, str | os.PathLike):
        return str(source)
    for attribute in ("name", "url", "_url"):  # open files, fsspec, remfile
        value = getattr(source, attribute, None)
        if isinstance(value, str | os.PathLike):
            return str(value)
    return repr(source)


@contextmanager
def open_nwb(
    source: str | os.PathLike | BinaryIO,
) -> Iterator[tuple[NWBHDF5IO, NWBFile]]:
    """Open ``source`` read-only and yield ``(io, nwbfile)``; close both after.

    ``source`` is a path or an open binary file object (e.g. a ``remfile.File``).
    """
    name = describe_source(source)
    h5_file = _open_hdf5(source, name)
    io = None
    try:
        try:
            io = NWBHDF5IO(file=h5_file, mode="r")
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                nwbfile = io.read()
        except Exception as error:
            raise _read_error(error, name) from error
        for warning in caught:
            logger.debug("pynwb, reading %s: %s", name, warning.message)
        yield io, nwbfile
    finally:
        if io is not None:
            io.close()
        h5_file.close()


def _open_hdf5(source: str | os.PathLike | BinaryIO, name: str) -> h5py.File:
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        if not path.exists():
            raise NWBReadError(f"{name}: no such file; check the path.")
        if not path.is_file():
            raise NWBReadError(f"{name} is not a file; pass the path of an NWB file.")
        if path.stat().st_size == 0:
            raise NWBReadError(
                f"{name} is empty (0 bytes); the copy or download probably failed. "
                "Copy the file again."
            )
    try:
        return h5py.File(source, "r", rdcc_nbytes=_CHUNK_CACHE_BYTES)
    except OSError as error:
        message = str(error)
        if "truncated" in message:
            raise NWBReadError(
                f"{name} is truncated (shorter than its header says: {message}); "
                "an interrupted copy or download? Copy the file again."
            ) from None
        if "signature" in message:
            raise NWBReadError(
                f"{name} is not an HDF5 file, so not an NWB 2 file (NWB 2 files are "
                "HDF5). Check that this is the file you meant; NWB stored as Zarr "
                "is not supported."
            ) from None
        raise NWBReadError(f"{name} could not be opened as HDF5: {message}") from None


def _read_error(error: Exception, name: str) -> NWBReadError:
    message = str(error)
    if "Missing NWB version" in message:
        return NWBReadError(
            f"{name} is an HDF5 file but not an NWB 2 file (it has no nwb_version "
            "attribute; pre-release NWB and NWB 1.x files look like this). Convert "
            "it to NWB 2 with the tools of the lab that wrote it."
        )
    return NWBReadError(
        f"pynwb cannot read {name} ({type(error).__name__}: {message}). The file "
        "may come from an old or non-standard writer (e.g. an early MatNWB); "
        "re-export it with a current pynwb or MatNWB, or check it with "
        "`nwbinspector`."
    )
