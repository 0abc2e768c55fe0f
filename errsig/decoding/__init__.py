"""Cross-validated decoding of the error and the outcome from population activity.

:func:`decode` predicts the error shown (ridge regression) or the outcome (L2
logistic regression) from each area's activity, bin by bin, on held-out blocks
of trials, and tests the score against surrogate targets that keep the slow
structure of learning. :func:`decode_unit_curve` gives the score against the
number of units sampled. See ``docs/decoding.md``.
"""

from errsig.decoding._decode import DEFAULT_PENALTIES, decode, decode_unit_curve
from errsig.decoding._folds import blocked_folds

__all__ = ["DEFAULT_PENALTIES", "blocked_folds", "decode", "decode_unit_curve"]
