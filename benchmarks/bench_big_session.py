"""Benchmark: the whole analysis of a Neuropixels-sized session, and its memory.

Issue #8 asks that a session of 3,000 units × 2,000 trials × 50 bins goes
through every step of ``errsig analyze`` in under 4 GB. This benchmark

1. simulates a ``mixed`` session of that size (``sim.simulate``) in a child
   process and writes it as NWB (the simulator's own memory is printed but is
   not the target);
2. in a fresh child process, does what ``errsig analyze FILE --bin-size 0.02``
   does — ``read_nwb``, then :func:`errsig.analyze.analyze_session` with every
   step (50 bins of 20 ms from -0.2 to 0.8 s around feedback) and
   :func:`errsig.analyze.write_results` — and prints the peak resident memory
   (``ru_maxrss``) after reading and at the end, the time of each step, and the
   peak as a multiple of the data: the spike times (8 bytes a spike) and the
   counts as int32 (4 bytes a cell), which is what holding them as
   ``bin_trials`` returns them would take.

The reference is the data itself: a tool that held the spikes and an int32
copy of the counts, and nothing else, would sit at 1.0× of the printed data
size. The surrogate counts are the analysis defaults except where the flags
say otherwise; the onset bootstrap repeats the area step once per draw and is
off by default here (``--n-boot-onset``), since at 3,000 units each area step
takes minutes (one SVD per area and bin).

Run: ``.venv/bin/python benchmarks/bench_big_session.py [--units 3000]
[--trials 2000] [--file big.nwb] [--steps information,tuning]``; ``--file``
keeps the simulated file for another run. Decoding the outcome is the slow
step at this size (an hour on 2 cores with 100 surrogates), hence ``--steps``;
the figures in docs/scale.md were run with ``--n-perm-decoding 100
--n-perm-coupling 100 --n-boot-onset 10``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

SIMULATE_CHILD = """
import resource, sys, time
import sim
from errsig import write_nwb
start = time.perf_counter()
session = sim.simulate("mixed", rng=0, n_units={n_units}, n_trials={n_trials})
write_nwb(session, {path!r})
print(len(session.spike_times), time.perf_counter() - start,
      resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6)
"""

ANALYZE_CHILD = """
import json, logging, resource, sys, time
from errsig import read_nwb
from errsig.analyze import AnalysisConfig, analyze_session, write_results

def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6

marks = []
class Steps(logging.Handler):
    def emit(self, record):
        marks.append((time.perf_counter(), record.getMessage(), peak()))
        moment, message, memory = marks[-1]
        print("  %7.1f s  %.2f GB  %s" % (moment - start, memory, message[:60]),
              file=sys.stderr, flush=True)

start = time.perf_counter()
handler = Steps(level=logging.INFO)
for name in ("errsig.analyze", "errsig.tuning", "errsig.decoding"):
    logging.getLogger(name).addHandler(handler)
    logging.getLogger(name).setLevel(logging.INFO)
session = read_nwb({path!r})
after_read = peak()
read_seconds = time.perf_counter() - start
config = AnalysisConfig(bin_size=0.02, **{settings})
tree = analyze_session(session, config)
write_results(tree, {output!r})
marks.append((time.perf_counter(), "done", peak()))
steps = [
    (message, later - earlier, memory)
    for (earlier, message, _), (later, _, memory) in zip(marks, marks[1:])
]
print(json.dumps(dict(
    n_spikes=len(session.spike_times), n_units=session.n_units,
    n_trials=session.n_trials, after_read=after_read, read_seconds=read_seconds,
    peak=peak(), seconds=time.perf_counter() - start, steps=steps,
)))
"""


def run_child(code):
    completed = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code], stdout=subprocess.PIPE, text=True
    )
    if completed.returncode:
        sys.exit(f"child failed with status {completed.returncode}")
    return completed.stdout.strip().splitlines()[-1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=3000)
    parser.add_argument("--trials", type=int, default=2000)
    parser.add_argument("--file", help="NWB file to reuse or create")
    parser.add_argument("--n-perm", type=int, default=500)
    parser.add_argument("--n-perm-decoding", type=int, default=20)
    parser.add_argument("--n-perm-coupling", type=int, default=20)
    parser.add_argument("--n-boot-onset", type=int, default=0)
    parser.add_argument(
        "--steps",
        default="information,decoding,tuning,classification",
        help="comma-separated analysis steps (decoding the outcome of 3,000 "
        "units takes about an hour on 2 cores)",
    )
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="errsig-big-"))
    path = Path(args.file) if args.file else folder / "big.nwb"

    if not path.exists():
        print(f"simulating {args.units} units × {args.trials} trials", flush=True)
        line = run_child(
            SIMULATE_CHILD.format(
                n_units=args.units, n_trials=args.trials, path=str(path)
            )
        )
        n_spikes, seconds, peak = map(float, line.split())
        print(
            f"  {int(n_spikes):,} spikes in {seconds:.0f} s (simulator peak "
            f"{peak:.1f} GB, not part of the target)",
            flush=True,
        )

    settings = dict(
        n_perm=args.n_perm,
        n_perm_decoding=args.n_perm_decoding,
        n_perm_coupling=args.n_perm_coupling,
        n_boot_onset=args.n_boot_onset,
        steps=tuple(args.steps.split(",")),
    )
    print(f"analysing {path.name}: every step, 50 bins, {settings}", flush=True)
    result = json.loads(
        run_child(
            ANALYZE_CHILD.format(
                path=str(path), settings=settings, output=str(folder / "results.nc")
            )
        )
    )

    spikes_gb = 8 * result["n_spikes"] / 1e9
    counts_gb = 4 * result["n_units"] * result["n_trials"] * 50 / 1e9
    data_gb = spikes_gb + counts_gb
    print(f"\n{'step':<34}{'seconds':>9}{'peak RSS by its end (GB)':>26}")
    print(
        f"{'read_nwb':<34}{result['read_seconds']:>9.1f}{result['after_read']:>26.2f}"
    )
    for message, seconds, memory in result["steps"]:
        print(f"{message[:33]:<34}{seconds:>9.1f}{memory:>26.2f}")
    print(
        f"\n{result['n_units']} units × {result['n_trials']} trials × 50 bins, "
        f"{result['n_spikes']:,} spikes: whole analysis {result['seconds']:.0f} s, "
        f"peak resident memory {result['peak']:.2f} GB (target < 4 GB)"
    )
    print(
        f"data: spikes {spikes_gb:.2f} GB + int32 counts {counts_gb:.2f} GB = "
        f"{data_gb:.2f} GB; peak / data = {result['peak'] / data_gb:.2f}×"
    )


if __name__ == "__main__":
    main()
