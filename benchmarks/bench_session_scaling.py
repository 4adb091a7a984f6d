"""Scaling of the whole detection (not one epoch) with session size: units x minutes.

Run::

    .venv/bin/python benchmarks/bench_session_scaling.py            # 100/300/1000 units x 10/30/60/120 min (long)
    .venv/bin/python benchmarks/bench_session_scaling.py --quick    # 100/300 units x 5/10 min

Each case is a session of :func:`convseq_neo.synthetic.session.session_recording` (log-normal
Poisson units, median 4 Hz; one 30-member sequence planted 3 times per minute; seed 0) on which
``convseq_neo.detect`` runs end to end with ``bin_size=10 ms``, ``width=0.8 s`` and the package
defaults otherwise (``n_jobs=--jobs`` when ``detect`` has that parameter), exactly as in
``bench_session.py``: each case runs in its own subprocess (``bench_session.py --child``, so both
scripts measure the same thing), stopped at ``--timeout`` seconds; a case that timed out or failed
is recorded as such, never dropped. Per case: the wall time of ``detect``, the phase split from the
fitted model's ``timings_`` (``binning``, ``training``, ``significance``, ``membership``; absent when
the model has no ``timings_``), spikes, epochs and peak resident memory (MB).

The log-log slope of detect's wall time against the spike count is fitted over the finished cases
(``np.polyfit`` on the logs; 1 = proportional to the spikes) and printed. Writes
``benchmarks/results/bench_session_scaling.json`` and ``.png`` (``_quick`` with ``--quick``): seconds
against spikes on log-log axes, one marker per unit count, with the fitted line.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_session import run_child  # noqa: E402

OCCURRENCES_PER_MINUTE = 3
FULL_UNITS = (100, 300, 1000)
FULL_MINUTES = (10, 30, 60, 120)
QUICK_UNITS = (100, 300)
QUICK_MINUTES = (5, 10)
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def run_case(units: int, minutes: float, seed: int, jobs: int, device: str, timeout: float,
             detect_options: list[str] = ()) -> dict:
    """One planted case, run as ``bench_session.py`` runs its own (a fresh process group, killed at ``timeout``)."""
    occurrences = round(OCCURRENCES_PER_MINUTE * minutes)
    row = run_child(units, minutes, occurrences, seed, True, jobs, device, timeout, detect_options)
    return {"occurrences": occurrences, **row}


def fit_slope(rows: list[dict]) -> dict | None:
    """Log-log fit of detect's wall time against spikes over the finished cases (None with < 2 spike counts)."""
    ok = [row for row in rows if row["status"] == "ok"]
    if len({row["n_spikes"] for row in ok}) < 2:
        return None
    spikes = np.array([row["n_spikes"] for row in ok], dtype=float)
    seconds = np.array([row["wall_s"] for row in ok], dtype=float)
    slope, intercept = np.polyfit(np.log(spikes), np.log(seconds), 1)
    return {"slope": float(slope), "intercept": float(intercept), "n_cases": len(ok),
            "x": "spikes", "y": "detect wall time (s)"}


def plot(rows: list[dict], fit: dict | None, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    ok = [row for row in rows if row["status"] == "ok"]
    for index, units in enumerate(sorted({row["units"] for row in rows})):
        sel = [row for row in ok if row["units"] == units]
        if sel:
            ax.scatter([row["n_spikes"] for row in sel], [row["wall_s"] for row in sel],
                       marker=MARKERS[index % len(MARKERS)], s=40, label=f"{units} units")
    if fit is not None:
        spikes = np.array([row["n_spikes"] for row in ok], dtype=float)
        grid = np.geomspace(spikes.min(), spikes.max(), 20)
        ax.plot(grid, np.exp(fit["intercept"]) * grid ** fit["slope"], "k--", lw=1,
                label=f"fit: seconds ~ spikes^{fit['slope']:.2f}")
    stopped = [row for row in rows if row["status"] != "ok"]
    if stopped:
        ax.text(0.02, 0.98, "not finished: " + ", ".join(f"{r['units']} x {r['minutes']:g} min" for r in stopped),
                transform=ax.transAxes, va="top", fontsize=7)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("spikes in the session")
    ax.set_ylabel("detect wall time (s)")
    ax.set_title(title, fontsize=9)
    if ok:
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _seconds(value) -> str:
    return "-" if value is None else f"{value:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help=f"units {list(QUICK_UNITS)} x minutes {list(QUICK_MINUTES)}")
    parser.add_argument("--units", type=int, nargs="+", help=f"unit counts (default {list(FULL_UNITS)})")
    parser.add_argument("--minutes", type=float, nargs="+", help=f"session lengths (default {list(FULL_MINUTES)})")
    parser.add_argument("--seed", type=int, default=0, help="seed of every session and fit (default 0)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="n_jobs for detect, when it has that parameter (default: all cores)")
    parser.add_argument("--device", default="cpu", help="torch device for detect (default cpu)")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per case (default 1800)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="extra detect option passed on to bench_session.py --child (smoke tests only)")
    args = parser.parse_args()
    units_list = list(dict.fromkeys(args.units or (QUICK_UNITS if args.quick else FULL_UNITS)))
    minutes_list = list(dict.fromkeys(args.minutes or (QUICK_MINUTES if args.quick else FULL_MINUTES)))
    if min(units_list) < 1 or min(minutes_list) <= 0 or args.jobs < 1 or args.seed < 0 or args.timeout <= 0:
        parser.error("--units, --minutes, --jobs and --timeout must be positive, --seed non-negative")

    def stop(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)  # a stopped study kills its current case on the way out

    import torch
    from _common import RESULTS, machine, save

    import convseq_neo

    info = {**machine(), "convseq_neo": convseq_neo.__version__, "load_average_at_start": os.getloadavg()}
    command = " ".join([Path(sys.executable).name, *sys.argv])
    print(f"command: {command}\nmachine: {json.dumps(info)}", flush=True)
    if args.set:
        print(f"NOT the package defaults: detect also gets {args.set} (--set)", flush=True)
    print(f"cases: units {units_list} x minutes {minutes_list}, {OCCURRENCES_PER_MINUTE} occurrences per minute, "
          f"seed {args.seed}, timeout {args.timeout:.0f} s per case", flush=True)
    rows = []
    started = time.perf_counter()
    for units in units_list:
        for minutes in minutes_list:
            print(f"... {units} units x {minutes:g} min", flush=True)
            row = run_case(units, minutes, args.seed, args.jobs, args.device, args.timeout, args.set)
            rows.append(row)
            if row["status"] == "ok":
                print(f"    {row['n_spikes']:,} spikes: detect {row['wall_s']:.1f} s, phases {row.get('phases_s')}, "
                      f"epochs {row.get('epochs')}, F1 {row['f1']:.3f}, peak {row['peak_mb']:.0f} MB", flush=True)
            else:
                print(f"    {row['status']}", flush=True)
    wall = time.perf_counter() - started
    fit = fit_slope(rows)

    header = (f"{'units':>5} | {'min':>5} | {'spikes':>11} | {'detect s':>8} | {'binning':>7} | {'training':>8} | "
              f"{'signif.':>7} | {'members':>7} | {'epochs':>6} | {'F1':>5} | {'peak MB':>7} | status")
    lines = [header, "-" * len(header)]
    for row in rows:
        if row["status"] != "ok":
            lines.append(f"{row['units']:>5} | {row['minutes']:>5g} | {'':>11} | {'':>8} | {'':>7} | {'':>8} | "
                         f"{'':>7} | {'':>7} | {'':>6} | {'':>5} | {'':>7} | {row['status']}")
            continue
        phases = row.get("phases_s") or {}
        epochs = ",".join(map(str, row["epochs"])) if isinstance(row.get("epochs"), list) else "-"
        lines.append(f"{row['units']:>5} | {row['minutes']:>5g} | {row['n_spikes']:>11,} | {row['wall_s']:>8.1f} | "
                     f"{_seconds(phases.get('binning')):>7} | {_seconds(phases.get('training')):>8} | "
                     f"{_seconds(phases.get('significance')):>7} | {_seconds(phases.get('membership')):>7} | "
                     f"{epochs:>6} | {row['f1']:>5.2f} | {row['peak_mb']:>7.0f} | ok")
    table = "\n".join(lines)
    slope_line = (f"log-log slope of detect wall time vs spikes: {fit['slope']:.3f} over {fit['n_cases']} finished "
                  "cases (1 = proportional)" if fit else "log-log slope: fewer than 2 finished cases, no fit")
    text = f"{table}\n\n{slope_line}\nwall time {wall:.1f} s"
    print("\n" + text, flush=True)

    name = "bench_session_scaling_quick" if args.quick else "bench_session_scaling"
    RESULTS.mkdir(exist_ok=True)
    png = RESULTS / f"{name}.png"
    plot(rows, fit, png, f"convseq_neo.detect end to end (10 ms bins, 0.8 s width, {args.device})"
         + (f"\nNOT the package defaults: {' '.join(args.set)}" if args.set else ""))
    path = save(name, {"convseq_neo": convseq_neo.__version__, "torch": torch.__version__,
                       "torch_threads": torch.get_num_threads(), "machine_extra": info,
                       "parameters": {"units": units_list, "minutes": minutes_list, "seed": args.seed,
                                      "jobs": args.jobs, "device": args.device, "timeout_s": args.timeout,
                                      "occurrences_per_minute": OCCURRENCES_PER_MINUTE, "quick": args.quick,
                                      "detect_options": args.set},
                       "rows": rows, "fit": fit, "table": table, "text": text, "wall_seconds": wall,
                       "load_average_at_end": os.getloadavg()})
    print(f"wrote {path} and {png}")


if __name__ == "__main__":
    main()
