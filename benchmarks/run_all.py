"""Run the benchmark set in one go: ``make bench`` (``--quick``) or ``make bench-full`` (``--full``).

Quick (an estimated 17 min on 2 idle cores; 13 min measured before bench_sensitivity joined it): the per-epoch
speed table on CA1 (``bench_core.py --quick``), the end-to-end comparison of every method on the
small planted recording with peers capped, a coarse accuracy grid, and convseq_neo on the paper's
recipe on CA1 (``bench_peers.py --quick``), ``detect`` end to end on a 300-unit, 5-minute synthetic
session, planted and null (``bench_session.py --quick``), and weak sequences against the paper's
in-sample pattern on two cells of the CA1 crop, two 15-member sequences through ``detect``, short
recordings and a short sequence (``bench_sensitivity.py --quick``), and 8 NWB sessions annotated by
``annotate_many`` with 1 and 2 dask worker processes, then re-run (``bench_batch.py``, about 5 more minutes),
and two or three disjoint sequences learned as separate patterns over 20 seeds (``bench_patterns.py``, about
3 more minutes).

Full (hours): ``bench_core.py`` (whole fits), ``bench_peers.py --full`` (full grid, the paper's recipe
with every peer, 10-minute cap per peer run), ``bench_scaling.py`` (scaling of the event path),
``bench_ca1.py`` (the CA1 place-cell analysis over five seeds), ``bench_null.py`` (false detections on
the null suite, seeds 0-4), ``bench_planted.py`` (sensitivity on the planted cases, per null),
``bench_session.py`` (``detect`` end to end on a 300-unit, 30-minute session: time, memory, F1, and
false detections over seeds 0-4), ``bench_session_scaling.py`` (the whole detection's time and
memory for 100-1000 units x 10-120 minutes) and ``bench_sensitivity.py --full --resume`` (weak
sequences and several patterns: the whole grid, seeds 0-2; it resumes from the rows already in
``results/bench_sensitivity.jsonl``) and ``bench_objective.py --seeds 0 1 2`` (where weak sequences
are missed: the loss training reaches from random starts against the planted answer, 3 min).

Each script writes its JSON and PNG under ``benchmarks/results/``; this one adds
``run_all[_quick].json`` (the machine, the command, each script's wall time and exit status) and
``run_all[_quick].md`` (the tables, for the README).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="the quick set (default)")
    mode.add_argument("--full", action="store_true", help="the full grid and the scaling study")
    parser.add_argument("--threads", type=int, default=1, help="torch / BLAS threads per method")
    args = parser.parse_args()
    from _common import RESULTS, machine, save

    quick = not args.full
    steps = ([["bench_core.py", "--quick"], ["bench_peers.py", "--quick", "--threads", str(args.threads)],
              ["bench_session.py", "--quick"], ["bench_sensitivity.py", "--quick"], ["bench_batch.py"],
              ["bench_patterns.py"]] if quick
             else [["bench_core.py"], ["bench_peers.py", "--full", "--threads", str(args.threads)],
                   ["bench_scaling.py", "--threads", str(args.threads)], ["bench_ca1.py"],
                   ["bench_null.py", "--jobs", "2"], ["bench_planted.py", "--jobs", "2"], ["bench_session.py"],
                   ["bench_session_scaling.py"], ["bench_sensitivity.py", "--full", "--resume"],
                   ["bench_objective.py", "--seeds", "0", "1", "2"]])
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads),
           "OPENBLAS_NUM_THREADS": str(args.threads)}
    command = " ".join([Path(sys.executable).name, *sys.argv])
    info = machine()
    info["load_average_at_start"] = os.getloadavg()
    print(f"command: {command}\nmachine: {json.dumps(info)}", flush=True)
    started = time.perf_counter()
    runs = []
    for step in steps:
        t0 = time.perf_counter()
        print(f"\n=== {' '.join(step)}", flush=True)
        done = subprocess.run([sys.executable, str(HERE / step[0]), *step[1:]], env=env, cwd=HERE)
        runs.append({"script": " ".join(step), "seconds": time.perf_counter() - t0, "exit": done.returncode})
    total = time.perf_counter() - started
    suffix = "_quick" if quick else ""
    sections = [f"# Benchmarks ({'quick' if quick else 'full'})\n", f"Command: `{command}` (from the repository root: "
                f"`make {'bench' if quick else 'bench-full'}`)\n", f"Machine: `{json.dumps(info)}`\n",
                f"Total wall time: {total:.0f} s; load average at the end: {os.getloadavg()}\n"]
    for name in ("bench_core", "bench_peers", "bench_scaling", "bench_ca1", "bench_session", "bench_session_scaling",
                 "bench_sensitivity", "bench_batch", "bench_patterns"):
        quick_only = name in ("bench_batch", "bench_patterns")  # run in the quick set only, one file
        path = RESULTS / (f"{name}.json" if quick_only else f"{name}{suffix}.json")
        if not path.exists() or (quick_only and not quick):
            continue
        payload = json.loads(path.read_text())
        if name == "bench_core":
            lines = ["| raster | events (sparse Toeplitz) | events (streaming) | dense conv1d | events vs dense |",
                     "|---|---|---|---|---|"]
            for row in payload.get("speed", []):
                lines.append(f"| {row['raster']}, {row['nnz']:,} events | {row['events_csr'] * 1e3:.1f} ms | "
                             f"{row['events_stream'] * 1e3:.1f} ms | {row['dense_conv1d'] * 1e3:,.0f} ms | "
                             f"{row['speedup_csr_vs_dense']:.0f}x |")
            sections.append("## Per-epoch speed (bench_core.py)\n\n" + "\n".join(lines) + "\n")
        elif name == "bench_ca1":
            sections.append(f"## bench_ca1.py\n\n{payload['summary']}\n")
        else:
            sections.append(f"## {name}.py\n\n```\n{payload.get('text', payload.get('table', ''))}\n```\n")
    sections.append("## Steps\n\n" + "\n".join(f"- `{r['script']}`: {r['seconds']:.0f} s, exit {r['exit']}"
                                                for r in runs) + "\n")
    (RESULTS / f"run_all{suffix}.md").write_text("\n".join(sections))
    save(f"run_all{suffix}", {"runs": runs, "total_seconds": total, "load_average_at_end": os.getloadavg(),
                              "machine_extra": info})
    print(f"\nwrote {RESULTS / f'run_all{suffix}.md'}; total {total:.0f} s")
    if any(r["exit"] for r in runs):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
