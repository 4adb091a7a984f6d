"""Tests for convseq_neo._memory: a fit too large for the memory is refused before anything is allocated."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import neo
import numpy as np
import pytest
import quantities as pq

from convseq_neo import _memory
from convseq_neo._memory import (
    UNKNOWN_AVAILABLE_BYTES,
    available_memory_bytes,
    check_fit_memory,
    estimate_fit_bytes,
    format_bytes,
)
from convseq_neo.detect import detect
from convseq_neo.io.neo import plan_raster, to_raster
from convseq_neo.result import DetectionResult  # detect() imports it (and the core) on its first call

ROOT = Path(__file__).resolve().parent.parent
GB = 10**9
#: A tiny fit: checks of plumbing, not of recovery.
TINY = dict(max_epochs=5, min_epochs=0, n_surrogates=5, n_folds=2, n_init=1)


def _recording(duration_s=300.0, n=60, rate=5.0, seed=0):
    rng = np.random.default_rng(seed)
    return [neo.SpikeTrain(np.sort(rng.uniform(0, duration_s, rng.poisson(rate * duration_s))), units="s",
                           t_stop=duration_s) for _ in range(n)]


@pytest.fixture(scope="module")
def recording():
    return _recording()


# ---------------------------------------------------------------------------------------------- available memory
def test_available_memory_is_read(monkeypatch):
    available = available_memory_bytes()
    assert available is not None and 0 < available
    if Path("/proc/meminfo").is_file():
        # MemAvailable moves between two reads while other processes run: compare against one reading
        meminfo = _memory._meminfo_available()
        monkeypatch.setattr(_memory, "_meminfo_available", lambda: meminfo)
        assert available_memory_bytes() <= meminfo  # a cgroup limit can only lower it


def test_meminfo_is_parsed(tmp_path):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       32000000 kB\nMemFree:  1000 kB\nMemAvailable:   2000000 kB\n")
    assert _memory._meminfo_available(meminfo) == 2_000_000 * 1024
    meminfo.write_text("MemTotal:       32000000 kB\n")
    assert _memory._meminfo_available(meminfo) is None
    assert _memory._meminfo_available(tmp_path / "missing") is None


@pytest.mark.parametrize(("files", "expected"), [
    ({"memory.max": "4000000000", "memory.current": "1500000000", "memory.stat": "anon 1\ninactive_file 500000000\n"},
     3_000_000_000),
    ({"memory.max": "max", "memory.current": "1500000000"}, None),
    ({"memory/memory.limit_in_bytes": "2000000000", "memory/memory.usage_in_bytes": "500000000"}, 1_500_000_000),
    ({"memory/memory.limit_in_bytes": str(2**63 - 4096), "memory/memory.usage_in_bytes": "5"}, None),
    ({}, None),
])
def test_cgroup_limits(tmp_path, files, expected):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert _memory._cgroup_available(tmp_path) == expected


def test_available_memory_fallbacks(monkeypatch):
    monkeypatch.setattr(_memory, "_meminfo_available", lambda: None)
    monkeypatch.setitem(sys.modules, "psutil", None)  # not installed
    assert available_memory_bytes() == os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")

    def no_sysconf(name):
        raise ValueError(name)

    monkeypatch.setattr(os, "sysconf", no_sysconf)
    assert available_memory_bytes() is None


def test_psutil_is_used_without_proc_meminfo(monkeypatch):
    class FakePsutil:
        @staticmethod
        def virtual_memory():
            return type("Memory", (), {"available": 123_456_789})()

    monkeypatch.setattr(_memory, "_meminfo_available", lambda: None)
    monkeypatch.setitem(sys.modules, "psutil", FakePsutil)
    assert available_memory_bytes() == 123_456_789


# ---------------------------------------------------------------------------------------------- the estimate
def test_estimate_grows_with_every_size():
    base = estimate_fit_bytes(60, 100_000, 60)
    assert estimate_fit_bytes(60, 1_000_000, 60) > 9 * (base - _memory._FIXED_BYTES)
    assert estimate_fit_bytes(60, 100_000, 60, n_init=4) > 1.8 * (base - _memory._FIXED_BYTES)
    assert estimate_fit_bytes(60, 100_000, 60, n_folds=2) < base
    assert estimate_fit_bytes(60, 100_000, 60, n_patterns=5) > base
    assert estimate_fit_bytes(6000, 100_000, 600) > estimate_fit_bytes(60, 100_000, 600)
    assert estimate_fit_bytes(60, 100_000, 60, n_spikes=10**6) > estimate_fit_bytes(60, 100_000, 60, n_spikes=10**4)
    # one bin per ns over 5 min: hundreds of terabytes, computed without overflow
    assert estimate_fit_bytes(60, 300 * 10**9, 300 * 10**6) > 100e12


def test_core_constants_are_mirrored():
    from convseq_neo.core.response import MAX_DENSE_CELLS, MAX_TOEPLITZ_ENTRIES
    from convseq_neo.core.significance import SURROGATE_SPIKE_BUDGET

    assert _memory._SURROGATE_SPIKE_BUDGET == SURROGATE_SPIKE_BUDGET
    assert _memory._MAX_TOEPLITZ_ENTRIES == MAX_TOEPLITZ_ENTRIES
    assert _memory._MAX_DENSE_CELLS == MAX_DENSE_CELLS


_MEASURE = """
import json, os, resource, sys
import numpy as np, torch
torch.set_num_threads(1)
from convseq_neo.core.estimator import ConvSeq
from convseq_neo.raster import SpikeRaster
n, T = 60, int(sys.argv[1])
rng = np.random.default_rng(0)
cells = np.unique(rng.integers(0, n * T, rng.binomial(n * T, 0.005)))
raster = SpikeRaster(cells // T, cells % T, np.ones(cells.size, int), n, T, bin_size_s=0.005)
raster.by_bin
def status(field):
    with open("/proc/self/status") as lines:
        return next(int(line.split()[1]) * 1024 for line in lines if line.startswith(field))
try:  # reset the peak (VmHWM) so that a peak during the imports is not counted
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")
    reset = True
except OSError:
    reset = False
before = status("VmRSS")
ConvSeq(width=60, max_epochs=20, min_epochs=0, n_surrogates=5, random_state=0, device="cpu").fit(raster)
peak = status("VmHWM") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"used": peak - before, "nnz": raster.nnz}))
"""


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="reads VmRSS from /proc")
def test_estimate_is_conservative_but_not_absurd():
    # a real fit's peak resident memory, in a fresh process (ru_maxrss never goes down)
    n_bins = 50_000
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", _MEASURE, str(n_bins)], capture_output=True, text=True, check=True,
                         cwd=ROOT, env=env, timeout=300)
    measured = json.loads(out.stdout.strip().splitlines()[-1])
    estimate = estimate_fit_bytes(60, n_bins, 60, n_surrogates=5, n_spikes=measured["nnz"])
    assert measured["used"] <= estimate <= 3 * measured["used"], (format_bytes(measured["used"]),
                                                                  format_bytes(estimate))


# ---------------------------------------------------------------------------------------------- the check
def test_check_passes_and_returns_the_estimate():
    needed = check_fit_memory(60, 60_000, 60, available=16 * GB)
    assert needed == estimate_fit_bytes(60, 60_000, 60)


def test_check_refuses_with_what_to_change():
    with pytest.raises(ValueError) as info:
        check_fit_memory(60, 300 * 10**9, 300 * 10**6, bin_size_s=1e-9, available=16 * GB)
    message = str(info.value)
    for part in ("bin_size (1e-09 s)", "300,000,000,000 bins over 300 s", "TB of memory", "16 GB is available",
                 "use a larger bin_size", "shorter window"):
        assert part in message
    with pytest.raises(ValueError, match="a raster of 60 neurons x 10,000,000 bins: .* larger bin size"):
        check_fit_memory(60, 10**7, 60, available=GB)
    # huge filters: the width is named too
    with pytest.raises(ValueError, match="shorter width"):
        check_fit_memory(100_000, 1_000_000, 100_000, available=100 * GB)


def test_unknown_memory_refuses_only_absurd_fits(monkeypatch):
    monkeypatch.setattr(_memory, "available_memory_bytes", lambda: None)
    check_fit_memory(60, 10**8, 60)  # 100 GB would be refused on most machines, not here
    with pytest.raises(ValueError, match=format_bytes(UNKNOWN_AVAILABLE_BYTES)):
        check_fit_memory(60, 300 * 10**9, 300 * 10**6)


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"n_patterns": 0}, ValueError, "n_patterns"),
    ({"n_init": 2.0}, TypeError, "n_init"),
    ({"n_folds": -1}, ValueError, "n_folds"),
    ({"n_surrogates": "200"}, TypeError, "n_surrogates"),
    ({"n_spikes": 1.5}, TypeError, "n_spikes"),
])
def test_check_rejects_bad_sizes(kwargs, error, match):
    with pytest.raises(error, match=match):
        check_fit_memory(60, 1000, 60, available=GB, **kwargs)


def test_check_accepts_a_float_spike_count():
    check_fit_memory(60, 1000, 60, n_spikes=1234.0, available=GB)  # SpikeRaster.n_spikes is a float


# ---------------------------------------------------------------------------------------------- at the front door
def test_detect_with_one_nanosecond_bins_fails_fast_without_allocating(recording):
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(ValueError) as info:
            detect(recording, n_patterns=1, bin_size=1 * pq.ns, width=300 * pq.ms)
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    message = str(info.value)
    assert message.startswith("bin_size (1e-09 s) gives 300,000,000,000 bins")
    assert "available" in message and "larger bin_size" in message
    assert elapsed < 2.0
    assert peak < 50e6  # a few copies of the spike times at most


def test_normal_detect_passes_the_check(recording):
    result = detect(recording, n_patterns=1, bin_size=5 * pq.ms, width=300 * pq.ms, random_state=0, **TINY)
    assert isinstance(result, DetectionResult) and result.raster.shape == (60, 60_000)


def test_plan_raster_uses_the_fit_parameters(recording, monkeypatch):
    # 1 ms bins over 300 s: 300,000 bins; with a 20 ms width about 610 MB for a default fit, 370 MB for a small one
    monkeypatch.setattr(_memory, "available_memory_bytes", lambda: 500_000_000)
    with pytest.raises(ValueError, match="bin_size .* gives 300,000 bins over 300 s"):
        plan_raster(recording, 1 * pq.ms, width=20 * pq.ms)
    plan = plan_raster(recording, 1 * pq.ms, width=20 * pq.ms, n_init=1, n_folds=2)
    assert plan.n_bins == 300_000 and plan.n_spikes == sum(train.size for train in recording)
    with pytest.raises(ValueError, match="bin_size"):
        plan_raster(recording, 1 * pq.ms, width=20 * pq.ms, n_init=1, n_folds=2, n_patterns=20)
    with pytest.raises(TypeError, match="n_init"):
        plan_raster(recording, 5 * pq.ms, width=300 * pq.ms, n_init="2")


def test_binning_alone_is_not_refused(recording):
    # no width, no fit: the sparse raster costs only its spikes, at any bin size
    started = time.perf_counter()
    raster = to_raster(recording[:5], 1 * pq.ns)
    assert raster.n_bins == 300 * 10**9 and time.perf_counter() - started < 2.0
    assert plan_raster(recording, 1 * pq.ns).width_bins is None
