"""Null sessions of the simulator on which the tests' false-positive rates run."""

import errsig
import sim


def drifting_null_dataset(seed):
    """S0 (no error or outcome code) with a slower, stronger shared latent.

    The latent drifts so slowly and loads so strongly that drifting units and
    the decaying error magnitude trend together within 120 trials: the nonsense
    correlation that a trial shuffle mistakes for information. Binned in two
    100-ms bins after feedback.
    """
    session = sim.simulate(
        "S0",
        rng=seed,
        n_trials=120,
        n_units=4,
        slow_correlation=0.99,
        slow_variance=2.0,
        global_loading=(0.4, 0.6),
    )
    session.behavior.clear()  # only the counts and the trial variables are used
    return errsig.bin_trials(
        session, align="feedback_time", window=(0.0, 0.2), bin_size=0.1
    )
