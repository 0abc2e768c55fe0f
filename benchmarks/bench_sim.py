"""Benchmark: simulate a large session and write it to NWB.

500 units × 600 trials (about 2 s each, 20 minutes of recording) of the
``mixed`` scenario, then ``errsig.io.write_nwb``. Prints wall time, CPU time and
peak resident memory of each step against the targets (under a minute and under
2 GB in all), and the time of the small sessions the calibration tests use.

Run: ``.venv/bin/python benchmarks/bench_sim.py``
"""

import resource
import tempfile
import time
from pathlib import Path

import sim
from errsig.io import write_nwb

TARGET_SECONDS = 60.0
TARGET_MEGABYTES = 2048.0


def peak_megabytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(step):
    wall, cpu = time.perf_counter(), time.process_time()
    result = step()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def main():
    sim.simulate("S0", rng=0, n_units=5, n_trials=8)  # imports, compiled code

    small_runs = [
        timed(lambda seed=seed: sim.simulate("S0", rng=seed, n_units=20, n_trials=200))
        for seed in range(20)
    ]
    small_wall = sorted(run[1] for run in small_runs)[len(small_runs) // 2]
    small_cpu = sorted(run[2] for run in small_runs)[len(small_runs) // 2]
    print(
        f"small S0 session (20 units x 200 trials): median {small_wall:.3f} s wall, "
        f"{small_cpu:.3f} s CPU"
    )

    session, sim_wall, sim_cpu = timed(
        lambda: sim.simulate("mixed", rng=0, n_units=500, n_trials=600)
    )
    print(
        f"simulate {session}: {sim_wall:.1f} s wall, {sim_cpu:.1f} s CPU, "
        f"peak {peak_megabytes():.0f} MB"
    )

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.nwb"
        _, write_wall, write_cpu = timed(lambda: write_nwb(session, path))
        size = path.stat().st_size / 1e6
    print(
        f"write_nwb ({size:.0f} MB file): {write_wall:.1f} s wall, "
        f"{write_cpu:.1f} s CPU"
    )

    total = sim_wall + write_wall
    peak = peak_megabytes()
    print(
        f"total {total:.1f} s (target {TARGET_SECONDS:.0f} s, ratio "
        f"{total / TARGET_SECONDS:.2f}); peak memory {peak:.0f} MB (target "
        f"{TARGET_MEGABYTES:.0f} MB, ratio {peak / TARGET_MEGABYTES:.2f})"
    )


if __name__ == "__main__":
    main()
