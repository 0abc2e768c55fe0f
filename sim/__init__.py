"""sim: synthetic force-field reaching sessions with known ground truth.

``sim.simulate(scenario, rng=seed)`` returns an :class:`errsig.Session` whose
``meta["truth"]`` records every planted parameter, so that each errsig analysis
can be checked against a known answer. The parts:

- :mod:`sim.task`: centre-out reaching in a curl field, adaptation, shown
  error, reward;
- :mod:`sim.population`: spiking units in named areas with known roles;
- :mod:`sim.learning`: trial-by-trial tuning-drift rules;
- :mod:`sim.scenarios`: the named scenarios S0-S8 and ``mixed``.

Examples
--------
>>> import sim
>>> session = sim.simulate("null", rng=1, n_trials=40, n_units=5)
>>> session.meta["truth"]["scenario"]
'S0'
"""

from sim.scenarios import ALIASES, SCENARIOS, Scenario, list_scenarios, simulate

__all__ = ["ALIASES", "SCENARIOS", "Scenario", "list_scenarios", "simulate"]
