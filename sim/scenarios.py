"""Named ground-truth scenarios and :func:`simulate`, which turns one into a Session.

Each scenario is a hypothesis that errsig's analyses must recover or must
reject (science.md §4). A scenario fixes the task (reward rule, cursor jumps)
and the population (areas, roles, drift rules); :func:`simulate` runs the task,
draws the units, drifts their tuning trial by trial and generates spikes, and
returns a :class:`~errsig.Session` whose ``meta["truth"]`` holds every planted
number.

=========  ====================  ===============================================
name       alias                 what it plants
=========  ====================  ===============================================
S0         null                  kinematic and force units only, shared slow
                                 drift, decaying error; no error or reward code
S1         vector_error          vector-error units (latencies 50/100/200 ms)
S2         error_magnitude       error-magnitude units, no direction tuning
S3         outcome               outcome units (RPE and failure), reward drawn
                                 independently of the error
S4         kinematic_confound    velocity- and force-tuned units, no cursor
                                 jumps: error follows their movement activity
S5         gradient              tuning drifts along the signed error gradient
S6         reward_gated          exploration kept in proportion to reward surprise
S7         random_walk           reward- and error-independent random walk
S8         mechanical            apparent drift toward the field, reverting in
                                 washout
mixed      demo                  M1, PMd, striatum, cerebellum, each with its mix
=========  ====================  ===============================================
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from errsig._exceptions import ErrsigError
from errsig._validation import check_positive_int, check_rng
from errsig.session import Session
from sim.learning import drift_preferred_directions
from sim.population import (
    LatentConfig,
    UnitGroup,
    make_units,
    simulate_latent,
    simulate_spikes,
)
from sim.task import TaskConfig, simulate_task

__all__ = ["ALIASES", "SCENARIOS", "Scenario", "list_scenarios", "simulate"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Scenario:
    """A named, documented ground truth.

    Parameters
    ----------
    name : str
        Short name (``"S0"``, ...).
    alias : str
        Descriptive alias (``"null"``, ...).
    description : str
        What it plants, what an analysis must recover and must not report.
    groups : tuple of UnitGroup
        The units.
    task : TaskConfig
        The behaviour.
    latent : LatentConfig
        The shared latent.
    n_units : int
        Default number of units.
    track_arm : bool
        Whether kinematic and force units follow the arm's actual deflection
        (see :func:`sim.population.simulate_spikes`), so that their movement
        activity carries the error.

    Examples
    --------
    >>> from sim.scenarios import SCENARIOS
    >>> SCENARIOS["S1"].alias
    'vector_error'
    """

    name: str
    alias: str
    description: str
    groups: tuple[UnitGroup, ...]
    task: TaskConfig = field(default_factory=TaskConfig)
    latent: LatentConfig = field(default_factory=LatentConfig)
    n_units: int = 120
    track_arm: bool = False


def _background(area: str = "M1", drift_rule: str = "stable") -> tuple[UnitGroup, ...]:
    """Kinematic and force units that every scenario carries."""
    return (
        UnitGroup(area, "kinematic", 0.45, drift_rule),
        UnitGroup(area, "force", 0.15, drift_rule),
        UnitGroup(area, "null", 0.1),
    )


def _drifting(
    rule: str, *, stable: float = 0.3, force: float = 0.2
) -> tuple[UnitGroup, ...]:
    """Half drifting kinematic units, the rest stable kinematic and force units."""
    return (
        UnitGroup("M1", "kinematic", 0.5, rule),
        UnitGroup("M1", "kinematic", stable, "stable"),
        UnitGroup("M1", "force", force),
    )


#: Cursor jumps on a third of the trials spread the shown error over all
#: directions and decorrelate it from the arm's movement.
JUMPS = {"jump_probability": 0.3, "jump_size": 0.01}

_SCENARIO_LIST = [
    Scenario(
        "S0",
        "null",
        "Null. Kinematic (cosine velocity) and force units, a few untuned units, a "
        "slow shared latent drifting across trials, errors that decay through the "
        "force-field block and reward from a staircase. No unit codes error or "
        "reward and no tuning changes. Analyses must hold their nominal false-"
        "positive rate under pseudosession nulls; naive trial shuffles pair the "
        "drift with the decaying error and are expected to over-reject.",
        (
            UnitGroup("M1", "kinematic", 0.6),
            UnitGroup("M1", "force", 0.25),
            UnitGroup("M1", "null", 0.15),
        ),
    ),
    Scenario(
        "S1",
        "vector_error",
        "Vector error. A third of the units respond after feedback in proportion "
        "to the shown error projected on their preferred error direction "
        "(error_gain in Hz per metre), with onset latencies of 50, 100 or 200 ms "
        "and 150-300 ms responses; cursor jumps on 30% of trials spread the "
        "errors over all directions. Recover gain, preferred error direction and "
        "latency (± one bin); the other units must not be called error units.",
        (*_background("M1"), UnitGroup("PMd", "vector_error", 0.3)),
        TaskConfig(**JUMPS),
    ),
    Scenario(
        "S2",
        "error_magnitude",
        "Error magnitude. A third of the units respond after feedback in "
        "proportion to |error| (magnitude_gain in Hz per metre), not to its "
        "direction. They must be classified as magnitude, not vector, units.",
        (*_background("M1"), UnitGroup("PMd", "error_magnitude", 0.3)),
        TaskConfig(**JUMPS),
    ),
    Scenario(
        "S3",
        "outcome",
        "Scalar outcome. A third of the units respond after feedback to the "
        "outcome: half to the reward prediction error R - R̄ (R̄ an exponential "
        "average of past rewards), half to failure (Ramkumar et al. 2016). "
        "Reward is drawn with probability 0.55 whatever the error, so outcome "
        "and |error| are decoupled. Detect them as outcome units, not error "
        "units. Pass reward_rule='threshold' to make them confounded.",
        (
            *_background("M1"),
            UnitGroup("striatum", "outcome", 0.15, outcome_coding="rpe"),
            UnitGroup("M1", "outcome", 0.15, outcome_coding="failure"),
        ),
        TaskConfig(reward_rule="random", **JUMPS),
    ),
    Scenario(
        "S4",
        "kinematic_confound",
        "Kinematic confound. Velocity- and force-tuned units only, no cursor "
        "jumps, and the units follow the arm's actual deflection and the force "
        "that corrects it: in the curl field the error is a function of the "
        "movement these units encode, so their activity around the end of the "
        "reach correlates with the error. They must not be called error units "
        "once kinematic and force covariates are included.",
        (
            UnitGroup("M1", "kinematic", 0.5),
            UnitGroup("M1", "force", 0.5),
        ),
        TaskConfig(jump_probability=0.0),
        track_arm=True,
    ),
    Scenario(
        "S5",
        "gradient",
        "Gradient drift. Half of the kinematic units turn their preferred "
        "direction after each trial by drift_rate · (e · p), the signed shown "
        "error projected on the unit's perpendicular, rewarded or not. Tuning "
        "change must load on the signed error, not on reward.",
        _drifting("gradient"),
        TaskConfig(**JUMPS),
    ),
    Scenario(
        "S6",
        "reward_gated",
        "Reward-gated drift. Half of the kinematic units explore: their tuning "
        "on each trial turns by ξ ~ N(0, drift_rate²), and (R - R̄)·ξ of it is "
        "kept. Tuning change must load on the reward × exploration interaction "
        "(pooled per area), not on the signed error.",
        _drifting("reward_gated"),
        TaskConfig(reward_rule="random", **JUMPS),
    ),
    Scenario(
        "S7",
        "random_walk",
        "Random-walk drift. Half of the kinematic units' preferred directions "
        "take N(0, drift_rate²) steps every trial in every block, whatever the "
        "error and reward. Drift must be detected (mean-squared change linear "
        "in lag) but must not be called learning-related.",
        _drifting("random_walk"),
    ),
    Scenario(
        "S8",
        "mechanical",
        "Mechanical drift. Half of the kinematic units' preferred directions "
        "shift toward the field in proportion to the learnt compensation "
        "(drift_rate at full compensation), reverting in washout; the force "
        "units change their apparent tuning through the load. The shift must "
        "disappear once force covariates are in.",
        _drifting("mechanical", stable=0.2, force=0.3),
    ),
    Scenario(
        "mixed",
        "demo",
        "Several areas for the demo. M1: kinematic and force units, a few "
        "vector-error units, mechanical drift on some. PMd: vector-error units "
        "and gradient-drifting kinematic units. Striatum: RPE outcome units and "
        "some kinematic ones. GPi: failure-coding units (gamma-renewal, about "
        "60 Hz). Cerebellum: complex spikes (about 1 Hz) tuned to "
        "error direction. Reward is probabilistic with a staircase.",
        (
            UnitGroup("M1", "kinematic", 0.2, "mechanical"),
            UnitGroup("M1", "kinematic", 0.1),
            UnitGroup("M1", "force", 0.08),
            UnitGroup("M1", "vector_error", 0.07, error_latencies=(0.1,)),
            UnitGroup("PMd", "vector_error", 0.12),
            UnitGroup("PMd", "kinematic", 0.13, "gradient"),
            UnitGroup("striatum", "outcome", 0.12, outcome_coding="rpe"),
            UnitGroup("striatum", "kinematic", 0.06),
            UnitGroup("GPi", "outcome", 0.05, outcome_coding="failure"),
            UnitGroup("cerebellum", "vector_error", 0.07, error_latencies=(0.1,)),
            UnitGroup("cerebellum", "null", 0.05),
        ),
        TaskConfig(**JUMPS),
        n_units=150,
    ),
]

#: Scenarios by name.
SCENARIOS: dict[str, Scenario] = {s.name: s for s in _SCENARIO_LIST}
#: Descriptive alias -> name.
ALIASES: dict[str, str] = {s.alias: s.name for s in _SCENARIO_LIST}

_TASK_FIELDS = {f.name for f in dataclasses.fields(TaskConfig)}
_LATENT_FIELDS = {f.name for f in dataclasses.fields(LatentConfig)}


def list_scenarios() -> pd.DataFrame:
    """Return a table of the scenarios: name, alias, default units, description.

    Returns
    -------
    pandas.DataFrame

    Examples
    --------
    >>> from sim import list_scenarios
    >>> list_scenarios().loc["S3", "alias"]
    'outcome'
    """
    return pd.DataFrame(
        [(s.name, s.alias, s.n_units, s.description) for s in _SCENARIO_LIST],
        columns=["name", "alias", "n_units", "description"],
    ).set_index("name")


def simulate(
    scenario: str | Scenario = "S0",
    *,
    rng: int | np.random.Generator | None = None,
    n_trials: int | None = None,
    n_units: int | None = None,
    areas: str | list[str] | None = None,
    progress: bool = False,
    chunk_trials: int = 32,
    **overrides: object,
) -> Session:
    """Simulate one session of a named scenario, with its ground truth.

    Parameters
    ----------
    scenario : str or Scenario, default="S0"
        A name (``"S0"`` ... ``"S8"``, ``"mixed"``, case-insensitive), a
        descriptive alias (``"null"``, ``"vector_error"``, ...) or a
        :class:`Scenario`.
    rng : None, int or numpy.random.Generator, optional
        Source of randomness; the same seed gives the same session bit for bit.
    n_trials : int, optional
        Number of trials, split 1:2:1 over baseline, force field and washout;
        600 by default.
    n_units : int, optional
        Number of units; the scenario's default (120, or 150 for ``mixed``).
    areas : str or list of str, optional
        Keep only the scenario's unit groups in these areas (e.g.
        ``areas=["PMd", "striatum"]`` with ``mixed``); all ``n_units`` units are
        then shared among them.
    progress : bool, default=False
        Show a progress bar over chunks of trials.
    chunk_trials : int, default=32
        Trials simulated at once; memory grows with ``n_units * chunk_trials``.
    **overrides
        Fields of :class:`sim.task.TaskConfig` (e.g. ``reward_rule``,
        ``field_direction``, ``jump_probability``, ``adaptation``), of
        :class:`sim.population.LatentConfig` (e.g. ``slow_correlation``), or
        ``track_arm`` (see :class:`Scenario`).

    Returns
    -------
    errsig.Session
        Spikes, units (``area``), trials (data-model columns), behaviour
        (``hand_position``, ``hand_velocity``, ``hand_force``) and
        ``meta["truth"]`` with ``units``, ``trials``, ``unit_trial``
        (``preferred_direction`` and ``exploration``, radians, (n_units,
        n_trials)) and ``scenario``.

    Raises
    ------
    ErrsigError
        For an unknown scenario or override.

    Examples
    --------
    >>> import sim
    >>> session = sim.simulate("vector_error", rng=0, n_trials=40, n_units=6)
    >>> session.n_units, session.n_trials
    (6, 40)
    >>> session.meta["truth"]["units"]["role"].value_counts()["vector_error"]
    np.int64(2)
    """
    spec = _restrict_areas(_resolve(scenario), areas)
    track_arm = bool(overrides.pop("track_arm", spec.track_arm))
    task_config, latent_config = _configure(spec, n_trials, overrides)
    n_units = (
        spec.n_units if n_units is None else check_positive_int(n_units, "n_units")
    )
    chunk_trials = check_positive_int(chunk_trials, "chunk_trials")
    generator = check_rng(rng)
    task_stream, unit_stream, latent_stream, drift_stream, spike_stream = (
        generator.spawn(5)
    )

    task = simulate_task(task_config, rng=task_stream)
    units = make_units(
        list(spec.groups), n_units, latent=latent_config, rng=unit_stream
    )
    latent = simulate_latent(task_config.n_trials, latent_config, latent_stream)
    drift = drift_preferred_directions(
        units["preferred_direction"].to_numpy(),
        units["drift_rule"].to_numpy(),
        units["drift_rate"].to_numpy(),
        error=task.trials[["error_x", "error_y"]].to_numpy(),
        reward=task.trials["reward"].to_numpy(),
        expected_reward=task.truth["expected_reward"].to_numpy(),
        compensation=task.truth["compensation"].to_numpy(),
        rng=drift_stream,
    )
    spike_times, spike_index = simulate_spikes(
        units,
        task,
        drift["preferred_direction"],
        latent,
        rng=spike_stream,
        chunk_trials=chunk_trials,
        progress=progress,
        latent_config=latent_config,
        track_arm=track_arm,
    )

    trial_truth = task.truth.assign(
        latent_global=latent[:, 0], latent_signed=latent[:, 1]
    )
    session = Session(
        spike_times=spike_times,
        spike_index=spike_index,
        units=units[["area"]].copy(),
        trials=task.trials,
        behavior=task.behavior,
        meta={
            "session_id": f"sim-{spec.name}",
            "subject": "simulated",
            "truth": {
                "scenario": spec.name,
                "units": units,
                "trials": trial_truth,
                "unit_trial": drift,
                "field_direction": task_config.field_direction,
                "track_arm": track_arm,
                "field_strength": task_config.field_strength,
                "naive_error": float(
                    task_config.field_strength * task.lateral_template.max()
                ),
            },
        },
    )
    logger.debug("simulated %s: %s", spec.name, session)
    return session


def _resolve(scenario: str | Scenario) -> Scenario:
    if isinstance(scenario, Scenario):
        return scenario
    key = str(scenario)
    by_lower = {name.lower(): name for name in SCENARIOS}
    name = by_lower.get(key.lower()) or ALIASES.get(key.lower())
    if name is None:
        known = ", ".join(f"{s.name} ({s.alias})" for s in _SCENARIO_LIST)
        raise ErrsigError(f"unknown scenario {scenario!r}; choose one of {known}.")
    return SCENARIOS[name]


def _restrict_areas(spec: Scenario, areas: str | list[str] | None) -> Scenario:
    if areas is None:
        return spec
    wanted = [areas] if isinstance(areas, str) else list(areas)
    groups = tuple(group for group in spec.groups if group.area in wanted)
    if not groups:
        present = sorted({group.area for group in spec.groups})
        raise ErrsigError(
            f"`areas` {wanted} match none of scenario {spec.name}'s areas {present}."
        )
    return dataclasses.replace(spec, groups=groups)


def _configure(
    spec: Scenario, n_trials: int | None, overrides: dict
) -> tuple[TaskConfig, LatentConfig]:
    unknown = sorted(set(overrides) - _TASK_FIELDS - _LATENT_FIELDS)
    if unknown:
        raise ErrsigError(
            f"unknown simulate() override(s) {unknown}; give track_arm or fields "
            f"of TaskConfig ({sorted(_TASK_FIELDS)}) or LatentConfig "
            f"({sorted(_LATENT_FIELDS)})."
        )
    task_config = dataclasses.replace(
        spec.task, **{k: v for k, v in overrides.items() if k in _TASK_FIELDS}
    )
    if n_trials is not None:
        task_config = task_config.scaled(
            check_positive_int(n_trials, "n_trials", minimum=4)
        )
    latent_config = dataclasses.replace(
        spec.latent, **{k: v for k, v in overrides.items() if k in _LATENT_FIELDS}
    )
    return task_config, latent_config
