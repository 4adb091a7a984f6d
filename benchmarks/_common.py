"""Helpers shared by the benchmark scripts: machine description, data location, JSON output."""

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
import torch

RESULTS = Path(__file__).resolve().parent / "results"
DATA_DIR = Path(os.environ.get("CONVSEQ_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data"))


def machine() -> dict:
    """What the numbers were measured on."""
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
