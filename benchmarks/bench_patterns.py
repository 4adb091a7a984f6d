"""Several disjoint sequences in one recording: is each learned as its own pattern?

Run::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_patterns.py            # seeds 0-19 (about 2 min)
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_patterns.py --seeds 5

The recordings are those of ``tests/core/test_splitting.py`` and ``examples/detect_neo.py``, built by
:func:`convseq_neo.synthetic.generate.sequence_recording` with fixed seeds:

- ``K=3``: 48 neurons, 40 s, 2 Hz, three disjoint 12-member sequences (10 ms steps, participation
  1.0, 5 ms jitter), 20 occurrences each (``random_state=5``);
- ``K=2``: 60 neurons, 60 s, 2 Hz, two disjoint 12-member sequences (10 ms steps, participation
  0.9, 3 ms jitter), 25 occurrences each (``random_state=1``).

Each is fitted with ``detect(bin_size=5 ms, width=200 ms, n_patterns=K, max_epochs=300,
n_surrogates=50, n_folds=3)`` for detector seeds ``0 .. --seeds - 1`` and scored with
:func:`~convseq_neo.synthetic.evaluate.score_detections` (centres within 50 ms, learned patterns assigned
to planted ones by the Hungarian algorithm). Reported per layout: the seeds with every planted sequence
assigned a learned pattern, and the range and mean of the overall F1.

Writes ``benchmarks/results/bench_patterns.json``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine, save  # noqa: E402

LAYOUTS = {
    "K=3": {"n_neurons": 48, "n_patterns": 3, "duration_s": 40, "participation": 1.0, "jitter_ms": 5,
            "n_occurrences": 20, "random_state": 5},
    "K=2": {"n_neurons": 60, "n_patterns": 2, "duration_s": 60, "participation": 0.9, "jitter_ms": 3,
            "n_occurrences": 25, "random_state": 1},
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=20, help="detector seeds 0 .. SEEDS-1")
    args = parser.parse_args()

    import numpy as np
    import quantities as pq
    import torch

    from convseq_neo import detect
    from convseq_neo.synthetic.evaluate import score_detections
    from convseq_neo.synthetic.generate import sequence_recording

    torch.set_num_threads(1)
    started = time.perf_counter()
    rows, summary, lines = [], {}, []

    def say(line: str) -> None:
        print(line, flush=True)
        lines.append(line)

    for name, layout in LAYOUTS.items():
        recording = sequence_recording(n_neurons=layout["n_neurons"], n_patterns=layout["n_patterns"],
                                       members_per_pattern=12, duration=layout["duration_s"] * pq.s, rate=2 * pq.Hz,
                                       lag_step=10 * pq.ms, participation=layout["participation"],
                                       jitter=layout["jitter_ms"] * pq.ms, n_occurrences=layout["n_occurrences"],
                                       random_state=layout["random_state"])
        truth = recording.ground_truth
        f1s, all_found = [], 0
        for seed in range(args.seeds):
            result = detect(recording.spiketrains, bin_size=5 * pq.ms, width=200 * pq.ms,
                            n_patterns=layout["n_patterns"], random_state=seed, max_epochs=300, n_surrogates=50,
                            n_folds=3)
            scores = score_detections(result.occurrences["center"].to_numpy(),
                                      result.occurrences["pattern"].to_numpy(), truth.array_annotations["center"],
                                      truth.array_annotations["pattern_id"], tolerance=0.05)
            found = bool(scores.per_pattern["learned_pattern"].notna().all())
            all_found += found
            f1s.append(float(scores.f1))
            rows.append({"layout": name, "seed": seed, "f1": float(scores.f1), "all_found": found,
                         "per_pattern_f1": scores.per_pattern["f1"].astype(float).round(3).tolist()})
            say(f"{name} seed {seed}: F1 {scores.f1:.2f}, per sequence "
                f"{', '.join(f'{f:.2f}' for f in scores.per_pattern['f1'])}")
        summary[name] = {"seeds": args.seeds, "all_found": all_found, "f1_min": min(f1s), "f1_max": max(f1s),
                         "f1_mean": float(np.mean(f1s))}
        say(f"{name}: every sequence found with {all_found} of {args.seeds} seeds; overall F1 "
            f"{min(f1s):.2f}-{max(f1s):.2f} (mean {np.mean(f1s):.2f})")
    total = time.perf_counter() - started
    info = machine()
    say(f"{total:.0f} s on {info['processor']} ({info['cpu_count']} cores), torch {info['torch']}")
    text = "\n".join(line for line in lines if " seed " not in line)
    path = save("bench_patterns", {"summary": summary, "text": text, "rows": rows, "total_seconds": total})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
