"""Null benchmark: false significant occurrences of ``detect`` on recordings with nothing planted.

Run: ``CONVSEQ_DATA_DIR=../shared/data .venv/bin/python benchmarks/bench_null.py [--kinds K ...] [--seeds S ...]
[--jobs N] [--objective normalized] [--second-pass] [--out PATH]``.

For each kind of :mod:`convseq_neo.synthetic.null_suite` (default: all seven) and each seed
(default 0-4) it makes the recording and runs ``convseq_neo.detect(rec.load(), **rec.detect_kwargs(),
random_state=seed, n_patterns=1)`` at the package defaults (alpha 0.05). With ``--auto`` it runs
``detect(trains, t_start=..., t_stop=..., random_state=seed)`` instead, the automatic search of time
scale and number of patterns, and writes ``bench_null_auto.json``. Every significant occurrence
is a false one. It prints one row per run (significant occurrences, member neurons, seconds) and,
per kind, the total over the seeds against the project's claim: **at most 1 significant occurrence
in total over seeds 0-4 for each kind**.

Runs go to ``--jobs`` processes (``concurrent.futures.ProcessPoolExecutor``, spawned); every run,
in a worker or in this process, uses one torch thread. The ``nwb_gap`` files are written to a
temporary folder that is removed at the end. The CA1 kinds need the CA1 files (``CONVSEQ_DATA_DIR``,
default ``../shared/data``); they are never downloaded here.

Writes ``benchmarks/results/bench_null.json`` (``--out``): the machine, the command, every run and
the per-kind verdicts. The exit status is 1 when a run failed (its error is in the table), else 0.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from _common import DATA_DIR, RESULTS, machine

from convseq_neo.synthetic.null_suite import NULL_KINDS

#: The project's claim: at most this many significant occurrences in total over the seeds, per kind.
MAX_TOTAL = 1
DEFAULT_SEEDS = (0, 1, 2, 3, 4)


def _one_thread() -> None:
    import torch

    torch.set_num_threads(1)


def run_one(kind: str, seed: int, directory: str, data_home: str, device: str, surrogates: str = "dither",
            auto: bool = False, objective: str = "variance", second_pass: bool = False) -> dict:
    """Make one null recording and detect on it; the row of the table.

    ``auto``: ``detect`` with its automatic search (time scale and number of patterns), given only the window.
    ``objective``: ``ConvSeq(objective=...)`` of the fits; ``second_pass``: ``ConvSeq(second_pass=...)``.
    """
    _one_thread()
    import convseq_neo
    from convseq_neo.synthetic.null_suite import null_recording

    row = {"kind": kind, "seed": seed}
    try:
        started = time.perf_counter()
        rec = null_recording(kind, seed, directory=directory, data_home=data_home)
        trains = rec.load()
        row["make_seconds"] = time.perf_counter() - started
        row.update(n_neurons=len(trains), n_spikes=int(sum(t.size for t in trains)),
                   t_start_s=float(trains[0].t_start.rescale("s")), t_stop_s=float(trains[0].t_stop.rescale("s")),
                   bin_size_s=float(rec.bin_size.rescale("s")), width_s=float(rec.width.rescale("s")))
        started = time.perf_counter()
        if auto:
            window = {key: value for key, value in rec.detect_kwargs().items() if key in ("t_start", "t_stop")}
            result = convseq_neo.detect(trains, **window, random_state=seed, device=device, surrogates=surrogates,
                                        objective=objective, second_pass=second_pass)
            row["seconds"] = time.perf_counter() - started
            row.update(n_significant=len(result.occurrences), n_members=sum(p.size for p in result.patterns),
                       n_fits=int(result.parameters["n_fits"]),
                       scales_width_s=json.loads(result.parameters["scales_width_s"]))
            return row
        result = convseq_neo.detect(trains, **rec.detect_kwargs(), n_patterns=1, random_state=seed, device=device,
                                    surrogates=surrogates, objective=objective, second_pass=second_pass)
        row["seconds"] = time.perf_counter() - started
        row.update(n_significant=len(result.occurrences), n_members=int(result.membership["member"].sum()),
                   n_candidates=len(result.candidates),
                   min_pvalue=float(result.candidates["pvalue"].min()) if len(result.candidates) else None,
                   epochs=int(result.model.n_epochs_[0]), stop=str(result.model.stop_reason_[0]))
    except Exception as error:  # one failed run is reported, not fatal to the others
        row["error"] = f"{type(error).__name__}: {error}"
    return row


def format_row(row: dict) -> str:
    if "error" in row:
        return f"{row['kind']:>17} {row['seed']:>4}  ERROR {row['error']}"
    return (f"{row['kind']:>17} {row['seed']:>4} {row['n_significant']:>12} {row['n_members']:>8} "
            f"{row['seconds']:>8.1f}")


def verdicts(rows: list[dict], kinds: list[str], seeds: list[int]) -> list[dict]:
    out = []
    for kind in kinds:
        mine = [row for row in rows if row["kind"] == kind]
        failed = [row["seed"] for row in mine if "error" in row]
        total = sum(row.get("n_significant", 0) for row in mine)
        out.append({"kind": kind, "seeds": seeds, "total_significant": total,
                    "total_members": sum(row.get("n_members", 0) for row in mine), "failed_seeds": failed,
                    "meets_claim": not failed and total <= MAX_TOTAL})
    return out


def check_ca1(kinds: list[str], data_home: Path) -> None:
    if not any(kind.startswith("ca1_") for kind in kinds):
        return
    from convseq_neo.io.datasets import fetch_rubin_ca1

    try:
        fetch_rubin_ca1(data_home, download=False)
    except FileNotFoundError as error:
        raise SystemExit(f"{error}\nSet CONVSEQ_DATA_DIR to the folder that holds the CA1 files, or leave the "
                         "ca1_* kinds out with --kinds.") from error


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kinds", nargs="+", choices=NULL_KINDS, default=list(NULL_KINDS), metavar="KIND",
                        help=f"kinds to run (default: all of {', '.join(NULL_KINDS)})")
    parser.add_argument("--seeds", nargs="+", type=int, default=list(DEFAULT_SEEDS),
                        help="seeds (default: 0 1 2 3 4, the seeds of the claim)")
    parser.add_argument("--jobs", type=int, default=1, help="processes (default 1: run here)")
    parser.add_argument("--device", default="auto", help="torch device for detect (default: the package's 'auto')")
    parser.add_argument("--surrogates", choices=("dither", "circular"), default="dither",
                        help="the null's surrogates (default: the package's 'dither'; 'circular' is the first "
                             "release's null)")
    parser.add_argument("--auto", action="store_true",
                        help="detect(trains) with the automatic search of time scale and number of patterns (only "
                             "the window given): the whole search's false occurrences")
    parser.add_argument("--objective", choices=("variance", "normalized"), default="variance",
                        help="ConvSeq(objective=...) of every fit (default: the package's 'variance')")
    parser.add_argument("--second-pass", action="store_true",
                        help="ConvSeq(second_pass=True) in every fit (writes ..._second_pass.json)")
    parser.add_argument("--out", type=Path, help="JSON file to write (default: results/bench_null.json, "
                        "bench_null_circular.json with --surrogates circular, bench_null_auto.json with --auto, "
                        "bench_null_normalized.json with --objective normalized)")
    args = parser.parse_args()
    if args.out is None:
        args.out = RESULTS / ("bench_null.json" if args.surrogates == "dither" else "bench_null_circular.json")
        if args.auto:
            args.out = args.out.with_name(args.out.stem + "_auto.json")
        if args.objective != "variance":
            args.out = args.out.with_name(f"{args.out.stem}_{args.objective}.json")
        if args.second_pass:
            args.out = args.out.with_name(f"{args.out.stem}_second_pass.json")
    if args.jobs < 1:
        parser.error("--jobs must be >= 1")
    if any(seed < 0 for seed in args.seeds):
        parser.error("--seeds must be non-negative")
    kinds = list(dict.fromkeys(args.kinds))
    seeds = list(dict.fromkeys(args.seeds))
    check_ca1(kinds, DATA_DIR)

    import convseq_neo

    _one_thread()
    info = {**machine(), "convseq_neo": convseq_neo.__version__}
    command = " ".join([Path(sys.executable).name, *sys.argv])
    print("machine:", ", ".join(f"{key}={value}" for key, value in info.items()))
    print("command:", command)
    what = "the automatic search" if args.auto else "one pattern at the kind's bin size and width"
    print(f"detect at package defaults, {what} (alpha 0.05, surrogates={args.surrogates!r}, objective="
          f"{args.objective!r}, second_pass={args.second_pass}), {len(kinds)} kind(s) x "
          f"{len(seeds)} seed(s), {args.jobs} process(es), 1 torch thread each")
    header = f"{'kind':>17} {'seed':>4} {'significant':>12} {'members':>8} {'seconds':>8}"
    print(header, flush=True)

    directory = tempfile.mkdtemp(prefix="bench_null_")
    tasks = [(kind, seed, directory, str(DATA_DIR), args.device, args.surrogates, args.auto, args.objective,
              args.second_pass)
             for kind in kinds for seed in seeds]
    rows = []
    started = time.perf_counter()
    try:
        if args.jobs == 1:
            for task in tasks:
                rows.append(run_one(*task))
                print(format_row(rows[-1]), flush=True)
        else:
            import multiprocessing

            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=args.jobs, mp_context=context, initializer=_one_thread) as pool:
                futures = [pool.submit(run_one, *task) for task in tasks]
                for future in as_completed(futures):
                    rows.append(future.result())
                    print(format_row(rows[-1]), flush=True)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    wall = time.perf_counter() - started
    order = {(kind, seed): i for i, (kind, seed, *_) in enumerate(tasks)}
    rows.sort(key=lambda row: order[(row["kind"], row["seed"])])

    summary = verdicts(rows, kinds, seeds)
    print()
    print(header)
    for row in rows:
        print(format_row(row))
    print()
    print(f"per kind, total over seeds {', '.join(map(str, seeds))} (claim: <= {MAX_TOTAL} in total over seeds):")
    print(f"{'kind':>17} {'significant':>12} {'members':>8}  meets claim")
    for entry in summary:
        note = f" (failed seeds {entry['failed_seeds']})" if entry["failed_seeds"] else ""
        print(f"{entry['kind']:>17} {entry['total_significant']:>12} {entry['total_members']:>8}  "
              f"{'yes' if entry['meets_claim'] else 'NO'}{note}")
    if seeds != list(DEFAULT_SEEDS):
        print(f"(the claim is stated for seeds 0-4; this run used {seeds})")
    print(f"wall time {wall:.1f} s")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {"machine": info, "command": command, "cwd": os.getcwd(), "surrogates": args.surrogates,
               "auto": args.auto, "kinds": kinds,
               "seeds": seeds,
               "jobs": args.jobs, "device": args.device, "max_total": MAX_TOTAL, "wall_seconds": wall,
               "runs": rows, "per_kind": summary}
    args.out.write_text(json.dumps(payload, indent=2, default=float))
    print(f"wrote {args.out}")
    return 1 if any("error" in row for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
