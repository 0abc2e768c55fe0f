"""Regular sample times: store them as a rate, and rebuild them to the bit.

NWB best practice (and nwbinspector) wants a regularly sampled series stored as
``starting_time`` and ``rate`` rather than timestamps. To read back exactly the
times a session had, the writer records which arithmetic rebuilds them.
"""

from __future__ import annotations

import numpy as np

__all__ = ["rebuild_times", "regular_sampling"]

#: Decimals to which nwbinspector compares sampling intervals.
_REGULAR_DECIMALS = 9


def regular_sampling(times: np.ndarray) -> dict | None:
    """Describe regular ``times`` as a start, a rate and a rebuild rule.

    Returns None when the intervals differ (beyond 1e-9 s), in which case the
    times must be stored as timestamps. Otherwise the dict has
    ``starting_time``, ``rate``, ``rule`` (``"divide"``: start + i / rate,
    ``"multiply"``: start + i * step, or ``"exact"`` when neither rebuilds the
    times to the bit and they must be kept too) and ``step``.
    """
    if len(times) < 3:
        return None
    steps = np.unique(np.diff(times).round(_REGULAR_DECIMALS))
    if len(steps) != 1 or steps[0] <= 0:
        return None

    start = float(times[0])
    n_samples = len(times)
    for step in (float(times[1] - times[0]), (times[-1] - start) / (n_samples - 1)):
        rate = 1.0 / step
        if abs(rate - round(rate)) < 1e-6 * rate:
            rate = float(round(rate))
        for rule in ("divide", "multiply"):
            candidate = rebuild_times(start, rate, step, n_samples, rule)
            if np.array_equal(candidate, times):
                return {
                    "starting_time": start,
                    "rate": rate,
                    "rule": rule,
                    "step": step,
                }
    return {"starting_time": start, "rate": 1.0 / float(steps[0]), "rule": "exact"}


def rebuild_times(
    start: float, rate: float, step: float | None, n_samples: int, rule: str
) -> np.ndarray:
    """Sample times from a start and a rate (or step), by the recorded rule."""
    if rule == "multiply" and step is not None:
        return start + np.arange(n_samples) * step
    return start + np.arange(n_samples) / rate
