"""NWB front door: read units, detect sequences, store the result safely in the file, reload it.

* :func:`read_units` reads the Units table's ragged ``spike_times`` column directly (one read of
  the flat data and of its index) and returns Neo spike trains, from a local file, an open
  ``NWBFile`` or a remote URL (see Remote files).
* :func:`annotate` detects on the file's units and stores the result: the occurrences as a core
  ``pynwb.event.EventsTable`` under ``/events``, the patterns and the run's parameters as two
  DynamicTables in ``processing[module]`` and, by default, the occurrences once more as a
  ``TimeIntervals`` table under ``/intervals`` for readers that do not know EventsTable. With no
  time scale given (the defaults ``bin_size="auto"``, ``width="auto"``, ``n_patterns="auto"``)
  the time scale and the number of patterns are searched (:func:`convseq_neo.detect`), every
  pattern and occurrence is stored with its own ``bin_size`` and ``width``, and the fits tried
  go to a search table next to the patterns. Existing
  data is never modified: the file is updated through
  :func:`convseq_neo.io.safe_write.safe_write` (a verified temporary copy in the same directory,
  moved over the original with :func:`os.replace`), so a crash at any point leaves the original
  file as it was. With ``out=`` a new, derived file is written instead (its own identifier and
  object ids, see Derived files) and the source is only read.
* :func:`annotate_many` (defined in :mod:`convseq_neo.io.nwb_batch`) annotates many files, one
  dask.distributed task per file, and skips those that already hold the same detection.
* :func:`read_detections` reloads what :func:`annotate` stored; :func:`read_events` reads one
  events table as a flat pandas DataFrame; :func:`read_intervals` reads a ``TimeIntervals``
  table (or the units' ``obs_intervals``) as a ``neo.Epoch``.

Remote files
------------
:func:`read_units`, :func:`read_events`, :func:`read_detections`, :func:`read_intervals` and
:func:`annotate` (with ``out=``) accept an ``http://`` or ``https://`` URL (a DANDI asset's
download URL, for instance) and stream the file: only the parts HDF5 asks for are fetched, with
HTTP Range requests, through fsspec (optional: ``pip install "convseq_neo[remote]"``, which
installs ``fsspec[http]``; a clear ``ImportError`` says so when it is missing). ``s3://bucket/key``
is read anonymously through the bucket's public HTTPS endpoint (``https://bucket.s3.amazonaws.com
/key``), which is how DANDI's public bucket is served; a private object needs a pre-signed
``https`` URL. A remote file cannot be annotated in place: :func:`annotate` raises ``ValueError``
before any work unless ``out=`` names a local file.

Derived files
-------------
With ``out=`` (from a local, a read-only or a remote source), :func:`annotate` writes a new file
with :meth:`pynwb.NWBHDF5IO.export`: everything the source holds (datasets copied with their
storage settings, with ``link_data=False`` so that the new file holds no link into the source),
plus the new tables. The derived file gets a new ``identifier`` (a random UUID) and new object
ids for every container (``NWBFile.generate_new_id``): archives such as DANDI refuse two files
that share an identifier or object ids. The source is opened read-only and stays byte for byte
as it was. Annotating in place (no ``out=``) keeps the file's identifier and object ids: the file
is the same, with more in it.

Several processes, one file
---------------------------
:func:`annotate` holds an exclusive lock on the file it replaces (:func:`convseq_neo.io.file_lock.file_lock`:
an advisory ``flock`` on the sidecar file ``.<name>.convseq-lock``, which records the holder's host
and pid) from before it reads the units until after the atomic replace. Two runs on one file
therefore never lose a detection: the second waits (``lock_timeout``, command line
``--lock-timeout``) and then reads the file the first one wrote, or fails with
:class:`~convseq_neo.io.file_lock.FileLockedError` ("... is locked by another process ...") and
changes nothing. For the same span a local source stays open read-only through h5py, so HDF5's own
file locking (on by default) makes any other program that opens the file for writing (h5py mode
``"a"``/``"r+"``, pynwb mode ``"a"``) fail with HDF5's lock error instead of writing into a file
about to be replaced. Conversely a file another program has open for writing makes
:func:`annotate`, :func:`read_units` and :func:`read_detections` raise ``FileLockedError`` ("...
locked by another process (HDF5 file lock) ..."), never "could not be read as an NWB file".

With ``HDF5_USE_FILE_LOCKING=FALSE`` (often set on cluster file systems) HDF5 takes no locks:
other programs are then *not* kept out while a run replaces the file (what they write to the old
file in that window is lost with it); convseq-neo runs still exclude each other through the
sidecar ``flock`` wherever the file system supports ``flock``. On network and shared file
systems ``flock`` may exclude only processes on the same node, and process ids mean nothing
across nodes (the lock file and temporary copies record the host name for that reason): run one
writer per file there.

Layout written by :func:`annotate` (``name="convseq"``)
-------------------------------------------------------
``/events/convseq`` (EventsTable), one row per significant occurrence:
    ``timestamp`` (onset, s), ``duration`` (offset - onset, s: an event spans ``[timestamp,
    timestamp + duration]`` as a Neo Epoch does), ``center`` (s), ``pattern`` (DynamicTableRegion
    into the patterns table), ``peak``, ``pvalue``, and the occurrence's time scale: ``bin_size``
    and ``width`` (s; its pattern's, the same for every row of a run with an explicit width).
    ``source_description`` is one short phrase: the algorithm, the package version and the main
    parameters, e.g. ``"convSeq (convseq_neo 0.1.0): 2 patterns, bin 5 ms, width 200 ms, alpha
    0.05, n_surrogates 200; every parameter in /processing/ecephys/convseq_parameters"`` (a search:
    ``"1 pattern, time scale searched (2 windows, 100-300 ms), alpha 0.05, ..."``).
    :func:`read_events` reads it as a flat DataFrame.
``/processing/<module>/convseq_patterns`` (DynamicTable), one row per learned pattern:
    ``units`` (ragged DynamicTableRegion into the Units table, members ordered by lag), ``lags``
    (ragged, s relative to the occurrence centre), ``scores`` and ``pvalues`` (ragged, membership),
    ``n_occurrences``, ``analyzed_units`` (ragged DynamicTableRegion: the units the detector saw,
    in order), ``all_scores``, ``all_pvalues``, ``all_lags`` (patterns x analyzed units),
    ``filter`` (patterns x analyzed units x window bins; column ``j`` is the lag ``(j - W // 2) *
    bin_size`` from the window centre), ``tested_filter`` (the same layout: the pattern as ``find``
    looks for it, each member's evidence around its lag; files written before it existed lack
    it and their rebuilt model applies ``filter``) and the pattern's time scale: ``bin_size``,
    ``width`` (s) and ``width_bins`` (its ``W``). Patterns of several time scales have windows of
    different lengths: ``filter`` is as long as the longest, a pattern's columns from its
    ``width_bins`` on being NaN.
``/processing/<module>/convseq_parameters`` (DynamicTable), one row per parameter of the run:
    ``parameter`` (its name) and ``value`` (its value as JSON text: ``0.05``, ``"crossfit"``,
    ``true``, ``null``), sorted by name: the flat record of ``DetectionResult.parameters``
    (package version included). Core pynwb reads it (``to_dataframe()``); no extension is
    needed. :func:`read_detections` returns it as the dict ``parameters``. A run that searched
    the number of patterns at an explicit width adds ``n_patterns_asked`` (``"auto"``) and
    ``max_patterns``; the fits it tried are in the search table (so the JSON
    ``n_patterns_search`` of the result is not repeated here). When the time scale was searched
    the record is the search's (:attr:`MultiScaleResult.parameters
    <convseq_neo.multiscale.MultiScaleResult>`: ``search``, ``n_scales``, ``scales_width_s``,
    ``scales_bin_size_s``, ``alpha`` for the whole search and ``alpha_per_scale``,
    ``n_patterns_asked``, ``max_patterns``, ``n_fits``, ``recording_*``, ``n_patterns_kept`` and
    ``n_occurrences``),
    with the seed given (``random_state``), the options every fit shared (``max_epochs``,
    ``n_surrogates``, ..., the package version) and, when no pattern was kept, the analysed
    units' rows (``analyzed_units``, JSON); what differs between the windows (bin size, width,
    each fit's seed and ``alpha``, ``pattern_offsets_bins``, ...) is in the scales table.
``/processing/<module>/convseq_search`` (DynamicTable; an automatic run only), one row per fit
    and pattern tried, with its held-out evidence: the columns of
    :attr:`MultiScaleResult.search <convseq_neo.multiscale.MultiScaleResult>` (``scale``,
    ``bin_size``, ``width``, ``width_bins``, ``warp``, ``n_patterns``, ``pattern``,
    ``n_occurrences``, ``n_members``, ``min_pvalue``, ``alpha``, ``seconds``, ``chosen``,
    ``kept``: the row of the patterns table or -1, ``note``: why not). :func:`read_detections`
    returns it as ``search``.
``/processing/<module>/convseq_scales`` (DynamicTable; a search over time scales only), one row
    per scale searched and parameter: ``scale``, ``parameter``, ``value`` (JSON text): the full
    record of the fit kept at each scale. :func:`read_detections` returns it as
    ``scale_parameters`` (one dict per scale, finest first).
``/intervals/convseq_occurrences`` (TimeIntervals; ``mirror_intervals=True``, the default):
    the same occurrences for readers that know ``TimeIntervals`` but not the newer EventsTable
    (pynapple's NWB loader, NWB Widgets, MATLAB's matnwb before EventsTable): ``start_time``
    (onset), ``stop_time`` (offset), ``pattern`` (plain integer), ``center``, ``peak``,
    ``pvalue``, ``bin_size``, ``width``, in time order (the order NWB asks of ``TimeIntervals``); ``id`` is the row of
    the occurrence in ``/events/convseq``. It is a copy for convenience:
    ``/events/convseq`` stays the reference. A run without any occurrence writes no mirror (NWB
    best practice has no empty tables).

Files written by convseq_neo 0.1.0 have no parameters table and no intervals mirror; their
``source_description`` holds every parameter as JSON after ``parameters (JSON): ``. Files
written before the automatic search have no ``bin_size``/``width`` columns (one time scale per
run). :func:`read_detections` reads every layout, and gives the occurrences and patterns of a
run without those columns its recorded ``bin_size_s`` and ``width_s``.

nwbinspector finds nothing to report in these tables, with two exceptions at its lowest level
(BEST_PRACTICE_SUGGESTION) that do not apply: ``check_single_row`` when one pattern is learned
(the patterns table then has one row) and ``check_column_binary_capability`` when the
occurrences use exactly two patterns (it suggests turning the ``pattern`` column into booleans).
A search that kept no pattern stores empty events and patterns tables (the parameters and search
tables say what was tried, and a re-run of :func:`annotate_many` finds it), which nwbinspector
reports as empty tables.
"""

from __future__ import annotations

import errno
import json
import logging
import numbers
import os
import stat
import time
import uuid
import warnings
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import neo
import numpy as np
import pandas as pd
import quantities as pq

from convseq_neo.detect import detect
from convseq_neo.io.file_lock import FileLockedError, check_timeout, file_lock
from convseq_neo.io.intervals import merge_intervals
from convseq_neo.io.safe_write import safe_write
from convseq_neo.result import OCCURRENCE_COLUMNS, DetectionResult

if TYPE_CHECKING:  # pragma: no cover - bound on first access (see __getattr__ at the end)
    from convseq_neo.io.nwb_batch import annotate_many
    from convseq_neo.multiscale import MultiScaleResult

logger = logging.getLogger(__name__)

#: Without obs_intervals or a window, the analysis window ends this long after the last spike.
_LAST_SPIKE_MARGIN_S = 1e-6

__all__ = ["read_units", "annotate", "annotate_many", "read_detections", "read_events", "read_intervals",
           "StoredDetections", "PATTERNS_SUFFIX", "PARAMETERS_SUFFIX", "OCCURRENCES_SUFFIX", "SEARCH_SUFFIX",
           "SCALES_SUFFIX", "SCALE_COLUMNS", "REMOTE_SCHEMES"]

#: The patterns table of a run named ``name`` is ``name + PATTERNS_SUFFIX``.
PATTERNS_SUFFIX = "_patterns"
#: The parameters table of a run named ``name`` is ``name + PARAMETERS_SUFFIX`` (next to the patterns table).
PARAMETERS_SUFFIX = "_parameters"
#: The TimeIntervals mirror of a run's occurrences is ``/intervals/<name + OCCURRENCES_SUFFIX>``.
OCCURRENCES_SUFFIX = "_occurrences"
#: The fits an automatic run tried: ``name + SEARCH_SUFFIX`` (next to the patterns table).
SEARCH_SUFFIX = "_search"
#: The record of the fit kept at each time scale of a search: ``name + SCALES_SUFFIX`` (next to the patterns table).
SCALES_SUFFIX = "_scales"
#: URL schemes that are streamed rather than opened as local paths.
REMOTE_SCHEMES = ("http://", "https://", "s3://")
#: The columns of the occurrences (events and intervals tables) that give each occurrence's time scale, in s.
SCALE_COLUMNS = ("bin_size", "width")
#: Where convseq_neo 0.1.0 put the parameters: as JSON after this marker in the EventsTable's source_description.
_PARAMETERS_MARKER = "parameters (JSON): "
_REMOTE_INSTALL = 'pip install "convseq_neo[remote]"'
#: Special value of ``intervals``: the units' own observation intervals.
_OBS_INTERVALS = "obs_intervals"


# ---------------------------------------------------------------------------------------------
# opening
# ---------------------------------------------------------------------------------------------
def _check_path(path, name: str = "path", *, open_file_allowed: bool = True) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        if not open_file_allowed and type(path).__name__ == "NWBFile":  # without importing pynwb here
            raise TypeError(f"{name} must be the path of the .nwb file, not an open pynwb.NWBFile: annotate writes "
                            "through a verified copy of the file on disk, so it needs the file's path (read_units "
                            "accepts an open NWBFile)")
        what = "a path to an .nwb file or an open pynwb.NWBFile" if open_file_allowed else "a path to an .nwb file"
        raise TypeError(f"{name} must be {what}, got {type(path).__name__}")
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{name}: no such file: '{path}'")
    if not path.is_file():
        raise ValueError(f"{name}: '{path}' is not a file")
    if not os.access(path, os.R_OK):
        raise PermissionError(f"{name}: '{path}' is not readable")
    return path


def _is_remote(source) -> bool:
    """True for a str that is an http(s) or s3 URL."""
    return isinstance(source, str) and source.strip().lower().startswith(REMOTE_SCHEMES)


def _https_url(url: str) -> str:
    """``url`` as fsspec's HTTP file system reads it: http(s) as is, ``s3://bucket/key`` through the bucket's
    public HTTPS endpoint (anonymous access)."""
    url = url.strip()
    if not url.lower().startswith("s3://"):
        return url
    bucket, _, key = url[len("s3://"):].partition("/")
    if not bucket or not key:
        raise ValueError(f"{url!r} is not an s3://bucket/key URL")
    if "." in bucket:  # a dotted bucket name does not match the endpoint's certificate: path-style address
        return f"https://s3.amazonaws.com/{bucket}/{key}"
    return f"https://{bucket}.s3.amazonaws.com/{key}"


def _http_filesystem():
    """fsspec's HTTP file system, or an ImportError that says how to install it."""
    try:
        import fsspec

        return fsspec.filesystem("http")
    except ImportError as err:
        raise ImportError(f"reading a remote NWB file (an http, https or s3 URL) needs the optional packages fsspec "
                          f"and aiohttp: {_REMOTE_INSTALL} (or pip install \"fsspec[http]\"); {err}") from err


@contextmanager
def _remote(url: str, where: str):
    """Stream a remote NWB file read-only: yields ``(io, nwbfile)``; HTTP Range requests through fsspec."""
    import h5py
    from pynwb import NWBHDF5IO

    filesystem = _http_filesystem()
    target = _https_url(url)
    try:
        handle = filesystem.open(target, "rb", cache_type="blockcache")
    except Exception as err:  # fsspec reports any failure to learn the size as FileNotFoundError: look at the cause
        cause = err.__cause__ if isinstance(err, FileNotFoundError) and err.__cause__ is not None else err
        status = getattr(cause, "status", None)
        if isinstance(cause, FileNotFoundError) or status in (404, 410):
            raise FileNotFoundError(f"{where}: no such remote file (the server answered "
                                    f"{f'HTTP {status}' if status else 'not found'})") from err
        # connection refused, DNS, TLS, other HTTP errors: not the caller's argument
        raise OSError(f"{where}: the remote file could not be opened: {type(cause).__name__}: {cause}") from err
    h5file = io = None
    try:
        try:
            h5file = h5py.File(handle, "r")
            io = NWBHDF5IO(file=h5file, mode="r")
            nwbfile = io.read()
        except Exception as err:
            raise ValueError(f"{where} could not be read as an NWB file (a remote file is read with HTTP Range "
                             f"requests, which the server must answer): {type(err).__name__}: {err}") from err
        yield io, nwbfile
    finally:
        if io is not None:
            io.close()
        if h5file is not None:
            h5file.close()
        handle.close()


def _read_only(path: Path) -> bool:
    """True when the file is marked read-only (no write bit) or not writable by this user."""
    mode = os.stat(path).st_mode
    return not (mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)) or not os.access(path, os.W_OK)


def _is_hdf5_lock_error(err: BaseException) -> bool:
    """True when ``err`` (or what caused it) is HDF5 refusing a file another process has locked."""
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        text = str(err).lower()
        if "unable to lock file" in text or (isinstance(err, OSError) and err.errno in (errno.EAGAIN, errno.EWOULDBLOCK)
                                             and "lock" in text):
            return True
        err = err.__cause__ or err.__context__
    return False


def _hdf5_locked(path: Path, err: BaseException) -> FileLockedError:
    return FileLockedError(f"'{path}' is locked by another process (HDF5 file lock: another program has it open for "
                           f"writing): close it there and try again ({type(err).__name__}: {err})", path=path)


@contextmanager
def _held_open(path: Path, timeout: float):
    """Keep ``path`` open read-only with h5py (HDF5 file locking as configured): writers stay out."""
    import h5py

    deadline = time.monotonic() + timeout
    while True:
        try:
            handle = h5py.File(path, "r")
            break
        except Exception as err:
            if not _is_hdf5_lock_error(err):
                raise ValueError(f"'{path}' could not be read as an NWB file: {type(err).__name__}: {err}") from err
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _hdf5_locked(path, err) from err
            time.sleep(min(0.05, remaining))
    try:
        yield handle
    finally:
        handle.close()


@contextmanager
def _local(path: Path):
    """Open a local NWB file read-only: yields ``(io, nwbfile)``."""
    from pynwb import NWBHDF5IO

    io = None
    try:
        io = NWBHDF5IO(str(path), "r")
        nwbfile = io.read()
    except Exception as err:
        if io is not None:
            io.close()
        if _is_hdf5_lock_error(err):
            raise _hdf5_locked(path, err) from err
        raise ValueError(f"'{path}' could not be read as an NWB file: {type(err).__name__}: {err}") from err
    try:
        yield io, nwbfile
    finally:
        io.close()


def _open_source(source, argument: str = "path_or_nwbfile"):
    """Context manager yielding ``(io, nwbfile)`` read-only, from a local path or a remote URL."""
    if _is_remote(source):
        return _remote(source, f"{argument}: '{source}'")
    return _local(_check_path(source, argument))


class _Opened:
    """Context manager: an open NWBFile from a path or URL (read-only) or as given."""

    def __init__(self, source) -> None:
        self.source, self.context = source, None

    def __enter__(self):
        from pynwb import NWBFile

        if isinstance(self.source, NWBFile):
            return self.source
        self.context = _open_source(self.source)
        return self.context.__enter__()[1]

    def __exit__(self, *exc) -> None:
        if self.context is not None:
            self.context.__exit__(*exc)


def _where(source) -> str:
    return f"'{source}'" if isinstance(source, (str, os.PathLike)) else "the NWBFile"


def _units_table(nwbfile, where: str):
    units = nwbfile.units
    if units is None:
        raise ValueError(f"{where} has no Units table (nwbfile.units is None): there are no sorted spikes to analyse")
    if len(units.id) == 0:
        raise ValueError(f"{where} has an empty Units table (0 units)")
    if "spike_times" not in units.colnames:
        raise ValueError(f"{where}: the Units table has no spike_times column")
    return units


def _ragged(table, column: str) -> tuple[np.ndarray, np.ndarray]:
    """Flat data and the (n_rows + 1) boundaries of a ragged column, read in one go each."""
    index_name = f"{column}_index"
    if index_name in table:  # table[column] of a ragged column is its index
        index = table[index_name]
        return np.asarray(index.target.data[:]), np.concatenate([[0], np.asarray(index.data[:], dtype=np.int64)])
    data = np.asarray(table[column].data[:])
    bounds = np.arange(1, len(data) + 1, dtype=np.int64)
    return data, np.concatenate([[0], bounds])


# ---------------------------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------------------------
@dataclass
class _Units:
    trains: list
    rows: np.ndarray
    ids: np.ndarray


def _check_unit_ids(unit_ids) -> np.ndarray:
    """``unit_ids`` as distinct integers (the Units table's ids); TypeError/ValueError otherwise."""
    if isinstance(unit_ids, (str, bytes)):
        raise TypeError(f"unit_ids must be a sequence of integer unit ids, got {type(unit_ids).__name__}")
    values = list(np.atleast_1d(np.asarray(unit_ids, dtype=object)))
    if not values:
        raise ValueError("unit_ids is empty; pass None to read every unit")
    ids = []
    for value in values:
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Integral, numbers.Real)):
            raise TypeError(f"unit_ids must be integer unit ids (the Units table's ids), got {value!r}")
        if not float(value).is_integer():
            raise ValueError(f"unit_ids must be integer unit ids, got {value!r}")
        ids.append(int(value))
    ids = np.asarray(ids, dtype=np.int64)
    distinct, counts = np.unique(ids, return_counts=True)
    if np.any(counts > 1):
        raise ValueError(f"unit_ids repeats {distinct[counts > 1].tolist()}; give each unit once")
    return ids


def _read_units(nwbfile, unit_ids, window, where: str) -> _Units:
    units = _units_table(nwbfile, where)
    all_ids = np.asarray(units.id.data[:])
    if unit_ids is None:
        rows = np.arange(all_ids.size)
    else:
        wanted = _check_unit_ids(unit_ids)
        position = {int(uid): row for row, uid in enumerate(all_ids)}
        missing = [int(u) for u in wanted if int(u) not in position]
        if missing:
            raise ValueError(f"unit_ids {missing} are not in the Units table of {where} (ids {all_ids.min()}-"
                             f"{all_ids.max()}, {all_ids.size} units)")
        rows = np.array([position[int(u)] for u in wanted], dtype=np.int64)
    times, bounds = _ragged(units, "spike_times")
    times = times.astype(float, copy=False)
    spikes = [times[bounds[r]:bounds[r + 1]] for r in rows]
    for row, train in zip(rows, spikes):
        if not np.isfinite(train).all():
            raise ValueError(f"{where}: unit {all_ids[row]} of the Units table holds NaN or infinite spike times; "
                             "fix the file or leave that unit out with unit_ids")
    intervals = None
    if "obs_intervals" in units.colnames:
        flat, ibounds = _ragged(units, "obs_intervals")
        flat = np.asarray(flat, dtype=float).reshape(-1, 2)
        intervals = [flat[ibounds[r]:ibounds[r + 1]] for r in rows]
        dropped = 0
        for i, (train, obs) in enumerate(zip(spikes, intervals)):
            keep = np.zeros(train.size, bool)
            for start, stop in obs:
                keep |= (train >= start) & (train <= stop)
            if not keep.all():
                dropped += int((~keep).sum())
                spikes[i] = train[keep]
        if dropped:
            logger.info("read_units: left out %d spike(s) outside their unit's obs_intervals", dropped)
    if window is not None:
        t_start, t_stop = _named_window(nwbfile, window, where)
    elif intervals is not None and any(obs.size for obs in intervals):
        stacked = np.concatenate([obs for obs in intervals if obs.size])
        t_start, t_stop = float(stacked[:, 0].min()), float(stacked[:, 1].max())
    else:
        nonempty = [s for s in spikes if s.size]
        if not nonempty:
            raise ValueError(f"{where}: the selected units hold no spikes")
        t_start = float(min(s.min() for s in nonempty))
        # 1 us past the last spike: a window end a rounding error past a spike that sits on a bin
        # edge would leave that spike out (binning follows Elephant's edge rule); 1 us keeps it for
        # any bin size up to 100 s and is far below any sampling period.
        t_stop = float(max(s.max() for s in nonempty)) + _LAST_SPIKE_MARGIN_S
    if not t_stop > t_start:
        raise ValueError(f"{where}: the analysis window [{t_start}, {t_stop}] s is empty")
    outside = sum(int(((s < t_start) | (s > t_stop)).sum()) for s in spikes)
    if outside:
        logger.info("read_units: left out %d spike(s) outside the window [%g, %g] s", outside, t_start, t_stop)
        spikes = [s[(s >= t_start) & (s <= t_stop)] for s in spikes]
    names = None
    if "unit_name" in units.colnames:
        names = [str(v) for v in np.asarray(units["unit_name"].data[:])[rows]]
    trains = []
    for i, (row, train) in enumerate(zip(rows, spikes)):
        uid = int(all_ids[row])
        extra = {} if intervals is None else {"obs_intervals": _clip_intervals(intervals[i], t_start, t_stop)}
        trains.append(neo.SpikeTrain(train, units="s", t_start=t_start, t_stop=t_stop,
                                     name=names[i] if names else str(uid), unit_id=uid, units_row=int(row), **extra))
    return _Units(trains, rows, all_ids[rows])


def _clip_intervals(obs: np.ndarray, t_start: float, t_stop: float) -> np.ndarray:
    """A unit's observation intervals (k, 2) clipped to ``[t_start, t_stop]``; those outside it left out."""
    obs = np.asarray(obs, dtype=float).reshape(-1, 2)
    overlap = (obs[:, 1] >= t_start) & (obs[:, 0] <= t_stop)
    clipped = np.clip(obs, t_start, t_stop)
    # an interval that only touches the window edge becomes a point: drop it (a point interval inside stays)
    keep = overlap & ((clipped[:, 1] > clipped[:, 0]) | (obs[:, 1] == obs[:, 0]))
    return np.ascontiguousarray(clipped[keep], dtype=float).reshape(-1, 2)


def _named_window(nwbfile, window: str, where: str) -> tuple[float, float]:
    if not isinstance(window, str):
        raise TypeError(f"window must be the name of an intervals table ('trials', 'epochs', ...), got "
                        f"{type(window).__name__}")
    table = {"trials": nwbfile.trials, "epochs": nwbfile.epochs}.get(window)
    if table is None:
        table = (nwbfile.intervals or {}).get(window)
    if table is None or len(table.id) == 0:
        available = sorted(nwbfile.intervals or {})
        raise ValueError(f"window={window!r}: {where} has no such non-empty intervals table (available: "
                         f"{', '.join(available) or 'none'})")
    return float(np.min(table["start_time"].data[:])), float(np.max(table["stop_time"].data[:]))


def read_units(path_or_nwbfile, unit_ids=None, *, window: str | None = None) -> list[neo.SpikeTrain]:
    """Read the Units table of an NWB file as Neo spike trains.

    The ragged ``spike_times`` column is read directly (its flat data and its index, once each),
    not unit by unit.

    Parameters
    ----------
    path_or_nwbfile : str, os.PathLike or pynwb.NWBFile
        A file (opened read-only and closed again), an ``http(s)://`` or ``s3://`` URL (streamed,
        see the module's Remote files; needs ``pip install "convseq_neo[remote]"``) or an open
        NWBFile.
    unit_ids : sequence of int, optional
        Ids (the Units table's ``id`` column) of the units to read, in this order (default: all).
    window : str, optional
        Name of an intervals table (``"trials"``, ``"epochs"`` or any table in
        ``nwbfile.intervals``) whose span, from its first start to its last stop, is the analysis
        window. Default: the span of the units' ``obs_intervals`` when the table has them, else
        from the first to the last spike.

    Returns
    -------
    list of neo.SpikeTrain
        One per unit, in seconds, all with the same ``t_start`` and ``t_stop``. ``name`` is the
        ``unit_name`` column when present, else the unit id; annotations ``unit_id``,
        ``units_row`` (row in the Units table) and, when the table has an ``obs_intervals``
        column, ``obs_intervals``: the unit's observation intervals in seconds (float array of
        shape (k, 2)) clipped to the analysis window. Spikes outside a unit's ``obs_intervals`` or
        outside the window are left out (logged at INFO).

    Raises
    ------
    FileNotFoundError
        No such file (or no such remote file).
    ImportError
        A URL without the optional packages for remote reading (the message says what to install).
    OSError
        A remote file the server did not deliver (connection refused, HTTP error).
    convseq_neo.io.file_lock.FileLockedError
        Another program has the file open for writing (HDF5 file lock).
    ValueError
        Not an NWB file, no Units table, an empty one, unknown ``unit_ids`` or ``window``, no spike.

    Examples
    --------
    >>> import datetime
    >>> from pynwb import NWBFile
    >>> nwbfile = NWBFile(session_description="demo", identifier="demo",
    ...                   session_start_time=datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc))
    >>> nwbfile.add_unit(spike_times=[0.5, 1.5, 2.5], obs_intervals=[[0.0, 2.0]])
    >>> nwbfile.add_unit(spike_times=[1.0], obs_intervals=[[0.0, 3.0]])
    >>> trains = read_units(nwbfile)
    >>> [train.times.magnitude.tolist() for train in trains]
    [[0.5, 1.5], [1.0]]
    >>> float(trains[0].t_start), float(trains[0].t_stop), trains[1].annotations["unit_id"]
    (0.0, 3.0, 1)
    >>> trains[0].annotations["obs_intervals"]
    array([[0., 2.]])
    """
    with _Opened(path_or_nwbfile) as nwbfile:
        return _read_units(nwbfile, unit_ids, window, _where(path_or_nwbfile)).trains


# ---------------------------------------------------------------------------------------------
# intervals as a neo.Epoch
# ---------------------------------------------------------------------------------------------
def _time_intervals_tables(nwbfile) -> dict:
    """Every TimeIntervals table of the file by name: trials, epochs, invalid_times and those in /intervals."""
    from pynwb.epoch import TimeIntervals

    tables = {name: table for name, table in (nwbfile.intervals or {}).items() if isinstance(table, TimeIntervals)}
    for name in ("trials", "epochs", "invalid_times"):
        table = getattr(nwbfile, name, None)
        if isinstance(table, TimeIntervals):
            tables.setdefault(name, table)
    return tables


def _check_intervals(intervals) -> None:
    if intervals is not None and not isinstance(intervals, (str, neo.Epoch)):
        raise TypeError(f"intervals must be the name of a TimeIntervals table in the file ('trials', 'epochs', ...), "
                        f"'{_OBS_INTERVALS}' or a neo.Epoch, got {type(intervals).__name__}")
    if isinstance(intervals, str) and not intervals.strip():
        raise ValueError("intervals is an empty name; pass a TimeIntervals table's name, 'obs_intervals' or None")


def _intervals_epoch(nwbfile, intervals, where: str, rows: np.ndarray | None = None) -> neo.Epoch:
    """``intervals`` (a TimeIntervals table's name, ``"obs_intervals"`` or a neo.Epoch) as a neo.Epoch in s.

    ``rows``: the Units-table rows whose ``obs_intervals`` count (default: every unit).
    """
    _check_intervals(intervals)
    if isinstance(intervals, neo.Epoch):
        return intervals
    tables = _time_intervals_tables(nwbfile)
    units = nwbfile.units
    has_obs = units is not None and "obs_intervals" in units.colnames
    if intervals == _OBS_INTERVALS and has_obs and intervals not in tables:
        flat, bounds = _ragged(units, "obs_intervals")
        flat = np.asarray(flat, dtype=float).reshape(-1, 2)
        rows = np.arange(len(bounds) - 1) if rows is None else np.asarray(rows, dtype=np.int64)
        spans = np.concatenate([flat[bounds[r]:bounds[r + 1]] for r in rows] + [np.zeros((0, 2))])
        starts, stops = spans[:, 0], spans[:, 1]
        ids = None
        label = f"the obs_intervals of the Units table of {where}"
    else:
        table = tables.get(intervals)
        if table is None:
            available = sorted(tables) + ([_OBS_INTERVALS] if has_obs else [])
            raise ValueError(f"intervals={intervals!r}: {where} has no TimeIntervals table of that name (available: "
                             f"{', '.join(repr(a) for a in available) or 'none'})")
        starts = np.asarray(table["start_time"].data[:], dtype=float)
        stops = np.asarray(table["stop_time"].data[:], dtype=float)
        ids = np.asarray(table.id.data[:], dtype=np.int64)
        label = f"the TimeIntervals table {intervals!r} of {where}"
        spans = np.column_stack([starts, stops])
    if spans.shape[0] == 0:
        raise ValueError(f"intervals={intervals!r}: {label} has no intervals")
    if not np.isfinite(spans).all():
        raise ValueError(f"intervals={intervals!r}: {label} holds NaN or infinite times")
    if np.any(stops < starts):
        bad = int(np.flatnonzero(stops < starts)[0])
        raise ValueError(f"intervals={intervals!r}: {label} has an interval that stops before it starts "
                         f"([{starts[bad]}, {stops[bad]}] s)")
    if ids is None:  # the units' intervals: their union
        spans = merge_intervals(spans)
        annotations = {}
    else:  # a table's rows, in time order, each with its id
        order = np.argsort(starts, kind="stable")
        spans, ids = spans[order], ids[order]
        annotations = {"nwb_id": ids}
    return neo.Epoch(times=spans[:, 0] * pq.s, durations=(spans[:, 1] - spans[:, 0]) * pq.s, name=str(intervals),
                     description=f"intervals from {label}", array_annotations=annotations)


def read_intervals(path_or_nwbfile, name: str, unit_ids=None) -> neo.Epoch:
    """Read a ``TimeIntervals`` table of an NWB file, or its units' ``obs_intervals``, as a ``neo.Epoch``.

    This is how :func:`annotate`'s ``intervals=`` argument is resolved.

    Parameters
    ----------
    path_or_nwbfile : str, os.PathLike or pynwb.NWBFile
        A file (opened read-only), an ``http(s)://`` or ``s3://`` URL, or an open NWBFile.
    name : str
        ``"trials"``, ``"epochs"``, ``"invalid_times"``, the name of any table under
        ``/intervals``, or ``"obs_intervals"``: the union of the units' observation intervals
        (overlapping ones merged), used when the file has no TimeIntervals table of that name.
    unit_ids : sequence of int, optional
        With ``"obs_intervals"``: the units whose intervals count (default: all).

    Returns
    -------
    neo.Epoch
        ``times`` = ``start_time``, ``durations`` = ``stop_time - start_time``, in seconds, in time
        order; ``name`` is ``name``. From a table, the array annotation ``nwb_id`` holds each
        interval's row id in the table.

    Raises
    ------
    TypeError
        ``name`` is not a str.
    ValueError
        No TimeIntervals table of that name (the message lists the names available), an empty
        table, NaN times, or an interval that stops before it starts.

    Examples
    --------
    >>> import datetime
    >>> from pynwb import NWBFile
    >>> nwbfile = NWBFile(session_description="demo", identifier="demo",
    ...                   session_start_time=datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc))
    >>> nwbfile.add_trial(start_time=10.0, stop_time=12.5)
    >>> nwbfile.add_trial(start_time=2.0, stop_time=4.0)
    >>> epoch = read_intervals(nwbfile, "trials")
    >>> epoch.times.magnitude.tolist(), epoch.durations.magnitude.tolist(), epoch.array_annotations["nwb_id"].tolist()
    ([2.0, 10.0], [2.0, 2.5], [1, 0])
    >>> read_intervals(nwbfile, "sleep")
    Traceback (most recent call last):
    ...
    ValueError: intervals='sleep': the NWBFile has no TimeIntervals table of that name (available: 'trials')
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be the name of a TimeIntervals table or 'obs_intervals', got {type(name).__name__}")
    with _Opened(path_or_nwbfile) as nwbfile:
        rows = None
        if unit_ids is not None:
            all_ids = np.asarray(_units_table(nwbfile, _where(path_or_nwbfile)).id.data[:])
            position = {int(uid): row for row, uid in enumerate(all_ids)}
            wanted = _check_unit_ids(unit_ids)
            missing = [int(u) for u in wanted if int(u) not in position]
            if missing:
                raise ValueError(f"unit_ids {missing} are not in the Units table of {_where(path_or_nwbfile)}")
            rows = np.array([position[int(u)] for u in wanted], dtype=np.int64)
        return _intervals_epoch(nwbfile, name, _where(path_or_nwbfile), rows)


# ---------------------------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------------------------
def _free_name(nwbfile, module: str, name: str) -> str:
    for i in range(2, 1000):
        candidate = f"{name}_{i}"
        if not _clashes(nwbfile, module, candidate):
            return candidate
    return f"{name}_new"  # pragma: no cover


def _clashes(nwbfile, module: str, name: str, mirror: bool = True) -> list[str]:
    found = []
    if name in (nwbfile.events or {}):
        found.append(f"an events table '/events/{name}'")
    if module in nwbfile.processing:
        interfaces = nwbfile.processing[module].data_interfaces
        for suffix in (PATTERNS_SUFFIX, PARAMETERS_SUFFIX, SEARCH_SUFFIX, SCALES_SUFFIX):
            if name + suffix in interfaces:
                found.append(f"a table '/processing/{module}/{name}{suffix}'")
    if mirror and name + OCCURRENCES_SUFFIX in _time_intervals_tables(nwbfile):
        found.append(f"a table '/intervals/{name}{OCCURRENCES_SUFFIX}'")
    return found


def _check_name(name, argument: str) -> str:
    if not isinstance(name, str):
        raise TypeError(f"{argument} must be a str, got {type(name).__name__}")
    if not name or "/" in name or name.strip() != name:
        raise ValueError(f"{argument} must be a non-empty name without '/' or surrounding spaces, got {name!r}")
    return name


def _source_description(stored: _Storable, module: str, name: str) -> str:
    """One short phrase: the algorithm, the version and the main parameters (all of them are in the parameters
    table)."""
    params = stored.parameters
    software = str(params.get("software", "convseq_neo"))
    k = int(params.get("n_patterns", len(stored.patterns)))
    main = [f"{k} pattern{'s' if k != 1 else ''}"]
    if stored.searched:  # several time scales: the windows searched, not one bin and width
        widths = json.loads(params["scales_width_s"]) if isinstance(params.get("scales_width_s"), str) else []
        if widths:
            span = (f"{widths[0] * 1e3:g}" + (f"-{widths[-1] * 1e3:g}" if len(widths) > 1 else "") + " ms")
            main.append(f"time scale searched ({len(widths)} window{'s' if len(widths) != 1 else ''}, {span})")
    else:
        for key, label in (("bin_size_s", "bin"), ("width_s", "width")):
            if isinstance(params.get(key), (int, float)):
                main.append(f"{label} {params[key] * 1e3:g} ms")
    for key, label in (("alpha", "alpha"), ("n_surrogates", "n_surrogates")):
        if key in params:
            main.append(f"{label} {params[key]:g}" if isinstance(params[key], (int, float)) else
                        f"{label} {params[key]}")
    return (f"convSeq ({software}): {', '.join(main)}; every parameter in "
            f"/processing/{module}/{name}{PARAMETERS_SUFFIX}")


#: Parameters of one fit that the record of an automatic search keeps per scale only (in ``scale_parameters``):
#: they describe one window, one seed or one fit's outcome, not the whole search.
_PER_FIT_PARAMETERS = frozenset({"bin_size_s", "width_s", "width_bins", "width", "guard_bins", "t_start_s",
                                 "t_stop_s", "n_patterns", "n_patterns_search", "n_occurrences", "alpha",
                                 "random_state", "pattern_offsets_bins", "lag_tolerance_used"})
_MISSING = object()


def _common_fit_parameters(records: list) -> dict:
    """The parameters every fit of a search shares (the run's options, the software, the units), without those of
    :data:`_PER_FIT_PARAMETERS`: the part of the per-scale records that the search's record holds once."""
    if not records:
        return {}
    first, others = records[0], records[1:]
    return {key: value for key, value in first.items() if key not in _PER_FIT_PARAMETERS
            and all(other.get(key, _MISSING) == value for other in others)}


def _searched_parameters(common: dict, search: dict, *, random_state) -> dict:
    """The stored record of an automatic time-scale search: what every fit shares, then the search's own record
    (:attr:`MultiScaleResult.parameters <convseq_neo.multiscale.MultiScaleResult>`) and the seed given (each fit's
    own seed, and the rest of each scale's full record, go to the scales table)."""
    from convseq_neo.result import _flat

    return {**common, **search, "random_state": _flat(random_state)}


@dataclass
class _Storable:
    """What :func:`annotate` stores of a result, whether one fit (:class:`DetectionResult`) or a time-scale search
    (:class:`~convseq_neo.multiscale.MultiScaleResult`): the patterns numbered as stored, their membership, the
    occurrences with each one's scale, each pattern's bin size and window, the record, the fits tried."""

    patterns: list
    membership: pd.DataFrame
    occurrences: pd.DataFrame
    bin_size_s: np.ndarray
    width_bins: np.ndarray
    parameters: dict
    search: pd.DataFrame | None
    searched: bool  # several time scales were searched (the record is the search's)
    scale_records: list | None = None  # then: the full record of the fit kept at each scale, finest first


def _storable(result, rows: np.ndarray, *, random_state=None, n_patterns=1, max_patterns=None) -> _Storable:
    """The :class:`_Storable` view of ``result``; completes ``result.parameters`` with what the record of an
    automatic run adds (``n_patterns_asked``, ``max_patterns``; for a search also what every fit shared and the
    seed), so that what ``annotate`` returns is what the parameters table holds. ``n_patterns_search`` (the
    occurrences of each fit of a search over the number of patterns, JSON of a dict) leaves the record: the search
    table holds the same, row by row, and nwbinspector reports text that holds a dict. A search that kept no
    pattern records the analysed units' rows (``rows``) as ``analyzed_units`` (JSON list): the patterns table, which
    holds them otherwise, has no row."""
    from convseq_neo.multiscale import MultiScaleResult
    from convseq_neo.scale_search import _is_auto

    if isinstance(result, MultiScaleResult):
        pattern_map = result.pattern_map
        frames = []
        for row in pattern_map.itertuples(index=False):
            table = result.results[int(row.scale)].membership
            part = table[table["pattern"] == int(row.local_pattern)].copy()
            part["pattern"] = int(row.pattern)
            frames.append(part)
        membership = (pd.concat(frames, ignore_index=True) if frames else
                      pd.DataFrame(columns=["pattern", "neuron", "name", "score", "pvalue", "member", "lag"]))
        width_bins = np.array([int(result.results[int(s)].model.width) for s in pattern_map["scale"]], dtype=np.int64)
        bin_size_s = pattern_map["bin_size"].to_numpy(float)
        occurrences = result.occurrences[list(OCCURRENCE_COLUMNS) + ["bin_size", "width"]].reset_index(drop=True)
        records = [dict(fit.parameters) for fit in result.results]
        result.parameters.update(_searched_parameters(_common_fit_parameters(records), dict(result.parameters),
                                                      random_state=random_state))
        if not result.n_patterns:
            result.parameters["analyzed_units"] = json.dumps(np.asarray(rows, dtype=np.int64).tolist())
        return _Storable(list(result.patterns), membership, occurrences, bin_size_s, width_bins, result.parameters,
                         result.search, True, records)
    bin_size = float(result.raster.bin_size_s)
    width = int(result.model.width)
    occurrences = result.occurrences[list(OCCURRENCE_COLUMNS)].copy()
    occurrences["bin_size"] = bin_size
    occurrences["width"] = bin_size * width
    search = getattr(result, "pattern_search", None)
    if search is not None and {"chosen", "kept", "pattern"} <= set(search.columns):
        search = search.copy()  # the kept fit's patterns are the stored ones, numbered as in that fit
        search.loc[search["chosen"], "kept"] = search.loc[search["chosen"], "pattern"]
    if _is_auto(n_patterns):  # the number of patterns was searched: the search table holds the evidence
        result.parameters.update(n_patterns_asked="auto", max_patterns=int(max_patterns))
        if search is not None:
            result.parameters.pop("n_patterns_search", None)
    k = result.n_patterns
    return _Storable(list(result.patterns), result.membership, occurrences, np.full(k, bin_size),
                     np.full(k, width, dtype=np.int64), result.parameters, search, False)


def _json_value(value):
    """JSON for what json cannot write itself: numpy scalars and arrays as numbers and lists, anything else as text."""
    if isinstance(value, np.generic) or (isinstance(value, np.ndarray) and not isinstance(value, pq.Quantity)):
        return value.tolist()
    return str(value)  # a Quantity as "0.005 s"


#: Descriptions of the columns of the search table (``<name>_search``), one row per fit and pattern tried.
_SEARCH_COLUMNS = {
    "scale": "index of the time scale searched (0: the finest)",
    "bin_size": "bin size of the fit (s)",
    "width": "filter window of the fit (s)",
    "width_bins": "filter window of the fit (bins)",
    "warp": "compression factor (1: as learned)",
    "n_patterns": "number of patterns of the fit",
    "pattern": "the pattern within that fit",
    "n_occurrences": "its significant cross-fitted (held-out) occurrences",
    "n_members": "its member units",
    "min_pvalue": "its smallest occurrence p-value (NaN: no occurrence)",
    "alpha": "the level the fit was tested at (alpha divided by the number of time scales searched)",
    "seconds": "time the fit took (s)",
    "chosen": "whether this fit is the one kept at its time scale",
    "kept": "the pattern's row in the patterns table, or -1: not kept (see note)",
    "note": "why a pattern was not kept, or why the search at that scale stopped",
}


def _search_table(search: pd.DataFrame, name: str, module: str):
    """The fits an automatic run tried (:attr:`MultiScaleResult.search`, or the ``pattern_search`` of a search over
    the number of patterns) as a DynamicTable, one row per fit and pattern."""
    from hdmf.common import DynamicTable, VectorData

    columns = []
    for column in search.columns:
        values = search[column]
        if pd.api.types.is_bool_dtype(values):
            data = values.to_numpy(bool)
        elif pd.api.types.is_integer_dtype(values):
            data = values.to_numpy(np.int64)
            if len(data) and data.min() >= 0 and data.max() <= 255:
                # one byte (as the intervals mirror's pattern column): nwbinspector suggests booleans for an
                # integer column holding only 0 and 1, which the scale of a two-scale search does
                data = data.astype(np.uint8)
        elif pd.api.types.is_float_dtype(values):
            data = values.to_numpy(float)
        else:
            data = [str(v) for v in values]
        columns.append(VectorData(name=str(column), description=_SEARCH_COLUMNS.get(column, str(column)), data=data))
    return DynamicTable(name=name + SEARCH_SUFFIX,
                        description=f"every fit the automatic convSeq run stored in /events/{name} tried, one row per "
                        f"fit and pattern, with its held-out evidence; kept = row of /processing/{module}/{name}"
                        f"{PATTERNS_SUFFIX}", columns=columns, id=np.arange(len(search), dtype=np.int64))


def _scales_table(records: list, name: str, module: str):
    """The full parameter record of the fit kept at each time scale of a search, as a DynamicTable: one row per
    (scale, parameter), the value as JSON text, as in the parameters table."""
    from hdmf.common import DynamicTable, VectorData

    scales, keys, values = [], [], []
    for index, record in enumerate(records):
        for key in sorted(record):
            scales.append(index)
            keys.append(key)
            values.append(json.dumps(record[key], default=_json_value))
    return DynamicTable(
        name=name + SCALES_SUFFIX,
        description=f"the parameter record of the fit kept at each time scale the convSeq run stored in "
        f"/events/{name} searched (one row per scale and parameter; value as JSON text); the run's own record is "
        f"/processing/{module}/{name}{PARAMETERS_SUFFIX}",
        columns=[VectorData(name="scale", description="index of the time scale (0: the finest), as in the search "
                            "table", data=np.asarray(scales, dtype=np.uint8 if len(records) <= 255 else np.int64)),
                 VectorData(name="parameter", description="parameter name", data=keys),
                 VectorData(name="value", description="parameter value as JSON text (numbers, strings in double "
                            "quotes, true/false, null)", data=values)],
        id=np.arange(len(keys), dtype=np.int64))


def _build_tables(stored: _Storable, units_table, rows: np.ndarray, name: str, module: str = "ecephys",
                  mirror: bool = True):
    """The patterns and parameters DynamicTables, the EventsTable, (``mirror``) the TimeIntervals copy of the
    occurrences (else None) and the list of further tables of an automatic run (the search table; for a search
    over time scales also the scales table), built column-wise."""
    from hdmf.common import DynamicTable, DynamicTableRegion, VectorData, VectorIndex
    from pynwb.epoch import TimeIntervals
    from pynwb.event import DurationVectorData, EventsTable, TimestampVectorData

    n_patterns = len(stored.patterns)
    member_rows = [rows[p.neurons] for p in stored.patterns]
    bounds = np.cumsum([p.size for p in stored.patterns]).astype(np.int64)

    def ragged(column: str, description: str, values: list, table=None):
        flat = np.concatenate(values) if values else np.zeros(0)
        if table is None:
            data = VectorData(name=column, description=description, data=np.asarray(flat, dtype=float))
        else:
            data = DynamicTableRegion(name=column, description=description, data=np.asarray(flat, dtype=np.int64),
                                      table=table)
        return [data, VectorIndex(name=f"{column}_index", data=bounds if column != "analyzed_units" else
                                  np.arange(1, n_patterns + 1, dtype=np.int64) * rows.size, target=data)]

    membership = stored.membership
    grid = {}
    for column in ("score", "pvalue", "lag"):
        grid[column] = membership.pivot(index="pattern", columns="neuron", values=column).reindex(
            index=range(n_patterns), columns=range(rows.size)).to_numpy(float) if len(membership) else \
            np.zeros((0, rows.size))
    bin_size_s, width_bins = stored.bin_size_s, stored.width_bins
    longest = int(width_bins.max()) if n_patterns else 0
    filters = np.full((n_patterns, rows.size, longest), np.nan)
    tested_filters = np.full((n_patterns, rows.size, longest), np.nan)
    # a model loaded from a file written before the tested filters were stored has none to store
    has_tested = all(pattern.tested_filter is not None for pattern in stored.patterns)
    for k, pattern in enumerate(stored.patterns):  # a pattern of a shorter window is padded with NaN on the right
        filters[k, :, :int(width_bins[k])] = np.asarray(pattern.filter, dtype=float)
        if has_tested:
            tested_filters[k, :, :int(width_bins[k])] = np.asarray(pattern.tested_filter, dtype=float)
    if n_patterns and np.unique(width_bins).size == 1 and np.unique(bin_size_s).size == 1:
        filter_description = (f"learned filter (analysed units x {longest} bins; column j is the lag (j - "
                              f"{longest // 2}) * {bin_size_s[0]:g} s from the window centre; rows sum to 1)")
    else:  # patterns of several time scales
        filter_description = ("learned filter (analysed units x window bins of the pattern's own scale: column j is "
                              "the lag (j - width_bins // 2) * bin_size from the window centre; rows sum to 1; "
                              "columns from width_bins on are NaN, padding to the longest window)")
    columns = [
        *ragged("units", "member units of the pattern (rows of the Units table), ordered by lag", member_rows,
                units_table),
        *ragged("lags", "each member's expected spike time relative to the occurrence centre, in seconds",
                [p.lags.rescale(pq.s).magnitude for p in stored.patterns]),
        *ragged("scores", "membership z-scores of the members", [p.scores for p in stored.patterns]),
        *ragged("pvalues", "membership p-values of the members (Sidak over lags)",
                [p.pvalues for p in stored.patterns]),
        VectorData(name="n_occurrences", description="number of significant occurrences",
                   data=np.array([p.n_occurrences for p in stored.patterns], dtype=np.int64)),
        *ragged("analyzed_units", "the units the detector analysed (rows of the Units table), in the order of the "
                "all_* and filter columns", [rows] * n_patterns, units_table),
        VectorData(name="all_scores", description="membership z-score of every analysed unit",
                   data=grid["score"]),
        VectorData(name="all_pvalues", description="membership p-value of every analysed unit", data=grid["pvalue"]),
        VectorData(name="all_lags", description="lag (s, relative to the centre) of every analysed unit; NaN where "
                   "it never fired near an occurrence", data=grid["lag"]),
        VectorData(name="filter", description=filter_description, data=filters),
        *([VectorData(name="tested_filter", description="the pattern as find() looks for it: each member's log "
                      "likelihood ratio around its lag, zero for every other unit (same layout as filter, rows do "
                      "not sum to 1); for a pattern without members, or a run with significance random_filters, "
                      "the filter find() applies instead", data=tested_filters)]
          if has_tested else []),
        VectorData(name="bin_size", description="bin size the pattern was learned at (s)",
                   data=np.asarray(bin_size_s, dtype=float)),
        VectorData(name="width", description="filter window the pattern was learned at: the longest sequence it "
                   "spans (s)", data=np.asarray(bin_size_s * width_bins, dtype=float)),
        VectorData(name="width_bins", description="filter window in bins (the filter's own columns)",
                   data=np.asarray(width_bins, dtype=np.int64)),
    ]
    patterns = DynamicTable(name=name + PATTERNS_SUFFIX, description="convSeq patterns: member units, lags, "
                            "membership, learned filters and time scale (one row per pattern; id = pattern index)",
                            columns=columns, id=np.arange(n_patterns, dtype=np.int64))
    record = stored.parameters
    keys = sorted(record)
    parameters = DynamicTable(
        name=name + PARAMETERS_SUFFIX,
        description=f"every parameter of the convSeq run stored in /events/{name} (one row per parameter; value as "
        "JSON text)",
        columns=[VectorData(name="parameter", description="parameter name", data=keys),
                 VectorData(name="value", description="parameter value as JSON text (numbers, strings in double "
                            "quotes, true/false, null)",
                            data=[json.dumps(record[key], default=_json_value) for key in keys])],
        id=np.arange(len(keys), dtype=np.int64))
    occ = stored.occurrences
    onset, offset = occ["onset"].to_numpy(float), occ["offset"].to_numpy(float)
    scale_columns = [("bin_size", "bin size of the occurrence's pattern (s)"),
                     ("width", "filter window of the occurrence's pattern (s)")]
    events = EventsTable(
        name=name, description="convSeq sequence occurrences: each event spans [timestamp, timestamp + duration] "
        "= [onset, offset], from the earliest to the latest member's expected spike time",
        source_description=_source_description(stored, module, name),
        columns=[
            TimestampVectorData(name="timestamp", description="occurrence onset (s)", data=onset),
            DurationVectorData(name="duration", description="offset - onset (s)", data=offset - onset),
            VectorData(name="center", description="occurrence centre: mean of the members' expected spike times (s)",
                       data=occ["center"].to_numpy(float)),
            DynamicTableRegion(name="pattern", description="the pattern (row of the patterns table)",
                               data=occ["pattern"].to_numpy().astype(np.int32), table=patterns),
            VectorData(name="peak", description="tested response height", data=occ["peak"].to_numpy(float)),
            VectorData(name="pvalue", description="uncorrected p-value (all passed Benjamini-Hochberg at alpha)",
                       data=occ["pvalue"].to_numpy(float)),
            *[VectorData(name=column, description=text, data=occ[column].to_numpy(float))
              for column, text in scale_columns],
        ],
        id=np.arange(len(occ), dtype=np.int64))
    intervals = None
    if mirror and len(occ):  # no empty table: nwbinspector reports empty tables (and trips over their columns)
        order = np.argsort(onset, kind="stable")  # TimeIntervals rows go in time order
        # the smallest unsigned integer that holds every pattern index: with one byte, nwbinspector does not
        # suggest booleans for a run of two patterns (check_column_binary_capability)
        pattern_dtype = np.min_scalar_type(max(n_patterns - 1, 0))
        intervals = TimeIntervals(
            name=name + OCCURRENCES_SUFFIX,
            description=f"convSeq sequence occurrences, a copy of /events/{name} for readers of TimeIntervals (id = "
            f"row in /events/{name}; pattern = row in /processing/{module}/{name}{PATTERNS_SUFFIX})",
            columns=[
                VectorData(name="start_time", description="occurrence onset (s)", data=onset[order]),
                VectorData(name="stop_time", description="occurrence offset (s)", data=offset[order]),
                VectorData(name="pattern", description=f"the pattern (row of /processing/{module}/{name}"
                           f"{PATTERNS_SUFFIX})", data=occ["pattern"].to_numpy().astype(pattern_dtype)[order]),
                VectorData(name="center", description="occurrence centre: mean of the members' expected spike "
                           "times (s)", data=occ["center"].to_numpy(float)[order]),
                VectorData(name="peak", description="tested response height", data=occ["peak"].to_numpy(float)[order]),
                VectorData(name="pvalue", description="uncorrected p-value (all passed Benjamini-Hochberg at alpha)",
                           data=occ["pvalue"].to_numpy(float)[order]),
                *[VectorData(name=column, description=text, data=occ[column].to_numpy(float)[order])
                  for column, text in scale_columns],
            ],
            id=np.arange(len(occ), dtype=np.int64)[order])
    extra = []
    if stored.search is not None and len(stored.search):
        extra.append(_search_table(stored.search, name, module))
    if stored.scale_records:
        extra.append(_scales_table(stored.scale_records, name, module))
    return patterns, events, parameters, intervals, extra


def _check_destination(source, out, remote: bool = False) -> Path:
    """Where :func:`annotate` writes: ``source`` itself or a new file ``out``, in a writable directory."""
    if out is None:
        if remote:
            raise ValueError(f"path '{source}' is a remote file, which cannot be annotated in place: pass out=... "
                             "(a local path; command line: --out) to write an annotated copy")
        dest = source
        if _read_only(source):
            raise PermissionError(f"'{source}' is read-only: make it writable, or pass out=... (command line: --out) "
                                  "to write an annotated copy")
    else:
        if not isinstance(out, (str, os.PathLike)):
            raise TypeError(f"out must be a path, got {type(out).__name__}")
        if _is_remote(out):
            raise ValueError(f"out must be a local path, got the URL {out!r}: the annotated copy is written locally")
        dest = Path(out)
        if dest.exists():
            raise FileExistsError(f"out: '{dest}' exists already; choose a new path (or annotate it in place)")
        if not dest.parent.is_dir():
            raise FileNotFoundError(f"out: the directory '{dest.parent}' does not exist")
    if not os.access(dest.parent if str(dest.parent) else Path("."), os.W_OK):
        raise PermissionError(f"the directory '{dest.parent}' is not writable (a temporary copy is written there)")
    return dest


@contextmanager
def _temporary_name_accepted():
    """Silence pynwb's warning that a path does not end in '.nwb': the temporary copies of safe_write do not."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*does not end in '\.nwb'", category=UserWarning)
        yield


def _units_snapshot(nwbfile) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flat spike times, their boundaries and the unit ids: what an annotated copy must keep bit for bit."""
    times, bounds = _ragged(nwbfile.units, "spike_times")
    return times, bounds, np.asarray(nwbfile.units.id.data[:])


def _add_tables(nwbfile, stored: _Storable, rows: np.ndarray, name: str, module: str, mirror: bool,
                where: str) -> None:
    """Add the tables of ``stored`` to the (open) ``nwbfile``."""
    clash = _clashes(nwbfile, module, name, mirror)
    if clash:  # pragma: no cover - the file changed since it was checked
        raise ValueError(f"{where} already holds {' and '.join(clash)}; pass another name")
    patterns, events, parameters, intervals, extra = _build_tables(stored, nwbfile.units, rows, name, module,
                                                                   mirror)
    if module in nwbfile.processing:
        processing = nwbfile.processing[module]
    else:
        processing = nwbfile.create_processing_module(
            name=module, description="processed data (convSeq spike-sequence detections)")
    processing.add(patterns)
    processing.add(parameters)
    for table in extra:
        processing.add(table)
    nwbfile.add_events_table(events)
    if intervals is not None:
        nwbfile.add_time_intervals(intervals)


def _append_tables(path: Path, stored: _Storable, rows: np.ndarray, name: str, module: str, mirror: bool,
                   where: str) -> None:
    """Append the tables of ``stored`` to the NWB file at ``path`` (an in-place update)."""
    from pynwb import NWBHDF5IO

    with _temporary_name_accepted(), NWBHDF5IO(str(path), "a") as io:
        nwbfile = io.read()
        _add_tables(nwbfile, stored, rows, name, module, mirror, where)
        io.write(nwbfile)


def _export_derived(src_io, nwbfile, path: Path, stored: _Storable, rows: np.ndarray, name: str, module: str,
                    mirror: bool, where: str) -> str:
    """Write a derived file at ``path``: the source's content and the new tables, with a new identifier and new
    object ids. Returns the new identifier."""
    from pynwb import NWBHDF5IO

    identifier = str(uuid.uuid4())
    source_identifier = nwbfile.identifier
    # NWBFile.identifier has no setter (hdmf fields are set once); export writes what `fields` holds
    nwbfile.fields["identifier"] = identifier
    if nwbfile.identifier != identifier:  # pragma: no cover - an hdmf that stores fields elsewhere
        raise RuntimeError("could not give the derived NWB file a new identifier; the source was left untouched")
    nwbfile.generate_new_id()  # new object ids for every container read from the source
    _add_tables(nwbfile, stored, rows, name, module, mirror, where)
    nwbfile.set_modified()
    with _temporary_name_accepted(), NWBHDF5IO(str(path), "w") as io:
        # link_data=False: datasets are copied (H5Ocopy: storage settings kept), never linked to the source
        io.export(src_io=src_io, nwbfile=nwbfile, write_args={"link_data": False})
    logger.info("annotate: derived file with identifier %s (source identifier %s)", identifier, source_identifier)
    return identifier


def _stored_intact(path: Path, name: str, original: tuple[np.ndarray, np.ndarray, np.ndarray],
                   identifier: str | None = None) -> bool:
    """True when the file at ``path`` reads back with the events table ``name``, ``original``'s units and (when
    given) the identifier ``identifier``."""
    from pynwb import NWBHDF5IO

    with _temporary_name_accepted(), NWBHDF5IO(str(path), "r") as io:
        nwbfile = io.read()
        times, bounds, ids = _units_snapshot(nwbfile)
        return (times.dtype == original[0].dtype and np.array_equal(times, original[0])
                and np.array_equal(bounds, original[1]) and np.array_equal(ids, original[2])
                and name in (nwbfile.events or {}) and (identifier is None or nwbfile.identifier == identifier))


@dataclass
class _Prepared:
    units: _Units
    original: tuple
    options: dict


def _prepare(nwbfile, *, name, module, mirror, unit_ids, window, intervals, core_options, where) -> _Prepared:
    """Check the names, read the units and resolve ``intervals``: everything before the fit."""
    clash = _clashes(nwbfile, module, name, mirror)
    if clash:
        raise ValueError(f"{where} already holds {' and '.join(clash)}; NWB cannot delete objects, so store this run "
                         f"under another name, e.g. name={_free_name(nwbfile, module, name)!r} (command line: --name)")
    units = _read_units(nwbfile, unit_ids, window, where)
    options = dict(core_options)
    if intervals is not None:
        # passed on to detect(intervals=...) with the core options: a neo.Epoch on the file's clock
        options["intervals"] = _intervals_epoch(nwbfile, intervals, where, units.rows)
    return _Prepared(units, _units_snapshot(nwbfile), options)


def _check_detection_arguments(bin_size, width, n_patterns, random_state, core_options: dict,
                               max_patterns=4) -> None:
    """Refuse what :func:`~convseq_neo.detect` would refuse about the arguments alone, before the file is locked,
    opened or streamed (the width in bins, the recording's length and the time scales that fit it are checked by
    ``detect`` itself)."""
    from convseq_neo._validation import check_time_quantity
    from convseq_neo.core.estimator import ConvSeq
    from convseq_neo.detect import _check_core_options
    from convseq_neo.scale_search import _is_auto, check_auto_arguments

    check_auto_arguments(bin_size, width, n_patterns, max_patterns)
    if not _is_auto(bin_size):
        check_time_quantity(bin_size, "bin_size", positive=True)
    if not _is_auto(width):
        check_time_quantity(width, "width", positive=True)
    options = dict(core_options)
    n_jobs = options.pop("n_jobs", None)
    options.pop("segment_index", None)
    ConvSeq(n_patterns=1 if _is_auto(n_patterns) else n_patterns, n_jobs=n_jobs, random_state=random_state,
            **_check_core_options(options)).check_params()


def annotate(path, bin_size="auto", width="auto", n_patterns="auto", *, max_patterns: int = 4, name: str = "convseq",
             out=None, module: str = "ecephys", unit_ids=None, window: str | None = None, intervals=None,
             t_start=None, t_stop=None, mirror_intervals: bool = True, random_state=None, device="auto",
             progress: bool = False, lock_timeout: float = 0.0,
             **core_options) -> DetectionResult | MultiScaleResult:
    """Detect sequences in an NWB file's units and store the result in the file (or a derived copy).

    The original is never opened for writing. In place (no ``out``), through
    :func:`~convseq_neo.io.safe_write.safe_write`: a copy is made in the file's directory (a hidden
    ``.<file>.<host>.<pid>.<random>.convseq-tmp``), the tables are appended to it, it is checked
    (every unit and spike read back bit-identical) and then moved over the file with
    :func:`os.replace`, which is atomic. With ``out``, a new derived file is exported to such a
    temporary file, checked and moved to ``out`` the same way; it has its own ``identifier`` and
    new object ids (see the module's Derived files) and the source, local, read-only or remote,
    stays byte for byte as it was. A crash at any point leaves the destination as it was (at worst
    a stray temporary file next to it, which the next run on the file removes).

    The destination is locked from before the units are read until after the replace, so
    concurrent runs on one file never lose a detection (see Notes).

    Parameters
    ----------
    path : str or os.PathLike
        The NWB file, or an ``http(s)://`` or ``s3://`` URL (streamed; ``out`` is then required:
        a ``ValueError`` says so before any work).
    bin_size, width : pq.Quantity or "auto", default "auto"
        Time resolution and longest sequence to look for, as in :func:`~convseq_neo.detect.detect`.
        ``width="auto"`` searches the time scale (windows ``0.1 s * 3 ** k`` that fit the
        recording, *Automatic time scale* in :func:`~convseq_neo.detect.detect`) and stores every
        kept pattern with its own window; ``bin_size="auto"`` with an explicit ``width`` is tied
        to it (``width / 20``, never finer than the data).
    n_patterns : int or "auto", default "auto"
        Number of patterns to learn (per window searched); ``"auto"``: 1, 2, ... while the newest
        has significant held-out occurrences, up to ``max_patterns``.
    max_patterns : int, default 4
        The most patterns ``n_patterns="auto"`` learns at one window.
    name : str, default "convseq"
        Name of the EventsTable (``/events/<name>``); the patterns and parameters tables are
        ``<name>_patterns`` and ``<name>_parameters``, the intervals mirror
        ``/intervals/<name>_occurrences``. NWB cannot delete objects, so each run needs its own name.
    out : str or os.PathLike, optional
        Write an annotated, derived file here instead of updating ``path`` (must not exist yet;
        a local path).
    module : str, default "ecephys"
        Processing module for the patterns and parameters tables (created if missing, reused if
        present).
    unit_ids, window
        Which units and which analysis window (see :func:`read_units`).
    intervals : str or neo.Epoch, optional
        Restrict the detection to these intervals: the name of a ``TimeIntervals`` table of the
        file (``"trials"``, ``"epochs"``, any table under ``/intervals``) or ``"obs_intervals"``
        (the union of the analysed units' observation intervals), resolved with
        :func:`read_intervals` to a ``neo.Epoch`` (or an Epoch given directly) and passed to
        :func:`~convseq_neo.detect.detect` as ``intervals=``. An unknown name raises
        ``ValueError`` listing the tables available, before any fitting.
    t_start, t_stop : pq.Quantity, optional
        Explicit analysis window (overrides ``window``).
    mirror_intervals : bool, default True
        Also store the occurrences as a ``TimeIntervals`` table ``/intervals/<name>_occurrences``
        (``start_time``, ``stop_time``, ``pattern``, ``center``, ``peak``, ``pvalue``), which
        pynapple's NWB loader and NWB Widgets read as ordinary intervals; the EventsTable stays
        the reference. ``False`` writes the EventsTable only. A run without any occurrence
        writes no mirror (NWB best practice has no empty tables).
    lock_timeout : float, default 0.0
        Seconds to wait when another process holds the file (another run's lock, or another
        program's HDF5 write lock); 0 fails at once. A waiting run then reads the file as the
        other run left it. Another run holds the lock for its whole detection, so wait longer
        than a run takes.
    random_state, device, progress, **core_options
        As in :func:`~convseq_neo.detect.detect` (e.g. ``max_epochs``, ``n_surrogates``, ``alpha``).
        ``random_state`` seeds the detection only: a derived file's identifier and object ids are
        random UUIDs whatever the seed, since no two files may share them.

    Returns
    -------
    DetectionResult or MultiScaleResult
        The result that was stored: a :class:`~convseq_neo.result.DetectionResult` with an
        explicit ``width``, a :class:`~convseq_neo.multiscale.MultiScaleResult` when the time
        scale was searched. ``result.parameters`` is the record stored in the parameters table
        (for an automatic run completed with what the record adds, see the module's Layout) and
        also holds ``nwb_file``, ``nwb_events_table``, ``nwb_patterns_table``,
        ``nwb_parameters_table``, when a mirror was written ``nwb_intervals_table``, for an
        automatic run ``nwb_search_table`` (and for a search over time scales
        ``nwb_scales_table``) and, with ``out``, ``nwb_identifier`` (the derived file's
        identifier); none of these is stored in the file's parameters table.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    PermissionError
        ``path`` is read-only and ``out`` is not given.
    FileExistsError
        ``out`` exists already.
    ImportError
        ``path`` is a URL and the optional packages for remote reading are missing.
    convseq_neo.io.file_lock.FileLockedError
        The file is locked by another process after ``lock_timeout``: another convseq-neo run (the
        message names its host and pid) or another program writing it (HDF5 file lock). Nothing
        was changed.
    ValueError
        Not an NWB file, no/empty Units table, a name clash (the message names the clash and a free
        name), a remote ``path`` without ``out``, an unknown ``intervals`` table, or any error of
        :func:`~convseq_neo.detect.detect`.

    Notes
    -----
    Concurrency guarantee. When several runs annotate one file, each either stores its detection
    in a file that keeps every earlier one, or fails with ``FileLockedError`` ("... is locked by
    another process ...") and changes nothing; a run never reports success for a write that is
    lost. The exclusive lock (:func:`~convseq_neo.io.file_lock.file_lock`, an advisory
    ``flock`` on the sidecar file ``.<name>.convseq-lock``, which records host and pid) is held
    on the destination (``path``, or ``out``) from before the read to after the replace; a run
    that waited (``lock_timeout``) reads the file the other run wrote, so a name that run used
    is reported as a clash. With ``out``, only ``out`` is locked: runs reading the same ``path``
    into different copies do not wait for each other.

    Other programs. For the same span a local ``path`` is kept open read-only through h5py. With
    HDF5 file locking on (the default), a program that opens the file for writing meanwhile (h5py
    ``"a"``/``"r+"``, pynwb ``"a"``) gets HDF5's "unable to lock file" error instead of writing
    into a file about to be replaced; and a file another program has open for writing makes
    this function wait up to ``lock_timeout`` and then raise ``FileLockedError``.

    ``HDF5_USE_FILE_LOCKING=FALSE`` (common on cluster file systems) turns HDF5's locks off:
    other programs are then *not* kept out, and what they write to the file while a run is
    replacing it is lost. Runs of convseq-neo still exclude each other through the sidecar
    ``flock`` where the file system supports it (where it does not, a warning is logged and the
    run goes ahead unlocked). On shared or network file systems ``flock`` may exclude only
    processes on the same node, and process ids mean nothing across nodes; host names are
    recorded in the lock file and in the temporary copies' names (a stale copy of another host is
    never removed, only reported). Annotate a file from one node at a time there.

    Examples
    --------
    ``recording`` is a generated recording (40 s, one planted pattern), as in :func:`convseq_neo.detect`'s
    example. Its spike trains go into the Units table of a new NWB file, which is then annotated:

    >>> import datetime, pathlib, tempfile
    >>> import quantities as pq
    >>> from pynwb import NWBFile, NWBHDF5IO
    >>> nwbfile = NWBFile(session_description="demo", identifier="demo",
    ...                   session_start_time=datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc))
    >>> for train in recording.spiketrains:
    ...     nwbfile.add_unit(spike_times=train.times.rescale("s").magnitude, obs_intervals=[[0.0, 40.0]])
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "demo.nwb"
    >>> with NWBHDF5IO(str(path), "w") as io:
    ...     io.write(nwbfile)
    >>> result = annotate(path, 5 * pq.ms, 200 * pq.ms, 1, random_state=0, max_epochs=200, n_surrogates=40,
    ...                   n_folds=3)
    >>> stored = read_detections(path)
    >>> len(stored.occurrences) == len(result.occurrences) >= 15
    True
    >>> stored_members, planted = set(stored.patterns["units"][0]), set(recording.members[0].tolist())
    >>> planted <= stored_members, len(stored_members - planted) <= 1   # members are tested at an FDR of 0.05
    (True, True)
    >>> stored.parameters["n_surrogates"], stored.parameters["bin_size_s"]
    (40, 0.005)
    >>> read_events(path).columns.tolist()      # one flat row per occurrence, with its time scale (s)
    ['pattern', 'center', 'onset', 'offset', 'peak', 'pvalue', 'bin_size', 'width']

    With no time scale given, the windows that fit the recording are searched, and each pattern is
    stored with its own (the settings after ``random_state`` only make this example quick):

    >>> searched = annotate(path, name="searched", random_state=0, max_epochs=200, min_epochs=50, n_surrogates=40,
    ...                     n_folds=3)
    >>> found = read_detections(path, "searched")
    >>> found.parameters["scales_width_s"], found.patterns[["width", "bin_size"]].round(3).values.tolist()
    ('[0.1, 0.3]', [[0.1, 0.005]])
    >>> bool(found.occurrences["width"].round(3).eq(0.1).all()), int(found.search["kept"].max())
    (True, 0)
    """
    remote = _is_remote(path)
    source = path.strip() if remote else _check_path(path, "path", open_file_allowed=False)
    _check_name(name, "name")
    _check_name(module, "module")
    _check_intervals(intervals)
    _check_detection_arguments(bin_size, width, n_patterns, random_state, core_options, max_patterns)
    if not isinstance(mirror_intervals, (bool, np.bool_)):
        raise TypeError(f"mirror_intervals must be True or False, got {type(mirror_intervals).__name__}")
    mirror = bool(mirror_intervals)
    dest = _check_destination(source, out, remote)
    if remote:
        _http_filesystem()  # a missing optional dependency fails here, before any work

    lock_timeout = check_timeout(lock_timeout, "lock_timeout")
    where = f"'{source}'"
    deadline = time.monotonic() + lock_timeout
    checks = dict(name=name, module=module, mirror=mirror, unit_ids=unit_ids, window=window, intervals=intervals,
                  core_options=core_options, where=where)
    kept = dict(random_state=random_state, n_patterns=n_patterns, max_patterns=max_patterns)  # for the record
    identifier = None
    # From the read to the replace: the lock keeps other convseq-neo runs out (a second run starts
    # from this one's result), the read-only HDF5 handle keeps other HDF5 writers out.
    with file_lock(dest, timeout=lock_timeout):
        if out is not None and dest.exists():
            raise FileExistsError(f"out: '{dest}' exists already (written by another process meanwhile); choose a "
                                  "new path")
        held = nullcontext() if remote else _held_open(source, max(0.0, deadline - time.monotonic()))
        with held:
            if out is None:  # in place: append to a verified copy of the file
                with _Opened(source) as nwbfile:  # read and check the names before any heavy work
                    prepared = _prepare(nwbfile, **checks)
                result = detect(prepared.units.trains, bin_size, width, n_patterns, max_patterns=max_patterns,
                                t_start=t_start, t_stop=t_stop, random_state=random_state, device=device,
                                progress=progress, **prepared.options)
                stored = _storable(result, prepared.units.rows, **kept)
                with safe_write(source, dest, verify=lambda tmp: _stored_intact(tmp, name, prepared.original)) as tmp:
                    _append_tables(tmp, stored, prepared.units.rows, name, module, mirror, where)
            else:  # a derived file: export the source, opened read-only, with the new tables
                with _open_source(source, "path") as (src_io, nwbfile):
                    prepared = _prepare(nwbfile, **checks)
                    result = detect(prepared.units.trains, bin_size, width, n_patterns, max_patterns=max_patterns,
                                    t_start=t_start, t_stop=t_stop, random_state=random_state, device=device,
                                    progress=progress, **prepared.options)
                    stored = _storable(result, prepared.units.rows, **kept)
                    written = {}

                    def check(tmp: Path) -> bool:
                        return _stored_intact(tmp, name, prepared.original, written["identifier"])

                    with safe_write(None if remote else source, dest, copy=False, verify=check) as tmp:
                        written["identifier"] = _export_derived(src_io, nwbfile, tmp, stored, prepared.units.rows,
                                                                name, module, mirror, where)
                    identifier = written["identifier"]
    result.parameters.update(nwb_file=str(dest), nwb_events_table=f"/events/{name}",
                             nwb_patterns_table=f"/processing/{module}/{name}{PATTERNS_SUFFIX}",
                             nwb_parameters_table=f"/processing/{module}/{name}{PARAMETERS_SUFFIX}")
    if mirror and len(result.occurrences):
        result.parameters["nwb_intervals_table"] = f"/intervals/{name}{OCCURRENCES_SUFFIX}"
    if stored.search is not None and len(stored.search):
        result.parameters["nwb_search_table"] = f"/processing/{module}/{name}{SEARCH_SUFFIX}"
    if stored.scale_records:
        result.parameters["nwb_scales_table"] = f"/processing/{module}/{name}{SCALES_SUFFIX}"
    if identifier is not None:
        result.parameters["nwb_identifier"] = identifier
    logger.info("annotate: wrote %d occurrence(s) of %d pattern(s) to %s (/events/%s, /processing/%s/%s%s)",
                len(result.occurrences), result.n_patterns, dest, name, module, name, PATTERNS_SUFFIX)
    return result


# ---------------------------------------------------------------------------------------------
# reading back
# ---------------------------------------------------------------------------------------------
@dataclass
class StoredDetections:
    """What :func:`annotate` stored, reloaded by :func:`read_detections`.

    Attributes
    ----------
    occurrences : pandas.DataFrame
        The columns of :attr:`DetectionResult.occurrences <convseq_neo.result.DetectionResult>`,
        ``pattern``, ``center``, ``onset``, ``offset``, ``peak``, ``pvalue`` (s), then each
        occurrence's time scale: ``bin_size`` and ``width`` (s). Files written before the scale
        columns existed (one time scale per run) get them from the run's ``bin_size_s`` and
        ``width_s`` parameters.
    patterns : pandas.DataFrame
        One row per pattern (index = pattern): ``units`` (member unit ids, ordered by lag),
        ``unit_rows`` (their Units-table rows), ``lags`` (s), ``scores``, ``pvalues``,
        ``n_occurrences``, and the pattern's time scale: ``bin_size`` and ``width`` (s) and
        ``width_bins`` (older files: from the parameters, as for the occurrences).
    membership : pandas.DataFrame
        Every analysed unit x pattern, as :attr:`DetectionResult.membership` plus ``unit_id``.
    filters : numpy.ndarray, shape (K, N, W)
        The learned filters over the analysed units. Patterns of several time scales (an
        automatic search) have windows of different lengths: ``W`` is the longest, and a
        pattern's columns from its ``width_bins`` on are NaN.
    parameters : dict
        The flat parameter record (package version included), from the parameters table (files
        of convseq_neo 0.1.0: from the JSON in the EventsTable's ``source_description``). For an
        automatic time-scale search, the search's record (``scales_width_s``,
        ``scales_bin_size_s``, ``alpha``, ``alpha_per_scale``, ``n_patterns_asked``,
        ``n_patterns_kept``, ...).
    search : pandas.DataFrame or None
        For an automatic run, every fit tried with its held-out evidence (as
        :attr:`MultiScaleResult.search <convseq_neo.multiscale.MultiScaleResult>`; ``kept`` is the
        row of the patterns table, -1 when not kept); None for a run with explicit values.
    scale_parameters : list of dict or None
        For an automatic time-scale search, the full parameter record of the fit kept at each
        scale searched (finest first: its ``bin_size_s``, ``width_s``, seed, ``alpha``,
        ``pattern_offsets_bins``, ...); None otherwise.
    tested_filters : numpy.ndarray or None
        The filters in the form ``find`` applies (as ``filters``); None for a file written before
        they were stored.
    """

    occurrences: pd.DataFrame
    patterns: pd.DataFrame
    membership: pd.DataFrame
    filters: np.ndarray
    parameters: dict = field(default_factory=dict)
    search: pd.DataFrame | None = None
    scale_parameters: list | None = None
    tested_filters: np.ndarray | None = None


def _events_table(nwbfile, name: str):
    events = (nwbfile.events or {}).get(name)
    if events is None:
        stored = sorted(nwbfile.events or {})
        raise ValueError(f"no events table named {name!r} in this file (events tables: {', '.join(stored) or 'none'})")
    return events


def _flat_events(events) -> pd.DataFrame:
    """An EventsTable as a flat DataFrame: ``onset`` (= timestamp) and ``offset`` (= onset + duration) first, the
    convSeq columns in :data:`OCCURRENCE_COLUMNS` order, then any other column; regions as row numbers."""
    from hdmf.common import DynamicTableRegion

    onset = np.asarray(events["timestamp"].data[:], dtype=float)
    columns = {"onset": onset}
    if "duration" in events.colnames:
        columns["offset"] = onset + np.asarray(events["duration"].data[:], dtype=float)
    for column in events.colnames:
        if column in ("timestamp", "duration"):
            continue
        if f"{column}_index" in events:  # ragged: one array per row
            data, bounds = _ragged(events, column)
            columns[column] = [np.asarray(data[bounds[i]:bounds[i + 1]]) for i in range(len(bounds) - 1)]
            continue
        data = np.asarray(events[column].data[:])
        if isinstance(events[column], DynamicTableRegion):
            data = data.astype(np.int64)  # the row in the referenced table, not the row itself
        columns[column] = list(data) if data.ndim > 1 else data
    order = [c for c in OCCURRENCE_COLUMNS if c in columns] + [c for c in columns if c not in OCCURRENCE_COLUMNS]
    frame = pd.DataFrame({c: columns[c] for c in order},
                         index=pd.Index(np.asarray(events.id.data[:], dtype=np.int64), name="id"))
    return frame


def read_events(path_or_nwbfile, name: str = "convseq") -> pd.DataFrame:
    """Read an EventsTable (``/events/<name>``) as a flat pandas DataFrame, one row per event.

    Parameters
    ----------
    path_or_nwbfile : str, os.PathLike or pynwb.NWBFile
        A file (opened read-only), an ``http(s)://`` or ``s3://`` URL, or an open NWBFile.
    name : str, default "convseq"
        The events table's name (for convSeq results: the ``name`` given to :func:`annotate`).

    Returns
    -------
    pandas.DataFrame
        Index ``id`` (the table's ids; for convSeq tables the row, 0 to n - 1). Columns: ``onset``
        (the ``timestamp`` column, s) and ``offset`` (``timestamp + duration``, s, when the table
        has durations); for a table :func:`annotate` wrote, exactly ``pattern`` (the pattern
        index: row of the patterns table), ``center``, ``onset``, ``offset``, ``peak``,
        ``pvalue``, as in :attr:`DetectionResult.occurrences
        <convseq_neo.result.DetectionResult>`. Other columns follow as stored; a
        DynamicTableRegion gives the referenced row numbers, a ragged column one array per row.
        No cell holds a table.

    Raises
    ------
    ValueError
        No events table of that name (the message lists those in the file).

    Notes
    -----
    Why not ``EventsTable.to_dataframe()``: with its default ``index=False`` hdmf resolves every
    DynamicTableRegion, so each cell of ``pattern`` holds a one-row DataFrame of the patterns
    table, whose own ``units`` and ``analyzed_units`` cells hold DataFrames of the Units table
    again. ``to_dataframe(index=True)`` keeps the row numbers instead (what ``pattern`` holds
    here) but keeps NWB's column names (``timestamp``, ``duration``) and has no ``offset``.

    Examples
    --------
    See :func:`annotate`.
    """
    _check_name(name, "name")
    with _Opened(path_or_nwbfile) as nwbfile:
        return _flat_events(_events_table(nwbfile, name))


def _stored_parameters(events, interfaces, name: str) -> dict:
    """The run's parameters: the parameters table, else (files of convseq_neo 0.1.0) the JSON in
    ``source_description``."""
    table = interfaces.get(name + PARAMETERS_SUFFIX)
    if table is not None:
        keys = [str(k) for k in np.asarray(table["parameter"].data[:]).astype(str)]
        values = [json.loads(str(v)) for v in np.asarray(table["value"].data[:]).astype(str)]
        return dict(zip(keys, values))
    text = events.source_description or ""
    return json.loads(text.split(_PARAMETERS_MARKER, 1)[1]) if _PARAMETERS_MARKER in text else {}


def read_detections(path_or_nwbfile, name: str = "convseq", module: str | None = None) -> StoredDetections:
    """Reload the detections that :func:`annotate` stored under ``name``.

    Reads both the current layout (parameters table) and the layout of convseq_neo 0.1.0
    (parameters as JSON in the EventsTable's ``source_description``).

    Parameters
    ----------
    path_or_nwbfile : str, os.PathLike or pynwb.NWBFile
        The annotated file (opened read-only), an ``http(s)://`` or ``s3://`` URL, or an open
        NWBFile.
    name : str, default "convseq"
        The name given to :func:`annotate`.
    module : str, optional
        Processing module of the patterns table (default: the one holding ``<name>_patterns``).

    Returns
    -------
    StoredDetections
        Occurrences, patterns, membership, filters and parameters.

    Raises
    ------
    ValueError
        No such stored run (the message lists the stored ones).

    Examples
    --------
    See :func:`annotate`.
    """
    _check_name(name, "name")
    with _Opened(path_or_nwbfile) as nwbfile:
        events = (nwbfile.events or {}).get(name)
        modules = [module] if module is not None else list(nwbfile.processing)
        table = interfaces = None
        for candidate in modules:
            interfaces = nwbfile.processing[candidate].data_interfaces if candidate in nwbfile.processing else {}
            if name + PATTERNS_SUFFIX in interfaces:
                table = interfaces[name + PATTERNS_SUFFIX]
                break
        if events is None or table is None:
            stored = sorted(nwbfile.events or {})
            raise ValueError(f"no convSeq detections named {name!r} in this file (events tables: "
                             f"{', '.join(stored) or 'none'})")
        parameters = _stored_parameters(events, interfaces, name)
        flat = _flat_events(events)
        for column, key in zip(SCALE_COLUMNS, ("bin_size_s", "width_s")):
            if column not in flat.columns:  # written before the scale columns: one scale, the run's
                flat[column] = _number(parameters.get(key))
        occurrences = flat[list(OCCURRENCE_COLUMNS) + list(SCALE_COLUMNS)].reset_index(drop=True).astype(
            {"pattern": np.int64, "center": float, "onset": float, "offset": float, "peak": float, "pvalue": float,
             "bin_size": float, "width": float})
        unit_ids = np.asarray(nwbfile.units.id.data[:])
        names = np.asarray(nwbfile.units["unit_name"].data[:]).astype(str) if "unit_name" in nwbfile.units.colnames \
            else unit_ids.astype(str)

        def split(column: str) -> list[np.ndarray]:
            data, bounds = _ragged(table, column)
            return [np.asarray(data[bounds[i]:bounds[i + 1]]) for i in range(len(bounds) - 1)]

        members = split("units")
        patterns = pd.DataFrame({
            "units": [unit_ids[m].tolist() for m in members],
            "unit_rows": [m.astype(np.int64).tolist() for m in members],
            "lags": [v.astype(float) for v in split("lags")],
            "scores": [v.astype(float) for v in split("scores")],
            "pvalues": [v.astype(float) for v in split("pvalues")],
            "n_occurrences": np.asarray(table["n_occurrences"].data[:], dtype=np.int64),
        }, index=pd.RangeIndex(len(members), name="pattern"))
        for column, key, dtype in (("bin_size", "bin_size_s", float), ("width", "width_s", float),
                                   ("width_bins", "width_bins", np.int64)):
            if column in table.colnames:
                patterns[column] = np.asarray(table[column].data[:], dtype=dtype)
            else:  # written before the scale columns: one scale, the run's
                value = _number(parameters.get(key))
                patterns[column] = value if dtype is float or not np.isfinite(value) else int(value)
        analyzed = split("analyzed_units")[0].astype(np.int64) if members else np.zeros(0, np.int64)
        scores, pvalues, lags = (np.asarray(table[c].data[:], dtype=float)
                                 for c in ("all_scores", "all_pvalues", "all_lags"))
        filters = np.asarray(table["filter"].data[:], dtype=float)
        tested_filters = (np.asarray(table["tested_filter"].data[:], dtype=float) if "tested_filter" in table.colnames
                          else None)
        frames = []
        for k, rows in enumerate(members):
            member = np.isin(analyzed, rows)
            frames.append(pd.DataFrame({"pattern": k, "neuron": np.arange(analyzed.size), "name": names[analyzed],
                                        "score": scores[k], "pvalue": pvalues[k], "member": member, "lag": lags[k],
                                        "unit_id": unit_ids[analyzed]}))
        membership = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
        search = interfaces.get(name + SEARCH_SUFFIX)
        if search is not None:
            search = pd.DataFrame({column: _column_values(search[column]) for column in search.colnames})
            for column in search.columns:  # the one-byte integers as the search's own int64
                if search[column].dtype.kind == "u":
                    search[column] = search[column].astype(np.int64)
        scales = interfaces.get(name + SCALES_SUFFIX)
        scale_parameters = None
        if scales is not None:
            index = np.asarray(scales["scale"].data[:], dtype=np.int64)
            keys = _column_values(scales["parameter"])
            values = _column_values(scales["value"])
            scale_parameters = [{} for _ in range(int(index.max()) + 1 if index.size else 0)]
            for i, key, value in zip(index, keys, values):
                scale_parameters[i][str(key)] = json.loads(str(value))
    return StoredDetections(occurrences, patterns, membership, filters, parameters, search, scale_parameters,
                            tested_filters)


def _pattern_summaries(patterns) -> list[dict]:
    """One small dict per pattern of a result: ``id``, ``bin_size_s``, ``width_s`` (None when unknown),
    ``n_members``, ``n_occurrences``."""
    def seconds(value):
        return None if value is None else float(pq.Quantity(value, "s").rescale("s").magnitude)

    return [{"id": int(p.pattern_id), "bin_size_s": seconds(getattr(p, "bin_size", None)),
             "width_s": seconds(getattr(p, "width", None)), "n_members": int(p.size),
             "n_occurrences": int(p.n_occurrences)} for p in patterns]


def _stored_pattern_summaries(table, parameters: dict) -> list[dict]:
    """:func:`_pattern_summaries` of a stored patterns table (files without the scale columns: the run's scale)."""
    _, bounds = _ragged(table, "units")
    counts = np.asarray(table["n_occurrences"].data[:], dtype=np.int64)
    scale = {}
    for column, key in zip(SCALE_COLUMNS, ("bin_size_s", "width_s")):
        if column in table.colnames:
            scale[column] = np.asarray(table[column].data[:], dtype=float)
        else:
            scale[column] = np.full(counts.size, _number(parameters.get(key)))
    return [{"id": k, "bin_size_s": None if np.isnan(scale["bin_size"][k]) else float(scale["bin_size"][k]),
             "width_s": None if np.isnan(scale["width"][k]) else float(scale["width"][k]),
             "n_members": int(bounds[k + 1] - bounds[k]), "n_occurrences": int(counts[k])}
            for k in range(counts.size)]


def _number(value) -> float:
    """A stored parameter as a float (NaN when it is missing or not a number)."""
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else float("nan")


def _column_values(column) -> np.ndarray:
    """A plain column's values as numpy (text as str)."""
    values = np.asarray(column.data[:])
    if values.dtype.kind in "OSU":
        return np.array([v.decode() if isinstance(v, bytes) else str(v) for v in values], dtype=object)
    return values


def __getattr__(name: str):
    # annotate_many lives in convseq_neo.io.nwb_batch (which imports this module): bound on first access
    if name == "annotate_many":
        from convseq_neo.io.nwb_batch import annotate_many

        globals()[name] = annotate_many
        return annotate_many
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
