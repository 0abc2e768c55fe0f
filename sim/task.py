"""Centre-out reaching in a curl force field: trials, adaptation, error, reward.

One session has three blocks, baseline, force field and washout. On every trial
the hand makes a minimum-jerk reach to one of eight targets. In the force field
the robot pushes the hand sideways with a velocity-dependent curl force
``F = b [[0, 1], [-1, 0]] v`` (clockwise for ``b > 0``), and the arm, modelled
as a point mass held by a spring and damper across the reach, is deflected. The
subject learns to compensate following a two-rate state-space model
(:mod:`errsig.behavior`), so the lateral error is large early in the field,
small late in it, and mirror-reversed early in washout.

At feedback the subject sees a 2-D error vector (metres): the signed maximum
perpendicular deviation along the axis perpendicular to the reach, plus the
extent error along the reach, plus an optional random cursor jump that
decorrelates the shown error from the arm's kinematics (Inoue & Kitazawa 2018).
The subject learns from the lateral part of the error it sees.

Reward can follow the error (a hit inside an acceptance radius that a staircase
adjusts toward a target success rate, Wang et al. 2020), follow it loosely
(probabilistic reward), or ignore it (random reward), so that outcome and
``|error|`` can be decoupled.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from scipy import signal

from errsig import behavior
from errsig._exceptions import ErrsigError
from errsig.session import BehaviorSeries

__all__ = [
    "REWARD_RULES",
    "TaskConfig",
    "TaskResult",
    "minimum_jerk_speed",
    "simulate_task",
]

REWARD_RULES = ("threshold", "probabilistic", "random")
PHASES = ("baseline", "force_field", "washout")


@dataclass(frozen=True)
class TaskConfig:
    """Settings of the simulated reaching task.

    Parameters
    ----------
    n_baseline, n_force_field, n_washout : int
        Trials in each block.
    n_targets : int
        Targets evenly spaced on a circle, visited in shuffled cycles.
    reach_distance : float
        Distance to the targets, metres.
    movement_duration : float
        Duration of each minimum-jerk reach, seconds.
    field_strength : float
        Curl field viscosity ``b``, N·s/m.
    field_direction : {"cw", "ccw"}
        Sense of rotation of the field force relative to the hand velocity.
    arm_mass, arm_stiffness, arm_damping : float
        Point-mass arm model (kg, N/m, N·s/m) that sets how far the field
        deflects a naive reach (about 2.1 cm at 15 N·s/m and 0.375 m/s).
    adaptation : errsig.behavior.AdaptationParams
        State-space learner; its noises are in metres of lateral error.
    extent_noise : float
        SD of the error along the reach (over- or undershoot), metres.
    jump_probability : float
        Probability of a cursor jump on a trial.
    jump_size : float
        SD of each component of a cursor jump, metres.
    reward_rule : {"threshold", "probabilistic", "random"}
        ``threshold``: reward on a hit (``|shown error| < radius``);
        ``probabilistic``: reward with ``hit_reward_probability`` after a hit
        and ``miss_reward_probability`` after a miss; ``random``: reward with
        ``reward_probability`` whatever the error.
    hit_reward_probability, miss_reward_probability, reward_probability : float
        Probabilities used by the rules above.
    staircase : bool
        Adjust the acceptance radius after every trial (weighted up-down) so
        that the hit rate converges to ``target_success``.
    target_success : float
        Hit rate the staircase aims for.
    initial_radius, staircase_step : float
        Starting acceptance radius (metres) and log-step of the staircase.
    expected_reward_rate : float
        Learning rate of the running reward expectation ``R̄`` (exponentially
        weighted average of past rewards, Bayer & Glimcher 2005).
    hold_range, reaction_time_range, iti_range : tuple of float
        Uniform ranges (seconds) of the centre hold before the go cue, the
        reaction time and the inter-trial interval.
    feedback_delay : float
        Delay from the end of the reach to the feedback, seconds.
    post_feedback : float
        Time from feedback to the end of the trial, seconds.
    sampling_rate : float
        Sampling rate of hand position, velocity and force, Hz.
    record_behavior : bool
        Sample hand position, velocity and force; ``False`` skips them (faster,
        e.g. for calibration runs over many seeds).

    Examples
    --------
    >>> from sim.task import TaskConfig
    >>> config = TaskConfig(field_direction="ccw")
    >>> config.n_trials
    600
    >>> config.scaled(200).n_force_field
    100
    """

    n_baseline: int = 150
    n_force_field: int = 300
    n_washout: int = 150
    n_targets: int = 8
    reach_distance: float = 0.10
    movement_duration: float = 0.5
    field_strength: float = 15.0
    field_direction: str = "cw"
    arm_mass: float = 1.5
    arm_stiffness: float = 250.0
    arm_damping: float = 25.0
    adaptation: behavior.AdaptationParams = field(
        default_factory=lambda: behavior.AdaptationParams(
            (0.59, 0.992), (0.21, 0.02), 0.0005, 0.003
        )
    )
    extent_noise: float = 0.003
    jump_probability: float = 0.0
    jump_size: float = 0.01
    reward_rule: str = "probabilistic"
    hit_reward_probability: float = 0.85
    miss_reward_probability: float = 0.15
    reward_probability: float = 0.55
    staircase: bool = True
    target_success: float = 0.55
    initial_radius: float = 0.01
    staircase_step: float = 0.15
    expected_reward_rate: float = 0.1
    hold_range: tuple[float, float] = (0.3, 0.5)
    reaction_time_range: tuple[float, float] = (0.2, 0.35)
    iti_range: tuple[float, float] = (0.1, 0.3)
    feedback_delay: float = 0.005
    post_feedback: float = 0.85
    sampling_rate: float = 100.0
    record_behavior: bool = True

    def __post_init__(self) -> None:
        if self.reward_rule not in REWARD_RULES:
            raise ErrsigError(
                f"`reward_rule` must be one of {REWARD_RULES}; got "
                f"{self.reward_rule!r}."
            )
        if self.field_direction not in ("cw", "ccw"):
            raise ErrsigError(
                f"`field_direction` must be 'cw' or 'ccw'; got "
                f"{self.field_direction!r}."
            )
        blocks = (self.n_baseline, self.n_force_field, self.n_washout)
        if min(blocks) < 0 or sum(blocks) < 1:
            raise ErrsigError(
                f"block lengths (baseline, force field, washout) = {blocks} must be "
                "non-negative with at least one trial."
            )
        if self.sampling_rate < 100:
            raise ErrsigError(
                f"`sampling_rate` is {self.sampling_rate} Hz; use at least 100 Hz."
            )

    @property
    def n_trials(self) -> int:
        """Total number of trials."""
        return self.n_baseline + self.n_force_field + self.n_washout

    @property
    def field_sign(self) -> int:
        """+1 when the field pushes the hand counter-clockwise, -1 clockwise."""
        return 1 if self.field_direction == "ccw" else -1

    def scaled(self, n_trials: int) -> TaskConfig:
        """Return a copy with ``n_trials`` trials split 1:2:1 over the blocks."""
        n_baseline = n_trials // 4
        n_washout = n_trials // 4
        return replace(
            self,
            n_baseline=n_baseline,
            n_force_field=n_trials - n_baseline - n_washout,
            n_washout=n_washout,
        )


@dataclass(eq=False)
class TaskResult:
    """A simulated behavioural session.

    Parameters
    ----------
    config : TaskConfig
        The settings used.
    trials : pandas.DataFrame
        The trials table of the data model (times, ``target_angle``, ``phase``,
        ``error_x``, ``error_y``, ``reward``).
    truth : pandas.DataFrame
        Per-trial ground truth: field strength (signed, + counter-clockwise),
        perturbation, adaptation states, compensation (net adaptation as a
        fraction of the naive field error), arm and shown lateral error,
        cursor jump, acceptance radius, hit, reward probability and expected
        reward.
    behavior : dict of str to BehaviorSeries
        ``hand_position``, ``hand_velocity`` (the arm, not the cursor) and
        ``hand_force`` (the force the robot applies to the hand).
    lateral_template : numpy.ndarray
        Lateral deflection of the arm per N·s/m of field on a naive reach,
        metres, sampled every millisecond from movement onset.

    Examples
    --------
    >>> from sim.task import TaskConfig, simulate_task
    >>> result = simulate_task(TaskConfig().scaled(8), rng=0)
    >>> sorted(result.behavior)
    ['hand_force', 'hand_position', 'hand_velocity']
    >>> round(float(15 * result.lateral_template.max()), 4)  # naive error, m
    0.0211
    """

    config: TaskConfig
    trials: pd.DataFrame
    truth: pd.DataFrame
    behavior: dict[str, BehaviorSeries]
    lateral_template: np.ndarray


def minimum_jerk_speed(
    time: np.ndarray, distance: float, duration: float
) -> np.ndarray:
    """Speed of a minimum-jerk reach at times relative to movement onset.

    Parameters
    ----------
    time : numpy.ndarray
        Seconds from movement onset; the speed is 0 outside ``[0, duration]``.
    distance : float
        Reach length, metres.
    duration : float
        Reach duration, seconds.

    Returns
    -------
    numpy.ndarray
        Speed in m/s, peaking at ``1.875 * distance / duration`` mid-reach.

    Examples
    --------
    >>> from sim.task import minimum_jerk_speed
    >>> float(minimum_jerk_speed(0.25, 0.1, 0.5))
    0.375
    """
    phase = np.clip(np.asarray(time, dtype=np.float64) / duration, 0.0, 1.0)
    return distance / duration * 30.0 * phase**2 * (1.0 - phase) ** 2


def simulate_task(
    config: TaskConfig, *, rng: int | np.random.Generator | None = None
) -> TaskResult:
    """Simulate the behaviour of one reaching session.

    Parameters
    ----------
    config : TaskConfig
        Block lengths, field, learner, reward rule and timing.
    rng : None, int or numpy.random.Generator, optional
        Source of randomness.

    Returns
    -------
    TaskResult

    Examples
    --------
    >>> from sim.task import TaskConfig, simulate_task
    >>> result = simulate_task(TaskConfig(), rng=0)
    >>> lateral = result.truth["arm_lateral_error"]
    >>> bool(abs(lateral[150]) > 0.015), bool(abs(lateral[440:450]).mean() < 0.008)
    (True, True)
    """
    from errsig._validation import check_rng

    generator = check_rng(rng)
    streams = generator.spawn(4)
    n_trials = config.n_trials
    phase = np.repeat(
        PHASES, [config.n_baseline, config.n_force_field, config.n_washout]
    )
    target_angle = _target_sequence(config, streams[0])
    template = _lateral_template(config)
    naive_error = config.field_strength * template.max()

    # Cursor jumps shift what is seen, and the learner learns from what is seen.
    jumps = streams[1].normal(0.0, config.jump_size, (n_trials, 2))
    jumps *= (streams[1].random(n_trials) < config.jump_probability)[:, None]
    perpendicular = np.c_[-np.sin(target_angle), np.cos(target_angle)]
    along = np.c_[np.cos(target_angle), np.sin(target_angle)]
    jump_lateral = np.einsum("ij,ij->i", jumps, perpendicular)
    field_on = phase == "force_field"
    perturbation = field_on * config.field_sign * naive_error
    trace = behavior.simulate(
        perturbation + jump_lateral, config.adaptation, rng=streams[2]
    )
    shown_lateral = trace.error
    arm_lateral = shown_lateral - jump_lateral

    extent = streams[3].normal(0.0, config.extent_noise, n_trials)
    jump_along = np.einsum("ij,ij->i", jumps, along)
    shown_error = (
        shown_lateral[:, None] * perpendicular + (extent + jump_along)[:, None] * along
    )
    outcome = _reward(config, np.hypot(*shown_error.T), streams[3])
    times = _trial_times(config, streams[3])

    trials = pd.DataFrame(
        {
            **times,
            "target_angle": target_angle,
            "phase": phase,
            "error_x": shown_error[:, 0],
            "error_y": shown_error[:, 1],
            "reward": outcome.pop("reward"),
        }
    )
    trials.index.name = "trial"
    truth = pd.DataFrame(
        {
            "field_strength": field_on * config.field_sign * config.field_strength,
            "perturbation": perturbation,
            "adaptation": trace.state.sum(axis=1),
            "adaptation_fast": trace.state[:, 0],
            "adaptation_slow": trace.state[:, -1],
            "compensation": trace.state.sum(axis=1) / naive_error,
            "arm_lateral_error": arm_lateral,
            "shown_lateral_error": shown_lateral,
            "extent_error": extent,
            "cursor_jump_x": jumps[:, 0],
            "cursor_jump_y": jumps[:, 1],
            **outcome,
        },
        index=trials.index,
    )
    result = TaskResult(
        config=config,
        trials=trials,
        truth=truth,
        behavior={},
        lateral_template=template,
    )
    if config.record_behavior:
        result.behavior = _sample_behavior(result)
    return result


def _target_sequence(config: TaskConfig, rng: np.random.Generator) -> np.ndarray:
    """Targets in shuffled cycles, so each block visits all of them evenly."""
    n_cycles = -(-config.n_trials // config.n_targets)
    order = rng.permuted(np.tile(np.arange(config.n_targets), (n_cycles, 1)), axis=1)
    return order.ravel()[: config.n_trials] * (2 * np.pi / config.n_targets)


def _lateral_template(config: TaskConfig) -> np.ndarray:
    """Arm deflection per N·s/m of field, every ms over 2 s from movement onset."""
    return _arm_deflection(
        config.arm_mass,
        config.arm_damping,
        config.arm_stiffness,
        config.reach_distance,
        config.movement_duration,
    ).copy()


@functools.lru_cache(maxsize=16)
def _arm_deflection(
    mass: float, damping: float, stiffness: float, distance: float, duration: float
) -> np.ndarray:
    """Deflect a point mass on a spring and damper with a unit curl field.

    Solves ``m y'' + c y' + k y = |v(t)|`` from rest.
    """
    time = np.arange(0.0, 2.0, 0.001)
    speed = minimum_jerk_speed(time, distance, duration)
    arm = signal.lti([1.0], [mass, damping, stiffness])
    _, deflection, _ = signal.lsim(arm, speed, time)
    return deflection


def _reward(
    config: TaskConfig, error_size: np.ndarray, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Hits, rewards, the staircase radius and the running reward expectation."""
    n_trials = len(error_size)
    radius = np.empty(n_trials)
    hit = np.empty(n_trials, dtype=bool)
    current = config.initial_radius
    up = config.staircase_step * config.target_success
    down = config.staircase_step * (1.0 - config.target_success)
    for trial in range(n_trials):
        radius[trial] = current
        hit[trial] = error_size[trial] < current
        if config.staircase:
            current *= np.exp(-down if hit[trial] else up)

    if config.reward_rule == "threshold":
        probability = hit.astype(float)
    elif config.reward_rule == "probabilistic":
        probability = np.where(
            hit, config.hit_reward_probability, config.miss_reward_probability
        )
    else:
        probability = np.full(n_trials, config.reward_probability)
    reward = rng.random(n_trials) < probability

    expected = np.empty(n_trials)
    running = config.target_success
    for trial in range(n_trials):
        expected[trial] = running
        running += config.expected_reward_rate * (reward[trial] - running)
    return {
        "reward": reward,
        "hit": hit,
        "acceptance_radius": radius,
        "reward_probability": probability,
        "expected_reward": expected,
    }


def _trial_times(config: TaskConfig, rng: np.random.Generator) -> dict[str, np.ndarray]:
    n_trials = config.n_trials
    hold = rng.uniform(*config.hold_range, n_trials)
    reaction = rng.uniform(*config.reaction_time_range, n_trials)
    gap = rng.uniform(*config.iti_range, n_trials)
    duration = (
        hold
        + reaction
        + config.movement_duration
        + config.feedback_delay
        + config.post_feedback
    )
    start = np.concatenate([[1.0], 1.0 + np.cumsum(duration + gap)[:-1]])
    go_cue = start + hold
    move_onset = go_cue + reaction
    feedback = move_onset + config.movement_duration + config.feedback_delay
    return {
        "start_time": start,
        "go_cue_time": go_cue,
        "move_onset_time": move_onset,
        "feedback_time": feedback,
        "stop_time": feedback + config.post_feedback,
    }


def _sample_behavior(result: TaskResult) -> dict[str, BehaviorSeries]:
    """Hand position, velocity and robot force sampled within every trial."""
    config, trials, truth = result.config, result.trials, result.truth
    step = 1.0 / config.sampling_rate
    starts = np.ceil(trials["start_time"].to_numpy() / step).astype(np.int64)
    stops = np.floor(trials["stop_time"].to_numpy() / step).astype(np.int64)
    counts = stops - starts
    trial_of_sample = np.repeat(np.arange(len(trials)), counts)
    sample_index = np.arange(counts.sum()) + np.repeat(
        starts - np.cumsum(counts) + counts, counts
    )
    times = sample_index * step

    since_onset = times - trials["move_onset_time"].to_numpy()[trial_of_sample]
    angle = trials["target_angle"].to_numpy()[trial_of_sample]
    along = np.c_[np.cos(angle), np.sin(angle)]
    perpendicular = np.c_[-np.sin(angle), np.cos(angle)]
    phase = np.clip(since_onset / config.movement_duration, 0.0, 1.0)
    extent = config.reach_distance * (10 * phase**3 - 15 * phase**4 + 6 * phase**5)
    speed = minimum_jerk_speed(
        since_onset, config.reach_distance, config.movement_duration
    )

    # The lateral path is the template scaled so that its peak is the trial's
    # signed maximum perpendicular error.
    template = result.lateral_template
    per_metre = template / template.max()
    lateral_error = truth["arm_lateral_error"].to_numpy()[trial_of_sample]
    milliseconds = np.clip(
        np.round(since_onset * 1000).astype(np.int64), 0, len(template) - 1
    )
    lateral = np.where(since_onset > 0, per_metre[milliseconds] * lateral_error, 0.0)
    lateral_speed = np.gradient(per_metre, 0.001)[milliseconds] * lateral_error
    lateral_speed = np.where(since_onset > 0, lateral_speed, 0.0)

    position = extent[:, None] * along + lateral[:, None] * perpendicular
    velocity = speed[:, None] * along + lateral_speed[:, None] * perpendicular
    field_strength = truth["field_strength"].to_numpy()[trial_of_sample]
    # Curl field F = b [[0, 1], [-1, 0]] v with b > 0 clockwise; field_strength
    # is signed +ccw, so b = -field_strength.
    force = -field_strength[:, None] * np.c_[velocity[:, 1], -velocity[:, 0]]
    frame = "metres from the centre target, x right, y up"
    return {
        "hand_position": BehaviorSeries(times, position, "meters", frame),
        "hand_velocity": BehaviorSeries(times, velocity, "meters/second", frame),
        "hand_force": BehaviorSeries(
            times, force, "newtons", "force of the robot on the hand, " + frame
        ),
    }
