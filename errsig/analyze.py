"""Run every analysis on one session and keep the results in one file.

:func:`analyze_session` bins the session, measures information, decodes, tracks
tuning drift, tests its coupling to reward and error, classifies the units, and
returns everything as one ``xarray.DataTree``; :func:`write_results` saves it
atomically as NetCDF or Zarr. ``errsig analyze`` is the command-line face of
both. Defaults are documented in :class:`AnalysisConfig` and in
``docs/guide.md``; any of them can be overridden by a TOML file or a flag.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import tempfile
import tomllib
from importlib import metadata
from pathlib import Path

import numpy as np
import xarray as xr

from errsig import behavior
from errsig._exceptions import ColumnError, ErrsigError
from errsig._validation import check_rng, give_default_permissions
from errsig.binning import bin_trials
from errsig.session import Session
from errsig.summary import example_rasters, summarize_behavior, summarize_psth

__all__ = [
    "AnalysisConfig",
    "analyze_session",
    "load_config",
    "read_results",
    "write_results",
]

logger = logging.getLogger(__name__)

#: The analysis steps, in the order they run.
STEPS = ("information", "decoding", "tuning", "classification")

#: Trial columns each step needs; checked before anything is computed.
STEP_COLUMNS = {
    "information": ("error_x", "error_y", "reward", "phase", "target_angle"),
    "decoding": ("error_x", "error_y", "reward", "phase", "target_angle"),
    "tuning": ("target_angle", "reward", "error_x", "error_y", "phase"),
    "classification": ("error_x", "error_y", "reward", "phase", "target_angle"),
}


@dataclasses.dataclass(frozen=True)
class AnalysisConfig:
    """Settings of ``errsig analyze``; every field can be set from TOML or flags.

    Parameters
    ----------
    align : str, default="feedback_time"
        Event the error and outcome analyses are aligned to.
    window : tuple of float, default=(-0.2, 0.8)
        Window around ``align``, seconds.
    bin_size : float, default=0.05
        Bin width, seconds.
    movement_align : str, default="move_onset_time"
        Event the tuning analyses are aligned to.
    movement_window : tuple of float, default=(0.0, 0.4)
        Window around ``movement_align`` whose counts tuning is fitted to.
    null : str, default="pseudosession"
        Null distribution of every test (see ``docs/statistics.md``).
    n_perm : int, default=500
        Surrogates for the information tests and the classification.
    n_perm_decoding : int, default=100
        Surrogates for the decoding tests.
    n_perm_coupling : int, default=100
        Surrogates for the reward-coupling tests.
    n_boot_onset : int, default=100
        Trial bootstraps of the onset latency of each area's population
        information (0 skips the interval).
    correction : str, default="maxstat"
        Multiple-comparison correction over units/areas and time.
    alpha : float, default=0.05
        Significance level (family-wise, or false-discovery rate for FDR).
    drift_method : {"filter", "glm"}, default="filter"
        How tuning is tracked (``errsig.tuning_drift``): trial by trial by the
        adaptive filter and smoother, or by a GLM per window of trials.
    drift_window : int, default=40
        Trials per tuning window (``"glm"``), or of the filter's starting
        estimate (``"filter"``).
    drift_step : int, default=5
        Trials between tuning windows (``"glm"``).
    drift_covariates : tuple of str, default=("force_x", "force_y")
        Covariates of the tuning fits, so that force units whose apparent
        direction tuning changes with the load are not called drifting. Those
        the data lack (no hand force recorded) are left out, with a logged
        warning.
    classify_window : tuple of float, default=(0.05, 0.5)
        Post-feedback window of the unit classification, seconds.
    steps : tuple of str, default=STEPS
        Which analyses to run.
    seed : int or None, default=0
        Seed of every random draw; the same seed gives the same numbers.
    """

    align: str = "feedback_time"
    window: tuple[float, float] = (-0.2, 0.8)
    bin_size: float = 0.05
    movement_align: str = "move_onset_time"
    movement_window: tuple[float, float] = (0.0, 0.4)
    null: str = "pseudosession"
    n_perm: int = 500
    n_perm_decoding: int = 100
    n_perm_coupling: int = 100
    n_boot_onset: int = 100
    correction: str = "maxstat"
    alpha: float = 0.05
    drift_method: str = "filter"
    drift_window: int = 40
    drift_step: int = 5
    drift_covariates: tuple[str, ...] = ("force_x", "force_y")
    classify_window: tuple[float, float] = (0.05, 0.5)
    steps: tuple[str, ...] = STEPS
    seed: int | None = 0

    def replace(self, **changes: object) -> AnalysisConfig:
        """Return a copy with some fields changed, checking their names.

        Parameters
        ----------
        **changes
            Field names and new values; None values are ignored.

        Returns
        -------
        AnalysisConfig

        Examples
        --------
        >>> from errsig.analyze import AnalysisConfig
        >>> AnalysisConfig().replace(n_perm=100).n_perm
        100
        """
        known = {field.name for field in dataclasses.fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ErrsigError(
                f"unknown analysis setting(s) {unknown}; the settings are "
                f"{sorted(known)}."
            )
        values = {k: _as_field_type(k, v) for k, v in changes.items() if v is not None}
        unknown_steps = sorted(set(values.get("steps", ())) - set(STEPS))
        if unknown_steps:
            raise ErrsigError(f"unknown step(s) {unknown_steps}; choose from {STEPS}.")
        if values.get("drift_method", "filter") not in ("filter", "glm"):
            raise ErrsigError(
                "`drift_method` must be 'filter' or 'glm'; got "
                f"{values['drift_method']!r}."
            )
        return dataclasses.replace(self, **values)


def load_config(path: str | os.PathLike) -> AnalysisConfig:
    r"""Read analysis settings from a TOML file.

    The file holds the fields of :class:`AnalysisConfig`, at top level or
    under an ``[analyze]`` table.

    Parameters
    ----------
    path : path
        The TOML file.

    Returns
    -------
    AnalysisConfig

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from errsig.analyze import load_config
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "settings.toml").write_text("[analyze]\nn_perm = 200\n")
    >>> load_config(folder / "settings.toml").n_perm
    200
    """
    path = Path(path)
    try:
        settings = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ErrsigError(f"settings file {path} does not exist.") from None
    except tomllib.TOMLDecodeError as error:
        raise ErrsigError(f"settings file {path} is not valid TOML: {error}") from None
    return AnalysisConfig().replace(**settings.get("analyze", settings))


def analyze_session(
    session: Session,
    config: AnalysisConfig | None = None,
    *,
    progress: bool = False,
) -> xr.DataTree:
    """Run every analysis of ``config.steps`` on a session.

    Parameters
    ----------
    session : Session
        The recording.
    config : AnalysisConfig, optional
        Settings; the documented defaults when omitted.
    progress : bool, default=False
        Show progress bars of the long steps.

    Returns
    -------
    xarray.DataTree
        Groups ``behavior``, ``psth``, ``rasters``, ``information/*``,
        ``decoding/*``, ``tuning/drift``, ``tuning/coupling`` and
        ``classification`` (those of the steps run); the root's attrs hold the
        settings, the seed, package versions and a methods paragraph.

    Raises
    ------
    ColumnError
        Before anything is computed, when the trials lack a column a step needs.

    Examples
    --------
    >>> import sim
    >>> from errsig.analyze import AnalysisConfig, analyze_session
    >>> session = sim.simulate("S1", rng=2, n_units=6, n_trials=160)
    >>> config = AnalysisConfig(steps=("information",), n_perm=50)
    >>> tree = analyze_session(session, config)
    >>> sorted(tree["information"].children)
    ['area_error', 'error', 'error_magnitude', 'reward']
    """
    config = config or AnalysisConfig()
    _check_columns(session, config)
    streams = dict(
        zip((*STEPS, "behavior"), check_rng(config.seed).spawn(5), strict=True)
    )

    logger.info(
        "binning %d units x %d trials around %s",
        session.n_units,
        session.n_trials,
        config.align,
    )
    # Counts in the smallest integer type that holds them (int8 for 20-ms bins
    # of single units): every analysis converts them a chunk at a time.
    ds = bin_trials(
        session,
        align=config.align,
        window=config.window,
        bin_size=config.bin_size,
        dtype="smallest",
    )
    groups: dict[str, xr.Dataset] = {}
    groups.update(_behavior_groups(session, ds, streams["behavior"]))

    if "information" in config.steps:
        groups.update(_information(ds, config, streams["information"], progress))
    if "decoding" in config.steps:
        groups.update(_decoding(ds, config, streams["decoding"], progress))
    if {"tuning", "classification"} & set(config.steps):
        movement = _movement_dataset(session, ds, config)
    # Classification runs before tuning: its surrogates are then not held
    # beside the filter's per-trial results (about 200 bytes per unit and
    # trial). Each step has its own random stream, so the order changes nothing.
    if "classification" in config.steps:
        from errsig.classify import classify_units

        logger.info("classifying units")
        groups["classification"] = classify_units(
            ds,
            movement=movement,
            window=config.classify_window,
            null=config.null,
            n_perm=config.n_perm,
            alpha=config.alpha,
            rng=streams["classification"],
        )
    if "tuning" in config.steps:
        groups.update(_tuning(movement, ds, config, streams["tuning"]))

    tree = xr.DataTree.from_dict(
        {name: _netcdf_safe(group) for name, group in groups.items()}
    )
    tree.attrs.update(
        {
            "source": str(session.meta.get("source_file", "")),
            "session_id": str(session.meta.get("session_id", "")),
            "settings": json.dumps(dataclasses.asdict(config)),
            "seed": "None" if config.seed is None else int(config.seed),
            "versions": json.dumps(_versions()),
            "methods": methods_paragraph(config, session),
        }
    )
    return tree


def write_results(tree: xr.DataTree, path: str | os.PathLike) -> Path:
    """Save a results tree atomically as NetCDF (``.nc``) or Zarr (``.zarr``).

    The tree is written to a temporary name beside ``path`` and moved into
    place, so an interrupted run leaves no partial results file.

    Parameters
    ----------
    tree : xarray.DataTree
        From :func:`analyze_session`.
    path : path
        Destination; a name ending in ``.zarr`` is written as Zarr, anything
        else as NetCDF-4.

    Returns
    -------
    pathlib.Path
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    as_zarr = path.suffix == ".zarr"
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(handle)
    temporary = Path(temporary)
    try:
        if as_zarr:
            temporary.unlink()
            tree.to_zarr(temporary)
            if path.exists():
                shutil.rmtree(path)
            temporary.rename(path)
        else:
            tree.to_netcdf(temporary, engine="h5netcdf")
            give_default_permissions(temporary)
            os.replace(temporary, path)
    except BaseException:
        if temporary.is_dir():
            shutil.rmtree(temporary, ignore_errors=True)
        else:
            temporary.unlink(missing_ok=True)
        raise
    logger.info("results written to %s", path)
    return path


def methods_paragraph(config: AnalysisConfig, session: Session) -> str:
    """Describe what was done, with numbers, ready to paste into a paper.

    Parameters
    ----------
    config : AnalysisConfig
        The settings used.
    session : Session
        The recording (for its size).

    Returns
    -------
    str
    """
    versions = _versions()
    null = {
        "pseudosession": (
            "pseudosessions: error and reward sequences redrawn from a two-rate "
            "state-space model of adaptation (Smith et al. 2006) fitted by maximum "
            "likelihood to the observed lateral errors, with reward drawn from a "
            "logistic model of the error magnitude, so that the slow trends of "
            "learning are kept in the null (Harris 2020)"
        ),
        "shuffle": "trial shuffles (which ignore trial order and are anti-conservative "
        "on learning data)",
    }.get(config.null, config.null)
    text = [
        f"Spikes of {session.n_units} units over {session.n_trials} trials were "
        f"counted in {1000 * config.bin_size:g}-ms bins from {config.window[0]:g} to "
        f"{config.window[1]:g} s around {config.align.replace('_', ' ')}.",
    ]
    if "information" in config.steps:
        text.append(
            "Mutual information between each unit's counts and the shown error "
            "(a 2-D vector), its magnitude and the outcome was estimated with the "
            "Gaussian-copula estimator (Ince et al. 2017), per unit and per time "
            "bin and, pooled per area, on the area's principal components; "
            f"significance was assessed against {config.n_perm} {null}, with "
            f"{config.correction} correction across units and time at "
            f"α = {config.alpha:g}."
        )
        if config.n_boot_onset:
            text.append(
                "The onset latency of each area's information was the first "
                "significant bin, with a 95% interval from "
                f"{config.n_boot_onset} trial bootstraps, each tested against 200 "
                "resampled surrogates."
            )
        recorded = set(session.behavior)
        covariates = [
            label
            for keys, label in (
                ({"hand_velocity", "hand_position"}, "hand velocity"),
                ({"hand_force"}, "force"),
            )
            if keys & recorded
        ]
        if covariates:
            text.append(
                "Information about the error was conditioned on the "
                f"{' and '.join(covariates)} in each bin, so that movement-tuned "
                "units do not pass as error units."
            )
    if "decoding" in config.steps:
        text.append(
            "The error was decoded from each area's population by ridge regression "
            "and the outcome by L2 logistic regression, one decoder per time bin, "
            "with five contiguous blocks of trials as cross-validation folds and the "
            "penalty chosen by leave-one-out inside each training fold; scores were "
            f"tested against {config.n_perm_decoding} surrogates."
        )
    if "tuning" in config.steps:
        if config.drift_method == "filter":
            how = (
                "tracked per unit and trial by a point-process adaptive filter with "
                "a fixed-interval smoother (Eden et al. 2004)"
            )
        else:
            how = (
                f"fitted per unit by Poisson GLM in windows of {config.drift_window} "
                f"trials (step {config.drift_step})"
            )
        covariates = (
            f", with the covariates {' and '.join(config.drift_covariates)} "
            "(coefficients fixed over the session; where recorded)"
            if config.drift_covariates
            else ""
        )
        text.append(
            f"Cosine tuning to reach direction was {how}{covariates}, on the "
            f"spike counts from {config.movement_window[0]:g} to "
            f"{config.movement_window[1]:g} s around "
            f"{config.movement_align.replace('_', ' ')}; changes of preferred "
            "direction were related to reward relative to its running expectation "
            f"and to the signed error, against {config.n_perm_coupling} surrogates."
        )
    if "classification" in config.steps:
        text.append(
            "Units were labelled from conditional information tests in the window "
            f"{config.classify_window[0]:g}–{config.classify_window[1]:g} s after "
            "feedback (error direction given magnitude; magnitude given outcome; "
            "outcome) and a Kruskal–Wallis test of directional tuning during the "
            "movement, each with Benjamini–Hochberg control across units."
        )
    seed = "no fixed seed" if config.seed is None else f"seed {config.seed}"
    package_list = ", ".join(f"{name} {version}" for name, version in versions.items())
    text.append(f"Analyses used errsig ({seed}) with {package_list}.")
    return " ".join(text)


def _check_columns(session: Session, config: AnalysisConfig) -> None:
    needed = {config.align}
    for step in config.steps:
        needed.update(STEP_COLUMNS[step])
    missing = sorted(
        column for column in needed if column not in session.trials.columns
    )
    if missing:
        source = session.meta.get("source_file") or "the session"
        raise ColumnError(
            f"{source} lacks the trial column(s) {missing} that the analyses "
            f"{list(config.steps)} need; its trial columns are "
            f"{list(session.trials.columns)}. Map the file's own names with "
            "--columns (a preset name, or a JSON/TOML file such as "
            '{"reward": "outcome"}); `errsig info` lists what the file has.'
        )


def _behavior_groups(
    session: Session, ds: xr.Dataset, rng: np.random.Generator
) -> dict:
    groups = {}
    if "error" in ds and "target_angle" in ds.coords:
        groups["behavior"] = summarize_behavior(ds, _fitted_lateral(ds, rng))
    groups["psth"] = summarize_psth(ds)
    examples = [units[0] for _, units in ds["unit"].groupby(ds["area"])]
    groups["rasters"] = example_rasters(session, ds, [u.item() for u in examples])
    return groups


def _fitted_lateral(ds: xr.Dataset, rng: np.random.Generator) -> np.ndarray | None:
    """Return the lateral error the fitted adaptation model expects per trial."""
    if "phase" not in ds.coords:
        return None
    from errsig.stats import draw_pseudosessions

    try:
        fitted = draw_pseudosessions(ds, 1, rng=rng).attrs
    except ErrsigError as error:
        logger.warning("no adaptation model fitted: %s", error)
        return None
    params = behavior.AdaptationParams(
        retention=tuple(np.atleast_1d(fitted["retention"])),
        learning_rate=tuple(np.atleast_1d(fitted["learning_rate"])),
        planning_noise=0.0,
        execution_noise=0.0,
    )
    order = np.argsort(ds["trial_index"].to_numpy(), kind="stable")
    schedule = fitted["perturbation_size"] * (
        ds["phase"].to_numpy()[order] == "force_field"
    )
    trace = behavior.simulate(schedule, params, rng=0)
    expected = np.empty(len(order))
    expected[order] = trace.error + fitted["baseline_offset"]
    return expected


def _information(ds: xr.Dataset, config: AnalysisConfig, rng, progress: bool) -> dict:
    from errsig.information import mutual_information

    # Condition on every movement covariate present: partialling out velocity
    # alone leaves force units' residual correlated with the error
    # (docs/validation-information.md).
    given = [name for name in ("kinematics", "force") if name in ds] or None
    plan = {
        "information/error": dict(target="error", given=given),
        "information/error_magnitude": dict(target="error_magnitude"),
        "information/reward": dict(target="reward"),
        "information/area_error": dict(
            target="error", by="area", n_boot=config.n_boot_onset
        ),
    }
    results = {}
    for (name, options), stream in zip(plan.items(), rng.spawn(len(plan)), strict=True):
        logger.info("mutual information: %s", name.split("/")[-1])
        results[name] = mutual_information(
            ds,
            null=config.null,
            n_perm=config.n_perm,
            correction=config.correction,
            alpha=config.alpha,
            rng=stream,
            progress=progress,
            **options,
        )
    return results


def _decoding(ds: xr.Dataset, config: AnalysisConfig, rng, progress: bool) -> dict:
    from errsig.decoding import decode

    results = {}
    for target, stream in zip(("error", "reward"), rng.spawn(2), strict=True):
        logger.info("decoding %s", target)
        results[f"decoding/{target}"] = decode(
            ds,
            target,
            null=config.null,
            n_perm=config.n_perm_decoding,
            correction=config.correction,
            alpha=config.alpha,
            rng=stream,
            progress=progress,
        )
    return results


def _tuning(movement: xr.Dataset, ds: xr.Dataset, config: AnalysisConfig, rng) -> dict:
    from errsig.tuning import reward_coupling, tuning_drift

    drift_rng, coupling_rng = rng.spawn(2)
    logger.info("tuning drift")
    drift = tuning_drift(
        movement,
        window=config.drift_window,
        step=config.drift_step,
        method=config.drift_method,
        covariates=_available_covariates(movement, config.drift_covariates) or None,
        rng=drift_rng,
    )
    logger.info("reward coupling")
    coupling = reward_coupling(
        drift,
        ds,
        null=config.null,
        n_perm=config.n_perm_coupling,
        alpha=config.alpha,
        rng=coupling_rng,
    )
    return {"tuning/drift": drift, "tuning/coupling": coupling}


def _available_covariates(movement: xr.Dataset, names: tuple[str, ...]) -> list[str]:
    """Keep the tuning covariates that the movement dataset can provide."""
    from errsig.tuning._design import covariate_available

    available = [name for name in names if covariate_available(movement, name)]
    missing = [name for name in names if name not in available]
    if missing:
        logger.warning(
            "tuning covariates %s are not in the data and are left out; units "
            "whose apparent tuning follows them may be called drifting",
            missing,
        )
    return available


def _movement_dataset(
    session: Session, ds: xr.Dataset, config: AnalysisConfig
) -> xr.Dataset:
    """Bin the movement window as one bin per trial, for the tuning fits."""
    if config.movement_align in session.trials.columns:
        return bin_trials(
            session,
            align=config.movement_align,
            window=config.movement_window,
            bin_size=config.movement_window[1] - config.movement_window[0],
            dtype="smallest",
        )
    logger.warning(
        "no %r column: tuning uses the bins before %s instead",
        config.movement_align,
        config.align,
    )
    return ds.isel(time=(ds["time"] < 0).to_numpy())


def _netcdf_safe(dataset: xr.Dataset) -> xr.Dataset:
    """Make attrs storable in NetCDF: no None, dicts, bools or mixed lists."""
    cleaned = dataset.copy()
    for item in [cleaned, *cleaned.variables.values()]:
        item.attrs = {key: _attr_value(value) for key, value in item.attrs.items()}
    for name, variable in cleaned.variables.items():
        if variable.dtype == object:
            cleaned[name] = variable.astype(str)
    return cleaned


def _attr_value(value: object) -> object:
    if isinstance(value, bool | np.bool_):
        return int(value)
    if isinstance(value, str | int | float | np.integer | np.floating):
        return value
    if isinstance(value, np.ndarray) and value.dtype.kind in "iuf":
        return value
    if isinstance(value, list | tuple) and value and all(_is_number(v) for v in value):
        return np.asarray(value)
    return json.dumps(value, default=str)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool | np.bool_
    )


def _versions() -> dict[str, str]:
    names = (
        "errsig",
        "numpy",
        "scipy",
        "xarray",
        "statsmodels",
        "scikit-learn",
        "pynwb",
    )
    found = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def _as_field_type(name: str, value: object) -> object:
    if name in ("window", "movement_window", "classify_window"):
        return tuple(float(v) for v in value)
    if name == "drift_covariates":
        names = value.split(",") if isinstance(value, str) else value
        return tuple(part for part in names if part)
    if name == "steps":
        return tuple(value) if not isinstance(value, str) else tuple(value.split(","))
    return value


def read_results(path: str | os.PathLike) -> xr.DataTree:
    """Open a results file written by :func:`write_results`.

    Parameters
    ----------
    path : path
        A ``.nc`` file or ``.zarr`` directory.

    Returns
    -------
    xarray.DataTree
    """
    path = Path(path)
    if not path.exists():
        raise ErrsigError(
            f"results file {path} does not exist; run `errsig analyze` first."
        )
    engine = "zarr" if path.is_dir() else "h5netcdf"
    try:
        return xr.open_datatree(path, engine=engine).load()
    except (OSError, ValueError) as error:
        raise ErrsigError(
            f"{path} is not a results file of `errsig analyze`: {error}"
        ) from None
