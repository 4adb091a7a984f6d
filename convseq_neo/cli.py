"""The ``convseq-neo`` command line (the one place that writes to the terminal)."""

from __future__ import annotations

import argparse
import logging
import sys
import time

import numpy as np
import quantities as pq

from convseq_neo import __version__

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``convseq-neo``."""
    parser = argparse.ArgumentParser(prog="convseq-neo", description="Detect repeating spike sequences (convSeq).")
    parser.add_argument("--version", action="version", version=f"convseq_neo {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what the detector does")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="generate a recording with planted sequences, detect them, score the result")
    demo.add_argument("--patterns", type=int, default=2, help="number of planted sequences (default 2)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    demo.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="torch device")
    demo.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    return parser


def _demo(args) -> int:
    from convseq_neo import ConvSeq
    from convseq_neo.evaluate import membership_auc, score_detections
    from convseq_neo.generate import sequence_recording

    recording = sequence_recording(
        n_neurons=100, n_patterns=args.patterns, members_per_pattern=20, duration=120 * pq.s, bin_size=5 * pq.ms,
        rate=2 * pq.Hz, lag_step=10 * pq.ms, n_occurrences=40, participation=0.9, jitter=10 * pq.ms,
        random_state=args.seed)
    raster = recording.raster
    print(f"Synthetic recording: {raster.n_neurons} neurons x {raster.duration_s:.0f} s at "
          f"{raster.bin_size_s * 1e3:g} ms bins, {raster.n_spikes:.0f} spikes (Poisson 2 Hz background)")
    for pattern, members in enumerate(recording.members):
        print(f"  planted pattern {pattern}: {members.size} members, {len(recording.centers_bins(pattern))} "
              "occurrences, participation 0.9, jitter 10 ms")
    width = 60
    print(f"Fitting ConvSeq(n_patterns={args.patterns}, width={width} bins = {width * raster.bin_size_s * 1e3:g} ms)")
    started = time.perf_counter()
    model = ConvSeq(n_patterns=args.patterns, width=width, device=args.device, random_state=args.seed,
                    progress=not args.no_progress).fit(raster)
    elapsed = time.perf_counter() - started
    found = model.occurrences_[model.occurrences_["significant"]]
    print(f"Done in {elapsed:.1f} s ({', '.join(str(n) for n in model.n_epochs_)} epochs, backend "
          f"{model.backend_!r}); {len(found)} significant occurrences at FDR {model.alpha}")
    truth_times = np.concatenate([recording.centers_bins(k) for k in range(recording.n_patterns)])
    truth_labels = np.concatenate([np.full(len(recording.centers_bins(k)), k) for k in range(recording.n_patterns)])
    scores = score_detections(found["center"].to_numpy(), found["pattern"].to_numpy(), truth_times, truth_labels,
                              tolerance=width / 4)
    print(f"Against the planted truth (tolerance {width / 4:g} bins):")
    for _, row in scores.per_pattern.iterrows():
        learned = row["learned_pattern"]
        if row["true_pattern"] is None or learned is None:
            continue
        table = model.membership_[model.membership_["pattern"] == learned]
        auc = membership_auc(table["score"].to_numpy(), recording.members[int(row["true_pattern"])])
        print(f"  planted {row['true_pattern']} <- learned {learned}: F1 {row['f1']:.2f} "
              f"(hits {row['n_hits']}, misses {row['n_misses']}, false {row['n_false']}), "
              f"members reported {int(table['member'].sum())}, membership AUC {auc:.2f}, "
              f"median timing error {row['median_abs_error'] * raster.bin_size_s * 1e3:.1f} ms")
    print(f"Overall: precision {scores.precision:.2f}, recall {scores.recall:.2f}, F1 {scores.f1:.2f}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 success, 2 bad arguments, 1 other failures)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "demo":
            return _demo(args)
    except (TypeError, ValueError) as err:
        print(f"convseq-neo: error: {err}", file=sys.stderr)
        return 2
    except Exception as err:  # noqa: BLE001 - the command line reports, it does not trace back
        print(f"convseq-neo: failed: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    return 0
