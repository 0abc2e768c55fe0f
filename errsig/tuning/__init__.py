"""Tuning drift, reward coupling and the learning-rule test.

- :func:`tuning_drift`: cosine tuning (baseline, depth, preferred direction) per
  unit per window of trials from a batched Poisson GLM, or trial by trial from a
  point-process adaptive filter and smoother; block comparisons with bootstrap
  tests.
- :func:`reward_coupling`: does the tuning change follow reward in time, follow
  the signed error, or neither? Lagged tests against pseudosession nulls, per
  unit and pooled per area, and a learning-rule label per unit and per area.
"""

from errsig.tuning._coupling import reward_coupling
from errsig.tuning._drift import tuning_drift

__all__ = ["reward_coupling", "tuning_drift"]
