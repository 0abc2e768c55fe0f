"""Column mappings: presets for other labs' files and loading a mapping from disk.

A column mapping is a dict from errsig's trial-column names (``reward``,
``target_angle``, ...) to the names a file uses. Two keys are options rather than
columns: ``"trials_table"`` names the interval table to read as trials, and
``"angle_unit"`` (``"radians"``, ``"degrees"`` or ``"auto"``) says how
``target_angle`` is stored.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from pathlib import Path

from errsig._exceptions import ErrsigError

__all__ = ["OPTION_KEYS", "PRESETS", "load_column_mapping", "resolve_mapping"]

#: Keys of a column mapping that set options instead of naming a column.
OPTION_KEYS = ("trials_table", "angle_unit")

_ANGLE_UNITS = ("radians", "degrees", "auto")

_TRIALDATA = {"phase": "epoch", "reward": "result", "target_angle": "target_direction"}

#: Named column mappings for files from other labs. Each maps errsig's trial
#: columns to the file's; ``angle_unit`` says how ``target_angle`` is stored.
PRESETS: dict[str, dict[str, str]] = {
    "trialdata": {**_TRIALDATA, "angle_unit": "radians"},
    "pyaldata": {**_TRIALDATA, "angle_unit": "radians"},
    "dandi-000127": {
        "reward": "result",
        "target_angle": "target_dir",
        "angle_unit": "degrees",
    },
    "dandi-000128": {"reward": "success"},
    "dandi-000688": {
        "reward": "result",
        "target_angle": "target_dir",
        "angle_unit": "auto",
    },
}


def load_column_mapping(text: str) -> dict[str, str] | str:
    """Turn the ``--columns`` argument of ``errsig info`` into a column mapping.

    Parameters
    ----------
    text : str
        A preset name (see :data:`PRESETS`), or the path of a ``.json`` or
        ``.toml`` file holding one table ``{errsig name: file column}``.

    Returns
    -------
    dict of str to str, or str
        The preset name unchanged, or the mapping read from the file.

    Raises
    ------
    ErrsigError
        If ``text`` is neither a preset nor a readable JSON/TOML mapping file.

    Examples
    --------
    >>> import json, pathlib, tempfile
    >>> from errsig.io import load_column_mapping
    >>> load_column_mapping("dandi-000688")
    'dandi-000688'
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "map.json").write_text(json.dumps({"reward": "outcome"}))
    >>> load_column_mapping(str(folder / "map.json"))
    {'reward': 'outcome'}
    """
    if text in PRESETS:
        return text

    path = Path(text)
    suffix = path.suffix.lower()
    if suffix not in (".json", ".toml"):
        raise ErrsigError(
            f"`columns`={text!r} is neither a preset ({sorted(PRESETS)}) nor a "
            ".json/.toml file; pass a preset name or the path of a mapping file "
            'such as {"reward": "outcome", "target_angle": "target_dir"}.'
        )
    if not path.is_file():
        raise ErrsigError(f"column mapping file {text} does not exist; check the path.")

    try:
        if suffix == ".json":
            mapping = json.loads(path.read_text())
        else:
            mapping = tomllib.loads(path.read_text())
    except (json.JSONDecodeError, tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ErrsigError(
            f"column mapping file {text} could not be parsed: {error}"
        ) from None
    return check_mapping(mapping, source=text)


def check_mapping(mapping: object, *, source: str) -> dict[str, str]:
    """Check that a mapping is a flat ``{str: str}`` dict with valid options."""
    if not isinstance(mapping, Mapping) or not all(
        isinstance(key, str) and isinstance(value, str)
        for key, value in mapping.items()
    ):
        raise ErrsigError(
            f"column mapping from {source} must be a flat table of "
            '{errsig name: file column} strings, e.g. {"reward": "outcome"}; '
            f"got {mapping!r}."
        )
    angle_unit = mapping.get("angle_unit", "auto")
    if angle_unit not in _ANGLE_UNITS:
        raise ErrsigError(
            f"column mapping from {source}: `angle_unit` must be one of "
            f"{list(_ANGLE_UNITS)}; got {angle_unit!r}."
        )
    return dict(mapping)


def resolve_mapping(columns: Mapping[str, str] | str | None) -> dict[str, str]:
    """Return the mapping ``columns`` stands for (a preset name, a dict or None)."""
    if columns is None:
        return {}
    if isinstance(columns, str):
        if columns not in PRESETS:
            raise ErrsigError(
                f"`columns`={columns!r} is not a preset; presets are "
                f"{sorted(PRESETS)}. Pass one of them or a dict "
                "{errsig name: file column}."
            )
        return dict(PRESETS[columns])
    return check_mapping(columns, source="`columns`")
