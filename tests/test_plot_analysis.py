"""The analysis figures of ``errsig.plot``, drawn from one analysed session.

The inputs are the groups of a real results tree (a small ``mixed`` session run
through :func:`errsig.analyze.analyze_session`), fed to each figure function as
``errsig.report`` does, both in memory and read back from a NetCDF file.
"""

import io
import re
import zlib

import matplotlib.image
import numpy as np
import pytest
import xarray as xr
from matplotlib.figure import Figure

import sim
from errsig import bin_trials, plot, tuning_drift
from errsig.analyze import (
    AnalysisConfig,
    analyze_session,
    read_results,
    write_results,
)

SMALL = AnalysisConfig(
    bin_size=0.1, n_perm=40, n_perm_decoding=10, n_perm_coupling=10, seed=5
)

#: Figure functions tested in tests/test_plot.py from summaries, not results.
SUMMARY_FIGURES = {"plot_behavior", "plot_psth", "plot_raster"}

#: (figure function, results group) as errsig.report draws them.
ANALYSIS_FIGURES = [
    ("plot_information", "information/area_error"),
    ("plot_information", "information/error"),
    ("plot_information", "information/error_magnitude"),
    ("plot_information", "information/reward"),
    ("plot_decoding", "decoding/error"),
    ("plot_decoding", "decoding/reward"),
    ("plot_tuning", "tuning/drift"),
    ("plot_reward_coupling", "tuning/coupling"),
    ("plot_rules", "tuning/coupling"),
    ("plot_class_proportions", "classification"),
]


@pytest.fixture(scope="module")
def session():
    return sim.simulate("mixed", rng=11, n_units=16, n_trials=200)


@pytest.fixture(scope="module")
def analysed(session):
    return analyze_session(session, SMALL)


@pytest.fixture(scope="module", params=["in memory", "read back"])
def results(request, analysed, tmp_path_factory):
    if request.param == "in memory":
        return analysed
    path = tmp_path_factory.mktemp("results") / "results.nc"
    return read_results(write_results(analysed, path))


def render(figure, *, hidden=()):
    """Return the figure's RGB pixels (0–1) at a low dpi, ``hidden`` artists hidden."""
    for artist in hidden:
        artist.set_visible(False)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=60)
    for artist in hidden:
        artist.set_visible(True)
    buffer.seek(0)
    return matplotlib.image.imread(buffer)[..., :3]


def legends(figure):
    return [ax.get_legend() for ax in figure.axes if ax.get_legend() is not None]


def drawn_fraction(figure):
    """Share of pixels that the data artists (lines, bars, bands) change.

    An Axes with a frame, ticks and labels but no data scores zero, which a
    plain comparison with the background colour would not: frames and labels
    alone cover more than 1% of a small figure.
    """
    data = [
        artist
        for ax in figure.axes
        for artist in (*ax.lines, *ax.patches, *ax.collections)
    ]
    with_data = render(figure, hidden=legends(figure))
    without_data = render(figure, hidden=[*legends(figure), *data])
    return float(np.mean(np.any(np.abs(with_data - without_data) > 0.1, axis=-1)))


def coloured_fraction(figure):
    """Share of pixels in a saturated colour, legends left out.

    Frames, ticks and text are black or grey; the data are drawn in the
    palette's colours.
    """
    pixels = render(figure, hidden=legends(figure))
    saturation = pixels.max(axis=-1) - pixels.min(axis=-1)
    return float(np.mean(saturation > 0.25))


def draw(function_name, dataset):
    """Draw on the second of two Axes; return the figure, both Axes, the result."""
    figure = Figure(figsize=(6.0, 3.5))
    spare, target = figure.subplots(1, 2)
    returned = getattr(plot, function_name)(dataset, ax=target)
    return figure, spare, target, returned


def test_every_figure_function_is_tested():
    functions = {name for name in plot.__all__ if name.startswith("plot_")}
    tested = {name for name, _ in ANALYSIS_FIGURES} | SUMMARY_FIGURES
    assert functions == tested


@pytest.mark.parametrize(
    ("function_name", "group"),
    ANALYSIS_FIGURES,
    ids=[f"{name}-{group}" for name, group in ANALYSIS_FIGURES],
)
def test_figure_draws_on_the_given_axes(results, function_name, group):
    figure, spare, target, returned = draw(function_name, results[group].to_dataset())

    assert returned is figure
    assert figure.axes == [spare, target]
    assert not (spare.lines or spare.patches or spare.collections)
    assert target.lines or target.patches or target.collections
    assert target.get_xlabel() and target.get_ylabel()
    assert drawn_fraction(figure) > 0.005
    assert coloured_fraction(figure) > 0.002


def test_labelled_axes_without_data_fail_the_checks():
    # The checks above must be able to fail: labelled Axes with only the
    # reference lines every figure draws.
    figure = Figure(figsize=(6.0, 3.5))
    _, target = figure.subplots(1, 2)
    target.set(xlabel="time (s)", ylabel="information (bits)")
    target.axhline(0, color="black", linewidth=0.5)
    target.axvline(0, color="black", linewidth=0.5, linestyle=":")
    assert drawn_fraction(figure) < 0.005
    assert coloured_fraction(figure) == 0.0


@pytest.mark.parametrize(
    ("function_name", "group", "xlabel", "ylabel"),
    [
        (
            "plot_information",
            "information/area_error",
            "time from feedback (s)",
            "information (bits)",
        ),
        (
            "plot_information",
            "information/error",
            "time from feedback (s)",
            "fraction of units",
        ),
        ("plot_decoding", "decoding/error", "time from feedback (s)", "r2"),
        ("plot_decoding", "decoding/reward", "time from feedback (s)", "auc"),
        ("plot_tuning", "tuning/drift", "trial", "preferred direction (deg)"),
        ("plot_reward_coupling", "tuning/coupling", "lag (trials", "tuning change"),
        ("plot_rules", "tuning/coupling", "area", "units"),
        ("plot_class_proportions", "classification", "area", "fraction of units"),
    ],
)
def test_axis_labels_name_the_quantity_and_unit(
    analysed, function_name, group, xlabel, ylabel
):
    _, _, target, _ = draw(function_name, analysed[group].to_dataset())
    assert xlabel in target.get_xlabel()
    assert ylabel in target.get_ylabel()


@pytest.mark.parametrize(
    ("function_name", "group"),
    [("plot_information", "information/error"), ("plot_decoding", "decoding/error")],
)
def test_time_axis_names_the_alignment_event(analysed, function_name, group):
    result = analysed[group].to_dataset()
    result.attrs["align"] = "go_cue_time"
    _, _, target, _ = draw(function_name, result)
    assert target.get_xlabel() == "time from go cue (s)"


def test_information_draws_one_line_per_area(analysed):
    result = analysed["information/area_error"].to_dataset()
    _, _, target, _ = draw("plot_information", result)

    legend = [text.get_text() for text in target.get_legend().get_texts()]
    assert sorted(legend) == sorted(result["area"].to_numpy().astype(str))
    n_significant = int(result["significant"].sum())
    markers = [line for line in target.lines if line.get_marker() == "o"]
    assert sum(len(line.get_xdata()) for line in markers) == n_significant


@pytest.mark.parametrize(("group", "chance"), [("error", 0.0), ("reward", 0.5)])
def test_decoding_marks_chance_of_its_metric(analysed, group, chance):
    # R² is 0 and AUC 0.5 for a decoder that has learnt nothing.
    result = analysed[f"decoding/{group}"].to_dataset()
    _, _, target, _ = draw("plot_decoding", result)

    horizontal = [
        line.get_ydata()[0]
        for line in target.lines
        if list(line.get_xdata()) == [0, 1] and len(set(line.get_ydata())) == 1
    ]
    assert horizontal == [chance]


def test_rules_bars_count_every_unit(analysed):
    coupling = analysed["tuning/coupling"].to_dataset()
    _, _, target, _ = draw("plot_rules", coupling)

    heights = [patch.get_height() for patch in target.patches]
    assert sum(heights) == coupling.sizes["unit"]


def test_class_proportions_bars_are_the_area_fractions(analysed):
    classification = analysed["classification"].to_dataset()
    _, _, target, _ = draw("plot_class_proportions", classification)

    heights = np.sort([patch.get_height() for patch in target.patches])
    expected = np.sort(classification["area_fraction"].to_numpy().ravel())
    np.testing.assert_allclose(heights, expected)
    assert target.get_ylim() == (0.0, 1.0)


@pytest.mark.parametrize("method", ["filter", "glm"])
def test_tuning_trajectory_survives_a_failed_window(session, method):
    # tuning_drift keeps windows whose fit did not converge as NaN; one such
    # window (or trial, with the filter) must not blank the rest of the unit's
    # trajectory.
    movement = bin_trials(
        session, align="move_onset_time", window=(0.0, 0.4), bin_size=0.4
    )
    drift = tuning_drift(movement, method=method, n_boot=0)
    unit = drift["unit"].to_numpy()[0]
    failed = drift.copy(deep=True)
    along = "window" if "window" in drift["preferred_direction"].dims else "trial"
    for name in ("", "_low", "_high"):
        variable = failed[f"preferred_direction{name}"]
        variable[{"unit": 0, along: 3}] = np.nan

    figure = Figure()
    plot.plot_tuning(failed, [unit], ax=figure.add_subplot())
    drawn = np.asarray(figure.axes[0].lines[0].get_ydata(), dtype=float)

    assert np.isnan(drawn[3])
    assert np.isfinite(np.delete(drawn, 3)).all()


def test_reward_coupling_stars_only_lags_significant_after_correction():
    lags = [-1, 0, 1]
    coupling = xr.Dataset(
        {
            "reward_lag_coef": (("unit", "lag"), [[0.0, 0.5, 0.1]]),
            "area_p_reward_lag": (("area", "lag"), [[0.5, 0.01, 0.03]]),
            "area_p_reward_lag_corrected": (("area", "lag"), [[0.9, 0.03, 0.08]]),
        },
        coords={"lag": lags, "area": ["M1"], "area_of_unit": ("unit", ["M1"])},
        attrs={"alpha": 0.05},
    )
    figure = Figure()
    plot.plot_reward_coupling(coupling, ax=figure.add_subplot())

    stars = [line for line in figure.axes[0].lines if line.get_marker() == "*"]
    assert [list(line.get_xdata()) for line in stars] == [[0]]


def test_tuning_draws_the_units_asked_for(analysed):
    drift = analysed["tuning/drift"].to_dataset()
    units = drift["unit"].to_numpy()[[2, 5, 9]]
    figure = Figure()
    plot.plot_tuning(drift, units, ax=figure.add_subplot())

    legend = [text.get_text() for text in figure.axes[0].get_legend().get_texts()]
    assert legend == [f"unit {unit}" for unit in units]
    assert len(figure.axes[0].collections) == len(units)


def test_tuning_draws_a_trial_by_trial_filter(session):
    movement = bin_trials(
        session, align="move_onset_time", window=(0.0, 0.4), bin_size=0.4
    )
    drift = tuning_drift(movement, method="filter")
    figure = Figure()
    plot.plot_tuning(drift, ax=figure.add_subplot())

    line = figure.axes[0].lines[0]
    np.testing.assert_array_equal(line.get_xdata(), np.arange(session.n_trials))
    assert np.isfinite(np.asarray(line.get_ydata(), dtype=float)).mean() > 0.9
    assert figure.axes[0].get_xlabel() == "trial"


@pytest.mark.parametrize("extension", ["pdf", "svg"])
def test_figures_save_as_vector_paths(analysed, tmp_path, extension):
    figure = Figure(figsize=(9.0, 3.0), layout="constrained")
    left, right = figure.subplots(1, 2)
    plot.plot_decoding(analysed["decoding/error"].to_dataset(), ax=left)
    plot.plot_class_proportions(analysed["classification"].to_dataset(), ax=right)

    path = tmp_path / f"figure.{extension}"
    figure.savefig(path)
    content = path.read_bytes()

    assert len(content) > 1000
    assert b"image/png" not in content and b"/Subtype /Image" not in content
    if extension == "svg":
        assert content.count(b"<path") > 20
    else:
        assert content.startswith(b"%PDF")
        # Vector paths are drawn with moveto/lineto operators, in streams that
        # matplotlib compresses; undo that to count them.
        assert _pdf_path_operators(content) > 20


def _pdf_path_operators(content):
    streams = re.findall(rb"stream\r?\n(.*?)\r?\nendstream", content, flags=re.DOTALL)
    count = 0
    for stream in streams:
        try:
            text = zlib.decompress(stream)
        except zlib.error:
            text = stream
        count += len(re.findall(rb"\s[ml]\s", text))
    return count


def test_information_shades_the_onset_interval():
    result = xr.Dataset(
        {
            "mi": (("area", "time"), [[0.0, 0.1, 0.3, 0.2], [0.0, 0.0, 0.0, 0.0]]),
            "significant": (
                ("area", "time"),
                [[False, True, True, True], [False, False, False, False]],
            ),
            "onset_latency": ("area", [0.15, np.nan]),
            "onset_latency_low": ("area", [0.05, np.nan]),
            "onset_latency_high": ("area", [0.15, np.nan]),
        },
        coords={"area": ["PMd", "M1"], "time": [0.05, 0.15, 0.25, 0.35]},
        attrs={"target": "error", "align": "feedback_time"},
    )
    figure = Figure()
    ax = figure.add_subplot()
    plot.plot_information(result, ax=ax)

    (band,) = ax.patches  # M1 has no onset, so no band
    left, right = band.get_x(), band.get_x() + band.get_width()
    np.testing.assert_allclose([left, right], [0.0, 0.2], atol=1e-12)
