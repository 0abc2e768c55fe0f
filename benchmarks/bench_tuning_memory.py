"""Peak memory and time of tuning_drift and reward_coupling against the units.

Simulates a ``"mixed"`` session of N units × 2,000 trials and bins it as
:func:`errsig.analyze.analyze_session` does: a movement dataset (one 0.4-s bin
per trial from movement onset) for :func:`errsig.tuning_drift` and the
feedback-aligned dataset (50 bins of 20 ms) for :func:`errsig.reward_coupling`,
with the counts held as int16. Then, with analyze_session's calls (its
default ``AnalysisConfig``: ``tuning_drift(movement, method="filter",
covariates=["force_x", "force_y"])`` with 200 bootstrap resamples of the
blocks; ``reward_coupling(drift, ds, null="pseudosession", n_perm=20)``), it
prints for each

- the wall time of the call, untraced;
- the peak memory traced by :mod:`tracemalloc` (numpy's allocations included)
  above what was allocated before the call, and how much of it the result
  keeps.

Each size runs in a fresh process. The peaks should stay flat as the units
grow, apart from the results, which grow with the units.

Run: ``.venv/bin/python benchmarks/bench_tuning_memory.py [--quick]``;
``--quick`` uses 100 and 200 units × 1,000 trials; the full run (300 and 600
units) takes about 10 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

UNIT_COUNTS = [300, 600]
QUICK_UNIT_COUNTS = [100, 200]

CHILD = """
import time, tracemalloc
import numpy as np
import sim
from errsig import bin_trials, reward_coupling, tuning_drift
from errsig.analyze import AnalysisConfig

n_units, n_trials = {n_units}, {n_trials}
session = sim.simulate("mixed", rng=0, n_units=n_units, n_trials=n_trials)
ds = bin_trials(session, bin_size=0.02)
movement = bin_trials(
    session, align="move_onset_time", window=(0.0, 0.4), bin_size=0.4
)
for dataset in (ds, movement):
    dataset["counts"] = dataset["counts"].astype("int16")
del session
config = AnalysisConfig()
calls = {{
    "tuning_drift": lambda: tuning_drift(
        movement,
        window=config.drift_window,
        step=config.drift_step,
        method=config.drift_method,
        covariates=list(config.drift_covariates),
        rng=0,
    ),
    "reward_coupling": lambda: reward_coupling(
        drift, ds, null="pseudosession", n_perm=20, rng=1
    ),
}}
for name, call in calls.items():
    start = time.perf_counter()
    call()
    seconds = time.perf_counter() - start
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    result = call()
    kept, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    if name == "tuning_drift":
        drift = result
    print(
        f"{{n_units:>6}} {{name:<16}} {{seconds:8.1f}} s   peak "
        f"{{(peak - before) / 1e9:6.3f}} GB   result keeps "
        f"{{(kept - before) / 1e9:6.3f}} GB",
        flush=True,
    )
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="100 and 200 units × 1,000 trials"
    )
    arguments = parser.parse_args()
    unit_counts = QUICK_UNIT_COUNTS if arguments.quick else UNIT_COUNTS
    n_trials = 1000 if arguments.quick else 2000

    print(f"{'units':>6} {'call':<16} {'time':>10}   (× {n_trials:,} trials)")
    for n_units in unit_counts:
        code = CHILD.format(n_units=n_units, n_trials=n_trials)
        subprocess.run([sys.executable, "-c", code], check=True)


if __name__ == "__main__":
    main()
