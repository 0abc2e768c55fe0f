"""Spiking populations in named brain areas, each unit with a known role.

Unit ``i`` fires on trial ``n`` at time ``t`` with rate (Hz, science.md §4)

.. code-block:: text

    λ_i(t, n) = G_i(t, n) · [ b0_i
        + c_i · v(t + τ_i, n) · u_PD,i(n) / v_peak              kinematic
        + k_i · F(t + τ_i, n) · u_i                             force
        + g_i · (e_n · u_err,i) · h(t − t_fb,n − L_i)           vector error
        + m_i · |e_n| · h(t − t_fb,n − L_i)                     error magnitude
        + r_i · o_n · h(t − t_fb,n − L_i) ]₊                    outcome

with ``v`` the hand velocity (the planned reach along the target plus the
lateral deflection, which scales with the trial's error), ``v_peak`` the peak
planned speed, ``u_PD`` the unit vector of the preferred direction, ``F`` the
force the arm produces (inertial force along the reach plus the learnt
compensation of the field), ``e_n`` the error shown at feedback (metres),
``o_n`` either the reward prediction error ``R_n − R̄_n`` or the failure
indicator ``1 − R_n``, and ``h`` a response kernel that starts ``L_i`` after
feedback, rises in 20 ms and lasts ``D_i`` (150–300 ms). The bracket is
rectified at zero.

``G_i`` is a multiplicative gain from a shared slow latent: a two-dimensional
AR(1) process across trials plus trial-to-trial jitter, with per-unit loadings,
and private per-trial noise. Its log-amplitude is quenched by movement, so the
Fano factor is about 1.5 at rest and falls toward 1 during the reach
(Churchland et al. 2010), and units that share loadings have positive noise
correlations (r_sc ≈ 0–0.2).

Spikes are drawn in chunks of trials on a 10 ms rate grid, either Poisson
(exact for the piecewise-constant rate) or gamma-renewal by time rescaling.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from errsig._exceptions import ErrsigError
from sim.learning import DEFAULT_DRIFT_RATES, DRIFT_RULES
from sim.task import TaskResult, minimum_jerk_speed

__all__ = [
    "AREA_PRESETS",
    "ROLES",
    "LatentConfig",
    "UnitGroup",
    "make_units",
    "simulate_latent",
    "simulate_spikes",
]

ROLES = ("kinematic", "force", "vector_error", "error_magnitude", "outcome", "null")
OUTCOME_CODINGS = ("rpe", "failure")

#: Per-area defaults: log-normal baseline rate (median Hz, log-SD), kinematic
#: lead (s), response kernel duration range (s), latent loading, spiking.
AREA_PRESETS: dict[str, dict] = {
    "M1": {
        "rate_median": 12.0,
        "rate_log_sd": 0.5,
        "lead": 0.10,
        "kernel_duration": (0.15, 0.3),
        "loading": 1.0,
        "spiking": "poisson",
    },
    "PMd": {
        "rate_median": 10.0,
        "rate_log_sd": 0.5,
        "lead": 0.12,
        "kernel_duration": (0.15, 0.3),
        "loading": 1.0,
        "spiking": "poisson",
    },
    "striatum": {
        "rate_median": 5.0,
        "rate_log_sd": 0.5,
        "lead": 0.08,
        "kernel_duration": (0.25, 0.6),
        "loading": 0.8,
        "spiking": "poisson",
    },
    "GPi": {
        "rate_median": 60.0,
        "rate_log_sd": 0.3,
        "lead": 0.08,
        "kernel_duration": (0.15, 0.3),
        "loading": 0.5,
        "spiking": "gamma",
    },
    "cerebellum": {  # Purkinje-cell complex spikes
        "rate_median": 1.0,
        "rate_log_sd": 0.3,
        "lead": 0.05,
        "kernel_duration": (0.1, 0.15),
        "loading": 0.3,
        "spiking": "poisson",
    },
}

#: Gain ranges, each as multiples of the unit's baseline rate per unit of the
#: signal: depth (per unit cosine), force (per newton), error (per cm of
#: projected error), magnitude (per cm of |error|), outcome (per unit o_n).
GAIN_RANGES = {
    "depth": (0.3, 1.0),
    "force": (0.1, 0.25),
    "error": (0.6, 1.2),
    "magnitude": (0.6, 1.2),
    "outcome": (0.8, 1.5),
}

RATE_BIN = 0.01  # seconds; the rate is constant within a bin
RISE_TIME = 0.02  # seconds; rise of the feedback response kernels


@dataclass(frozen=True)
class UnitGroup:
    """A group of units sharing an area, a role and a drift rule.

    Parameters
    ----------
    area : str
        Brain area; a key of :data:`AREA_PRESETS` sets the defaults.
    role : str
        One of :data:`ROLES`.
    fraction : float
        Share of the session's units in this group (normalised over groups).
    drift_rule : str
        One of :data:`sim.learning.DRIFT_RULES`.
    drift_rate : float, optional
        Rate of the drift rule; :data:`sim.learning.DEFAULT_DRIFT_RATES`.
    error_latencies : tuple of float
        Latencies (s after feedback) the group's error and outcome responses
        cycle through.
    outcome_coding : {"rpe", "failure"}
        What outcome units code.
    kinematic : bool, optional
        Whether the units are also tuned to reach direction; by default only
        ``kinematic`` units (and ``force`` units through the force) are.
    spiking : {"poisson", "gamma"}, optional
        Spike generator; the area preset's by default.
    gamma_shape : float, default=2.0
        Shape of the gamma-renewal intervals (1 is Poisson, larger is more
        regular).
    rate_median : float, optional
        Median baseline rate of the group's units, Hz; the area preset's by
        default (12 Hz in M1). Higher rates and deeper tuning make well-isolated,
        strongly tuned units, whose single trials say more about their tuning.
    depth_range : tuple of float, optional
        Range of the cosine-tuning depth, as multiples of the baseline rate;
        ``GAIN_RANGES["depth"]`` (0.3 to 1.0) by default.

    Examples
    --------
    >>> from sim.population import UnitGroup
    >>> UnitGroup("PMd", "vector_error", 0.3).error_latencies
    (0.05, 0.1, 0.2)
    """

    area: str
    role: str
    fraction: float
    drift_rule: str = "stable"
    drift_rate: float | None = None
    error_latencies: tuple[float, ...] = (0.05, 0.1, 0.2)
    outcome_coding: str = "rpe"
    kinematic: bool | None = None
    spiking: str | None = None
    gamma_shape: float = 2.0
    rate_median: float | None = None
    depth_range: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ErrsigError(f"unit `role` must be one of {ROLES}; got {self.role!r}.")
        if self.drift_rule not in DRIFT_RULES:
            raise ErrsigError(
                f"`drift_rule` must be one of {DRIFT_RULES}; got {self.drift_rule!r}."
            )
        if self.outcome_coding not in OUTCOME_CODINGS:
            raise ErrsigError(
                f"`outcome_coding` must be one of {OUTCOME_CODINGS}; got "
                f"{self.outcome_coding!r}."
            )
        if not self.fraction > 0:
            raise ErrsigError(f"group `fraction` must be > 0; got {self.fraction}.")
        if self.spiking not in (None, "poisson", "gamma"):
            raise ErrsigError(
                f"`spiking` must be 'poisson' or 'gamma'; got {self.spiking!r}."
            )
        if not self.gamma_shape > 0:
            raise ErrsigError(f"`gamma_shape` must be > 0; got {self.gamma_shape}.")
        if self.rate_median is not None and not self.rate_median > 0:
            raise ErrsigError(f"`rate_median` must be > 0 Hz; got {self.rate_median}.")
        if self.depth_range is not None and not (
            len(self.depth_range) == 2
            and 0 <= self.depth_range[0] <= self.depth_range[1]
        ):
            raise ErrsigError(
                "`depth_range` must be (low, high) with 0 <= low <= high; got "
                f"{self.depth_range}."
            )


@dataclass(frozen=True)
class LatentConfig:
    """The shared slow latent that makes spiking super-Poisson and correlated.

    Parameters
    ----------
    slow_correlation : float
        Trial-to-trial AR(1) coefficient of the slow part.
    slow_variance, fast_variance : float
        Variance of the slow (drifting) and fast (per-trial) parts of each of
        the two latent dimensions.
    global_loading : tuple of float
        Range of the positive loading on the first (global) dimension.
    signed_loading : float
        SD of the loading on the second dimension (either sign).
    private_sd : float
        SD of each unit's private per-trial log-gain noise.
    movement_quench : float
        Fraction by which the log-gain amplitude shrinks during the reach.

    Examples
    --------
    >>> from sim.population import LatentConfig
    >>> LatentConfig().slow_correlation
    0.97
    """

    slow_correlation: float = 0.97
    slow_variance: float = 0.5
    fast_variance: float = 0.5
    global_loading: tuple[float, float] = (0.1, 0.25)
    signed_loading: float = 0.1
    private_sd: float = 0.27
    movement_quench: float = 0.8


def make_units(
    groups: list[UnitGroup],
    n_units: int,
    *,
    latent: LatentConfig | None = None,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """Draw every planted parameter of ``n_units`` units split over ``groups``.

    Parameters
    ----------
    groups : list of UnitGroup
        The groups; each gets ``round(n_units * fraction)`` units (at least one
        for the largest group, and the total is exactly ``n_units``).
    n_units : int
        Number of units.
    latent : LatentConfig, optional
        Latent settings; defaults of :class:`LatentConfig`.
    rng : numpy.random.Generator
        Source of randomness.

    Returns
    -------
    pandas.DataFrame
        The ground-truth units table (index ``unit`` 0..n-1), columns listed in
        ``docs/simulator.md``. Gains are in Hz per unit of their signal:
        ``depth`` per unit cosine, ``force_gain`` per newton, ``error_gain``
        and ``magnitude_gain`` per metre, ``outcome_gain`` per unit of the
        outcome signal; angles in radians, times in seconds.

    Examples
    --------
    >>> import numpy as np
    >>> from sim.population import UnitGroup, make_units
    >>> units = make_units([UnitGroup("M1", "kinematic", 1.0)], 3,
    ...                    rng=np.random.default_rng(0))
    >>> list(units["role"])
    ['kinematic', 'kinematic', 'kinematic']
    """
    latent = latent or LatentConfig()
    sizes = _group_sizes([group.fraction for group in groups], n_units)
    frames = []
    for group, size in zip(groups, sizes, strict=True):
        if size:
            frames.append(_draw_group(group, size, latent, rng))
    units = pd.concat(frames, ignore_index=True)
    units.index.name = "unit"
    return units


def _group_sizes(fractions: list[float], n_units: int) -> np.ndarray:
    """Largest-remainder apportionment of ``n_units`` over the fractions."""
    shares = np.asarray(fractions) / np.sum(fractions) * n_units
    sizes = np.floor(shares).astype(int)
    remainder = n_units - sizes.sum()
    sizes[np.argsort(sizes - shares, kind="stable")[:remainder]] += 1
    return sizes


def _draw_group(
    group: UnitGroup, size: int, latent: LatentConfig, rng: np.random.Generator
) -> pd.DataFrame:
    preset = AREA_PRESETS.get(group.area, AREA_PRESETS["M1"])
    rate_median = (
        preset["rate_median"] if group.rate_median is None else group.rate_median
    )
    baseline = rate_median * np.exp(rng.normal(0, preset["rate_log_sd"], size))
    role = group.role
    kinematic = role == "kinematic" if group.kinematic is None else group.kinematic
    ranges = dict(GAIN_RANGES)
    if group.depth_range is not None:
        ranges["depth"] = tuple(group.depth_range)

    def gain(name: str, active: bool) -> np.ndarray:
        low, high = ranges[name]
        return rng.uniform(low, high, size) * baseline * active

    latencies = np.resize(np.asarray(group.error_latencies, dtype=float), size)
    drift_rate = (
        DEFAULT_DRIFT_RATES[group.drift_rule]
        if group.drift_rate is None
        else group.drift_rate
    )
    responds = role in ("vector_error", "error_magnitude", "outcome")
    loading_scale = preset["loading"]
    spiking = group.spiking or preset["spiking"]
    return pd.DataFrame(
        {
            "area": group.area,
            "role": role,
            "drift_rule": group.drift_rule,
            "drift_rate": float(drift_rate),
            "baseline_rate": baseline,
            "preferred_direction": rng.uniform(-np.pi, np.pi, size),
            "depth": gain("depth", kinematic),
            "kinematic_lead": preset["lead"] + rng.normal(0, 0.015, size),
            "force_gain": gain("force", role == "force"),
            "force_direction": rng.uniform(-np.pi, np.pi, size),
            # per cm -> per metre
            "error_gain": 100.0 * gain("error", role == "vector_error"),
            "preferred_error_direction": rng.uniform(-np.pi, np.pi, size),
            "error_latency": np.where(responds, latencies, np.nan),
            "response_duration": np.where(
                responds, rng.uniform(*preset["kernel_duration"], size), np.nan
            ),
            "magnitude_gain": 100.0 * gain("magnitude", role == "error_magnitude"),
            "outcome_gain": gain("outcome", role == "outcome"),
            "outcome_coding": group.outcome_coding if role == "outcome" else "none",
            "latent_loading_global": loading_scale
            * rng.uniform(*latent.global_loading, size),
            "latent_loading_signed": loading_scale
            * rng.normal(0, latent.signed_loading, size),
            "private_noise": loading_scale * latent.private_sd * np.ones(size),
            "spiking": spiking,
            "gamma_shape": group.gamma_shape if spiking == "gamma" else 1.0,
        }
    )


def simulate_latent(
    n_trials: int, latent: LatentConfig, rng: np.random.Generator
) -> np.ndarray:
    """Draw the shared latent, shape ``(n_trials, 2)``, unit variance per dimension.

    Parameters
    ----------
    n_trials : int
        Number of trials.
    latent : LatentConfig
        AR(1) coefficient and variance split.
    rng : numpy.random.Generator
        Source of randomness.

    Returns
    -------
    numpy.ndarray

    Examples
    --------
    >>> import numpy as np
    >>> from sim.population import LatentConfig, simulate_latent
    >>> z = simulate_latent(20000, LatentConfig(), np.random.default_rng(0))
    >>> bool(abs(z.var(axis=0) - 1).max() < 0.15)
    True
    """
    rho = latent.slow_correlation
    innovations = rng.normal(0.0, 1.0, (n_trials, 2))
    slow = np.empty((n_trials, 2))
    slow[0] = innovations[0]
    scale = np.sqrt(1 - rho**2)
    for trial in range(1, n_trials):
        slow[trial] = rho * slow[trial - 1] + scale * innovations[trial]
    fast = rng.normal(0.0, 1.0, (n_trials, 2))
    return np.sqrt(latent.slow_variance) * slow + np.sqrt(latent.fast_variance) * fast


@dataclass
class _TrialSignals:
    """Per-trial inputs of the rate model, gathered once for all chunks."""

    move_onset: np.ndarray
    go_cue: np.ndarray
    feedback: np.ndarray
    target_angle: np.ndarray
    compensation_force: np.ndarray  # newtons per (m/s) of speed, (n_trials, 2)
    error: np.ndarray  # (n_trials, 2)
    outcome_rpe: np.ndarray
    outcome_failure: np.ndarray
    gain_rest: np.ndarray  # (n_units, n_trials)
    gain_ratio_moving: np.ndarray  # (n_units, n_trials), moving / rest gain
    preferred_direction: np.ndarray  # (n_units, n_trials)
    extras: dict = field(default_factory=dict)


def simulate_spikes(
    units: pd.DataFrame,
    task: TaskResult,
    preferred_direction: np.ndarray,
    latent: np.ndarray,
    *,
    rng: np.random.Generator,
    chunk_trials: int = 32,
    progress: bool = False,
    latent_config: LatentConfig | None = None,
    track_arm: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw every unit's spikes over the whole session, a chunk of trials at a time.

    Parameters
    ----------
    units : pandas.DataFrame
        Ground-truth units table from :func:`make_units`.
    task : sim.task.TaskResult
        The behaviour the units respond to.
    preferred_direction : numpy.ndarray
        Preferred direction of each unit on each trial, ``(n_units, n_trials)``.
    latent : numpy.ndarray
        Shared latent, ``(n_trials, 2)``, from :func:`simulate_latent`.
    rng : numpy.random.Generator
        Source of randomness; each chunk gets its own spawned stream.
    chunk_trials : int, default=32
        Trials per chunk; memory grows with ``n_units * chunk_trials``.
    progress : bool, default=False
        Show a progress bar over chunks.
    latent_config : LatentConfig, optional
        For the movement quench; defaults of :class:`LatentConfig`.
    track_arm : bool, default=False
        Whether kinematic units follow the hand's actual velocity (its lateral
        deflection included) and force units the corrective force of the arm's
        impedance, ``-(k y + c y')``. Both scale with the trial's error, so
        movement activity then carries the error (science.md §3.1). Off, they
        follow the planned reach and the learnt compensation only.

    Returns
    -------
    spike_times : numpy.ndarray
        All spikes, float64 seconds, unit after unit, sorted within each unit.
    spike_index : numpy.ndarray
        int64 end offset of each unit's spikes.

    Examples
    --------
    >>> import numpy as np
    >>> from sim.population import (LatentConfig, UnitGroup, make_units,
    ...     simulate_latent, simulate_spikes)
    >>> from sim.task import TaskConfig, simulate_task
    >>> rng = np.random.default_rng(0)
    >>> task = simulate_task(TaskConfig().scaled(16), rng=rng)
    >>> units = make_units([UnitGroup("M1", "kinematic", 1.0)], 2, rng=rng)
    >>> directions = np.repeat(units[["preferred_direction"]].to_numpy(), 16, axis=1)
    >>> latent = simulate_latent(16, LatentConfig(), rng)
    >>> times, index = simulate_spikes(units, task, directions, latent, rng=rng)
    >>> bool(np.all(np.diff(times[: index[0]]) >= 0)), index.dtype
    (True, dtype('int64'))
    """
    latent_config = latent_config or LatentConfig()
    signals = _trial_signals(
        units, task, preferred_direction, latent, latent_config, rng, track_arm
    )
    trials = task.trials
    n_trials, n_units = len(trials), len(units)
    starts = trials["start_time"].to_numpy()
    session_end = trials["stop_time"].to_numpy()[-1] + 0.5
    bin_edges_of_trials = np.r_[0, np.floor(starts[1:] / RATE_BIN)].astype(np.int64)
    last_bin = int(np.floor(session_end / RATE_BIN))
    chunk_starts = list(range(0, n_trials, chunk_trials))
    streams = rng.spawn(len(chunk_starts))

    pieces_times, pieces_counts = [], []
    for chunk, first in enumerate(
        tqdm(chunk_starts, disable=not progress, unit="chunk")
    ):
        stop = min(first + chunk_trials, n_trials)
        bin_start = bin_edges_of_trials[first]
        bin_stop = bin_edges_of_trials[stop] if stop < n_trials else last_bin
        bins = np.arange(bin_start, bin_stop)
        trial_of_bin = first + np.searchsorted(
            bin_edges_of_trials[first + 1 : stop], bins, side="right"
        )
        rate = _rates(units, signals, bins, trial_of_bin)
        times, counts = _draw_spikes(units, rate, bin_start, streams[chunk])
        pieces_times.append(times)
        pieces_counts.append(counts)

    return _interleave(pieces_times, np.array(pieces_counts), n_units)


def _trial_signals(
    units: pd.DataFrame,
    task: TaskResult,
    preferred_direction: np.ndarray,
    latent: np.ndarray,
    latent_config: LatentConfig,
    rng: np.random.Generator,
    track_arm: bool,
) -> _TrialSignals:
    trials, truth, config = task.trials, task.truth, task.config
    angle = trials["target_angle"].to_numpy()
    perpendicular = np.c_[-np.sin(angle), np.cos(angle)]
    # Compensation opposes the field: -c_n * |b| * speed along the perpendicular.
    compensation = -(truth["compensation"].to_numpy() * config.field_strength)
    reward = trials["reward"].to_numpy().astype(float)
    loadings = units[["latent_loading_global", "latent_loading_signed"]].to_numpy()
    private = units["private_noise"].to_numpy()[:, None] * rng.normal(
        0.0, 1.0, (len(units), len(trials))
    )
    log_gain = loadings @ latent.T + private
    variance = (loadings**2).sum(axis=1) + units["private_noise"].to_numpy() ** 2
    # exp(a z - a^2 var / 2) has mean 1 whatever the amplitude a.
    moving = 1.0 - latent_config.movement_quench
    gain_rest = np.exp(log_gain - 0.5 * variance[:, None])
    gain_moving = np.exp(moving * log_gain - 0.5 * moving**2 * variance[:, None])
    return _TrialSignals(
        move_onset=trials["move_onset_time"].to_numpy(),
        go_cue=trials["go_cue_time"].to_numpy(),
        feedback=trials["feedback_time"].to_numpy(),
        target_angle=angle,
        compensation_force=compensation[:, None] * perpendicular,
        error=trials[["error_x", "error_y"]].to_numpy(),
        outcome_rpe=reward - truth["expected_reward"].to_numpy(),
        outcome_failure=1.0 - reward,
        gain_rest=gain_rest,
        gain_ratio_moving=gain_moving / gain_rest,
        preferred_direction=preferred_direction,
        extras={
            "mass": config.arm_mass,
            "distance": config.reach_distance,
            "duration": config.movement_duration,
            # Lateral hand speed per metre of the trial's maximum lateral error,
            # every millisecond from movement onset.
            "lateral_speed": np.gradient(task.lateral_template, 0.001)
            / task.lateral_template.max(),
            "lateral_position": task.lateral_template / task.lateral_template.max(),
            "arm_lateral_error": truth["arm_lateral_error"].to_numpy(),
            "stiffness": config.arm_stiffness,
            "damping": config.arm_damping,
            "track_arm": track_arm,
        },
    )


def _rates(
    units: pd.DataFrame,
    signals: _TrialSignals,
    bins: np.ndarray,
    trial_of_bin: np.ndarray,
) -> np.ndarray:
    """Rate (Hz) of every unit in every bin of one chunk, shape (n_units, n_bins).

    Each term is evaluated only for the units that carry it and in the bins
    where it can be non-zero (movement, or the response window after feedback).
    """
    centre = (bins + 0.5) * RATE_BIN
    since_onset = centre - signals.move_onset[trial_of_bin]
    since_feedback = centre - signals.feedback[trial_of_bin]
    rate = np.repeat(units["baseline_rate"].to_numpy()[:, None], len(bins), axis=1)
    distance = signals.extras["distance"]
    duration = signals.extras["duration"]
    lead = units["kinematic_lead"].to_numpy()[:, None]
    # The deflection and its correction outlast the planned reach by ~0.4 s.
    reach_end = duration + (0.4 if signals.extras["track_arm"] else 0.0)
    during = np.flatnonzero(
        (since_onset > -lead.max(initial=0.0)) & (since_onset < reach_end)
    )
    moving_trials = trial_of_bin[during]

    # Cosine tuning to the hand velocity: the planned reach along the target,
    # plus (track_arm) the lateral deflection, which scales with the error.
    tuned = np.flatnonzero(units["depth"].to_numpy() > 0)
    if tuned.size and during.size:
        shifted = since_onset[during] + lead[tuned]
        offset = (
            signals.target_angle[moving_trials]
            - signals.preferred_direction[tuned][:, moving_trials]
        )
        along = minimum_jerk_speed(shifted, distance, duration) * np.cos(offset)
        if signals.extras["track_arm"]:
            sideways = _lateral(shifted, moving_trials, signals, "lateral_speed")
            along -= sideways * np.sin(offset)
        peak_speed = 1.875 * distance / duration
        depth = units["depth"].to_numpy()[tuned, None] / peak_speed
        rate[np.ix_(tuned, during)] += depth * along

    pushing = np.flatnonzero(units["force_gain"].to_numpy() > 0)
    if pushing.size and during.size:
        shifted = since_onset[during] + lead[pushing]
        force_x, force_y = _produced_force(shifted, moving_trials, signals)
        direction = units["force_direction"].to_numpy()[pushing, None]
        projected = force_x * np.cos(direction) + force_y * np.sin(direction)
        gain = units["force_gain"].to_numpy()[pushing, None]
        rate[np.ix_(pushing, during)] += gain * projected

    _add_feedback_terms(rate, units, signals, since_feedback, trial_of_bin)
    np.maximum(rate, 0.0, out=rate)

    # Shared and private gain, its amplitude quenched from go cue to reach end.
    rate *= signals.gain_rest[:, trial_of_bin]
    since_go = centre - signals.go_cue[trial_of_bin]
    quenched = np.flatnonzero((since_go > 0) & (since_onset < duration + 0.1))
    rate[:, quenched] *= signals.gain_ratio_moving[:, trial_of_bin[quenched]]
    return rate


def _produced_force(
    shifted: np.ndarray, trial_of_bin: np.ndarray, signals: _TrialSignals
) -> np.ndarray:
    """Return the force the arm produces (N), x and y.

    Inertial force along the reach, the learnt compensation of the field and,
    with ``track_arm``, the correction of the deflection.
    """
    distance = signals.extras["distance"]
    duration = signals.extras["duration"]
    phase = np.clip(shifted / duration, 0.0, 1.0)
    acceleration = (
        distance / duration**2 * (60 * phase - 180 * phase**2 + 120 * phase**3)
    )
    acceleration = np.where((shifted > 0) & (shifted < duration), acceleration, 0.0)
    speed = minimum_jerk_speed(shifted, distance, duration)
    angle = signals.target_angle[trial_of_bin]
    inertial = signals.extras["mass"] * acceleration
    compensation = signals.compensation_force[trial_of_bin]
    force_x = inertial * np.cos(angle) + speed * compensation[:, 0]
    force_y = inertial * np.sin(angle) + speed * compensation[:, 1]
    if signals.extras["track_arm"]:
        # The arm's impedance pushes back on the deflection: -(k y + c y').
        correction = -(
            signals.extras["stiffness"]
            * _lateral(shifted, trial_of_bin, signals, "lateral_position")
            + signals.extras["damping"]
            * _lateral(shifted, trial_of_bin, signals, "lateral_speed")
        )
        force_x = force_x - correction * np.sin(angle)
        force_y = force_y + correction * np.cos(angle)
    return force_x, force_y


def _lateral(
    shifted: np.ndarray, trial_of_bin: np.ndarray, signals: _TrialSignals, name: str
) -> np.ndarray:
    """Lateral deflection (m) or its speed (m/s) at times from movement onset."""
    template = signals.extras[name]
    milliseconds = np.clip(np.rint(shifted * 1000), 0, len(template) - 1)
    value = template[milliseconds.astype(np.int64)] * (shifted > 0)
    return value * signals.extras["arm_lateral_error"][trial_of_bin]


def _add_feedback_terms(
    rate: np.ndarray,
    units: pd.DataFrame,
    signals: _TrialSignals,
    since_feedback: np.ndarray,
    trial_of_bin: np.ndarray,
) -> None:
    """Add the error, magnitude and outcome responses after feedback (Hz)."""
    error_gain = units["error_gain"].to_numpy()
    magnitude_gain = units["magnitude_gain"].to_numpy()
    outcome_gain = units["outcome_gain"].to_numpy()
    responding = np.flatnonzero(
        (error_gain > 0) | (magnitude_gain > 0) | (outcome_gain > 0)
    )
    if not responding.size:
        return

    latency = units["error_latency"].to_numpy()[responding, None]
    duration = units["response_duration"].to_numpy()[responding, None]
    window = np.flatnonzero(
        (since_feedback > latency.min()) & (since_feedback < (latency + duration).max())
    )
    trials = trial_of_bin[window]
    kernel = _response_kernel(since_feedback[window] - latency, duration)
    error = signals.error[trials]
    preferred = units["preferred_error_direction"].to_numpy()[responding, None]
    projected = error[:, 0] * np.cos(preferred) + error[:, 1] * np.sin(preferred)
    size = np.hypot(error[:, 0], error[:, 1])
    failure = (units["outcome_coding"].to_numpy()[responding] == "failure")[:, None]
    outcome = np.where(
        failure, signals.outcome_failure[trials], signals.outcome_rpe[trials]
    )
    drive = (
        error_gain[responding, None] * projected
        + magnitude_gain[responding, None] * size
        + outcome_gain[responding, None] * outcome
    )
    rate[np.ix_(responding, window)] += drive * kernel


def _response_kernel(time: np.ndarray, duration: np.ndarray) -> np.ndarray:
    """0 before onset, a 20 ms cosine rise, then a cosine decay to 0 at ``duration``."""
    rise = 0.5 - 0.5 * np.cos(np.pi * np.clip(time / RISE_TIME, 0.0, 1.0))
    fall_phase = np.clip((time - RISE_TIME) / (duration - RISE_TIME), 0.0, 1.0)
    fall = 0.5 + 0.5 * np.cos(np.pi * fall_phase)
    return np.where((time > 0) & (time < duration), rise * fall, 0.0)


def _draw_spikes(
    units: pd.DataFrame, rate: np.ndarray, bin_start: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Spike times of one chunk, unit after unit and sorted; and counts per unit."""
    gamma = np.flatnonzero(units["spiking"].to_numpy() == "gamma")
    expected = rate * RATE_BIN
    expected[gamma] = 0.0

    # Poisson by time rescaling: with all units' bins laid end to end, the
    # cumulative intensity is one increasing array in which each unit owns a
    # segment. A unit's spikes are Poisson(segment length) uniform points in
    # its segment; one sort orders them within units and keeps units in order.
    n_bins = rate.shape[1]
    cumulative = np.cumsum(expected.ravel())
    segment_end = cumulative[n_bins - 1 :: n_bins]
    segment_start = np.r_[0.0, segment_end[:-1]]
    per_unit = rng.poisson(segment_end - segment_start)
    owner = np.repeat(np.arange(len(units)), per_unit)
    rescaled = (
        segment_start[owner]
        + rng.random(owner.size) * (segment_end - segment_start)[owner]
    )
    # Keep rounding from carrying a point onto the next unit's segment.
    np.minimum(rescaled, np.nextafter(segment_end[owner], -np.inf), out=rescaled)
    rescaled.sort()
    flat_bin = np.minimum(
        np.searchsorted(cumulative, rescaled, side="right"), cumulative.size - 1
    )
    before = np.where(flat_bin > 0, cumulative[flat_bin - 1], 0.0)
    fraction = np.clip((rescaled - before) / expected.ravel()[flat_bin], 0.0, 1.0)
    times = (bin_start + flat_bin % n_bins + fraction) * RATE_BIN

    if gamma.size:
        shapes = units["gamma_shape"].to_numpy()
        renewal = [
            _gamma_renewal(rate[unit] * RATE_BIN, shapes[unit], bin_start, rng)
            for unit in gamma
        ]
        pieces = np.split(times, np.cumsum(per_unit)[:-1])
        for unit, spikes in zip(gamma, renewal, strict=True):
            pieces[unit] = spikes
        per_unit = np.array([len(piece) for piece in pieces])
        times = np.concatenate(pieces)
    return times, per_unit


def _gamma_renewal(
    expected: np.ndarray, shape: float, bin_start: int, rng: np.random.Generator
) -> np.ndarray:
    """Gamma-renewal spikes for a piecewise-constant rate, by time rescaling."""
    cumulative = np.cumsum(expected)
    total = cumulative[-1]
    n_draw = int(total + 6 * np.sqrt(total + 1) + 10)
    intervals = rng.gamma(shape, 1.0 / shape, n_draw)
    intervals[0] *= rng.random()  # start in equilibrium, roughly
    rescaled = np.cumsum(intervals)
    while rescaled[-1] < total:
        more = np.cumsum(rng.gamma(shape, 1.0 / shape, n_draw)) + rescaled[-1]
        rescaled = np.concatenate([rescaled, more])
    rescaled = rescaled[rescaled < total]
    position = np.searchsorted(cumulative, rescaled, side="right")
    before = np.where(position > 0, cumulative[position - 1], 0.0)
    fraction = (rescaled - before) / expected[position]
    return (bin_start + position + fraction) * RATE_BIN


def _interleave(
    pieces: list[np.ndarray], counts: np.ndarray, n_units: int
) -> tuple[np.ndarray, np.ndarray]:
    """Reorder chunk-major spike pieces into unit-major order, by index arithmetic."""
    flat = np.concatenate(pieces) if pieces else np.empty(0)
    # counts: (n_chunks, n_units); offset of each (chunk, unit) piece in `flat`.
    offsets = np.cumsum(counts.ravel()) - counts.ravel()
    offsets = offsets.reshape(counts.shape)
    lengths = counts.T.ravel()
    starts = offsets.T.ravel()
    total = int(lengths.sum())
    gather = np.arange(total, dtype=np.int64) + np.repeat(
        starts - np.cumsum(lengths) + lengths, lengths
    )
    spike_index = np.cumsum(counts.sum(axis=0)).astype(np.int64)
    return flat[gather].astype(np.float64), spike_index
