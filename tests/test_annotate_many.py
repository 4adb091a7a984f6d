"""Many NWB files on dask.distributed: convseq_neo.io.nwb_batch.annotate_many and ``convseq-neo annotate A B ...``.

Two worker processes of one thread each annotate small files (40 units x 40 s, ~2 s a fit): failures are
reported and the others go on, a SIGKILLed worker costs nothing, re-runs skip, changed parameters add a name.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pandas as pd
import pytest
import quantities as pq
from distributed import Client, LocalCluster
from pynwb import NWBHDF5IO

from convseq_neo import cli
from convseq_neo.io import nwb
from convseq_neo.io.file_lock import LOCK_SUFFIX
from convseq_neo.io.nwb_batch import (
    REPORT_COLUMNS,
    RESOURCE,
    _every_worker_has_the_resource,
    _fit_threads,
    annotate_many,
)
from convseq_neo.io.safe_write import TMP_SUFFIX, _host

BIN, WIDTH = 5 * pq.ms, 200 * pq.ms
FAST = {"n_patterns": 1, "random_state": 0, "max_epochs": 300, "n_surrogates": 50, "n_folds": 3}
CLI_FAST = ["--bin-size", "5ms", "--width", "200ms", "--patterns", "1", "--seed", "0", "--max-epochs", "300",
            "--n-surrogates", "50", "--folds", "3", "--no-progress"]


def snapshot(path):
    """Units ids, spike times and their index, for bit-identity checks."""
    with NWBHDF5IO(str(path), "r") as io:
        units = io.read().units
        index = units["spike_times_index"]
        return np.asarray(units.id.data[:]), np.asarray(index.target.data[:]), np.asarray(index.data[:])


def same(a, b) -> bool:
    return all(x.dtype == y.dtype and np.array_equal(x, y) for x, y in zip(a, b))


def state(path):
    """A file's bytes and modification time (ns)."""
    return path.read_bytes(), os.stat(path).st_mtime_ns


def leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith((TMP_SUFFIX, LOCK_SUFFIX)))


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    """Three good files (planted sequence, seeds 1-3) and their units, never annotated: copied by each test."""
    from _recordings import planted_nwb

    folder = tmp_path_factory.mktemp("pristine")
    paths = [planted_nwb(folder / f"session{i}.nwb", random_state=i) for i in (1, 2, 3)]
    return paths, [snapshot(p) for p in paths]


def copies(pristine, folder):
    folder.mkdir(exist_ok=True)
    return [shutil.copy2(p, folder / p.name) for p in pristine[0]]


@pytest.fixture(scope="module")
def client():
    """A LocalCluster of 2 worker processes with 1 thread each (no convseq_neo resource: one file per thread)."""
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
            Client(cluster, set_as_default=False) as connected:
        yield connected


@pytest.fixture(scope="module")
def batch(pristine, client, tmp_path_factory):
    """The first batch: 3 good files and one that is not NWB, on 2 worker processes."""
    folder = tmp_path_factory.mktemp("batch")
    paths = copies(pristine, folder)
    broken = folder / "broken.nwb"
    broken.write_text("not an NWB file\n")
    frame = annotate_many([*paths, broken], BIN, WIDTH, client=client, **FAST)
    return paths, broken, frame


# ------------------------------------------------------------------ many files on two worker processes
def test_two_workers_annotate_the_good_files_and_report_the_bad_one(batch, pristine):
    paths, broken, frame = batch
    assert list(frame.columns) == list(REPORT_COLUMNS)
    assert frame["path"].tolist() == [str(p) for p in [*paths, broken]]  # the order of the paths
    assert frame["status"].tolist() == ["ok", "ok", "ok", "failed"]
    assert frame["name"].iloc[:3].tolist() == ["convseq"] * 3
    assert "could not be read as an NWB file" in frame["error"].iloc[3]
    assert frame["error"].iloc[:3].isna().all() and pd.isna(frame["occurrences"].iloc[3])
    for path, before, (_, row) in zip(paths, pristine[1], frame.iloc[:3].iterrows()):
        stored = nwb.read_detections(path)
        assert row["occurrences"] == len(stored.occurrences) >= 20  # 25 planted occurrences
        assert stored.parameters["n_jobs"] == 1  # one thread per task on 1-thread workers
        assert row["seconds"] > 0
        assert same(snapshot(path), before)
    assert broken.read_text() == "not an NWB file\n"
    assert leftovers(paths[0].parent) == []


def test_a_rerun_skips_every_file_and_changed_parameters_add_a_name(batch, client):
    paths, _, first = batch
    before = [state(p) for p in paths]
    # a temporary copy and a lock file left by a killed process of this host must not block anything
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = paths[0].parent / f".{paths[0].name}.{_host()}.{dead.pid}.abcd1234{TMP_SUFFIX}"
    stale.write_bytes(b"half a copy")
    lock_file = paths[0].parent / f".{paths[0].name}{LOCK_SUFFIX}"
    lock_file.write_text(json.dumps({"host": _host(), "pid": dead.pid, "since": "earlier"}) + "\n")

    os.chmod(paths[2], 0o444)  # a read-only file that holds the detection needs no writing: skipped too
    try:
        again = annotate_many(paths, BIN, WIDTH, client=client, **FAST)
    finally:
        os.chmod(paths[2], 0o644)
    assert again["status"].tolist() == ["skipped"] * 3
    assert again["name"].tolist() == ["convseq"] * 3
    assert again["occurrences"].tolist() == first["occurrences"].iloc[:3].tolist()
    assert [state(p) for p in paths] == before  # byte-identical, modification time unchanged
    assert not stale.exists()

    changed = annotate_many(paths[:2], BIN, WIDTH, client=client, **{**FAST, "n_surrogates": 60})
    assert changed["status"].tolist() == ["ok", "ok"] and changed["name"].tolist() == ["convseq_2"] * 2
    assert nwb.read_detections(paths[0], "convseq_2").parameters["n_surrogates"] == 60
    assert nwb.read_detections(paths[0], "convseq").parameters["n_surrogates"] == 50
    assert state(paths[2]) == before[2]
    # both runs are now found under their names; the threads of a run do not count as a change
    third = annotate_many(paths[:2], BIN, WIDTH, client=client, n_jobs=1, **{**FAST, "n_surrogates": 60})
    assert third["status"].tolist() == ["skipped"] * 2 and third["name"].tolist() == ["convseq_2"] * 2
    first_again = annotate_many(paths[:1], BIN, WIDTH, client=client, **FAST)
    assert first_again["status"].tolist() == ["skipped"] and first_again["name"].tolist() == ["convseq"]
    other_units = annotate_many(paths[:1], BIN, WIDTH, client=client, unit_ids=list(range(100, 139)), **FAST)
    assert other_units["status"].tolist() == ["ok"] and other_units["name"].tolist() == ["convseq_3"]
    assert leftovers(paths[0].parent) == []


def test_a_worker_killed_mid_batch_costs_nothing(pristine, client, tmp_path):
    paths = copies(pristine, tmp_path / "kill")
    worker_pids = set(client.run(os.getpid).values())
    outcome = {}
    runner = threading.Thread(target=lambda: outcome.update(frame=annotate_many(paths, BIN, WIDTH, client=client,
                                                                                **FAST)))
    runner.start()
    killed = None
    deadline = time.monotonic() + 60
    while killed is None and time.monotonic() < deadline and runner.is_alive():
        for lock_file in paths[0].parent.glob(f"*{LOCK_SUFFIX}"):
            try:
                holder = json.loads(lock_file.read_text())["pid"]
            except (OSError, ValueError, KeyError):
                continue  # not written yet, or just released
            if holder in worker_pids:  # a worker is annotating this file: kill it mid-run
                time.sleep(0.3)
                os.kill(holder, signal.SIGKILL)
                killed = holder
                break
        time.sleep(0.02)
    runner.join(timeout=180)
    assert killed is not None and not runner.is_alive()
    frame = outcome["frame"]
    # the killed file was retried on a worker (a kill after its atomic replace would leave it complete: skipped)
    assert set(frame["status"]) <= {"ok", "skipped"} and (frame["status"] == "ok").sum() >= 2
    for path, before in zip(paths, pristine[1]):
        assert len(nwb.read_detections(path).occurrences) >= 20
        assert same(snapshot(path), before)
    assert leftovers(paths[0].parent) == []
    assert killed not in set(client.run(os.getpid).values())  # the nanny started a new process


# ------------------------------------------------------------------ threads
def test_each_fit_gets_its_workers_share_of_the_threads():
    assert _fit_threads(True, None) == 1  # not on a worker
    with Client(processes=False, n_workers=1, threads_per_worker=3, dashboard_address=":0",
                resources={RESOURCE: 1}, set_as_default=False) as local:
        assert _every_worker_has_the_resource(local)
        cases = [(True, None, 3), (True, -1, 3), (True, 2, 2), (True, 8, 3), (False, None, 1), (False, 4, 1)]
        for exclusive, requested, threads in cases:
            assert local.submit(_fit_threads, exclusive, requested, pure=False).result() == threads
    with Client(processes=False, n_workers=1, threads_per_worker=2, dashboard_address=":0",
                set_as_default=False) as plain:
        assert not _every_worker_has_the_resource(plain)


# ------------------------------------------------------------------ arguments
def test_bad_arguments_are_refused_before_any_work(pristine, tmp_path):
    paths = [str(p) for p in pristine[0]]
    cases = [
        (dict(paths=paths[0]), TypeError, "list of NWB file paths"),
        (dict(paths=[]), ValueError, "paths is empty"),
        (dict(paths=[paths[0], 3]), TypeError, "str or os.PathLike"),
        (dict(paths=[paths[0], paths[0]]), ValueError, "twice"),
        (dict(paths=["https://example.org/a.nwb"]), ValueError, "remote file"),
        (dict(paths=paths, n_workers=2, scheduler="tcp://127.0.0.1:1"), ValueError, "at most one of"),
        (dict(paths=paths, n_workers=0), ValueError, "n_workers must be a positive int"),
        (dict(paths=paths, client="tcp://127.0.0.1:1"), TypeError, "distributed.Client"),
        (dict(paths=paths, out=tmp_path / "x.nwb"), TypeError, "no out="),
        (dict(paths=paths, name="a/b"), ValueError, "name must be"),
        (dict(paths=paths, n_patterns=0), ValueError, "n_patterns"),
        (dict(paths=paths, alphabet=1), TypeError, "unknown core option"),
        (dict(paths=paths, unit_ids=[1, 1]), ValueError, "repeats"),
        (dict(paths=paths, lock_timeout=-1), ValueError, "lock_timeout"),
        (dict(paths=paths, report=tmp_path), ValueError, "is a directory"),
        (dict(paths=paths, report=tmp_path / "no" / "r.csv"), FileNotFoundError, "no such directory"),
        (dict(paths=paths, report=paths[1]), ValueError, "one of the NWB files"),
    ]
    for kwargs, error, words in cases:
        kwargs = {"bin_size": BIN, "width": WIDTH, **kwargs}
        with pytest.raises(error, match=words):
            annotate_many(**kwargs)
    assert [p.name for p in tmp_path.iterdir()] == []


# ------------------------------------------------------------------ the command line
def test_cli_several_files_report_and_exit_status(pristine, tmp_path, capsys):
    paths = copies(pristine, tmp_path / "cli")
    missing = tmp_path / "cli" / "gone.nwb"
    report = tmp_path / "report.csv"
    argv = ["annotate", *map(str, paths[:2]), str(missing), *CLI_FAST, "--workers", "2", "--report", str(report)]
    assert cli.main(argv) == 1  # one file failed
    out, err = capsys.readouterr()
    table = pd.read_csv(report)
    assert list(table.columns) == list(REPORT_COLUMNS)
    assert table["path"].tolist() == [str(paths[0]), str(paths[1]), str(missing)]
    assert table["status"].tolist() == ["ok", "ok", "failed"]
    assert "no such file" in table["error"].iloc[2] and table["error"].iloc[:2].isna().all()
    assert table["occurrences"].iloc[:2].tolist() == [len(nwb.read_detections(p).occurrences) for p in paths[:2]]
    assert f"convseq-neo: failed: {missing}" in err and "Traceback" not in err
    assert "2 ok, 0 skipped, 1 failed" in out
    for path, before in zip(paths[:2], pristine[1]):
        assert same(snapshot(path), before)

    # the same files on the running cluster at --scheduler: nothing to do, exit status 0
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster:
        before = [state(p) for p in paths[:2]]
        assert cli.main(["annotate", *map(str, paths[:2]), *CLI_FAST, "--scheduler", cluster.scheduler_address]) == 0
        assert "0 ok, 2 skipped, 0 failed" in capsys.readouterr().out
        assert [state(p) for p in paths[:2]] == before


@pytest.mark.parametrize("extra, words", [
    (["--workers", "2", "--scheduler", "tcp://127.0.0.1:1"], "not allowed with argument"),
    (["--workers", "0"], "must be at least 1"),
    (["--out", "copy.nwb"], "--out writes an annotated copy of one file"),
    (["--json", "run.json"], "for several files use --report"),
    (["--scheduler", " "], "--scheduler needs an address"),
    (["--report", "FIRST"], "is the same file as FILE.nwb"),
])
def test_cli_usage_errors_of_several_files(extra, words, pristine, tmp_path, capsys):
    paths = [str(p) for p in pristine[0][:2]]
    extra = [paths[0] if word == "FIRST" else word for word in extra]  # the report over an input
    before = [state(p) for p in pristine[0]]
    assert cli.main(["annotate", *paths, *CLI_FAST, *extra]) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err
    assert [state(p) for p in pristine[0]] == before
