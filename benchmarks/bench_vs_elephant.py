"""convseq_neo.detect vs Elephant's SPADE and cell assembly detection (CAD) on the same planted recordings.

Run (once; it takes a while because peers that cannot finish are given the full timeout)::

    .venv/bin/python benchmarks/bench_vs_elephant.py            # full run
    .venv/bin/python benchmarks/bench_vs_elephant.py --quick    # smoke test (small data, short timeouts)

Recordings (``convseq_neo.synthetic.generate``): homogeneous Poisson background (``--rate``, default 5 Hz),
60 s, 5 ms bins, and one planted sequence with 5 ms between consecutive members, 30 occurrences at
random times, participation 0.9, jitter 1 ms:

- ``50n/6seq`` and ``100n/6seq``: 50 or 100 neurons, a 6-neuron sequence (span 25 ms);
- ``200n/100seq``: 200 neurons, a long 100-neuron sequence (span 495 ms), as in the convSeq paper.

Each method also runs on the same background with nothing planted: everything it reports there
is a false detection.

Methods (each gets the window the sequence needs: ``winlen`` bins covering the span):

- ``convseq_neo``: ``detect(trains, bin_size=5 ms, width=2 * span rounded up to 50 ms)``, default
  core options (cross-fitted significance, 200 surrogates, ``alpha=0.05``), ``random_state=0``;
- ``spade``: ``elephant.spade.spade(bin_size=5 ms, winlen, min_spikes=3, min_occ=10, n_surr=0)``
  (no significance test: every mined pattern is reported);
- ``spade+surr``: the same with ``n_surr=100`` dither surrogates and ``alpha=0.05`` (FDR);
- ``cad``: ``elephant.cell_assembly_detection(max_lag=winlen - 1, min_occurrences=10,
  alpha=0.05)``.

Peers run in a subprocess with a wall-clock limit (``--timeout``, default 600 s) and a memory cap
(``--memory-gb``); a peer that hits either is stopped and reported as such, and is not run on
larger recordings or on the background of a recording where it was stopped (and ``spade+surr``,
which starts with the same mining, is not run where ``spade`` was stopped).

Scores: every reported pattern gets an estimated centre per occurrence (convseq_neo: its
``center``; SPADE/CAD: ``times`` + half a bin + mean of ``[0, *lags]``) and is matched one-to-one
with the planted centres (``convseq_neo.synthetic.evaluate.match_events``) at a tolerance of half the
sequence span plus 2 bins. ``best F1`` is the best pattern's event F1 (an oracle choice that
favours methods reporting many patterns); ``members`` is that pattern's true members / its
size / the true size. Times are wall-clock seconds of the call itself (imports and binning
excluded for peers; the whole ``detect`` call for convseq_neo).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import quantities as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))

BIN_S = 0.005
LAG_S = 0.005
PEERS = ("spade", "spade+surr", "cad")


# ---------------------------------------------------------------------------------------------- peers
def _load_trains(path: str):
    import neo

    data = np.load(path)
    times, sizes, t_stop = data["times"], data["sizes"], float(data["t_stop"])
    chunks = np.split(times, np.cumsum(sizes)[:-1])
    return [neo.SpikeTrain(chunk, t_stop=t_stop, units="s") for chunk in chunks]


def _peer_main(args) -> None:
    """Child process: run one peer on one recording and write its patterns as JSON."""
    import resource

    cap = int(args.memory_gb * 1024**3)
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    import elephant.conversion as conversion
    from elephant.cell_assembly_detection import cell_assembly_detection
    from elephant.spade import spade

    trains = _load_trains(args.input)
    bin_size = BIN_S * pq.s
    started = time.perf_counter()
    patterns = []
    if args.peer in ("spade", "spade+surr"):
        n_surr = args.n_surr if args.peer == "spade+surr" else 0
        kwargs = {"alpha": 0.05} if n_surr else {}
        out = spade(trains, bin_size=bin_size, winlen=args.winlen, min_spikes=3, min_occ=10, n_surr=n_surr,
                    **kwargs)
        for pattern in out["patterns"]:
            patterns.append({"neurons": [int(n) for n in pattern["neurons"]],
                             "lags": [float(x) for x in pattern["lags"].rescale(pq.s).magnitude],
                             "times": [float(x) for x in pattern["times"].rescale(pq.s).magnitude]})
    else:
        binned = conversion.BinnedSpikeTrain(trains, bin_size=bin_size)
        out = cell_assembly_detection(binned, max_lag=args.winlen - 1, min_occurrences=10, alpha=0.05)
        for assembly in out:
            lags = np.asarray(pq.Quantity(assembly["lags"]).rescale(pq.s).magnitude if isinstance(
                assembly["lags"], pq.Quantity) else np.asarray(assembly["lags"]) * BIN_S, dtype=float).reshape(-1)
            times = assembly["times"]
            times = times.rescale(pq.s).magnitude if isinstance(times, pq.Quantity) else np.asarray(times) * BIN_S
            patterns.append({"neurons": [int(n) for n in assembly["neurons"]], "lags": [float(x) for x in lags],
                             "times": [float(x) for x in np.asarray(times).reshape(-1)]})
    elapsed = time.perf_counter() - started
    Path(args.output).write_text(json.dumps({"seconds": elapsed, "patterns": patterns}))


def run_peer(peer: str, trains_path: Path, winlen: int, timeout: float, memory_gb: float, n_surr: int,
             workdir: Path) -> dict:
    """Run a peer in its own process group; stop it at the timeout."""
    output = workdir / f"{peer}-{trains_path.stem}.json"
    command = [sys.executable, __file__, "--peer", peer, "--input", str(trains_path), "--output", str(output),
               "--winlen", str(winlen), "--memory-gb", str(memory_gb), "--n-surr", str(n_surr)]
    from _common import run_stoppable

    returncode, stderr, wall = run_stoppable(command, timeout)
    if returncode is None:
        return {"status": f"stopped at {timeout:.0f} s", "seconds": None, "patterns": None}
    if returncode != 0 or not output.exists():
        memory = any(text in stderr for text in ("MemoryError", "Cannot allocate", "bad_alloc")) or \
            returncode in (-9, 137)
        reason = f"out of memory (> {memory_gb:g} GB)" if memory else f"failed (exit {returncode})"
        tail = stderr.strip().splitlines()[-1] if stderr.strip() else ""
        return {"status": reason, "seconds": wall, "patterns": None, "error": tail[-200:]}
    payload = json.loads(output.read_text())
    return {"status": "ok", "seconds": payload["seconds"], "patterns": payload["patterns"]}


# ---------------------------------------------------------------------------------------------- scoring
def pattern_centres(pattern: dict) -> np.ndarray:
    """Estimated occurrence centres of a SPADE/CAD pattern: times + half a bin + mean of [0, *lags]."""
    offsets = np.r_[0.0, np.asarray(pattern["lags"], dtype=float)]
    return np.asarray(pattern["times"], dtype=float) + BIN_S / 2 + offsets.mean()


def score(patterns: list[dict] | None, truth_centres: np.ndarray, members: set[int], tolerance: float) -> dict:
    from convseq_neo.synthetic.evaluate import match_events

    if patterns is None:
        return {}
    best = {"f1": 0.0, "hits": 0, "found": 0, "size": 0}
    for pattern in patterns:
        centres = pattern["centres"] if "centres" in pattern else pattern_centres(pattern)
        match = match_events(centres, truth_centres, tolerance)
        n = len(centres)
        f1 = 2 * match.n_hits / (n + truth_centres.size) if n + truth_centres.size else 0.0
        if f1 > best["f1"]:
            neurons = set(pattern["neurons"])
            best = {"f1": f1, "hits": match.n_hits, "found": len(neurons & members), "size": len(neurons)}
    n_occurrences = int(sum(len(p["times"]) for p in patterns))
    return {"n_patterns": len(patterns), "n_occurrences": n_occurrences, **best}


# ---------------------------------------------------------------------------------------------- recordings
def make_recording(n_neurons: int, n_members: int, duration_s: float, rate_hz: float, seed: int):
    from convseq_neo.synthetic.generate import plant_sequences, poisson_background

    background = poisson_background(n_neurons, rate_hz * pq.Hz, 0 * pq.s, duration_s * pq.s, random_state=seed)
    rng = np.random.default_rng(seed + 1)
    members = rng.choice(n_neurons, n_members, replace=False)
    planted, truth = plant_sequences(background, [members], lag_step=LAG_S * pq.s, n_occurrences=30,
                                     participation=0.9, jitter=1 * pq.ms, random_state=seed + 2)
    return background, planted, truth


def save_trains(trains, path: Path) -> Path:
    sizes = np.array([t.size for t in trains])
    times = np.concatenate([t.rescale("s").magnitude for t in trains])
    np.savez(path, times=times, sizes=sizes, t_stop=float(trains[0].t_stop.rescale("s").magnitude))
    return path


def run_convseq(trains, width_s: float, objective: str = "variance") -> dict:
    from convseq_neo.detect import detect

    started = time.perf_counter()
    result = detect(trains, n_patterns=1, bin_size=BIN_S * pq.s, width=width_s * pq.s, random_state=0,
                    objective=objective)
    elapsed = time.perf_counter() - started
    patterns = []
    for pattern in result.patterns:
        rows = result.occurrences[result.occurrences["pattern"] == pattern.pattern_id]
        if len(rows):
            patterns.append({"neurons": pattern.neurons.tolist(), "centres": rows["center"].to_numpy(),
                             "times": rows["onset"].tolist()})
    return {"status": "ok", "seconds": elapsed, "patterns": patterns}


# ---------------------------------------------------------------------------------------------- main
def _fmt(value, spec="{:.1f}"):
    return "-" if value is None else spec.format(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small data and short timeouts (smoke test)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds before a peer run is stopped")
    parser.add_argument("--memory-gb", type=float, default=8.0, help="memory cap of a peer process")
    parser.add_argument("--rate", type=float, default=5.0, help="background rate in Hz")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for convseq_neo")
    parser.add_argument("--n-surr", type=int, default=100, help="surrogates for spade+surr")
    parser.add_argument("--peer", choices=PEERS, help=argparse.SUPPRESS)
    parser.add_argument("--input", help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
    parser.add_argument("--winlen", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peer:
        _peer_main(args)
        return

    import torch
    from _common import machine, save

    torch.set_num_threads(args.threads)
    duration = 20.0 if args.quick else 60.0
    timeout = min(args.timeout, 60.0) if args.quick else args.timeout
    n_surr = 10 if args.quick else args.n_surr
    setups = [("50n/6seq", 50, 6), ("100n/6seq", 100, 6), ("200n/100seq", 200, 100)]
    if args.quick:
        setups = [("50n/6seq", 50, 6), ("60n/30seq", 60, 30)]
    info = machine()
    try:
        info["cpu_model"] = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                                 if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    info["load_average_at_start"] = os.getloadavg()
    import elephant
    import neo

    info["elephant"], info["neo"] = elephant.__version__, neo.__version__
    command = " ".join([Path(sys.executable).name, *sys.argv])
    print(f"command: {command}\nmachine: {json.dumps(info)}", flush=True)

    rows = []
    stopped: set[str] = set()
    spade_stopped: set[str] = set()  # where spade was stopped: spade+surr mines the same patterns first
    with tempfile.TemporaryDirectory(prefix="bench_vs_elephant_") as tmp:
        workdir = Path(tmp)
        for seed, (label, n_neurons, n_members) in enumerate(setups):
            background, planted, truth = make_recording(n_neurons, n_members, duration, args.rate, seed=10 * seed)
            span = (n_members - 1) * LAG_S
            winlen = int(round(span / BIN_S)) + 1
            width_s = max(0.05, np.ceil(2 * span / 0.05) * 0.05)
            tolerance = span / 2 + 2 * BIN_S
            truth_centres = np.sort(truth.centers.rescale(pq.s).magnitude)
            members = set(int(n) for n in truth.members[0])
            paths = {"planted": save_trains(planted, workdir / f"planted{seed}.npz"),
                     "background": save_trains(background, workdir / f"background{seed}.npz")}
            for method in ("convseq_neo", *PEERS):
                row = {"recording": label, "method": method, "winlen_bins": winlen, "tolerance_s": tolerance}
                for part, trains in (("planted", planted), ("background", background)):
                    if method != "convseq_neo" and method in stopped:
                        row[part] = {"status": "skipped (stopped before)"}
                        continue
                    if method == "spade+surr" and label in spade_stopped:
                        row[part] = {"status": "skipped (mining stopped)"}
                        continue
                    if method == "convseq_neo":
                        outcome = run_convseq(trains, width_s)
                    else:
                        outcome = run_peer(method, paths[part], winlen, timeout, args.memory_gb, n_surr, workdir)
                        if outcome["status"] != "ok":
                            stopped.add(method)
                            if method == "spade":
                                spade_stopped.add(label)
                    scores = score(outcome["patterns"], truth_centres, members, tolerance)
                    row[part] = {"status": outcome["status"], "seconds": outcome["seconds"], **scores,
                                 **({"error": outcome["error"]} if "error" in outcome else {})}
                    print(f"{label:>12} {method:>11} {part:>10}: {row[part]}", flush=True)
                rows.append(row)

    header = (f"{'recording':>12} | {'method':>11} | {'time (s)':>8} | {'status':>24} | {'patterns':>8} | "
              f"{'best F1':>7} | {'members (hit/size/true)':>23} || {'bg time':>7} | {'bg status':>24} | "
              f"{'false patterns':>14} | {'false occ/min':>13}")
    lines = [header, "-" * len(header)]
    for row in rows:
        p, b = row["planted"], row["background"]
        true_size = 6 if "6seq" in row["recording"] else (30 if "30seq" in row["recording"] else 100)
        members = "-" if "found" not in p else f"{p['found']}/{p['size']}/{true_size}"
        false_rate = None if "n_occurrences" not in b else b["n_occurrences"] / (duration / 60.0)
        lines.append(f"{row['recording']:>12} | {row['method']:>11} | {_fmt(p.get('seconds')):>8} | "
                     f"{p['status']:>24} | {_fmt(p.get('n_patterns'), '{:d}'):>8} | {_fmt(p.get('f1'), '{:.2f}'):>7} | "
                     f"{members:>23} || {_fmt(b.get('seconds')):>7} | {b['status']:>24} | "
                     f"{_fmt(b.get('n_patterns'), '{:d}'):>14} | {_fmt(false_rate):>13}")
    table = "\n".join(lines)
    print(f"\ncommand: {command}\nmachine: {json.dumps(info)}\nbackground rate {args.rate:g} Hz, {duration:g} s, "
          f"bins {BIN_S * 1e3:g} ms, lags {LAG_S * 1e3:g} ms, 30 occurrences, peer timeout {timeout:g} s\n\n{table}")
    path = save("bench_vs_elephant_quick" if args.quick else "bench_vs_elephant",
                {"rows": rows, "table": table, "rate_hz": args.rate, "duration_s": duration, "timeout_s": timeout})
    print(f"\nsaved {path}")


if __name__ == "__main__":
    main()
