"""Read the columns of an hdmf DynamicTable as numpy arrays, one column at a time."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hdmf.common import DynamicTable, DynamicTableRegion, VectorIndex

__all__ = ["decode_strings", "holds_scalars", "read_column", "table_to_frame"]


def decode_strings(values: np.ndarray) -> np.ndarray:
    """Return ``values`` with bytes decoded to str (old files store bytes)."""
    values = np.asarray(values)
    if values.dtype.kind == "S":
        return values.astype(str).astype(object)
    if values.dtype == object and any(isinstance(v, bytes) for v in values.flat):
        decoded = [v.decode() if isinstance(v, bytes) else v for v in values.flat]
        return np.array(decoded, dtype=object).reshape(values.shape)
    return values


def read_column(table: DynamicTable, name: str) -> np.ndarray | list:
    """Read one column whole: an array, or a list of per-row arrays if ragged.

    Ragged columns are read flat (data and index once each) and split in numpy.
    A region column gives the referenced row numbers.
    """
    column = table[name]
    if isinstance(column, VectorIndex):
        ends = np.asarray(column.data[:]).astype(np.int64)
        flat = decode_strings(_dataset_values(column.target))
        return np.split(flat, ends[:-1]) if len(ends) else []
    if isinstance(column, DynamicTableRegion):
        return np.asarray(column.data[:]).astype(np.int64)
    return decode_strings(_dataset_values(column))


def table_to_frame(table: DynamicTable, skip: tuple[str, ...] = ()) -> pd.DataFrame:
    """Build a DataFrame of a (small) table, indexed by its ids.

    Multi-dimensional and ragged columns become object columns of per-row arrays.
    Columns whose values are containers (object references) are left out.
    """
    ids = np.asarray(table.id[:]).astype(np.int64)
    frame = pd.DataFrame(index=pd.Index(ids, name="id"))
    for name in table.colnames:
        if name in skip:
            continue
        values = read_column(table, name)
        if isinstance(values, np.ndarray) and values.ndim == 1:
            if values.dtype == object and not holds_scalars(values):
                continue
            frame[name] = values
        else:
            frame[name] = pd.Series(list(values), index=frame.index, dtype=object)
    return frame


def _dataset_values(column: object) -> np.ndarray:
    data = column.data
    return np.asarray(data[:] if hasattr(data, "shape") else data)


def holds_scalars(values: np.ndarray) -> bool:
    """Whether an object array holds plain scalars (not references or arrays)."""
    return all(isinstance(v, str | bytes | int | float | bool) for v in values)
