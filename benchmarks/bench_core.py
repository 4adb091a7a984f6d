"""Core benchmark: per-epoch speed of the event path vs the dense path, and whole fits on CA1-based data.

Run: ``make bench`` (``--quick``: the speed table only, written to ``results/bench_core_quick.json``), ``make
bench-full`` (everything, ``results/bench_core.json``) or
``CONVSEQ_DATA_DIR=../shared/data .venv/bin/python benchmarks/bench_core.py [--quick]``.

1. Per-epoch time (forward + backward, K = 1, W = 200) of "events" and "dense" on the real CA1
   raster and on a Bernoulli raster of the same size and density.
2. Whole fits with significance (default ConvSeq settings, W = 200):
   (a) a planted 120-neuron sequence every 400 bins, jitter 10 bins, each member spike kept with
       probability 0.9 independently of the background, on the ISI-shuffled CA1 background;
   (b) the paper's own recipe (seqlen 120, p_drop 0.1, gap 400, jitter 10) on that background;
   and the false occurrences of the same settings on the background alone.
Scores are event F1 at a tolerance of 50 bins on occurrence centres.

``--device cuda`` runs the same on a GPU (written to ``results/bench_core[_quick]_cuda.json``), adds
the paper's full-raster 2-D convolution per epoch on that device (``_common.dense_epoch_times``)
and checks each CUDA response against the CPU one on the same filter.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from _common import WIDTH, ca1_raster, dense_epoch_times, epoch_time, machine, planted_sequence, save

from convseq_neo import ConvSeq, SpikeRaster
from convseq_neo.core.response import DenseResponse, StreamingResponse, ToeplitzResponse
from convseq_neo.synthetic.evaluate import match_events
from convseq_neo.synthetic.generate import reference_recipe, shuffle_isis_raster

TOLERANCE = 50


def cpu_agreement(op, raster: SpikeRaster, cls, device: torch.device) -> float:
    """Largest difference between ``op``'s response and the CPU one on the same filter, relative to its range."""
    generator = torch.Generator().manual_seed(1)
    filters = torch.softmax(torch.randn((1, raster.n_neurons, WIDTH), generator=generator), dim=-1)
    with torch.no_grad():
        on_device = op(filters.to(device)).cpu()
        on_cpu = cls(raster, WIDTH, torch.device("cpu"), torch.float32)(filters)
    return float((on_device - on_cpu).abs().max() / (on_cpu.max() - on_cpu.min()))


def speed_table(rasters: dict[str, SpikeRaster], dense_repeats: int, device: torch.device) -> list[dict]:
    rows = []
    for name, raster in rasters.items():
        row = {"raster": name, "shape": list(raster.shape), "nnz": raster.nnz, "device": str(device)}
        for label, cls, repeats in (("events_csr", ToeplitzResponse, 50), ("events_stream", StreamingResponse, 10),
                                    ("dense_conv1d", DenseResponse, dense_repeats)):
            op = cls(raster, WIDTH, device, torch.float32)
            row[label] = epoch_time(op, raster.n_neurons, repeats, device)
            if device.type != "cpu":
                row[f"{label}_max_rel_diff_vs_cpu"] = cpu_agreement(op, raster, cls, device)
        row["speedup_csr_vs_dense"] = row["dense_conv1d"] / row["events_csr"]
        if device.type != "cpu":
            paper = dense_epoch_times(raster.to_dense(), WIDTH, n_epochs=10, n_null=64, device=str(device))
            row["paper_conv2d"] = paper["per_epoch_s"]
            row["paper_seconds_extrapolated"] = paper["seconds"]
        rows.append(row)
        print(f"{name:>22}: events(CSR) {row['events_csr'] * 1e3:7.2f} ms  events(stream) "
              f"{row['events_stream'] * 1e3:7.2f} ms  dense {row['dense_conv1d'] * 1e3:8.1f} ms  "
              f"-> {row['speedup_csr_vs_dense']:.0f}x"
              + (f"  paper conv2d {row['paper_conv2d'] * 1e3:.1f} ms" if "paper_conv2d" in row else ""), flush=True)
    return rows


def fit_and_score(name: str, raster: np.ndarray, truth: np.ndarray | None, seed: int, device: str = "cpu") -> dict:
    started = time.perf_counter()
    model = ConvSeq(width=WIDTH, random_state=seed, device=device).fit(raster)
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
    parser.add_argument("--device", default="cpu", help="torch device (cpu or cuda)")
    args = parser.parse_args()
    device = torch.device(args.device)
    print("machine:", machine())
    ca1 = ca1_raster()
    rng = np.random.default_rng(args.seed)
    synthetic = (rng.random(ca1.shape) < ca1.mean()).astype(np.int64)
    print(f"Per-epoch time on {device}, K=1, W={WIDTH}, float32, forward + backward:")
    speed = speed_table({"CA1 (452 x 18137)": SpikeRaster.from_dense(ca1),
                         "Bernoulli, same density": SpikeRaster.from_dense(synthetic)}, dense_repeats=3,
                        device=device)
    fits = []
    if not args.quick:
        background = shuffle_isis_raster(ca1, random_state=args.seed)
        print(f"Whole fits (ConvSeq defaults, W={WIDTH}), F1 at tolerance {TOLERANCE} bins:")
        fits.append(fit_and_score("background alone", background, None, args.seed, args.device))
        planted, truth = planted_sequence(background, np.random.default_rng(args.seed + 1))
        fits.append(fit_and_score("(a) planted, keep 0.9", planted, truth, args.seed, args.device))
        recipe = reference_recipe(background, random_state=args.seed)
        fits.append(fit_and_score("(b) paper's recipe", recipe.raster, recipe.midpoints_bins, args.seed, args.device))
        fits[-1]["surviving_fraction"] = recipe.surviving_fraction
        print(f"    (paper's recipe: {recipe.surviving_fraction:.1%} of sequence spikes survived)")
    name = ("bench_core_quick" if args.quick else "bench_core") + ("" if device.type == "cpu" else f"_{device.type}")
    path = save(name, {"speed": speed, "fits": fits})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
