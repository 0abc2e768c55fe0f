"""Benchmark errsig.decoding.decode against scikit-learn, side by side.

Problem (full size): 300 units × 800 trials × 40 time bins, the 2-D error as
target, 5 blocked folds, 13 ridge penalties, 200 permutations.

Reference 1: for each time bin, ``cross_val_predict`` of
``make_pipeline(StandardScaler(), RidgeCV(alphas))`` on the same folds; its R²
must equal errsig's to 1e-8. The two are timed in alternating chunks of 8 bins
so that load from other processes falls on both alike.

Reference 2: ``permutation_test_score`` of the same pipeline with 200
permutations. At full size it takes about half an hour per bin pair, so it is
run on ``--reference-bins`` bins (default 1) and scaled linearly to all bins;
the script says so in its output.

Usage::

    python benchmarks/bench_decoding.py           # full size
    python benchmarks/bench_decoding.py --quick   # small, a few seconds
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import xarray as xr
from sklearn.linear_model import RidgeCV
from sklearn.metrics import r2_score
from sklearn.model_selection import cross_val_predict, permutation_test_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from errsig.decoding import DEFAULT_PENALTIES, blocked_folds, decode


def make_dataset(rng, n_units, n_trials, n_bins):
    error = rng.normal(0.0, 0.01, size=(n_trials, 2))
    weights = rng.normal(size=(2, n_units)) * 30.0
    profile = np.exp(-0.5 * ((np.arange(n_bins) - n_bins / 2) / (n_bins / 6)) ** 2)
    log_rate = 0.5 + (error @ weights)[:, :, None] * profile
    counts = rng.poisson(np.exp(log_rate)).astype(np.int32)
    return xr.Dataset(
        {
            "counts": (("trial", "unit", "time"), counts),
            "error": (("trial", "component"), error),
        },
        coords={
            "area": ("unit", ["M1"] * n_units),
            "time": 0.02 * np.arange(n_bins),
            "component": ["x", "y"],
            "trial_index": ("trial", np.arange(n_trials)),
        },
    )


def pipeline():
    return make_pipeline(StandardScaler(), RidgeCV(alphas=DEFAULT_PENALTIES))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small problem")
    parser.add_argument("--reference-bins", type=int, default=1)
    args = parser.parse_args()
    if args.quick:
        n_units, n_trials, n_bins, n_perm = 60, 200, 8, 20
    else:
        n_units, n_trials, n_bins, n_perm = 300, 800, 40, 200
    rng = np.random.default_rng(0)
    ds = make_dataset(rng, n_units, n_trials, n_bins)
    folds = blocked_folds(np.arange(n_trials), 5)
    error = ds["error"].values
    counts = ds["counts"].values.astype(np.float64)
    print(
        f"{n_units} units × {n_trials} trials × {n_bins} bins, 5 blocked folds, "
        f"{len(DEFAULT_PENALTIES)} penalties, {n_perm} permutations"
    )

    # Interleave the two in chunks of bins, so that load from other processes
    # on a shared machine falls on both alike.
    ours_plain = reference_plain = 0.0
    ours_r2, reference_r2 = [], []
    for chunk in np.array_split(np.arange(n_bins), max(1, n_bins // 8)):
        start = time.perf_counter()
        ours = decode(ds.isel(time=chunk), "error", n_perm=0)
        ours_plain += time.perf_counter() - start
        ours_r2.extend(ours["score"].values.ravel())

        start = time.perf_counter()
        for time_bin in chunk:
            predicted = cross_val_predict(
                pipeline(), counts[:, :, time_bin], error, cv=folds
            )
            reference_r2.append(
                r2_score(error, predicted, multioutput="variance_weighted")
            )
        reference_plain += time.perf_counter() - start
    difference = np.max(np.abs(np.subtract(ours_r2, reference_r2)))
    print(f"max |R² errsig − R² scikit-learn| over bins: {difference:.2e}")
    print(
        f"no permutations:  errsig {ours_plain:8.2f} s   RidgeCV + cross_val_predict "
        f"loop {reference_plain:8.2f} s   ratio {reference_plain / ours_plain:6.1f}×",
        flush=True,
    )

    start = time.perf_counter()
    decode(ds, "error", n_perm=n_perm, null="shuffle", rng=1)
    ours_perm = time.perf_counter() - start
    print(f"errsig, {n_perm} permutations: {ours_perm:.2f} s", flush=True)

    reference_bins = min(args.reference_bins, n_bins)
    start = time.perf_counter()
    for time_bin in range(reference_bins):
        permutation_test_score(
            pipeline(),
            counts[:, :, time_bin],
            error,
            cv=folds,
            n_permutations=n_perm,
            random_state=time_bin,
        )
    reference_perm = (time.perf_counter() - start) * n_bins / reference_bins
    scaled = ""
    if reference_bins < n_bins:
        scaled = f" (run on {reference_bins} bin(s), scaled to {n_bins})"
    print(
        f"{n_perm} permutations: errsig {ours_perm:8.2f} s   permutation_test_score "
        f"{reference_perm:8.1f} s{scaled}   ratio {reference_perm / ours_perm:6.1f}×"
    )


if __name__ == "__main__":
    main()
