"""End-to-end benchmark on a Neuropixels-sized session: ``convseq_neo.detect`` on 300 units x 30 min.

Run::

    .venv/bin/python benchmarks/bench_session.py            # full: planted seed 0 + null seeds 0-4 (hours on 2 cores)
    .venv/bin/python benchmarks/bench_session.py --quick    # 300 units x 5 min, planted only

The session is :func:`convseq_neo.synthetic.session.session_recording`: ``--units`` independent
Poisson units (log-normal rates, median 4 Hz, sigma 0.8, clipped to 0.2-40 Hz) over ``--minutes``,
with one sequence of 30 units (20 ms apart, participation 0.7, jitter 5 ms) planted
``--occurrences`` times (default 3 per minute: 90 in 30 min, 15 in 5 min), onsets at least 1.5 s
apart. Detection is the whole pipeline at the package defaults except the time scales:
``convseq_neo.detect(spiketrains, bin_size=10 ms, width=0.8 s, random_state=seed, device=--device)``,
plus ``n_jobs=--jobs`` when ``detect`` (or the ``ConvSeq`` it forwards its options to) has an
``n_jobs`` parameter (``--set KEY=VALUE`` adds other options, for smoke tests only; the run then
says so, and its numbers are not the benchmark's). The planted run uses seed 0; the null runs
detect on the same kind of session without the sequence (``plant=False``) for each of ``--seeds``
(default 0-4); every significant occurrence there is a false one.

Each run is its own subprocess (this script with a hidden ``--child`` flag), so its peak memory is
its own: the child's kernel high-water mark (``VmHWM`` in ``/proc/self/status``; ``ru_maxrss`` where
there is no ``/proc``), in MB, read at the end of the run; worker processes the child may have
started are reported separately (``peak_workers_mb``, the largest one, from ``RUSAGE_CHILDREN``).

Reported per run: the wall time of ``detect`` (own timer) and, when the fitted model has a
``timings_`` dict, its ``total`` and its split into ``binning``, ``training``, ``significance`` and
``membership`` seconds (without it, only the wall time); epochs per pattern (``model.n_epochs_``),
filter passes (``model.n_filter_passes_`` when present), significant occurrences, and for the
planted run the match of their centres to the true centres within 0.15 s (hits, false, precision,
recall, F1, :func:`convseq_neo.synthetic.evaluate.match_events`) and the recovered members.

Targets (checked and printed as PASS / MISS, never adjusted): planted run, wall time of ``detect``
< 300 s, F1 >= 0.9 and peak memory < 4096 MB; null runs, at most 1 significant occurrence in total
over the seeds. They are stated for the full session; ``--quick`` checks them on the smaller one.

Writes ``benchmarks/results/bench_session.json`` (``bench_session_quick.json`` with ``--quick``):
the machine, the command, torch's version and threads, the parameters, every run and the verdicts.
The exit status is 1 when a run failed or timed out (a MISS is not a failure), else 0.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

BIN_SIZE_MS = 10.0
WIDTH_S = 0.8
TOLERANCE_S = 0.15
OCCURRENCES_PER_MINUTE = 3
PHASES = ("binning", "training", "significance", "membership")

#: The targets, for the full session (300 units x 30 min). Reported, never changed.
TARGET_TOTAL_S = 300.0
TARGET_F1 = 0.9
TARGET_PEAK_MB = 4096.0
TARGET_NULL_FALSE = 1


# ---------------------------------------------------------------------------------------------
# child: one run
# ---------------------------------------------------------------------------------------------
def _peak_mb() -> tuple[float, float]:
    """(this process's peak resident memory, the largest reaped child's), MB."""
    import resource

    own = None
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    own = int(line.split()[1]) / 1024.0
                    break
    except OSError:
        pass
    scale = 1024.0 * 1024.0 if sys.platform == "darwin" else 1024.0  # ru_maxrss: bytes on macOS, KB on Linux
    if own is None:
        own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale
    return own, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / scale


def _accepts_n_jobs() -> bool:
    """Whether ``detect`` takes ``n_jobs``: its own parameter, or one of the ``ConvSeq`` it forwards options to."""
    import inspect

    import convseq_neo
    from convseq_neo.core.estimator import ConvSeq

    return ("n_jobs" in inspect.signature(convseq_neo.detect).parameters
            or "n_jobs" in inspect.signature(ConvSeq.__init__).parameters)


def _plain(value):
    """A JSON-friendly copy of an attribute that may be an array, a number or None."""
    import numpy as np

    if value is None:
        return None
    array = np.asarray(value)
    if array.dtype.kind in "iub":
        return array.astype(int).tolist()
    if array.dtype.kind == "f":
        return array.astype(float).tolist()
    return [str(v) for v in array.reshape(-1)] if array.ndim else str(value)


def child_main(args) -> None:
    """Make one session, detect on it, print one ``RESULT {json}`` line."""
    import numpy as np
    import quantities as pq
    import torch

    import convseq_neo
    from convseq_neo.synthetic.evaluate import match_events
    from convseq_neo.synthetic.session import session_recording

    row = {"kind": "planted" if args.plant else "null", "seed": args.seed, "units": args.units,
           "minutes": args.minutes, "occurrences_asked": args.occurrences if args.plant else 0,
           "device": args.device, "torch_threads": torch.get_num_threads()}
    try:
        started = time.perf_counter()
        session = session_recording(args.units, args.minutes * pq.min, n_occurrences=args.occurrences,
                                    plant=bool(args.plant), random_state=args.seed)
        row.update(generate_s=time.perf_counter() - started, n_spikes=session.n_spikes, n_units=session.n_units,
                   duration_s=session.duration_s, n_true=session.n_occurrences)
        kwargs = {"bin_size": BIN_SIZE_MS * pq.ms, "width": WIDTH_S * pq.s, "n_patterns": 1, "random_state": args.seed,
                  "device": args.device}
        if _accepts_n_jobs():
            kwargs["n_jobs"] = args.jobs
        extra = parse_options(args.set)
        kwargs.update(extra)
        row["detect_options"] = {key: repr(value) for key, value in extra.items()}
        row["n_jobs"] = kwargs.get("n_jobs")
        started = time.perf_counter()
        result = convseq_neo.detect(session.spiketrains, **kwargs)
        wall = time.perf_counter() - started
        model = result.model
        timings = getattr(model, "timings_", None)
        row["wall_s"] = wall
        if isinstance(timings, dict):
            row["timings_source"] = "model.timings_"
            row["total_s"] = float(timings.get("total", wall))
            row["phases_s"] = {phase: float(timings[phase]) for phase in PHASES if phase in timings}
        else:
            row["timings_source"] = "wall clock around detect (the model has no timings_)"
            row["total_s"] = wall
            row["phases_s"] = None
        row["epochs"] = _plain(getattr(model, "n_epochs_", None))
        row["stop_reasons"] = _plain(getattr(model, "stop_reason_", None))
        row["filter_passes"] = _plain(getattr(model, "n_filter_passes_", None))
        detected = result.occurrences["center"].to_numpy(dtype=float)
        row["n_significant"] = int(detected.size)
        match = match_events(detected, session.centres, TOLERANCE_S)
        row.update(hits=match.n_hits, false=match.n_false, misses=match.n_misses, precision=match.precision,
                   recall=match.recall, f1=match.f1,
                   median_abs_error_s=None if np.isnan(match.median_abs_error) else match.median_abs_error)
        found = result.membership.loc[result.membership["member"].astype(bool), "neuron"].to_numpy(dtype=int)
        row["n_members_detected"] = int(found.size)
        if session.members.size:
            row["members_recovered"] = int(np.isin(session.members, found).sum())
            row["n_members_true"] = int(session.members.size)
    except Exception as error:  # reported in the table, not fatal to the other runs
        row["error"] = f"{type(error).__name__}: {error}"
    own, workers = _peak_mb()
    row.update(peak_mb=own, peak_workers_mb=workers)
    if args.device.startswith("cuda") and torch.cuda.is_available():
        row["cuda_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
    print("RESULT " + json.dumps(row, default=float), flush=True)


# ---------------------------------------------------------------------------------------------
# parent
# ---------------------------------------------------------------------------------------------
def kill_group(process: subprocess.Popen) -> None:
    """Kill the process group of a run started with ``start_new_session`` (only that group) and reap it."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.communicate()


def exit_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit, so that a stopped parent kills its current run on the way out."""
    def handler(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


def parse_options(options: list[str]) -> dict:
    """``["max_epochs=100", "alpha=0.01"]`` -> ``{"max_epochs": 100, "alpha": 0.01}`` (values as Python literals)."""
    import ast

    parsed = {}
    for option in options:
        key, sep, value = option.partition("=")
        if not sep or not key.isidentifier():
            raise ValueError(f"--set takes KEY=VALUE, got {option!r}")
        try:
            parsed[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            parsed[key] = value
    return parsed


def run_child(units: int, minutes: float, occurrences: int, seed: int, plant: bool, jobs: int, device: str,
              timeout: float, detect_options: list[str] = ()) -> dict:
    """Run one case in a fresh subprocess (its own process group, killed whole at ``timeout``)."""
    case = {"kind": "planted" if plant else "null", "seed": seed, "units": units, "minutes": minutes}
    command = [sys.executable, str(Path(__file__).resolve()), "--child", "--units", str(units), "--minutes",
               str(minutes), "--occurrences", str(occurrences), "--seed", str(seed), "--plant", str(int(plant)),
               "--jobs", str(jobs), "--device", device]
    for option in detect_options:
        command += ["--set", option]
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(process)
        return {**case, "status": f"timed out after {timeout:.0f} s", "timed_out": True,
                "error": f"stopped at {timeout:.0f} s", "process_s": time.perf_counter() - started}
    except BaseException:  # Ctrl-C or SIGTERM (see main): never leave the run behind
        kill_group(process)
        raise
    elapsed = time.perf_counter() - started
    for line in stdout.splitlines():
        if line.startswith("RESULT "):
            row = json.loads(line[len("RESULT "):])
            return {"status": "failed" if "error" in row else "ok", **row, "process_s": elapsed}
    tail = stderr.strip().splitlines()[-1][-300:] if stderr.strip() else ""
    return {**case, "status": f"failed (exit {process.returncode})", "error": tail, "process_s": elapsed}


def _seconds(value) -> str:
    return "-" if value is None else f"{value:.1f}"


HEADER = (f"{'run':>7} {'seed':>4} {'units':>5} {'min':>5} {'spikes':>10} {'wall s':>8} {'binning':>8} "
          f"{'training':>8} {'signif.':>8} {'members':>8} {'epochs':>7} {'passes':>7} {'signif':>6} {'hits':>5} "
          f"{'false':>5} {'prec':>5} {'recall':>6} {'F1':>5} {'peak MB':>8}")


def format_row(row: dict) -> str:
    if row.get("status") != "ok":
        return f"{row['kind']:>7} {row['seed']:>4} {row['units']:>5} {row['minutes']:>5g}  {row['status'].upper()}: " \
               f"{row.get('error', '')}"
    phases = row.get("phases_s") or {}
    epochs = ",".join(str(e) for e in row["epochs"]) if isinstance(row.get("epochs"), list) else "-"
    passes = row.get("filter_passes")
    passes = "-" if passes is None else (",".join(map(str, passes)) if isinstance(passes, list) else str(passes))
    return (f"{row['kind']:>7} {row['seed']:>4} {row['units']:>5} {row['minutes']:>5g} {row['n_spikes']:>10,} "
            f"{row['wall_s']:>8.1f} {_seconds(phases.get('binning')):>8} {_seconds(phases.get('training')):>8} "
            f"{_seconds(phases.get('significance')):>8} {_seconds(phases.get('membership')):>8} {epochs:>7} "
            f"{passes:>7} {row['n_significant']:>6} {row['hits']:>5} {row['false']:>5} {row['precision']:>5.2f} "
            f"{row['recall']:>6.2f} {row['f1']:>5.2f} {row['peak_mb']:>8.0f}")


def check_targets(rows: list[dict], null_seeds: list[int]) -> list[dict]:
    """One verdict per target (PASS / MISS), from the runs as measured."""
    verdicts = []
    planted = [row for row in rows if row["kind"] == "planted"]
    for row in planted:
        ok = row.get("status") == "ok"
        for target, value, passed, unit in (
                (f"planted seed {row['seed']}: detect wall time < {TARGET_TOTAL_S:g} s", row.get("wall_s"),
                 ok and row["wall_s"] < TARGET_TOTAL_S, "s"),
                (f"planted seed {row['seed']}: F1 >= {TARGET_F1:g} (tolerance {TOLERANCE_S:g} s)", row.get("f1"),
                 ok and row["f1"] >= TARGET_F1, ""),
                (f"planted seed {row['seed']}: peak memory < {TARGET_PEAK_MB:g} MB", row.get("peak_mb"),
                 ok and row["peak_mb"] < TARGET_PEAK_MB, "MB")):
            verdicts.append({"target": target, "value": value, "unit": unit, "verdict": "PASS" if passed else "MISS",
                             "note": "" if ok else row.get("status", "")})
    nulls = [row for row in rows if row["kind"] == "null"]
    if nulls:
        failed = [row["seed"] for row in nulls if row.get("status") != "ok"]
        total = sum(row.get("n_significant", 0) for row in nulls if row.get("status") == "ok")
        verdicts.append({"target": f"null seeds {null_seeds}: <= {TARGET_NULL_FALSE} false occurrence(s) in total",
                         "value": total, "unit": "false", "verdict": "PASS" if not failed and
                         total <= TARGET_NULL_FALSE else "MISS",
                         "note": f"failed seeds {failed}" if failed else ""})
    return verdicts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="300 units x 5 min, planted only")
    parser.add_argument("--units", type=int, help="units (default 300)")
    parser.add_argument("--minutes", type=float, help="session length (default 30, --quick 5)")
    parser.add_argument("--occurrences", type=int,
                        help=f"planted occurrences (default {OCCURRENCES_PER_MINUTE} per minute: 90 in 30 min)")
    parser.add_argument("--seeds", type=int, nargs="+", help="null seeds (default 0 1 2 3 4, --quick none)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="n_jobs for detect, when it has that parameter (default: all cores)")
    parser.add_argument("--device", default="cpu", help="torch device for detect (default cpu)")
    parser.add_argument("--no-null", action="store_true", help="skip the null runs")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per run (default 3600)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="extra detect option, e.g. --set max_epochs=50 (repeatable; for smoke tests: the "
                             "benchmark's numbers and targets are for the package defaults)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--plant", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_main(args)
        return 0

    units = 300 if args.units is None else args.units
    minutes = (5.0 if args.quick else 30.0) if args.minutes is None else args.minutes
    occurrences = round(OCCURRENCES_PER_MINUTE * minutes) if args.occurrences is None else args.occurrences
    seeds = ([] if args.quick else [0, 1, 2, 3, 4]) if args.seeds is None else list(dict.fromkeys(args.seeds))
    if units < 1 or minutes <= 0 or occurrences < 0 or args.jobs < 1 or any(seed < 0 for seed in seeds):
        parser.error("--units, --minutes and --jobs must be positive, --occurrences and --seeds non-negative")
    try:
        extra = parse_options(args.set)
    except ValueError as error:
        parser.error(str(error))
    exit_on_sigterm()

    import torch
    from _common import machine, save

    import convseq_neo

    info = {**machine(), "convseq_neo": convseq_neo.__version__}
    command = " ".join([Path(sys.executable).name, *sys.argv])
    passes_n_jobs = _accepts_n_jobs()
    print("machine:", ", ".join(f"{key}={value}" for key, value in info.items()), flush=True)
    print("command:", command, flush=True)
    print(f"session: {units} units x {minutes:g} min, one sequence of 30 members planted {occurrences} times; "
          f"detect(bin_size={BIN_SIZE_MS:g} ms, width={WIDTH_S:g} s, device={args.device!r}"
          f"{f', n_jobs={args.jobs}' if passes_n_jobs else ''}) at package defaults otherwise"
          f"{'' if passes_n_jobs else ' (detect has no n_jobs: --jobs unused)'}", flush=True)
    if extra:
        print(f"NOT the package defaults: detect also gets {extra} (--set)", flush=True)
    plan = [(0, True)] + ([] if args.no_null else [(seed, False) for seed in seeds])
    rows = []
    started = time.perf_counter()
    for seed, plant in plan:
        print(f"... {'planted' if plant else 'null'} seed {seed}", flush=True)
        row = run_child(units, minutes, occurrences, seed, plant, args.jobs, args.device, args.timeout, args.set)
        rows.append(row)
        if row.get("status") == "ok":
            phases = row.get("phases_s")
            split = (", ".join(f"{k} {v:.1f} s" for k, v in phases.items()) if phases
                     else "no phase split (model has no timings_)")
            print(f"    {row['n_spikes']:,} spikes; detect {row['wall_s']:.1f} s (total {row['total_s']:.1f} s: "
                  f"{split}); epochs {row['epochs']}, filter passes {row['filter_passes']}; "
                  f"{row['n_significant']} significant, {row['hits']} hits, {row['false']} false, "
                  f"F1 {row['f1']:.3f}; peak {row['peak_mb']:.0f} MB", flush=True)
        else:
            print(f"    {row['status']}: {row.get('error', '')}", flush=True)
    wall = time.perf_counter() - started

    verdicts = check_targets(rows, seeds)
    lines = [HEADER, "-" * len(HEADER), *(format_row(row) for row in rows)]
    table = "\n".join(lines)
    checks = [f"{v['verdict']:>4}  {v['target']}: {v['value'] if v['value'] is None else round(v['value'], 3)}"
              f"{' ' + v['unit'] if v['unit'] and v['value'] is not None else ''}"
              f"{' (' + v['note'] + ')' if v['note'] else ''}" for v in verdicts]
    if units != 300 or minutes != 30:
        checks.append(f"(the targets are stated for 300 units x 30 min; this run used {units} units x {minutes:g} min)")
    if extra:
        checks.append(f"(the targets are stated for detect at the package defaults; this run also set {extra})")
    finished = [row for row in rows if row.get("status") == "ok"]
    if not finished:
        timing_note = "no run finished: no timings"
    elif all(row.get("phases_s") for row in finished):
        timing_note = "phase split from result.model.timings_"
    else:
        timing_note = "no phase split: the fitted model has no timings_, only the wall time of detect is known"
    text = "\n".join([table, "", timing_note, "", "targets:", *checks, f"wall time {wall:.1f} s"])
    print("\n" + text, flush=True)

    payload = {"convseq_neo": convseq_neo.__version__, "torch": torch.__version__,
               "torch_threads": torch.get_num_threads(), "machine_extra": info, "cwd": os.getcwd(),
               "parameters": {"units": units, "minutes": minutes, "occurrences": occurrences, "null_seeds": seeds,
                              "planted_seed": 0, "jobs": args.jobs, "n_jobs_passed": passes_n_jobs,
                              "device": args.device, "bin_size_ms": BIN_SIZE_MS, "width_s": WIDTH_S,
                              "tolerance_s": TOLERANCE_S, "timeout_s": args.timeout, "no_null": args.no_null,
                              "quick": args.quick, "detect_options": {k: repr(v) for k, v in extra.items()}},
               "targets": {"total_s": TARGET_TOTAL_S, "f1": TARGET_F1, "peak_mb": TARGET_PEAK_MB,
                           "null_false_total": TARGET_NULL_FALSE},
               "runs": rows, "verdicts": verdicts, "table": table, "text": text, "wall_seconds": wall}
    path = save("bench_session_quick" if args.quick else "bench_session", payload)
    print(f"wrote {path}")
    return 1 if any(row.get("status") != "ok" for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
