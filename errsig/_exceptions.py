"""Exception and warning types raised by errsig.

Every error that a user can cause by handing errsig bad input derives from
:class:`ErrsigError`, and every warning from :class:`ErrsigWarning`, so that a
script can catch or filter all of them at once.
"""

__all__ = [
    "ColumnError",
    "ConvergenceWarning",
    "DataRepairWarning",
    "ErrsigError",
    "ErrsigWarning",
    "InsufficientDataError",
    "NWBReadError",
    "NullAssumptionWarning",
    "SmallSampleWarning",
]


class ErrsigError(ValueError):
    """Base class of the errors errsig raises on bad input."""


class NWBReadError(ErrsigError):
    """A file could not be read as NWB, or lacks what errsig needs from it."""


class ColumnError(ErrsigError, KeyError):
    """A required column is missing, mistyped or unmapped."""

    def __str__(self) -> str:
        # KeyError would repr() the message; keep it readable.
        return str(self.args[0]) if self.args else ""


class InsufficientDataError(ErrsigError):
    """Too few trials, units or spikes for the requested analysis."""


class ErrsigWarning(UserWarning):
    """Base class of the warnings errsig emits."""


class DataRepairWarning(ErrsigWarning):
    """errsig repaired the input (sorted spikes, dropped trials, ...)."""


class SmallSampleWarning(ErrsigWarning, RuntimeWarning):
    """An estimate rests on few samples and may be biased or noisy."""


class ConvergenceWarning(ErrsigWarning, RuntimeWarning):
    """An iterative fit stopped before it converged."""


class NullAssumptionWarning(ErrsigWarning):
    """A null distribution rests on an assumption the data may not meet."""
