"""The ``errsig`` command line.

Each subcommand is a thin layer over the Python API; what it does is documented
in ``docs/guide.md`` and by ``errsig COMMAND --help``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from errsig._exceptions import ErrsigError

__all__ = ["main"]

logger = logging.getLogger(__name__)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``errsig`` command line and return its exit status.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments, without the program name; ``sys.argv[1:]`` by default.

    Returns
    -------
    int
        0 on success, 2 when the input was bad (the message says why), 1 when
        ``errsig analyze`` of several files wrote the results of some sessions
        but others failed.

    Examples
    --------
    >>> from errsig.cli import main
    >>> main(["--version"])  # doctest: +SKIP
    errsig 0.1.0.dev0
    """
    parser = _build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return args.run(args)
    except ErrsigError as error:
        print(f"errsig {args.command}: error: {error}", file=sys.stderr)
        return 2


def _build_parser() -> argparse.ArgumentParser:
    from errsig import __version__

    parser = argparse.ArgumentParser(
        prog="errsig",
        description="Find error and evaluator signals in spike recordings.",
    )
    parser.add_argument("--version", action="version", version=f"errsig {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more detail")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    info = commands.add_parser(
        "info", help="what is in an NWB file, and what is missing for each analysis"
    )
    info.add_argument("path", help="an NWB file")
    info.add_argument(
        "--area", help="units table column holding each unit's brain area"
    )
    info.add_argument(
        "--columns",
        help="column mapping: a preset name, or a JSON/TOML file of "
        "{errsig name: file column}",
    )
    info.set_defaults(run=_run_info)

    simulate = commands.add_parser(
        "simulate", help="write a synthetic session with known ground truth"
    )
    simulate.add_argument("scenario", help="S0 ... S8, mixed, or a descriptive alias")
    simulate.add_argument("-o", "--output", required=True, help="NWB file to write")
    simulate.add_argument("--seed", type=int, default=None, help="random seed")
    simulate.add_argument("--n-trials", type=int, default=None)
    simulate.add_argument("--n-units", type=int, default=None)
    simulate.add_argument(
        "--no-progress", action="store_true", help="hide the progress bar"
    )
    simulate.set_defaults(run=_run_simulate)

    analyze = commands.add_parser(
        "analyze",
        help="run every analysis on NWB files; one results file (several files "
        "run as one task each on dask.distributed)",
    )
    analyze.add_argument(
        "paths", nargs="+", metavar="path", help="NWB files, one session each"
    )
    analyze.add_argument(
        "--scheduler",
        default=None,
        help="address of a running dask scheduler (e.g. tcp://host:8786); several "
        "files without it run on a local cluster sized to this machine",
    )
    analyze.add_argument(
        "-o", "--output", required=True, help="results file (.nc NetCDF or .zarr)"
    )
    analyze.add_argument("--config", help="TOML file of analysis settings")
    analyze.add_argument(
        "--columns",
        help="column mapping: a preset name, or a JSON/TOML file of "
        "{errsig name: file column}",
    )
    analyze.add_argument("--area", help="units column holding each unit's area")
    analyze.add_argument("--seed", type=int, default=None, help="random seed")
    analyze.add_argument(
        "--n-perm", type=int, default=None, help="surrogates of the information tests"
    )
    analyze.add_argument(
        "--null", default=None, help="null distribution (default pseudosession)"
    )
    analyze.add_argument(
        "--steps",
        default=None,
        help="comma-separated subset of information,decoding,tuning,classification",
    )
    analyze.add_argument(
        "--no-progress", action="store_true", help="hide the progress bars"
    )
    analyze.set_defaults(run=_run_analyze)

    report = commands.add_parser(
        "report", help="figures and a self-contained HTML report of a results file"
    )
    report.add_argument("results", help="results file written by errsig analyze")
    report.add_argument("-o", "--output", required=True, help="report directory")
    report.add_argument(
        "--session",
        default=None,
        help="with the results of several sessions: the file (as given to "
        "analyze) or the position of the session to report",
    )
    report.set_defaults(run=_run_report)
    return parser


def _run_info(args: argparse.Namespace) -> int:
    from errsig.io import describe_nwb, load_column_mapping

    columns = load_column_mapping(args.columns) if args.columns else None
    print(describe_nwb(args.path, columns=columns, area=args.area))
    return 0


def _run_simulate(args: argparse.Namespace) -> int:
    import sim
    from errsig.io import write_nwb

    session = sim.simulate(
        args.scenario,
        rng=args.seed,
        n_trials=args.n_trials,
        n_units=args.n_units,
        progress=not args.no_progress,
    )
    write_nwb(session, args.output)
    logger.info("wrote %s to %s", session, args.output)
    return 0


def _run_analyze(args: argparse.Namespace) -> int:
    from errsig.analyze import (
        AnalysisConfig,
        analyze_session,
        load_config,
        write_results,
    )
    from errsig.io import load_column_mapping, read_nwb

    config = load_config(args.config) if args.config else AnalysisConfig()
    config = config.replace(
        seed=args.seed, n_perm=args.n_perm, null=args.null, steps=args.steps
    )
    columns = load_column_mapping(args.columns) if args.columns else None
    if len(args.paths) == 1 and args.scheduler is None:
        session = read_nwb(args.paths[0], columns=columns, area=args.area)
        logger.info("read %s: %s", args.paths[0], session)
        tree = analyze_session(session, config, progress=not args.no_progress)
    else:
        tree = _analyze_many(args, config, columns)
    write_results(tree, args.output)
    failed = _failed_files(tree)
    if failed:
        print(
            f"errsig analyze: {len(failed)} session(s) failed and are not in "
            f"{args.output}: {', '.join(failed)} (the log above says why)",
            file=sys.stderr,
        )
        return 1
    return 0


def _analyze_many(args: argparse.Namespace, config: object, columns: object):
    from errsig.batch import analyze_many

    options = dict(
        config=config,
        columns=columns,
        area=args.area,
        progress=not args.no_progress,
    )
    if args.scheduler is None:
        return analyze_many(args.paths, **options)
    try:
        from distributed import Client
    except ImportError:
        raise ErrsigError(
            "--scheduler needs dask.distributed; install errsig[dask]."
        ) from None
    try:
        client = Client(args.scheduler, timeout="20s")
    except (OSError, ValueError) as error:
        raise ErrsigError(
            f"--scheduler {args.scheduler}: no dask scheduler answered ({error}); "
            "check the address the scheduler printed when it started."
        ) from None
    with client:
        return analyze_many(args.paths, client=client, **options)


def _failed_files(tree: object) -> list[str]:
    import json

    return [failure["file"] for failure in json.loads(tree.attrs.get("failures", "[]"))]


def _run_report(args: argparse.Namespace) -> int:
    from errsig.report import write_report

    session = args.session
    if session is not None and session.lstrip("-").isdigit():
        session = int(session)
    index = write_report(args.results, args.output, session=session)
    print(f"report: {index}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
