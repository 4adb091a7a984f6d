"""Helpers shared by the benchmark scripts: machine description, data location, JSON output, and the
per-epoch timings and planted recordings that more than one script uses.

The benchmark scripts import this module, never each other. It does not import torch at the top, so
that peer subprocesses (seqNMF, Elephant) that import it do not load torch.
"""

from __future__ import annotations

import json
import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
DATA_DIR = Path(os.environ.get("CONVSEQ_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data"))
WIDTH = 200  # filter width in bins (CA1 frames of 50 ms) of bench_core and bench_peers
REF_EPOCHS = 4000  # the paper's training length
REF_NULL_FILTERS = 15_000  # the paper's random-filter null


def machine() -> dict:
    """What the numbers were measured on."""
    import torch

    info = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    try:
        with open("/proc/meminfo") as handle:
            info["memory_gb"] = round(int(handle.readline().split()[1]) / 1e6, 1)
    except OSError:
        pass
    return info


def ca1_raster() -> np.ndarray:
    """The CA1 raster (452 x 18,137 frames of 50 ms), through ``convseq_neo.io.datasets.load_rubin_ca1``."""
    import quantities as pq

    from convseq_neo.io.datasets import load_rubin_ca1
    from convseq_neo.io.neo import to_raster

    try:
        segment = load_rubin_ca1(DATA_DIR, download=False)
    except FileNotFoundError as error:
        raise SystemExit(f"{error}\nSet CONVSEQ_DATA_DIR to the folder that holds the CA1 files.") from error
    return to_raster(segment.spiketrains, bin_size=50 * pq.ms).to_dense().astype(np.int64)


def save(name: str, payload: dict) -> Path:
    """Write ``payload`` (plus the machine) to ``benchmarks/results/<name>.json``."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), "command": " ".join(sys.argv), **payload}, indent=2,
                               default=float))
    return path


class RunLog:
    """A benchmark's printed lines, kept for its results file, headed by the machine and the command.

    ``say(line)`` prints and keeps a line; ``save(name, rows)`` adds the total wall time and writes
    ``results/<name>.json`` (the machine, the command, the text and the rows).
    """

    def __init__(self) -> None:
        import convseq_neo

        self.started = time.perf_counter()
        self.lines: list[str] = []
        self.info = {**machine(), "convseq_neo": convseq_neo.__version__}
        self.command = " ".join([Path(sys.executable).name, *sys.argv])
        self.say(f"machine: {self.info['processor']} ({self.info['cpu_count']} cores), torch {self.info['torch']}; "
                 f"command: {self.command}")

    def say(self, line: str) -> None:
        print(line, flush=True)
        self.lines.append(line)

    def save(self, name: str, rows: list) -> Path:
        total = time.perf_counter() - self.started
        self.say(f"{total:.0f} s in all")
        path = save(name, {"machine": self.info, "command": self.command, "text": "\n".join(self.lines),
                           "rows": rows, "total_seconds": total})
        print(f"wrote {path}")
        return path


def run_stoppable(command: list[str], timeout: float) -> tuple[int | None, str, float]:
    """Run ``command`` in its own process group and kill that group (only) at ``timeout`` seconds.

    Returns the exit code (``None`` when stopped), the standard error and the wall time.
    """
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    try:
        _, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        return None, "", time.perf_counter() - started
    return process.returncode, stderr, time.perf_counter() - started


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def epoch_time(op, n_neurons: int, repeats: int, device="cpu", width: int = WIDTH) -> float:
    """Median seconds of one forward + backward pass of the convSeq loss (after one warm-up pass)."""
    import torch

    device = torch.device(device)
    generator = torch.Generator(device=device).manual_seed(0)
    logits = torch.randn((1, n_neurons, width), generator=generator, device=device, requires_grad=True)
    times = []
    for _ in range(repeats + 1):
        _sync(device)
        started = time.perf_counter()
        response = op(torch.softmax(logits, dim=-1))
        loss = -response.var() + 200.0 * (response[:, 1:] - response[:, :-1]).square().mean()
        loss.backward()
        _sync(device)
        times.append(time.perf_counter() - started)
    return float(np.median(times[1:]))


def planted_sequence(background: np.ndarray, rng: np.random.Generator, n_members: int = 120, gap: int = 400,
                     jitter: float = 10.0, keep: float = 0.9):
    """Members fire in order (1 bin apart) every ``gap`` bins; each spike kept with probability ``keep``.

    Returns the raster and the true occurrence centres (bins).
    """
    raster = background.copy()
    n_neurons, n_bins = raster.shape
    members = rng.choice(n_neurons, n_members, replace=False)
    starts = np.arange(0, n_bins - gap, gap)
    for start in starts:
        bins = start + np.arange(n_members) + np.round(rng.normal(0, jitter, n_members)).astype(int)
        kept = (rng.random(n_members) < keep) & (bins >= 0) & (bins < n_bins)
        raster[members[kept], bins[kept]] = 1
    return raster, starts + (n_members - 1) / 2.0


def dense_epoch_times(raster: np.ndarray, width: int, n_epochs: int, n_null: int, device: str = "cpu") -> dict:
    """The paper's compute pattern: per-epoch and per-null-filter seconds of the full-raster 2-D convolution."""
    import torch

    dev = torch.device(device)
    data = torch.as_tensor(raster, dtype=torch.float32, device=dev)[None, None]  # (1, 1, N, T)
    n_neurons = raster.shape[0]
    generator = torch.Generator(device=dev).manual_seed(0)
    logits = torch.randn((1, n_neurons, width), generator=generator, device=dev).requires_grad_(True)
    optimiser = torch.optim.Adam([logits], lr=0.1)
    times = []
    for _ in range(n_epochs + 1):
        _sync(dev)
        started = time.perf_counter()
        optimiser.zero_grad()
        kernel = torch.softmax(logits, dim=-1)[:, None]  # (K, 1, N, W)
        response = torch.nn.functional.conv2d(data, kernel, padding=(0, width // 2))[0, :, 0, :]
        loss = -response.var(dim=1).sum() + 200.0 * (response[:, 1:] - response[:, :-1]).square().mean(dim=1).sum()
        loss.backward()
        optimiser.step()
        _sync(dev)
        times.append(time.perf_counter() - started)
    batch = 8
    null_times = []
    with torch.no_grad():
        for _ in range(max(1, n_null // batch)):
            _sync(dev)
            started = time.perf_counter()
            kernel = torch.softmax(torch.randn((batch, n_neurons, width), generator=generator, device=dev), dim=-1)
            response = torch.nn.functional.conv2d(data, kernel[:, None], padding=(0, width // 2))[0, :, 0, :]
            _ = float(response.mean(dim=1).mean() + 5 * response.std(dim=1).mean())
            _sync(dev)
            null_times.append((time.perf_counter() - started) / batch)
    per_epoch = float(np.median(times[1:]))
    per_filter = float(np.median(null_times))
    return {"per_epoch_s": per_epoch, "epochs_timed": n_epochs, "per_null_filter_s": per_filter,
            "null_filters_timed": batch * len(null_times),
            "train_s_extrapolated": per_epoch * REF_EPOCHS, "null_s_extrapolated": per_filter * REF_NULL_FILTERS,
            "seconds": per_epoch * REF_EPOCHS + per_filter * REF_NULL_FILTERS, "extrapolated": True}
