"""Batched IRLS of tuning_drift against a loop of statsmodels Poisson GLM fits.

Fits cosine tuning, log λ = b0 + b1 cos θ + b2 sin θ, to every unit × window of
trials (windows of 40, step 5) of a synthetic session, once with errsig's batched
IRLS (the code behind ``tuning_drift(method="glm")``) and once with one
``statsmodels.GLM(...).fit()`` per unit × window, in the same process, and prints
the wall-clock ratio and the largest differences in coefficients and standard
errors over the fits both call converged.

Usage::

    .venv/bin/python benchmarks/bench_tuning.py           # 500 units × 1,000 trials
    .venv/bin/python benchmarks/bench_tuning.py --quick   # 50 units × 300 trials
"""

import argparse
import time
import warnings

import numpy as np
import statsmodels.api as sm

from errsig.tuning._irls import fit_poisson_glm

WINDOW = 40
STEP = 5

#: statsmodels' convergence tolerance: tight enough that its coefficients and
#: standard errors are themselves accurate to better than 1e-6 (at its default,
#: 1e-8, its standard errors can be off by 1e-4 because they are computed at the
#: weights of the previous iteration).
STATSMODELS_TOL = 1e-12

#: Fits timed with statsmodels unless --full-loop (the full loop of 96,500 fits
#: takes tens of minutes on a shared 2-core machine).
SAMPLE_FITS = 3000


def synthetic_session(n_units: int, n_trials: int, rng: np.random.Generator):
    """Counts of cosine-tuned units whose preferred directions random-walk."""
    angle = rng.choice(np.arange(8) * np.pi / 4, n_trials)
    baseline = np.log(rng.uniform(2, 20, n_units))
    depth = rng.uniform(0.2, 1.0, n_units)
    walk = np.cumsum(rng.normal(0, np.radians(1.0), (n_units, n_trials)), axis=1)
    preferred = rng.uniform(-np.pi, np.pi, n_units)[:, None] + walk
    rate = np.exp(baseline[:, None] + depth[:, None] * np.cos(angle - preferred))
    counts = rng.poisson(rate * 0.3).astype(np.float64)
    design = np.c_[np.ones(n_trials), np.cos(angle), np.sin(angle)]
    return design, counts


def batched(design, counts, trial_of):
    return fit_poisson_glm(design[trial_of], counts[:, trial_of].transpose(1, 0, 2))


def looped(design, counts, trial_of, picks):
    """One statsmodels fit per (window, unit) pair in ``picks``."""
    coef = np.full((len(picks), 3), np.nan)
    se = np.full((len(picks), 3), np.nan)
    converged = np.zeros(len(picks), dtype=bool)
    family = sm.families.Poisson()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for index, (window, unit) in enumerate(picks):
            trials = trial_of[window]
            try:
                model = sm.GLM(counts[unit, trials], design[trials], family=family)
                result = model.fit(tol=STATSMODELS_TOL)
            except (ValueError, np.linalg.LinAlgError):
                continue
            coef[index] = result.params
            se[index] = result.bse
            converged[index] = result.converged
    return coef, se, converged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="50 units × 300 trials")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--full-loop", action="store_true", help="time statsmodels on every fit"
    )
    arguments = parser.parse_args()
    n_units, n_trials = (50, 300) if arguments.quick else (500, 1000)

    rng = np.random.default_rng(arguments.seed)
    design, counts = synthetic_session(n_units, n_trials, rng)
    starts = np.arange(0, n_trials - WINDOW + 1, STEP)
    trial_of = starts[:, None] + np.arange(WINDOW)
    n_fits = len(starts) * n_units
    print(f"{n_units} units × {n_trials} trials: {len(starts)} windows, {n_fits} fits")

    batched(design[:WINDOW], counts[:, :WINDOW], trial_of[:1])  # warm-up
    start = time.perf_counter()
    fit = batched(design, counts, trial_of)
    batched_seconds = time.perf_counter() - start

    all_pairs = np.argwhere(np.ones((len(starts), n_units), dtype=bool))
    if arguments.quick or arguments.full_loop:
        picks = all_pairs
    else:
        picks = all_pairs[rng.choice(len(all_pairs), SAMPLE_FITS, replace=False)]
    start = time.perf_counter()
    coef, se, converged = looped(design, counts, trial_of, picks)
    looped_seconds = (time.perf_counter() - start) * n_fits / len(picks)

    ours = fit.converged[picks[:, 0], picks[:, 1]]
    both = ours & converged
    ours_coef = fit.coef[picks[:, 0], picks[:, 1]]
    ours_se = np.sqrt(np.diagonal(fit.cov, axis1=-2, axis2=-1))[
        picks[:, 0], picks[:, 1]
    ]
    coef_gap = np.abs(ours_coef[both] - coef[both]).max()
    se_gap = np.abs(ours_se[both] - se[both]).max()
    scaled = "" if len(picks) == n_fits else f", {len(picks)} fits timed, scaled"
    print(f"errsig batched IRLS : {batched_seconds:8.2f} s")
    print(
        f"statsmodels loop    : {looped_seconds:8.2f} s (tol={STATSMODELS_TOL:g}"
        f"{scaled})"
    )
    print(f"speed-up            : {looped_seconds / batched_seconds:8.1f}x")
    print(
        f"converged           : errsig {fit.converged.sum()}/{n_fits}; compared "
        f"{both.sum()} of {len(picks)} fits both call converged"
    )
    print(f"max |Δ coefficient| : {coef_gap:.2e}")
    print(f"max |Δ std. error|  : {se_gap:.2e}")
    print("agreement to 1e-6   :", "yes" if max(coef_gap, se_gap) < 1e-6 else "NO")


if __name__ == "__main__":
    main()
