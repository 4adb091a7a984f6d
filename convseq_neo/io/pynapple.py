"""pynapple in and out: a ``TsGroup`` as Neo spike trains, occurrences back as a ``Tsd``.

pynapple is optional: this module imports it only inside the functions that build pynapple objects.
:func:`convseq_neo.detect` accepts a pynapple ``TsGroup`` directly: its units become one
:class:`neo.SpikeTrain` each (named ``str(index)``, annotation ``unit_id``), and its
``time_support`` becomes the analysis intervals (intersected with any ``intervals=`` given), so
no filter window and no surrogate crosses from one epoch of the support to the next. pynapple
times are in seconds.

Examples
--------
>>> import numpy as np
>>> import pynapple as nap
>>> group = nap.TsGroup({3: nap.Ts(t=np.array([0.5, 1.5])), 7: nap.Ts(t=np.array([1.0, 4.0]))},
...                     time_support=nap.IntervalSet(start=[0.0, 3.0], end=[2.0, 5.0]))
>>> [train.name for train in to_spiketrains(group)], time_support(group).tolist()
(['3', '7'], [[0.0, 2.0], [3.0, 5.0]])
"""

from __future__ import annotations

import logging

import numpy as np

from convseq_neo.io.intervals import is_pynapple

logger = logging.getLogger(__name__)

__all__ = ["is_tsgroup", "to_spiketrains", "time_support", "to_tsd"]


def is_tsgroup(value) -> bool:
    """Whether ``value`` is a pynapple ``TsGroup`` (checked without importing pynapple)."""
    return is_pynapple(value, "TsGroup")


def _check(group, name: str) -> None:
    if not is_tsgroup(group):
        raise TypeError(f"{name} must be a pynapple TsGroup, got {type(group).__name__}")


def time_support(group, name: str = "spiketrains") -> np.ndarray:
    """The ``time_support`` of a TsGroup as a ``(k, 2)`` float array of ``[start, end)`` seconds."""
    _check(group, name)
    support = group.time_support
    return np.stack([np.asarray(support.start, dtype=float), np.asarray(support.end, dtype=float)], axis=1)


def to_spiketrains(group, name: str = "spiketrains") -> list:
    """One :class:`neo.SpikeTrain` (seconds) per unit of a pynapple ``TsGroup``.

    Parameters
    ----------
    group : pynapple.TsGroup
    name : str, default "spiketrains"
        Argument name for the messages.

    Returns
    -------
    list of neo.SpikeTrain
        In the group's index order, named ``str(index)`` with a ``unit_id`` annotation, all over
        ``[first start, last end)`` of the group's ``time_support`` (the support itself is what
        :func:`time_support` returns; :func:`convseq_neo.detect` looks only inside it).

    Examples
    --------
    See the module's docstring.
    """
    import neo
    import quantities as pq

    _check(group, name)
    keys = list(group.keys())
    if not keys:
        raise ValueError(f"{name} is a TsGroup without units; pass one with at least one unit")
    support = time_support(group, name)
    if support.shape[0] == 0:
        raise ValueError(f"{name} has an empty time_support: there is no time to look in")
    start, stop = float(support[:, 0].min()), float(support[:, 1].max())
    trains = []
    for key in keys:
        times = np.asarray(group[key].t, dtype=float).reshape(-1)
        if times.size and not np.all(np.isfinite(times)):
            raise ValueError(f"{name}[{key!r}] contains NaN or infinite spike times; remove them first")
        times = times[(times >= start) & (times < stop)]  # pynapple may keep a spike on the support's end
        trains.append(neo.SpikeTrain(times, units=pq.s, t_start=start, t_stop=stop, name=str(key),
                                     unit_id=key.item() if isinstance(key, np.generic) else key))
    return trains


def to_tsd(result, segment: int | None = None):
    """The significant occurrences of a :class:`~convseq_neo.result.DetectionResult` as a pynapple ``Tsd``.

    Parameters
    ----------
    result : DetectionResult
        From :func:`convseq_neo.detect`.
    segment : int, optional
        For a result of several segments (a multi-segment Block or sorting): which segment's
        occurrences to return, on that segment's clock. Required then; a result of one segment
        takes None (or 0), as :meth:`DetectionResult.to_epoch
        <convseq_neo.result.DetectionResult.to_epoch>`.

    Returns
    -------
    pynapple.Tsd
        Times: the occurrence centres (s, the recording's clock). Data: the pattern id (int).
        ``time_support``: the intervals that were searched (with ``intervals=`` or a TsGroup's
        support), else the analysis window.

    Raises
    ------
    TypeError
        ``result`` is not a DetectionResult, or ``segment`` is not an int.
    ValueError
        ``segment`` missing for a result of several segments, or out of range.

    Examples
    --------
    >>> tsd = to_tsd(result)
    >>> len(tsd) == len(result.occurrences), bool(np.allclose(tsd.t, result.occurrences["center"]))
    (True, True)
    """
    import pynapple as nap

    from convseq_neo.result import DetectionResult

    if not isinstance(result, DetectionResult):
        raise TypeError(f"result must be a convseq_neo DetectionResult (from detect or find), got "
                        f"{type(result).__name__}")
    occ = result.occurrences
    time_map = getattr(result, "time_map", None)
    segment = result._check_segment(segment, "to_tsd")  # the check of every DetectionResult export
    if segment is not None and "segment" in occ:
        occ = occ[occ["segment"].to_numpy() == segment]
    if time_map is not None:
        pieces = time_map.part == (0 if segment is None else int(segment))
        support = nap.IntervalSet(start=time_map.start_s[pieces], end=time_map.stop_s[pieces])
    else:
        support = nap.IntervalSet(start=float(result.t_start.magnitude), end=float(result.t_stop.magnitude))
    order = np.argsort(occ["center"].to_numpy(float), kind="stable")
    return nap.Tsd(t=occ["center"].to_numpy(float)[order], d=occ["pattern"].to_numpy(np.int64)[order],
                   time_support=support)
