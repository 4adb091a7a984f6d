"""Sensitivity of the null's surrogates: the planted cases of the tests and of ``bench_core``, per surrogate kind.

Run: ``CONVSEQ_DATA_DIR=../shared/data .venv/bin/python benchmarks/bench_planted.py [--surrogates dither circular]
[--jobs 2]`` (about 10 minutes on 2 cores). Writes ``results/bench_planted.json``.

Each case is fit with package defaults and a fixed seed, once per ``surrogates`` kind, so the
table shows what changing the null costs in sensitivity on the same data and seeds ("circular" is
the first release's null). Cases:

- ``one``: the test suite's recipe (``tests/conftest.py``): 100 neurons x 120 s, 5 ms bins, 2 Hz,
  one 20-member sequence (10 ms steps), 40 occurrences, participation 0.9, jitter 10 ms; W = 60.
- ``two``: the same recipe with two disjoint sequences, K = 2.
- ``reverse``: a sequence and its reverse on the same neurons (``tests/core/test_estimator.py``, seed 3), K = 2.
- ``ca1 planted`` and ``ca1 recipe``: ``bench_core``'s (a) and (b) on the ISI-shuffled CA1
  background (W = 200 frames), and the background alone.

F1 is event F1 at a quarter of the width on occurrence centres (``convseq_neo.synthetic.evaluate``).
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import quantities as pq
from _common import WIDTH, ca1_raster, machine, planted_sequence, save

RECIPE = {"n_neurons": 100, "members_per_pattern": 20, "duration": 120 * pq.s, "bin_size": 5 * pq.ms,
          "rate": 2 * pq.Hz, "lag_step": 10 * pq.ms, "n_occurrences": 40, "participation": 0.9,
          "jitter": 10 * pq.ms}
CASES = ("one", "two", "reverse", "ca1 background", "ca1 planted", "ca1 recipe")


def _case(name: str):
    """(raster, list of true centre arrays (bins), n_patterns, width)."""
    from convseq_neo.synthetic.generate import reference_recipe, sequence_recording, shuffle_isis_raster

    if name in ("one", "two", "reverse"):
        n_patterns = 1 if name == "one" else 2
        layout = "reverse" if name == "reverse" else "disjoint"
        seed = 3 if name == "reverse" else 0
        recording = sequence_recording(n_patterns=n_patterns, layout=layout, random_state=seed, **RECIPE)
        truth = [recording.centers_bins(k) for k in range(n_patterns)]
        return recording.raster, truth, n_patterns, 60
    background = shuffle_isis_raster(ca1_raster(), random_state=0)
    if name == "ca1 background":
        return background, [], 1, WIDTH
    if name == "ca1 planted":
        planted, truth = planted_sequence(background, np.random.default_rng(1))
        return planted, [truth], 1, WIDTH
    recipe = reference_recipe(background, random_state=0)
    return recipe.raster, [recipe.midpoints_bins], 1, WIDTH


def run(name: str, surrogates: str) -> dict:
    import torch

    from convseq_neo import ConvSeq
    from convseq_neo.synthetic.evaluate import score_detections

    torch.set_num_threads(1)
    raster, truth, n_patterns, width = _case(name)
    started = time.perf_counter()
    model = ConvSeq(n_patterns=n_patterns, width=width, surrogates=surrogates, random_state=0).fit(raster)
    seconds = time.perf_counter() - started
    found = model.occurrences_[model.occurrences_["significant"]]
    row = {"case": name, "surrogates": surrogates, "seconds": round(seconds, 1), "n_significant": len(found),
           "n_members": int(model.membership_["member"].sum()), "f1": []}
    if truth:
        times = np.concatenate(truth)
        labels = np.concatenate([np.full(len(t), k) for k, t in enumerate(truth)])
        scores = score_detections(found["center"].to_numpy(), found["pattern"].to_numpy(), times, labels, width / 4)
        table = scores.per_pattern.dropna(subset=["true_pattern"]).sort_values("true_pattern")
        row["f1"] = [round(float(v), 3) for v in table["f1"]]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=CASES)
    parser.add_argument("--surrogates", nargs="+", default=["circular", "dither"])
    parser.add_argument("--jobs", type=int, default=1)
    args = parser.parse_args()
    jobs = [(case, kind) for case in args.cases for kind in args.surrogates]
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        rows = list(pool.map(run, *zip(*jobs)))
    print(f"{'case':>16} {'surrogates':>10} {'F1 per pattern':>16} {'significant':>11} {'members':>7} {'s':>6}")
    for row in rows:
        f1 = " / ".join(f"{v:.3f}" for v in row["f1"]) or "-"
        print(f"{row['case']:>16} {row['surrogates']:>10} {f1:>16} {row['n_significant']:>11} "
              f"{row['n_members']:>7} {row['seconds']:>6.1f}")
    info = machine()
    print(f"machine: {info}")
    print(f"wrote {save('bench_planted', {'rows': rows, 'machine': info})}")


if __name__ == "__main__":
    main()
