"""The ``convseq-neo`` command line (the one place that writes to the terminal)."""

from __future__ import annotations

import argparse
import logging
import re
import sys
import time

import quantities as pq

from convseq_neo import __version__

__all__ = ["main", "build_parser"]


_UNITS = {"s": pq.s, "sec": pq.s, "ms": pq.ms, "us": pq.us, "min": pq.min}
_DURATION = re.compile(r"^\s*([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([a-z]+)\s*$")


def duration(text: str) -> pq.Quantity:
    """Parse a duration written with its unit (``5ms``, ``0.5s``, ``200 ms``, ``1min``, ``500us``)."""
    match = _DURATION.match(str(text))
    if not match or match.group(2) not in _UNITS:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration with a unit, e.g. 5ms or 0.5s "
                                         f"(units: {', '.join(_UNITS)})")
    value = float(match.group(1))
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be positive, e.g. 5ms")
    return value * _UNITS[match.group(2)]


def wait_duration(text: str) -> float:
    """Parse a waiting time written with its unit (``30s``, ``2min``, ``0s``) into seconds; zero is allowed."""
    match = _DURATION.match(str(text))
    if not match or match.group(2) not in _UNITS:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration with a unit, e.g. 30s or 2min "
                                         f"(units: {', '.join(_UNITS)})")
    value = float(match.group(1))
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be positive or zero, e.g. 30s")
    return float((value * _UNITS[match.group(2)]).rescale(pq.s).magnitude)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


class _Parser(argparse.ArgumentParser):
    """Bad arguments: one line on stderr and exit status 2 (no usage dump)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``convseq-neo``."""
    parser = _Parser(prog="convseq-neo", description="Detect repeating spike sequences (convSeq).")
    parser.add_argument("--version", action="version", version=f"convseq_neo {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what the detector does")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="generate a recording with planted sequences, detect them, score the result")
    demo.add_argument("--patterns", type=int, default=2, help="number of planted sequences (default 2)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    demo.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="torch device")
    demo.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    annotate = sub.add_parser(
        "annotate", help="detect sequences in an NWB file's units and store them in the file (or a copy)",
        description="Detect sequences in the Units table of an NWB file and append them: the occurrences as an "
        "EventsTable /events/NAME, the patterns as /processing/MODULE/NAME_patterns. Existing data is never "
        "modified; the file is replaced atomically by an annotated copy, so an interruption leaves it intact. "
        "The file is locked from the read to the replace: a second run on it waits (--lock-timeout) and then adds "
        "its result to the first one's, or fails without changing anything. Durations take a unit: 5ms, 0.5s.")
    annotate.add_argument("file", metavar="FILE.nwb", help="the NWB file (annotated in place unless --out)")
    annotate.add_argument("--out", metavar="OUT.nwb", help="write an annotated copy here instead (must not exist)")
    annotate.add_argument("--name", default="convseq", help="name of the stored run (default convseq); each run "
                          "needs its own")
    annotate.add_argument("--module", default="ecephys", help="processing module of the patterns table "
                          "(default ecephys)")
    annotate.add_argument("--bin-size", type=duration, required=True, help="time resolution, e.g. 5ms")
    annotate.add_argument("--width", type=duration, required=True, help="longest sequence to look for, e.g. 200ms")
    annotate.add_argument("--patterns", type=_positive_int, required=True, help="number of patterns to learn")
    annotate.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    annotate.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="torch device "
                          "(default auto: CUDA when available)")
    annotate.add_argument("--max-epochs", type=_positive_int, help="cap on training epochs (default: the core's)")
    annotate.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    annotate.add_argument("--lock-timeout", type=wait_duration, default=0.0, metavar="DURATION",
                          help="how long to wait while another process holds FILE (another annotate run, or a "
                          "program writing it), e.g. 30s or 10min; that run's detection is then kept and this one "
                          "added (default 0s: fail at once, exit status 1)")
    return parser


def _annotate(args) -> int:
    from convseq_neo.io.nwb import annotate

    options = {} if args.max_epochs is None else {"max_epochs": args.max_epochs}
    print(f"Detecting {args.patterns} pattern(s) in {args.file} (bin size {args.bin_size}, width {args.width})",
          file=sys.stderr)
    started = time.perf_counter()
    result = annotate(args.file, args.bin_size, args.width, args.patterns, name=args.name, out=args.out,
                      module=args.module, random_state=args.seed, device=args.device,
                      progress=not args.no_progress, lock_timeout=args.lock_timeout, **options)
    elapsed = time.perf_counter() - started
    params = result.parameters
    print(f"{result.n_patterns} pattern(s) on {result.raster.n_neurons} units, "
          f"{float(result.t_start):g}-{float(result.t_stop):g} s, in {elapsed:.1f} s:")
    for pattern in result.patterns:
        print(f"  pattern {pattern.pattern_id}: {pattern.size} members, {pattern.n_occurrences} occurrences")
    print(f"{len(result.occurrences)} occurrences written to {params['nwb_file']} "
          f"({params['nwb_events_table']}, {params['nwb_patterns_table']})")
    return 0


def _demo(args) -> int:
    from convseq_neo import ConvSeq
    from convseq_neo.synthetic.evaluate import membership_auc, score_detections
    from convseq_neo.synthetic.generate import sequence_recording

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
    # compare in seconds: the raster turns the core's bin positions into times
    truth = recording.ground_truth.array_annotations
    tolerance_s = width / 4 * raster.bin_size_s
    scores = score_detections(raster.position_to_time(found["center"].to_numpy(float)), found["pattern"].to_numpy(),
                              truth["center"], truth["pattern_id"], tolerance=tolerance_s)
    print(f"Against the planted truth (tolerance {tolerance_s * 1e3:g} ms = {width / 4:g} bins):")
    for _, row in scores.per_pattern.iterrows():
        learned = row["learned_pattern"]
        if row["true_pattern"] is None or learned is None:
            continue
        table = model.membership_[model.membership_["pattern"] == learned]
        auc = membership_auc(table["score"].to_numpy(), recording.members[int(row["true_pattern"])])
        print(f"  planted {row['true_pattern']} <- learned {learned}: F1 {row['f1']:.2f} "
              f"(hits {row['n_hits']}, misses {row['n_misses']}, false {row['n_false']}), "
              f"members reported {int(table['member'].sum())}, membership AUC {auc:.2f}, "
              f"median timing error {row['median_abs_error'] * 1e3:.1f} ms")
    print(f"Overall: precision {scores.precision:.2f}, recall {scores.recall:.2f}, F1 {scores.f1:.2f}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 success, 2 bad arguments, 1 other failures)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, --version, bad arguments
        return int(exit_.code or 0)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    from convseq_neo.io.file_lock import FileLockedError

    try:
        if args.command == "demo":
            return _demo(args)
        if args.command == "annotate":
            return _annotate(args)
    except FileLockedError as err:  # another process holds the file: nothing was changed
        print(f"convseq-neo: error: {' '.join(str(err).split())}", file=sys.stderr)
        return 1
    except (TypeError, ValueError, FileNotFoundError, FileExistsError, PermissionError, IsADirectoryError) as err:
        print(f"convseq-neo: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("convseq-neo: interrupted (an NWB file being annotated is left as it was)", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - the command line reports, it does not trace back
        print(f"convseq-neo: failed: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    return 0
