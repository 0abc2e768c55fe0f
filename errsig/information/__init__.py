"""Mutual information between neural activity and error or outcome.

:func:`mutual_information` is the analysis: per unit (or per area) and time bin,
with permutation tests against nulls that respect learning. The estimators it
uses also work on plain arrays: :func:`gcmi_continuous`, :func:`gcmi_discrete`
and :func:`gccmi` (Gaussian copula), :func:`binned_mi` (plug-in with bias
corrections) and :func:`ksg_mi` (k nearest neighbours). Equations, bias and
cost of each are in ``docs/methods.md``.
"""

from errsig.information._api import mutual_information
from errsig.information._binned import binned_mi
from errsig.information._copula import copnorm
from errsig.information._gcmi import gccmi, gcmi_continuous, gcmi_discrete
from errsig.information._ksg import ksg_mi

__all__ = [
    "binned_mi",
    "copnorm",
    "gccmi",
    "gcmi_continuous",
    "gcmi_discrete",
    "ksg_mi",
    "mutual_information",
]
