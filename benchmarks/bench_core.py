"""Core benchmark: per-epoch speed of the event path vs the dense path, and whole fits on CA1-based data.

Run: ``make bench`` or ``CONVSEQ_DATA_DIR=../shared/data .venv/bin/python benchmarks/bench_core.py [--quick]``.

1. Per-epoch time (forward + backward, K = 1, W = 200) of "events" and "dense" on the real CA1
   raster and on a Bernoulli raster of the same size and density.
2. Whole fits with significance (default ConvSeq settings, W = 200):
   (a) a planted 120-neuron sequence every 400 bins, jitter 10 bins, each member spike kept with
       probability 0.9 independently of the background, on the ISI-shuffled CA1 background;
   (b) the paper's own recipe (seqlen 120, p_drop 0.1, gap 400, jitter 10) on that background;
   and the false occurrences of the same settings on the background alone.
Scores are event F1 at a tolerance of 50 bins on occurrence centres.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from _common import ca1_raster, machine, save

from convseq_neo import ConvSeq, SpikeRaster
from convseq_neo.core.response import DenseResponse, StreamingResponse, ToeplitzResponse
from convseq_neo.evaluate import match_events
from convseq_neo.generate import reference_recipe, shuffle_isis_raster

WIDTH = 200
TOLERANCE = 50


def epoch_time(op, n_neurons: int, repeats: int) -> float:
    """Median seconds of one forward + backward pass of the convSeq loss."""
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn((1, n_neurons, WIDTH), generator=generator, requires_grad=True)
    times = []
    for _ in range(repeats + 1):
        started = time.perf_counter()
        response = op(torch.softmax(logits, dim=-1))
        loss = -response.var() + 200.0 * (response[:, 1:] - response[:, :-1]).square().mean()
        loss.backward()
        times.append(time.perf_counter() - started)
    return float(np.median(times[1:]))


def speed_table(rasters: dict[str, SpikeRaster], dense_repeats: int) -> list[dict]:
    rows = []
    for name, raster in rasters.items():
        row = {"raster": name, "shape": list(raster.shape), "nnz": raster.nnz}
        for label, cls, repeats in (("events_csr", ToeplitzResponse, 50), ("events_stream", StreamingResponse, 10),
                                    ("dense_conv1d", DenseResponse, dense_repeats)):
            op = cls(raster, WIDTH, torch.device("cpu"), torch.float32)
            row[label] = epoch_time(op, raster.n_neurons, repeats)
        row["speedup_csr_vs_dense"] = row["dense_conv1d"] / row["events_csr"]
        rows.append(row)
        print(f"{name:>22}: events(CSR) {row['events_csr'] * 1e3:7.2f} ms  events(stream) "
              f"{row['events_stream'] * 1e3:7.2f} ms  dense {row['dense_conv1d'] * 1e3:8.1f} ms  "
              f"-> {row['speedup_csr_vs_dense']:.0f}x", flush=True)
    return rows


def planted_sequence(background: np.ndarray, rng: np.random.Generator, n_members: int = 120, gap: int = 400,
                     jitter: float = 10.0, keep: float = 0.9):
    """(a): members fire in order (1 bin apart) every ``gap`` bins; each spike kept with probability ``keep``."""
    raster = background.copy()
    n_neurons, n_bins = raster.shape
    members = rng.choice(n_neurons, n_members, replace=False)
    starts = np.arange(0, n_bins - gap, gap)
    for start in starts:
        bins = start + np.arange(n_members) + np.round(rng.normal(0, jitter, n_members)).astype(int)
        kept = (rng.random(n_members) < keep) & (bins >= 0) & (bins < n_bins)
        raster[members[kept], bins[kept]] = 1
    return raster, starts + (n_members - 1) / 2.0


def fit_and_score(name: str, raster: np.ndarray, truth: np.ndarray | None, seed: int) -> dict:
    started = time.perf_counter()
    model = ConvSeq(width=WIDTH, random_state=seed).fit(raster)
    elapsed = time.perf_counter() - started
    found = model.occurrences_[model.occurrences_["significant"]]
    row = {"case": name, "seconds": elapsed, "epochs": int(model.n_epochs_[0]), "stop": model.stop_reason_[0],
           "n_significant": len(found), "n_members": int(model.membership_["member"].sum())}
    if truth is not None:
        match = match_events(found["center"].to_numpy(), truth, TOLERANCE)
        row.update(n_true=int(truth.size), hits=match.n_hits, false=match.n_false, precision=match.precision,
                   recall=match.recall, f1=match.f1, median_abs_error_bins=match.median_abs_error)
    print(f"{name:>22}: {elapsed:6.1f} s, {row['epochs']} epochs ({row['stop']}), {len(found)} significant"
          + (f", F1 {row['f1']:.3f} (hits {row['hits']}/{row['n_true']}, false {row['false']})" if truth is not None
             else ""), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="speed table only (no whole fits)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print("machine:", machine())
    ca1 = ca1_raster()
    rng = np.random.default_rng(args.seed)
    synthetic = (rng.random(ca1.shape) < ca1.mean()).astype(np.int64)
    print(f"Per-epoch time, K=1, W={WIDTH}, float32, forward + backward:")
    speed = speed_table({"CA1 (452 x 18137)": SpikeRaster.from_dense(ca1),
                         "Bernoulli, same density": SpikeRaster.from_dense(synthetic)}, dense_repeats=3)
    fits = []
    if not args.quick:
        background = shuffle_isis_raster(ca1, random_state=args.seed)
        print(f"Whole fits (ConvSeq defaults, W={WIDTH}), F1 at tolerance {TOLERANCE} bins:")
        fits.append(fit_and_score("background alone", background, None, args.seed))
        planted, truth = planted_sequence(background, np.random.default_rng(args.seed + 1))
        fits.append(fit_and_score("(a) planted, keep 0.9", planted, truth, args.seed))
        recipe = reference_recipe(background, random_state=args.seed)
        fits.append(fit_and_score("(b) paper's recipe", recipe.raster, recipe.midpoints_bins, args.seed))
        fits[-1]["surviving_fraction"] = recipe.surviving_fraction
        print(f"    (paper's recipe: {recipe.surviving_fraction:.1%} of sequence spikes survived)")
    path = save("bench_core", {"speed": speed, "fits": fits})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
