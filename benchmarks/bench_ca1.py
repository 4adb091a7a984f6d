"""The CA1 place-cell analysis of ``notebooks/02_ca1_place_cells.ipynb`` repeated over random seeds.

Run::

    CONVSEQ_DATA_DIR=../shared/data .venv/bin/python benchmarks/bench_ca1.py             # seeds 0-4
    CONVSEQ_DATA_DIR=../shared/data .venv/bin/python benchmarks/bench_ca1.py --seeds 3   # seeds 0-2
    CONVSEQ_DATA_DIR=../shared/data .venv/bin/python benchmarks/bench_ca1.py --seeds 1 --objective normalized

For each seed, on the Rubin et al. (2019) recording loaded with ``load_rubin_ca1``: ``detect`` with
two patterns, 50 ms bins and 3 s filters (the notebook's settings); each pattern's running direction
and the rank correlation of its learned lags with that direction's place fields (one-sided
label-permutation p-value, 10,000 permutations); and the held-out replication (learned on the first
half, counted on the second half and on the second half with each neuron circularly shifted).
Writes ``results/bench_ca1.json`` and prints one line per pattern and seed plus a summary: in how
many seeds at least one pattern's order follows its direction's place fields with the predicted sign
at p < 0.01, and in how many the held-out occurrences number at least 10 and 3x the shifted ones.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import quantities as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import DATA_DIR, machine, save  # noqa: E402

from convseq_neo import detect  # noqa: E402
from convseq_neo.analysis.placefields import place_field_order, track_movement  # noqa: E402
from convseq_neo.analysis.replication import held_out_replication  # noqa: E402
from convseq_neo.io.datasets import load_rubin_ca1  # noqa: E402

BIN = 50 * pq.ms
WIDTH = 3 * pq.s
N_PATTERNS = 2
NAMES = {1: "rightward", -1: "leftward", 0: "undecided"}


def one_seed(segment, movement, seed: int, objective: str = "variance") -> dict:
    started = time.perf_counter()
    result = detect(segment, bin_size=BIN, width=WIDTH, n_patterns=N_PATTERNS, random_state=seed,
                    objective=objective)
    order = place_field_order(result, segment, movement, n_permutations=10_000, random_state=seed)
    replication = held_out_replication(segment, bin_size=BIN, width=WIDTH, n_patterns=N_PATTERNS,
                                       random_state=seed, objective=objective)
    counts = replication.counts
    seconds = time.perf_counter() - started
    predicted = [bool(row.direction != 0 and row.pvalue < 0.01 and row.rho * row.direction > 0)
                 for row in order.itertuples()]
    replicated = [bool(row.held_out >= 10 and row.held_out >= 3 * row.shifted) for row in counts.itertuples()]
    for row in order.itertuples():
        print(f"seed {seed} pattern {row.pattern}: {NAMES[row.direction]:>9}, {row.n_members} members, "
              f"{row.n_occurrences} occurrences, rho {row.rho:+.2f}, p {row.pvalue:.1e}", flush=True)
    for row in counts.itertuples():
        print(f"seed {seed} held-out pattern {row.pattern}: {row.held_out} held-out vs {row.shifted} shifted",
              flush=True)
    return {"seed": seed, "seconds": seconds, "order": order.to_dict(orient="records"),
            "replication": counts.to_dict(orient="records"),
            "order_with_predicted_sign_p_below_0.01": any(predicted),
            "held_out_at_least_10_and_3x_shifted": any(replicated)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0 .. SEEDS-1")
    parser.add_argument("--objective", choices=("variance", "normalized"), default="variance",
                        help="ConvSeq(objective=...) of the fits")
    parser.add_argument("--out", default=None, help="name of the results file (default bench_ca1, or "
                        "bench_ca1_normalized with --objective normalized)")
    args = parser.parse_args()
    print("machine:", machine(), flush=True)
    segment = load_rubin_ca1(DATA_DIR, download=False)
    movement = track_movement(segment.analogsignals[0])
    rows = [one_seed(segment, movement, seed, args.objective) for seed in range(args.seeds)]
    n_order = sum(row["order_with_predicted_sign_p_below_0.01"] for row in rows)
    n_replicated = sum(row["held_out_at_least_10_and_3x_shifted"] for row in rows)
    summary = (f"{n_order}/{len(rows)} seeds: a pattern's order follows its direction's place fields with the "
               f"predicted sign at p < 0.01; {n_replicated}/{len(rows)} seeds: a pattern recurs >= 10 times on the "
               f"held-out half and >= 3x as often as on the shifted half")
    print(summary)
    name = args.out or ("bench_ca1" if args.objective == "variance" else f"bench_ca1_{args.objective}")
    path = save(name, {"seeds": rows, "summary": summary, "bin_ms": 50, "width_s": 3.0, "n_patterns": N_PATTERNS,
                       "objective": args.objective})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
