"""The automatic search of ``detect(spiketrains)``: two time scales, compressed recurrence, CA1.

Run::

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/bench_scales.py                 # every part, seed 0
    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/bench_scales.py --parts two_scales --seeds 0 1 2
    CONVSEQ_DATA_DIR=../shared/data .venv/bin/python benchmarks/bench_scales.py --parts ca1

Nothing here passes a time scale to ``detect``: every fit is ``detect(trains, random_state=seed)``
(the package defaults: ``bin_size``, ``width`` and ``n_patterns`` all ``"auto"``; ``--objective`` sets
``ConvSeq(objective=...)``). The false-occurrence
side of the search is ``benchmarks/bench_null.py --auto``.

Parts:

- ``two_scales``: 120 neurons x 10 min, 3 Hz Poisson background, two disjoint 20-member sequences,
  member steps 10 ms (jitter 2 ms) and 100 ms (jitter 15 ms), participation 0.9, ``--occurrences``
  (default 40) occurrences of each at random times at least 2.5 s apart. Scored per planted
  sequence with :func:`~convseq_neo.synthetic.evaluate.score_detections` at a tolerance of a
  quarter of its planted span (47.5 ms and 475 ms); reported: F1 of each, the number of patterns
  reported and the wall time of ``detect``. Targets (issue): each F1 >= 0.8 with at most 4
  patterns, < 10 min on a 2-core CPU.
- ``compressed``: the same background; one 20-member sequence planted 20 times at 100 ms steps
  (jitter 15 ms) in the first 5 minutes and 20 times at 10 ms steps (jitter 2 ms) in the last 5.
  ``detect(trains)`` learns what it can; every kept pattern is then searched in the whole
  recording at the compressions ``warp = 1/10, 1/3, 1, 3, 10`` (``result.find(trains,
  warp=[...])``, each tested at ``alpha / 5``) and the planted occurrences of each half are scored
  (quarter-span tolerance) against the union of the searches.
- ``ca1``: ``detect(segment)`` on the mouse CA1 recording (needs ``CONVSEQ_DATA_DIR``), then
  :func:`~convseq_neo.analysis.placefields.place_field_order`: each pattern's running direction
  and its order against the place fields, Bonferroni over the patterns reported (target p < 0.01).

Writes ``benchmarks/results/bench_scales.json`` (the machine, the command, every row).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import DATA_DIR, RunLog  # noqa: E402

PARTS = ("two_scales", "compressed", "ca1")
N_NEURONS, DURATION_S, RATE_HZ, N_MEMBERS, PARTICIPATION = 120, 600.0, 3.0, 20, 0.9
FAST = {"step_ms": 10.0, "jitter_ms": 2.0}
SLOW = {"step_ms": 100.0, "jitter_ms": 15.0}
WARPS = [0.1, 1 / 3, 1.0, 3.0, 10.0]


def _span_s(step_ms: float) -> float:
    return (N_MEMBERS - 1) * step_ms / 1e3


def two_scale_recording(seed: int, n_occurrences: int):
    """The ``two_scales`` recording: trains and ``[(members, truth, step_ms), ...]`` (fast, slow)."""
    import quantities as pq

    from convseq_neo.synthetic.generate import plant_sequences, poisson_background

    rng = np.random.default_rng(seed)
    trains = poisson_background(N_NEURONS, RATE_HZ * pq.Hz, 0 * pq.s, DURATION_S * pq.s, random_state=rng)
    order = rng.permutation(N_NEURONS)
    planted = []
    for members, spec in ((order[:N_MEMBERS], FAST), (order[N_MEMBERS:2 * N_MEMBERS], SLOW)):
        trains, truth = plant_sequences(trains, [members], lag_step=spec["step_ms"] * pq.ms,
                                        n_occurrences=n_occurrences, participation=PARTICIPATION,
                                        jitter=spec["jitter_ms"] * pq.ms, min_gap=2.5 * pq.s, random_state=rng)
        planted.append((members, truth, spec["step_ms"]))
    return trains, planted


def compressed_recording(seed: int):
    """The ``compressed`` recording: trains and ``[(truth, step_ms), ...]`` for the slow and the fast half."""
    import quantities as pq

    from convseq_neo.synthetic.generate import plant_sequences, poisson_background

    rng = np.random.default_rng(seed)
    trains = poisson_background(N_NEURONS, RATE_HZ * pq.Hz, 0 * pq.s, DURATION_S * pq.s, random_state=rng)
    members = rng.permutation(N_NEURONS)[:N_MEMBERS]
    half = DURATION_S / 2
    planted = []
    for (start, stop), spec in (((0.0, half - 3.0), SLOW), ((half, DURATION_S - 1.0), FAST)):
        span = _span_s(spec["step_ms"])
        onsets = np.sort(rng.choice(np.arange(start, stop - span, span + 2.5), size=20, replace=False))
        trains, truth = plant_sequences(trains, [members], lag_step=spec["step_ms"] * pq.ms,
                                        occurrence_times=[onsets * pq.s], participation=PARTICIPATION,
                                        jitter=spec["jitter_ms"] * pq.ms, random_state=rng)
        planted.append((truth, spec["step_ms"]))
    return trains, members, planted


def _f1_against(occurrences, truth, tolerance_s: float) -> tuple[float, int]:
    """Best F1 of one learned pattern against one planted sequence (Hungarian assignment), and its pattern."""
    from convseq_neo.synthetic.evaluate import score_detections

    centers = truth.centers.rescale("s").magnitude
    scores = score_detections(occurrences["center"].to_numpy(float), occurrences["pattern"].to_numpy(int),
                              centers, np.zeros(centers.size, dtype=int), tolerance=tolerance_s)
    row = scores.per_pattern[scores.per_pattern["true_pattern"] == 0].iloc[0]
    if row["learned_pattern"] is None or row["learned_pattern"] != row["learned_pattern"]:
        return 0.0, -1
    return float(row["f1"]), int(row["learned_pattern"])


def run_two_scales(seed: int, n_occurrences: int, say, objective: str = "variance") -> dict:
    from convseq_neo import detect

    trains, planted = two_scale_recording(seed, n_occurrences)
    started = time.perf_counter()
    result = detect(trains, random_state=seed, objective=objective)
    seconds = time.perf_counter() - started
    row = {"part": "two_scales", "objective": objective, "seed": seed, "n_occurrences": n_occurrences,
           "seconds": seconds,
           "n_patterns": result.n_patterns, "scales_width_s": result.scales["width"].round(4).tolist(),
           "n_fits": int(result.parameters["n_fits"])}
    for name, (members, truth, step_ms) in zip(("fast", "slow"), planted):
        f1, learned = _f1_against(result.occurrences, truth, _span_s(step_ms) / 4)
        row[f"{name}_f1"] = f1
        if learned >= 0:
            pattern = result.patterns[learned]
            row[f"{name}_width_s"] = float(pattern.width)
            row[f"{name}_members_found"] = len(set(pattern.neurons.tolist()) & set(members.tolist()))
    say(f"two_scales seed {seed}: fast F1 {row['fast_f1']:.2f}, slow F1 {row['slow_f1']:.2f}, "
        f"{row['n_patterns']} pattern(s) reported (widths {[round(float(p.width), 3) for p in result.patterns]}), "
        f"{row['n_fits']} fits over windows {row['scales_width_s']} s, {seconds:.0f} s")
    return row


def run_compressed(seed: int, say, objective: str = "variance") -> dict:
    from convseq_neo import detect

    trains, members, planted = compressed_recording(seed)
    started = time.perf_counter()
    result = detect(trains, random_state=seed, objective=objective)
    learned_s = time.perf_counter() - started
    row = {"part": "compressed", "objective": objective, "seed": seed, "learn_seconds": learned_s,
           "n_patterns": result.n_patterns,
           "pattern_widths_s": [float(p.width) for p in result.patterns],
           "members_found": [len(set(p.neurons.tolist()) & set(members.tolist())) for p in result.patterns]}
    if result.n_patterns:
        started = time.perf_counter()
        found = result.find(trains, random_state=seed, warp=WARPS)
        row["find_seconds"] = time.perf_counter() - started
        occ = found.occurrences
        for name, (truth, step_ms) in zip(("slow_half", "fast_half"), planted):
            per_warp = {}
            for warp, rows in occ.groupby("warp"):
                f1, _ = _f1_against(rows, truth, _span_s(step_ms) / 4)
                per_warp[round(float(warp), 3)] = round(f1, 3)
            merged = occ.assign(pattern=0)
            row[f"{name}_f1_any_warp"] = _f1_against(merged, truth, _span_s(step_ms) / 4)[0]
            row[f"{name}_f1_by_warp"] = per_warp
    else:
        for name in ("slow_half", "fast_half"):
            row[f"{name}_f1_any_warp"] = 0.0
            row[f"{name}_f1_by_warp"] = {}
    say(f"compressed seed {seed}: {row['n_patterns']} pattern(s) learned (widths {row['pattern_widths_s']} s, "
        f"members found {row['members_found']}); 100 ms half F1 {row['slow_half_f1_any_warp']:.2f} "
        f"{row['slow_half_f1_by_warp']}, 10 ms half F1 {row['fast_half_f1_any_warp']:.2f} "
        f"{row['fast_half_f1_by_warp']} (F1 by warp; any warp merges them)")
    return row


def run_ca1(say, objective: str = "variance") -> dict:
    import quantities as pq

    from convseq_neo import detect
    from convseq_neo.analysis.placefields import place_field_order, track_movement
    from convseq_neo.io.datasets import load_rubin_ca1

    segment = load_rubin_ca1(DATA_DIR, download=False)
    started = time.perf_counter()
    result = detect(segment, random_state=0, objective=objective)
    seconds = time.perf_counter() - started
    movement = track_movement(segment.analogsignals[0], smoothing=0.25 * pq.s, min_speed=5 * pq.cm / pq.s)
    table = place_field_order(result, segment, movement, n_permutations=10_000, random_state=0)
    n = max(result.n_patterns, 1)
    table["pvalue_bonferroni"] = np.minimum(table["pvalue"] * n, 1.0)
    row = {"part": "ca1", "objective": objective, "seconds": seconds, "n_patterns": result.n_patterns,
           "scales_width_s": result.scales["width"].round(4).tolist(),
           "patterns": [{"width_s": float(p.width), "n_members": p.size, "n_occurrences": p.n_occurrences}
                        for p in result.patterns],
           "order": table.to_dict(orient="records")}
    say(f"ca1: {result.n_patterns} pattern(s) over windows {row['scales_width_s']} s in {seconds:.0f} s")
    names = {1: "rightward", -1: "leftward", 0: "undecided"}
    for record, pattern in zip(table.itertuples(), result.patterns):
        say(f"  pattern {record.pattern} ({float(pattern.width):.3g} s window): {names[record.direction]}, "
            f"{record.n_members} members ({record.n_with_field} with a field), {record.n_occurrences} occurrences, "
            f"rho {record.rho:.2f}, Bonferroni p {record.pvalue_bonferroni:.3g}")
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0], help="recording and detector seeds")
    parser.add_argument("--occurrences", type=int, default=40, help="occurrences of each sequence in two_scales")
    parser.add_argument("--objective", choices=("variance", "normalized"), default="variance",
                        help="ConvSeq(objective=...) of every fit (default: the package's)")
    parser.add_argument("--out", default="bench_scales", help="name of the results file")
    args = parser.parse_args()

    log, rows = RunLog(), []
    for part in args.parts:
        if part == "ca1":
            rows.append(run_ca1(log.say, args.objective))
            continue
        for seed in args.seeds:
            rows.append(run_two_scales(seed, args.occurrences, log.say, args.objective) if part == "two_scales"
                        else run_compressed(seed, log.say, args.objective))
    log.save(args.out, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
