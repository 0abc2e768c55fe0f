"""Benchmark: how errsig's cost grows, and what dask.distributed buys.

Five measurements, printed as tables (docs/scale.md quotes them):

1. Cost of the per-unit information test (``mutual_information(ds, "error")``,
   GCMI, pseudosession null, max-statistic correction) against the number of
   units (100 → 3,000), trials (200 → 2,000) and surrogates (100 → 10,000),
   each varied alone, with the exponent ``b`` of a fit ``time ∝ size^b``.
   Counts are Poisson (rate 2 per bin) on the behaviour of one simulated
   session, so the null model is fitted to real-looking learning curves.
2. Throughput of :func:`errsig.batch.analyze_many` (every analysis step) on a
   local cluster of 1 and of 2 single-threaded worker processes.
3. Peak resident memory of each worker process after those runs.
4. Peak memory of the per-unit information test on sessions of 2,000 trials ×
   50 bins with all counts in memory, each size in a fresh process, with a
   linear fit extrapolated to 3,000 units.
5. The same test on 3,000 units × 2,000 trials × 50 bins with the counts a
   dask array chunked over units (as :func:`errsig.batch.bin_trials_chunked`
   makes them), peak memory in a fresh process.

Times are the best of two runs after one warm-up call.

Run: ``.venv/bin/python benchmarks/bench_scale.py [--quick]``; ``--quick``
uses smaller sizes; the full run took 3.3 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import xarray as xr

import sim
from errsig.analyze import AnalysisConfig
from errsig.binning import bin_trials
from errsig.information import mutual_information

BASE = dict(n_units=100, n_trials=400, n_perm=100)
SWEEPS = {
    "n_units": [100, 300, 1000, 3000],
    "n_trials": [200, 500, 1000, 2000],
    "n_perm": [100, 1000, 10000],
}
QUICK_SWEEPS = {
    "n_units": [100, 300, 1000],
    "n_trials": [200, 500, 1000],
    "n_perm": [100, 1000, 3000],
}
N_BINS = 20
MEMORY_UNITS = [250, 500, 1000, 3000]
QUICK_MEMORY_UNITS = [100, 250]


def synthetic_dataset(behaviour, n_units, n_trials, n_bins, rng):
    """The behaviour of a simulated session with Poisson counts of many units."""
    ds = behaviour.isel(trial=slice(0, n_trials), time=slice(0, n_bins))
    counts = np.empty((n_trials, n_units, n_bins), dtype=np.int32)
    for first in range(0, n_units, 100):  # drawn in slices: no int64 copy of all
        size = min(100, n_units - first)
        counts[:, first : first + size] = rng.poisson(2.0, (n_trials, size, n_bins))
    ds = ds.drop_vars(["counts", "unit", "area"])
    return ds.assign(counts=(("trial", "unit", "time"), counts)).assign_coords(
        unit=np.arange(n_units), area=("unit", ["M1"] * n_units)
    )


def behaviour_dataset(n_trials, bin_size):
    session = sim.simulate("S0", rng=0, n_units=2, n_trials=n_trials)
    return bin_trials(session, window=(-0.2, 0.8), bin_size=bin_size)


def time_information(ds, n_perm, repeats=1):
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        mutual_information(ds, "error", n_perm=n_perm, rng=1)
        best = min(best, time.perf_counter() - start)
    return best


def cost_sweeps(sweeps):
    behaviour = behaviour_dataset(max(sweeps["n_trials"]), 0.05)
    rng = np.random.default_rng(0)
    warm_up = synthetic_dataset(behaviour, 50, 200, N_BINS, rng)
    time_information(warm_up, 20)
    rows = []
    for name, sizes in sweeps.items():
        times = []
        for size in sizes:
            sizes_now = {**BASE, name: size}
            ds = synthetic_dataset(
                behaviour, sizes_now["n_units"], sizes_now["n_trials"], N_BINS, rng
            )
            seconds = time_information(ds, sizes_now["n_perm"], repeats=2)
            times.append(seconds)
            print(f"  {name}={size}: {seconds:.2f} s", flush=True)
        exponent = np.polyfit(np.log(sizes), np.log(times), 1)[0]
        largest = np.log(times[-1] / times[-2]) / np.log(sizes[-1] / sizes[-2])
        rows.append((name, sizes, times, exponent, largest))
    return rows


def throughput(n_sessions, n_units, n_trials):
    from distributed import Client, LocalCluster

    from errsig.batch import analyze_many
    from errsig.io import write_nwb

    folder = Path(tempfile.mkdtemp(prefix="bench_scale_"))
    paths = []
    for seed in range(n_sessions):
        path = folder / f"session{seed}.nwb"
        write_nwb(
            sim.simulate("S1", rng=seed, n_units=n_units, n_trials=n_trials), path
        )
        paths.append(path)
    config = AnalysisConfig(n_perm=200, n_perm_decoding=20, n_perm_coupling=20)
    rows = []
    for n_workers in (1, 2):
        with (
            LocalCluster(
                n_workers=n_workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
            ) as cluster,
            Client(cluster) as client,
        ):
            client.wait_for_workers(n_workers)
            start = time.perf_counter()
            analyze_many(paths, client=client, config=config)
            seconds = time.perf_counter() - start
            peaks = client.run(_peak_rss_gb)
        rows.append((n_workers, seconds, n_sessions / seconds * 60, peaks))
        print(f"  {n_workers} worker(s): {seconds:.1f} s", flush=True)
    return rows


def _peak_rss_gb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6


MEMORY_CHILD = """
import resource, sys, numpy as np
sys.path.insert(0, {bench!r})
from bench_scale import behaviour_dataset, synthetic_dataset, time_information
behaviour = behaviour_dataset(2000, 0.02)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
ds = synthetic_dataset(behaviour, {n_units}, 2000, 50, np.random.default_rng(0))
seconds = time_information(ds, 100)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
print(before, peak, seconds)
"""


def memory_sweep(unit_counts):
    bench = str(Path(__file__).resolve().parent)
    rows = []
    for n_units in unit_counts:
        code = MEMORY_CHILD.format(bench=bench, n_units=n_units)
        output = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.split()
        before, peak, seconds = map(float, output[-3:])
        rows.append((n_units, before, peak, seconds))
        print(f"  {n_units} units: peak {peak:.2f} GB, {seconds:.1f} s", flush=True)
    units = np.array([row[0] for row in rows], dtype=float)
    peaks = np.array([row[2] for row in rows])
    slope, intercept = np.polyfit(units, peaks, 1)
    return rows, slope, intercept


CHUNKED_CHILD = """
import resource, sys, numpy as np, dask.array
sys.path.insert(0, {bench!r})
from bench_scale import behaviour_dataset, time_information
behaviour = behaviour_dataset(2000, 0.02)
generator = dask.array.random.default_rng(0)
counts = generator.poisson(2.0, size=(2000, {n_units}, 50), chunks=(2000, {chunk}, 50))
ds = behaviour.drop_vars(["counts", "unit", "area"]).assign(
    counts=(("trial", "unit", "time"), counts.astype(np.int32))
).assign_coords(unit=np.arange({n_units}), area=("unit", ["M1"] * {n_units}))
seconds = time_information(ds, 100)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
print(peak, seconds)
"""


def chunked_memory(n_units, chunk):
    bench = str(Path(__file__).resolve().parent)
    code = CHUNKED_CHILD.format(bench=bench, n_units=n_units, chunk=chunk)
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    return tuple(map(float, output[-2:]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes")
    args = parser.parse_args()
    xr.set_options(keep_attrs=True)

    print("1. per-unit information test: cost against each size", flush=True)
    rows = cost_sweeps(QUICK_SWEEPS if args.quick else SWEEPS)
    print(f"\nbase: {BASE}, {N_BINS} bins; one size varied at a time")
    print("exponent b of time ∝ size^b: fitted over all sizes; between the two largest")
    print(f"{'size':<10}{'values':<26}{'seconds':<28}{'b (all)':>8}{'b (top)':>9}")
    for name, sizes, times, exponent, largest in rows:
        values = ", ".join(str(size) for size in sizes)
        seconds = ", ".join(f"{t:.2f}" for t in times)
        print(f"{name:<10}{values:<26}{seconds:<28}{exponent:>8.2f}{largest:>9.2f}")

    print("\n2-3. analyze_many throughput and worker memory", flush=True)
    n_sessions = 4
    n_units, n_trials = (20, 300) if args.quick else (40, 400)
    rows = throughput(n_sessions, n_units, n_trials)
    print(
        f"\n{n_sessions} sessions of {n_units} units × {n_trials} trials, every "
        "step (n_perm 200, decoding and coupling 20)"
    )
    print(f"{'workers':<9}{'seconds':>9}{'sessions/min':>14}  peak RSS per worker")
    for n_workers, seconds, per_minute, peaks in rows:
        memory = ", ".join(f"{value:.2f} GB" for value in peaks.values())
        print(f"{n_workers:<9}{seconds:>9.1f}{per_minute:>14.2f}  {memory}")

    print("\n4. peak memory, 2,000 trials × 50 bins, per-unit information", flush=True)
    rows, slope, intercept = memory_sweep(
        QUICK_MEMORY_UNITS if args.quick else MEMORY_UNITS
    )
    print(f"{'units':<8}{'start GB':>10}{'peak GB':>10}{'seconds':>10}")
    for n_units, before, peak, seconds in rows:
        print(f"{n_units:<8}{before:>10.2f}{peak:>10.2f}{seconds:>10.1f}")
    print(
        f"linear fit: {intercept:.2f} GB + {1000 * slope:.2f} GB per 1,000 units; "
        f"3,000 units ≈ {intercept + 3000 * slope:.1f} GB"
    )

    n_units, chunk = (1000, 250) if args.quick else (3000, 250)
    print(
        f"\n5. {n_units} units × 2,000 trials × 50 bins, counts chunked by {chunk} "
        "units",
        flush=True,
    )
    peak, seconds = chunked_memory(n_units, chunk)
    print(f"peak {peak:.2f} GB, {seconds:.1f} s (100 surrogates)")


if __name__ == "__main__":
    main()
