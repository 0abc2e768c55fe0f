"""The ``make demo`` job: simulate, write, describe, analyse, report.

Run it with ``python -m errsig.demo --output DIR``. It simulates the ``mixed``
scenario (several areas, each with units of known roles), writes it as an NWB
file, describes the file as ``errsig info`` does, analyses it as ``errsig
analyze`` does and writes the report as ``errsig report`` does, then prints
where the report is.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

__all__ = ["run_demo"]

logger = logging.getLogger(__name__)


def run_demo(
    output: str | Path,
    *,
    seed: int = 0,
    n_units: int | None = None,
    n_trials: int | None = None,
) -> Path:
    """Simulate a multi-area session, analyse it and write the report.

    Parameters
    ----------
    output : path
        Folder for ``session.nwb``, ``results.nc`` and ``report/``.
    seed : int, default=0
        Seed of the simulation and of the analyses.
    n_units, n_trials : int, optional
        Size of the simulated session; the scenario's defaults when omitted.

    Returns
    -------
    pathlib.Path
        The report's ``index.html``.
    """
    import sim
    from errsig.analyze import AnalysisConfig, analyze_session, write_results
    from errsig.io import describe_nwb, read_nwb, write_nwb
    from errsig.report import write_report

    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    nwb_path = output / "session.nwb"
    started = time.perf_counter()

    logger.info("simulating the 'mixed' scenario (seed %d)", seed)
    session = sim.simulate("mixed", rng=seed, n_units=n_units, n_trials=n_trials)
    write_nwb(session, nwb_path, overwrite=True)
    logger.info("wrote %s (%.0f s)", nwb_path, time.perf_counter() - started)

    print(describe_nwb(nwb_path))
    recorded = read_nwb(nwb_path)
    tree = analyze_session(recorded, AnalysisConfig(seed=seed), progress=True)
    results = write_results(tree, output / "results.nc")
    logger.info("analysed (%.0f s)", time.perf_counter() - started)

    index = write_report(results, output / "report")
    logger.info("report written (%.0f s)", time.perf_counter() - started)
    return index


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo from the command line.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name.

    Returns
    -------
    int
        The exit status.
    """
    parser = argparse.ArgumentParser(prog="python -m errsig.demo", description=__doc__)
    parser.add_argument("--output", default="demo-output", help="output folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-units", type=int, default=None)
    parser.add_argument("--n-trials", type=int, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    index = run_demo(
        args.output, seed=args.seed, n_units=args.n_units, n_trials=args.n_trials
    )
    print(f"\nThe report is at {index.resolve()}")
    print(f"Open it in a browser: file://{index.resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
