"""The classification confusion table of docs/validation.md.

Runs ``classify_units`` on ten ``mixed`` sessions (seeds 0-9) and prints the
planted role against the label, per area and overall, and the share of units
with a planted role labelled correctly. About 20 s on 2 cores.

Run: ``.venv/bin/python docs/validate_classification.py``
"""

import pandas as pd

import sim
from errsig import bin_trials
from errsig.classify import classify_units

#: The label a unit of each planted role should get (force units move the arm).
EXPECTED = {
    "kinematic": "kinematic",
    "force": "kinematic",
    "outcome": "outcome",
    "vector_error": "vector_error",
}


def classify_session(seed):
    session = sim.simulate("mixed", rng=seed)
    ds = bin_trials(session, window=(-0.2, 0.8), bin_size=0.05)
    movement = bin_trials(
        session, align="move_onset_time", window=(0, 0.4), bin_size=0.4
    )
    result = classify_units(ds, movement=movement, n_perm=500, rng=seed)
    truth = session.meta["truth"]["units"]
    return truth.assign(
        label=result["label"].values,
        seed=seed,
        correlation=result.attrs["reward_magnitude_correlation"],
    )


def main():
    table = pd.concat([classify_session(seed) for seed in range(10)])
    print(pd.crosstab([table.area, table.role], table.label, margins=True))

    planted = table[table.role != "null"]
    correct = planted.label == planted.role.map(EXPECTED)
    per_session = correct.groupby(planted.seed).mean()
    null_labelled = (table[table.role == "null"].label != "none").sum()
    print(f"\nplanted units labelled correctly: {correct.mean():.3f}")
    print(f"per session: {per_session.min():.3f} to {per_session.max():.3f}")
    print(f"null units labelled: {null_labelled} of {(table.role == 'null').sum()}")
    correlations = table.groupby("seed").correlation.first()
    print(
        "reward-magnitude correlation: "
        f"{correlations.min():.2f} to {correlations.max():.2f}"
    )


if __name__ == "__main__":
    main()
