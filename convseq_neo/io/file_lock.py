"""An advisory, inter-process lock on a file: one :mod:`convseq_neo` run at a time changes it.

:func:`file_lock` takes an exclusive advisory lock (``fcntl.flock``) on a sidecar file
``.<name>.convseq-lock`` next to the locked file (:func:`lock_path`). The locked file itself
cannot carry the lock: :func:`~convseq_neo.io.safe_write.safe_write` replaces it with
:func:`os.replace`, which gives the name a new file (inode). The sidecar file records the holder's
host name, process id and start time (a run that finds the file locked names them in its
:class:`FileLockedError`) and is removed when the lock is released.

What the lock guarantees
    While one thread of one process holds the lock, no other thread or process that asks for it
    gets it: each waits up to its own timeout and then either holds it or raises
    :class:`FileLockedError` ("... is locked by another process ...") having changed nothing. A
    waiter therefore sees the file as the previous holder left it. The lock is re-entrant within
    a thread, so a function that holds it can call another that takes it too (as
    :func:`~convseq_neo.io.nwb.annotate` holds it around its read and the
    :func:`~convseq_neo.io.safe_write.safe_write` that writes the result). A symbolic link is
    followed: every name that leads to one file shares its lock. A hard link is not: each name
    has a lock file of its own.

Signals
    While a lock is held in the main thread, SIGTERM and SIGHUP release it (removing the lock
    file) before the process dies of the signal as it would have; a Python handler installed
    earlier is called instead and decides, and an ignored signal stays ignored.
    :func:`remove_on_signal` adds a file (:func:`~convseq_neo.io.safe_write.safe_write`'s
    temporary copy) to what is cleaned up first. After SIGKILL or a power cut the lock file can
    stay behind; with ``flock`` that is harmless (the kernel released the lock with the process,
    and the next run locks the same file).

What it does not guarantee
    The lock is advisory: it excludes :mod:`convseq_neo` runs from each other, not other
    programs. HDF5 files have a lock of their own, independent of this one: HDF5 (h5py, pynwb)
    locks a file it opens unless ``HDF5_USE_FILE_LOCKING=FALSE``, and
    :func:`~convseq_neo.io.nwb.annotate` keeps its source open read-only to keep HDF5 writers
    out. With ``HDF5_USE_FILE_LOCKING=FALSE`` (often set on cluster file systems) that second
    lock is gone and other programs are not kept out, but :mod:`convseq_neo` runs still exclude
    each other through this one.

    The lock is as good as the file system's ``flock``. Local file systems honour it. On network
    and shared file systems it may only exclude processes on the same node (older NFS clients,
    some cluster file systems), and process ids mean nothing across nodes, which is why the host
    name is recorded too: change a file from one node at a time there. Where the file system
    refuses ``flock`` altogether (e.g. Lustre mounted without ``flock``) a warning is logged and
    the block runs unlocked. On Windows ``msvcrt.locking`` is used (the lock file then stays
    after release, unlocked), and without either an exclusively created lock file (which a
    killed holder leaves behind: the error message then says to delete it).
"""

from __future__ import annotations

import errno
import json
import logging
import math
import numbers
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None
try:  # Windows
    import msvcrt
except ImportError:
    msvcrt = None

logger = logging.getLogger(__name__)

__all__ = ["file_lock", "lock_path", "is_held", "check_timeout", "FileLockedError", "LOCK_SUFFIX"]

#: Suffix of the lock files (hidden files ``.<name>`` + this, next to the locked file).
LOCK_SUFFIX = ".convseq-lock"

#: How often a waiting :func:`file_lock` tries again (s).
_POLL_S = 0.05
#: The signals whose default action (termination) is preceded by clean-up.
_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


class FileLockedError(OSError):
    """Another process holds the file: a :mod:`convseq_neo` run (its lock) or an HDF5 writer.

    Raised before anything was changed. The message says "... is locked by another process ..."
    and, when known, names the holder's host and process id.

    Parameters
    ----------
    message : str
        The whole message (``str(error)``).
    path : str or os.PathLike, optional
        The locked file.
    holder : dict, optional
        What is known about the holder.

    Attributes
    ----------
    filename : str or None
        The locked file.
    holder : dict
        What the lock file says about its holder (``host``, ``pid``, ``since``); empty if unknown.

    Examples
    --------
    >>> err = FileLockedError("'/data/a.nwb' is locked by another process", path="/data/a.nwb", holder={"pid": 7})
    >>> isinstance(err, OSError), err.filename, err.holder["pid"]
    (True, '/data/a.nwb', 7)
    """

    def __init__(self, message: str, *, path: str | os.PathLike | None = None, holder: dict | None = None) -> None:
        super().__init__(message)
        self.filename = None if path is None else str(path)
        self.holder = dict(holder or {})

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def check_timeout(timeout: object, name: str = "timeout") -> float:
    """A lock timeout as seconds: a real number, 0 or more (``math.inf``: wait forever).

    Parameters
    ----------
    timeout : object
        The value to check (``bool`` is refused although it is an ``int``).
    name : str, default "timeout"
        The argument's name, for the error message.

    Returns
    -------
    float

    Raises
    ------
    TypeError
        ``timeout`` is not a real number.
    ValueError
        ``timeout`` is negative or NaN.

    Examples
    --------
    >>> check_timeout(2), check_timeout(float("inf"))
    (2.0, inf)
    >>> check_timeout(-1, "lock_timeout")
    Traceback (most recent call last):
    ...
    ValueError: lock_timeout must be 0 or more seconds (0: do not wait), got -1.0
    """
    if isinstance(timeout, bool) or not isinstance(timeout, numbers.Real):
        raise TypeError(f"{name} must be a number of seconds (0 or more), got {type(timeout).__name__}")
    timeout = float(timeout)
    if math.isnan(timeout) or timeout < 0:
        raise ValueError(f"{name} must be 0 or more seconds (0: do not wait), got {timeout!r}")
    return timeout


# ---------------------------------------------------------------------------------------------
# clean-up on SIGTERM / SIGHUP
# ---------------------------------------------------------------------------------------------
# Process-wide: what to remove / release if a signal is about to kill the process. Plain set
# operations (atomic under the GIL), no threading lock: the handler runs in the main thread and
# could otherwise wait for a lock that the interrupted code holds.
_REMOVE_ON_SIGNAL: set[Path] = set()
_HELD: set[_Lock] = set()
_guard_depth = 0
_previous_handlers: dict[int, object] = {}


def _on_signal(signum: int, frame: FrameType | None) -> None:
    """SIGTERM/SIGHUP while a lock is held: clean up, then behave as before."""
    previous = _previous_handlers.get(signum, signal.SIG_DFL)
    if callable(previous):
        # A Python handler was installed before us: it decides (an exception it raises unwinds
        # through file_lock / safe_write, which remove the copy and release the lock on the way out).
        previous(signum, frame)
        return
    # The default action is to terminate: remove what would be left behind (the files first,
    # while the lock still keeps other runs out), restore, re-deliver.
    for path in list(_REMOVE_ON_SIGNAL):
        try:
            path.unlink(missing_ok=True)
        except OSError:  # pragma: no cover
            pass
    for held in list(_HELD):
        held.release_now()
    for sig, handler in list(_previous_handlers.items()):
        try:
            signal.signal(sig, handler)
        except (ValueError, OSError, TypeError):  # pragma: no cover
            pass
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


@contextmanager
def _signal_guard() -> Iterator[None]:
    """Install :func:`_on_signal` for SIGTERM/SIGHUP (main thread only; nested calls share it)."""
    global _guard_depth
    if threading.current_thread() is not threading.main_thread():
        yield  # signal.signal only works in the main thread: the clean-up is then left to the next run
        return
    if _guard_depth == 0:
        _previous_handlers.clear()
        for sig in _SIGNALS:
            try:
                previous = signal.getsignal(sig)
                if previous is signal.SIG_IGN or previous is None:  # ignored, or set outside Python: leave it
                    continue
                signal.signal(sig, _on_signal)
            except (ValueError, OSError):  # pragma: no cover
                continue
            _previous_handlers[sig] = previous
    _guard_depth += 1
    try:
        yield
    finally:
        _guard_depth -= 1
        if _guard_depth == 0:
            for sig, previous in list(_previous_handlers.items()):
                try:
                    if signal.getsignal(sig) is _on_signal:
                        signal.signal(sig, previous)
                except (ValueError, OSError, TypeError):  # pragma: no cover
                    pass
            _previous_handlers.clear()


@contextmanager
def remove_on_signal(path: Path) -> Iterator[Path]:
    """Remove ``path`` if SIGTERM/SIGHUP kills the process during the block (internal, for ``safe_write``).

    :func:`~convseq_neo.io.safe_write.safe_write` registers its temporary copy here. While the
    block runs in the main thread, a SIGTERM or SIGHUP whose default action (termination) is about
    to happen first removes ``path``, then releases the locks this process holds, then lets the
    signal kill the process. Outside the main thread no handler can be installed (``signal.signal``
    works only there), so a signal then finds ``path`` only while the main thread holds a lock.
    Removing ``path`` when the block ends, normally or by an exception, is the caller's job.

    Parameters
    ----------
    path : pathlib.Path
        The file to remove (it need not exist).

    Yields
    ------
    pathlib.Path
        ``path``.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> tmp = pathlib.Path(tempfile.mkdtemp()) / ".notes.txt.partial"
    >>> with remove_on_signal(tmp):
    ...     _ = tmp.write_text("half written")   # a SIGTERM now would remove it
    ...     tmp.unlink()
    """
    with _signal_guard():
        _REMOVE_ON_SIGNAL.add(path)
        try:
            yield path
        finally:
            _REMOVE_ON_SIGNAL.discard(path)


# ---------------------------------------------------------------------------------------------
# the lock file
# ---------------------------------------------------------------------------------------------
def _resolved(path: str | os.PathLike) -> Path:
    """``path`` with symbolic links followed (the file that is really replaced)."""
    return Path(os.path.realpath(os.fspath(path)))


def lock_path(path: str | os.PathLike) -> Path:
    """The sidecar lock file of ``path``: ``.<name>.convseq-lock`` next to the file links lead to.

    Parameters
    ----------
    path : str or os.PathLike
        The file (it need not exist yet). A symbolic link is followed.

    Returns
    -------
    pathlib.Path

    Examples
    --------
    >>> lock_path("/data/session.nwb").name
    '.session.nwb.convseq-lock'
    """
    target = _resolved(path)
    return target.parent / f".{target.name}{LOCK_SUFFIX}"


def _read_holder(lock_file: Path) -> dict:
    """What ``lock_file`` records about its holder (``host``, ``pid``, ``since``); empty if unreadable."""
    try:
        with open(lock_file, encoding="utf-8") as handle:
            holder = json.loads(handle.read(4096) or "{}")
        return holder if isinstance(holder, dict) else {}
    except (OSError, ValueError):
        return {}


def _describe(holder: dict) -> str:
    """``holder`` for a message: ``pid 12 on host node7 since 2024-...``."""
    parts = []
    if "pid" in holder:
        parts.append(f"pid {holder['pid']}")
    if "host" in holder:
        parts.append(f"on host {holder['host']}")
    if "since" in holder:
        parts.append(f"since {holder['since']}")
    return " ".join(parts) if parts else "holder unknown"


def _locked_error(target: Path, lock_file: Path, timeout: float) -> FileLockedError:
    """The error of a run that did not get the lock on ``target`` within ``timeout``."""
    holder = _read_holder(lock_file)
    waited = f" and stayed locked for {timeout:g} s" if timeout > 0 else ""
    stale = ""
    if fcntl is None and msvcrt is None:  # pragma: no cover - the lock file outlives a killed holder
        stale = " (if that process no longer runs, delete the lock file)"
    return FileLockedError(
        f"'{target}' is locked by another process ({_describe(holder)}; lock file '{lock_file}'){waited}: another "
        "convseq-neo run is updating it. Nothing was changed; wait for that run to finish or give a lock timeout "
        f"(lock_timeout=..., command line: --lock-timeout 60s){stale}", path=target, holder=holder)


def _holder_record() -> bytes:
    """This process as the lock file records it (one JSON line: ``host``, ``pid``, ``since``)."""
    since = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    host = socket.gethostname() or "unknown-host"
    return (json.dumps({"host": host, "pid": os.getpid(), "since": since}) + "\n").encode()


def _same_file(fd: int, path: Path) -> bool:
    """True when ``path`` still names the file open as ``fd`` (a releasing holder removes it)."""
    try:
        on_disk = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (on_disk.st_dev, on_disk.st_ino) == (held.st_dev, held.st_ino)


def _open_lock_file(lock_file: Path) -> tuple[int, bool]:
    """Open (or create) ``lock_file`` to lock it; returns the descriptor and whether this call created the file."""
    cloexec = getattr(os, "O_CLOEXEC", 0)
    while True:
        try:
            return os.open(lock_file, os.O_RDWR | os.O_CREAT | os.O_EXCL | cloexec, 0o666), True
        except FileExistsError:
            cannot_create = None
        except PermissionError as err:  # the directory is not writable; the lock file may exist all the same
            cannot_create = err
        try:
            try:
                return os.open(lock_file, os.O_RDWR | cloexec), False
            except PermissionError:  # another user's lock file (e.g. a killed run's): flock needs no write permission
                return os.open(lock_file, os.O_RDONLY | cloexec), False
        except FileNotFoundError:
            if cannot_create is not None:
                raise cannot_create from None  # no lock file and no right to create one
            # its holder removed it meanwhile: create it


def _try_lock(fd: int) -> bool | None:
    """Try once: True locked, False held by someone else, None the file system cannot lock."""
    if fcntl is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            if err.errno in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES):
                return False
            if err.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                return None
            raise
        return True
    try:  # pragma: no cover - Windows
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    except OSError:  # pragma: no cover
        return False
    return True  # pragma: no cover


class _Lock:
    """One acquired lock: the lock file and the open descriptor that holds it.

    ``fd`` is None where no descriptor holds the lock (an exclusively created lock file, or a
    file system that cannot lock); ``unlink``: remove the lock file on release; ``real``: False
    where the file system cannot lock (the block then runs unlocked).
    """

    def __init__(self, target: Path, lock_file: Path, fd: int | None, unlink: bool, real: bool = True) -> None:
        self.target, self.lock_file, self.fd, self.unlink, self.real = target, lock_file, fd, unlink, real

    def release_now(self) -> None:
        """Remove the lock file (while still holding it) and let go; idempotent."""
        _HELD.discard(self)
        fd, self.fd = self.fd, None
        if self.unlink:
            try:
                if fd is None or _same_file(fd, self.lock_file):
                    self.lock_file.unlink(missing_ok=True)
            except OSError:  # pragma: no cover
                pass
        if fd is not None:
            try:
                if fcntl is None and msvcrt is not None:  # pragma: no cover - Windows
                    os.lseek(fd, 0, os.SEEK_SET)
                    msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
            except OSError:  # pragma: no cover
                pass
            os.close(fd)


def _acquire(target: Path, lock_file: Path, timeout: float) -> _Lock:
    """Lock ``lock_file`` for ``target``, trying every :data:`_POLL_S` s for ``timeout`` s."""
    deadline = time.monotonic() + timeout
    record = _holder_record()
    waiting = False
    while True:
        if fcntl is None and msvcrt is None:  # pragma: no cover - neither: an exclusively created file
            try:
                fd = os.open(lock_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            except FileExistsError:
                fd = None
            if fd is not None:
                os.write(fd, record)
                os.close(fd)
                return _Lock(target, lock_file, None, True)
        else:
            fd, created = _open_lock_file(lock_file)
            try:
                got = _try_lock(fd)
            except BaseException:
                os.close(fd)
                raise
            if got is None:
                os.close(fd)
                if created:  # it serves nothing here: leave no lock file behind
                    lock_file.unlink(missing_ok=True)
                logger.warning("the file system of '%s' does not support file locking: the update goes ahead "
                               "unlocked, so concurrent runs on this file are not excluded", target)
                return _Lock(target, lock_file, None, False, real=False)
            if got:
                if fcntl is not None and not _same_file(fd, lock_file):
                    os.close(fd)  # the holder removed this lock file as we waited: lock the current one
                    continue
                try:
                    os.ftruncate(fd, 0)
                    os.lseek(fd, 0, os.SEEK_SET)
                    os.write(fd, record)
                except OSError:  # opened read-only (another user's lock file): the record stays theirs
                    pass
                return _Lock(target, lock_file, fd, fcntl is not None)
            os.close(fd)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _locked_error(target, lock_file, timeout)
        if not waiting:
            waiting = True
            logger.info("'%s' is locked by another process (%s): waiting up to %g s", target,
                        _describe(_read_holder(lock_file)), timeout)
        time.sleep(min(_POLL_S, remaining))


# ---------------------------------------------------------------------------------------------
# the lock
# ---------------------------------------------------------------------------------------------
#: Per thread: the locks this thread holds, by lock file (re-entry goes ahead at once).
_local = threading.local()


def _held_here() -> dict[Path, _Lock]:
    """This thread's held locks, by (resolved) lock file."""
    return _local.__dict__.setdefault("held", {})


def is_held(lock_file: str | os.PathLike) -> bool:
    """True when this thread really holds the lock of ``lock_file`` (as :func:`file_lock` yields it).

    False when no :func:`file_lock` of this thread holds it, and also inside a :func:`file_lock`
    block that runs unlocked because the file system cannot lock (work that is only safe under
    the lock, such as removing another run's left-overs, is then skipped).

    Parameters
    ----------
    lock_file : str or os.PathLike
        A lock file, as yielded by :func:`file_lock` or returned by :func:`lock_path`.

    Returns
    -------
    bool

    Examples
    --------
    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "notes.txt"
    >>> with file_lock(path) as lock_file:
    ...     print(is_held(lock_file))
    True
    >>> is_held(lock_file)
    False
    """
    lock = _held_here().get(Path(lock_file))
    return lock is not None and lock.real


@contextmanager
def file_lock(path: str | os.PathLike, timeout: float = 0.0) -> Iterator[Path]:
    """Hold the exclusive lock on ``path`` that every :func:`~convseq_neo.io.safe_write.safe_write` of it takes.

    The lock is an advisory ``flock`` on the sidecar file :func:`lock_path` (``.<name>.convseq-lock``
    next to ``path``, created if missing, removed on release), which records this host and
    process id. It is re-entrant within a thread: a :func:`file_lock` or
    :func:`~convseq_neo.io.safe_write.safe_write` of ``path`` inside the block (in the same
    thread) goes ahead at once. Another thread or process waits up to its own timeout. While the
    block runs in the main thread, SIGTERM and SIGHUP release the lock (and remove
    :func:`~convseq_neo.io.safe_write.safe_write`'s copy) before the process dies of the signal.

    Parameters
    ----------
    path : str or os.PathLike
        The file to lock (it need not exist yet). A symbolic link is followed.
    timeout : float, default 0.0
        Seconds to wait for another holder to let go (0: fail at once; ``math.inf``: wait forever).

    Yields
    ------
    pathlib.Path
        The lock file.

    Raises
    ------
    FileLockedError
        Another process (or thread) still holds the lock after ``timeout``; the message says
        "... is locked by another process ..." and names the holder's host and pid.
    TypeError, ValueError
        ``path`` is not a path, or ``timeout`` is not a number of seconds, 0 or more.

    Notes
    -----
    On a file system without ``flock`` support a warning is logged and the block runs unlocked.
    On network file systems ``flock`` may exclude only processes on the same node.

    Examples
    --------
    >>> import pathlib, tempfile, threading
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "notes.txt"
    >>> _ = path.write_text("first line\\n")
    >>> def another_thread(errors):
    ...     try:
    ...         with file_lock(path):
    ...             pass
    ...     except FileLockedError as err:
    ...         errors.append(err)
    >>> errors = []
    >>> with file_lock(path) as lock_file:
    ...     with file_lock(path):                # re-entrant: no waiting for ourselves
    ...         print(lock_file.name, lock_file.exists())
    ...     worker = threading.Thread(target=another_thread, args=(errors,))
    ...     worker.start(); worker.join()
    .notes.txt.convseq-lock True
    >>> "is locked by another process" in str(errors[0]), lock_file.exists()
    (True, False)
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a path (str or os.PathLike), got {type(path).__name__}")
    timeout = check_timeout(timeout)
    target = _resolved(path)
    lock_file = lock_path(target)
    held = _held_here()
    if lock_file in held:  # this thread holds it already: the outermost block releases it
        yield lock_file
        return
    with _signal_guard():
        lock = _acquire(target, lock_file, timeout)
        held[lock_file] = lock
        _HELD.add(lock)
        logger.debug("file_lock: locked '%s' (%s)", target, lock_file)
        try:
            yield lock_file
        finally:
            del held[lock_file]
            lock.release_now()
            logger.debug("file_lock: released '%s'", target)
