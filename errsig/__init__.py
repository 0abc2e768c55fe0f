"""errsig: error and evaluator signals in multi-area spike recordings.

The flow is one direction: :func:`read_nwb` (or ``sim.simulate``) gives a
:class:`Session`, :func:`bin_trials` turns it into a trial-aligned
``xarray.Dataset``, and the analyses take that dataset.
"""

from errsig._exceptions import (
    ColumnError,
    ConvergenceWarning,
    DataRepairWarning,
    ErrsigError,
    ErrsigWarning,
    InsufficientDataError,
    NullAssumptionWarning,
    NWBReadError,
    SmallSampleWarning,
)
from errsig.binning import bin_trials
from errsig.session import BehaviorSeries, Session

__version__ = "0.1.0.dev0"

# Public names that live in heavier submodules, imported on first use so that
# `import errsig` stays quick and the parts stay independent.
_LAZY = {
    "read_nwb": "errsig.io",
    "write_nwb": "errsig.io",
    "mutual_information": "errsig.information",
    "decode": "errsig.decoding",
    "tuning_drift": "errsig.tuning",
    "reward_coupling": "errsig.tuning",
    "classify_units": "errsig.classify",
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'errsig' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "BehaviorSeries",
    "ColumnError",
    "ConvergenceWarning",
    "DataRepairWarning",
    "ErrsigError",
    "ErrsigWarning",
    "InsufficientDataError",
    "NWBReadError",
    "NullAssumptionWarning",
    "Session",
    "SmallSampleWarning",
    "__version__",
    "bin_trials",
    "classify_units",
    "decode",
    "mutual_information",
    "read_nwb",
    "reward_coupling",
    "tuning_drift",
    "write_nwb",
]
