"""NWB benchmark: read units and annotate a 500-unit x 600 s file (5 Hz, planted sequences).

Run: ``.venv/bin/python benchmarks/bench_nwb.py [--max-epochs N] [--threads N] [--quick]``.

Builds the file column-wise (not timed), then times

1. :func:`convseq_neo.io.nwb.read_units` (the ragged ``spike_times`` column, read once);
2. :func:`convseq_neo.io.nwb.annotate` to a copy, split by its internal stages into reading, the fit
   (detection with significance) and the safe write (copy, append the tables, read-back check,
   atomic replace).

Writes ``benchmarks/results/bench_nwb.json``.
"""

from __future__ import annotations

import argparse
import datetime
import tempfile
import time
from pathlib import Path

import numpy as np
import quantities as pq
import torch
from _common import save

from convseq_neo.io import nwb
from convseq_neo.synthetic.generate import sequence_recording


def build_file(path: Path, n_units: int, duration: float, seed: int) -> int:
    from hdmf.common import VectorData, VectorIndex
    from pynwb import NWBHDF5IO, NWBFile
    from pynwb.misc import Units

    rec = sequence_recording(n_neurons=n_units, n_patterns=2, members_per_pattern=30, duration=duration * pq.s,
                             rate=5 * pq.Hz, lag_step=10 * pq.ms, n_occurrences=int(duration / 6),
                             participation=0.9, jitter=5 * pq.ms, random_state=seed)
    trains = [t.times.rescale(pq.s).magnitude for t in rec.spiketrains]
    nwbfile = NWBFile(session_description="benchmark", identifier="bench",
                      session_start_time=datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc))
    times = VectorData(name="spike_times", description="the spike times for each unit in seconds",
                       data=np.concatenate(trains))
    index = VectorIndex(name="spike_times_index", data=np.cumsum([t.size for t in trains]), target=times)
    nwbfile.units = Units(name="units", description="sorted units", columns=[times, index],
                          id=np.arange(n_units))
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwbfile)
    return int(sum(t.size for t in trains))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=500)
    parser.add_argument("--duration", type=float, default=600.0, help="seconds")
    parser.add_argument("--max-epochs", type=int, default=50, help="fit length (the fit is bench_core's topic)")
    parser.add_argument("--n-surrogates", type=int, default=30)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--quick", action="store_true", help="100 units x 120 s")
    args = parser.parse_args()
    if args.quick:
        args.units, args.duration = 100, 120.0
    if args.threads:
        torch.set_num_threads(args.threads)
    # stage times from the outside: annotate reads the file, calls detect, then writes
    stamps: dict[str, float] = {}
    fit = nwb.detect

    def timed_detect(*args, **kwargs):
        stamps["read"] = time.perf_counter()
        result = fit(*args, **kwargs)
        stamps["detected"] = time.perf_counter()
        return result

    nwb.detect = timed_detect
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.nwb"
        n_spikes = build_file(path, args.units, args.duration, seed=0)
        size_mb = path.stat().st_size / 1e6
        reads = []
        for _ in range(5):
            started = time.perf_counter()
            trains = nwb.read_units(path)
            reads.append(time.perf_counter() - started)
        assert len(trains) == args.units
        print(f"{args.units} units x {args.duration:g} s ({n_spikes} spikes, {size_mb:.1f} MB): read_units "
              f"{np.median(reads) * 1e3:.1f} ms (median of 5); annotating...", flush=True)
        started = time.perf_counter()
        result = nwb.annotate(path, 5 * pq.ms, 200 * pq.ms, 2, out=Path(folder) / "out.nwb", random_state=0,
                              device=args.device, max_epochs=args.max_epochs, n_surrogates=args.n_surrogates)
        stamps["replaced"] = time.perf_counter()
        total = stamps["replaced"] - started
    payload = {
        "units": args.units, "duration_s": args.duration, "spikes": n_spikes, "file_mb": round(size_mb, 1),
        "read_units_s": float(np.median(reads)),
        "annotate_total_s": total,
        "annotate_read_s": stamps["read"] - started,
        "annotate_fit_s": stamps["detected"] - stamps["read"],
        "annotate_write_s": stamps["replaced"] - stamps["detected"],
        "max_epochs": args.max_epochs, "n_surrogates": args.n_surrogates,
        "epochs_run": [int(n) for n in result.model.n_epochs_],
        "occurrences": len(result.occurrences), "members": [p.size for p in result.patterns],
    }
    print(f"  annotate: read        {payload['annotate_read_s'] * 1e3:8.1f} ms")
    print(f"            fit         {payload['annotate_fit_s']:8.1f} s  ({payload['epochs_run']} epochs, "
          f"{payload['occurrences']} occurrences, members {payload['members']})")
    print(f"            safe write  {payload['annotate_write_s'] * 1e3:8.1f} ms (copy, append, check, replace)")
    print(f"            total       {total:8.1f} s")
    print(f"saved {save('bench_nwb', payload)}")


if __name__ == "__main__":
    main()
