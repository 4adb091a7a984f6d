"""Where training misses a planted sequence: is the sequence the objective's optimum, or is chance structure?

Run::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_objective.py                  # both cases, seed 0
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_objective.py --cases slow --occurrences 40 80 160

A diagnostic, not a detector: it reads the ground truth, but only to score what training did. For
each case one filter is trained on every bin of a planted recording with the package's training
defaults (:class:`convseq_neo.ConvSeq`'s ``lr``, ``max_epochs``, ``min_epochs``, ``tol``, ``patience``,
``recenter_every`` and the default ``tv_weight`` of the ``--objectives`` for the width), from two kinds
of start:

- ``random``: standard-normal logits, as every fit starts (``--starts`` seeds);
- ``planted``: the members' rows start as a bump (logit 3, sd 1 bin) at the planted lags and the
  other rows flat, i.e. training starts at the answer.

Reported per start, before and after training: the loss (lower is what training prefers); whether
the members' rows are ordered as planted (Spearman rho between each member row's peak bin and its
planted lag, and the spread of ``peak - lag`` across members, in bins); and how well the filter's
response singles out the planted occurrences (the median over occurrences of the response's
largest z-score within 3 bins of the planted centre, against the largest z-score of the whole
response). If the planted start ends at a *higher* loss than the random starts, the objective
prefers what the random starts found to the planted sequence, and more restarts cannot help.

Cases:

- ``slow``: ``bench_scales.py``'s two-scale recording (120 neurons x 10 min, 3 Hz, two 20-member
  sequences at 10 ms and 100 ms member steps, participation 0.9), at the window the automatic search
  gives the slow sequence (2.7 s in 20 bins of 135 ms); ``--occurrences`` of each sequence.
- ``short``: ``tests/core/test_few_occurrences.py``'s layout (75 neurons at 5 % per bin, a 20-member
  sequence spanning 10 bins, width 20) with 15 occurrences at participation 0.5 (issue 21's CI
  target).

Writes ``benchmarks/results/bench_objective.json`` (the machine, the command, every row).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RunLog  # noqa: E402

CASES = ("slow", "short")
SLOW_BIN_S, SLOW_WIDTH = 0.135, 20
SHORT_WIDTH, SHORT_PARTICIPATION = 20, 0.5


def slow_case(seed: int, n_occurrences: int):
    """Dense raster, members, each member's planted lag (bins) and the occurrence centres (bins)."""
    import quantities as pq
    from bench_scales import two_scale_recording

    from convseq_neo.io.neo import to_raster

    trains, planted = two_scale_recording(seed, n_occurrences)
    dense = to_raster(trains, bin_size=SLOW_BIN_S * pq.s).to_dense()
    members, truth, _ = planted[1]
    lags = np.asarray(truth.onset_lags[0].rescale(pq.s).magnitude, float) / SLOW_BIN_S
    centres = np.asarray(truth.centers.rescale(pq.s).magnitude, float) / SLOW_BIN_S
    return dense, np.asarray(members), lags, centres, SLOW_WIDTH


def short_case(seed: int, n_occurrences: int):
    """The layout of ``tests/core/test_few_occurrences.py`` at participation 0.5."""
    from convseq_neo.synthetic.even_raster import evenly_planted_raster

    planted = evenly_planted_raster(n_occurrences, participation=SHORT_PARTICIPATION,
                                    random_state=np.random.default_rng([seed, n_occurrences]))
    return planted.raster, planted.members, planted.lags.astype(float), planted.centres, SHORT_WIDTH


def train(dense, width: int, initial_logits, seed: int, max_epochs: int | None = None, objective: str = "variance"):
    """One filter trained on every bin with ConvSeq's defaults: (filter, final loss, epochs, stop reason)."""
    import torch

    from convseq_neo import ConvSeq
    from convseq_neo.core.response import make_response
    from convseq_neo.core.training import ResponseObjective, TrainingSettings, seeded_generator, train_filters
    from convseq_neo.raster import SpikeRaster

    defaults = ConvSeq().get_params()
    chosen = ConvSeq(objective=objective)
    settings = TrainingSettings(tv_weight=chosen._tv_weight(width), explained_weight=chosen._decorrelation_weight(),
                                lr=defaults["lr"], max_epochs=max_epochs or defaults["max_epochs"],
                                min_epochs=min(defaults["min_epochs"], max_epochs or defaults["min_epochs"]),
                                tol=defaults["tol"], patience=defaults["patience"],
                                recenter_every=defaults["recenter_every"], objective=objective)
    raster = SpikeRaster.from_dense(dense)
    op = make_response(raster, width)
    everywhere = torch.ones((1, op.length), dtype=torch.bool)
    objective = ResponseObjective(op, raster, everywhere, torch.zeros_like(everywhere), settings)
    start = None if initial_logits is None else torch.as_tensor(initial_logits[None], dtype=torch.float32)
    outcome = train_filters(objective, 1, settings, seeded_generator(seed, "cpu"), initial_logits=start)
    return torch.softmax(outcome.logits[0], dim=-1).numpy(), float(outcome.final_loss[0]), outcome.n_epochs, \
        outcome.stop_reason


def planted_start(n_neurons: int, width: int, members, lags) -> np.ndarray:
    """Logits with a bump at each member's planted lag (the lags centred in the window), other rows flat."""
    position = lags - (lags.max() + lags.min()) / 2 + (width - 1) / 2
    logits = np.zeros((n_neurons, width))
    logits[members] = 3.0 * np.exp(-0.5 * (np.arange(width)[None, :] - position[:, None]) ** 2)
    return logits


def scores(filters, dense, members, lags, centres) -> dict:
    """Order of the member rows against the planted lags, and the response's z at the planted centres."""
    import torch
    from scipy.stats import spearmanr

    peaks = filters.argmax(axis=1)[members]
    offsets = peaks - lags
    half = filters.shape[1] // 2
    padded = torch.as_tensor(np.pad(dense.astype(float), ((0, 0), (half, half))))
    response = torch.nn.functional.conv1d(padded[None], torch.as_tensor(filters, dtype=torch.float64)[None])[0, 0]
    z = ((response - response.mean()) / response.std()).numpy()
    at = np.clip(np.round(centres).astype(int), 0, len(z) - 1)
    near = [z[max(0, c - 3):c + 4].max() for c in at]
    return {"rho": float(spearmanr(peaks, lags).statistic),
            "offset_sd_bins": float(np.std(offsets - np.median(offsets))),
            "planted_z_median": float(np.median(near)), "max_z": float(z.max())}


def run_case(case: str, seed: int, n_occurrences: int, starts: list[int], say,
             objective: str = "variance") -> list[dict]:
    dense, members, lags, centres, width = (slow_case if case == "slow" else short_case)(seed, n_occurrences)
    rows = []
    begin = {"case": case, "objective": objective, "seed": seed, "n_occurrences": n_occurrences,
             "n_neurons": int(dense.shape[0]),
             "n_bins": int(dense.shape[1]), "width": width}
    planted = planted_start(dense.shape[0], width, members, lags)
    trials = [("planted, untrained", planted, 0, 1)] + [("planted", planted, 0, None)]
    trials += [(f"random (seed {start})", None, start, None) for start in starts]
    for name, logits, start, epochs in trials:
        started = time.perf_counter()
        filters, loss, n_epochs, reason = train(dense, width, logits, start, epochs, objective)
        row = {**begin, "start": name, "loss": loss, "epochs": n_epochs, "stop": reason,
               "seconds": time.perf_counter() - started, **scores(filters, dense, members, lags, centres)}
        rows.append(row)
        say(f"{case} ({objective}) seed {seed}, {n_occurrences} occurrences, start {name}: loss {loss:.3f} after "
            f"{n_epochs} epochs ({reason}); member order rho {row['rho']:+.2f}, offset sd "
            f"{row['offset_sd_bins']:.1f} bins; response z at planted centres {row['planted_z_median']:.1f} "
            f"(largest anywhere {row['max_z']:.1f})")
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0], help="recording seeds")
    parser.add_argument("--starts", nargs="+", type=int, default=[0, 1], help="seeds of the random starts")
    parser.add_argument("--occurrences", nargs="+", type=int, default=None,
                        help="occurrences per sequence (default: 40 for slow, 15 for short)")
    parser.add_argument("--objectives", nargs="+", choices=("variance", "normalized"), default=["variance"],
                        help="ConvSeq(objective=...) to train, each with its default smoothness weight")
    parser.add_argument("--out", default="bench_objective", help="name of the results file")
    args = parser.parse_args()

    log, rows = RunLog(), []
    for case in args.cases:
        for n_occurrences in args.occurrences or [40 if case == "slow" else 15]:
            for seed in args.seeds:
                for objective in args.objectives:
                    rows.extend(run_case(case, seed, n_occurrences, args.starts, log.say, objective))
    log.save(args.out, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
