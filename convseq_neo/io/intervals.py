"""Where to look: analysis intervals, and the clock of a raster laid out from several of them.

:func:`convseq_neo.detect` takes ``intervals=`` (a :class:`neo.Epoch`, a pynapple ``IntervalSet``
or an ``(n, 2)`` array of ``[start, stop)`` times) and looks for sequences only inside them.
:func:`as_intervals` checks and normalises any of these into a sorted, merged ``(k, 2)`` float
array in seconds; :func:`clip_intervals` fits it to a recording's window.

Laying intervals end to end
---------------------------
A filter window is ``W`` bins wide. To keep every window and every surrogate inside one interval,
the intervals (and the segments of a multi-segment ``neo.Block``) are *laid end to end*: each is
binned on its own grid, starting at its own start, and placed after the previous one with a guard
gap of ``W`` bins in which no neuron is observed (:attr:`~convseq_neo.raster.SpikeRaster.observed`).
No window then reads two intervals (a window covering the last bin of one reaches at most
``W - 1`` bins further, still inside the gap), and the significance test never moves a spike out
of the stretch it was observed in. The raster's clock (the *analysis clock*) starts at the first
interval's start, so a single interval keeps the recording's own times; :class:`TimeMap` maps the
analysis clock back to each interval's (and segment's) own clock.

Examples
--------
>>> import numpy as np
>>> as_intervals(np.array([[5.0, 6.0], [0.0, 2.0], [1.5, 3.0]])).tolist()   # sorted and merged
[[0.0, 3.0], [5.0, 6.0]]
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np

logger = logging.getLogger(__name__)

__all__ = ["as_intervals", "merge_intervals", "clip_intervals", "intersect_intervals", "TimeMap", "is_pynapple"]

_EXPECTED = ("a neo.Epoch, a pynapple IntervalSet, or an (n, 2) array of [start, stop) times (a time Quantity, or "
             "floats in seconds)")


def is_pynapple(value, class_name: str) -> bool:
    """Whether ``value`` is a pynapple ``class_name`` (checked by name: pynapple is not imported)."""
    return any(cls.__name__ == class_name and cls.__module__.split(".")[0] == "pynapple"
               for cls in type(value).__mro__)


def _table(intervals, name: str) -> np.ndarray:
    """Any accepted form -> a float ``(k, 2)`` array in seconds (unchecked values)."""
    import neo
    import quantities as pq

    if isinstance(intervals, neo.Epoch):
        starts = intervals.times.rescale(pq.s).magnitude.astype(float).reshape(-1)
        durations = intervals.durations.rescale(pq.s).magnitude.astype(float).reshape(-1)
        if durations.size == 1 and starts.size != 1:
            durations = np.full(starts.size, float(durations[0]))
        return np.stack([starts, starts + durations], axis=1)
    if is_pynapple(intervals, "IntervalSet"):
        # pynapple's default time unit is the second; start and end are float arrays of it
        return np.stack([np.asarray(intervals.start, dtype=float), np.asarray(intervals.end, dtype=float)], axis=1)
    if isinstance(intervals, pq.Quantity):
        if intervals.dimensionality.simplified != pq.s.dimensionality:
            raise ValueError(f"{name} must have time units (s, ms, ...), got units '{intervals.dimensionality}'")
        intervals = intervals.rescale(pq.s).magnitude
    elif isinstance(intervals, (str, bytes, dict)) or intervals is None:
        raise TypeError(f"{name} must be {_EXPECTED}, got {type(intervals).__name__}")
    try:
        table = np.asarray(intervals, dtype=float)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be {_EXPECTED}, got {type(intervals).__name__}: {err}") from err
    if table.size == 0 and table.ndim <= 2:
        table = table.reshape(0, 2)
    elif table.shape == (2,):
        table = table.reshape(1, 2)
    if table.ndim != 2 or table.shape[1] != 2:
        raise ValueError(f"{name} must be [start, stop) pairs, shape (n, 2), got shape {table.shape}")
    return table


def as_intervals(intervals, name: str = "intervals") -> np.ndarray:
    """Check analysis intervals and return them sorted and merged, in seconds.

    Parameters
    ----------
    intervals : neo.Epoch, pynapple IntervalSet, pq.Quantity or array_like
        ``[start, stop)`` intervals: an Epoch's ``times`` and ``times + durations``; an
        IntervalSet's ``start`` and ``end`` (seconds); an ``(n, 2)`` time Quantity; or an
        ``(n, 2)`` array of floats in seconds (a single ``[start, stop)`` pair is one interval).
    name : str, default "intervals"
        Argument name for the messages.

    Returns
    -------
    numpy.ndarray, shape (k, 2)
        Float seconds, sorted by start; overlapping or touching intervals are merged into one.

    Raises
    ------
    TypeError
        Another type.
    ValueError
        (naming ``name``) No interval, a shape other than ``(n, 2)``, non-time units, a
        non-finite time, or an interval whose stop is not after its start.

    Examples
    --------
    >>> import neo
    >>> import quantities as pq
    >>> epoch = neo.Epoch(times=[0.5, 2.0] * pq.s, durations=[1000.0, 500.0] * pq.ms)
    >>> as_intervals(epoch).tolist()
    [[0.5, 1.5], [2.0, 2.5]]
    >>> as_intervals([[1000.0, 2000.0]] * pq.ms).tolist()
    [[1.0, 2.0]]
    >>> as_intervals([[1.0, 1.0]])
    Traceback (most recent call last):
    ...
    ValueError: intervals[0] is [1, 1) s: every interval needs stop > start
    """
    table = _table(intervals, name)
    if table.shape[0] == 0:
        raise ValueError(f"{name} holds no interval; pass at least one [start, stop) pair (or intervals=None for the "
                         "whole window)")
    if not np.isfinite(table).all():
        bad = int(np.flatnonzero(~np.isfinite(table).all(axis=1))[0])
        raise ValueError(f"{name}[{bad}] is not finite ({table[bad].tolist()}); pass finite [start, stop) times")
    empty = np.flatnonzero(table[:, 1] <= table[:, 0])
    if empty.size:
        bad = int(empty[0])
        raise ValueError(f"{name}[{bad}] is [{table[bad, 0]:g}, {table[bad, 1]:g}) s: every interval needs "
                         "stop > start")
    return merge_intervals(table)


def merge_intervals(table) -> np.ndarray:
    """Sort ``(k, 2)`` ``[start, stop)`` rows and merge those that overlap or touch (the union of the intervals).

    Examples
    --------
    >>> merge_intervals([[5.0, 6.0], [0.0, 2.0], [2.0, 3.0], [0.5, 1.0]]).tolist()
    [[0.0, 3.0], [5.0, 6.0]]
    """
    table = np.asarray(table, dtype=float).reshape(-1, 2)
    if table.shape[0] < 2:
        return table.copy()
    table = table[np.argsort(table[:, 0], kind="stable")]
    reach = np.maximum.accumulate(table[:, 1])
    new = np.r_[True, table[1:, 0] > reach[:-1]]  # an interval starting after everything before it ends
    stops = reach[np.r_[np.flatnonzero(new)[1:] - 1, table.shape[0] - 1]]
    return np.stack([table[new, 0], stops], axis=1)


def intersect_intervals(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The intersection of two sorted, merged ``(k, 2)`` interval arrays (empty pieces dropped).

    Examples
    --------
    >>> import numpy as np
    >>> intersect_intervals(np.array([[0.0, 5.0], [8.0, 10.0]]), np.array([[4.0, 9.0]])).tolist()
    [[4.0, 5.0], [8.0, 9.0]]
    """
    a = np.asarray(a, dtype=float).reshape(-1, 2)
    b = np.asarray(b, dtype=float).reshape(-1, 2)
    out = []
    i = j = 0
    while i < len(a) and j < len(b):
        start, stop = max(a[i, 0], b[j, 0]), min(a[i, 1], b[j, 1])
        if stop > start:
            out.append((start, stop))
        if a[i, 1] <= b[j, 1]:
            i += 1
        else:
            j += 1
    return np.asarray(out, dtype=float).reshape(-1, 2)


def clip_intervals(table: np.ndarray, t_start_s: float, t_stop_s: float, name: str = "intervals", *,
                   warn: bool = True) -> np.ndarray:
    """Clip sorted, merged intervals to the window ``[t_start_s, t_stop_s)``.

    Parts outside the window are cut off (an interval wholly outside is dropped) with a
    :class:`~convseq_neo._plausibility.RecordingWarning` and a log entry (``warn=False``: an INFO
    log entry only). Nothing left inside the window is a ``ValueError`` naming ``name``.

    Examples
    --------
    >>> import numpy as np
    >>> clip_intervals(np.array([[1.0, 2.0], [3.0, 4.0]]), 0.0, 10.0).tolist()
    [[1.0, 2.0], [3.0, 4.0]]
    """
    clipped = intersect_intervals(table, np.array([[t_start_s, t_stop_s]]))
    if clipped.shape[0] == 0:
        raise ValueError(f"{name} ({_describe(table)}) lie outside the analysis window [{t_start_s:g}, {t_stop_s:g}) "
                         "s; pass intervals inside it (in the recording's clock, in seconds)")
    lost = float(np.sum(table[:, 1] - table[:, 0]) - np.sum(clipped[:, 1] - clipped[:, 0]))
    if lost > 1e-12 * max(1.0, abs(t_stop_s)):
        message = (f"{name} reach {lost:g} s outside the analysis window [{t_start_s:g}, {t_stop_s:g}) s: that part "
                   f"is left out ({table.shape[0] - clipped.shape[0]} interval(s) wholly outside)")
        if warn:
            from convseq_neo._plausibility import RecordingWarning, _user_stacklevel

            logger.warning("%s", message)
            warnings.warn(message, RecordingWarning, stacklevel=_user_stacklevel())
        else:
            logger.info("%s", message)
    return clipped


def _describe(table: np.ndarray) -> str:
    shown = ", ".join(f"[{a:g}, {b:g})" for a, b in table[:3])
    return shown + (f" and {table.shape[0] - 3} more" if table.shape[0] > 3 else "") + " s"


@dataclass(frozen=True, eq=False)
class TimeMap:
    """How the analysis clock of a raster laid out from several pieces maps back to the recording.

    Piece ``i`` is the interval ``[start_s[i], stop_s[i])`` of part (segment) ``part[i]``, in that
    part's own clock. It is binned on its own grid from ``start_s[i]`` into ``n_bins[i]`` bins
    that occupy the raster's bins ``first_bin[i] ...`` (``guard_bins`` unobserved bins separate
    consecutive pieces). On the analysis clock, piece ``i`` starts at ``t_start_s + first_bin[i]
    * bin_size_s``.

    Attributes
    ----------
    bin_size_s, t_start_s : float
        Bin width and the raster's ``t_start_s`` (the first piece's start).
    part, first_bin, n_bins : numpy.ndarray of int, shape (P,)
    start_s, stop_s : numpy.ndarray of float, shape (P,)
    guard_bins : int
        Unobserved bins between consecutive pieces.
    n_parts : int
        Number of parts (segments); 1 for intervals of one recording.

    Examples
    --------
    Two intervals of one recording, 100 ms bins, guard gaps of 3 bins:

    >>> import numpy as np
    >>> tmap = TimeMap.layout([0, 0], np.array([[10.0, 11.0], [20.0, 20.5]]), bin_size_s=0.1, guard_bins=3)
    >>> tmap.first_bin.tolist(), tmap.n_bins.tolist(), tmap.total_bins
    ([0, 13], [10, 5], 18)
    >>> piece, times = tmap.to_recording([10.25, 11.1, 11.6])   # the second time is in the guard gap
    >>> piece.tolist(), [round(t, 9) for t in times.tolist()]
    ([0, -1, 1], [10.25, nan, 20.3])
    """

    bin_size_s: float
    t_start_s: float
    part: np.ndarray
    start_s: np.ndarray
    stop_s: np.ndarray
    first_bin: np.ndarray
    n_bins: np.ndarray
    guard_bins: int
    n_parts: int = 1

    @classmethod
    def layout(cls, part, table: np.ndarray, bin_size_s: float, guard_bins: int, n_parts: int | None = None) -> TimeMap:
        """Lay pieces (rows of ``table``, in seconds of their parts' clocks) end to end, in the given order."""
        from convseq_neo.raster import count_bins

        part = np.asarray(part, dtype=np.int64).reshape(-1)
        table = np.asarray(table, dtype=float).reshape(-1, 2)
        n_bins = np.array([count_bins(start, stop, bin_size_s) for start, stop in table], dtype=np.int64)
        first = np.zeros(n_bins.size, dtype=np.int64)
        if n_bins.size > 1:
            first[1:] = np.cumsum(n_bins[:-1] + int(guard_bins))
        return cls(float(bin_size_s), float(table[0, 0]), part, table[:, 0].copy(), table[:, 1].copy(), first, n_bins,
                   int(guard_bins), int(n_parts if n_parts is not None else (part.max() + 1 if part.size else 1)))

    @property
    def n_pieces(self) -> int:
        """Number of pieces (intervals over all parts)."""
        return int(self.part.size)

    @property
    def total_bins(self) -> int:
        """Bins of the laid-out raster, guard gaps included."""
        return int(self.first_bin[-1] + self.n_bins[-1])

    @property
    def piece_start_s(self) -> np.ndarray:
        """Where each piece starts on the analysis clock (s)."""
        return self.t_start_s + self.first_bin * self.bin_size_s

    @property
    def observed_s(self) -> float:
        """Total length of the pieces (s)."""
        return float(np.sum(self.stop_s - self.start_s))

    def to_recording(self, times_s) -> tuple[np.ndarray, np.ndarray]:
        """Analysis-clock times -> (piece, time in that piece's part clock).

        A time in a guard gap, past the end of its piece's interval (in a partial last bin) or
        outside the raster gets piece ``-1`` and time NaN.
        """
        times_s = np.asarray(times_s, dtype=float).reshape(-1)
        starts = self.piece_start_s
        piece = np.searchsorted(starts, times_s, side="right") - 1
        valid = piece >= 0
        offset = np.full(times_s.shape, np.nan)
        offset[valid] = times_s[valid] - starts[piece[valid]]
        lengths = self.stop_s - self.start_s
        inside = valid & (offset >= 0)
        inside[valid] &= offset[valid] < lengths[piece[valid]]
        out = np.full(times_s.shape, np.nan)
        out[inside] = self.start_s[piece[inside]] + offset[inside]
        return np.where(inside, piece, -1), out

    def shift(self, piece) -> np.ndarray:
        """Seconds to add to an analysis-clock time in piece ``piece`` to get its part-clock time."""
        piece = np.asarray(piece, dtype=np.int64)
        return self.start_s[piece] - self.piece_start_s[piece]

    def to_analysis(self, times_s, part: int = 0) -> np.ndarray:
        """Times of part ``part``'s clock -> the analysis clock (NaN outside every piece of that part).

        Examples
        --------
        >>> import numpy as np
        >>> tmap = TimeMap.layout([0, 0], np.array([[10.0, 11.0], [20.0, 20.5]]), bin_size_s=0.1, guard_bins=3)
        >>> [round(t, 9) for t in tmap.to_analysis([10.25, 15.0, 20.3]).tolist()]
        [10.25, nan, 11.6]
        """
        times_s = np.asarray(times_s, dtype=float).reshape(-1)
        out = np.full(times_s.shape, np.nan)
        for piece in np.flatnonzero(self.part == part):
            inside = (times_s >= self.start_s[piece]) & (times_s < self.stop_s[piece])
            out[inside] = times_s[inside] - self.shift(piece)
        return out

    def to_analysis_frame(self, frame):
        """A copy of an occurrence table (``center``, ``onset``, ``offset`` in s) moved to the analysis clock.

        Each row moves by the shift of the piece holding its ``center`` (in the part named by its
        ``segment`` column, or part 0), so its lags are kept: what a figure drawn over the
        laid-out raster needs. Rows whose centre lies in no piece get NaN times.

        Examples
        --------
        >>> import numpy as np
        >>> import pandas as pd
        >>> tmap = TimeMap.layout([0, 0], np.array([[10.0, 11.0], [20.0, 20.5]]), bin_size_s=0.1, guard_bins=3)
        >>> occ = pd.DataFrame({"center": [20.3], "onset": [19.95], "offset": [20.4]})
        >>> tmap.to_analysis_frame(occ).round(6).values.tolist()
        [[11.6, 11.25, 11.7]]
        """
        frame = frame.copy()
        centers = frame["center"].to_numpy(float)
        parts = frame["segment"].to_numpy(np.int64) if "segment" in frame else np.zeros(centers.size, np.int64)
        moved = np.full(centers.size, np.nan)
        for part in np.unique(parts):
            rows = parts == part
            moved[rows] = self.to_analysis(centers[rows], int(part))
        shift = moved - centers
        for column in ("center", "onset", "offset"):
            if column in frame:
                frame[column] = frame[column].to_numpy(float) + shift
        return frame
