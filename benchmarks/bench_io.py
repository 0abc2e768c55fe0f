"""Benchmark: read an NWB file and count spikes in trial bins, three ways.

(a) errsig: ``read_nwb`` (flat read) + ``bin_trials``;
(b) plain pynwb: spike times unit by unit (``units["spike_times"][i]``) and one
    ``numpy.histogram`` per unit and trial, on that trial's spikes only;
(c) pynapple: the same spikes in a ``TsGroup`` and ``TsGroup.trial_count``.

All three run in this one process on the same file written by ``write_nwb``.
Prints times, ratios, whether the counts are identical and the peak memory of
(a) against the size of the spike data. Targets: (a) at least 2x faster than
(c) and 5x faster than (b); peak memory under 3x the spike data.

Usage: python benchmarks/bench_io.py [--quick] [--repeat N]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import pynapple as nap
from pynwb import NWBHDF5IO

from errsig import Session, bin_trials
from errsig.io import read_nwb, write_nwb

BIN_SIZE = 0.02
N_BINS = 50
TRIAL_SPACING = 1.2  # seconds from one trial start to the next


def make_session(n_units, spikes_per_unit, n_trials, rng):
    """Poisson spikes over a session of one-second trials, 0.2 s apart."""
    duration = TRIAL_SPACING * n_trials
    gaps = rng.exponential(duration / spikes_per_unit, (n_units, spikes_per_unit))
    trains = np.cumsum(gaps, axis=1)
    trains *= duration / trains[:, -1:] * (1 - 1e-9)
    starts = TRIAL_SPACING * np.arange(n_trials, dtype=np.float64)
    trials = pd.DataFrame({"start_time": starts, "stop_time": starts + 1.0})
    units = pd.DataFrame({"area": rng.choice(["M1", "PMd"], n_units)})
    return Session(
        spike_times=trains.ravel(),
        spike_index=np.arange(1, n_units + 1) * spikes_per_unit,
        units=units,
        trials=trials,
    )


def errsig_counts(path):
    session = read_nwb(path)
    dataset = bin_trials(
        session, align="start_time", window=(0.0, N_BINS * BIN_SIZE), bin_size=BIN_SIZE
    )
    return dataset["counts"].to_numpy().transpose(1, 0, 2)  # unit, trial, bin


def errsig_edges(starts):
    relative = 0.0 + BIN_SIZE * np.arange(N_BINS + 1)
    relative[-1] = N_BINS * BIN_SIZE
    return starts[:, None] + relative[None, :]


def pynwb_counts(path):
    with NWBHDF5IO(path, "r") as io:
        nwbfile = io.read()
        starts = nwbfile.trials["start_time"][:]
        column = nwbfile.units["spike_times"]
        trains = [column[i] for i in range(len(nwbfile.units))]
    edges = errsig_edges(starts)
    counts = np.empty((len(trains), len(starts), N_BINS), dtype=np.int64)
    for unit, train in enumerate(trains):
        # Give np.histogram only the trial's spikes (it sorts what it is given);
        # the window is closed on the right, as np.histogram's last bin is.
        first = np.searchsorted(train, edges[:, 0], side="left")
        last = np.searchsorted(train, edges[:, -1], side="right")
        for trial, trial_edges in enumerate(edges):
            window = train[first[trial] : last[trial]]
            counts[unit, trial] = np.histogram(window, bins=trial_edges)[0]
    return counts


def pynapple_counts(path):
    with NWBHDF5IO(path, "r") as io:
        nwbfile = io.read()
        starts = nwbfile.trials["start_time"][:]
        column = nwbfile.units["spike_times"]
        flat = column.target.data[:]
        ends = column.data[:].astype(np.int64)
    trains = np.split(flat, ends[:-1])
    group = nap.TsGroup({unit: nap.Ts(t=train) for unit, train in enumerate(trains)})
    trials = nap.IntervalSet(start=starts, end=starts + N_BINS * BIN_SIZE)
    return group.trial_count(trials, bin_size=BIN_SIZE)


def timed(function, path, repeat):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = function(path)
        times.append(time.perf_counter() - start)
    return float(np.median(times)), result


def peak_memory(function, path):
    tracemalloc.start()
    function(path)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small session")
    parser.add_argument("--repeat", type=int, default=1, help="runs per method")
    args = parser.parse_args()
    if args.quick:
        n_units, spikes_per_unit, n_trials = 100, 2_000, 100
    else:
        n_units, spikes_per_unit, n_trials = 1_000, 20_000, 1_000

    rng = np.random.default_rng(0)
    session = make_session(n_units, spikes_per_unit, n_trials, rng)
    spike_bytes = session.spike_times.nbytes
    folder = Path(tempfile.mkdtemp())
    path = folder / "bench.nwb"
    start = time.perf_counter()
    write_nwb(session, path)
    write_seconds = time.perf_counter() - start
    print(
        f"session: {n_units} units x {spikes_per_unit} spikes "
        f"({spike_bytes / 2**20:.0f} MiB of spike times), {n_trials} trials x "
        f"{N_BINS} bins; write_nwb {write_seconds:.2f} s, file "
        f"{path.stat().st_size / 2**20:.0f} MiB"
    )
    del session

    read_only, _ = timed(read_nwb, path, args.repeat)
    seconds_a, counts_a = timed(errsig_counts, path, args.repeat)
    seconds_b, counts_b = timed(pynwb_counts, path, args.repeat)
    seconds_c, counts_c = timed(pynapple_counts, path, args.repeat)

    print(f"(a) errsig read_nwb + bin_trials : {seconds_a:8.2f} s")
    print(f"    of which read_nwb            : {read_only:8.2f} s")
    print(f"    of which bin_trials          : {seconds_a - read_only:8.2f} s")
    print(f"(b) pynwb per unit + np.histogram: {seconds_b:8.2f} s")
    print(f"(c) pynapple TsGroup.trial_count : {seconds_c:8.2f} s")
    print(f"ratio (b)/(a): {seconds_b / seconds_a:6.1f}x   (target >= 5x)")
    print(f"ratio (c)/(a): {seconds_c / seconds_a:6.1f}x   (target >= 2x)")
    print(f"counts (a) == (b): {np.array_equal(counts_a, counts_b)}")
    same_c = np.array_equal(counts_a, counts_c)
    print(f"counts (a) == (c): {same_c}", end="")
    if not same_c:
        differing = np.count_nonzero(counts_a != counts_c)
        print(f" ({differing} of {counts_a.size} bins differ)", end="")
    print()

    del counts_a, counts_b, counts_c
    peak = peak_memory(errsig_counts, path)
    print(
        f"peak memory of (a): {peak / 2**20:.0f} MiB = {peak / spike_bytes:.2f}x the "
        "spike data (target < 3x)"
    )
    path.unlink()
    folder.rmdir()


if __name__ == "__main__":
    main()
