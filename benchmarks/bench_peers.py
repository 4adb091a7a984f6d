"""convseq_neo against its peers on the same recordings: accuracy at a matched false rate, and speed.

Run::

    CONVSEQ_DATA_DIR=../shared/data .venv/bin/python benchmarks/bench_peers.py --quick   # part of `make bench`
    CONVSEQ_DATA_DIR=../shared/data .venv/bin/python benchmarks/bench_peers.py --full    # `make bench-full`

Recordings (all in bins of the CA1 recording's 50 ms frames; ``W = 200`` bins, tolerance 50 bins):

- background: the CA1 raster (Rubin et al. 2019; 452 x 18,137) with every neuron's inter-spike
  intervals shuffled (``shuffle_isis_raster``), i.e. nothing in it; the *small* recordings use its
  first ``--crop`` bins (default 6,000 bins = 5 min);
- planted: on that background, a 120-neuron sequence (members 1 bin apart) starting every 400
  bins, each member spike kept with probability ``participation`` and jittered by
  ``N(0, jitter^2)`` bins (``_common.planted_sequence``), over a grid of participation (0.9 to
  0.3) and jitter (5 to 30 bins);
- the paper's own recipe (``reference_recipe``: seqlen 120, p_drop 0.1, gap 400, jitter 10) on
  the whole background.

Methods:

- ``convseq_neo``: ``ConvSeq(width=200, random_state=0)`` with its defaults (cross-fitted
  significance, 200 surrogates, ``alpha=0.05``). Score of a candidate peak: ``-log10(p)`` (ties
  broken by peak height).
- ``convSeq (paper)``: the paper's published compute pattern, re-implemented here: a full-raster
  2-D convolution with ``N x W`` kernels, full-batch Adam at lr 0.1 for 4,000 epochs, and the
  random-filter null (15,000 filters, threshold mean + 5 SD). Its *time* is measured on a few
  epochs and a few hundred null filters and extrapolated (``extrapolated: true`` in the JSON).
  Its *accuracy* comes from the same training (4,000 epochs, no stopping rule, no re-centring,
  one initialisation) run through the event path, which computes the same responses to float
  tolerance; occurrences are ``find_peaks(response, distance=W)``, scored by peak height; its own
  figure uses the random-filter threshold.
- ``seqNMF``: the PyPI package ``seqnmf`` (``K=1``, ``L=W``, ``Lambda=0.001`` as in its README);
  occurrences are the peaks of H at least L apart, shifted to the factor's centre of mass, scored
  by ``H[t] * sum(W)`` (the spikes the occurrence explains).
- Elephant's ``spade`` (no test), ``spade+surr`` (dither surrogates, FDR 0.05) and ``cad`` (cell
  assembly detection), run by ``bench_vs_elephant.run_peer``; frames are given to them as 5 ms
  bins (time rescaled so that one frame is one of their bins; both work on bins), ``winlen`` = the
  sequence span. They have no tunable score: their own false rate is reported beside their F1
  (best pattern, an oracle choice).

Matched false rate: on the background with nothing planted, each method with a score is fit and its
threshold set so that it makes at most ``--false-rate`` false detections per minute (default 0.5,
i.e. ``floor(0.5 * minutes)`` detections); that threshold is then applied to its fit on each planted
recording. It is never tuned on the planted ground truth.

Every peer run (seqNMF, dense timing, Elephant) is a subprocess stopped at ``--timeout`` seconds and
reported as "did not finish"; a peer stopped once is not run again on recordings of the same size.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
# _common does not import torch at the top, so the seqNMF worker processes stay free of it
from _common import (  # noqa: E402
    REF_EPOCHS,
    RESULTS,
    WIDTH,
    ca1_raster,
    dense_epoch_times,
    epoch_time,
    machine,
    planted_sequence,
    run_stoppable,
    save,
)

TOLERANCE = 50
FRAME_S = 0.05
N_MEMBERS = 120
GAP = 400
DENSE_KEYS = ("per_null_filter_s", "null_filters_timed", "epochs_timed", "train_s_extrapolated",
              "null_s_extrapolated", "max_rss_gb")
COLORS = {"convseq_neo": "#0072B2", "convSeq (paper)": "#E69F00", "seqNMF": "#009E73", "spade": "#CC79A7",
          "spade+surr": "#D55E00", "cad": "#56B4E9"}


# ---------------------------------------------------------------------------------------------- workers
def _seqnmf_function():
    """``seqnmf.seqnmf`` and the import error of ``import seqnmf`` (None if it imported cleanly).

    seqnmf 0.1.2's ``__init__`` imports ``pkg_resources`` only to locate its example data; that
    module is gone from setuptools >= 81. If the plain import fails, the package's own, unmodified
    ``seqnmf.py`` and ``helpers.py`` are loaded without running that ``__init__``.
    """
    import importlib.util
    import types

    try:
        import seqnmf

        return seqnmf.seqnmf, None
    except Exception as err:  # noqa: BLE001 - record whatever breaks the import
        error = f"{type(err).__name__}: {err}"
    sys.modules.pop("seqnmf", None)
    spec = importlib.util.find_spec("seqnmf")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"seqnmf is not installed ({error})")
    package = types.ModuleType("seqnmf")
    package.__path__ = list(spec.submodule_search_locations)
    sys.modules["seqnmf"] = package
    from seqnmf.seqnmf import seqnmf as function

    return function, error


def _worker_seqnmf(raster: np.ndarray, params: dict) -> dict:
    from scipy.signal import find_peaks

    function, import_error = _seqnmf_function()
    # seqnmf's own default initialisation, drawn from a seeded generator instead of numpy's global one
    rng = np.random.default_rng(params.get("seed", 0))
    data = raster.astype(float)
    n_neurons, n_padded = data.shape[0], data.shape[1] + 2 * params["L"]
    w_init = data.max() * rng.random((n_neurons, params["K"], params["L"]))
    h_init = data.max() * rng.random((params["K"], n_padded)) / np.sqrt(n_padded / 3)
    started = time.perf_counter()
    factors, loadings_h, cost, _, power = function(data, K=params["K"], L=params["L"], Lambda=params["Lambda"],
                                                   max_iter=params["max_iter"], W_init=w_init, H_init=h_init)
    seconds = time.perf_counter() - started
    centres, scores = [], []
    for k in range(factors.shape[1]):
        profile = factors[:, k, :].sum(axis=0)
        excess = np.clip(profile - np.median(profile), 0, None)
        centre = float((excess * np.arange(profile.size)).sum() / excess.sum()) if excess.sum() > 0 else \
            (profile.size - 1) / 2
        peaks, _ = find_peaks(loadings_h[k], distance=params["L"])
        # reconstruct(): H[t] places factor column j at t + j - 1
        centres.extend((peaks - 1 + centre).tolist())
        scores.extend((loadings_h[k, peaks] * factors[:, k, :].sum()).tolist())
    return {"seconds": seconds, "centres": centres, "scores": scores, "import_error": import_error,
            "iterations": int(len(cost) - 1), "final_cost": float(np.ravel(cost)[-1]), "power": float(power)}


def _worker_main(args) -> None:
    import resource

    params = json.loads(args.params)
    if params.get("memory_gb"):
        cap = int(params["memory_gb"] * 1024**3)
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    raster = np.load(args.input)["raster"]
    if args.worker == "seqnmf":
        out = _worker_seqnmf(raster, params)
    else:
        import torch

        torch.set_num_threads(params.get("threads", 1))
        out = dense_epoch_times(raster, params["width"], params["epochs"], params["null_filters"],
                                params.get("device", "cpu"))
    out["max_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    Path(args.output).write_text(json.dumps(out))


def run_worker(worker: str, raster_path: Path, params: dict, timeout: float, workdir: Path) -> dict:
    """Run a worker in its own process group; stop it (and only it) at the timeout."""
    output = workdir / f"{worker}-{raster_path.stem}.json"
    output.unlink(missing_ok=True)
    command = [sys.executable, __file__, "--worker", worker, "--input", str(raster_path), "--output", str(output),
               "--params", json.dumps(params)]
    returncode, stderr, wall = run_stoppable(command, timeout)
    if returncode is None:
        return {"status": f"did not finish (stopped at {timeout:.0f} s)"}
    if returncode != 0 or not output.exists():
        tail = stderr.strip().splitlines()[-1] if stderr.strip() else ""
        memory = "MemoryError" in stderr or "Cannot allocate" in stderr or returncode in (-9, 137)
        return {"status": "out of memory" if memory else f"failed (exit {returncode})",
                "error": tail[-300:], "wall_s": wall}
    return {"status": "ok", "wall_s": wall, **json.loads(output.read_text())}


# ---------------------------------------------------------------------------------------------- methods
def fit_convseq(raster: np.ndarray, seed: int = 0, device: str = "auto") -> dict:
    from convseq_neo import ConvSeq

    started = time.perf_counter()
    model = ConvSeq(width=WIDTH, random_state=seed, device=device).fit(raster)
    seconds = time.perf_counter() - started
    occ = model.occurrences_
    pvalues = occ["pvalue"].to_numpy(dtype=float)
    scores = -np.log10(np.clip(pvalues, 1e-300, 1)) + 1e-6 * occ["peak"].to_numpy(dtype=float)
    return {"status": "ok", "seconds": seconds, "centres": occ["center"].to_numpy(dtype=float).tolist(),
            "scores": scores.tolist(), "own": occ["significant"].to_numpy(dtype=bool).tolist(),
            "epochs": int(model.n_epochs_[0]), "backend": model.backend_,
            "n_members": int(model.membership_["member"].sum())}


def fit_reference(raster: np.ndarray, epochs: int, seed: int = 0, device: str = "auto") -> dict:
    """The paper's training and threshold, computed through the event path (same responses)."""
    from scipy.signal import find_peaks

    from convseq_neo import ConvSeq

    started = time.perf_counter()
    model = ConvSeq(width=WIDTH, significance="random_filters", max_epochs=epochs, min_epochs=epochs, tol=0.0,
                    n_init=1, recenter_every=0, random_state=seed, device=device).fit(raster)
    seconds = time.perf_counter() - started
    response = model.responses_[0]
    peaks, _ = find_peaks(response, distance=WIDTH)
    heights = response[peaks]
    return {"status": "ok", "seconds_event_path": seconds, "centres": peaks.astype(float).tolist(),
            "scores": heights.tolist(), "own": (heights > model.random_filter_threshold_).tolist(),
            "epochs": epochs, "threshold": model.random_filter_threshold_}


def matched_threshold(background_scores, minutes: float, rate: float) -> tuple[float, int]:
    """Threshold (detect ``score > t``) allowing ``floor(rate * minutes)`` detections on the background."""
    allowed = int(math.floor(rate * minutes + 1e-9))
    scores = np.sort(np.asarray(background_scores, dtype=float))[::-1]
    threshold = float(scores[allowed]) if scores.size > allowed else -np.inf
    return threshold, int((scores > threshold).sum())


def score_outcome(outcome: dict, truth: np.ndarray, threshold: float | None) -> dict:
    from convseq_neo.synthetic.evaluate import match_events

    if outcome.get("status") != "ok":
        return {"status": outcome.get("status")}
    centres = np.asarray(outcome["centres"], dtype=float)
    scores = np.asarray(outcome["scores"], dtype=float)
    row = {"status": "ok"}
    if threshold is not None:
        detected = centres[scores > threshold]
        match = match_events(detected, truth, TOLERANCE)
        row.update(f1_matched=match.f1, hits_matched=match.n_hits, false_matched=match.n_false,
                   precision_matched=match.precision, recall_matched=match.recall)
        if detected.size and truth.size:  # where the detections sit relative to the nearest true centre
            nearest = truth[np.abs(detected[:, None] - truth[None, :]).argmin(axis=1)]
            row["median_offset_bins"] = float(np.median(detected - nearest))
    if "own" in outcome:
        match = match_events(centres[np.asarray(outcome["own"], dtype=bool)], truth, TOLERANCE)
        row.update(f1_own=match.f1, hits_own=match.n_hits, false_own=match.n_false)
    return row


# ---------------------------------------------------------------------------------------------- elephant
def save_frames_as_trains(raster: np.ndarray, path: Path) -> Path:
    """Frames as 5 ms bins for Elephant (``bench_vs_elephant`` bins at 5 ms): one spike mid-bin per event."""
    from bench_vs_elephant import BIN_S

    sizes = (raster > 0).sum(axis=1)
    times = np.concatenate([(np.flatnonzero(row) + 0.5) * BIN_S for row in raster])
    np.savez(path, times=times, sizes=sizes, t_stop=raster.shape[1] * BIN_S)
    return path


def run_elephant(peer: str, raster_path: Path, timeout: float, memory_gb: float, n_surr: int,
                 workdir: Path) -> dict:
    from bench_vs_elephant import BIN_S, pattern_centres, run_peer

    out = run_peer(peer, raster_path, N_MEMBERS, timeout, memory_gb, n_surr, workdir)
    if out["status"] != "ok":
        status = f"did not finish ({out['status']})" if "stopped at" in out["status"] else out["status"]
        return {"status": status, **({"error": out["error"]} if "error" in out else {})}
    patterns = [{"centres": (pattern_centres(p) / BIN_S - 0.5).tolist(), "n": len(p["times"])}
                for p in out["patterns"]]
    return {"status": "ok", "seconds": out["seconds"], "patterns": patterns}


def score_elephant(outcome: dict, truth: np.ndarray) -> dict:
    from convseq_neo.synthetic.evaluate import match_events

    if outcome.get("status") != "ok":
        return {"status": outcome.get("status")}
    best = {"f1_own": 0.0, "hits_own": 0, "false_own": 0}
    for pattern in outcome["patterns"]:
        match = match_events(np.asarray(pattern["centres"]), truth, TOLERANCE)
        if match.f1 > best["f1_own"]:
            best = {"f1_own": match.f1, "hits_own": match.n_hits, "false_own": match.n_false}
    return {"status": "ok", "n_patterns": len(outcome["patterns"]), **best}


# ---------------------------------------------------------------------------------------------- main
def _fmt(value, spec="{:.2f}"):
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "-"
    return spec.format(value)


def build_table(rows: list[dict], rate: float) -> str:
    header = (f"{'recording':>26} | {'method':>15} | {'time (s)':>10} | {'F1 @ matched':>12} | {'hits/true':>9} | "
              f"{'bg false/min':>12} | {'offset':>6} | {'F1 own':>6} | {'own bg false/min':>16} | status")
    lines = [header, "-" * len(header)]
    for row in rows:
        seconds = row.get("seconds")
        time_text = _fmt(seconds, "{:.1f}") + ("*" if row.get("extrapolated") else "")
        hits = f"{row['hits_matched']}/{row['n_true']}" if "hits_matched" in row else "-"
        lines.append(f"{row['recording']:>26} | {row['method']:>15} | {time_text:>10} | "
                     f"{_fmt(row.get('f1_matched')):>12} | {hits:>9} | {_fmt(row.get('bg_false_per_min')):>12} | "
                     f"{_fmt(row.get('median_offset_bins'), '{:+.0f}'):>6} | "
                     f"{_fmt(row.get('f1_own')):>6} | {_fmt(row.get('own_bg_false_per_min')):>16} | "
                     f"{row.get('status', '')}")
    lines.append(f"* extrapolated from timed epochs and null filters. Matched: threshold set on the background so "
                 f"that at most {rate:g} false detections per minute are made there.\noffset: median (detection - "
                 f"nearest true centre) in bins of the matched detections; F1 counts a hit within {TOLERANCE} bins.")
    return "\n".join(lines)


def plot_results(grid_rows: list[dict], e2e_rows: list[dict], path: Path, timeout: float | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    cells = sorted({(r["participation"], r["jitter"]) for r in grid_rows}, key=lambda c: (-c[0], c[1]))
    methods = [m for m in COLORS if any(r["method"] == m for r in grid_rows)]
    x = np.arange(len(cells))
    step = 0.8 / max(1, len(methods))
    for i, method in enumerate(methods):
        values = []
        for cell in cells:
            match = [r for r in grid_rows if r["method"] == method and (r["participation"], r["jitter"]) == cell]
            value = match[0].get("f1_matched", match[0].get("f1_own")) if match else None
            values.append(np.nan if value is None else value)
        axes[0].bar(x + i * step - 0.4 + step / 2, values, step, label=method, color=COLORS[method])
    axes[0].set_xticks(x, [f"p={p:g}\nj={j:g}" for p, j in cells], fontsize=8 if len(cells) <= 6 else 6,
                       rotation=0 if len(cells) <= 6 else 90)
    axes[0].set_xlabel("participation p, jitter j (bins)")
    axes[0].set_ylabel("event F1 at matched false rate\n(SPADE, CAD: their own test, best pattern)")
    axes[0].set_ylim(0, 1.05)
    axes[0].set_title("Accuracy on planted sequences")
    axes[0].legend(fontsize=8)
    names, seconds, colors, hatches = [], [], [], []
    for row in e2e_rows:
        if row.get("seconds"):
            names.append(row["method"])
            seconds.append(row["seconds"])
            colors.append(COLORS.get(row["method"], "grey"))
            hatches.append("//" if row.get("extrapolated") else "")
        elif "did not finish" in str(row.get("status")) and timeout:
            names.append(f"{row['method']} (did not finish)")
            seconds.append(timeout)
            colors.append("white")
            hatches.append("xx")
    bars = axes[1].barh(names, seconds, color=colors, edgecolor="black", linewidth=0.5)
    for bar, hatch in zip(bars, hatches):
        bar.set_hatch(hatch)
    axes[1].set_xscale("log")
    axes[1].set_xlabel("wall time to a finished detection (s, log)\nhatched: extrapolated; crossed: stopped at the cap")
    axes[1].set_title(f"Speed on {e2e_rows[0]['recording'] if e2e_rows else ''}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:  # noqa: C901 - one linear script
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="small set for `make bench` (< 15 min on 2 cores)")
    mode.add_argument("--full", action="store_true", help="full grid, the paper's recipe with every peer")
    parser.add_argument("--false-rate", type=float, default=0.5, help="matched false detections per minute")
    parser.add_argument("--timeout", type=float, help="seconds before a peer run is stopped (default 600; quick 90)")
    parser.add_argument("--memory-gb", type=float, default=8.0, help="memory cap of a peer process")
    parser.add_argument("--crop", type=int, default=6000, help="bins of the small recordings")
    parser.add_argument("--seqnmf-iter", type=int, help="seqNMF iterations (default 100; quick 10)")
    parser.add_argument("--ref-epochs", type=int, default=REF_EPOCHS, help="epochs of the paper's training")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--device", default="cpu", help="torch device for convseq_neo (cpu, cuda, auto)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--recipe", action=argparse.BooleanOptionalAction, default=True,
                        help="also run the paper's recipe on the whole CA1 background")
    parser.add_argument("--worker", choices=("seqnmf", "dense"), help=argparse.SUPPRESS)
    parser.add_argument("--input", help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
    parser.add_argument("--params", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker_main(args)
        return

    import torch

    from convseq_neo import SpikeRaster
    from convseq_neo.core.response import make_response
    from convseq_neo.synthetic.generate import reference_recipe, shuffle_isis_raster

    torch.set_num_threads(args.threads)
    dense_device = "cuda" if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available()) else "cpu"
    quick = not args.full
    timeout = args.timeout if args.timeout is not None else (90.0 if quick else 600.0)
    seqnmf_iter = args.seqnmf_iter if args.seqnmf_iter is not None else (10 if quick else 100)
    n_surr = 10 if quick else 100
    if quick:
        grid = [(0.9, 10), (0.6, 20), (0.3, 30)]
    else:
        grid = [(p, j) for p in (0.9, 0.7, 0.5, 0.3) for j in (5, 10, 20, 30)]
    e2e_cell = grid[0]
    grid_peers = {"convseq_neo", "convSeq (paper)"} if quick else {"convseq_neo", "convSeq (paper)", "seqNMF",
                                                                    "spade", "spade+surr", "cad"}
    info = machine()
    info["load_average_at_start"] = os.getloadavg()
    command = " ".join([Path(sys.executable).name, *sys.argv])
    print(f"command: {command}\nmachine: {json.dumps(info)}", flush=True)
    started_all = time.perf_counter()

    full_background = shuffle_isis_raster((ca1_raster() > 0).astype(np.int8), random_state=args.seed)
    background = np.ascontiguousarray(full_background[:, :args.crop])
    small = f"CA1 bg {background.shape[0]}x{background.shape[1]}"
    minutes_small = background.shape[1] * FRAME_S / 60
    rows, grid_rows, e2e_rows, speed = [], [], [], []
    stopped: set[str] = set()

    with tempfile.TemporaryDirectory(prefix="bench_peers_") as tmp:
        workdir = Path(tmp)

        def save_raster(raster, name):
            path = workdir / f"{name}.npz"
            np.savez(path, raster=raster)
            return path

        # --- per-epoch speed on the small recording: event path vs the paper's dense 2-D convolution
        op = make_response(SpikeRaster.from_dense(background), WIDTH, backend="events")
        event_epoch = epoch_time(op, background.shape[0], 20)
        dense = run_worker("dense", save_raster(background, "bg_small"),
                           {"width": WIDTH, "epochs": 2 if quick else 5, "null_filters": 16 if quick else 64,
                            "threads": args.threads, "device": dense_device}, timeout, workdir)
        speed.append({"raster": small, "nnz": int((background > 0).sum()), "events_per_epoch_s": event_epoch,
                      "dense_conv2d_per_epoch_s": dense.get("per_epoch_s"), "dense_status": dense["status"],
                      "speedup": dense.get("per_epoch_s", np.nan) / event_epoch,
                      **{k: dense.get(k) for k in DENSE_KEYS}})
        print(f"per epoch on {small}: events {event_epoch * 1e3:.2f} ms, dense conv2d "
              f"{_fmt(dense.get('per_epoch_s', None), '{:.3f}')} s ({dense['status']})", flush=True)

        # --- background fits (thresholds) for the methods with a score
        bg_out = {"convseq_neo": fit_convseq(background, args.seed, args.device),
                  "convSeq (paper)": fit_reference(background, args.ref_epochs, args.seed, args.device)}
        bg_path = save_raster(background, "bg_small")
        bg_out["seqNMF"] = run_worker("seqnmf", bg_path, {"K": 1, "L": WIDTH, "Lambda": 0.001,
                                                          "max_iter": seqnmf_iter, "seed": args.seed,
                                                          "memory_gb": args.memory_gb}, timeout, workdir)
        if bg_out["seqNMF"]["status"] != "ok":
            stopped.add("seqNMF")
        bg_trains = save_frames_as_trains(background, workdir / "bg_trains.npz")
        thresholds = {}
        for method, out in bg_out.items():
            if out.get("status") == "ok":
                thresholds[method] = matched_threshold(out["scores"], minutes_small, args.false_rate)
                own = int(np.sum(out["own"])) if "own" in out else None
                print(f"background {method}: threshold {thresholds[method][0]:.4g} ({thresholds[method][1]} false); "
                      f"own significance {own} false", flush=True)
            else:
                print(f"background {method}: {out.get('status')} {out.get('error', '')}", flush=True)
        elephant_bg = {}

        # --- planted grid on the small background (the first cell is the end-to-end comparison)
        for index, (participation, jitter) in enumerate(grid):
            planted, truth = planted_sequence(background, np.random.default_rng(args.seed + 1 + index),
                                              n_members=N_MEMBERS, gap=GAP, jitter=jitter, keep=participation)
            label = f"{small} p={participation:g} j={jitter:g}"
            path = save_raster(planted, f"planted{index}")
            methods = ["convseq_neo", "convSeq (paper)", "seqNMF", "spade", "spade+surr", "cad"]
            for method in methods:
                if (participation, jitter) != e2e_cell and method not in grid_peers:
                    continue
                row = {"recording": label, "participation": participation, "jitter": jitter, "method": method,
                       "n_true": int(truth.size), "minutes": minutes_small}
                if method in stopped:
                    row["status"] = "did not finish (skipped: stopped on a recording of this size)"
                elif method == "convseq_neo":
                    out = fit_convseq(planted, args.seed, args.device)
                    row.update(seconds=out["seconds"], epochs=out["epochs"], n_members=out["n_members"])
                    row.update(score_outcome(out, truth, thresholds[method][0]))
                elif method == "convSeq (paper)":
                    out = fit_reference(planted, args.ref_epochs, args.seed, args.device)
                    row.update(score_outcome(out, truth, thresholds[method][0]))
                    row.update(seconds=dense.get("seconds"), extrapolated=True,
                               accuracy_seconds_event_path=out["seconds_event_path"])
                elif method == "seqNMF":
                    out = run_worker("seqnmf", path, {"K": 1, "L": WIDTH, "Lambda": 0.001, "max_iter": seqnmf_iter,
                                                      "seed": args.seed, "memory_gb": args.memory_gb},
                                     timeout, workdir)
                    if out["status"] != "ok":
                        stopped.add(method)
                    row.update(score_outcome(out, truth, thresholds[method][0] if method in thresholds else None))
                    row.update(seconds=out.get("seconds"), iterations=out.get("iterations"),
                               import_error=out.get("import_error"), error=out.get("error"))
                else:
                    if method == "spade+surr" and "spade" in stopped:
                        row["status"] = "did not finish (skipped: spade's mining was stopped)"
                    else:
                        out = run_elephant(method, save_frames_as_trains(planted, workdir / f"trains{index}.npz"),
                                           timeout, args.memory_gb, n_surr, workdir)
                        if out["status"] != "ok":
                            stopped.add(method)
                        row.update(score_elephant(out, truth), seconds=out.get("seconds"), error=out.get("error"))
                        if out["status"] == "ok":
                            if method not in elephant_bg:
                                elephant_bg[method] = run_elephant(method, bg_trains, timeout, args.memory_gb,
                                                                   n_surr, workdir)
                            bg = elephant_bg[method]
                            if bg["status"] == "ok":
                                row["own_bg_false_per_min"] = sum(p["n"] for p in bg["patterns"]) / minutes_small
                            else:
                                row["own_bg_status"] = bg["status"]
                if method in thresholds:
                    row["bg_false_per_min"] = thresholds[method][1] / minutes_small
                    row["threshold"] = thresholds[method][0]
                    out_bg = bg_out[method]
                    if "own" in out_bg:
                        row["own_bg_false_per_min"] = int(np.sum(out_bg["own"])) / minutes_small
                rows.append(row)
                grid_rows.append(row)
                if (participation, jitter) == e2e_cell:
                    e2e_rows.append(row)
                print(f"{label:>26} {method:>15}: " + json.dumps({k: v for k, v in row.items() if k not in (
                    "recording", "method")}, default=float), flush=True)

        # --- the paper's recipe on the whole background, and convseq_neo on CA1
        recipe = reference_recipe(full_background, random_state=args.seed)
        minutes_full = full_background.shape[1] * FRAME_S / 60
        label = f"paper recipe {full_background.shape[0]}x{full_background.shape[1]}"
        truth = recipe.midpoints_bins
        recipe_methods = ["convseq_neo", "convSeq (paper)"] + ([] if quick else ["seqNMF", "spade", "cad"])
        recipe_methods = recipe_methods if args.recipe else []
        full_bg_path = save_raster(full_background, "bg_full")
        recipe_path = save_raster(recipe.raster.astype(np.int8), "recipe")
        for method in recipe_methods:
            row = {"recording": label, "method": method, "n_true": int(truth.size), "minutes": minutes_full,
                   "surviving_fraction": recipe.surviving_fraction}
            if method in ("convseq_neo", "convSeq (paper)"):
                if method == "convseq_neo":
                    bg = fit_convseq(full_background, args.seed, args.device)
                    out = fit_convseq(recipe.raster, args.seed, args.device)
                    row.update(seconds=out["seconds"], background_seconds=bg["seconds"])
                else:
                    bg = fit_reference(full_background, args.ref_epochs, args.seed, args.device)
                    out = fit_reference(recipe.raster, args.ref_epochs, args.seed, args.device)
                    timing = run_worker("dense", full_bg_path, {"width": WIDTH, "epochs": 1 if quick else 3,
                                                                "null_filters": 8 if quick else 32,
                                                                "threads": args.threads, "device": dense_device},
                                        timeout, workdir)
                    speed.append({"raster": f"CA1 bg {full_background.shape[0]}x{full_background.shape[1]}",
                                  "nnz": int((full_background > 0).sum()),
                                  "events_per_epoch_s": epoch_time(make_response(
                                      SpikeRaster.from_dense(full_background), WIDTH, backend="events"),
                                      full_background.shape[0], 20),
                                  "dense_conv2d_per_epoch_s": timing.get("per_epoch_s"),
                                  "dense_status": timing["status"], **{k: timing.get(k) for k in DENSE_KEYS}})
                    speed[-1]["speedup"] = (speed[-1]["dense_conv2d_per_epoch_s"] or np.nan) / \
                        speed[-1]["events_per_epoch_s"]
                    row.update(seconds=timing.get("seconds"), extrapolated=True,
                               accuracy_seconds_event_path=out["seconds_event_path"])
                threshold, n_false = matched_threshold(bg["scores"], minutes_full, args.false_rate)
                row.update(score_outcome(out, truth, threshold), threshold=threshold,
                           bg_false_per_min=n_false / minutes_full,
                           own_bg_false_per_min=int(np.sum(bg["own"])) / minutes_full)
            elif method == "seqNMF":
                params = {"K": 1, "L": WIDTH, "Lambda": 0.001, "max_iter": seqnmf_iter, "seed": args.seed,
                          "memory_gb": args.memory_gb}
                bg = run_worker("seqnmf", full_bg_path, params, timeout, workdir)
                out = run_worker("seqnmf", recipe_path, params, timeout, workdir) if bg["status"] == "ok" else bg
                threshold = matched_threshold(bg["scores"], minutes_full, args.false_rate) if bg["status"] == "ok" \
                    else (None, None)
                row.update(score_outcome(out, truth, threshold[0]), seconds=out.get("seconds"),
                           error=out.get("error"))
                if threshold[1] is not None:
                    row["bg_false_per_min"] = threshold[1] / minutes_full
            else:
                out = run_elephant(method, save_frames_as_trains(recipe.raster, workdir / "recipe_trains.npz"),
                                   timeout, args.memory_gb, n_surr, workdir)
                row.update(score_elephant(out, truth), seconds=out.get("seconds"), error=out.get("error"))
                if out["status"] == "ok":
                    bg = run_elephant(method, save_frames_as_trains(full_background, workdir / "bg_full_trains.npz"),
                                      timeout, args.memory_gb, n_surr, workdir)
                    if bg["status"] == "ok":
                        row["own_bg_false_per_min"] = sum(p["n"] for p in bg["patterns"]) / minutes_full
                    else:
                        row["own_bg_status"] = bg["status"]
            rows.append(row)
            print(f"{label:>26} {method:>15}: " + json.dumps({k: v for k, v in row.items() if k not in (
                "recording", "method")}, default=float), flush=True)

    total = time.perf_counter() - started_all
    speed_lines = [f"{'raster':>22} | {'nnz':>7} | {'events / epoch':>14} | {'dense conv2d / epoch':>20} | speed-up"]
    for s in speed:
        dense_text = _fmt(s["dense_conv2d_per_epoch_s"], "{:.3f} s") if s["dense_status"] == "ok" else s["dense_status"]
        speed_lines.append(f"{s['raster']:>22} | {s['nnz']:>7} | {s['events_per_epoch_s'] * 1e3:11.2f} ms | "
                           f"{dense_text:>20} | {_fmt(s['speedup'], '{:.0f}x')}")
    table = build_table(rows, args.false_rate)
    text = (f"command: {command}\nmachine: {json.dumps(info)}\nW = {WIDTH} bins, tolerance {TOLERANCE} bins, "
            f"matched false rate {args.false_rate:g}/min, peer timeout {timeout:g} s, seqNMF max_iter {seqnmf_iter}, "
            f"paper epochs {args.ref_epochs} (accuracy) / {REF_EPOCHS} (time)\n\nPer-epoch time (K = 1, forward + "
            f"backward):\n" + "\n".join(speed_lines) + f"\n\n{table}\n\ntotal wall time {total:.0f} s, load average "
            f"at end {os.getloadavg()}")
    print("\n" + text)
    name = "bench_peers_quick" if quick else "bench_peers"
    RESULTS.mkdir(exist_ok=True)
    plot_results(grid_rows, e2e_rows, RESULTS / f"{name}.png", timeout)
    path = save(name, {"rows": rows, "speed": speed, "table": table, "text": text,
                       "false_rate_per_min": args.false_rate, "timeout_s": timeout, "seqnmf_max_iter": seqnmf_iter,
                       "width": WIDTH, "tolerance": TOLERANCE,
                       "total_seconds": total, "load_average_at_end": os.getloadavg(), "machine_extra": info})
    print(f"wrote {path} and {RESULTS / (name + '.png')}")


if __name__ == "__main__":
    main()
