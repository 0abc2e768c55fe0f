"""A self-contained HTML report of one analysed session.

:func:`write_report` reads a results file written by ``errsig analyze`` (an
xarray ``DataTree``), draws every figure it has the results for, and writes
``index.html`` with the figures embedded (readable offline, one file to mail),
each figure again as PNG and PDF, a summary table per area and a methods
paragraph written from the parameters, seeds and package versions the results
recorded.
"""

from __future__ import annotations

import base64
import html
import io
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from errsig import plot
from errsig._exceptions import ErrsigError

__all__ = ["has_group", "write_report"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _FigureSpec:
    """How to draw one figure of the report from the results tree."""

    name: str
    title: str
    caption: str
    needs: tuple[str, ...]
    draw: Callable[[xr.DataTree], list[Figure]]


def _behavior_figures(tree: xr.DataTree) -> list[Figure]:
    return [plot.plot_behavior(tree["behavior"].to_dataset())]


def _psth_figures(tree: xr.DataTree) -> list[Figure]:
    psth = tree["psth"].to_dataset()
    figures = []
    for unit in _example_units(tree):
        figure = Figure(figsize=(8.0, 3.0), layout="constrained")
        left, right = figure.subplots(1, 2)
        if "rate_by_outcome" in psth:
            plot.plot_psth(psth, unit, split="outcome", ax=left)
        if "rate_by_error_direction" in psth:
            plot.plot_psth(psth, unit, split="error_direction", ax=right)
        figures.append(figure)
    return figures


def _raster_figures(tree: xr.DataTree) -> list[Figure]:
    rasters = tree["rasters"].to_dataset()
    units = _example_units(tree)
    if not units:
        return []
    figure = Figure(figsize=(3.0 * len(units), 3.2), layout="constrained")
    axes = figure.subplots(1, len(units), squeeze=False)[0]
    for ax, unit in zip(axes, units, strict=True):
        plot.plot_raster(rasters, unit, ax=ax)
    return [figure]


def _information_figures(tree: xr.DataTree) -> list[Figure]:
    names = [
        n
        for n in ("area_error", "error", "error_magnitude", "reward")
        if n in tree["information"]
    ]
    figure = Figure(figsize=(9.0, 3.0 * ((len(names) + 1) // 2)), layout="constrained")
    axes = figure.subplots((len(names) + 1) // 2, 2, squeeze=False).ravel()
    for ax, name in zip(axes, names, strict=False):
        plot.plot_information(tree["information"][name].to_dataset(), ax=ax)
    for ax in axes[len(names) :]:
        ax.set_visible(False)
    return [figure]


def _decoding_figures(tree: xr.DataTree) -> list[Figure]:
    names = list(tree["decoding"].children)
    figure = Figure(figsize=(4.5 * len(names), 3.2), layout="constrained")
    axes = figure.subplots(1, len(names), squeeze=False)[0]
    for ax, name in zip(axes, names, strict=True):
        plot.plot_decoding(tree["decoding"][name].to_dataset(), ax=ax)
    return [figure]


def _tuning_figures(tree: xr.DataTree) -> list[Figure]:
    drift = tree["tuning/drift"].to_dataset()
    coupling = tree["tuning/coupling"].to_dataset()
    figure = Figure(figsize=(13.0, 3.4), layout="constrained")
    left, middle, right = figure.subplots(1, 3)
    plot.plot_tuning(drift, ax=left)
    plot.plot_reward_coupling(coupling, ax=middle)
    plot.plot_rules(coupling, ax=right)
    return [figure]


def _classification_figures(tree: xr.DataTree) -> list[Figure]:
    return [plot.plot_class_proportions(tree["classification"].to_dataset())]


def _example_units(tree: xr.DataTree) -> list:
    if "rasters" in tree:
        spikes = tree["rasters"].to_dataset()["spike_unit"].to_numpy()
        seen = list(dict.fromkeys(spikes.tolist()))
        return seen[:4]
    return []


#: The report's figures, in order. Each is drawn only when its results exist.
FIGURES: list[_FigureSpec] = [
    _FigureSpec(
        "behavior",
        "Behaviour",
        "Lateral error per trial (dots), the fitted adaptation model (line) and "
        "rewarded trials (ticks); shading marks baseline, force field and washout.",
        ("behavior",),
        _behavior_figures,
    ),
    _FigureSpec(
        "rasters",
        "Example units",
        "Spikes of example units around the alignment event, rewarded trials first.",
        ("rasters",),
        _raster_figures,
    ),
    _FigureSpec(
        "psth",
        "Mean firing",
        "Mean firing rate split by outcome (left) and by the direction of the "
        "shown error (right).",
        ("psth",),
        _psth_figures,
    ),
    _FigureSpec(
        "information",
        "Information",
        "Mutual information about the error (given the movement recorded with "
        "the session, see Methods), its magnitude and the outcome: per area, the "
        "fraction of units with significant information in each bin; top left, "
        "the population information of each area (dots: significant; dashed: "
        "onset latency; shaded: its 95% bootstrap interval).",
        ("information",),
        _information_figures,
    ),
    _FigureSpec(
        "decoding",
        "Decoding",
        "Cross-validated decoding of the error (R²) and the outcome (AUC) from "
        "each area's population, per time bin (dots: significant after "
        "correction across time).",
        ("decoding",),
        _decoding_figures,
    ),
    _FigureSpec(
        "tuning",
        "Tuning drift and learning rules",
        "Left: preferred-direction trajectories of example units with 95% "
        "intervals. Middle: change of tuning after reward surprise against trial "
        "lag, per area (stars: significant). Right: the learning rule of each "
        "unit's tuning change.",
        ("tuning/drift", "tuning/coupling"),
        _tuning_figures,
    ),
    _FigureSpec(
        "classification",
        "Unit classes",
        "Share of each area's units in each class with Wilson 95% intervals.",
        ("classification",),
        _classification_figures,
    ),
]


def write_report(
    results: str | os.PathLike | xr.DataTree,
    output: str | os.PathLike,
    *,
    formats: tuple[str, ...] = ("png", "pdf"),
    session: int | str | None = None,
) -> Path:
    """Write the HTML report of an analysed session.

    Parameters
    ----------
    results : path or xarray.DataTree
        The results written by ``errsig analyze`` (NetCDF or Zarr), or the tree.
    output : path
        Directory to create (replaced whole if it exists). The report is built
        in a temporary directory beside it and moved into place, so an
        interrupted run leaves the previous report intact.
    formats : tuple of str, default=("png", "pdf")
        File formats each figure is also saved in.
    session : int or str, optional
        For the results of several sessions (``errsig analyze A.nwb B.nwb``):
        the session to report, by position or by its file path as given
        (:func:`errsig.batch.select_session`).

    Returns
    -------
    pathlib.Path
        The path of ``index.html``.

    Raises
    ------
    ErrsigError
        For the results of several sessions without ``session``.
    """
    tree = _open_results(results)
    if session is not None:
        from errsig.batch import select_session

        tree = select_session(tree, session)
    _check_one_session(tree, results)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.", dir=output.parent))
    try:
        sections = _draw_sections(tree, staging, formats)
        page = _render_page(tree, sections)
        (staging / "index.html").write_text(page, encoding="utf-8")
        _replace_directory(staging, output)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    logger.info("report written to %s", output / "index.html")
    return output / "index.html"


def _check_one_session(tree: xr.DataTree, results: object) -> None:
    """Refuse a tree of several sessions, naming them and how to choose one."""
    if "sessions" not in tree.attrs:
        return
    files = [record["file"] for record in json.loads(tree.attrs["sessions"])]
    source = "the results" if isinstance(results, xr.DataTree) else str(results)
    raise ErrsigError(
        f"{source} hold {len(files)} sessions ({', '.join(files)}); a report "
        "draws one. Choose it with `session=` (on the command line, --session "
        "FILE or --session POSITION)."
    )


def _open_results(results: str | os.PathLike | xr.DataTree) -> xr.DataTree:
    if isinstance(results, xr.DataTree):
        return results
    from errsig.analyze import read_results

    return read_results(results)


def _draw_sections(
    tree: xr.DataTree, folder: Path, formats: tuple[str, ...]
) -> list[dict]:
    sections = []
    for spec in FIGURES:
        if not all(has_group(tree, group) for group in spec.needs):
            continue
        images = []
        for number, figure in enumerate(spec.draw(tree)):
            stem = folder / (f"{spec.name}_{number}" if number else spec.name)
            for extension in formats:
                figure.savefig(f"{stem}.{extension}", dpi=150)
            buffer = io.BytesIO()
            figure.savefig(buffer, format="png", dpi=110)
            images.append(base64.b64encode(buffer.getvalue()).decode("ascii"))
        sections.append({"spec": spec, "images": images})
    return sections


def _render_page(tree: xr.DataTree, sections: list[dict]) -> str:
    source = tree.attrs.get("source", "")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>errsig report: {html.escape(Path(source).name or 'session')}</title>",
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto;"
        "line-height:1.4}img{max-width:100%}table{border-collapse:collapse}"
        "td,th{border:1px solid #999;padding:0.2em 0.6em;text-align:right}"
        "figcaption{font-size:90%;color:#333}</style></head><body>",
        "<h1>errsig report</h1>",
        f"<p>Input: <code>{html.escape(source)}</code></p>",
    ]
    columns, rows = _summary_rows(tree)
    if rows:
        parts.append('<h2 id="summary">Summary per area</h2>')
        parts.append(_render_table(columns, rows))
    for section in sections:
        spec = section["spec"]
        parts.append(f'<h2 id="{spec.name}">{html.escape(spec.title)}</h2><figure>')
        for image in section["images"]:
            alt = html.escape(spec.title)
            parts.append(f'<img alt="{alt}" src="data:image/png;base64,{image}">')
        parts.append(f"<figcaption>{html.escape(spec.caption)}</figcaption></figure>")
    parts.append('<h2 id="methods">Methods</h2>')
    parts.append(
        f"<p>{html.escape(tree.attrs.get('methods', 'No methods recorded.'))}</p>"
    )
    parts.append("</body></html>")
    return "\n".join(parts)


def has_group(tree: xr.DataTree, path: str) -> bool:
    """Return whether ``tree`` has the group at ``path`` (e.g. ``"tuning/drift"``).

    Parameters
    ----------
    tree : xarray.DataTree
        A results tree.
    path : str
        A slash-separated group path.

    Returns
    -------
    bool

    Examples
    --------
    >>> import xarray as xr
    >>> from errsig.report import has_group
    >>> tree = xr.DataTree.from_dict({"tuning/drift": xr.Dataset()})
    >>> has_group(tree, "tuning/drift"), has_group(tree, "tuning/coupling")
    (True, False)
    """
    node = tree
    for part in path.strip("/").split("/"):
        if part not in node.children:
            return False
        node = node.children[part]
    return True


def _summary_rows(tree: xr.DataTree) -> tuple[list[str], list[list[str]]]:
    """One row per area: unit counts, classes, onset, peak decoding, rule."""
    columns = ["area", "units"]
    rows: dict[str, dict[str, str]] = {}

    def cell(area: str, column: str, value: str) -> None:
        rows.setdefault(area, {})[column] = value
        if column not in columns:
            columns.append(column)

    if "psth" in tree and "area" in tree["psth"].to_dataset().coords:
        areas = tree["psth"].to_dataset()["area"].to_numpy().astype(str)
        for area in dict.fromkeys(areas.tolist()):
            cell(area, "units", str(int(np.sum(areas == area))))
    if "classification" in tree:
        classes = tree["classification"].to_dataset()
        for area in classes["area"].to_numpy():
            counts = classes["area_count"].sel(area=area)
            for label in classes["label_name"].to_numpy().astype(str):
                cell(
                    str(area),
                    label.replace("_", " "),
                    str(int(counts.sel(label_name=label))),
                )
    if has_group(tree, "information/area_error"):
        information = tree["information/area_error"].to_dataset()
        if information["onset_latency"].dims == ("area",):
            for area in information["area"].to_numpy():
                cell(str(area), "error onset", _onset_text(information, area))
    if "decoding" in tree:
        for name in tree["decoding"].children:
            result = tree["decoding"][name].to_dataset()
            score = result["score"]
            score = score.isel({d: 0 for d in score.dims if d not in ("area", "time")})
            metric = str(result.attrs.get("metric", "score")).split(" ")[0]
            for area in score["area"].to_numpy():
                cell(
                    str(area),
                    f"peak {metric} ({name})",
                    f"{float(score.sel(area=area).max()):.2f}",
                )
    if has_group(tree, "tuning/coupling"):
        coupling = tree["tuning/coupling"].to_dataset()
        if "area_rule" in coupling:
            for area, rule in zip(
                coupling["area"].to_numpy(),
                coupling["area_rule"].to_numpy(),
                strict=True,
            ):
                cell(str(area), "area rule", str(rule).replace("_", " "))
    table = [
        [area] + [values.get(c, "") for c in columns[1:]]
        for area, values in rows.items()
    ]
    return columns, table


def _onset_text(result: xr.Dataset, area: object) -> str:
    """Onset in ms, with its bootstrap interval where the result has one."""
    value = float(result["onset_latency"].sel(area=area))
    if not np.isfinite(value):
        return "n.s."
    text = f"{1000 * value:.0f} ms"
    if "onset_latency_low" not in result:
        return text
    bounds = [
        float(result[name].sel(area=area))
        for name in ("onset_latency_low", "onset_latency_high")
    ]
    low, high = (f"{1000 * b:.0f}" if np.isfinite(b) else "…" for b in bounds)
    return f"{text} ({low}–{high})"


def _render_table(columns: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in row) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _replace_directory(staging: Path, output: Path) -> None:
    if output.exists():
        retired = output.with_name(f".{output.name}.old")
        shutil.rmtree(retired, ignore_errors=True)
        output.rename(retired)
        staging.rename(output)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        staging.rename(output)
    output.chmod(0o755)
