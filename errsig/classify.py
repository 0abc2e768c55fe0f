"""The headline answer: what kind of signal each unit carries.

:func:`classify_units` combines conditional mutual-information tests in a
post-feedback window (where the arm is still and the error has just been shown)
with a test of directional tuning during the movement into one label per unit,
and summarises the labels per area with confidence intervals.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import xarray as xr
from scipy import stats as scipy_stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

from errsig._exceptions import ColumnError, ErrsigError, InsufficientDataError
from errsig._validation import check_positive_int, check_rng, loaded_counts
from errsig.information import mutual_information

__all__ = ["LABELS", "classify_units"]

logger = logging.getLogger(__name__)

#: Every label :func:`classify_units` gives, in the order figures show them.
LABELS = (
    "vector_error",
    "error_magnitude",
    "outcome",
    "mixed",
    "ambiguous",
    "kinematic",
    "none",
)


def classify_units(
    ds: xr.Dataset,
    *,
    window: tuple[float, float] = (0.05, 0.5),
    n_parts: int = 3,
    movement: xr.Dataset | None = None,
    null: str = "pseudosession",
    n_perm: int = 500,
    alpha: float = 0.05,
    confound_threshold: float = 0.7,
    rng: int | np.random.Generator | None = None,
) -> xr.Dataset:
    """Label each unit as a vector-error, magnitude, outcome or kinematic unit.

    Parameters
    ----------
    ds : xarray.Dataset
        Trial-aligned data from :func:`errsig.bin_trials`, aligned on feedback,
        with ``error`` and the trial coordinate ``reward``.
    window : tuple of float, default=(0.05, 0.5)
        Post-feedback window (seconds from the alignment event) of the
        information tests.
    n_parts : int, default=3
        The window is cut into this many consecutive sub-windows whose counts
        are summed; each unit's p-value is the smallest over the sub-windows,
        Bonferroni-corrected. Short responses at different latencies then keep
        their power without a test per bin.
    movement : xarray.Dataset, optional
        Data aligned on movement for the directional-tuning test; by default
        the bins of ``ds`` before the alignment event.
    null : str, default="pseudosession"
        Null of the information tests (see :func:`errsig.mutual_information`).
    n_perm : int, default=500
        Surrogates per information test.
    alpha : float, default=0.05
        False-discovery rate across units, for every test.
    confound_threshold : float, default=0.7
        When the absolute correlation between reward and error magnitude across
        trials exceeds this, the session cannot separate outcome from
        magnitude coding, and such units are labelled ``ambiguous``.
    rng : None, int or numpy.random.Generator, optional
        Randomness of the surrogates.

    Returns
    -------
    xarray.Dataset
        ``label`` (unit), one of :data:`LABELS`; the evidence ``p_direction``
        (information about the error vector beyond its magnitude),
        ``p_magnitude`` (about the error magnitude beyond the outcome),
        ``p_outcome`` (about the outcome), ``p_tuning`` (directional tuning
        during the movement), each FDR-adjusted across units, with the matching
        ``mi_*`` values in bits; per area ``area_fraction`` (area, label) with
        Wilson 95% intervals ``area_fraction_low``/``_high`` and
        ``area_count``. Attrs record the reward–magnitude correlation and every
        parameter.

    Notes
    -----
    The rules, applied in order, with every test FDR-controlled across units:

    1. information about the error vector given its magnitude → the unit sees
       the error's direction: ``vector_error``, or ``mixed`` if it also carries
       the outcome;
    2. information about the magnitude given the outcome → ``error_magnitude``;
    3. information about the outcome → ``outcome``;
    4. when 2 or 3 fire but reward and magnitude correlate beyond
       ``confound_threshold`` → ``ambiguous``;
    5. directional tuning during the movement (Kruskal–Wallis across targets)
       → ``kinematic``; otherwise ``none``.

    The post-feedback window keeps kinematic units from passing as error
    units, since the limb is still (Pitfall 1 of ``science.md``).

    Examples
    --------
    >>> import sim
    >>> from errsig import bin_trials, classify_units
    >>> session = sim.simulate("S1", rng=3, n_units=12, n_trials=240)
    >>> ds = bin_trials(session, window=(-0.3, 0.6), bin_size=0.05)
    >>> result = classify_units(ds, n_perm=100, rng=0)
    >>> sorted(set(result["label"].values) - set(LABELS))
    []
    """
    _check_inputs(ds, window, alpha, confound_threshold)
    n_perm = check_positive_int(n_perm, "n_perm")
    n_parts = check_positive_int(n_parts, "n_parts")
    generator = check_rng(rng)
    streams = generator.spawn(3)
    ds = loaded_counts(ds)
    if movement is not None:
        movement = loaded_counts(movement)

    summed = _window_sums(ds, window, n_parts)
    tests = {
        "direction": dict(target="error", given="error_magnitude"),
        "magnitude": dict(target="error_magnitude", given="reward"),
        "outcome": dict(target="reward"),
    }
    evidence = {}
    for (name, options), stream in zip(tests.items(), streams, strict=True):
        logger.info("classify_units: information about %s", name)
        result = mutual_information(
            summed, null=null, n_perm=n_perm, correction="none", rng=stream, **options
        )
        # Bonferroni over the sub-windows, then FDR across units.
        p_parts = result["p_uncorrected"].transpose("unit", "time").to_numpy()
        p_unit = np.minimum(np.nanmin(p_parts, axis=1) * p_parts.shape[1], 1.0)
        evidence[f"mi_{name}"] = result["mi"].max("time").to_numpy()
        evidence[f"p_{name}"] = _fdr(p_unit, alpha)

    if movement is None:
        movement = ds.isel(time=(ds["time"] < 0).to_numpy())
    tuning = _tuning_pvalues(movement)
    evidence["p_tuning"] = _fdr(tuning, alpha)
    confound = _reward_magnitude_correlation(ds)
    labels = _labels(evidence, alpha, abs(confound) > confound_threshold)

    result = xr.Dataset(
        {
            "label": ("unit", labels),
            **{name: ("unit", values) for name, values in evidence.items()},
        },
        coords={"unit": ds["unit"], "area_of_unit": ("unit", ds["area"].to_numpy())},
        attrs={
            "method": "classify_units",
            "window_start": float(window[0]),
            "window_stop": float(window[1]),
            "n_parts": n_parts,
            "null": null,
            "n_perm": n_perm,
            "alpha": float(alpha),
            "correction": "fdr_bh across units, per test",
            "reward_magnitude_correlation": float(confound),
            "confound_threshold": float(confound_threshold),
            "seed": str(rng) if isinstance(rng, int | None) else "Generator",
        },
    )
    return result.merge(_area_fractions(result))


def _check_inputs(
    ds: xr.Dataset, window: Sequence[float], alpha: float, confound_threshold: float
) -> None:
    missing = [
        name for name in ("counts", "error", "reward") if name not in ds.variables
    ]
    if missing:
        raise ColumnError(
            f"classify_units needs {missing} in the dataset; bin a session whose "
            "trials have error_x, error_y and reward (map them with "
            "read_nwb(columns=...))."
        )
    start, stop = window
    inside = (ds["time"] >= start) & (ds["time"] <= stop)
    if start >= stop or not bool(inside.any()):
        raise ErrsigError(
            f"`window`={tuple(window)} selects no time bin of the dataset, whose bins "
            f"run from {float(ds['time'].min()):g} to {float(ds['time'].max()):g} s."
        )
    if not 0 < alpha < 1:
        raise ErrsigError(f"`alpha` must lie between 0 and 1; got {alpha}.")
    if not 0 < confound_threshold <= 1:
        raise ErrsigError(
            f"`confound_threshold` must lie in (0, 1]; got {confound_threshold}."
        )
    if ds.sizes["trial"] < 30:
        raise InsufficientDataError(
            "classify_units needs at least 30 trials; the dataset has "
            f"{ds.sizes['trial']}."
        )


def _window_sums(ds: xr.Dataset, window: Sequence[float], n_parts: int) -> xr.Dataset:
    """Sum the counts of ``window`` in ``n_parts`` consecutive sub-windows."""
    inside = ((ds["time"] >= window[0]) & (ds["time"] <= window[1])).to_numpy()
    times = ds["time"].to_numpy()[inside]
    n_parts = min(n_parts, len(times))
    part = np.minimum((np.arange(len(times)) * n_parts) // len(times), n_parts - 1)
    centres = [float(times[part == k].mean()) for k in range(n_parts)]
    counts = ds["counts"].transpose("trial", "unit", "time")
    bins = np.flatnonzero(inside)
    # Summed sub-window by sub-window in int64, whatever the counts' type (int8
    # counts would overflow if summed in their own type).
    sums = np.stack(
        [
            counts.values[:, :, bins[part == k]].sum(axis=2, dtype=np.int64)
            for k in range(n_parts)
        ],
        axis=-1,
    )
    summed = xr.Dataset(
        {
            "counts": xr.DataArray(
                sums,
                dims=("trial", "unit", "time"),
                coords={
                    **{
                        name: coord
                        for name, coord in counts.coords.items()
                        if "time" not in coord.dims
                    },
                    "time": centres,
                },
            )
        }
    )
    for name in ds.data_vars:
        if name != "counts" and "time" not in ds[name].dims:
            summed[name] = ds[name]
    summed.attrs = dict(ds.attrs)
    return summed


def _tuning_pvalues(ds: xr.Dataset) -> np.ndarray:
    if "target_angle" not in ds.coords or ds.sizes["time"] == 0:
        return np.full(ds.sizes["unit"], np.nan)
    movement_counts = (
        ds["counts"]
        .transpose("trial", "unit", "time")
        .values.sum(axis=2, dtype=np.int64)
    )
    angle = np.round(np.mod(ds["target_angle"].to_numpy(), 2 * np.pi), 6)
    groups = [movement_counts[angle == value] for value in np.unique(angle)]
    groups = [group for group in groups if len(group) >= 2]
    if len(groups) < 2 or movement_counts.shape[1] == 0:
        return np.full(ds.sizes["unit"], np.nan)
    varying = movement_counts.std(axis=0) > 0
    pvalues = np.full(movement_counts.shape[1], np.nan)
    if varying.any():
        pvalues[varying] = scipy_stats.kruskal(
            *[g[:, varying] for g in groups], axis=0
        ).pvalue
    return pvalues


def _fdr(pvalues: np.ndarray, alpha: float) -> np.ndarray:
    adjusted = np.full_like(pvalues, np.nan, dtype=np.float64)
    finite = np.isfinite(pvalues)
    if finite.any():
        adjusted[finite] = multipletests(pvalues[finite], alpha=alpha, method="fdr_bh")[
            1
        ]
    return adjusted


def _reward_magnitude_correlation(ds: xr.Dataset) -> float:
    error = ds["error"].transpose("trial", "component").to_numpy()
    magnitude = np.hypot(error[:, 0], error[:, 1])
    reward = ds["reward"].to_numpy().astype(np.float64)
    usable = np.isfinite(magnitude) & np.isfinite(reward)
    if reward[usable].std() == 0 or magnitude[usable].std() == 0:
        return 0.0
    return float(scipy_stats.spearmanr(reward[usable], magnitude[usable]).statistic)


def _labels(evidence: dict, alpha: float, confounded: bool) -> np.ndarray:
    def significant(name: str) -> np.ndarray:
        values = evidence[name]
        return np.isfinite(values) & (values <= alpha)

    direction = significant("p_direction")
    magnitude = significant("p_magnitude")
    outcome = significant("p_outcome")
    tuned = significant("p_tuning")

    labels = np.full(len(direction), "none", dtype=object)
    labels[tuned] = "kinematic"
    labels[outcome] = "outcome"
    labels[magnitude] = "error_magnitude"
    if confounded:
        labels[magnitude | outcome] = "ambiguous"
    labels[direction] = "vector_error"
    labels[direction & outcome & ~magnitude] = "mixed"
    return labels.astype(str)


def _area_fractions(result: xr.Dataset) -> xr.Dataset:
    area_of_unit = result["area_of_unit"].to_numpy()
    areas = list(dict.fromkeys(area_of_unit.tolist()))
    labels = result["label"].to_numpy()
    counts = np.array(
        [
            [np.sum((area_of_unit == a) & (labels == label)) for label in LABELS]
            for a in areas
        ]
    )
    totals = counts.sum(axis=1, keepdims=True)
    low, high = proportion_confint(
        counts, np.maximum(totals, 1), alpha=0.05, method="wilson"
    )
    fraction = counts / np.maximum(totals, 1)
    # The Wilson bounds of 0 or n successes equal the share only up to rounding.
    low, high = np.minimum(low, fraction), np.maximum(high, fraction)
    dims = ("area", "label_name")
    coords = {"area": areas, "label_name": list(LABELS)}
    return xr.Dataset(
        {
            "area_count": (dims, counts),
            "area_fraction": (dims, fraction),
            "area_fraction_low": (dims, low),
            "area_fraction_high": (dims, high),
        },
        coords=coords,
    )
