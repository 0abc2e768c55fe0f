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
    NWBReadError,
    SmallSampleWarning,
)
from errsig.binning import bin_trials
from errsig.session import BehaviorSeries, Session

__version__ = "0.1.0.dev0"

__all__ = [
    "BehaviorSeries",
    "ColumnError",
    "ConvergenceWarning",
    "DataRepairWarning",
    "ErrsigError",
    "ErrsigWarning",
    "InsufficientDataError",
    "NWBReadError",
    "Session",
    "SmallSampleWarning",
    "__version__",
    "bin_trials",
]
