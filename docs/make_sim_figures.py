"""Make the figures of docs/simulator.md (docs/figures/sim_*.png).

Run: ``.venv/bin/python docs/make_sim_figures.py``. Each scenario gets one
figure: its behaviour (the lateral error through the blocks, with rewarded
trials marked), the planted preferred directions over trials, and rasters of
one unit of each role, aligned to movement onset (kinematic, force, null) or to
feedback (error, magnitude, outcome) and sorted by what the unit codes, with
its mean rate over all trials split at the median of that variable.
"""

import os
import tempfile
from pathlib import Path

import matplotlib as mpl

mpl.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import sim

FIGURES = Path(__file__).resolve().parent / "figures"
ROLE_ORDER = [
    "kinematic",
    "force",
    "vector_error",
    "error_magnitude",
    "outcome",
    "null",
]
N_RASTER_TRIALS = 80


def sort_key(session, unit, role):
    """What to sort a unit's raster trials by, and the event to align on."""
    trials = session.trials
    truth = session.meta["truth"]["units"].loc[unit]
    error = trials[["error_x", "error_y"]].to_numpy()
    if role == "kinematic":
        key = np.cos(trials["target_angle"] - truth["preferred_direction"])
        return key.to_numpy(), "move_onset_time", "cos(target - PD)"
    if role == "force":
        key = np.cos(trials["target_angle"] - truth["force_direction"])
        return key.to_numpy(), "move_onset_time", "cos(target - force dir.)"
    if role == "vector_error":
        direction = truth["preferred_error_direction"]
        key = error @ np.array([np.cos(direction), np.sin(direction)])
        return key, "feedback_time", "error · preferred (m)"
    if role == "error_magnitude":
        return np.hypot(*error.T), "feedback_time", "|error| (m)"
    if role == "outcome":
        return trials["reward"].to_numpy().astype(float), "feedback_time", "reward"
    return np.zeros(len(trials)), "move_onset_time", "trial"


def raster(axis, session, unit, role, rng):
    key, event, label = sort_key(session, unit, role)
    chosen = np.sort(rng.choice(session.n_trials, N_RASTER_TRIALS, replace=False))
    order = chosen[np.argsort(key[chosen], kind="stable")]
    spikes = session.unit_spike_times(unit)
    events = session.trials[event].to_numpy()
    for row, trial in enumerate(order):
        nearby = spikes[(spikes > events[trial] - 0.4) & (spikes < events[trial] + 0.8)]
        axis.vlines(nearby - events[trial], row, row + 0.9, linewidth=0.6, color="k")
    area = session.units.loc[unit, "area"]
    axis.set_title(f"unit {unit} ({area}, {role})", fontsize=8)
    axis.set_xlabel(f"s from {event.removesuffix('_time')}", fontsize=7)
    axis.set_ylabel(f"trials by {label}", fontsize=7)
    axis.axvline(0, color="tab:red", linewidth=0.8)
    axis.set_xlim(-0.4, 0.8)
    axis.tick_params(labelsize=6)


def split_psth(axis, session, unit, role):
    """Mean rate over all trials, split at the median of what the unit codes."""
    key, event, label = sort_key(session, unit, role)
    spikes = session.unit_spike_times(unit)
    events = session.trials[event].to_numpy()
    edges = np.arange(-0.4, 0.8001, 0.02)
    relative = [spikes[(spikes > e - 0.4) & (spikes < e + 0.8)] - e for e in events]
    counts = np.array([np.histogram(r, edges)[0] for r in relative]) / 0.02
    binary = len(np.unique(key)) <= 2
    high = key > (0.5 if binary else np.median(key))
    centres = edges[:-1] + 0.01
    if role in ("null",):
        axis.plot(centres, counts.mean(axis=0), color="k", linewidth=1)
    else:
        axis.plot(
            centres,
            counts[high].mean(axis=0),
            color="tab:red",
            linewidth=1,
            label="high",
        )
        axis.plot(
            centres,
            counts[~high].mean(axis=0),
            color="tab:blue",
            linewidth=1,
            label="low",
        )
        axis.legend(fontsize=6, frameon=False, title=label, title_fontsize=6)
    axis.axvline(0, color="0.5", linewidth=0.6)
    axis.set_xlim(-0.4, 0.8)
    axis.set_ylabel("rate (Hz)", fontsize=7)
    axis.set_xlabel(f"s from {event.removesuffix('_time')}", fontsize=7)
    axis.tick_params(labelsize=6)


def scenario_figure(name):
    session = sim.simulate(name, rng=1, n_units=60, n_trials=600)
    truth = session.meta["truth"]
    units = truth["units"]
    roles = [role for role in ROLE_ORDER if role in set(units["role"])]
    n_columns = max(3, len(roles))
    figure, axes = plt.subplots(3, n_columns, figsize=(2.6 * n_columns, 7.6))
    rng = np.random.default_rng(0)

    lateral = truth["trials"]["shown_lateral_error"].to_numpy() * 100
    reward = session.trials["reward"].to_numpy()
    trial = np.arange(len(lateral))
    top = axes[0, 0]
    top.plot(trial, lateral, color="0.6", linewidth=0.5)
    top.plot(trial[reward], lateral[reward], ".", color="tab:green", markersize=2)
    top.plot(trial, truth["trials"]["perturbation"] * 100, color="tab:blue")
    top.set_title("shown lateral error (cm); green: rewarded", fontsize=8)
    top.set_xlabel("trial", fontsize=7)

    drift = truth["unit_trial"]["preferred_direction"]
    moving = units.index[units["drift_rule"] != "stable"][:6]
    axis = axes[0, 1]
    if len(moving):
        for unit in moving:
            axis.plot(np.rad2deg(drift[unit] - drift[unit, 0]), linewidth=0.8)
        rules = ", ".join(sorted(set(units.loc[moving, "drift_rule"])))
        axis.set_title(f"planted PD change (deg): {rules}", fontsize=8)
    else:
        radius = truth["trials"]["acceptance_radius"].to_numpy() * 100
        success = np.convolve(reward, np.ones(20) / 20, mode="same")
        axis.plot(radius, color="tab:purple", linewidth=0.8, label="radius (cm)")
        axis.plot(success, color="tab:green", linewidth=0.8, label="reward rate")
        axis.legend(fontsize=6, frameon=False)
        axis.set_title("staircase radius and reward rate (20 trials)", fontsize=8)
    axis.set_xlabel("trial", fontsize=7)

    counts = units.groupby(["area", "role"]).size()
    axes[0, 2].axis("off")
    axes[0, 2].text(
        0,
        1,
        f"{name} ({sim.SCENARIOS[name].alias})\n\n" + counts.to_string(),
        va="top",
        fontsize=7,
        family="monospace",
    )
    for axis in axes[0, 3:]:
        axis.axis("off")
    for column, role in enumerate(roles):
        unit = units.index[units["role"] == role][0]
        raster(axes[1, column], session, unit, role, rng)
        split_psth(axes[2, column], session, unit, role)
    for axis in axes[1:, len(roles) :].ravel():
        axis.axis("off")
    for axis in axes[0, :2]:
        axis.tick_params(labelsize=6)
    figure.tight_layout()
    save(figure, FIGURES / f"sim_{name}.png")


def save(figure, path):
    """Write to a temporary name in the same folder, then move into place."""
    handle, temporary = tempfile.mkstemp(suffix=".png", dir=path.parent)
    os.close(handle)
    figure.savefig(temporary, dpi=90)
    plt.close(figure)
    os.replace(temporary, path)


def main():
    FIGURES.mkdir(parents=True, exist_ok=True)
    for name in sim.SCENARIOS:
        scenario_figure(name)
        print(f"wrote {FIGURES / f'sim_{name}.png'}")


if __name__ == "__main__":
    main()
