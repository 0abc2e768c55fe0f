"""Benchmark: errsig's one-product GCMI permutation engine against frites.

200 units × 40 bins × 600 trials, a 2-D error and a binary reward, 1000
surrogates. frites' fastest vectorised path is ``mi_nd_gg`` (continuous) and
``mi_model_nd_gd`` (discrete) on copula-normalised inputs, called once per
surrogate on all unit × bin tests at once; it gets its inputs normalised for
free (untimed), while errsig's time includes every normalisation. frites is
timed on ``--frites-perms`` surrogates (default 20) and its time scaled
linearly to all of them (its cost is exactly linear in the surrogate count);
its values on those surrogates are compared with errsig's. errsig's time is
the best of two runs. Counts are ranked with the default tie rule of
`mutual_information` (average ranks).

Run: ``.venv/bin/python benchmarks/bench_information.py [--quick]``
"""

from __future__ import annotations

import argparse
import mmap
import time
import tracemalloc

import numpy as np
from frites.core import mi_model_nd_gd, mi_nd_gg

from errsig.information import _engine, copnorm


def simulate(rng, n_units, n_bins, n_trials, n_perm):
    error = rng.normal(0, 0.01, (n_trials, 2))
    reward = rng.random(n_trials) < 0.6
    gain = rng.normal(0, 0.3, (n_units, n_bins, 2))
    log_rate = 1.0 + np.einsum("nc,ubc->nub", error / 0.01, gain)
    counts = rng.poisson(np.exp(log_rate)).reshape(n_trials, -1)
    error_draws = np.concatenate(
        [
            error[None],
            np.stack([error[rng.permutation(n_trials)] for _ in range(n_perm)]),
        ]
    )
    reward_draws = np.concatenate(
        [reward[None], np.stack([rng.permutation(reward) for _ in range(n_perm)])]
    )
    return counts, error_draws, reward_draws.astype(int)


def errsig_run(counts, error_draws, reward_draws):
    neural, _ = _engine.unit_norm_columns(copnorm(counts))
    normalised = np.moveaxis(
        _engine.rank_normalise_rows(np.moveaxis(error_draws, -1, 1)), 1, -1
    )
    basis, _ = _engine.orthonormal_target_basis(normalised)
    error_mi = _engine.continuous_mi(neural, basis, n_given=0)
    reward_mi = _engine.discrete_mi(neural, reward_draws, n_classes=2)
    return error_mi, reward_mi


def frites_run(counts, error_draws, reward_draws, n_draws):
    x = np.ascontiguousarray(copnorm(counts).T[:, None, :])
    normalised = np.moveaxis(
        _engine.rank_normalise_rows(np.moveaxis(error_draws[:n_draws], -1, 1)), 1, -1
    )
    n_tests = x.shape[0]
    error_mi, reward_mi = [], []
    start, cpu_start = time.perf_counter(), time.process_time()
    for draw in range(n_draws):
        y = np.broadcast_to(normalised[draw].T, (n_tests, 2, x.shape[-1])).copy()
        error_mi.append(mi_nd_gg(x.copy(), y, shape_checking=False))
        reward_mi.append(mi_model_nd_gd(x, reward_draws[draw], shape_checking=False))
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    return np.array(error_mi), np.array(reward_mi), elapsed, cpu


def mapped_bytes(array):
    """Bytes of ``array`` held in an mmap rather than numpy's allocator."""
    base = array
    while isinstance(base, np.ndarray):
        base = base.base
    if isinstance(base, memoryview):
        base = base.obj
    return array.nbytes if isinstance(base, mmap.mmap) else 0


def matmul_rate(n_trials, n_tests, n_columns, clock):
    left = np.random.default_rng(0).normal(size=(n_trials, n_tests))
    right = np.random.default_rng(1).normal(size=(n_trials, n_columns))
    best = np.inf
    for _ in range(3):
        start = clock()
        left.T @ right
        best = min(best, clock() - start)
    return 2.0 * n_trials * n_tests * n_columns / best / 1e9


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small run")
    parser.add_argument("--frites-perms", type=int, default=20)
    args = parser.parse_args()
    n_units, n_bins, n_trials, n_perm = (
        (40, 10, 300, 100) if args.quick else (200, 40, 600, 1000)
    )
    n_tests, n_draws = n_units * n_bins, n_perm + 1
    rng = np.random.default_rng(0)
    counts, error_draws, reward_draws = simulate(rng, n_units, n_bins, n_trials, n_perm)
    print(
        f"{n_units} units × {n_bins} bins × {n_trials} trials, {n_perm} surrogates "
        "(+ observed), 2-D error and binary reward"
    )

    # the best of two runs after a small warm-up call, which compiles errsig's
    # numba kernel (cached on disk after the first run); frites' time is the
    # sum of 20 warm repetitions. tracemalloc slows allocation-heavy code, so
    # memory is traced in a separate, untimed call.
    errsig_run(counts[:, :10], error_draws[:3], reward_draws[:3])
    ours = ours_cpu = np.inf
    for _ in range(2):
        start, cpu_start = time.perf_counter(), time.process_time()
        error_mi, reward_mi = errsig_run(counts, error_draws, reward_draws)
        ours = min(ours, time.perf_counter() - start)
        ours_cpu = min(ours_cpu, time.process_time() - cpu_start)
    tracemalloc.start()
    traced_results = errsig_run(counts, error_draws, reward_draws)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # large results are mapped by the engine itself (on small pages), where
    # tracemalloc does not see them: add them
    peak += sum(mapped_bytes(result) for result in traced_results)

    n_frites = min(args.frites_perms, n_draws)
    frites_error, frites_reward, elapsed, cpu = frites_run(
        counts, error_draws, reward_draws, n_frites
    )
    theirs = elapsed * n_draws / n_frites
    theirs_cpu = cpu * n_draws / n_frites
    difference = max(
        np.abs(error_mi[:n_frites] - frites_error).max(),
        np.abs(reward_mi[:n_frites] - frites_reward).max(),
    )

    flops = 2.0 * n_trials * n_tests * n_draws * (2 + 2)  # error: d=2; reward: x, x²
    achieved = flops / ours / 1e9
    reference = matmul_rate(n_trials, n_tests, n_draws * 2, time.perf_counter)
    achieved_cpu = flops / ours_cpu / 1e9
    reference_cpu = matmul_rate(n_trials, n_tests, n_draws * 2, time.process_time)
    input_bytes = counts.nbytes + error_draws.nbytes + reward_draws.nbytes
    print(f"errsig: {ours:8.2f} s for all {n_draws} draws (both targets)")
    print(
        f"frites: {theirs:8.2f} s (measured {elapsed:.2f} s on {n_frites} draws, "
        "scaled linearly)"
    )
    print(f"speed-up (frites / errsig), wall time: {theirs / ours:8.1f}x")
    print(
        f"speed-up in CPU time (all threads; robust on a shared machine): "
        f"{theirs_cpu / ours_cpu:8.1f}x ({theirs_cpu:.1f} s vs {ours_cpu:.1f} s)"
    )
    print(f"max |errsig - frites| on the shared draws: {difference:.2e} bits")
    print(
        f"errsig rate: {achieved:.1f} GFLOP/s; plain matmul of the same size: "
        f"{reference:.1f} GFLOP/s; ratio {achieved / reference:.2f}"
    )
    print(
        f"per CPU second: errsig {achieved_cpu:.1f} GFLOP, plain matmul "
        f"{reference_cpu:.1f} GFLOP; ratio {achieved_cpu / reference_cpu:.2f}"
    )
    print(
        f"errsig peak memory (traced + mapped results): {peak / 2**20:.0f} MiB "
        f"(inputs {input_bytes / 2**20:.0f} MiB)"
    )


if __name__ == "__main__":
    main()
