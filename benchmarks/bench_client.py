"""One fit's independent work on a dask cluster: ``detect(..., client=client)`` against one process.

Run::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_client.py            # 100 units x 5 min
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_client.py --quick    # 60 units x 2 min

The recording is :func:`convseq_neo.synthetic.session.session_recording` (``--units`` Poisson units
over ``--minutes`` with one planted 30-unit sequence, 3 occurrences a minute, seed 0). Detection:
``detect(spiketrains, bin_size=10 ms, width=0.8 s, n_patterns=2, random_state=0, n_jobs=1,
device="cpu")`` with the package's other defaults (5 folds: 6 models trained; 200 surrogates in 8
chunks), first in this process with one thread, then with a ``distributed.LocalCluster`` of
``--workers`` worker processes of one thread each (the cluster is started before the clock starts).

Reported: the wall time of each run, the speed-up, the split of the fit into training, significance
and membership seconds, whether the filters agree to float rounding (the workers train the models in
other batches, so sums may round differently; largest difference printed) and whether the detections
are the same (count, centres and patterns). The target of the issue is a speed-up measured with 2 workers
against 1 process; the ideal is below 2 because the reference threshold, the members and the test
run in the calling process, the 6 model trainings are cut into one batch per worker thread, and a
batch of filters costs little more per epoch than one filter (so one process training all 6 models
together is efficient).

Writes ``benchmarks/results/bench_client[_quick].json``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine, save  # noqa: E402


def _run(spiketrains, client):
    import quantities as pq

    from convseq_neo import detect

    started = time.perf_counter()
    result = detect(spiketrains, bin_size=10 * pq.ms, width=0.8 * pq.s, n_patterns=2, random_state=0, n_jobs=1,
                    device="cpu", client=client)
    return result, time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="60 units x 2 min instead of 100 units x 5 min")
    parser.add_argument("--units", type=int, default=None)
    parser.add_argument("--minutes", type=float, default=None)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    units = args.units or (60 if args.quick else 100)
    minutes = args.minutes or (2.0 if args.quick else 5.0)

    import numpy as np
    import pandas as pd
    import quantities as pq
    import torch
    from distributed import Client, LocalCluster

    from convseq_neo.synthetic.session import session_recording

    torch.set_num_threads(1)
    session = session_recording(n_units=units, duration=minutes * 60 * pq.s, n_occurrences=int(3 * minutes),
                                random_state=0)
    print(f"machine: {machine()}")
    print(f"recording: {units} units x {minutes:g} min, {sum(len(t) for t in session.spiketrains)} spikes")

    alone, alone_s = _run(session.spiketrains, None)
    print(f"1 process, 1 thread: {alone_s:.1f} s  {alone.model.timings_}")
    with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=40) as cluster, Client(cluster) as client:
        spread, spread_s = _run(session.spiketrains, client)
    print(f"{args.workers} workers x 1 thread: {spread_s:.1f} s  {spread.model.timings_}")
    same_filters = bool(np.allclose(alone.model.filters_, spread.model.filters_, rtol=1e-4, atol=1e-7))
    max_difference = float(np.abs(alone.model.filters_ - spread.model.filters_).max())
    a, b = alone.occurrences, spread.occurrences
    same_detections = bool(isinstance(b, pd.DataFrame) and len(a) == len(b)
                           and np.allclose(a["center"].to_numpy(float), b["center"].to_numpy(float))
                           and (a["pattern"].to_numpy() == b["pattern"].to_numpy()).all())
    identical = same_filters and same_detections
    speedup = alone_s / spread_s
    print(f"speed-up {speedup:.2f}x with {args.workers} workers; filters equal to float rounding: {same_filters} "
          f"(largest difference {max_difference:.2g}); same detections: {same_detections}; "
          f"{len(alone.occurrences)} occurrences")
    path = save("bench_client_quick" if args.quick else "bench_client", {
        "units": units, "minutes": minutes, "workers": args.workers, "threads_per_worker": 1,
        "one_process_s": alone_s, "client_s": spread_s, "speedup": speedup, "same_filters": same_filters,
        "largest_filter_difference": max_difference, "same_detections": same_detections,
        "one_process_timings": alone.model.timings_, "client_timings": spread.model.timings_,
        "n_occurrences": int(len(alone.occurrences)),
    })
    print(f"wrote {path}")
    return 0 if identical else 1


if __name__ == "__main__":
    raise SystemExit(main())
