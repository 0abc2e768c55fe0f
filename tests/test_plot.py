import io

import matplotlib.image
import numpy as np
import pytest
from matplotlib.figure import Figure

from errsig import bin_trials, plot
from errsig.summary import (
    error_components,
    example_rasters,
    summarize_behavior,
    summarize_psth,
)


def not_blank(figure):
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=60)
    buffer.seek(0)
    pixels = matplotlib.image.imread(buffer)[..., :3]
    # More than a sliver of the image differs from the background colour.
    return np.mean(np.any(np.abs(pixels - pixels[0, 0]) > 0.1, axis=-1)) > 0.01


@pytest.fixture
def binned(small_session):
    return bin_trials(small_session)


def test_error_components_rotate_with_the_target():
    import xarray as xr

    angle = np.array([0.0, np.pi / 2, np.pi])
    ds = xr.Dataset(
        {"error": (("trial", "component"), [[0.0, 1.0], [0.0, 1.0], [0.0, 1.0]])},
        coords={"target_angle": ("trial", angle)},
    )
    lateral, along = error_components(ds)
    np.testing.assert_allclose(lateral, [1.0, 0.0, -1.0], atol=1e-12)
    np.testing.assert_allclose(along, [0.0, 1.0, 0.0], atol=1e-12)


def test_psth_summary_matches_direct_means(binned):
    psth = summarize_psth(binned)
    rewarded = binned["reward"].values
    expected = binned["counts"].values[rewarded].mean(axis=0) / binned.attrs["bin_size"]
    np.testing.assert_allclose(
        psth["rate_by_outcome"].sel(outcome="rewarded").values, expected
    )
    assert int(psth["n_trials_by_error_direction"].sum()) == binned.sizes["trial"]


def test_psth_summary_is_the_same_in_unit_chunks_and_small_integers(
    binned, monkeypatch
):
    import xarray as xr

    from errsig import summary

    whole = summarize_psth(binned)
    compact = binned.assign(counts=binned["counts"].astype(np.int8))
    one_unit = 8 * binned.sizes["trial"] * binned.sizes["time"]
    monkeypatch.setattr(summary, "RATE_CHUNK_BYTES", one_unit)
    xr.testing.assert_identical(summarize_psth(compact), whole)


def test_rasters_hold_the_spikes_in_the_window(small_session, binned):
    unit = small_session.units.index[0]
    rasters = example_rasters(small_session, binned, [unit])
    total = int(binned["counts"].sel(unit=unit).sum())
    assert rasters.sizes["spike"] == total
    assert rasters["spike_time"].min() >= binned.attrs["window_start"]
    assert rasters["spike_time"].max() <= binned.attrs["window_stop"]


@pytest.mark.parametrize("split", ["outcome", "error_direction"])
def test_figures_draw_on_given_axes(small_session, binned, split):
    unit = small_session.units.index[1]
    drawings = [
        (plot.plot_behavior, (summarize_behavior(binned),), {}),
        (plot.plot_psth, (summarize_psth(binned), unit), {"split": split}),
        (
            plot.plot_raster,
            (example_rasters(small_session, binned, [unit]), unit),
            {"split": split},
        ),
    ]
    for function, args, kwargs in drawings:
        figure = Figure()
        ax = figure.add_subplot()
        returned = function(*args, ax=ax, **kwargs)
        assert returned is figure
        assert ax.get_xlabel() and ax.get_ylabel()
        assert not_blank(figure)


def test_psth_unknown_split_lists_choices(binned):
    with pytest.raises(ValueError, match="available"):
        plot.plot_psth(summarize_psth(binned), 0, split="phase")
