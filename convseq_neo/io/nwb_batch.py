"""Annotate many NWB files at once on a dask.distributed cluster: :func:`annotate_many`.

Each file is one task, and each task calls :func:`convseq_neo.io.nwb.annotate` on its file, so
every file is written as a single file is: under its lock, through a verified temporary copy that
replaces the file atomically. The tasks run on a `dask.distributed <https://distributed.dask.org>`_
cluster: by default a ``LocalCluster`` of worker processes started for the run and closed at the
end, or any running cluster (``client=``, ``scheduler=``), from a workstation to SLURM or PBS
through dask-jobqueue.

Re-runs
-------
Before any fit, a task reads the file and works out the parameter record the detection would
store (the record of the ``<name>_parameters`` table, package version included). When the file
already holds a detection named ``name`` or ``name_2``, ``name_3``, ... whose stored record is
the same (and which analysed the same units), the file is *skipped* and left untouched, byte for
byte. Otherwise the file is annotated under ``name``, or under the first free name of that family
when ``name`` is taken. ``n_jobs`` and ``progress`` are left out of the comparison: they change
how a fit runs, not its result. A batch can therefore be run again after a partial failure or with
more files: only what is missing is computed.

With the automatic defaults (``bin_size``, ``width`` or ``n_patterns`` ``"auto"``) the record
compared is what the search is given, never what it found: the time scales it will search (which
depend on the recording alone, :mod:`convseq_neo.scales`), the recording's facts they come from,
``alpha`` and its share per scale, ``max_patterns``, ``n_patterns_asked``, the seed and the
options every fit shares. The bin tied to an explicit ``width`` (``bin_size="auto"``) is worked out
as :func:`~convseq_neo.detect` does, so it matches a run that gave that bin explicitly.

Threads
-------
A cluster started here has ``n_workers`` processes of ``cores // n_workers`` threads each, and
each worker holds the resource :data:`RESOURCE` once, so it annotates one file at a time, with
``n_jobs`` = its threads. On a cluster of your own, start the workers with
``--resources convseq_neo=1`` for the same behaviour; without that resource a worker runs as
many files at once as it has threads, each with one thread. Either way the threads of the fits
never exceed the workers' threads. An explicit ``n_jobs`` caps each fit's threads further.

Lost workers
------------
A worker that dies (killed by the scheduler, out of memory, a node lost) loses nothing: the
scheduler runs its task again on another worker (up to dask's
``distributed.scheduler.allowed-failures`` times, 3 by default; then the file is reported as
failed with ``KilledWorker``). The file itself is never harmed: a killed run leaves it as it was
(or, killed after the atomic replace, complete, and the retry then finds the detection and skips
the file); the lock dies with its process and the retry removes the dead process's temporary copy.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd
import quantities as pq

from convseq_neo.io import nwb

logger = logging.getLogger(__name__)

__all__ = ["annotate_many", "RESOURCE", "REPORT_COLUMNS"]

#: The dask worker resource that lets a worker annotate one file at a time with all its threads.
RESOURCE = "convseq_neo"
#: The columns of the table :func:`annotate_many` returns (and writes to ``report``).
REPORT_COLUMNS = ("path", "status", "name", "occurrences", "seconds", "error", "patterns")
#: Stored parameters that do not change the result, left out when a stored run is compared.
_EXECUTION_PARAMETERS = frozenset({"n_jobs", "progress"})
_MISSING = object()
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


# ---------------------------------------------------------------------------------------------
# arguments
# ---------------------------------------------------------------------------------------------
def _check_paths(paths) -> list[str]:
    if isinstance(paths, (str, bytes, os.PathLike)):
        raise TypeError(f"paths must be a list of NWB file paths, got one {type(paths).__name__}; pass [path] for "
                        "one file")
    try:
        items = list(paths)
    except TypeError:
        raise TypeError(f"paths must be a list of NWB file paths, got {type(paths).__name__}") from None
    if not items:
        raise ValueError("paths is empty: give at least one NWB file")
    checked, seen = [], {}
    for item in items:
        if not isinstance(item, (str, os.PathLike)):
            raise TypeError(f"paths must hold str or os.PathLike paths, got {type(item).__name__}")
        text = os.fspath(item)
        if nwb._is_remote(text):
            raise ValueError(f"paths: {text!r} is a remote file, which cannot be annotated in place; annotate it "
                             "with convseq_neo.io.nwb.annotate(..., out=...) instead")
        key = os.path.realpath(text)
        if key in seen:
            raise ValueError(f"paths lists the file '{text}' twice (also as '{seen[key]}'); give each file once")
        seen[key] = text
        checked.append(text)
    return checked


def _check_report(report, paths: list[str]) -> Path | None:
    if report is None:
        return None
    if not isinstance(report, (str, os.PathLike)):
        raise TypeError(f"report must be the path of a CSV file, got {type(report).__name__}")
    target = Path(report)
    if target.is_dir():
        raise ValueError(f"report: '{target}' is a directory; give a file name, e.g. '{target / 'report.csv'}'")
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise FileNotFoundError(f"report: no such directory '{folder}'")
    if target.exists():
        if any(os.path.exists(p) and os.path.samefile(p, target) for p in paths):
            raise ValueError(f"report: '{target}' is one of the NWB files; the report would overwrite it")
        with open(target, "rb") as handle:
            if handle.read(len(_HDF5_SIGNATURE)) == _HDF5_SIGNATURE:
                raise ValueError(f"report: '{target}' is an HDF5 (NWB) file; it is not overwritten with a report")
    if not os.access(folder, os.W_OK):
        raise PermissionError(f"report: the directory '{folder}' is not writable")
    return target


def _check_engine(client, scheduler, n_workers) -> None:
    given = [name for name, value in (("client", client), ("scheduler", scheduler), ("n_workers", n_workers))
             if value is not None]
    if len(given) > 1:
        raise ValueError(f"give at most one of client, scheduler and n_workers, got {' and '.join(given)}: "
                         "n_workers starts a local cluster, client and scheduler use a running one")
    if client is not None:
        from distributed import Client

        if not isinstance(client, Client):
            raise TypeError(f"client must be None or a distributed.Client, got {type(client).__name__}")
        if client.status not in ("running", "connecting", "newly-created"):
            raise ValueError(f"client is not connected to a scheduler (status {client.status!r})")
    if scheduler is not None and (not isinstance(scheduler, str) or not scheduler.strip()):
        raise TypeError(f"scheduler must be a scheduler address such as 'tcp://10.0.0.5:8786', got {scheduler!r}")
    if n_workers is not None and (isinstance(n_workers, bool) or not isinstance(n_workers, (int, np.integer))
                                  or n_workers < 1):
        raise ValueError(f"n_workers must be a positive int, got {n_workers!r}")


# ---------------------------------------------------------------------------------------------
# one file (runs on a worker)
# ---------------------------------------------------------------------------------------------
def _fit_threads(exclusive: bool, requested) -> int:
    """``n_jobs`` of a fit on this worker: its threads when it runs one file at a time, else 1; capped by
    ``requested`` (None or -1: no cap)."""
    try:
        from distributed import get_worker

        threads = int(get_worker().state.nthreads)
    except (ImportError, ValueError):  # not on a worker
        threads = 1
    share = threads if exclusive else 1
    if requested is None or requested == -1:
        return share
    return max(1, min(int(requested), share))


def _family(nwbfile, name: str) -> list[str]:
    """The events tables named ``name`` or ``name_<int>``, in that order."""
    pattern = re.compile(rf"^{re.escape(name)}(?:_(?P<number>[0-9]+))?$")
    found = []
    for table in nwbfile.events or {}:
        match = pattern.match(table)
        if match:
            found.append((int(match["number"] or 1), table))
    return [table for _, table in sorted(found)]


def _fit_record(units, epoch, bin_size, width, n_patterns, t_start, t_stop, random_state, device,
                core_options: dict) -> dict:
    """The parameter record one fit of :func:`~convseq_neo.detect` would store for these units, without fitting:
    the same raster plan, estimator and record function as detect."""
    from convseq_neo.core.estimator import ConvSeq
    from convseq_neo.io.neo import plan_raster
    from convseq_neo.result import _parameters, _recording_parameters

    plan = plan_raster(units.trains, bin_size, t_start=t_start, t_stop=t_stop, width=width, n_patterns=n_patterns,
                       n_init=core_options.get("n_init", 2), n_folds=core_options.get("n_folds", 5),
                       n_surrogates=core_options.get("n_surrogates", 200), intervals=epoch)
    model = ConvSeq(n_patterns=n_patterns, width=plan.width_bins, random_state=random_state, device=device,
                    **core_options)
    model.check_params()
    raster = plan.bin()  # no fit: the raster's window in seconds is what the record holds
    params = _parameters(model, raster, "fit")
    time_map = plan.time_map
    if time_map is not None:  # as DetectionResult records a time map
        params.update({"n_intervals": time_map.n_pieces, "intervals_total_s": time_map.observed_s,
                       "guard_bins": time_map.guard_bins, "n_segments": time_map.n_parts})
        params.update(_recording_parameters(time_map))
    return params


def _expected_parameters(units, epoch, bin_size, width, n_patterns, max_patterns, t_start, t_stop, random_state,
                         device, core_options: dict) -> dict:
    """The parameter record :func:`~convseq_neo.io.nwb.annotate` would store for these units, as read back from a
    file (JSON values), without fitting. With the automatic defaults, only what the search is given (see the
    module's Re-runs): the record's keys that depend on what is found are left out, so they are not compared."""
    from convseq_neo.detect import _tied_bin_size
    from convseq_neo.scale_search import _is_auto, _json, plan_scales

    window = dict(t_start=t_start, t_stop=t_stop, intervals=epoch)
    fit = dict(t_start=t_start, t_stop=t_stop, random_state=random_state, device=device, core_options=core_options)
    if not _is_auto(width):
        if _is_auto(bin_size):  # the bin detect ties to the window
            bin_size = _tied_bin_size(units.trains, width, {**window, "segment_index": None})
        params = _fit_record(units, epoch, bin_size, width, 1 if _is_auto(n_patterns) else n_patterns, **fit)
        if _is_auto(n_patterns):  # the number of patterns kept is found, not given
            params.pop("n_patterns")
            params.update(n_patterns_asked="auto", max_patterns=int(max_patterns))
    else:
        scales, facts = plan_scales(units.trains, bin_size, **window)
        records = [_fit_record(units, epoch, scale.bin_size_s * pq.s, scale.width_bins * scale.bin_size_s * pq.s, 1,
                               **fit) for scale in scales]
        alpha = float(core_options.get("alpha", 0.05))
        # what scale_search.search_scales records of the search before it fits (see its parameters)
        search = {"method": "convseq", "applied": "fit", "search": "scales", "n_scales": len(scales),
                  "scales_width_s": _json([s.width_s for s in scales]),
                  "scales_bin_size_s": _json([s.bin_size_s for s in scales]), "alpha": alpha,
                  "alpha_per_scale": alpha / len(scales), "n_patterns_asked": str(n_patterns),
                  **({"max_patterns": int(max_patterns)} if _is_auto(n_patterns) else {}),
                  **{f"recording_{key}": float(value) for key, value in facts.items()}}
        params = nwb._searched_parameters(nwb._common_fit_parameters(records), search, random_state=random_state)
    return json.loads(json.dumps(params, default=nwb._json_value))


def _stored_run(nwbfile, module: str, name: str):
    """``(parameters, analysed unit rows, n_occurrences, pattern summaries)`` of the convSeq run ``name`` in
    ``module``, or None."""
    events = (nwbfile.events or {}).get(name)
    interfaces = nwbfile.processing[module].data_interfaces if module in nwbfile.processing else {}
    patterns = interfaces.get(name + nwb.PATTERNS_SUFFIX)
    if events is None or patterns is None:
        return None
    parameters = nwb._stored_parameters(events, interfaces, name)
    data, bounds = nwb._ragged(patterns, "analyzed_units")
    if len(bounds) > 1:
        rows = np.asarray(data[bounds[0]:bounds[1]], dtype=np.int64)
    elif isinstance(parameters.get("analyzed_units"), str):  # a search that kept no pattern records them here
        rows = np.asarray(json.loads(parameters["analyzed_units"]), dtype=np.int64)
    else:
        rows = np.zeros(0, np.int64)
    return parameters, rows, len(events.id), nwb._stored_pattern_summaries(patterns, parameters)


def _differences(expected: dict, stored: dict) -> list[str]:
    return [key for key in sorted(expected) if key not in _EXECUTION_PARAMETERS
            and stored.get(key, _MISSING) != expected[key]]


def _decide(path: Path, bin_size, width, n_patterns, name: str, module: str, arguments: dict):
    """``("skipped", name, n_occurrences, pattern summaries)`` when a stored run matches, else ``("annotate", free
    name, None, None)``."""
    where = f"'{path}'"
    core = {key: value for key, value in arguments["core_options"].items() if key != "n_jobs"}
    with nwb._Opened(path) as nwbfile:
        units = nwb._read_units(nwbfile, arguments["unit_ids"], arguments["window"], where)
        epoch = None
        if arguments["intervals"] is not None:
            epoch = nwb._intervals_epoch(nwbfile, arguments["intervals"], where, units.rows)
        expected = _expected_parameters(units, epoch, bin_size, width, n_patterns, arguments["max_patterns"],
                                        arguments["t_start"], arguments["t_stop"], arguments["random_state"],
                                        arguments["device"], core)
        for candidate in _family(nwbfile, name):
            stored = _stored_run(nwbfile, module, candidate)
            if stored is None:
                continue
            parameters, rows, n_occurrences, summaries = stored
            changed = _differences(expected, parameters)
            if not changed and np.array_equal(rows, units.rows):
                return "skipped", candidate, n_occurrences, summaries
            logger.info("annotate_many: %s holds %r with other parameters (%s)", where, candidate,
                        ", ".join(changed) or "other units")
        free = name
        if nwb._clashes(nwbfile, module, name, arguments["mirror_intervals"]):
            free = nwb._free_name(nwbfile, module, name)
    return "annotate", free, None, None


def _row(path: str, status: str, name=None, occurrences=None, seconds: float = 0.0, error=None,
         patterns=None) -> dict:
    return {"path": path, "status": status, "name": name, "occurrences": occurrences, "seconds": seconds,
            "error": error, "patterns": None if patterns is None else json.dumps(patterns)}


def _error_text(err: BaseException) -> str:
    return " ".join(f"{type(err).__name__}: {err}".split())


def _annotate_one(path: str, exclusive: bool, bin_size, width, n_patterns, name: str, module: str,
                  arguments: dict) -> dict:
    """Skip or annotate one file; runs on a worker and returns the small summary row."""
    from convseq_neo.io.file_lock import file_lock
    from convseq_neo.io.safe_write import _remove_stale_temporaries

    started = time.perf_counter()
    try:
        source = nwb._check_path(path, "path", open_file_allowed=False)
        with file_lock(source, timeout=arguments["lock_timeout"]):  # re-entered by annotate: one locked span
            action, chosen, occurrences, summaries = _decide(source, bin_size, width, n_patterns, name, module,
                                                             arguments)
            if action == "skipped":
                _remove_stale_temporaries(source)  # a killed earlier attempt's copy (dead process, this host)
                logger.info("annotate_many: '%s' already holds this detection as %r: skipped", source, chosen)
                return _row(path, "skipped", chosen, occurrences, time.perf_counter() - started,
                            patterns=summaries)
            core = dict(arguments["core_options"])
            core["n_jobs"] = _fit_threads(exclusive, core.get("n_jobs"))
            result = nwb.annotate(source, bin_size, width, n_patterns, max_patterns=arguments["max_patterns"],
                                  name=chosen, module=module,
                                  unit_ids=arguments["unit_ids"], window=arguments["window"],
                                  intervals=arguments["intervals"], t_start=arguments["t_start"],
                                  t_stop=arguments["t_stop"], mirror_intervals=arguments["mirror_intervals"],
                                  random_state=arguments["random_state"], device=arguments["device"], progress=False,
                                  lock_timeout=arguments["lock_timeout"], **core)
        return _row(path, "ok", chosen, len(result.occurrences), time.perf_counter() - started,
                    patterns=nwb._pattern_summaries(result.patterns))
    except Exception as err:  # noqa: BLE001 - one file's failure is its row; the others go on
        logger.info("annotate_many: '%s' failed: %s", path, _error_text(err))
        return _row(path, "failed", None, None, time.perf_counter() - started, _error_text(err))


# ---------------------------------------------------------------------------------------------
# the batch
# ---------------------------------------------------------------------------------------------
def _every_worker_has_the_resource(client) -> bool:
    """True when every worker of ``client``'s cluster holds :data:`RESOURCE` (waits for a first worker: a cluster of
    queued batch jobs may have none yet, and no task could run before one arrives)."""
    workers = client.scheduler_info().get("workers", {})
    if not workers:
        logger.info("annotate_many: waiting for the cluster's first worker")
        client.wait_for_workers(1)
        workers = client.scheduler_info().get("workers", {})
    return bool(workers) and all(info.get("resources", {}).get(RESOURCE, 0) >= 1 for info in workers.values())


def _run(client, paths: list[str], exclusive: bool, task_arguments: tuple, progress: bool) -> list[dict]:
    from distributed import as_completed
    from tqdm.auto import tqdm

    token = os.urandom(4).hex()
    resources = {RESOURCE: 1} if exclusive else None
    futures = [client.submit(_annotate_one, path, exclusive, *task_arguments, key=f"convseq-annotate-{i}-{token}",
                             pure=False, resources=resources) for i, path in enumerate(paths)]
    position = {future.key: i for i, future in enumerate(futures)}
    rows: list[dict | None] = [None] * len(paths)
    counts = dict.fromkeys(("ok", "skipped", "failed"), 0)
    bar = tqdm(total=len(paths), desc="files", unit="file", disable=not progress)
    try:
        for future in as_completed(futures, loop=client.loop):
            i = position[future.key]
            try:
                row = future.result()
            except Exception as err:  # noqa: BLE001 - KilledWorker after the allowed retries, a lost scheduler
                row = _row(paths[i], "failed", error=_error_text(err))
            rows[i] = row
            counts[row["status"]] += 1
            bar.set_postfix(counts, refresh=False)
            bar.update(1)
            future.release()
    except BaseException:
        client.cancel(futures)
        raise
    finally:
        bar.close()
    return rows


def _write_report(frame: pd.DataFrame, target: Path) -> None:
    from convseq_neo.io.safe_write import safe_write

    with safe_write(None, target, copy=False) as tmp:  # lock, fsync, atomic replace
        frame.to_csv(tmp, index=False)


def annotate_many(paths, bin_size="auto", width="auto", n_patterns="auto", *, max_patterns: int = 4,
                  name: str = "convseq", module: str = "ecephys", client=None, scheduler: str | None = None,
                  n_workers: int | None = None, progress: bool = False, report=None, unit_ids=None,
                  window: str | None = None, intervals=None, t_start=None, t_stop=None, mirror_intervals: bool = True,
                  random_state=None, device="auto", n_jobs=None, lock_timeout: float = 0.0,
                  **core_options) -> pd.DataFrame:
    """Annotate many NWB files, one dask task per file, skipping those already annotated this way.

    Each file is annotated in place by :func:`convseq_neo.io.nwb.annotate` (locked, through a
    verified temporary copy, replaced atomically), with the same arguments for every file. A file
    that fails (not NWB, no units, too short, locked by another run, ...) is reported with its
    error and the others go on. See the module's Re-runs, Threads and Lost workers.

    Parameters
    ----------
    paths : sequence of str or os.PathLike
        Local NWB files, each given once (remote files cannot be annotated in place).
    bin_size, width : pq.Quantity or "auto", default "auto"
        Time resolution and longest sequence to look for, as in :func:`~convseq_neo.io.nwb.annotate`
        (``"auto"``: the time scale is searched in every file).
    n_patterns : int or "auto", default "auto"
        Number of patterns to learn (``"auto"``: at most ``max_patterns`` per time scale).
    max_patterns : int, default 4
        The most patterns ``n_patterns="auto"`` learns at one time scale.
    name : str, default "convseq"
        Name of the stored run; taken already with other parameters, the first free of
        ``name_2``, ``name_3``, ... is used.
    module : str, default "ecephys"
        Processing module of the patterns and parameters tables.
    client : distributed.Client, optional
        Run on this client's cluster (left running).
    scheduler : str, optional
        Address of a running scheduler (``"tcp://10.0.0.5:8786"``): connect, run, disconnect.
    n_workers : int, optional
        Worker processes of the ``LocalCluster`` started for the run (the default engine), each
        with ``cores // n_workers`` threads. Default: ``min(len(paths), cores)``, where cores are
        the cores this process may use. At most one of ``client``, ``scheduler`` and
        ``n_workers``.
    progress : bool, default False
        One progress bar across the files.
    report : str or os.PathLike, optional
        Also write the returned table here as CSV (through a temporary file moved into place; it
        may not be one of the NWB files nor another HDF5 file).
    unit_ids, window, intervals, t_start, t_stop, mirror_intervals, random_state, device, lock_timeout
        As in :func:`~convseq_neo.io.nwb.annotate`, for every file; ``random_state`` seeds each
        file's detection alike.
    n_jobs : int, optional
        Cap on each fit's threads (default: the worker's share, see the module's Threads).
    **core_options
        Any other :class:`~convseq_neo.core.estimator.ConvSeq` parameter (``max_epochs``,
        ``n_surrogates``, ``alpha``, ...).

    Returns
    -------
    pandas.DataFrame
        One row per file, in the order of ``paths``, with the columns :data:`REPORT_COLUMNS`:
        ``path`` (as given), ``status`` ("ok": annotated now; "skipped": it already held this
        detection; "failed"), ``name`` (the run written, or the one that matched), ``occurrences``
        (stored, for ok and skipped), ``seconds`` (the task's time), ``error`` (for failed:
        the exception's type and message) and ``patterns`` (for ok and skipped: JSON text, a list
        with one object per stored pattern: ``id``, ``bin_size_s``, ``width_s``, ``n_members``,
        ``n_occurrences``).

    Raises
    ------
    TypeError, ValueError
        Bad arguments, before any file is read: ``paths`` empty, not paths, a URL or a file
        given twice; ``out=`` (not supported: files are annotated in place); two of ``client``,
        ``scheduler``, ``n_workers``; any argument :func:`~convseq_neo.io.nwb.annotate` refuses
        by itself; a ``report`` that is a directory, an input or an HDF5 file.
    FileNotFoundError
        ``report``'s directory does not exist.
    ImportError
        dask.distributed is not installed (``pip install "convseq_neo[cluster]"``).
    OSError
        The scheduler at ``scheduler`` cannot be reached.

    Notes
    -----
    The local cluster starts its worker processes with ``spawn``, which imports the calling
    script again in each of them: in a script, call this function under ``if __name__ ==
    "__main__":``, as for any multiprocessing code (the command line and notebooks need nothing).

    Examples
    --------
    Two small recordings, annotated on a cluster of one in-process worker (``n_workers=2`` would
    start two worker processes instead; ``scheduler="tcp://..."`` would use a running cluster):

    >>> import datetime, pathlib, tempfile
    >>> import quantities as pq
    >>> from distributed import Client
    >>> from pynwb import NWBFile, NWBHDF5IO
    >>> from convseq_neo.io.nwb_batch import annotate_many
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> paths = []
    >>> for i in range(2):
    ...     nwbfile = NWBFile(session_description="demo", identifier=f"demo{i}",
    ...                       session_start_time=datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc))
    ...     for train in recording.spiketrains:
    ...         nwbfile.add_unit(spike_times=train.times.rescale("s").magnitude)
    ...     with NWBHDF5IO(str(folder / f"session{i}.nwb"), "w") as io:
    ...         io.write(nwbfile)
    ...     paths.append(folder / f"session{i}.nwb")
    >>> _ = (folder / "notes.nwb").write_text("not an NWB file")
    >>> options = dict(n_patterns=1, random_state=0, max_epochs=200, n_surrogates=40, n_folds=3)
    >>> with Client(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=":0") as client:
    ...     first = annotate_many(paths + [folder / "notes.nwb"], 5 * pq.ms, 200 * pq.ms, client=client, **options)
    ...     again = annotate_many(paths, 5 * pq.ms, 200 * pq.ms, client=client, **options)
    ...     changed = annotate_many(paths[:1], 5 * pq.ms, 200 * pq.ms, client=client, **{**options, "alpha": 0.01})
    >>> first["status"].tolist(), first["name"].tolist()[:2]
    (['ok', 'ok', 'failed'], ['convseq', 'convseq'])
    >>> bool(first["occurrences"].iloc[0] >= 15), first["error"].iloc[2].startswith("ValueError")
    (True, True)
    >>> again["status"].tolist(), changed[["status", "name"]].values.tolist()   # same run: skipped; else a new name
    (['skipped', 'skipped'], [['ok', 'convseq_2']])
    """
    if "out" in core_options:
        raise TypeError("annotate_many annotates each file in place and takes no out=; for annotated copies call "
                        "convseq_neo.io.nwb.annotate(path, ..., out=...) per file")
    checked = _check_paths(paths)
    _check_engine(client, scheduler, n_workers)
    nwb._check_name(name, "name")
    nwb._check_name(module, "module")
    nwb._check_intervals(intervals)
    if unit_ids is not None:
        nwb._check_unit_ids(unit_ids)
    if not isinstance(mirror_intervals, (bool, np.bool_)):
        raise TypeError(f"mirror_intervals must be True or False, got {type(mirror_intervals).__name__}")
    if not isinstance(progress, (bool, np.bool_)):
        raise TypeError(f"progress must be True or False, got {type(progress).__name__}")
    options = dict(core_options, n_jobs=n_jobs)
    nwb._check_detection_arguments(bin_size, width, n_patterns, random_state, options, max_patterns)
    if n_jobs is None:
        options.pop("n_jobs")
    from convseq_neo.io.file_lock import check_timeout

    lock_timeout = check_timeout(lock_timeout, "lock_timeout")
    target = _check_report(report, checked)
    arguments = {"unit_ids": unit_ids, "window": window, "intervals": intervals, "t_start": t_start,
                 "t_stop": t_stop, "mirror_intervals": bool(mirror_intervals), "random_state": random_state,
                 "device": device, "lock_timeout": lock_timeout, "core_options": options,
                 "max_patterns": int(max_patterns)}
    task_arguments = (bin_size, width, n_patterns, name, module, arguments)
    try:
        from distributed import Client, LocalCluster
    except ImportError as err:  # pragma: no cover - the cluster extra is missing
        raise ImportError(f'annotate_many runs on dask.distributed: pip install "convseq_neo[cluster]" ({err})') \
            from err

    started = time.perf_counter()
    if client is not None:
        rows = _run(client, checked, _every_worker_has_the_resource(client), task_arguments, bool(progress))
    elif scheduler is not None:
        with Client(scheduler.strip(), set_as_default=False) as own:
            rows = _run(own, checked, _every_worker_has_the_resource(own), task_arguments, bool(progress))
    else:
        from convseq_neo._threads import available_cores

        cores = available_cores()
        workers = int(n_workers) if n_workers is not None else max(1, min(len(checked), cores))
        threads = max(1, cores // workers)
        logger.info("annotate_many: a local cluster of %d worker process(es) x %d thread(s)", workers, threads)
        with LocalCluster(n_workers=workers, threads_per_worker=threads, processes=True, dashboard_address=":0",
                          resources={RESOURCE: 1}) as cluster, Client(cluster, set_as_default=False) as own:
            rows = _run(own, checked, True, task_arguments, bool(progress))
    frame = pd.DataFrame(rows, columns=list(REPORT_COLUMNS))
    frame["occurrences"] = frame["occurrences"].astype("Int64")
    frame["seconds"] = frame["seconds"].astype(float)
    logger.info("annotate_many: %d file(s) in %.1f s: %s", len(frame), time.perf_counter() - started,
                ", ".join(f"{count} {status}" for status, count in frame["status"].value_counts().items()))
    if target is not None:
        _write_report(frame, target)
    return frame
