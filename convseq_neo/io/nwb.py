"""NWB front door: read units, detect sequences, store the result safely in the file, reload it.

* :func:`read_units` reads the Units table's ragged ``spike_times`` column directly (one read of
  the flat data and of its index) and returns Neo spike trains.
* :func:`annotate` detects on the file's units and appends the result: the occurrences as a core
  ``pynwb.event.EventsTable`` under ``/events`` and the patterns as a DynamicTable in
  ``processing[module]``. Existing data is never modified: the file is updated through
  :func:`convseq_neo.io.safe_write.safe_write` (a verified temporary copy in the same directory,
  moved over the original with :func:`os.replace`), so a crash at any point leaves the original
  file as it was.
* :func:`read_detections` reloads what :func:`annotate` stored.

Several processes, one file
---------------------------
:func:`annotate` holds an exclusive lock on the file it replaces (:func:`convseq_neo.io.file_lock.file_lock`:
an advisory ``flock`` on the sidecar file ``.<name>.convseq-lock``, which records the holder's host
and pid) from before it reads the units until after the atomic replace. Two runs on one file
therefore never lose a detection: the second waits (``lock_timeout``, command line
``--lock-timeout``) and then reads the file the first one wrote, or fails with
:class:`~convseq_neo.io.file_lock.FileLockedError` ("... is locked by another process ...") and
changes nothing. For the same span the source stays open read-only through h5py, so HDF5's own
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
    into the patterns table), ``peak`` and ``pvalue``. ``source_description`` names the package
    version and every parameter (as JSON after ``parameters (JSON):``).
``/processing/<module>/convseq_patterns`` (DynamicTable), one row per learned pattern:
    ``units`` (ragged DynamicTableRegion into the Units table, members ordered by lag), ``lags``
    (ragged, s relative to the occurrence centre), ``scores`` and ``pvalues`` (ragged, membership),
    ``n_occurrences``, ``analyzed_units`` (ragged DynamicTableRegion: the units the detector saw,
    in order), ``all_scores``, ``all_pvalues``, ``all_lags`` (patterns x analyzed units) and
    ``filter`` (patterns x analyzed units x window bins; column ``j`` is the lag ``(j - W // 2) *
    bin_size`` from the window centre).

nwbinspector finds nothing to report in these tables, with two exceptions at its lowest level
(BEST_PRACTICE_SUGGESTION) that do not apply: ``check_single_row`` when one pattern is learned
(the patterns table then has one row) and ``check_column_binary_capability`` when the
occurrences use exactly two patterns (it suggests turning the ``pattern`` region into booleans).
"""

from __future__ import annotations

import errno
import json
import logging
import numbers
import os
import stat
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import neo
import numpy as np
import pandas as pd
import quantities as pq

from convseq_neo.detect import detect
from convseq_neo.io.file_lock import FileLockedError, check_timeout, file_lock
from convseq_neo.io.safe_write import safe_write
from convseq_neo.result import OCCURRENCE_COLUMNS, DetectionResult

logger = logging.getLogger(__name__)

#: Without obs_intervals or a window, the analysis window ends this long after the last spike.
_LAST_SPIKE_MARGIN_S = 1e-6

__all__ = ["read_units", "annotate", "read_detections", "StoredDetections", "PATTERNS_SUFFIX"]

#: The patterns table of a run named ``name`` is ``name + PATTERNS_SUFFIX``.
PATTERNS_SUFFIX = "_patterns"
_PARAMETERS_MARKER = "parameters (JSON): "


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


class _Opened:
    """Context manager: an open NWBFile from a path (read-only) or as given."""

    def __init__(self, source, mode: str = "r") -> None:
        self.source, self.mode, self.io = source, mode, None

    def __enter__(self):
        from pynwb import NWBHDF5IO, NWBFile

        if isinstance(self.source, NWBFile):
            return self.source
        path = _check_path(self.source, "path_or_nwbfile")
        try:
            self.io = NWBHDF5IO(str(path), self.mode)
            return self.io.read()
        except Exception as err:
            if self.io is not None:
                self.io.close()
            if _is_hdf5_lock_error(err):
                raise _hdf5_locked(path, err) from err
            raise ValueError(f"'{path}' could not be read as an NWB file: {type(err).__name__}: {err}") from err

    def __exit__(self, *exc) -> None:
        if self.io is not None:
            self.io.close()


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
        A file (opened read-only and closed again) or an open NWBFile.
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
        No such file.
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
        where = f"'{path_or_nwbfile}'" if isinstance(path_or_nwbfile, (str, os.PathLike)) else "the NWBFile"
        return _read_units(nwbfile, unit_ids, window, where).trains


# ---------------------------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------------------------
def _free_name(nwbfile, module: str, name: str) -> str:
    for i in range(2, 1000):
        candidate = f"{name}_{i}"
        if not _clashes(nwbfile, module, candidate):
            return candidate
    return f"{name}_new"  # pragma: no cover


def _clashes(nwbfile, module: str, name: str) -> list[str]:
    found = []
    if name in (nwbfile.events or {}):
        found.append(f"an events table '/events/{name}'")
    if module in nwbfile.processing and name + PATTERNS_SUFFIX in nwbfile.processing[module].data_interfaces:
        found.append(f"a table '/processing/{module}/{name}{PATTERNS_SUFFIX}'")
    return found


def _check_name(name, argument: str) -> str:
    if not isinstance(name, str):
        raise TypeError(f"{argument} must be a str, got {type(name).__name__}")
    if not name or "/" in name or name.strip() != name:
        raise ValueError(f"{argument} must be a non-empty name without '/' or surrounding spaces, got {name!r}")
    return name


def _source_description(result: DetectionResult) -> str:
    params = result.parameters
    return (f"{params.get('software', 'convseq_neo')}: convSeq spike-sequence detection (Koshkin & Fukai, ICML 2024) "
            f"on the Units table; {_PARAMETERS_MARKER}{json.dumps(params, sort_keys=True)}")


def _build_tables(result: DetectionResult, units_table, rows: np.ndarray, name: str):
    """The patterns DynamicTable and the EventsTable, built column-wise."""
    from hdmf.common import DynamicTable, DynamicTableRegion, VectorData, VectorIndex
    from pynwb.event import DurationVectorData, EventsTable, TimestampVectorData

    n_patterns = result.n_patterns
    member_rows = [rows[p.neurons] for p in result.patterns]
    bounds = np.cumsum([p.size for p in result.patterns]).astype(np.int64)

    def ragged(column: str, description: str, values: list, table=None):
        flat = np.concatenate(values) if values else np.zeros(0)
        if table is None:
            data = VectorData(name=column, description=description, data=np.asarray(flat, dtype=float))
        else:
            data = DynamicTableRegion(name=column, description=description, data=np.asarray(flat, dtype=np.int64),
                                      table=table)
        return [data, VectorIndex(name=f"{column}_index", data=bounds if column != "analyzed_units" else
                                  np.arange(1, n_patterns + 1, dtype=np.int64) * rows.size, target=data)]

    membership = result.membership
    grid = {}
    for column in ("score", "pvalue", "lag"):
        grid[column] = membership.pivot(index="pattern", columns="neuron", values=column).reindex(
            index=range(n_patterns), columns=range(rows.size)).to_numpy(float)
    width_bins = int(result.model.width)
    columns = [
        *ragged("units", "member units of the pattern (rows of the Units table), ordered by lag", member_rows,
                units_table),
        *ragged("lags", "each member's expected spike time relative to the occurrence centre, in seconds",
                [p.lags.rescale(pq.s).magnitude for p in result.patterns]),
        *ragged("scores", "membership z-scores of the members", [p.scores for p in result.patterns]),
        *ragged("pvalues", "membership p-values of the members (Sidak over lags)",
                [p.pvalues for p in result.patterns]),
        VectorData(name="n_occurrences", description="number of significant occurrences",
                   data=np.array([p.n_occurrences for p in result.patterns], dtype=np.int64)),
        *ragged("analyzed_units", "the units the detector analysed (rows of the Units table), in the order of the "
                "all_* and filter columns", [rows] * n_patterns, units_table),
        VectorData(name="all_scores", description="membership z-score of every analysed unit",
                   data=grid["score"]),
        VectorData(name="all_pvalues", description="membership p-value of every analysed unit", data=grid["pvalue"]),
        VectorData(name="all_lags", description="lag (s, relative to the centre) of every analysed unit; NaN where "
                   "it never fired near an occurrence", data=grid["lag"]),
        VectorData(name="filter", description=f"learned filter (analysed units x {width_bins} bins; column j is the "
                   f"lag (j - {width_bins // 2}) * {result.raster.bin_size_s:g} s from the window centre; rows sum "
                   "to 1)", data=np.stack([np.asarray(p.filter, dtype=float) for p in result.patterns])),
    ]
    patterns = DynamicTable(name=name + PATTERNS_SUFFIX, description="convSeq patterns: member units, lags, "
                            "membership and learned filters (one row per pattern; id = pattern index)",
                            columns=columns, id=np.arange(n_patterns, dtype=np.int64))
    occ = result.occurrences
    events = EventsTable(
        name=name, description="convSeq sequence occurrences: each event spans [timestamp, timestamp + duration] "
        "= [onset, offset], from the earliest to the latest member's expected spike time",
        source_description=_source_description(result),
        columns=[
            TimestampVectorData(name="timestamp", description="occurrence onset (s)",
                                data=occ["onset"].to_numpy(float)),
            DurationVectorData(name="duration", description="offset - onset (s)",
                               data=(occ["offset"] - occ["onset"]).to_numpy(float)),
            VectorData(name="center", description="occurrence centre: mean of the members' expected spike times (s)",
                       data=occ["center"].to_numpy(float)),
            DynamicTableRegion(name="pattern", description="the pattern (row of the patterns table)",
                               data=occ["pattern"].to_numpy().astype(np.int32), table=patterns),
            VectorData(name="peak", description="tested response height", data=occ["peak"].to_numpy(float)),
            VectorData(name="pvalue", description="uncorrected p-value (all passed Benjamini-Hochberg at alpha)",
                       data=occ["pvalue"].to_numpy(float)),
        ],
        id=np.arange(len(occ), dtype=np.int64))
    return patterns, events


def _check_destination(source: Path, out) -> Path:
    """Where :func:`annotate` writes: ``source`` itself or a new file ``out``, in a writable directory."""
    if out is None:
        dest = source
        if _read_only(source):
            raise PermissionError(f"'{source}' is read-only: make it writable, or pass out=... (command line: --out) "
                                  "to write an annotated copy")
    else:
        if not isinstance(out, (str, os.PathLike)):
            raise TypeError(f"out must be a path, got {type(out).__name__}")
        dest = Path(out)
        if dest.exists():
            raise FileExistsError(f"out: '{dest}' exists already; choose a new path (or annotate it in place)")
        if not dest.parent.is_dir():
            raise FileNotFoundError(f"out: the directory '{dest.parent}' does not exist")
    if not os.access(dest.parent if str(dest.parent) else Path("."), os.W_OK):
        raise PermissionError(f"the directory '{dest.parent}' is not writable (a temporary copy is written there)")
    return dest


def _units_snapshot(nwbfile) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flat spike times, their boundaries and the unit ids: what an annotated copy must keep bit for bit."""
    times, bounds = _ragged(nwbfile.units, "spike_times")
    return times, bounds, np.asarray(nwbfile.units.id.data[:])


def _append_tables(path: Path, result: DetectionResult, rows: np.ndarray, name: str, module: str, where: str) -> None:
    """Append the events and patterns tables of ``result`` to the NWB file at ``path``."""
    from pynwb import NWBHDF5IO

    with NWBHDF5IO(str(path), "a") as io:
        nwbfile = io.read()
        clash = _clashes(nwbfile, module, name)
        if clash:  # pragma: no cover - the file changed since it was checked
            raise ValueError(f"{where} already holds {' and '.join(clash)}; pass another name")
        patterns, events = _build_tables(result, nwbfile.units, rows, name)
        if module in nwbfile.processing:
            processing = nwbfile.processing[module]
        else:
            processing = nwbfile.create_processing_module(
                name=module, description="processed data (convSeq spike-sequence detections)")
        processing.add(patterns)
        nwbfile.add_events_table(events)
        io.write(nwbfile)


def _stored_intact(path: Path, name: str, original: tuple[np.ndarray, np.ndarray, np.ndarray]) -> bool:
    """True when the file at ``path`` reads back with the events table ``name`` and ``original``'s units."""
    from pynwb import NWBHDF5IO

    with NWBHDF5IO(str(path), "r") as io:
        nwbfile = io.read()
        times, bounds, ids = _units_snapshot(nwbfile)
        return (times.dtype == original[0].dtype and np.array_equal(times, original[0])
                and np.array_equal(bounds, original[1]) and np.array_equal(ids, original[2])
                and name in (nwbfile.events or {}))


def annotate(path, bin_size, width, n_patterns=1, *, name: str = "convseq", out=None, module: str = "ecephys",
             unit_ids=None, window: str | None = None, t_start=None, t_stop=None, random_state=None,
             device="auto", progress: bool = False, lock_timeout: float = 0.0, **core_options) -> DetectionResult:
    """Detect sequences in an NWB file's units and store the result in the file (or a copy).

    The original is never opened for writing: through
    :func:`~convseq_neo.io.safe_write.safe_write`, a copy is made in the destination's directory
    (a hidden ``.<file>.<host>.<pid>.<random>.convseq-tmp``), the tables are appended to it, it is
    checked (every unit and spike read back bit-identical) and then moved over the destination
    with :func:`os.replace`, which is atomic. A crash at any point leaves the destination as it
    was (at worst a stray temporary file next to it, which the next run on the file removes).

    The destination is locked from before the units are read until after the replace, so
    concurrent runs on one file never lose a detection (see Notes).

    Parameters
    ----------
    path : str or os.PathLike
        The NWB file.
    bin_size, width : pq.Quantity
        Time resolution and longest sequence to look for (as in :func:`~convseq_neo.detect.detect`).
    n_patterns : int, default 1
        Number of patterns to learn.
    name : str, default "convseq"
        Name of the EventsTable (``/events/<name>``); the patterns table is ``<name>_patterns``.
        NWB cannot delete objects, so each run needs its own name.
    out : str or os.PathLike, optional
        Write an annotated copy here instead of updating ``path`` (must not exist yet).
    module : str, default "ecephys"
        Processing module for the patterns table (created if missing, reused if present).
    unit_ids, window
        Which units and which analysis window (see :func:`read_units`).
    t_start, t_stop : pq.Quantity, optional
        Explicit analysis window (overrides ``window``).
    lock_timeout : float, default 0.0
        Seconds to wait when another process holds the file (another run's lock, or another
        program's HDF5 write lock); 0 fails at once. A waiting run then reads the file as the
        other run left it. Another run holds the lock for its whole detection, so wait longer
        than a run takes.
    random_state, device, progress, **core_options
        As in :func:`~convseq_neo.detect.detect` (e.g. ``max_epochs``, ``n_surrogates``, ``alpha``).

    Returns
    -------
    DetectionResult
        The result that was stored; ``result.parameters`` also holds ``nwb_file``,
        ``nwb_events_table`` and ``nwb_patterns_table``.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    PermissionError
        ``path`` is read-only and ``out`` is not given.
    FileExistsError
        ``out`` exists already.
    convseq_neo.io.file_lock.FileLockedError
        The file is locked by another process after ``lock_timeout``: another convseq-neo run (the
        message names its host and pid) or another program writing it (HDF5 file lock). Nothing
        was changed.
    ValueError
        Not an NWB file, no/empty Units table, a name clash (the message names the clash and a free
        name), or any error of :func:`~convseq_neo.detect.detect`.

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

    Other programs. For the same span ``path`` is kept open read-only through h5py. With HDF5
    file locking on (the default), a program that opens the file for writing meanwhile (h5py
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
    >>> result = annotate(path, 5 * pq.ms, 200 * pq.ms, random_state=0, max_epochs=200, n_surrogates=40, n_folds=3)
    >>> stored = read_detections(path)
    >>> len(stored.occurrences) == len(result.occurrences) >= 15
    True
    >>> stored_members, planted = set(stored.patterns["units"][0]), set(recording.members[0].tolist())
    >>> planted <= stored_members, len(stored_members - planted) <= 1   # members are tested at an FDR of 0.05
    (True, True)
    """
    source = _check_path(path, "path", open_file_allowed=False)
    _check_name(name, "name")
    _check_name(module, "module")
    dest = _check_destination(source, out)

    lock_timeout = check_timeout(lock_timeout, "lock_timeout")
    where = f"'{source}'"
    deadline = time.monotonic() + lock_timeout
    # From the read to the replace: the lock keeps other convseq-neo runs out (a second run starts
    # from this one's result), the read-only HDF5 handle keeps other HDF5 writers out.
    with file_lock(dest, timeout=lock_timeout):
        if out is not None and dest.exists():
            raise FileExistsError(f"out: '{dest}' exists already (written by another process meanwhile); choose a "
                                  "new path")
        with _held_open(source, max(0.0, deadline - time.monotonic())):
            # read and check the names before any heavy work
            with _Opened(source) as nwbfile:
                clash = _clashes(nwbfile, module, name)
                if clash:
                    raise ValueError(f"{where} already holds {' and '.join(clash)}; NWB cannot delete objects, so "
                                     f"store this run under another name, e.g. "
                                     f"name={_free_name(nwbfile, module, name)!r} (command line: --name)")
                units = _read_units(nwbfile, unit_ids, window, where)
                original = _units_snapshot(nwbfile)

            result = detect(units.trains, bin_size, width, n_patterns, t_start=t_start, t_stop=t_stop,
                            random_state=random_state, device=device, progress=progress, **core_options)

            with safe_write(source, dest, verify=lambda tmp: _stored_intact(tmp, name, original)) as tmp:
                _append_tables(tmp, result, units.rows, name, module, where)
    result.parameters.update(nwb_file=str(dest), nwb_events_table=f"/events/{name}",
                             nwb_patterns_table=f"/processing/{module}/{name}{PATTERNS_SUFFIX}")
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
        Same columns as :attr:`DetectionResult.occurrences <convseq_neo.result.DetectionResult>`:
        ``pattern``, ``center``, ``onset``, ``offset``, ``peak``, ``pvalue`` (s).
    patterns : pandas.DataFrame
        One row per pattern (index = pattern): ``units`` (member unit ids, ordered by lag),
        ``unit_rows`` (their Units-table rows), ``lags`` (s), ``scores``, ``pvalues``,
        ``n_occurrences``.
    membership : pandas.DataFrame
        Every analysed unit x pattern, as :attr:`DetectionResult.membership` plus ``unit_id``.
    filters : numpy.ndarray, shape (K, N, W)
        The learned filters over the analysed units.
    parameters : dict
        The flat parameter record (package version included).
    """

    occurrences: pd.DataFrame
    patterns: pd.DataFrame
    membership: pd.DataFrame
    filters: np.ndarray
    parameters: dict = field(default_factory=dict)


def read_detections(path_or_nwbfile, name: str = "convseq", module: str | None = None) -> StoredDetections:
    """Reload the detections that :func:`annotate` stored under ``name``.

    Parameters
    ----------
    path_or_nwbfile : str, os.PathLike or pynwb.NWBFile
        The annotated file (opened read-only) or an open NWBFile.
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
        table = None
        for candidate in modules:
            interfaces = nwbfile.processing[candidate].data_interfaces if candidate in nwbfile.processing else {}
            if name + PATTERNS_SUFFIX in interfaces:
                table = interfaces[name + PATTERNS_SUFFIX]
                break
        if events is None or table is None:
            stored = sorted(nwbfile.events or {})
            raise ValueError(f"no convSeq detections named {name!r} in this file (events tables: "
                             f"{', '.join(stored) or 'none'})")
        onset = np.asarray(events["timestamp"].data[:], dtype=float)
        occurrences = pd.DataFrame({
            "pattern": np.asarray(events["pattern"].data[:], dtype=np.int64),
            "center": np.asarray(events["center"].data[:], dtype=float),
            "onset": onset,
            "offset": onset + np.asarray(events["duration"].data[:], dtype=float),
            "peak": np.asarray(events["peak"].data[:], dtype=float),
            "pvalue": np.asarray(events["pvalue"].data[:], dtype=float),
        })[OCCURRENCE_COLUMNS]
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
        analyzed = split("analyzed_units")[0].astype(np.int64) if members else np.zeros(0, np.int64)
        scores, pvalues, lags = (np.asarray(table[c].data[:], dtype=float)
                                 for c in ("all_scores", "all_pvalues", "all_lags"))
        filters = np.asarray(table["filter"].data[:], dtype=float)
        frames = []
        for k, rows in enumerate(members):
            member = np.isin(analyzed, rows)
            frames.append(pd.DataFrame({"pattern": k, "neuron": np.arange(analyzed.size), "name": names[analyzed],
                                        "score": scores[k], "pvalue": pvalues[k], "member": member, "lag": lags[k],
                                        "unit_id": unit_ids[analyzed]}))
        membership = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
        text = events.source_description or ""
        parameters = json.loads(text.split(_PARAMETERS_MARKER, 1)[1]) if _PARAMETERS_MARKER in text else {}
    return StoredDetections(occurrences, patterns, membership, filters, parameters)
