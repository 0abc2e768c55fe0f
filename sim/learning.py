"""Trial-by-trial drift of each unit's preferred direction, under named rules.

Each rule turns a session's behaviour (shown error, reward, reward expectation,
adaptation) into a trajectory of preferred directions, one per unit and trial.
The rules are the hypotheses of science.md §4 that ``errsig.reward_coupling``
must tell apart:

``stable``
    The preferred direction never changes.
``gradient`` (S5)
    After trial ``n`` the direction turns by ``rate · (e_n · p_i)``, the signed
    shown error ``e_n`` (metres) projected on the unit's perpendicular
    ``p_i = (-sin θ_i, cos θ_i)``: gradient descent on ``|e|² / 2`` when the
    unit pushes along its preferred direction. It acts on every trial, rewarded
    or not, and is deterministic given the errors.
``reward_gated`` (S6)
    On every trial the unit explores: its tuning that trial is turned by
    ``ξ_n ~ N(0, rate²)``. Afterwards ``(R_n − R̄_n) · ξ_n`` of the exploration
    is kept, so perturbations followed by unexpected reward persist and those
    followed by unexpected failure are undone; nothing depends on the signed
    error beyond what reward carries.
``random_walk`` (S7)
    ``Δθ ~ N(0, rate²)`` on every trial of every block, independent of error
    and reward (Rokni et al. 2007).
``mechanical`` (S8)
    An apparent shift ``rate · c_n`` toward the field, with ``c_n`` the
    learnt compensation as a fraction of the naive field error; it grows in
    the field and decays in washout as the compensation does (Perich & Miller
    2017).

Rates are in radians per metre of error for ``gradient`` and in radians for the
other rules (per trial for ``random_walk`` and ``reward_gated``, at full
compensation for ``mechanical``).
"""

from __future__ import annotations

import numpy as np

from errsig._exceptions import ErrsigError

__all__ = ["DEFAULT_DRIFT_RATES", "DRIFT_RULES", "drift_preferred_directions"]

DRIFT_RULES = ("stable", "gradient", "reward_gated", "random_walk", "mechanical")

#: Default rate of each rule (see the module docstring for units).
DEFAULT_DRIFT_RATES: dict[str, float] = {
    "stable": 0.0,
    "gradient": 3.0,
    "reward_gated": np.deg2rad(12.0),
    "random_walk": np.deg2rad(1.0),
    "mechanical": np.deg2rad(20.0),
}


def drift_preferred_directions(
    initial: np.ndarray,
    rules: np.ndarray,
    rates: np.ndarray,
    *,
    error: np.ndarray,
    reward: np.ndarray,
    expected_reward: np.ndarray,
    compensation: np.ndarray,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """Preferred direction of every unit on every trial under its drift rule.

    Parameters
    ----------
    initial : numpy.ndarray
        Baseline preferred directions, radians, shape ``(n_units,)``.
    rules : numpy.ndarray of str
        Each unit's rule, one of :data:`DRIFT_RULES`, shape ``(n_units,)``.
    rates : numpy.ndarray
        Each unit's rate (units in the module docstring), shape ``(n_units,)``.
    error : numpy.ndarray
        Shown error vectors, metres, shape ``(n_trials, 2)``.
    reward : numpy.ndarray of bool
        Reward of each trial, shape ``(n_trials,)``.
    expected_reward : numpy.ndarray
        Reward expectation ``R̄_n`` before each trial, shape ``(n_trials,)``.
    compensation : numpy.ndarray
        Learnt compensation as a signed fraction of the naive field error,
        positive for a counter-clockwise field, shape ``(n_trials,)``.
    rng : numpy.random.Generator
        Source of the random-walk steps and explorations.

    Returns
    -------
    dict of str to numpy.ndarray
        ``preferred_direction``: the direction in force on each trial
        (exploration included), and ``exploration``: the exploratory turn of
        each trial (zero except under ``reward_gated``); both radians, shape
        ``(n_units, n_trials)``.

    Examples
    --------
    >>> import numpy as np
    >>> from sim.learning import drift_preferred_directions
    >>> n_trials = 4
    >>> drift = drift_preferred_directions(
    ...     np.zeros(2), np.array(["stable", "gradient"]), np.array([0.0, 10.0]),
    ...     error=np.tile([0.0, 0.01], (n_trials, 1)), reward=np.ones(n_trials, bool),
    ...     expected_reward=np.full(n_trials, 0.5), compensation=np.zeros(n_trials),
    ...     rng=np.random.default_rng(0))
    >>> drift["preferred_direction"].round(3)
    array([[0.   , 0.   , 0.   , 0.   ],
           [0.   , 0.1  , 0.2  , 0.298]])
    """
    rules = np.asarray(rules).astype(str)
    unknown = sorted(set(rules) - set(DRIFT_RULES))
    if unknown:
        raise ErrsigError(
            f"unknown drift rule(s) {unknown}; choose from {DRIFT_RULES}."
        )
    n_units, n_trials = len(initial), len(reward)
    rates = np.asarray(rates, dtype=np.float64)
    exploration = np.zeros((n_units, n_trials))
    steps = np.zeros((n_units, n_trials))
    walk_stream, explore_stream = rng.spawn(2)

    walking = rules == "random_walk"
    steps[walking] = walk_stream.normal(0.0, 1.0, (walking.sum(), n_trials))
    steps[walking] *= rates[walking, None]

    gated = rules == "reward_gated"
    exploration[gated] = explore_stream.normal(0.0, 1.0, (gated.sum(), n_trials))
    exploration[gated] *= rates[gated, None]
    surprise = np.asarray(reward, dtype=float) - expected_reward
    steps[gated] = exploration[gated] * surprise

    # The step after trial n moves the direction of trial n + 1.
    settled = np.asarray(initial, dtype=np.float64)[:, None] + np.concatenate(
        [np.zeros((n_units, 1)), np.cumsum(steps[:, :-1], axis=1)], axis=1
    )

    mechanical = rules == "mechanical"
    settled[mechanical] += rates[mechanical, None] * compensation

    following = np.flatnonzero(rules == "gradient")
    if following.size:
        settled[following] = _gradient_paths(
            settled[following, 0], rates[following], error
        )

    return {
        "preferred_direction": settled + exploration,
        "exploration": exploration,
    }


def _gradient_paths(
    start: np.ndarray, rates: np.ndarray, error: np.ndarray
) -> np.ndarray:
    """Turn each direction by ``rate * (e_n · p(θ_n))`` after every trial."""
    paths = np.empty((len(start), len(error)))
    direction = start.copy()
    for trial in range(len(error)):
        paths[:, trial] = direction
        projected = (
            -np.sin(direction) * error[trial, 0] + np.cos(direction) * error[trial, 1]
        )
        direction = direction + rates * projected
    return paths
