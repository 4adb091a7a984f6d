"""Many NWB files on dask.distributed: ``annotate_many`` with 1 and 2 worker processes, then a re-run.

Run: ``.venv/bin/python benchmarks/bench_batch.py [--sessions 8] [--units 60] [--minutes 2] [--max-epochs N]``.

Builds ``--sessions`` NWB files (not timed), each a :func:`convseq_neo.synthetic.session.session_recording`
of ``--units`` units over ``--minutes`` (log-normal Poisson background, median 4 Hz) with one planted
20-member sequence (10 ms apart, participation 0.9, jitter 5 ms, 40 occurrences), a different seed per
session. Then, each on fresh copies of the files and timed from the call to the return (the local
cluster's start and stop included, as a user sees it):

1. :func:`convseq_neo.io.nwb_batch.annotate_many` with ``n_workers=1``;
2. the same with ``n_workers=2``;
3. the same call again on the files annotated in 2: every file is skipped (a re-run of a finished batch).

Every fit runs with ``n_jobs=1`` (one thread per worker process), the same seed and
``max_epochs=--max-epochs``, ``n_surrogates=--n-surrogates``, ``n_folds=3`` (bin 5 ms, width 300 ms),
so the two runs do the same work and must store the same occurrences (checked). Reported: the wall
seconds of each run, the sum of its tasks' seconds (the work without the cluster's overhead), the
speed-up of 2 workers over 1, the re-run's seconds and the load average, which matters on a shared
machine. Targets (printed as PASS / MISS, never adjusted): speed-up >= 1.6 with 2 workers, re-run < 10 s.

Writes ``benchmarks/results/bench_batch.json``.
"""

from __future__ import annotations

import argparse
import datetime
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import quantities as pq
from _common import save

SPEEDUP_TARGET = 1.6
RERUN_TARGET_S = 10.0


def build_file(path: Path, n_units: int, minutes: float, seed: int) -> int:
    """An NWB file of one session (Units table only); returns its number of spikes."""
    from hdmf.common import VectorData, VectorIndex
    from pynwb import NWBHDF5IO, NWBFile
    from pynwb.misc import Units

    from convseq_neo.synthetic.session import session_recording

    rec = session_recording(n_units, minutes * pq.min, n_members=20, lag_step=10 * pq.ms, participation=0.9,
                            jitter=5 * pq.ms, n_occurrences=40, random_state=seed)
    trains = [t.times.rescale(pq.s).magnitude for t in rec.spiketrains]
    nwbfile = NWBFile(session_description=f"benchmark session {seed}", identifier=f"bench-batch-{seed}",
                      session_start_time=datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc))
    times = VectorData(name="spike_times", description="the spike times for each unit in seconds",
                       data=np.concatenate(trains))
    index = VectorIndex(name="spike_times_index", data=np.cumsum([t.size for t in trains]), target=times)
    nwbfile.units = Units(name="units", description="sorted units", columns=[times, index], id=np.arange(n_units))
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwbfile)
    return int(sum(t.size for t in trains))


def timed_batch(paths: list[Path], n_workers: int, options: dict) -> tuple[float, object]:
    from convseq_neo.io.nwb_batch import annotate_many

    started = time.perf_counter()
    frame = annotate_many(paths, 5 * pq.ms, 300 * pq.ms, n_workers=n_workers, n_jobs=1, **options)
    return time.perf_counter() - started, frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--units", type=int, default=60)
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--max-epochs", type=int, default=300)
    parser.add_argument("--n-surrogates", type=int, default=100)
    args = parser.parse_args()
    from convseq_neo.io import nwb

    options = {"random_state": 0, "max_epochs": args.max_epochs, "n_surrogates": args.n_surrogates, "n_folds": 3}
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "source"
        source.mkdir()
        sources = [source / f"session{i:02d}.nwb" for i in range(args.sessions)]
        spikes = [build_file(path, args.units, args.minutes, seed=i) for i, path in enumerate(sources)]
        runs, frames = {}, {}
        for workers in (1, 2):
            target = Path(folder) / f"workers{workers}"
            target.mkdir()
            paths = [Path(shutil.copy2(p, target / p.name)) for p in sources]
            seconds, frame = timed_batch(paths, workers, options)
            frames[workers] = frame
            runs[f"workers_{workers}"] = {"seconds": seconds, "task_seconds": float(frame["seconds"].sum()),
                                          "status": frame["status"].value_counts().to_dict(),
                                          "occurrences": [int(n) if n == n else None for n in frame["occurrences"]]}
            print(f"{workers} worker(s): {seconds:.1f} s wall, {frame['seconds'].sum():.1f} s in tasks, "
                  f"{runs[f'workers_{workers}']['status']}", flush=True)
        paths = sorted((Path(folder) / "workers2").glob("*.nwb"))
        rerun_s, rerun = timed_batch(paths, 2, options)
        runs["rerun"] = {"seconds": rerun_s, "task_seconds": float(rerun["seconds"].sum()),
                         "status": rerun["status"].value_counts().to_dict()}
        print(f"re-run (2 workers): {rerun_s:.1f} s wall, {runs['rerun']['status']}", flush=True)
        same = all(np.array_equal(nwb.read_detections(Path(folder) / "workers1" / p.name).occurrences.to_numpy(),
                                  nwb.read_detections(p).occurrences.to_numpy()) for p in paths)
    speedup = runs["workers_1"]["seconds"] / runs["workers_2"]["seconds"]
    all_ok = all(frames[w]["status"].eq("ok").all() for w in (1, 2)) and rerun["status"].eq("skipped").all()
    verdicts = {"speedup": "PASS" if speedup >= SPEEDUP_TARGET else "MISS",
                "rerun": "PASS" if rerun_s < RERUN_TARGET_S else "MISS"}
    text = (f"{args.sessions} sessions of {args.units} units x {args.minutes:g} min "
            f"({int(np.mean(spikes))} spikes each on average), fits with n_jobs=1, max_epochs={args.max_epochs}, "
            f"n_surrogates={args.n_surrogates}, n_folds=3\n"
            f"1 worker : {runs['workers_1']['seconds']:7.1f} s ({runs['workers_1']['task_seconds']:.1f} s in tasks)\n"
            f"2 workers: {runs['workers_2']['seconds']:7.1f} s ({runs['workers_2']['task_seconds']:.1f} s in tasks)\n"
            f"speed-up : {speedup:7.2f}x (target >= {SPEEDUP_TARGET}: {verdicts['speedup']})\n"
            f"re-run   : {rerun_s:7.1f} s, {runs['rerun']['status']} (target < {RERUN_TARGET_S:g} s: "
            f"{verdicts['rerun']})\n"
            f"every file ok, then skipped: {all_ok}; same occurrences with 1 and 2 workers: {same}\n"
            f"load average at start {tuple(round(v, 2) for v in load_start)}, at end "
            f"{tuple(round(v, 2) for v in os.getloadavg())}")
    print(text)
    path = save("bench_batch", {"parameters": {**vars(args), **options, "bin_size_ms": 5, "width_ms": 300,
                                               "n_jobs": 1},
                                "runs": runs, "speedup": speedup, "rerun_seconds": rerun_s, "all_ok": all_ok,
                                "same_occurrences": same, "verdicts": verdicts, "load_average_start": load_start,
                                "load_average_end": os.getloadavg(), "text": text})
    print(f"wrote {path}")
    if not (all_ok and same):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
