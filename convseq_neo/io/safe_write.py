"""Crash-safe in-place updates of a file: write a checked copy, then swap it in atomically.

:func:`safe_write` is the one place where :mod:`convseq_neo` changes a file on disk (today the
NWB files of :func:`convseq_neo.io.nwb.annotate`). The original is only ever *read*: the writer
works on a temporary copy in the destination's directory, and the copy replaces the
destination with :func:`os.replace`, which is atomic on POSIX and Windows. Whatever happens
(an exception, SIGKILL, a power cut after the fsyncs), the destination is either the original,
byte for byte, or the complete, verified new file.

Locking
    :func:`safe_write` holds the destination's lock (:func:`~convseq_neo.io.file_lock.file_lock`,
    an advisory lock on the sidecar file ``.<name>.convseq-lock``) from before the copy until
    after :func:`os.replace`, so two writers never both start from the same original: the second
    waits up to its timeout and then starts from the first one's result, or fails with
    :class:`~convseq_neo.io.file_lock.FileLockedError` having changed nothing. A caller that reads
    the file first (as :func:`~convseq_neo.io.nwb.annotate` does) holds
    :func:`~convseq_neo.io.file_lock.file_lock` around the read, the work and the
    :func:`safe_write` (the lock is re-entrant within a thread). What the lock does and does not
    exclude (other programs, network file systems) is described in :mod:`convseq_neo.io.file_lock`;
    :func:`~convseq_neo.io.file_lock.file_lock`, :func:`~convseq_neo.io.file_lock.lock_path`,
    :class:`~convseq_neo.io.file_lock.FileLockedError` and ``LOCK_SUFFIX`` can be imported from
    here as well.

Temporary copies
    ``.<name>.<host>.<pid>.<random>.convseq-tmp``, hidden, next to the destination. On SIGTERM
    and SIGHUP (while :func:`safe_write` runs in the main thread) the copy is removed and the lock
    released before the process dies of the signal as it would have. After SIGKILL or a power
    cut a copy can stay behind; the next :func:`safe_write` on the same file removes it once it
    holds the lock, when the copy was made on this host by a process that no longer exists. A
    copy made on another host, or by a live process, is never removed (a copy of another host is
    named in a warning: delete it by hand once no run is active there). On a file system that
    cannot lock, nothing is removed (another run may be writing its copy).

New files
    With ``copy=False`` the temporary file starts empty and the caller's block writes the whole
    destination (:func:`convseq_neo.io.nwb.annotate` does this for ``out=``: it exports a derived
    file, possibly from a remote source, rather than appending to a copy). Everything else is the
    same: lock, verification, ``fsync``, atomic :func:`os.replace`, clean-up.

The stages, in order, each a module-level call (tests kill a child process at each of them):
``shutil.copyfile`` (copy; skipped with ``copy=False``), the caller's block (write), :func:`_verify`,
``os.fsync`` of the copy, :func:`os.replace`, ``os.fsync`` of the directory.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import stat
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from convseq_neo.io.file_lock import (
    LOCK_SUFFIX,
    FileLockedError,
    check_timeout,
    file_lock,
    is_held,
    lock_path,
    remove_on_signal,
)

logger = logging.getLogger(__name__)

# file_lock, lock_path, FileLockedError and LOCK_SUFFIX: re-exported from convseq_neo.io.file_lock, where they live
__all__ = ["safe_write", "file_lock", "lock_path", "FileLockedError", "TMP_SUFFIX", "LOCK_SUFFIX"]

#: Suffix of the temporary copies (hidden files ``.<name>.<host>.<pid>.<random>`` + this, next to the destination).
TMP_SUFFIX = ".convseq-tmp"


# ---------------------------------------------------------------------------------------------
# who made a temporary copy
# ---------------------------------------------------------------------------------------------
def _host() -> str:
    """This machine's name as one file-name token (``[A-Za-z0-9_-]``, at most 64 characters)."""
    name = re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname() or "unknown-host")
    return name[:64] or "unknown-host"


def _pid_alive(pid: int) -> bool:
    """True unless ``pid`` is certainly gone (no such process); on Windows always True."""
    if os.name == "nt":  # pragma: no cover - os.kill(pid, 0) would terminate the process there
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists, owned by someone else
        return True
    return True


# ---------------------------------------------------------------------------------------------
# temporary copies
# ---------------------------------------------------------------------------------------------
def _temporary_pattern(target: Path) -> re.Pattern:
    """The names of ``target``'s temporary copies, with groups ``host``, ``pid`` and ``random``."""
    return re.compile(rf"^\.{re.escape(target.name)}\.(?P<host>[A-Za-z0-9_-]+)\.(?P<pid>[0-9]+)\."
                      rf"(?P<random>[A-Za-z0-9_]+){re.escape(TMP_SUFFIX)}$")


def _remove_stale_temporaries(target: Path) -> list[Path]:
    """Remove ``target``'s temporary copies left by dead processes of this host (call with the lock held)."""
    pattern, host, removed = _temporary_pattern(target), _host(), []
    prefix = f".{target.name}."
    try:
        candidates = [entry for entry in os.scandir(target.parent)
                      if entry.name.startswith(prefix) and entry.name.endswith(TMP_SUFFIX)]
    except OSError:  # pragma: no cover
        return removed
    for entry in candidates:
        path = Path(entry.path)
        match = pattern.match(entry.name)
        if match is None:
            continue  # not ours to judge (an older name without host and pid, or another file's copy)
        if match["host"] != host:
            logger.warning("safe_write: '%s' is a temporary copy made on host %s (pid %s); it is left alone. Delete "
                           "it by hand if no convseq-neo run on %s is writing '%s'", path, match["host"],
                           match["pid"], match["host"], target.name)
            continue
        if _pid_alive(int(match["pid"])):
            continue
        try:
            path.unlink()
        except FileNotFoundError:  # pragma: no cover
            continue
        removed.append(path)
        logger.info("safe_write: removed '%s', a temporary copy left by process %s (no longer running)", path,
                    match["pid"])
    return removed


# ---------------------------------------------------------------------------------------------
# the stages
# ---------------------------------------------------------------------------------------------
def _check_file(path: object, name: str) -> Path:
    """``path`` as a Path, after checking that it is a path (``TypeError``) to an existing file."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name} must be a path (str or os.PathLike), got {type(path).__name__}")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{name}: no such file: '{path}'")
    return path


def _copy(source: Path, tmp: Path) -> None:
    """Copy ``source``'s bytes and permission bits to ``tmp``, which stays writable by its owner."""
    shutil.copyfile(source, tmp)
    shutil.copymode(source, tmp)
    os.chmod(tmp, os.stat(tmp).st_mode | stat.S_IWUSR)


def _umask() -> int:
    """The process's umask: from ``/proc/self/status`` where there is one (no race with other threads),
    else by setting and restoring it."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):  # pragma: no cover - not Linux
        pass
    mask = os.umask(0o022)  # pragma: no cover
    os.umask(mask)  # pragma: no cover
    return mask  # pragma: no cover


def _new_file_mode(source: Path | None, tmp: Path) -> None:
    """Permission bits of a written-from-scratch ``tmp``: ``source``'s (plus owner write), else a new file's."""
    if source is not None:
        shutil.copymode(source, tmp)
        os.chmod(tmp, os.stat(tmp).st_mode | stat.S_IWUSR)
    else:  # mkstemp made it 0o600; a new file gets 0o666 less the umask, as open() would give it
        os.chmod(tmp, 0o666 & ~_umask())


def _verify(tmp: Path, verify: Callable[[Path], object] | None) -> None:
    """Run the caller's check on the written copy; a falsy answer is an error."""
    if verify is not None and not verify(tmp):
        raise RuntimeError(f"the written copy '{tmp}' failed its check; the original was left untouched")


def _fsync(path: Path) -> None:
    """Flush a file (or a directory entry) to disk, where the platform allows it."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. directories on Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


@contextmanager
def safe_write(source: str | os.PathLike | None, dest: str | os.PathLike | None = None, *,
               verify: Callable[[Path], object] | None = None, lock_timeout: float = 0.0,
               copy: bool = True) -> Iterator[Path]:
    """Update a file through a verified temporary copy that atomically replaces the destination.

    On entry the destination is locked (:func:`file_lock`), then ``source`` is copied to a hidden
    temporary file in ``dest``'s directory (same file system, so the final move is atomic) and the
    copy's path is yielded for writing. When the block ends without an exception the copy is
    checked with ``verify``, flushed to disk (``fsync``) and moved over ``dest`` with
    :func:`os.replace`; the directory is then flushed too and the lock released. If anything fails
    (in the block, the copy, the check or the move) the temporary file is removed, the lock
    released, the exception propagates and ``dest`` is left exactly as it was.

    Concurrency guarantee: two :func:`safe_write` calls on one destination never overlap. The
    second waits up to ``lock_timeout`` and then copies the first one's result, or raises
    :class:`FileLockedError` before touching anything. A caller that must also *read* the file
    under the lock (read, compute, write back) holds :func:`file_lock` around all of it; the
    lock is re-entrant within a thread.

    Signals and left-overs: while the call runs in the main thread, SIGTERM and SIGHUP remove the
    temporary copy and release the lock, then the previous handler is restored and the signal
    re-delivered (the process dies of it as it would have; a Python handler installed earlier is
    called instead and decides). An ignored signal stays ignored. Copies left by SIGKILL or a
    crash (``.<name>.<host>.<pid>.<random>.convseq-tmp``) are removed by the next call on the same
    destination when their process is gone and they were made on this host.

    With ``copy=False`` nothing is copied: the temporary file starts empty, the block writes the
    whole new content, and the rest (check, flush, atomic move, clean-up on failure) is the same.

    Parameters
    ----------
    source : str, os.PathLike or None
        The file to start from (only read). ``None`` only with ``copy=False`` and a ``dest``: a
        file written from scratch.
    dest : str or os.PathLike, optional
        Where the result goes (default: ``source``, an in-place update). An existing ``dest`` is
        replaced; its directory must exist and be writable. A symbolic link is followed: the
        file it points to is replaced and the link stays a link. A hard link is not followed:
        ``dest`` becomes a new file, and the file's other names keep the old content (they also
        have lock files of their own).
    verify : callable, optional
        ``verify(tmp_path)`` is called on the written copy before it is moved; a falsy return
        value aborts the update with a ``RuntimeError`` (raise for a more precise message).
    lock_timeout : float, default 0.0
        Seconds to wait for another process holding ``dest``'s lock (0: fail at once; ``math.inf``:
        wait forever).
    copy : bool, default True
        Start the temporary file as a copy of ``source``. ``False``: start it empty (0 bytes); the
        block writes the whole file (``source``, when given, still lends its permission bits).

    Yields
    ------
    pathlib.Path
        The temporary copy (empty with ``copy=False``): open it, write, and close it before the
        block ends. It carries ``source``'s permission bits plus the owner's write bit (without a
        ``source``: those of a new file, ``0o666`` less the umask).

    Raises
    ------
    TypeError
        ``source`` or ``dest`` is not a path, ``copy`` is not a bool, or ``lock_timeout`` is not a
        number.
    ValueError
        ``lock_timeout`` is negative or NaN; ``source`` is None with ``copy=True`` or without ``dest``.
    FileNotFoundError
        ``source`` does not exist, or ``dest``'s directory does not.
    FileLockedError
        Another process holds ``dest``'s lock (after ``lock_timeout``); nothing was changed.
    RuntimeError
        ``verify`` rejected the copy.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "notes.txt"
    >>> _ = path.write_text("first line\\n")
    >>> with safe_write(path, verify=lambda tmp: tmp.read_text().endswith("second line\\n")) as tmp:
    ...     with open(tmp, "a") as handle:
    ...         _ = handle.write("second line\\n")
    >>> path.read_text()
    'first line\\nsecond line\\n'

    A failure inside the block leaves the file as it was, and no temporary file behind:

    >>> with safe_write(path) as tmp:
    ...     raise OSError("disk full")
    Traceback (most recent call last):
    ...
    OSError: disk full
    >>> path.read_text(), [p.name for p in path.parent.iterdir()]
    ('first line\\nsecond line\\n', ['notes.txt'])

    Read, compute and write back under one lock, so that no other run changes the file in between:

    >>> with file_lock(path):
    ...     content = path.read_text()
    ...     with safe_write(path) as tmp:        # re-entrant: no waiting for ourselves
    ...         _ = tmp.write_text(content + "third line\\n")
    >>> path.read_text(), [p.name for p in path.parent.iterdir()]
    ('first line\\nsecond line\\nthird line\\n', ['notes.txt'])

    A new file written from scratch (``copy=False``), here next to the first one:

    >>> with safe_write(None, path.with_name("summary.txt"), copy=False) as tmp:
    ...     assert tmp.read_bytes() == b""          # empty: the block writes everything
    ...     _ = tmp.write_text("3 lines\\n")
    >>> sorted(p.name for p in path.parent.iterdir())
    ['notes.txt', 'summary.txt']
    """
    if not isinstance(copy, bool):
        raise TypeError(f"copy must be True or False, got {type(copy).__name__}")
    if source is None:
        if copy:
            raise ValueError("source is None: pass a file to copy, or copy=False to write a new file")
        if dest is None:
            raise ValueError("source and dest are both None: pass dest, the file to write")
    else:
        source = _check_file(source, "source")
    if dest is None:
        target = source
    elif isinstance(dest, (str, os.PathLike)):
        target = Path(dest)
    else:
        raise TypeError(f"dest must be a path (str or os.PathLike) or None, got {type(dest).__name__}")
    if target.is_symlink():
        target = target.resolve()  # update the file the link points to, and keep the link
    directory = target.parent
    if not directory.is_dir():
        raise FileNotFoundError(f"dest: the directory '{directory}' does not exist")
    lock_timeout = check_timeout(lock_timeout, "lock_timeout")
    # The lock is taken before the copy and released after os.replace (or the clean-up), so two
    # writers never both start from the same original.
    with file_lock(target, timeout=lock_timeout) as lock_file:
        if is_held(lock_file):  # tidy up only under the lock: no other run can be writing a copy now
            _remove_stale_temporaries(target)
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.{_host()}.{os.getpid()}.", suffix=TMP_SUFFIX,
                                    dir=directory)
        os.close(fd)
        tmp = Path(name)
        with remove_on_signal(tmp):
            try:
                if copy:
                    _copy(source, tmp)
                else:
                    _new_file_mode(source, tmp)
                yield tmp
                _verify(tmp, verify)
                _fsync(tmp)
                os.replace(tmp, target)
                _fsync(directory)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
    logger.debug("safe_write: replaced '%s' (%s)", target, f"from '{source}'" if copy else "written anew")
