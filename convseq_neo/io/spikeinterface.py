"""SpikeInterface sortings -> Neo spike trains (spikeinterface is optional and never imported here).

:func:`convseq_neo.detect` accepts a ``spikeinterface`` ``BaseSorting`` (e.g. the output of a
sorter, or ``NumpySorting``) and converts it here: one :class:`neo.SpikeTrain` per unit, named
``str(unit_id)`` (annotation ``unit_id``), spike times in seconds from the sorting's own clock
(``sample_index_to_time``: the sampling frequency and the segment's start time, or the registered
recording's time vector).

Each segment's window is ``[t_start, t_stop)`` with ``t_start`` the time of sample 0 and
``t_stop`` one sample after the segment's end (``get_end_time``: the last sample of the
registered recording, or, without a recording, the last spike of the segment; pass
``t_stop`` to :func:`~convseq_neo.detect` when the recording went on after it).
"""

from __future__ import annotations

import logging

import numpy as np

logger = logging.getLogger(__name__)

__all__ = ["is_sorting", "to_spiketrains", "to_block", "segment_window", "check_segment_index"]


def is_sorting(value) -> bool:
    """Whether ``value`` is a spikeinterface ``BaseSorting`` (checked without importing spikeinterface)."""
    return any(cls.__name__ == "BaseSorting" and cls.__module__.split(".")[0] == "spikeinterface"
               for cls in type(value).__mro__)


def _check_sorting(sorting, name: str) -> None:
    if not is_sorting(sorting):
        raise TypeError(f"{name} must be a spikeinterface BaseSorting, got {type(sorting).__name__}")


def check_segment_index(sorting, segment_index, name: str = "segment_index") -> int:
    """``segment_index`` as an int in ``[0, n_segments)`` (``None`` is 0 for a one-segment sorting)."""
    n_segments = int(sorting.get_num_segments())
    if segment_index is None:
        if n_segments != 1:
            raise ValueError(f"{name} is needed: the sorting has {n_segments} segments; pass one in [0, {n_segments})")
        return 0
    if isinstance(segment_index, (bool, np.bool_)) or not isinstance(segment_index, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(segment_index).__name__}")
    if not 0 <= int(segment_index) < n_segments:
        raise ValueError(f"{name} must lie in [0, {n_segments}) for this sorting, got {segment_index}")
    return int(segment_index)


def segment_window(sorting, segment_index: int) -> tuple[float, float]:
    """``(t_start, t_stop)`` in seconds of one segment: sample 0, and one sample after the segment's end."""
    start = float(np.asarray(sorting.sample_index_to_time(0, segment_index=segment_index)))
    end = float(sorting.get_end_time(segment_index=segment_index))
    return start, max(end, start) + 1.0 / float(sorting.get_sampling_frequency())


def to_spiketrains(sorting, segment_index: int | None = None, name: str = "spiketrains") -> list:
    """One :class:`neo.SpikeTrain` (seconds) per unit of one segment of a spikeinterface sorting.

    Parameters
    ----------
    sorting : spikeinterface BaseSorting
    segment_index : int, optional
        The segment; required when the sorting has several.
    name : str, default "spiketrains"
        Argument name for the messages.

    Returns
    -------
    list of neo.SpikeTrain
        In the sorting's unit order, named ``str(unit_id)`` with a ``unit_id`` annotation, over
        :func:`segment_window`.

    Examples
    --------
    >>> import numpy as np
    >>> import spikeinterface.core as si
    >>> sorting = si.NumpySorting.from_samples_and_labels([np.array([100, 250, 300])], [np.array(["a", "b", "a"])],
    ...                                                   sampling_frequency=1000.0)
    >>> [(train.name, train.times.magnitude.tolist()) for train in to_spiketrains(sorting)]
    [('a', [0.1, 0.3]), ('b', [0.25])]
    """
    import neo
    import quantities as pq

    _check_sorting(sorting, name)
    segment = check_segment_index(sorting, segment_index)
    unit_ids = list(sorting.unit_ids)
    if not unit_ids:
        raise ValueError(f"{name} has no unit; pass a sorting with at least one unit")
    start, stop = segment_window(sorting, segment)
    spikes = sorting.to_spike_vector(concatenated=False)[segment]
    samples = np.asarray(spikes["sample_index"])
    units = np.asarray(spikes["unit_index"], dtype=np.int64)
    times = np.asarray(sorting.sample_index_to_time(samples, segment_index=segment), dtype=float).reshape(-1)
    if times.size and times.max() >= stop:  # a spike past the registered recording's end: keep it
        stop = float(times.max()) + 1.0 / float(sorting.get_sampling_frequency())
    order = np.lexsort((times, units))
    times, units = times[order], units[order]
    cuts = np.searchsorted(units, np.arange(len(unit_ids) + 1))
    trains = []
    for index, unit in enumerate(unit_ids):
        unit_times = times[cuts[index]:cuts[index + 1]]
        trains.append(neo.SpikeTrain(unit_times, units=pq.s, t_start=start, t_stop=stop,
                                     name=str(unit), unit_id=unit.item() if isinstance(unit, np.generic) else unit))
    logger.info("spikeinterface sorting, segment %d: %d units, %d spikes, [%g, %g) s", segment, len(unit_ids),
                times.size, start, stop)
    return trains


def to_block(sorting, name: str = "spiketrains"):
    """A :class:`neo.Block` with one Segment (of :func:`to_spiketrains`) per segment of the sorting."""
    import neo

    _check_sorting(sorting, name)
    block = neo.Block(name="spikeinterface sorting")
    for segment in range(int(sorting.get_num_segments())):
        seg = neo.Segment(name=f"segment{segment}", index=segment)
        seg.spiketrains.extend(to_spiketrains(sorting, segment, name))
        block.segments.append(seg)
    return block
