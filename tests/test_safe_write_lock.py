"""Several processes, one file: the lock of safe_write / file_lock, annotate's hold on the HDF5 file against other
writers, temporary copies named by host and pid (removed on SIGTERM/SIGHUP, or by the next run when their process
is gone).

Processes that must really run concurrently are child processes driven step by step through stdin/stdout: each
prints a word when it reaches a point ("ready", "paused", "written") and waits for a line on stdin to go on.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import queue
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time

import h5py
import numpy as np
import pytest
import quantities as pq
from pynwb import NWBHDF5IO

from convseq_neo.io import file_lock as fl
from convseq_neo.io import nwb
from convseq_neo.io import safe_write as sw
from convseq_neo.io.safe_write import LOCK_SUFFIX, TMP_SUFFIX, FileLockedError, file_lock, lock_path, safe_write
from convseq_neo.synthetic.generate import sequence_recording

#: The smallest settings that still detect something in the recording below (well under a second).
TINY = {"max_epochs": 20, "n_surrogates": 10, "n_folds": 2}
HDF5_LOCKING = os.environ.get("HDF5_USE_FILE_LOCKING", "").upper() not in ("FALSE", "0")
needs_hdf5_locking = pytest.mark.skipif(not HDF5_LOCKING, reason="HDF5_USE_FILE_LOCKING=FALSE: HDF5 takes no locks")


def child_env() -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env.pop("HDF5_USE_FILE_LOCKING", None)
    return env


@pytest.fixture(scope="module")
def nwb_source(tmp_path_factory):
    from test_nwb import make_nwbfile, write

    rec = sequence_recording(n_neurons=40, members_per_pattern=12, duration=40 * pq.s, rate=2 * pq.Hz,
                             lag_step=10 * pq.ms, participation=1.0, jitter=5 * pq.ms, n_occurrences=20,
                             random_state=3)
    trains = [t.times.rescale(pq.s).magnitude for t in rec.spiketrains]
    return write(make_nwbfile(trains, obs=[np.array([[0.0, 40.0]])] * len(trains)),
                 tmp_path_factory.mktemp("lock") / "source.nwb")


@pytest.fixture
def nwb_path(nwb_source, tmp_path):
    """A fresh copy of the small NWB file, alone in its directory."""
    path = tmp_path / "session.nwb"
    path.write_bytes(nwb_source.read_bytes())
    return path


def events(path) -> set:
    with NWBHDF5IO(str(path), "r") as io:
        return set(io.read().events or {})


def leftovers(directory) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith((TMP_SUFFIX, LOCK_SUFFIX)))


class Child:
    """A child process driven line by line (stdout read by a thread, so every wait has a timeout)."""

    def __init__(self, code: str, *args) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", code, *map(str, args)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env())
        self.lines: queue.Queue = queue.Queue()
        self.err: list[str] = []
        threading.Thread(target=self._pump, args=(self.proc.stdout, self.lines), daemon=True).start()
        threading.Thread(target=self._collect, daemon=True).start()

    @staticmethod
    def _pump(stream, lines) -> None:
        for line in stream:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    def _collect(self) -> None:
        self.err.extend(self.proc.stderr)

    def expect(self, word: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self.proc.kill()
                raise AssertionError(f"child did not say {word!r} in {timeout} s") from None
            if line is None:
                self.proc.wait()
                raise AssertionError(f"child ended (status {self.proc.returncode}) before saying {word!r}:\n"
                                     + "".join(self.err[-20:]))
            if line.startswith(word):
                return line

    def go(self) -> None:
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()

    def wait(self, timeout: float = 60) -> int:
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def children():
    started: list[Child] = []

    def start(code: str, *args) -> Child:
        child = Child(code, *args)
        started.append(child)
        return child

    yield start
    for child in started:
        child.kill()


# A process that holds file_lock(path) until told to let go (imports no torch or pynwb: starts in ~0.1 s).
HOLDER = textwrap.dedent("""
    import sys
    from convseq_neo.io.safe_write import file_lock, safe_write
    path = sys.argv[1]
    with file_lock(path):
        print("held", flush=True)
        sys.stdin.readline()
        if len(sys.argv) > 2:  # read, then write back under the same lock
            content = open(path).read()
            with safe_write(path) as tmp:
                open(tmp, "w").write(content + sys.argv[2] + "\\n")
    print("released", flush=True)
""")

def run_annotator(conn, path, name: str, lock_timeout: float, pause: str) -> None:
    """In a child process: nwb.annotate, pausing where told ("detect": holding the file, before the fit; "write": in
    the middle of writing the temporary copy) until the parent says go; reports through ``conn``."""
    import pynwb
    import torch

    torch.set_num_threads(1)
    for signum in (signal.SIGTERM, signal.SIGHUP):  # default dispositions, also under nohup
        signal.signal(signum, signal.SIG_DFL)

    def pausing(owner, attr):
        original = getattr(owner, attr)

        def paused(*args, **kwargs):
            conn.send("paused")
            conn.recv()
            return original(*args, **kwargs)

        setattr(owner, attr, paused)

    if pause == "detect":
        pausing(nwb, "detect")
    elif pause == "write":
        pausing(pynwb.NWBHDF5IO, "write")
    conn.send("ready")
    conn.recv()
    try:
        nwb.annotate(path, 5 * pq.ms, 200 * pq.ms, 1, name=name, lock_timeout=lock_timeout, random_state=0, **TINY)
    except FileLockedError as err:
        conn.send(f"locked: {err}")
        sys.exit(3)
    conn.send("written")


class Annotator:
    """A child process running :func:`run_annotator`, forked from a server that has torch and pynwb imported
    already (starting a fresh interpreter for each would take seconds)."""

    def __init__(self, context, path, name: str, lock_timeout: float = 0.0, pause: str = "none") -> None:
        self.conn, child_conn = context.Pipe()
        self.proc = context.Process(target=run_annotator, args=(child_conn, str(path), name, lock_timeout, pause))
        self.proc.start()
        child_conn.close()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def expect(self, word: str, timeout: float = 60) -> str:
        if not self.conn.poll(timeout):
            raise AssertionError(f"child did not say {word!r} in {timeout} s")
        try:
            message = self.conn.recv()
        except EOFError:
            self.proc.join(5)
            raise AssertionError(f"child ended (status {self.proc.exitcode}) before saying {word!r}") from None
        assert message.startswith(word), f"child said {message!r}, expected {word!r}"
        return message

    def go(self) -> None:
        self.conn.send("go")

    def wait(self, timeout: float = 60) -> int:
        self.proc.join(timeout)
        return self.proc.exitcode

    def kill(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join()


@pytest.fixture(scope="module")
def forkserver():
    """A multiprocessing context whose server has imported what annotate needs (once per module)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["torch", "pynwb", "h5py", "convseq_neo.io.nwb", run_annotator.__module__])
    warm = context.Process(target=time.sleep, args=(0,))
    warm.start()
    warm.join()
    return context


@pytest.fixture
def annotators(forkserver):
    started: list[Annotator] = []

    def start(*args, **kwargs) -> Annotator:
        child = Annotator(forkserver, *args, **kwargs)
        started.append(child)
        return child

    yield start
    for child in started:
        child.kill()


# ------------------------------------------------------------------ file_lock
def test_lock_file_records_host_and_pid_and_is_removed(tmp_path):
    path = tmp_path / "data.bin"
    path.write_bytes(b"x")
    with file_lock(path) as lock_file:
        assert lock_file == lock_path(path) == tmp_path / ".data.bin.convseq-lock"
        holder = json.loads(lock_file.read_text())
        assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname() and holder["since"]
    assert [p.name for p in tmp_path.iterdir()] == ["data.bin"]


def test_lock_follows_a_symlink(tmp_path):
    target = tmp_path / "real" / "data.bin"
    target.parent.mkdir()
    target.write_bytes(b"x")
    (tmp_path / "link.bin").symlink_to(target)
    assert lock_path(tmp_path / "link.bin") == target.parent / ".data.bin.convseq-lock"


def test_lock_is_reentrant_in_a_thread_and_excludes_other_threads(tmp_path):
    path = tmp_path / "data.bin"
    path.write_bytes(b"old")
    errors = []

    def other_thread():
        try:
            with safe_write(path) as tmp:  # not in the main thread: no signal handlers, same lock
                tmp.write_bytes(b"thread")
        except FileLockedError as err:
            errors.append(err)

    with file_lock(path):
        with safe_write(path) as tmp:  # same thread: goes ahead at once
            tmp.write_bytes(b"new")
        worker = threading.Thread(target=other_thread)
        worker.start()
        worker.join()
    assert path.read_bytes() == b"new"
    assert len(errors) == 1 and "locked by another process" in str(errors[0])
    assert leftovers(tmp_path) == []


def test_another_process_holding_the_lock_refuses_safe_write(tmp_path, children):
    path = tmp_path / "data.bin"
    path.write_bytes(b"old")
    holder = children(HOLDER, path)
    holder.expect("held")
    with pytest.raises(FileLockedError, match="is locked by another process") as caught:
        with safe_write(path) as tmp:
            tmp.write_bytes(b"new")  # pragma: no cover - never reached
    message = str(caught.value)
    assert f"pid {holder.proc.pid}" in message and f"host {socket.gethostname()}" in message
    assert caught.value.holder["pid"] == holder.proc.pid and caught.value.filename == str(path)
    assert isinstance(caught.value, OSError)
    assert path.read_bytes() == b"old" and not [p for p in tmp_path.iterdir() if p.name.endswith(TMP_SUFFIX)]
    started = time.monotonic()
    with pytest.raises(FileLockedError, match=r"stayed locked for 0.3 s"):
        with file_lock(path, timeout=0.3):
            pass  # pragma: no cover
    assert time.monotonic() - started >= 0.3
    holder.go()
    holder.expect("released")
    assert holder.wait() == 0
    assert leftovers(tmp_path) == []


def test_a_waiting_writer_starts_from_the_holders_result(tmp_path, children):
    path = tmp_path / "notes.txt"
    path.write_text("original\n")
    holder = children(HOLDER, path, "holder")
    holder.expect("held")
    threading.Timer(0.3, holder.go).start()  # the holder appends its line and lets go while we wait
    started = time.monotonic()
    with file_lock(path, timeout=30):
        content = path.read_text()
        with safe_write(path) as tmp:
            tmp.write_text(content + "waiter\n")
    assert time.monotonic() - started >= 0.3
    assert path.read_text() == "original\nholder\nwaiter\n"  # nothing lost
    holder.expect("released")
    assert holder.wait() == 0
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("timeout, error", [(-1, ValueError), (float("nan"), ValueError), ("1", TypeError),
                                            (True, TypeError)])
def test_bad_timeouts(nwb_path, timeout, error):
    with pytest.raises(error, match="timeout"):
        with file_lock(nwb_path, timeout=timeout):
            pass  # pragma: no cover
    with pytest.raises(error, match="lock_timeout"):
        nwb.annotate(nwb_path, 5 * pq.ms, 200 * pq.ms, 1, lock_timeout=timeout)
    with pytest.raises(error, match="^lock_timeout"):  # named as the caller wrote it, not file_lock's "timeout"
        with safe_write(nwb_path, lock_timeout=timeout):
            pass  # pragma: no cover
    assert leftovers(nwb_path.parent) == []


# ------------------------------------------------------------------ the two modules
def test_the_lock_lives_in_file_lock_and_stays_importable_from_safe_write():
    for name in ("file_lock", "lock_path", "FileLockedError", "LOCK_SUFFIX"):
        assert name in sw.__all__ and name in fl.__all__ and getattr(sw, name) is getattr(fl, name)
    assert nwb.FileLockedError is fl.FileLockedError and nwb.file_lock is fl.file_lock
    assert fl.file_lock.__module__ == fl.FileLockedError.__module__ == "convseq_neo.io.file_lock"
    assert not hasattr(fl, "safe_write") and not hasattr(fl, "TMP_SUFFIX")  # the lock knows nothing of copies


def test_is_held_only_by_the_holding_thread(tmp_path):
    path = tmp_path / "data.bin"
    seen = []
    with file_lock(path) as lock_file:
        with file_lock(path):
            assert fl.is_held(lock_file) and fl.is_held(str(lock_file))
        assert fl.is_held(lock_file)  # the inner block does not release it
        worker = threading.Thread(target=lambda: seen.append(fl.is_held(lock_file)))
        worker.start()
        worker.join()
    assert seen == [False] and not fl.is_held(lock_file) and not lock_file.exists()


def test_remove_on_signal_registers_only_during_the_block(tmp_path):
    tmp = tmp_path / ".data.bin.partial"
    before = signal.getsignal(signal.SIGTERM)
    with fl.remove_on_signal(tmp) as registered:
        assert registered == tmp and tmp in fl._REMOVE_ON_SIGNAL
        assert signal.getsignal(signal.SIGTERM) is (before if before is signal.SIG_IGN else fl._on_signal)
    assert tmp not in fl._REMOVE_ON_SIGNAL and signal.getsignal(signal.SIGTERM) is before


def test_check_timeout():
    assert fl.check_timeout(0) == 0.0 and fl.check_timeout(2.5) == 2.5
    assert fl.check_timeout(float("inf")) == float("inf")
    assert isinstance(fl.check_timeout(np.int64(3)), float)
    for bad, error in ((-1, ValueError), (float("nan"), ValueError), ("1", TypeError), (True, TypeError),
                       (None, TypeError)):
        with pytest.raises(error, match="^my_timeout"):
            fl.check_timeout(bad, "my_timeout")


def test_a_file_system_without_flock_goes_ahead_with_a_warning(tmp_path, monkeypatch, caplog):
    import errno
    import fcntl

    def no_flock(fd, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    path = tmp_path / "data.bin"
    path.write_bytes(b"old")
    stale = fake_temporaries(path)["dead"]
    monkeypatch.setattr(fcntl, "flock", no_flock)
    with caplog.at_level(logging.WARNING, logger="convseq_neo.io.file_lock"):
        with safe_write(path) as tmp:
            assert not lock_path(path).exists()  # a lock file that locks nothing is not kept meanwhile
            tmp.write_bytes(b"new")
    assert path.read_bytes() == b"new" and "does not support file locking" in caplog.text
    assert stale.exists()  # unlocked, the directory is not tidied
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(LOCK_SUFFIX)]  # and no lock file is left behind


def test_without_flock_a_lock_file_this_run_did_not_create_stays(tmp_path, monkeypatch):
    import errno
    import fcntl

    def no_flock(fd, operation):
        raise OSError(errno.ENOSYS, "Function not implemented")  # e.g. Lustre mounted without -o flock

    path = tmp_path / "data.bin"
    path.write_bytes(b"old")
    lock_path(path).write_text('{"pid": 1}')  # someone else's (e.g. a node whose mount can lock)
    monkeypatch.setattr(fcntl, "flock", no_flock)
    with file_lock(path) as lock_file:
        assert not fl.is_held(lock_file)  # the block runs unlocked
    assert lock_path(path).read_text() == '{"pid": 1}'


def test_without_fcntl_an_exclusively_created_lock_file_serves(tmp_path):
    """Neither fcntl nor msvcrt (a stand-in for odd platforms): the module imports and still excludes writers."""
    path = tmp_path / "data.bin"
    path.write_bytes(b"old")
    code = textwrap.dedent("""
        import sys
        sys.modules["fcntl"] = sys.modules["msvcrt"] = None
        from convseq_neo.io import file_lock as fl
        from convseq_neo.io import safe_write as sw
        assert fl.fcntl is None and fl.msvcrt is None
        path = sys.argv[1]
        errors = []

        def other():
            try:
                with sw.file_lock(path, timeout=0.1):
                    pass
            except sw.FileLockedError as err:
                errors.append(str(err))

        with sw.safe_write(path) as tmp:
            tmp.write_bytes(b"new")
            with sw.file_lock(path):  # the same thread re-enters
                pass
            import threading
            worker = threading.Thread(target=other)
            worker.start()
            worker.join()
        assert errors and "locked by another process" in errors[0] and "delete the lock file" in errors[0]
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=60,
                          env=child_env())
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
    assert path.read_bytes() == b"new" and leftovers(tmp_path) == []


# ------------------------------------------------------------------ temporary copies
def test_temporary_name_carries_host_and_pid(tmp_path):
    path = tmp_path / "data.v1.bin"
    path.write_bytes(b"old")
    with safe_write(path) as tmp:
        match = sw._temporary_pattern(path).match(tmp.name)
        assert match is not None and match["pid"] == str(os.getpid()) and match["host"] == sw._host()
        assert tmp.name.startswith(f".data.v1.bin.{sw._host()}.{os.getpid()}.") and tmp.name.endswith(TMP_SUFFIX)


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def fake_temporaries(path) -> dict:
    """Left-over copies of ``path``: of a dead process here, of a live one, of another host, of an old name."""
    names = {"dead": f".{path.name}.{sw._host()}.{dead_pid()}.abc_12{TMP_SUFFIX}",
             "live": f".{path.name}.{sw._host()}.{os.getpid()}.def34{TMP_SUFFIX}",
             "other_host": f".{path.name}.elsewhere-node7.{dead_pid()}.ghi56{TMP_SUFFIX}",
             "old_name": f".{path.name}.jkl78{TMP_SUFFIX}"}
    made = {}
    for key, name in names.items():
        made[key] = path.parent / name
        made[key].write_bytes(b"partial copy")
    return made


def test_stale_temporaries_of_dead_processes_here_are_removed(tmp_path, caplog):
    path = tmp_path / "data.bin"
    path.write_bytes(b"old")
    fakes = fake_temporaries(path)
    with caplog.at_level(logging.INFO, logger="convseq_neo.io.safe_write"):
        with safe_write(path) as tmp:
            tmp.write_bytes(b"new")
    assert path.read_bytes() == b"new"
    assert not fakes["dead"].exists()
    assert fakes["live"].exists() and fakes["other_host"].exists() and fakes["old_name"].exists()
    assert "elsewhere-node7" in caplog.text and fakes["other_host"].name in caplog.text  # named, left alone
    assert any(r.levelno == logging.WARNING and "elsewhere-node7" in r.getMessage() for r in caplog.records)


def test_the_next_annotate_removes_a_stale_temporary(nwb_path):
    fakes = fake_temporaries(nwb_path)
    nwb.annotate(nwb_path, 5 * pq.ms, 200 * pq.ms, 1, name="next", random_state=0, **TINY)
    assert events(nwb_path) == {"next"}
    assert not fakes["dead"].exists()
    assert fakes["live"].exists() and fakes["other_host"].exists() and fakes["old_name"].exists()
    assert not lock_path(nwb_path).exists()


def test_stale_temporaries_are_only_removed_under_the_lock(tmp_path, children):
    path = tmp_path / "data.bin"
    path.write_bytes(b"old")
    fakes = fake_temporaries(path)
    holder = children(HOLDER, path)
    holder.expect("held")
    with pytest.raises(FileLockedError):
        with safe_write(path):
            pass  # pragma: no cover
    assert fakes["dead"].exists()  # another run holds the file: its directory is not ours to tidy
    holder.go()
    assert holder.wait() == 0


# ------------------------------------------------------------------ signals
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_signal_mid_write_leaves_the_original_and_no_temporary(signum, nwb_path, annotators):
    original = nwb_path.read_bytes()
    child = annotators(nwb_path, "interrupted", pause="write")
    child.expect("ready")
    child.go()
    child.expect("paused")  # writing the tables into the temporary copy
    temporaries = [p for p in nwb_path.parent.iterdir() if p.name.endswith(TMP_SUFFIX)]
    assert len(temporaries) == 1 and f".{child.pid}." in temporaries[0].name
    assert lock_path(nwb_path).exists()
    os.kill(child.pid, signum)
    assert child.wait() == -signum  # it still dies of the signal
    assert nwb_path.read_bytes() == original
    assert leftovers(nwb_path.parent) == []


class Interrupted(Exception):
    pass


def test_handlers_are_restored_and_an_earlier_python_handler_decides(tmp_path):
    path = tmp_path / "data.bin"
    path.write_bytes(b"old")
    before = signal.getsignal(signal.SIGTERM)

    def earlier(signum, frame):
        raise Interrupted(signum)

    signal.signal(signal.SIGTERM, earlier)
    try:
        with safe_write(path) as tmp:
            tmp.write_bytes(b"new")
            assert signal.getsignal(signal.SIGTERM) is fl._on_signal
        assert signal.getsignal(signal.SIGTERM) is earlier and path.read_bytes() == b"new"
        with pytest.raises(Interrupted):
            with safe_write(path) as tmp:
                tmp.write_bytes(b"newer")
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(1)  # pragma: no cover - the handler raises first
        assert signal.getsignal(signal.SIGTERM) is earlier
        assert path.read_bytes() == b"new" and leftovers(tmp_path) == []
    finally:
        signal.signal(signal.SIGTERM, before)


def test_an_ignored_signal_stays_ignored(tmp_path):
    path = tmp_path / "data.bin"
    path.write_bytes(b"old")
    before = signal.getsignal(signal.SIGHUP)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with safe_write(path) as tmp:
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            os.kill(os.getpid(), signal.SIGHUP)
            tmp.write_bytes(b"new")
        assert path.read_bytes() == b"new" and signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, before)


# ------------------------------------------------------------------ two annotate runs on one file
def two_runs(nwb_path, annotators, b_timeout):
    """Start runs a (pauses holding the file, before its fit) and b; return them once a is paused and b started."""
    a = annotators(nwb_path, "a", pause="detect")
    b = annotators(nwb_path, "b", lock_timeout=b_timeout)
    a.expect("ready")
    b.expect("ready")
    a.go()
    a.expect("paused")
    b.go()
    return a, b


def test_two_annotates_that_wait_keep_both_detections(nwb_path, annotators):
    a, b = two_runs(nwb_path, annotators, 60)
    time.sleep(1.0)  # b reads nothing meanwhile: it waits for a's lock
    assert b.proc.is_alive() and not b.conn.poll() and events(nwb_path) == set()
    a.go()
    a.expect("written")
    b.expect("written")
    assert a.wait() == 0 and b.wait() == 0
    assert events(nwb_path) == {"a", "b"}  # b read the file a wrote
    assert len(nwb.read_detections(nwb_path, "a").patterns) == len(nwb.read_detections(nwb_path, "b").patterns) == 1
    assert leftovers(nwb_path.parent) == []


def test_an_annotate_that_does_not_wait_fails_and_changes_nothing(nwb_path, annotators):
    original = nwb_path.read_bytes()
    a, b = two_runs(nwb_path, annotators, 0)
    line = b.expect("locked:")
    assert b.wait() == 3
    assert "is locked by another process" in line and f"pid {a.pid}" in line and socket.gethostname() in line
    assert nwb_path.read_bytes() == original
    a.go()
    a.expect("written")
    assert a.wait() == 0
    assert events(nwb_path) == {"a"}
    assert leftovers(nwb_path.parent) == []


# ------------------------------------------------------------------ other HDF5 writers
@needs_hdf5_locking
def test_an_hdf5_writer_is_refused_while_annotate_holds_the_file(nwb_path, annotators):
    a = annotators(nwb_path, "a", pause="detect")
    a.expect("ready")
    a.go()
    a.expect("paused")  # read done, fit pending: the file is about to be replaced
    for mode in ("a", "r+"):
        with pytest.raises(OSError, match="unable to lock file"):
            h5py.File(nwb_path, mode)
    with pytest.raises(OSError, match="unable to lock file"):
        NWBHDF5IO(str(nwb_path), "a")
    assert nwb.read_units(nwb_path)  # readers are welcome
    a.go()
    a.expect("written")
    assert a.wait() == 0
    with h5py.File(nwb_path, "a") as handle:  # let go after the replace
        assert "convseq" not in handle and "a" in handle["events"]


WRITER = textwrap.dedent("""
    import sys
    import h5py
    handle = h5py.File(sys.argv[1], "a")
    print("open", flush=True)
    sys.stdin.readline()
    handle.close()
    print("closed", flush=True)
""")


@needs_hdf5_locking
def test_a_file_open_for_writing_is_reported_locked_not_unreadable(nwb_path, children):
    writer = children(WRITER, nwb_path)
    writer.expect("open")
    original = nwb_path.read_bytes()
    for call in (lambda: nwb.annotate(nwb_path, 5 * pq.ms, 200 * pq.ms, 1, **TINY),
                 lambda: nwb.read_units(nwb_path), lambda: nwb.read_detections(nwb_path)):
        with pytest.raises(FileLockedError, match=r"is locked by another process \(HDF5 file lock"):
            call()
    assert nwb_path.read_bytes() == original and leftovers(nwb_path.parent) == []
    # with a lock timeout, annotate waits for the writer to close the file
    threading.Timer(0.3, writer.go).start()
    nwb.annotate(nwb_path, 5 * pq.ms, 200 * pq.ms, 1, name="after", random_state=0, lock_timeout=30, **TINY)
    assert writer.wait() == 0
    assert events(nwb_path) == {"after"}
