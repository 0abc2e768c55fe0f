"""Statistics for trial-based neural data during learning.

Nulls that respect learning (:func:`null_targets`, :func:`draw_pseudosessions`,
:func:`session_permutation`),
permutation p-values (:func:`permutation_pvalues`) and corrections over families
of tests (:func:`correct`: max-statistic, cluster, FDR), with
:func:`onset_latency` and :func:`bootstrap_interval` for latencies and intervals.
See ``docs/statistics.md`` for the methods and their assumptions.
"""

from errsig.stats._bootstrap import (
    BootstrapInterval,
    bootstrap_interval,
    bootstrap_trials,
)
from errsig.stats._corrections import CorrectionResult, correct, onset_latency
from errsig.stats._nulls import NULLS, NullDraw, null_targets, observed_target
from errsig.stats._pseudosession import draw_pseudosessions
from errsig.stats._pvalues import permutation_pvalues
from errsig.stats._sessions import session_permutation

__all__ = [
    "NULLS",
    "BootstrapInterval",
    "CorrectionResult",
    "NullDraw",
    "bootstrap_interval",
    "bootstrap_trials",
    "correct",
    "draw_pseudosessions",
    "null_targets",
    "observed_target",
    "onset_latency",
    "permutation_pvalues",
    "session_permutation",
]
