"""Session permutation: one session's neurons against another's behaviour."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from errsig._exceptions import ErrsigError, InsufficientDataError
from errsig.stats._nulls import (
    PHASES,
    NullDraw,
    _check_targets,
    _chronological,
    observed_target,
)

__all__ = ["session_permutation"]


def session_permutation(
    datasets: Sequence[xr.Dataset], target: str | Sequence[str]
) -> list[NullDraw | dict[str, NullDraw]]:
    """Surrogates for each session from the behaviour of the other sessions.

    Parameters
    ----------
    datasets : sequence of xarray.Dataset
        Trial-aligned datasets (:func:`errsig.bin_trials`) of at least three
        sessions of the same design.
    target : str or sequence of str
        As for :func:`null_targets`; a sequence gives, per session, a dict of
        draws taken from the same donor sessions.

    Returns
    -------
    list
        One entry per session: a :class:`NullDraw` whose ``values`` (one row
        per other session, ``sources`` naming it) pair with the session's own
        ``neural_trials``, and whose ``observed`` is the session's own target
        on those trials. For a sequence of targets, a dict of them.

    Raises
    ------
    ErrsigError
        If fewer than three sessions are given, or their phases cannot be
        aligned.
    InsufficientDataError
        If no trial can be aligned across all sessions.

    See Also
    --------
    null_targets : nulls within one session.

    Notes
    -----
    Under the null hypothesis a session's neural activity is unrelated to its
    own behaviour exactly as it is to another session's behaviour, which has
    the same learning curve and the same kind of trial-to-trial structure but
    independent noise (Harris 2020). No model of the behaviour is needed, so
    this null keeps every feature of it, modelled or not.

    Trials are aligned phase by phase: for each of baseline, force field and
    washout, the first ``m`` trials of that phase in session order, with ``m``
    the smallest count of that phase over the sessions (without a ``phase``
    coordinate, the first ``m`` trials of the session). The observed statistic
    is computed on these trials only (``neural_trials``).

    With ``S`` sessions each test has ``S − 1`` surrogates, so its p-value
    cannot go below ``1 / S``: 20 sessions are needed for p = 0.05. Pool the
    statistic over sessions (e.g. its mean), recompute it with each session
    paired with another's behaviour, and use the permutations of the whole
    pairing for more resolution.

    References
    ----------
    .. [1] Harris KD (2020). Nonsense correlations in neuroscience. bioRxiv
       2020.11.29.402719.

    Examples
    --------
    >>> import numpy as np
    >>> import xarray as xr
    >>> from errsig.stats import session_permutation
    >>> sessions = [
    ...     xr.Dataset(coords={"trial": np.arange(n),
    ...                        "reward": ("trial", np.arange(n) % 2 == 0)})
    ...     for n in (5, 6, 7)
    ... ]
    >>> draws = session_permutation(sessions, "reward")
    >>> draws[0].values.shape, draws[0].sources
    ((2, 5), array([1, 2]))
    """
    datasets = list(datasets)
    if len(datasets) < 3:
        raise ErrsigError(
            f"a session permutation needs at least 3 sessions; got {len(datasets)}."
        )
    names = _check_targets(target)

    aligned = _aligned_trials(datasets)
    values = [
        {name: observed_target(ds, name)[trials] for name in names}
        for ds, trials in zip(datasets, aligned, strict=True)
    ]
    draws = []
    for session, trials in enumerate(aligned):
        sources = np.array(
            [other for other in range(len(datasets)) if other != session]
        )
        per_target = {
            name: NullDraw(
                values=np.stack([values[other][name] for other in sources]),
                neural_trials=trials,
                observed=values[session][name],
                sources=sources,
            )
            for name in names
        }
        draws.append(per_target[target] if isinstance(target, str) else per_target)
    return draws


def _aligned_trials(datasets: list[xr.Dataset]) -> list[np.ndarray]:
    """Dataset positions of the trials aligned across sessions, phase by phase."""
    with_phase = ["phase" in ds.variables for ds in datasets]
    if any(with_phase) and not all(with_phase):
        raise ErrsigError(
            "some sessions have a `phase` coordinate and others not; sessions are "
            "aligned phase by phase, so give all of them one (or none)."
        )

    orders = [_chronological(ds) for ds in datasets]
    if not any(with_phase):
        n_common = min(order.size for order in orders)
        blocks = [[order[:n_common]] for order in orders]
    else:
        phases = [observed_target(ds, "phase").astype(str) for ds in datasets]
        blocks = [[] for _ in datasets]
        for label in PHASES:
            in_phase = [
                order[phase[order] == label]
                for order, phase in zip(orders, phases, strict=True)
            ]
            n_common = min(trials.size for trials in in_phase)
            for session_blocks, trials in zip(blocks, in_phase, strict=True):
                session_blocks.append(trials[:n_common])

    aligned = [np.concatenate(session_blocks) for session_blocks in blocks]
    if aligned[0].size == 0:
        raise InsufficientDataError(
            "no trials can be aligned across the sessions: each phase must be "
            "present in all of them."
        )
    return aligned
