"""Scaling of the event path: time per epoch and peak memory as neurons, duration and rate grow.

Run::

    .venv/bin/python benchmarks/bench_scaling.py            # full study (`make bench-full`; long)
    .venv/bin/python benchmarks/bench_scaling.py --quick    # small cases only (smoke test)

Each case is a homogeneous Poisson raster (``N`` neurons, ``D`` minutes, rate ``r``, 5 ms bins),
built directly as a sparse :class:`SpikeRaster` (never dense), and timed in its own subprocess:
one event-path response operator (``make_response(backend="events")``: the sparse Toeplitz product
when ``nnz * W <= 30 M``, otherwise the streaming kernel, which holds no ``nnz * W`` structure), then
forward + backward of the convSeq loss for ``K = 1``, ``W = 100`` bins (0.5 s). Reported per case:
median seconds per epoch, peak resident memory of the process while the operator is built and the
epochs run (sampled from ``/proc/self/statm``, plus the kernel's high-water mark ``VmHWM`` for the
whole process including raster generation), and what a dense float32 ``N x T`` raster would need.

The machine's memory bandwidth is measured STREAM-style with numpy (copy / add / triad on arrays far
larger than the caches, one thread); the event path's bandwidth on a case is its estimated bytes moved
per epoch divided by the epoch time. Bytes per epoch (an estimate from the kernel's memory accesses,
not a hardware count): streaming, about 60 B per spike and lag forward (index slices, the offset
index, the gathered filter value, the product, the scatter-add) and as much backward; Toeplitz, the
CSR entries (4 B index + 4 B value) of the matrix and of its transpose, plus the dense vectors.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

BIN_S = 0.005
WIDTH = 100
PAGE = os.sysconf("SC_PAGE_SIZE")
STREAM_BYTES_PER_SPIKE_LAG = 120.0  # forward + backward, see the module docstring


def _rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * PAGE


def _hwm_bytes() -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


class PeakSampler:
    """Highest resident set size seen every ``interval`` seconds while active."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.peak = _rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_bytes())
            time.sleep(self.interval)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_bytes())


def poisson_raster(n_neurons: int, minutes: float, rate_hz: float, seed: int):
    """A homogeneous Poisson raster at 5 ms bins, built sparse, neuron block by neuron block."""
    from convseq_neo import SpikeRaster

    rng = np.random.default_rng(seed)
    n_bins = int(round(minutes * 60 / BIN_S))
    p = rate_hz * BIN_S
    neurons, bins, counts = [], [], []
    block = max(1, int(4e7 // n_bins))
    for first in range(0, n_neurons, block):
        rows = min(block, n_neurons - first)
        n_cells = rng.binomial(n_bins, 1 - np.exp(-p), size=rows)  # non-empty cells per neuron
        for row, k in enumerate(n_cells):
            cells = np.sort(rng.choice(n_bins, size=k, replace=False)) if k < n_bins // 4 else \
                np.flatnonzero(rng.random(n_bins) < 1 - np.exp(-p))
            neurons.append(np.full(cells.size, first + row, dtype=np.int64))
            bins.append(cells.astype(np.int64))
            counts.append(np.ones(cells.size, dtype=np.int32))
    return SpikeRaster(np.concatenate(neurons), np.concatenate(bins), np.concatenate(counts), n_neurons, n_bins,
                       bin_size_s=BIN_S)


def _case_main(args) -> None:
    """Child process: build one raster and its operator, time ``--epochs`` epochs, print JSON."""
    import torch

    from convseq_neo.core.response import make_response

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    started = time.perf_counter()
    raster = poisson_raster(args.neurons, args.minutes, args.rate, args.seed)
    build_s = time.perf_counter() - started
    rss_raster = _rss_bytes()
    with PeakSampler() as sampler:
        started = time.perf_counter()
        op = make_response(raster, WIDTH, backend="events", device=device)
        op_s = time.perf_counter() - started
        generator = torch.Generator(device=device).manual_seed(0)
        logits = torch.randn((1, raster.n_neurons, WIDTH), generator=generator, device=device, requires_grad=True)
        times = []
        for _ in range(args.epochs + 1):
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            response = op(torch.softmax(logits, dim=-1))
            loss = -response.var() + 50.0 * (response[:, 1:] - response[:, :-1]).square().mean()
            loss.backward()
            if device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
    kind = type(op).__name__
    per_epoch = float(np.median(times[1:]))
    if kind == "StreamingResponse":
        bytes_epoch = STREAM_BYTES_PER_SPIKE_LAG * raster.nnz * WIDTH
    else:
        bytes_epoch = 2 * 8.0 * op.n_entries + 2 * 4.0 * (op.length * 3 + raster.n_neurons * WIDTH * 3)
    out = {"neurons": args.neurons, "minutes": args.minutes, "rate_hz": args.rate, "n_bins": raster.n_bins,
           "nnz": raster.nnz, "cells": raster.n_neurons * raster.n_bins,
           "dense_float32_gb": raster.n_neurons * raster.n_bins * 4 / 1e9, "kind": kind,
           "nnz_x_w_entries_held": int(getattr(op, "n_entries", 0)), "per_epoch_s": per_epoch,
           "epochs_timed": args.epochs, "build_raster_s": build_s, "build_operator_s": op_s,
           "rss_after_raster_gb": rss_raster / 1e9, "peak_rss_epochs_gb": sampler.peak / 1e9,
           "vmhwm_gb": _hwm_bytes() / 1e9, "bytes_per_epoch_est": bytes_epoch,
           "bandwidth_gb_s_est": bytes_epoch / per_epoch / 1e9, "device": str(device)}
    if device.type == "cuda":
        out["cuda_peak_gb"] = torch.cuda.max_memory_allocated() / 1e9
    print("RESULT " + json.dumps(out), flush=True)


def stream_bandwidth(n_bytes: float = 4e8, repeats: int = 5) -> dict:
    """STREAM-like copy / add / triad bandwidth of this machine with numpy (one thread), GB/s."""
    n = int(n_bytes // 8)
    a = np.ones(n)
    b = np.full(n, 2.0)
    c = np.zeros(n)
    best = {"copy": np.inf, "add": np.inf, "triad": np.inf}
    for _ in range(repeats):
        t0 = time.perf_counter()
        np.copyto(c, a)
        best["copy"] = min(best["copy"], time.perf_counter() - t0)
        t0 = time.perf_counter()
        np.add(a, b, out=c)
        best["add"] = min(best["add"], time.perf_counter() - t0)
        t0 = time.perf_counter()
        np.multiply(b, 3.0, out=c)
        np.add(c, a, out=c)
        best["triad"] = min(best["triad"], time.perf_counter() - t0)
    moved = {"copy": 2 * 8 * n, "add": 3 * 8 * n, "triad": 5 * 8 * n}  # triad done as two passes here
    return {name: moved[name] / best[name] / 1e9 for name in best} | {"array_gb": 8 * n / 1e9}


def cuda_bandwidth(n_bytes: float = 2e9, repeats: int = 5) -> dict:
    """The same copy / add / triad figures on a CUDA device with torch, GB/s (bytes read + written)."""
    import torch

    n = int(n_bytes // 4)
    a = torch.ones(n, device="cuda")
    b = torch.full((n,), 2.0, device="cuda")
    c = torch.zeros(n, device="cuda")
    operations = {"copy": (lambda: c.copy_(a), 2), "add": (lambda: torch.add(a, b, out=c), 3),
                  "triad": (lambda: torch.add(a, b, alpha=3.0, out=c), 3)}
    out = {}
    for name, (operation, arrays) in operations.items():
        operation()
        torch.cuda.synchronize()
        started = time.perf_counter()
        for _ in range(repeats):
            operation()
        torch.cuda.synchronize()
        out[name] = arrays * 4 * n * repeats / (time.perf_counter() - started) / 1e9
    return out | {"array_gb": 4 * n / 1e9}


def run_case(case: dict, epochs: int, threads: int, device: str, timeout: float) -> dict:
    command = [sys.executable, __file__, "--case", "--neurons", str(case["neurons"]), "--minutes",
               str(case["minutes"]), "--rate", str(case["rate"]), "--epochs", str(epochs), "--threads", str(threads),
               "--device", device]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {**case, "status": f"did not finish (stopped at {timeout:.0f} s)"}
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return {**case, "status": "ok", **json.loads(line[7:])}
    tail = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else ""
    return {**case, "status": f"failed (exit {done.returncode})", "error": tail[-300:]}


def _peak_gb(row: dict) -> float:
    """GPU memory on CUDA (what limits a GPU run), else the process's resident memory."""
    return row.get("cuda_peak_gb", row["peak_rss_epochs_gb"])


def plot(rows: list[dict], path: Path, on_gpu: bool = False) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"neurons": "#0072B2", "minutes": "#E69F00", "rate": "#009E73", "large": "#D55E00"}
    markers = {"neurons": "o", "minutes": "s", "rate": "^", "large": "*"}
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    ok = [r for r in rows if r["status"] == "ok"]
    for sweep in colors:
        sel = [r for r in ok if r["sweep"] == sweep]
        if not sel:
            continue
        label = {"neurons": "neurons 100-5,000", "minutes": "duration 5-120 min", "rate": "rate 1-20 Hz",
                 "large": "large (dense > 20 GB)"}[sweep]
        nnz = np.array([r["nnz"] for r in sel])
        cells = np.array([r["cells"] for r in sel])
        axes[0].scatter(nnz, [r["per_epoch_s"] for r in sel], c=colors[sweep], marker=markers[sweep], label=label,
                        s=80 if sweep == "large" else 30)
        axes[1].scatter(cells, [r["per_epoch_s"] for r in sel], c=colors[sweep], marker=markers[sweep], label=label,
                        s=80 if sweep == "large" else 30)
        axes[2].scatter(nnz, [_peak_gb(r) for r in sel], c=colors[sweep], marker=markers[sweep],
                        label=label, s=80 if sweep == "large" else 30)
    if ok:
        nnz = np.array([r["nnz"] for r in ok], dtype=float)
        grid = np.geomspace(nnz.min(), nnz.max(), 10)
        ratio = np.median([r["per_epoch_s"] / r["nnz"] for r in ok])
        axes[0].plot(grid, ratio * grid, "k--", lw=1, label="proportional to spikes")
        dense = np.array([r["dense_float32_gb"] for r in ok])
        axes[2].scatter(nnz, dense, facecolors="none", edgecolors="grey", label="dense float32 N x T raster")
    for ax, xlabel, ylabel in ((axes[0], "non-empty cells (spikes)", "seconds per epoch"),
                               (axes[1], "N x T cells", "seconds per epoch"),
                               (axes[2], "non-empty cells (spikes)", "memory (GB)")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=7)
    axes[0].set_title(f"event path{' on CUDA' if on_gpu else ''}, K=1, W={WIDTH}, 5 ms bins")
    axes[1].set_title("same, against raster size")
    axes[2].set_title(f"peak {'GPU ' if on_gpu else ''}memory while training vs a dense raster")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small cases only")
    parser.add_argument("--epochs", type=int, default=3, help="epochs timed per case (after one warm-up)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per case")
    parser.add_argument("--no-large", action="store_true", help="skip the case whose dense raster exceeds 20 GB")
    parser.add_argument("--from-json", help="re-summarise and re-plot the rows of an earlier run's JSON")
    parser.add_argument("--case", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--neurons", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--minutes", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--rate", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        _case_main(args)
        return

    import torch
    from _common import RESULTS, machine, save

    torch.set_num_threads(args.threads)
    info = machine()
    info["load_average_at_start"] = os.getloadavg()
    command = " ".join([Path(sys.executable).name, *sys.argv])
    print(f"command: {command}\nmachine: {json.dumps(info)}", flush=True)
    if args.quick:
        cases = ([{"sweep": "neurons", "neurons": n, "minutes": 2, "rate": 5} for n in (100, 300, 1000)]
                 + [{"sweep": "minutes", "neurons": 100, "minutes": m, "rate": 5} for m in (1, 5)]
                 + [{"sweep": "rate", "neurons": 100, "minutes": 2, "rate": r} for r in (1, 20)])
    else:
        cases = ([{"sweep": "neurons", "neurons": n, "minutes": 10, "rate": 5} for n in (100, 300, 1000, 2000, 5000)]
                 + [{"sweep": "minutes", "neurons": 500, "minutes": m, "rate": 5} for m in (5, 15, 30, 60, 120)]
                 + [{"sweep": "rate", "neurons": 500, "minutes": 10, "rate": r} for r in (1, 2, 5, 10, 20)])
        if not args.no_large:
            cases.append({"sweep": "large", "neurons": 5000, "minutes": 120, "rate": 1})
    if args.from_json:  # re-summarise and re-plot an earlier run
        previous = json.loads(Path(args.from_json).read_text())
        rows, bandwidth = previous["rows"], previous["bandwidth_gb_s"]
        info, command = previous["machine_extra"], previous["command"]
    else:
        if args.device.startswith("cuda"):
            bandwidth = cuda_bandwidth()
            print(f"GPU memory bandwidth (torch): {json.dumps(bandwidth)}", flush=True)
        else:
            bandwidth = stream_bandwidth(2e8 if args.quick else 8e8)
            print(f"memory bandwidth (numpy, 1 thread): {json.dumps(bandwidth)}", flush=True)
        rows = []
        for case in cases:
            row = run_case(case, args.epochs, args.threads, args.device, args.timeout)
            if row["status"] == "ok":
                row["fraction_of_stream_add"] = row["bandwidth_gb_s_est"] / bandwidth["add"]
                row["ns_per_spike_lag"] = row["per_epoch_s"] / (row["nnz"] * WIDTH) * 1e9
            rows.append(row)
            print(json.dumps(row), flush=True)
    ok = [r for r in rows if r["status"] == "ok"]
    fits = {}
    for kind in sorted({r["kind"] for r in ok}):
        sel = [r for r in ok if r["kind"] == kind]
        if len(sel) >= 3:
            log_t = np.log([r["per_epoch_s"] for r in sel])
            for key in ("nnz", "cells"):
                slope, _ = np.polyfit(np.log([r[key] for r in sel]), log_t, 1)
                fits[f"{kind}: log-log slope of time vs {key}"] = round(float(slope), 3)
    rate_rows = [r for r in ok if r["sweep"] == "rate" and r["kind"] == "StreamingResponse"]
    if len(rate_rows) >= 2:  # same N x T and kernel, only the spikes change
        low, high = min(rate_rows, key=lambda r: r["nnz"]), max(rate_rows, key=lambda r: r["nnz"])
        fits["rate sweep (fixed N x T): time ratio / spike ratio"] = round(
            (high["per_epoch_s"] / low["per_epoch_s"]) / (high["nnz"] / low["nnz"]), 3)
    header = (f"{'sweep':>8} | {'N':>5} | {'min':>5} | {'Hz':>4} | {'spikes':>11} | {'dense f32':>9} | "
              f"{'kernel':>17} | {'s / epoch':>9} | {'ns/spike/lag':>12} | {'peak GB':>7} | {'est. GB/s':>9} | "
              f"{'of STREAM':>9}")
    lines = [header, "-" * len(header)]
    bandwidth_label = ("GPU memory bandwidth (torch, GB/s)" if args.device.startswith("cuda")
                       else "memory bandwidth (numpy STREAM-like, 1 thread, GB/s)")
    for r in rows:
        if r["status"] != "ok":
            lines.append(f"{r['sweep']:>8} | {r['neurons']:>5} | {r['minutes']:>5g} | {r['rate']:>4g} | "
                         f"{r['status']}")
            continue
        lines.append(f"{r['sweep']:>8} | {r['neurons']:>5} | {r['minutes']:>5g} | {r['rate']:>4g} | "
                     f"{r['nnz']:>11,} | {r['dense_float32_gb']:>6.1f} GB | {r['kind']:>17} | "
                     f"{r['per_epoch_s']:>9.3f} | {r['ns_per_spike_lag']:>12.2f} | "
                     f"{_peak_gb(r):>7.2f} | "
                     f"{r['bandwidth_gb_s_est']:>9.2f} | {r['fraction_of_stream_add']:>8.1%}")
    table = "\n".join(lines)
    text = (f"command: {command}\nmachine: {json.dumps(info)}\n{bandwidth_label}: "
            f"copy {bandwidth['copy']:.1f}, add {bandwidth['add']:.1f}, triad {bandwidth['triad']:.1f}\n"
            f"event path, K = 1, W = {WIDTH} bins, 5 ms bins, forward + backward\n\n{table}\n\n"
            f"scaling fits (1 = proportional): {json.dumps(fits)}")
    print("\n" + text)
    name = ("bench_scaling_quick" if args.quick else "bench_scaling") + ("_cuda" if args.device.startswith("cuda")
                                                                         else "")
    RESULTS.mkdir(exist_ok=True)
    plot(rows, RESULTS / f"{name}.png", on_gpu=args.device.startswith("cuda"))
    path = save(name, {"rows": rows, "bandwidth_gb_s": bandwidth, "fits": fits, "table": table, "text": text,
                       "width": WIDTH, "bin_s": BIN_S, "load_average_at_end": os.getloadavg(),
                       "machine_extra": info})
    print(f"wrote {path} and {RESULTS / (name + '.png')}")


if __name__ == "__main__":
    main()
