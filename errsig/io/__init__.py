"""Reading and writing NWB files.

:func:`read_nwb` turns an NWB file into a :class:`~errsig.Session`,
:func:`write_nwb` writes one back, :func:`describe_nwb` summarises a file for
``errsig info``, and :data:`PRESETS` holds column mappings for other labs' files.
See ``docs/io.md``.
"""

from errsig.io._columns import PRESETS, load_column_mapping
from errsig.io._describe import describe_nwb
from errsig.io.nwb import read_nwb, write_nwb

__all__ = ["PRESETS", "describe_nwb", "load_column_mapping", "read_nwb", "write_nwb"]
