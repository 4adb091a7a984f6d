"""The ``convseq-neo`` command line (the one place that writes to the terminal).

Two subcommands: ``annotate`` detects sequences in an NWB file's Units table and stores them in
the file (or a copy), through :func:`convseq_neo.io.nwb.annotate`; ``demo`` runs the method on a
generated recording whose truth is known. Every option of ``annotate`` maps to one parameter of
:func:`convseq_neo.io.nwb.annotate` or of :class:`convseq_neo.ConvSeq`:

================================  ==================================================
option                            parameter
================================  ==================================================
``--bin-size``, ``--width``       ``bin_size``, ``width`` (durations with a unit, or auto)
``--patterns``                    ``n_patterns`` (a number, or auto)
``--max-patterns``                ``max_patterns`` (with ``--patterns auto``)
``--seed``                        ``random_state``
``--alpha``                       ``alpha`` (false discovery rate)
``--surrogates``                  ``surrogates`` ("dither" or "circular")
``--n-surrogates``                ``n_surrogates``
``--folds``                       ``n_folds``
``--max-epochs``                  ``max_epochs``
``--objective``                   ``objective`` ("variance" or "normalized")
``--second-pass``                 ``second_pass=True``
``--device``, ``--jobs``          ``device``, ``n_jobs``
``--unit-ids``                    ``unit_ids`` (ids of the Units table)
``--window``                      ``window`` (an intervals table whose span is analysed)
``--intervals``                   ``intervals`` (look only inside a table's intervals)
``--t-start``, ``--t-stop``       ``t_start``, ``t_stop``
``--name``, ``--module``          ``name``, ``module``; ``--out``: ``out``
``--no-mirror-intervals``         ``mirror_intervals=False``
``--lock-timeout``                ``lock_timeout`` (seconds)
``--workers``, ``--scheduler``    ``n_workers``, ``scheduler`` (several files)
``--report``                      ``report`` (several files)
================================  ==================================================

Automatic time scale
--------------------
``--bin-size``, ``--width`` and ``--patterns`` default to ``auto``: ``convseq-neo annotate
FILE.nwb`` searches the time scale (windows ``0.1 s * 3 ** k`` that fit the recording, each in
bins of a twentieth of itself) and, at each window, the number of patterns (1, 2, ... up to
``--max-patterns``, 4 by default), as :func:`convseq_neo.detect` does with its defaults, and
stores every kept pattern with its own window (:func:`convseq_neo.io.nwb.annotate`). Give
``--width`` (and ``--bin-size``) when the time scale is known: one fit per number of patterns,
as before. The progress bar counts the time scales searched. The summary lists each pattern with
its window and bin size.

Several files
-------------
``annotate A.nwb B.nwb ...`` (or one file with ``--workers``, ``--scheduler`` or ``--report``)
runs :func:`convseq_neo.io.nwb_batch.annotate_many`: one dask.distributed task per file, on a
local cluster of ``--workers`` processes started for the run, or on the running cluster at
``--scheduler``. A file that already holds the same detection is skipped; a run name taken with
other parameters becomes the first free of ``NAME_2``, ``NAME_3``, .... One line per file goes to
standard output (``ok``, ``skipped`` or ``failed``), followed by one line per stored pattern with
its window, each failure also as one line on standard error, and ``--report FILE.csv`` writes the
table. The exit status is 1 when any file failed (``--out`` and ``--json`` describe one file's run
and are refused here).

Exit status
-----------
0
    Success.
1
    Failure while running: another process holds the file (nothing was changed), the detection
    or the writing failed, or the ``--json`` summary could not be written. With several files:
    any file failed (0 when every file was annotated or skipped).
2
    Bad usage: a bad option or option value, a missing input file (``convseq-neo: error:
    FILE.nwb: no such file``: a path the user typed, so it counts as usage), an input that is not
    an NWB file, an ``--out`` that exists, a name already used in the file, options the
    recording cannot satisfy. Nothing was written.
130
    Interrupted; the file being annotated is left as it was.

Errors are one line on stderr (``convseq-neo: error: ...`` for status 2, ``convseq-neo: failed:
...`` or ``convseq-neo: error: ...`` for status 1), never a traceback.

JSON summary
------------
``annotate --json FILE`` (``--json -``: standard output, the human-readable summary then goes to
standard error) writes one JSON object. On success: ``status`` ("ok"), ``exit_code`` (0),
``version``, ``command``, ``file`` (as given), ``out`` (the file written), ``name``,
``identifier`` (the new file's identifier with ``--out``, else null), ``tables`` (the NWB paths
written, by kind: ``events``, ``patterns`` and those :func:`convseq_neo.io.nwb.annotate` adds,
e.g. ``parameters``, ``intervals``, ``search``, ``scales``), ``parameters`` (the record stored
in the file, as :func:`convseq_neo.io.nwb.read_detections` returns it), ``patterns`` (one object
per pattern: ``id``, ``n_members``, ``members``: the members' unit names, ordered by lag,
``n_occurrences``, and its time scale ``bin_size_s`` and ``width_s``), ``n_occurrences`` and
``elapsed_s``. On failure: ``status`` ("failed"), ``exit_code`` (the command's exit status),
``error``, ``error_type``, ``version``, ``command``,
``file``, ``out`` and ``elapsed_s``; a usage error is reported the same way when ``--json`` could
be read from the command line. Non-finite numbers are written as ``null``. The file is written
to a temporary file and moved into place; ``--json`` never overwrites the NWB input, ``--out`` or
another HDF5 file.

``--help`` imports neither torch, Neo, pynwb nor h5py: they are loaded when a command runs.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import re
import sys
import time

import quantities as pq

from convseq_neo import __version__

__all__ = ["main", "build_parser", "duration", "duration_or_auto", "wait_duration"]


_UNITS = {"s": pq.s, "sec": pq.s, "ms": pq.ms, "us": pq.us, "min": pq.min}
_DURATION = re.compile(r"^\s*([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([a-z]+)\s*$")
#: At most this many unit ids on one command line (ranges included): a typo such as 1-100000000 is caught.
_MAX_UNIT_IDS = 1_000_000
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
#: URLs that convseq_neo.io.nwb reads remotely (not checked on disk here)
_REMOTE_SCHEMES = ("http://", "https://", "s3://")
_EXIT_STATUS = ("Exit status: 0 success; 1 failure while running (another process holds the file, the detection or "
                "the writing failed; with several files: any of them failed); 2 bad usage (a bad option or value, a "
                "missing input file, not an NWB file, an --out that exists, a name already in the file; nothing is "
                "written); 130 interrupted (the file is left as it was).")


def _quantity(text: str, example: str) -> tuple[float, pq.Quantity]:
    match = _DURATION.match(str(text))
    if not match or match.group(2) not in _UNITS:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration with a unit, e.g. {example} "
                                         f"(units: {', '.join(_UNITS)})")
    value = float(match.group(1))
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite duration, e.g. {example}")
    return value, _UNITS[match.group(2)]


def duration(text: str) -> pq.Quantity:
    """Parse a duration written with its unit (``5ms``, ``0.5s``, ``200 ms``, ``1min``, ``500us``).

    Examples
    --------
    >>> duration("5ms")
    array(5.) * ms
    >>> float(duration("0.5 s").rescale("ms"))
    500.0
    """
    value, unit = _quantity(text, "5ms or 0.5s")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be positive, e.g. 5ms")
    return value * unit


def wait_duration(text: str) -> float:
    """Parse a waiting time written with its unit (``30s``, ``2min``, ``0s``) into seconds; zero is allowed.

    Examples
    --------
    >>> wait_duration("2min"), wait_duration("0s")
    (120.0, 0.0)
    """
    value, unit = _quantity(text, "30s or 2min")
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be positive or zero, e.g. 30s")
    return float((value * unit).rescale(pq.s).magnitude)


#: The value of ``--bin-size``, ``--width`` and ``--patterns`` that leaves the choice to the data.
AUTO = "auto"


def duration_or_auto(text: str):
    """A duration (as :func:`duration`) or ``"auto"``.

    Examples
    --------
    >>> duration_or_auto("auto"), float(duration_or_auto("200ms").rescale("s"))
    ('auto', 0.2)
    """
    if str(text).strip().lower() == AUTO:
        return AUTO
    try:
        return duration(text)
    except argparse.ArgumentTypeError as err:
        raise argparse.ArgumentTypeError(f"{err}; or auto (the default: chosen from the data)") from None


def _patterns_or_auto(text: str):
    if str(text).strip().lower() == AUTO:
        return AUTO
    try:
        return _positive_int(text)
    except argparse.ArgumentTypeError as err:
        raise argparse.ArgumentTypeError(f"{err}; or auto (the default: as many as the data hold, up to "
                                         "--max-patterns per time scale)") from None


def _time_point(text: str) -> pq.Quantity:
    """A time in the file's clock with its unit (``0s``, ``12.5s``, ``2min``), in seconds."""
    value, unit = _quantity(text, "0s or 12.5s")
    return (value * unit).rescale(pq.s)


def _positive_int(text: str) -> int:
    return _int_at_least(text, 1)


def _int_at_least(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least {minimum}")
    return value


def _folds(text: str) -> int:
    return _int_at_least(text, 2)


def _jobs(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1 and value != -1:
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive number of threads, or -1 for every core")
    return value


def _alpha(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number; the false discovery rate is in (0, 1], "
                                         "e.g. 0.05") from None
    if not 0 < value <= 1:  # also false for NaN
        raise argparse.ArgumentTypeError(f"{text!r} must be in (0, 1], e.g. 0.05")
    return value


_ID = re.compile(r"^\s*([-+]?[0-9]+)\s*$")
_RANGE = re.compile(r"^\s*([0-9]+)\s*-\s*([0-9]+)\s*$")


def _unit_ids(text: str) -> list[int]:
    """Unit ids ``3,7,10-20`` (a range includes both ends) as a list of int."""
    ids: list[int] = []
    for piece in str(text).split(","):
        single, span = _ID.match(piece), _RANGE.match(piece)
        if single:
            ids.append(int(single.group(1)))
        elif span:
            first, last = int(span.group(1)), int(span.group(2))
            if last < first:
                raise argparse.ArgumentTypeError(f"{piece.strip()!r}: a range of unit ids goes up, e.g. 10-20")
            if last - first + 1 > _MAX_UNIT_IDS:
                raise argparse.ArgumentTypeError(f"{piece.strip()!r} holds more than {_MAX_UNIT_IDS} unit ids")
            ids.extend(range(first, last + 1))
        else:
            raise argparse.ArgumentTypeError(f"{text!r} is not a list of unit ids, e.g. 3,7,10-20 (the ids of the "
                                             "Units table; a range includes both ends)")
    return ids


class _UsageError(SystemExit):
    """A bad command line: the one-line message is already on stderr; exit status 2."""

    def __init__(self, line: str, message: str) -> None:
        super().__init__(2)
        self.line = line
        self.message = message


class _Parser(argparse.ArgumentParser):
    """Bad arguments: one line on stderr and exit status 2 (no usage dump)."""

    def error(self, message: str):
        line = f"{self.prog}: error: {message} (see {self.prog} --help)"
        print(line, file=sys.stderr)
        raise _UsageError(line, message)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``convseq-neo``.

    Examples
    --------
    >>> args = build_parser().parse_args(["annotate", "session.nwb", "--bin-size", "5ms", "--width", "200ms",
    ...                                   "--patterns", "2", "--alpha", "0.01", "--unit-ids", "3,7,10-12"])
    >>> args.patterns, args.alpha, args.unit_ids
    (2, 0.01, [3, 7, 10, 11, 12])
    """
    parser = _Parser(prog="convseq-neo", description="Detect repeating spike sequences (convSeq).",
                     epilog=_EXIT_STATUS)
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
        "EventsTable /events/NAME (mirrored as /intervals/NAME_occurrences), the patterns as "
        "/processing/MODULE/NAME_patterns and the parameters as /processing/MODULE/NAME_parameters. Existing "
        "data is never modified; the file is replaced atomically by an annotated copy, so an interruption leaves "
        "it intact. The file is locked from the read to the replace: a second run on it waits (--lock-timeout) and "
        "then adds its result to the first one's, or fails without changing anything. Durations take a unit: 5ms, "
        "0.5s. Without --bin-size, --width and --patterns (all auto) the time scale and the number of patterns are "
        "searched, and each pattern is stored with its own window.",
        epilog=_EXIT_STATUS + " With --json, a summary (status, parameters, patterns, occurrences, elapsed time) "
        "is written on success and on failure.")
    annotate.add_argument("files", metavar="FILE.nwb", nargs="+", help="the NWB file (annotated in place unless "
                          "--out); or an http(s) or s3 URL, read remotely, with --out. Several files are annotated "
                          "in place as dask tasks (see --workers)")
    annotate.add_argument("--out", metavar="OUT.nwb", help="write an annotated copy here instead (must not exist)")
    annotate.add_argument("--name", default="convseq", help="name of the stored run (default convseq); each run "
                          "needs its own")
    annotate.add_argument("--module", default="ecephys", help="processing module of the patterns table "
                          "(default ecephys)")
    annotate.add_argument("--no-mirror-intervals", dest="mirror_intervals", action="store_false",
                          help="do not copy the occurrences to /intervals/NAME_occurrences (a TimeIntervals table "
                          "for readers that do not know EventsTable, such as pynapple's loader)")
    annotate.add_argument("--bin-size", type=duration_or_auto, default=AUTO, help="time resolution, e.g. 5ms "
                          "(default auto: a twentieth of each window searched, or of --width, never finer than "
                          "the data's time resolution)")
    annotate.add_argument("--width", type=duration_or_auto, default=AUTO, help="longest sequence to look for, e.g. "
                          "200ms (default auto: the windows 0.1s, 0.3s, 0.9s, ... that fit the recording are searched "
                          "and each pattern is stored with its own)")
    annotate.add_argument("--patterns", type=_patterns_or_auto, default=AUTO, help="number of patterns to learn "
                          "(per window searched), or auto (default: 1, 2, ... while the newest has significant "
                          "held-out occurrences)")
    annotate.add_argument("--max-patterns", type=_positive_int, metavar="N", help="with --patterns auto: the most "
                          "patterns learned at one window (default 4)")
    annotate.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    stats = annotate.add_argument_group("significance")
    stats.add_argument("--alpha", type=_alpha, metavar="FDR", help="false discovery rate over all candidate peaks, "
                       "and over units for membership, in (0, 1] (default: the core's, 0.05)")
    stats.add_argument("--surrogates", choices=["dither", "circular"], help="how the null's surrogates are made: "
                       "dither moves every spike by up to the width and keeps slow rate changes; circular shifts "
                       "each unit's whole train and assumes a stationary population rate (default dither)")
    stats.add_argument("--n-surrogates", type=_positive_int, metavar="N", help="surrogates per null (default: the "
                       "core's, 200)")
    stats.add_argument("--folds", type=_folds, metavar="N", help="cross-fitting folds, contiguous in time, at least 2 "
                       "(default: the core's, 5; fewer on a short recording)")
    data = annotate.add_argument_group("which data")
    data.add_argument("--unit-ids", type=_unit_ids, action="extend", metavar="IDS", help="analyse only these units: "
                      "ids of the Units table (its id column, not row numbers), e.g. 3,7,10-20; a range includes "
                      "both ends; may be repeated (default: every unit)")
    data.add_argument("--window", metavar="TABLE", help="analyse the span of this intervals table, from its first "
                      "start to its last stop: trials, epochs or any table in the file's intervals (default: the "
                      "span of the units' obs_intervals, else first to last spike)")
    data.add_argument("--intervals", metavar="TABLE", help="look for sequences only inside the intervals of this "
                      "NWB TimeIntervals table (e.g. trials, or a table of running bouts), or inside the units' "
                      "obs_intervals; passed to convseq_neo.io.nwb.annotate as intervals=TABLE")
    data.add_argument("--t-start", type=_time_point, metavar="TIME", help="start of the analysis window in the "
                      "file's clock, e.g. 0s or 12.5s (default: as --window, or the data's start); with --window, "
                      "keep it inside that table's span")
    data.add_argument("--t-stop", type=_time_point, metavar="TIME", help="end of the analysis window, e.g. 600s "
                      "or 10min (default: as --window, or the data's end)")
    run = annotate.add_argument_group("running")
    run.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="torch device "
                     "(default auto: CUDA when available)")
    run.add_argument("--jobs", type=_jobs, metavar="N", help="CPU threads of the fit, -1 for every core the process "
                     "may use (default: torch's setting, which follows OMP_NUM_THREADS)")
    run.add_argument("--max-epochs", type=_positive_int, metavar="N", help="cap on training epochs per pattern "
                     "(default: the core's, 2000)")
    run.add_argument("--objective", choices=["variance", "normalized"], help="what training maximises: the "
                     "response's variance (the paper's) or its variance over the independent-neuron variance, "
                     "which learns weak sequences from few occurrences (default: the core's, variance)")
    run.add_argument("--second-pass", action="store_const", const=True, default=None,
                     help="test every fold again with each pattern's members and lags measured at the significant "
                     "occurrences of the other folds: finds weak and several patterns better, at the cost of a "
                     "second surrogate test (default: off)")
    run.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    run.add_argument("--lock-timeout", type=wait_duration, default=0.0, metavar="DURATION",
                     help="how long to wait while another process holds FILE (another annotate run, or a "
                     "program writing it), e.g. 30s or 10min; that run's detection is then kept and this one "
                     "added (default 0s: fail at once, exit status 1)")
    run.add_argument("--json", metavar="FILE", help="write a machine-readable summary to FILE (- for standard "
                     "output; the human-readable summary then goes to standard error), on success and on failure")
    many = annotate.add_argument_group(
        "several files", "With several files (or any of these options) each file is a task on a dask.distributed "
        "cluster; a file that already holds the same detection is skipped, a name taken with other parameters "
        "becomes NAME_2, NAME_3, ...; exit status 1 when any file failed.")
    engine = many.add_mutually_exclusive_group()
    engine.add_argument("--workers", type=_positive_int, metavar="N", help="worker processes of the local cluster "
                        "started for the run, each with its share of the cores (default: one per file, at most one "
                        "per core)")
    engine.add_argument("--scheduler", metavar="ADDRESS", help="run on the running dask cluster at this scheduler "
                        "address, e.g. tcp://10.0.0.5:8786 (a dask-jobqueue SLURMCluster's scheduler_address)")
    many.add_argument("--report", metavar="FILE.csv", help="write one row per file (path, status ok/skipped/failed, "
                      "name, occurrences, seconds, error) to this CSV file")
    return parser


# ---------------------------------------------------------------------------------------------
# annotate
# ---------------------------------------------------------------------------------------------
#: option -> keyword of convseq_neo.io.nwb.annotate (passed only when given, so the defaults stay the library's)
_PASSED_WHEN_GIVEN = {"max_patterns": "max_patterns", "alpha": "alpha", "surrogates": "surrogates",
                      "n_surrogates": "n_surrogates", "folds": "n_folds", "max_epochs": "max_epochs",
                      "objective": "objective", "second_pass": "second_pass",
                      "jobs": "n_jobs", "unit_ids": "unit_ids", "window": "window", "intervals": "intervals",
                      "t_start": "t_start", "t_stop": "t_stop"}


def _annotate_options(args) -> dict:
    """The keyword arguments of :func:`convseq_neo.io.nwb.annotate` that the command line sets."""
    options = {keyword: getattr(args, option) for option, keyword in _PASSED_WHEN_GIVEN.items()
               if getattr(args, option) is not None}
    if not args.mirror_intervals:
        options["mirror_intervals"] = False
    if args.unit_ids is not None:
        seen, repeated = set(), []
        for uid in args.unit_ids:
            if uid in seen and uid not in repeated:
                repeated.append(uid)
            seen.add(uid)
        if repeated:
            raise _CommandError(2, f"--unit-ids repeats {repeated}; give each unit once")
    if args.t_start is not None and args.t_stop is not None and not args.t_stop > args.t_start:
        raise _CommandError(2, f"--t-stop ({float(args.t_stop):g} s) must be after --t-start "
                            f"({float(args.t_start):g} s)")
    return options


class _CommandError(Exception):
    """A failure the command reports in one line with its exit status."""

    def __init__(self, code: int, message: str, error_type: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.error_type = error_type or "UsageError"


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def _check_json_target(target: str | None, protected: list[tuple[str, str | None]], option: str = "--json",
                       example: str = "summary.json") -> None:
    """``--json FILE`` (or ``option``) must be writable and must be none of ``protected`` (option, path) nor another
    HDF5 file."""
    if target is None or (target == "-" and option == "--json"):
        return
    if not target or target == "-":
        raise _CommandError(2, f"{option} needs a file name" + (", or - for standard output" if option == "--json"
                                                                 else f", e.g. {example}"))
    for other, path in protected:
        if path is not None and _same_file(target, path):
            raise _CommandError(2, f"{option} {target} is the same file as {other}: the summary would overwrite it; "
                                f"choose another name, e.g. {example}")
    if os.path.isdir(target):
        raise _CommandError(2, f"{option} {target} is a directory; give a file name, e.g. {target}/{example}")
    folder = os.path.dirname(os.path.abspath(target))
    if not os.path.isdir(folder):
        raise _CommandError(2, f"{option} {target}: no such directory '{folder}'")
    if os.path.exists(target):
        try:
            with open(target, "rb") as handle:
                head = handle.read(len(_HDF5_SIGNATURE))
        except OSError as err:
            raise _CommandError(2, f"{option} {target}: {err.strerror or err}") from None
        if head == _HDF5_SIGNATURE:
            raise _CommandError(2, f"{option} {target} is an HDF5 (NWB) file; it is not overwritten with a summary")
    if not os.access(folder, os.W_OK):
        raise _CommandError(2, f"{option} {target}: the directory '{folder}' is not writable")


def _json_ready(value):
    """``value`` with non-finite floats as None and numpy scalars as Python ones (strict JSON)."""
    if isinstance(value, dict):
        return {str(key): _json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(item) for item in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # numpy scalar
        try:
            value = value.item()
        except (TypeError, ValueError):
            return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def _write_json(target: str, summary: dict) -> None:
    """Write ``summary`` to ``target`` (``-``: stdout) through :func:`~convseq_neo.io.safe_write.safe_write`."""
    text = json.dumps(_json_ready(summary), indent=2, allow_nan=False) + "\n"
    if target == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    from convseq_neo.io.safe_write import safe_write

    with safe_write(None, target, copy=False) as tmp:  # lock, fsync, atomic replace; a new file's permissions
        tmp.write_text(text, encoding="utf-8")


def _json_target_in(argv: list[str]) -> tuple[str | None, list[str]]:
    """The value of ``--json`` (or an abbreviation argparse accepts) in a command line that did not parse, and
    the command line's other words."""
    for i, token in enumerate(argv):
        option, equals, value = token.partition("=")
        if option in ("--js", "--jso", "--json"):
            if equals:
                return value or None, argv[:i] + argv[i + 1:]
            if i + 1 < len(argv) and argv[i + 1] and (argv[i + 1] == "-" or not argv[i + 1].startswith("-")):
                return argv[i + 1], argv[:i + 1] + argv[i + 2:]
    return None, argv


def _failure_summary(code: int, message: str, error_type: str, *, command=None, file=None, out=None,
                     elapsed: float | None = None) -> dict:
    return {"status": "failed", "exit_code": code, "error": message, "error_type": error_type,
            "version": __version__, "command": command, "file": file, "out": out, "elapsed_s": elapsed}


def _classify(err: BaseException) -> tuple[int, str, str]:
    """Exit status, the one line on stderr and the bare message for an exception of a command."""
    from convseq_neo.io.file_lock import FileLockedError

    if isinstance(err, _CommandError):
        return err.code, f"convseq-neo: error: {err.message}", err.message
    if isinstance(err, FileLockedError):  # another process holds the file: nothing was changed
        message = " ".join(str(err).split())
        return 1, f"convseq-neo: error: {message}", message
    if isinstance(err, (TypeError, ValueError, FileNotFoundError, FileExistsError, PermissionError,
                        IsADirectoryError)):
        return 2, f"convseq-neo: error: {err}", str(err)
    if isinstance(err, KeyboardInterrupt):
        message = "interrupted (an NWB file being annotated is left as it was)"
        return 130, f"convseq-neo: {message}", message
    return 1, f"convseq-neo: failed: {type(err).__name__}: {err}", str(err)


def _looking_for(args, where: str) -> str:
    """The first line on stderr: what a run looks for (the number of patterns, the time scale) and where."""
    if args.patterns == AUTO:
        most = args.max_patterns if args.max_patterns is not None else 4
        patterns = f"up to {most} pattern(s) per window"
    else:
        patterns = f"{args.patterns} pattern(s)"
    if args.width == AUTO:
        scale = "time scale searched" + (f", bin size {args.bin_size}" if args.bin_size != AUTO else "")
    else:
        scale = f"bin size {args.bin_size}, width {args.width}"
    return f"Detecting {patterns} in {where} ({scale})"


def _milliseconds(seconds) -> str:
    return f"{float(seconds) * 1e3:.4g} ms"


def _pattern_line(pattern: dict) -> str:
    """``pattern K: M members, N occurrences, window W (bin B)`` for one of nwb._pattern_summaries."""
    line = f"pattern {pattern['id']}: {pattern['n_members']} members, {pattern['n_occurrences']} occurrences"
    if pattern.get("width_s") is not None:
        line += f", window {_milliseconds(pattern['width_s'])}"
        if pattern.get("bin_size_s") is not None:
            line += f" (bin {_milliseconds(pattern['bin_size_s'])})"
    return line


def _several(args) -> bool:
    """True when ``annotate`` runs as a batch: several files, or an option of several files."""
    return len(args.files) > 1 or any(value is not None for value in (args.workers, args.scheduler, args.report))


def _annotate_many(args) -> int:
    """Run ``annotate`` on several files (:func:`convseq_neo.io.nwb_batch.annotate_many`); return the exit status."""
    started = time.perf_counter()
    try:
        if args.out is not None:
            raise _CommandError(2, "--out writes an annotated copy of one file; several files (or --workers, "
                                "--scheduler, --report) are annotated in place")
        if args.json is not None:
            raise _CommandError(2, "--json describes the run on one file; for several files use --report FILE.csv")
        if args.scheduler is not None and not args.scheduler.strip():
            raise _CommandError(2, "--scheduler needs an address, e.g. tcp://10.0.0.5:8786")
        _check_json_target(args.report, [("FILE.nwb", path) for path in args.files], option="--report",
                           example="report.csv")
        options = _annotate_options(args)
        engine = (f"the cluster at {args.scheduler.strip()}" if args.scheduler is not None else
                  f"{args.workers} local worker process(es)" if args.workers is not None else "a local cluster")
        print(_looking_for(args, f"{len(args.files)} file(s) on {engine}"), file=sys.stderr)
        import distributed  # noqa: F401 - configures its loggers on import: quieten them after that

        from convseq_neo.io.nwb_batch import annotate_many

        if not args.verbose:  # the cluster's start and stop are logged at INFO; the results are printed here
            logging.getLogger("distributed").setLevel(logging.WARNING)
        frame = annotate_many(args.files, args.bin_size, args.width, args.patterns, name=args.name,
                              module=args.module, scheduler=args.scheduler, n_workers=args.workers,
                              progress=not args.no_progress, report=args.report, random_state=args.seed,
                              device=args.device, lock_timeout=args.lock_timeout, **options)
    except (Exception, KeyboardInterrupt) as err:  # noqa: BLE001 - the command line reports, it does not trace back
        code, line, _ = _classify(err)
        print(line, file=sys.stderr)
        return code
    for row in frame.itertuples(index=False):
        if row.status == "failed":
            print(f"failed   {row.path}: {row.error}")
            print(f"convseq-neo: failed: {row.path}: {row.error}", file=sys.stderr)
        else:
            print(f"{row.status:<8} {row.path}: {row.occurrences} occurrences in {row.name} ({row.seconds:.1f} s)")
            if isinstance(row.patterns, str):
                for pattern in json.loads(row.patterns):
                    print(f"         {_pattern_line(pattern)}")
    counts = frame["status"].value_counts()
    print(f"{len(frame)} file(s) in {time.perf_counter() - started:.1f} s: "
          + ", ".join(f"{int(counts.get(status, 0))} {status}" for status in ("ok", "skipped", "failed"))
          + (f"; report written to {args.report}" if args.report is not None else ""))
    return 1 if counts.get("failed", 0) else 0


def _annotate(args) -> int:
    """Run ``annotate``; print the summary, write ``--json``; return the exit status."""
    if _several(args):
        return _annotate_many(args)
    args.file = args.files[0]
    to_stdout = args.json == "-"
    human = sys.stderr if to_stdout else sys.stdout
    started = time.perf_counter()
    try:
        _check_json_target(args.json, [("FILE.nwb", args.file), ("--out", args.out)])
    except _CommandError as err:
        args.json = None  # a bad --json destination gets no summary
        print(f"convseq-neo: error: {err.message}", file=sys.stderr)
        return err.code
    try:
        options = _annotate_options(args)
        if not args.file.lower().startswith(_REMOTE_SCHEMES) and not os.path.exists(args.file):  # before any import
            raise _CommandError(2, f"{args.file}: no such file", "FileNotFoundError")
        print(_looking_for(args, args.file), file=sys.stderr)
        from convseq_neo.io import nwb

        result = nwb.annotate(args.file, args.bin_size, args.width, args.patterns, name=args.name, out=args.out,
                              module=args.module, random_state=args.seed, device=args.device,
                              progress=not args.no_progress, lock_timeout=args.lock_timeout, **options)
    except (Exception, KeyboardInterrupt) as err:  # noqa: BLE001 - the command line reports, it does not trace back
        code, line, message = _classify(err)
        print(line, file=sys.stderr)
        if args.json is not None:
            error_type = err.error_type if isinstance(err, _CommandError) else type(err).__name__
            summary = _failure_summary(code, message, error_type, command="annotate", file=args.file, out=args.out,
                                       elapsed=time.perf_counter() - started)
            try:
                _write_json(args.json, summary)
            except OSError as write_err:
                print(f"convseq-neo: error: could not write the summary to {args.json}: {write_err}", file=sys.stderr)
        return code
    elapsed = time.perf_counter() - started
    params = result.parameters
    fits = getattr(result, "results", None)  # a search over time scales: one fit per scale
    first = fits[0] if fits else result
    start, stop = (first.t_start, first.t_stop) if getattr(first, "time_map", None) is None else \
        (first.recording_t_start, first.recording_t_stop)  # the file's clock, not the laid-out raster's
    span = f"{float(start.min()):g}-{float(stop.max()):g} s"
    if isinstance(params.get("n_intervals"), int) and params["n_intervals"] > 1:  # laid end to end: no one span
        span = f"{params['n_intervals']} intervals, {float(params.get('intervals_total_s', math.nan)):g} s in all"
    searched = ""
    if fits:
        widths = ", ".join(_milliseconds(fit.raster.bin_size_s * fit.model.width) for fit in fits)
        searched = f" (windows searched: {widths})"
    print(f"{result.n_patterns} pattern(s) on {first.raster.n_neurons} units, {span}, in {elapsed:.1f} s{searched}:",
          file=human)
    patterns = nwb._pattern_summaries(result.patterns)
    for pattern in patterns:
        print(f"  {_pattern_line(pattern)}", file=human)
    tables = [params[key] for key in ("nwb_events_table", "nwb_patterns_table", "nwb_parameters_table",
                                      "nwb_intervals_table", "nwb_search_table", "nwb_scales_table")
              if params.get(key)]
    print(f"{len(result.occurrences)} occurrences written to {params['nwb_file']} ({', '.join(tables)})", file=human)
    if args.json is None:
        return 0
    # annotate adds where it wrote (nwb_file, nwb_..._table, nwb_identifier) to the record it stored
    tables = {key[len("nwb_"):-len("_table")]: value for key, value in params.items()
              if key.startswith("nwb_") and key.endswith("_table")}
    summary = {
        "status": "ok", "exit_code": 0, "version": __version__, "command": "annotate", "file": args.file,
        "out": params["nwb_file"], "name": args.name, "identifier": params.get("nwb_identifier"), "tables": tables,
        "parameters": {key: value for key, value in params.items() if not key.startswith("nwb_")},
        "patterns": [{"id": summary["id"], "n_members": summary["n_members"], "members": list(p.names),
                      "n_occurrences": summary["n_occurrences"], "bin_size_s": summary["bin_size_s"],
                      "width_s": summary["width_s"]} for p, summary in zip(result.patterns, patterns)],
        "n_occurrences": len(result.occurrences),
        "elapsed_s": elapsed,
    }
    try:
        _write_json(args.json, summary)
    except OSError as err:
        print(f"convseq-neo: error: the detection was stored in {params['nwb_file']}, but the summary could not be "
              f"written to {args.json}: {err}", file=sys.stderr)
        return 1
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
    """Run the command line and return its exit status.

    0 success, 1 failure while running, 2 bad usage (bad arguments or option values, a missing
    input file, input the command cannot use), 130 interrupted; see the module docstring.

    Parameters
    ----------
    argv : list of str, optional
        The arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit status; errors are one line on stderr.

    Examples
    --------
    >>> main(["annotate", "no-such-file.nwb", "--bin-size", "5ms", "--width", "200ms", "--patterns", "1"])
    2
    """
    argv = sys.argv[1:] if argv is None else [str(arg) for arg in argv]
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if getattr(args, "max_patterns", None) is not None and getattr(args, "patterns", AUTO) != AUTO:
            parser.error(f"--max-patterns applies to --patterns auto, not to --patterns {args.patterns}")
    except _UsageError as err:  # already on stderr; a summary too when --json can be read from the command line
        target, others = _json_target_in(argv)
        if target is not None:
            command = next((arg for arg in argv if arg in ("annotate", "demo")), None)
            try:
                # never over a file named on the command line (the NWB input, --out), nor over an HDF5 file
                _check_json_target(target, [("a file on the command line", word) for word in others
                                            if os.path.exists(word)])
                _write_json(target, _failure_summary(2, err.message, "UsageError", command=command))
            except _CommandError as bad:
                print(f"convseq-neo: error: no summary written: {bad.message}", file=sys.stderr)
            except OSError as write_err:
                print(f"convseq-neo: error: could not write the summary to {target}: {write_err}", file=sys.stderr)
        return 2
    except SystemExit as exit_:  # --help, --version
        return int(exit_.code or 0)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if args.command == "annotate":
        return _annotate(args)
    try:
        return _demo(args)
    except (Exception, KeyboardInterrupt) as err:  # noqa: BLE001 - the command line reports, it does not trace back
        code, line, _ = _classify(err)
        print(line, file=sys.stderr)
        return code
