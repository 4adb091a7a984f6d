"""Does the recording look like what the analysis window and the time units say? Warnings, never errors.

A window that runs far past the end of the recording, or spike times in milliseconds labelled as
seconds, still give a valid raster and a detection finishes; but its answer is about a recording
the user did not mean. :func:`check_recording` looks at the spikes once (``O(spikes)``, before
binning) and warns, with a :class:`RecordingWarning` pointing at the user's call and the same
text in the log (logger ``convseq_neo._plausibility``), when:

- **most of the window is silent**: more than half of the observed time lies in stretches with no
  spike of any unit longer than ``max(1 s, 20 x`` the median population inter-spike interval``)``
  (time outside every unit's observed intervals is not silence);
- **the median firing rate** over the units that fire in the window (spikes per observed second;
  silent units say nothing about the time unit) is below 0.001 Hz or above 1 kHz (the latter when
  the median firing unit has at least 5 spikes): the spike times are probably in another unit than
  the one they carry;
- **the window is longer than one day**.

The analysis is not changed: silent stretches stay in it. Silence such warnings with
``warnings.filterwarnings("ignore", category=RecordingWarning)``.
"""

from __future__ import annotations

import logging
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from convseq_neo.io.intervals import merge_intervals
from convseq_neo.raster import SpikeRaster

logger = logging.getLogger(__name__)

__all__ = ["RecordingWarning", "check_recording", "SILENT_FRACTION", "MIN_SILENCE_S", "SILENCE_ISIS", "MIN_RATE_HZ",
           "MAX_RATE_HZ", "MIN_SPIKES_FOR_RATE", "MAX_WINDOW_S"]

#: Warn when more than this fraction of the observed window is silent.
SILENT_FRACTION = 0.5
#: A silent stretch is at least this long (seconds) ...
MIN_SILENCE_S = 1.0
#: ... and at least this many median population inter-spike intervals.
SILENCE_ISIS = 20
#: Plausible median firing rates (Hz); outside, the time units are suspect.
MIN_RATE_HZ = 1e-3
MAX_RATE_HZ = 1e3
#: A high rate is only judged when the median firing unit has at least this many spikes.
MIN_SPIKES_FOR_RATE = 5
#: Longest plausible window (seconds): one day.
MAX_WINDOW_S = 86_400.0

_PACKAGE_DIR = str(Path(__file__).resolve().parent)


class RecordingWarning(UserWarning):
    """The recording or its analysis window looks implausible (the analysis still runs).

    Raised as a warning by :func:`check_recording`, e.g. for a window that is mostly silent or
    spike times that seem to be in the wrong unit. Filter it like any warning category.

    Examples
    --------
    >>> import warnings
    >>> with warnings.catch_warnings():
    ...     warnings.filterwarnings("ignore", category=RecordingWarning)   # silence them here
    ...     check_recording([[0.5, 1.5]], 0.0, 1e6)                       # a window of 11.6 days
    ('100 % of the window [0, 1e+06) s has no spike at all ...
    >>> issubclass(RecordingWarning, UserWarning)
    True
    """


def check_recording(spikes, t_start_s: float | None = None, t_stop_s: float | None = None,
                    observed_s: Sequence | None = None) -> tuple[str, ...]:
    """Warn (:class:`RecordingWarning`, and the log) when a recording's window or time units look wrong.

    Cheap (one pass over the spikes and one sort of their times); it changes nothing. A window
    without any spike gives no warning (that is an error, raised where the raster is built).

    Parameters
    ----------
    spikes : sequence of array_like, or SpikeRaster
        The spike times of each unit in seconds (one array per unit, any order), or a binned
        raster with a known bin size (each spike at its bin's left edge).
    t_start_s, t_stop_s : float, optional
        The analysis window ``[t_start_s, t_stop_s)`` in seconds; spikes outside are ignored.
        Required for spike times; for a raster, default its own window.
    observed_s : sequence, optional
        When units were observed only part of the time: one entry per unit, ``None`` (the whole
        window) or ``[start, stop)`` intervals in seconds, shape ``(k, 2)``. Spikes outside their
        unit's intervals are ignored, rates are per observed second, and unobserved time is not
        silence. For a raster, default its ``observed`` table.

    Returns
    -------
    tuple of str
        The messages warned (empty when all looks plausible).

    Raises
    ------
    TypeError
        ``spikes`` of another type, or a missing window for spike times.
    ValueError
        ``t_stop_s <= t_start_s``, or ``observed_s`` without one entry per unit.

    Examples
    --------
    >>> import warnings
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> units = [np.sort(rng.uniform(0, 60, 300)) for _ in range(5)]      # 5 Hz over [0, 60) s
    >>> check_recording(units, 0.0, 60.0)
    ()
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     messages = check_recording(units, 0.0, 600.0)                 # a window 10 times too long
    >>> print(messages[0])
    90 % of the window [0, 600) s has no spike at all (longest silent stretch 60.0-600.0 s): check t_start/t_stop; ...
    >>> caught[0].category.__name__
    'RecordingWarning'
    """
    unit_times, weights, t_start_s, t_stop_s, observed_s = _as_units(spikes, t_start_s, t_stop_s, observed_s)
    messages = _findings(unit_times, weights, t_start_s, t_stop_s, observed_s)
    if messages:
        level = _user_stacklevel()
        for message in messages:
            logger.warning("%s", message)
            warnings.warn(message, RecordingWarning, stacklevel=level)
    return tuple(messages)


# ---------------------------------------------------------------------------------------------
# inputs
# ---------------------------------------------------------------------------------------------
def _as_units(spikes, t_start_s, t_stop_s, observed_s):
    """Per-unit times (s), per-unit weights (or None), the window and per-unit observed intervals."""
    weights = None
    if isinstance(spikes, SpikeRaster):
        if spikes.bin_size_s is None:
            raise TypeError("spikes: a SpikeRaster needs a known bin_size_s to be checked")
        t_start_s = spikes.t_start_s if t_start_s is None else t_start_s
        t_stop_s = spikes.t_stop_s if t_stop_s is None else t_stop_s
        cuts = np.searchsorted(spikes.neuron_index, np.arange(1, spikes.n_neurons))
        unit_times = np.split(spikes.bin_to_time(spikes.bin_index), cuts)
        weights = np.split(np.asarray(spikes.counts, dtype=float), cuts)
        if observed_s is None and spikes.observed is not None:
            table = spikes.observed  # sorted by neuron; a neuron without rows was never observed
            seconds = np.stack([spikes.bin_to_time(table[:, 1]), spikes.bin_to_time(table[:, 2])], axis=1)
            observed_s = np.split(seconds, np.searchsorted(table[:, 0], np.arange(1, spikes.n_neurons)))
    elif isinstance(spikes, Sequence) and not isinstance(spikes, (str, bytes)):
        unit_times = [np.asarray(times, dtype=float).reshape(-1) for times in spikes]
    else:
        raise TypeError(f"spikes must be a sequence of spike-time arrays (one per unit) or a SpikeRaster, got "
                        f"{type(spikes).__name__}")
    if t_start_s is None or t_stop_s is None:
        raise TypeError("t_start_s and t_stop_s (seconds) are required for spike times")
    t_start_s, t_stop_s = float(t_start_s), float(t_stop_s)
    if not (np.isfinite(t_start_s) and np.isfinite(t_stop_s)) or t_stop_s <= t_start_s:
        raise ValueError(f"t_stop_s ({t_stop_s:g}) must be finite and greater than t_start_s ({t_start_s:g})")
    if observed_s is not None and len(observed_s) != len(unit_times):
        raise ValueError(f"observed_s must have one entry per unit ({len(unit_times)}), got {len(observed_s)}")
    return unit_times, weights, t_start_s, t_stop_s, observed_s


def _merged(intervals, t_start_s: float, t_stop_s: float) -> np.ndarray:
    """``[start, stop)`` intervals (seconds) clipped to the window, sorted and merged: shape (k, 2)."""
    table = np.asarray(intervals, dtype=float).reshape(-1, 2)
    table = np.clip(table[np.isfinite(table).all(axis=1)], t_start_s, t_stop_s)
    return merge_intervals(table[table[:, 1] > table[:, 0]])


def _inside(times: np.ndarray, intervals: np.ndarray) -> np.ndarray:
    """Whether each time lies in one of the sorted, disjoint ``[start, stop)`` intervals."""
    which = np.searchsorted(intervals[:, 0], times, side="right") - 1
    inside = which >= 0
    inside[inside] = times[inside] < intervals[which[inside], 1]
    return inside


# ---------------------------------------------------------------------------------------------
# the checks
# ---------------------------------------------------------------------------------------------
def _findings(unit_times, weights, t_start_s: float, t_stop_s: float, observed_s) -> list[str]:
    window = f"[{t_start_s:g}, {t_stop_s:g}) s"
    duration = t_stop_s - t_start_s
    kept, counts, seconds, covered = [], [], [], []
    whole = observed_s is None
    for unit, times in enumerate(unit_times):
        keep = (times >= t_start_s) & (times < t_stop_s)
        intervals = None if observed_s is None or observed_s[unit] is None else \
            _merged(observed_s[unit], t_start_s, t_stop_s)
        if intervals is None:
            whole = True
            seconds.append(duration)
        else:
            keep &= _inside(times, intervals)
            covered.append(intervals)
            seconds.append(float((intervals[:, 1] - intervals[:, 0]).sum()))
        kept.append(times[keep])
        counts.append(float(keep.sum()) if weights is None else float(weights[unit][keep].sum()))
    counts_arr, seconds_arr = np.asarray(counts), np.asarray(seconds)
    if counts_arr.sum() == 0:
        return []  # no spike at all: an error for the caller, not a warning
    messages = []
    observed = np.array([[t_start_s, t_stop_s]]) if whole else _merged(np.concatenate(covered), t_start_s, t_stop_s)
    silence = _silence(np.sort(np.concatenate(kept), kind="stable"), observed)  # fast on sorted runs
    if silence is not None:
        fraction, longest, total = silence
        where = "the observed time in the window" if total < duration * (1 - 1e-9) else "the window"
        messages.append(f"{100 * fraction:.0f} % of {where} {window} has no spike at all (longest silent stretch "
                        f"{longest[0]:.1f}-{longest[1]:.1f} s): check t_start/t_stop; silent stretches are kept in "
                        "the analysis")
    active = (counts_arr > 0) & (seconds_arr > 0)  # a silent unit says nothing about the time unit
    if active.any():
        rate = float(np.median(counts_arr[active] / seconds_arr[active]))
        n_units = int(active.sum())
        which = f"the {n_units} units that fire" if n_units > 1 else "the one unit that fires"
        if rate < MIN_RATE_HZ:
            messages.append(f"the median firing rate over {which} in {window} is {rate:.3g} Hz, below "
                            f"{MIN_RATE_HZ:g} Hz: spike times may be in the wrong unit (ms given as s?), or the window "
                            "far longer than the recording; check the trains' time units and t_start/t_stop")
        elif rate > MAX_RATE_HZ and np.median(counts_arr[active]) >= MIN_SPIKES_FOR_RATE:
            messages.append(f"the median firing rate over {which} in {window} is {rate:.3g} Hz, above "
                            f"{MAX_RATE_HZ:g} Hz: spike times may be in the wrong unit (s given as ms?); check the "
                            "trains' time units")
    if duration > MAX_WINDOW_S:
        messages.append(f"the analysis window {window} is {duration / MAX_WINDOW_S:.3g} days long: spike times or "
                        "t_start/t_stop may be in the wrong unit (ms given as s?); check them")
    return messages


def _silence(times: np.ndarray, observed: np.ndarray):
    """(silent fraction, longest silent stretch, observed seconds), or None when not mostly silent.

    ``times`` sorted, each inside ``observed``: the union of the units' observed intervals (sorted,
    disjoint, not touching). A stretch is a gap between consecutive spikes, or between an edge of an
    observed interval and its first or last spike, inside one observed interval; it is silent when
    longer than the threshold.
    """
    total = float((observed[:, 1] - observed[:, 0]).sum())
    if total <= 0:
        return None
    isi = np.diff(times)
    threshold = max(MIN_SILENCE_S, SILENCE_ISIS * float(np.median(isi))) if isi.size else MIN_SILENCE_S
    first = np.searchsorted(times, observed[:, 0], side="left")  # each interval's spikes: times[first:last]
    last = np.searchsorted(times, observed[:, 1], side="left")
    has = last > first
    # between spikes: the diffs whose two spikes share an interval (a diff across intervals is unobserved)
    inner = isi.copy()
    inner[last[has][:-1] - 1] = 0.0  # from the last spike of an interval to the first of the next
    starts = np.where(has, times[np.minimum(first, max(times.size - 1, 0))] if times.size else 0.0, observed[:, 1])
    lead = np.stack([observed[:, 0], starts], axis=1)  # interval start -> its first spike (or its end)
    tail = np.stack([times[last[has] - 1], observed[has, 1]], axis=1)  # last spike -> interval end
    stretches = np.concatenate([lead, tail, np.stack([times[:-1], times[1:]], axis=1)[inner > threshold]])
    lengths = stretches[:, 1] - stretches[:, 0]
    silent = lengths > threshold
    fraction = float(lengths[silent].sum()) / total
    if fraction <= SILENT_FRACTION:
        return None
    longest = int(np.argmax(np.where(silent, lengths, -1.0)))
    return fraction, (float(stretches[longest, 0]), float(stretches[longest, 1])), total


def _user_stacklevel() -> int:
    """``stacklevel`` for a ``warnings.warn`` in the caller of this function: the first frame outside the package."""
    frame = sys._getframe(1)
    level = 1
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back
        level += 1
    return level
