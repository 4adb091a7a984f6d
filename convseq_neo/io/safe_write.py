"""Crash-safe in-place updates of a file: write a checked copy, then swap it in atomically.

:func:`safe_write` is the one place where :mod:`convseq_neo` changes a file on disk (today the
NWB files of :func:`convseq_neo.io.nwb.annotate`). The original is only ever *read*: the writer
works on a temporary copy in the destination's directory, and the copy replaces the
destination with :func:`os.replace`, which is atomic on POSIX and Windows. Whatever happens
(an exception, SIGKILL, a power cut after the fsyncs), the destination is either the original,
byte for byte, or the complete, verified new file. At worst a stray hidden temporary file
(``.<name>.<random>.convseq-tmp``) is left next to it, safe to delete.

The stages, in order, each a module-level call (tests kill a child process at each of them):
``shutil.copyfile`` (copy), the caller's block (write), :func:`_verify`, ``os.fsync`` of the copy,
:func:`os.replace`, ``os.fsync`` of the directory.
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

logger = logging.getLogger(__name__)

__all__ = ["safe_write", "TMP_SUFFIX"]

#: Suffix of the temporary copies (hidden files ``.<name>.<random>`` + this, next to the destination).
TMP_SUFFIX = ".convseq-tmp"


def _check_file(path, name: str) -> Path:
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
def safe_write(source: str | os.PathLike, dest: str | os.PathLike | None = None, *,
               verify: Callable[[Path], object] | None = None) -> Iterator[Path]:
    """Update a file through a verified temporary copy that atomically replaces the destination.

    On entry ``source`` is copied to a hidden temporary file in ``dest``'s directory (same file
    system, so the final move is atomic) and the copy's path is yielded for writing. When the
    block ends without an exception the copy is checked with ``verify``, flushed to disk
    (``fsync``) and moved over ``dest`` with :func:`os.replace`; the directory is then flushed
    too. If anything fails (in the block, the copy, the check or the move) the temporary file is
    removed, the exception propagates and ``dest`` is left exactly as it was.

    Parameters
    ----------
    source : str or os.PathLike
        The file to start from (only read).
    dest : str or os.PathLike, optional
        Where the result goes (default: ``source``, an in-place update). An existing ``dest`` is
        replaced; its directory must exist and be writable. A symbolic link is followed: the
        file it points to is replaced and the link stays a link. A hard link is not followed:
        ``dest`` becomes a new file, and the file's other names keep the old content.
    verify : callable, optional
        ``verify(tmp_path)`` is called on the written copy before it is moved; a falsy return
        value aborts the update with a ``RuntimeError`` (raise for a more precise message).

    Yields
    ------
    pathlib.Path
        The temporary copy: open it, write, and close it before the block ends. It carries
        ``source``'s permission bits plus the owner's write bit.

    Raises
    ------
    TypeError
        ``source`` or ``dest`` is not a path.
    FileNotFoundError
        ``source`` does not exist, or ``dest``'s directory does not.
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
    """
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
    # Locking goes here (next issue): take an exclusive lock on `target` before the copy is made and
    # release it in a `finally` after os.replace or the clean-up below, so that two writers can never
    # both start from the same original and the second silently drop the first one's update.
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=TMP_SUFFIX, dir=directory)
    os.close(fd)
    tmp = Path(name)
    try:
        _copy(source, tmp)
        yield tmp
        _verify(tmp, verify)
        _fsync(tmp)
        os.replace(tmp, target)
        _fsync(directory)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    logger.debug("safe_write: replaced '%s' (from '%s')", target, source)
