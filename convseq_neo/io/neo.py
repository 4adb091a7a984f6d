"""Neo and Elephant inputs -> :class:`~convseq_neo.raster.SpikeRaster`.

Every Neo-side entry point (:func:`convseq_neo.detect`, :meth:`DetectionResult.find`) turns its
input into a :class:`SpikeRaster` here, and only here. Accepted inputs:

- a list (or tuple) of :class:`neo.SpikeTrain` (lazy ``SpikeTrainProxy`` objects are loaded),
- a :class:`neo.core.spiketrainlist.SpikeTrainList` (an array-backed one, e.g. from
  ``SpikeTrainList.from_spike_time_array``, is binned from its flat arrays without building trains),
- a :class:`neo.Segment` (its ``spiketrains``),
- an :class:`elephant.conversion.BinnedSpikeTrain` (its sparse matrix, its own bin size),
- a :class:`SpikeRaster` (returned as is, or sliced to ``[t_start, t_stop)``),
- a :class:`neo.Block`: one segment is that Segment (``segment_index`` picks one of several);
  several segments (trials) are laid end to end (see *Several segments* below),
- a spikeinterface ``BaseSorting`` (:mod:`convseq_neo.io.spikeinterface`: unit ids become the
  names, times come from the sampling frequency; a multi-segment sorting is treated like a
  multi-segment Block, or ``segment_index`` picks one segment),
- a pynapple ``TsGroup`` (:mod:`convseq_neo.io.pynapple`: names from its index; its
  ``time_support`` becomes the analysis intervals).

Binning rules
-------------
One rule, written once in :mod:`convseq_neo.raster` (:meth:`SpikeRaster.from_row_times`, which
every path here calls): bin ``i`` is ``[t_start + i * bin_size, t_start + (i + 1) * bin_size)``;
the number of bins is ``ceil((t_stop - t_start) / bin_size)`` (a partial last bin is kept); a
spike within ``1e-8`` bins below a bin edge (floating-point noise, e.g. ``0.3 s / 100 ms =
2.9999999999999996``) is put in the bin that starts at that edge, as
:class:`elephant.conversion.BinnedSpikeTrain` does. Spikes go straight into the sparse (neuron,
bin, count) triplets: no dense ``N x T`` array is built. Trains in different time units are
rescaled to seconds.

Planning
--------
:func:`plan_raster` is the one place where the time Quantities of a call (``bin_size``,
``t_start``, ``t_stop`` and the filter ``width``) are checked and turned into seconds and bins. It
returns a :class:`RasterPlan`: the validated input, its window and shape (and the width in bins),
cheap to build and not yet binned, so that a caller can check everything else before binning.
:func:`to_raster` is ``plan_raster(...).bin()``. Planning also

- refuses, when a ``width`` is given (a fit is planned), a bin size that gives more bins than a fit
  can hold in the memory available (:func:`convseq_neo._memory.check_fit_memory`: a ``ValueError``
  that says how many bins, how much memory and what to change, instead of a process killed for
  memory);
- warns (:class:`RecordingWarning`, and the log) when the window is mostly silent, the median
  firing rate suggests spike times in the wrong unit, or the window is longer than a day
  (:func:`convseq_neo._plausibility.check_recording`); the analysis runs as asked.

The analysis window is ``[t_start, t_stop)``. By default it is the trains' common bounds; trains
whose bounds differ need an explicit ``t_start`` and ``t_stop``, which then select that window
(a window reaching past a train's own bounds takes it as silent there, with a warning in the log).
Spikes outside the window (including a spike at ``t_stop``, which Neo allows, or a rounding
error below a ``t_stop`` on a bin edge) are left out, and the log (``logging``, INFO, logger
``convseq_neo.raster``) says how many. Empty trains are kept as silent neurons; a
window without any spike is rejected.

Analysis intervals
------------------
``plan_raster(..., intervals=...)`` looks only inside the given ``[start, stop)`` intervals
(:func:`convseq_neo.io.intervals.as_intervals`: a ``neo.Epoch``, a pynapple ``IntervalSet`` or an
``(n, 2)`` array; sorted and merged; parts outside the analysis window are clipped with a
warning). The intervals are laid end to end, each binned on its own grid from its own start,
with a guard gap of ``width`` bins in which no neuron is observed between consecutive ones, so
that no filter window reads two intervals and no surrogate moves a spike from one to another
(:mod:`convseq_neo.io.intervals`). The raster is then on the *analysis clock*, which starts at the
first interval's start; :attr:`RasterPlan.time_map` (a
:class:`~convseq_neo.io.intervals.TimeMap`) maps it back to the recording's clock. Laying out
several intervals needs the ``width``.

Several segments
----------------
A Block (or sorting) with several segments is laid out the same way: each segment's window (its
trains' common bounds, or ``t_start``/``t_stop`` applied on every segment's own clock), cut to
the ``intervals`` when given (in every segment's own clock), becomes one or more pieces, in
segment order, with guard gaps of ``width`` bins. Units are matched across segments by name
(train ``name``, else ``channel_id``/``unit_id`` annotation, else position); every segment must
hold the same units. :attr:`TimeMap.part` says which segment each piece comes from.

Observation intervals
---------------------
A :class:`neo.SpikeTrain` with an ``obs_intervals`` annotation (``[start, stop)`` intervals in
seconds, shape ``(k, 2)``, as :func:`convseq_neo.io.nwb.read_units` attaches) was observed only
then: its row of the raster is observed in the bins those intervals overlap
(:attr:`SpikeRaster.observed`), its spikes outside them are left out, and the significance test
keeps each spike inside the stretch it was observed in. Trains without the annotation are
observed over the whole window.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import neo
import numpy as np
import quantities as pq
from neo.core.spiketrainlist import SpikeTrainList

from convseq_neo._memory import check_fit_memory
from convseq_neo._plausibility import RecordingWarning, check_recording
from convseq_neo._validation import check_time_quantity
from convseq_neo.io.intervals import TimeMap, as_intervals, clip_intervals, intersect_intervals, merge_intervals
from convseq_neo.raster import EDGE_TOLERANCE, SpikeRaster, count_bins

try:  # lazy-loading IOs hand out proxies; they are loaded on use
    from neo.io.proxyobjects import SpikeTrainProxy
except ImportError:  # pragma: no cover - very old Neo
    SpikeTrainProxy = ()

try:
    from elephant.conversion import BinnedSpikeTrain
except ImportError:  # pragma: no cover - elephant is a dependency
    BinnedSpikeTrain = ()

logger = logging.getLogger(__name__)

__all__ = ["to_raster", "plan_raster", "RasterPlan", "as_spiketrains", "width_to_bins", "RecordingWarning",
           "OBS_INTERVALS", "TimeMap"]

#: Relative/absolute tolerance (s) when comparing trains' bounds.
_TIME_TOLERANCE = 1e-9

#: The SpikeTrain annotation that holds a unit's observation intervals (seconds, shape (k, 2)).
OBS_INTERVALS = "obs_intervals"

_INPUT_TYPES = ("a list of neo.SpikeTrain, a SpikeTrainList, a neo.Segment, a neo.Block, an elephant "
                "BinnedSpikeTrain, a SpikeRaster, a spikeinterface BaseSorting or a pynapple TsGroup")


# ---------------------------------------------------------------------------------------------
# public helpers
# ---------------------------------------------------------------------------------------------
def to_raster(spiketrains, bin_size: pq.Quantity | None = None, *, t_start: pq.Quantity | None = None,
              t_stop: pq.Quantity | None = None) -> SpikeRaster:
    """Bin Neo/Elephant spike data into a sparse :class:`SpikeRaster`.

    Parameters
    ----------
    spiketrains : list of neo.SpikeTrain, SpikeTrainList, neo.Segment, BinnedSpikeTrain or SpikeRaster
        The recording; one raster row per train, in the given order.
    bin_size : pq.Quantity, optional
        Bin width (time units). Required for spike trains; for a ``BinnedSpikeTrain`` (or a
        ``SpikeRaster`` that knows its bin size) ``None`` takes its own, and a different value
        raises ``ValueError``.
    t_start, t_stop : pq.Quantity, optional
        The analysis window ``[t_start, t_stop)``. Default: the trains' common bounds. For
        already binned inputs the window must fall on bin edges.

    Returns
    -------
    SpikeRaster
        Rows named after the trains (``name``, else the ``channel_id`` annotation, else the row
        index); ``t_start_s`` is the window start.

    Raises
    ------
    TypeError
        An input of another type, or a float instead of a Quantity.
    ValueError
        Non-time or dimensionless units, a non-positive bin size, ``t_stop <= t_start``, NaN
        spike times, trains with differing bounds without an explicit window, a window without
        spikes, a bin size that contradicts the input's own, or a malformed ``obs_intervals``
        annotation.

    Warns
    -----
    RecordingWarning
        A mostly silent window, a median firing rate that suggests spike times in the wrong unit,
        or a window longer than a day (see :func:`plan_raster`).

    Examples
    --------
    >>> import neo
    >>> import quantities as pq
    >>> trains = [neo.SpikeTrain([0.1, 0.25, 0.9] * pq.s, t_stop=1 * pq.s, name="a"),
    ...           neo.SpikeTrain([120.0, 130.0] * pq.ms, t_stop=1000 * pq.ms, name="b"),
    ...           neo.SpikeTrain([] * pq.s, t_stop=1 * pq.s, name="silent")]
    >>> raster = to_raster(trains, bin_size=100 * pq.ms)
    >>> raster.shape, raster.unit_names
    ((3, 10), ('a', 'b', 'silent'))
    >>> raster.to_dense()
    array([[0, 1, 1, 0, 0, 0, 0, 0, 0, 1],
           [0, 2, 0, 0, 0, 0, 0, 0, 0, 0],
           [0, 0, 0, 0, 0, 0, 0, 0, 0, 0]])
    >>> to_raster(trains, bin_size=100 * pq.ms, t_start=0.5 * pq.s, t_stop=1 * pq.s).shape
    (3, 5)
    """
    return plan_raster(spiketrains, bin_size, t_start=t_start, t_stop=t_stop).bin()


def as_spiketrains(spiketrains, name: str = "spiketrains") -> list[neo.SpikeTrain]:
    """The trains of a list of ``neo.SpikeTrain``, a ``SpikeTrainList`` or a ``neo.Segment`` as a list.

    Proxies are loaded. Raises ``TypeError`` for anything else (binned inputs hold no trains).
    """
    if isinstance(spiketrains, neo.Segment):
        spiketrains = spiketrains.spiketrains
    if isinstance(spiketrains, (neo.SpikeTrain, SpikeTrainProxy)):
        raise TypeError(f"{name} must be a list of neo.SpikeTrain, got a single SpikeTrain: wrap it in a list")
    if not isinstance(spiketrains, (Sequence, SpikeTrainList)) or isinstance(spiketrains, (str, bytes)):
        raise TypeError(f"{name} must be a list of neo.SpikeTrain, a SpikeTrainList or a neo.Segment, "
                        f"got {type(spiketrains).__name__}")
    trains = []
    for index, train in enumerate(spiketrains):
        if SpikeTrainProxy and isinstance(train, SpikeTrainProxy):
            train = train.load()
        if not isinstance(train, neo.SpikeTrain):
            raise TypeError(f"{name}[{index}] must be a neo.SpikeTrain, got {type(train).__name__}")
        trains.append(train)
    return trains


def width_to_bins(width_s: float, bin_size_s: float, n_bins: int, name: str = "width") -> int:
    """A window length in seconds as a whole number of bins (rounded), checked against the raster.

    :func:`plan_raster` calls it for its ``width``; use that rather than this.

    Parameters
    ----------
    width_s, bin_size_s : float
        The window length and the bin width, in seconds.
    n_bins : int
        Number of bins of the analysis window.
    name : str, default "width"
        Argument name for the messages.

    Returns
    -------
    int
        ``round(width_s / bin_size_s)`` (halves round up).

    Raises
    ------
    ValueError
        (naming ``name``) when it is shorter than 2 bins or longer than ``n_bins``.

    Examples
    --------
    >>> width_to_bins(0.3, 0.005, 1000)
    60
    """
    exact = width_s / bin_size_s
    width_bins = int(np.floor(exact + 0.5 + EDGE_TOLERANCE))
    if width_bins < 2:
        raise ValueError(f"{name} ({width_s * 1e3:g} ms) is shorter than 2 bins of {bin_size_s * 1e3:g} ms; pass a "
                         f"{name} of at least {2 * bin_size_s * 1e3:g} ms (typically 0.1-1 s: the longest sequence "
                         "to look for) or a smaller bin_size")
    if width_bins > n_bins:
        raise ValueError(f"{name} ({width_s:g} s = {width_bins} bins) is longer than the analysis window "
                         f"({n_bins} bins of {bin_size_s * 1e3:g} ms = {n_bins * bin_size_s:g} s); pass a shorter "
                         f"{name} or a longer window (t_start, t_stop)")
    if abs(exact - width_bins) > 1e-6:
        logger.info("%s of %g s is not a whole number of %g s bins: using %d bins (%g s)", name, width_s, bin_size_s,
                    width_bins, width_bins * bin_size_s)
    return width_bins


# ---------------------------------------------------------------------------------------------
# validation first, binning second
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class RasterPlan:
    """A validated input and its window, ready to be binned (made by :func:`plan_raster`).

    Attributes
    ----------
    bin_size_s, t_start_s, t_stop_s : float
        Bin width and analysis window in seconds.
    n_neurons, n_bins : int
        Shape of the raster :meth:`bin` will return.
    width_bins : int or None
        The ``width`` given to :func:`plan_raster` as a whole number of bins (None without one).
    n_spikes : int or None
        Spikes (non-empty cells for a binned input) in the input, at most those that will be
        binned (the window is not applied yet); None when unknown.
    time_map : TimeMap or None
        For intervals or several segments laid end to end: how the raster's (analysis) clock maps
        back to the recording's (:class:`~convseq_neo.io.intervals.TimeMap`); None when the raster
        is on the recording's clock.
    source : object
        What a :class:`~convseq_neo.result.DetectionResult` should keep as the input's spike trains:
        the input itself, Neo trains converted from a sorting or TsGroup, the one Segment of a
        Block, or None for several segments (no single list of trains).

    Examples
    --------
    >>> import neo
    >>> import quantities as pq
    >>> plan = plan_raster([neo.SpikeTrain([0.3, 0.7] * pq.s, t_stop=1 * pq.s)], 100 * pq.ms)
    >>> plan.n_bins, plan.t_stop_s
    (10, 1.0)
    >>> plan.bin().bin_index.tolist()
    [3, 7]
    """

    bin_size_s: float
    t_start_s: float
    t_stop_s: float
    n_neurons: int
    n_bins: int
    _bin: Callable[[], SpikeRaster] = field(repr=False)
    width_bins: int | None = None
    n_spikes: int | None = None
    #: () -> (per-unit spike times in seconds, or a SpikeRaster; per-unit observed intervals or None):
    #: what :func:`check_recording` reads.
    _summary: Callable[[], tuple] | None = field(default=None, repr=False)
    time_map: TimeMap | None = field(default=None, repr=False)
    source: object = field(default=None, repr=False)

    def bin(self) -> SpikeRaster:
        """Build the raster (the only step whose cost grows with the number of spikes beyond a scan).

        Raises ``ValueError`` when the window holds no spike.
        """
        raster = self._bin()
        if raster.nnz == 0:
            raise ValueError(f"spiketrains hold no spike in the analysis window [{self.t_start_s:g}, "
                             f"{self.t_stop_s:g}) s: there is nothing to detect; pass another window "
                             "(t_start, t_stop) or other trains")
        return raster


def plan_raster(spiketrains, bin_size: pq.Quantity | None = None, *, t_start: pq.Quantity | None = None,
                t_stop: pq.Quantity | None = None, width: pq.Quantity | None = None,
                name: str = "spiketrains", n_patterns: int = 1, n_init: int = 2, n_folds: int = 5,
                n_surrogates: int = 200, intervals=None, segment_index: int | None = None) -> RasterPlan:
    """Check an input and its time Quantities, and plan its raster without binning it yet.

    The one place where ``bin_size``, ``t_start``, ``t_stop`` and ``width`` become seconds and
    bins, for every caller (:func:`to_raster`, :func:`convseq_neo.detect`,
    :meth:`DetectionResult.find`, :func:`~convseq_neo.analysis.replication.held_out_replication`).
    The Quantities are checked first, then the input (its type, its trains' bounds, NaN spike
    times, ``obs_intervals`` annotations; lazy proxies are loaded); nothing is binned until
    :meth:`RasterPlan.bin`. With a ``width`` (a fit is planned), a fit of that many bins must fit
    in the memory available now (:func:`convseq_neo._memory.check_fit_memory`, from the sizes
    alone). Last, the spikes are read once for implausible windows and time units
    (:func:`convseq_neo._plausibility.check_recording`), which warn.

    Parameters
    ----------
    spiketrains : list of neo.SpikeTrain, SpikeTrainList, neo.Segment, BinnedSpikeTrain or SpikeRaster
        The recording (as for :func:`to_raster`).
    bin_size : pq.Quantity, optional
        Bin width; required for spike trains, ``None`` takes a binned input's own.
    t_start, t_stop : pq.Quantity, optional
        The analysis window ``[t_start, t_stop)`` (default: the trains' common bounds).
    width : pq.Quantity, optional
        A filter window to express in whole bins of this raster (:attr:`RasterPlan.width_bins`):
        rounded, at least 2 bins and at most the window.
    name : str, default "spiketrains"
        Name of the input in messages.
    n_patterns, n_init, n_folds, n_surrogates : int, default 1, 2, 5, 200
        The planned fit's :class:`~convseq_neo.core.estimator.ConvSeq` parameters, for the memory
        check (only with a ``width``).
    intervals : neo.Epoch, pynapple IntervalSet, pq.Quantity or array_like, optional
        Look only inside these ``[start, stop)`` intervals (see *Analysis intervals* in the module
        docstring); ``None``: the whole window.
    segment_index : int, optional
        For a Block or a spikeinterface sorting: the one segment to use. Default: its only
        segment, or all of them laid end to end.

    Returns
    -------
    RasterPlan

    Raises
    ------
    TypeError, ValueError
        As :func:`to_raster`; ``ValueError`` also for a ``width`` shorter than 2 bins or longer
        than the window, or (with a ``width``) a bin size that gives more bins than a fit can
        hold in the available memory (naming ``bin_size``, the number of bins, the memory needed
        and available), and ``TypeError`` for a ``width`` that is not a Quantity or a fit
        parameter that is not an int. A window without spikes is found by :meth:`RasterPlan.bin`.
        Bad ``intervals`` (none, ``stop <= start``, not finite, wrong shape or units, none inside
        the window) are a ``ValueError`` naming ``intervals``; intervals on a binned input, or
        several pieces without a ``width``, a ``TypeError``; a ``segment_index`` out of range or
        for an input without segments, a ``ValueError`` naming it; segments with different units,
        a ``ValueError``.

    Warns
    -----
    RecordingWarning
        More than half of the observed window in stretches without any spike (longer than
        ``max(1 s, 20 x`` the median population inter-spike interval``)``), a median firing rate
        over the units that fire below 0.001 Hz or above 1 kHz, or a window longer than one day.
        Also logged (see :mod:`convseq_neo._plausibility`).

    Examples
    --------
    >>> import neo
    >>> import quantities as pq
    >>> trains = [neo.SpikeTrain([0.1, 0.25, 0.9] * pq.s, t_stop=1 * pq.s),
    ...           neo.SpikeTrain([120.0, 130.0] * pq.ms, t_stop=1000 * pq.ms)]
    >>> plan = plan_raster(trains, 5 * pq.ms, width=200 * pq.ms)
    >>> plan.n_neurons, plan.n_bins, plan.width_bins
    (2, 200, 40)
    >>> plan.bin().shape
    (2, 200)
    """
    bin_size_s = _optional_seconds(bin_size, "bin_size", positive=True)
    t_start_s = _optional_seconds(t_start, "t_start")
    t_stop_s = _optional_seconds(t_stop, "t_stop")
    width_s = _optional_seconds(width, "width", positive=True)
    table = None if intervals is None else as_intervals(intervals, "intervals")
    single, parts, support = _resolve(spiketrains, segment_index, name)
    if parts is None and table is None and support is None:
        plan = replace(_plan(single, bin_size_s, t_start_s, t_stop_s, name), source=single)
        if width_s is not None:
            plan = replace(plan, width_bins=width_to_bins(width_s, plan.bin_size_s, plan.n_bins))
    else:
        if parts is None and (isinstance(single, SpikeRaster) or (BinnedSpikeTrain and
                                                                  isinstance(single, BinnedSpikeTrain))):
            raise TypeError("intervals need spike times: pass spike trains (a list, a Segment, a Block, a sorting or a "
                            "TsGroup), not a binned input, or slice the binned input yourself")
        plan = _plan_pieces(parts if parts is not None else [single], bin_size_s, t_start_s, t_stop_s, width_s, table,
                            support, name)
        plan = replace(plan, source=single if parts is None else None)
    if width_s is not None:
        check_fit_memory(plan.n_neurons, plan.n_bins, plan.width_bins, n_patterns, n_init, n_folds,
                         n_surrogates=n_surrogates, n_spikes=plan.n_spikes, bin_size_s=plan.bin_size_s)
    if plan._summary is not None:
        spikes, observed_s = plan._summary()
        check_recording(spikes, plan.t_start_s, plan.t_stop_s, observed_s)
    return plan


def _plan(spiketrains, bin_size_s: float | None, t_start_s: float | None, t_stop_s: float | None,
          name: str) -> RasterPlan:
    """:func:`plan_raster` on checked seconds (or None)."""
    if t_start_s is not None and t_stop_s is not None and t_stop_s <= t_start_s:
        raise ValueError(f"t_stop ({t_stop_s:g} s) must be greater than t_start ({t_start_s:g} s); pass a "
                         "non-empty window")
    if isinstance(spiketrains, SpikeRaster):
        return _plan_binned(spiketrains, bin_size_s, t_start_s, t_stop_s, name)
    if BinnedSpikeTrain and isinstance(spiketrains, BinnedSpikeTrain):
        own_bin = float(spiketrains.bin_size.rescale(pq.s).magnitude)
        start = float(spiketrains.t_start.rescale(pq.s).magnitude)
        _check_own_bin_size(bin_size_s, own_bin, "BinnedSpikeTrain")
        raster = SpikeRaster.from_scipy(spiketrains.sparse_matrix, bin_size_s=own_bin, t_start_s=start)
        return _plan_binned(raster, bin_size_s, t_start_s, t_stop_s, name, what="BinnedSpikeTrain")
    if isinstance(spiketrains, neo.Block):
        raise TypeError(f"{name} must be {_INPUT_TYPES}, got a neo.Block: pass one of its segments, e.g. "
                        "block.segments[0]")
    if isinstance(spiketrains, SpikeTrainList) and _array_backed(spiketrains):
        return _plan_multiplexed(spiketrains, bin_size_s, t_start_s, t_stop_s, name)
    if not isinstance(spiketrains, (neo.Segment, neo.SpikeTrain, Sequence, SpikeTrainList)) or \
            isinstance(spiketrains, (str, bytes)):
        raise TypeError(f"{name} must be {_INPUT_TYPES}, got {type(spiketrains).__name__}")
    trains = as_spiketrains(spiketrains, name)
    if not trains:
        raise ValueError(f"{name} holds no spike train; pass at least one neo.SpikeTrain")
    return _plan_trains(trains, bin_size_s, t_start_s, t_stop_s, name)


def _optional_seconds(value, name: str, *, positive: bool = False) -> float | None:
    checked = check_time_quantity(value, name, allow_none=True, positive=positive)
    return None if checked is None else float(checked.magnitude)


def _require_bin_size(bin_size_s: float | None) -> float:
    if bin_size_s is None:
        raise TypeError("bin_size is required for spike trains: pass a pq.Quantity such as 5 * pq.ms (typically "
                        "1-10 ms)")
    return bin_size_s


def _seconds_per_unit(units_list) -> np.ndarray:
    """Seconds in one unit of each entry (each distinct unit is converted once: rescaling is slow)."""
    cache: dict[str, float] = {}
    factors = np.empty(len(units_list))
    for index, units in enumerate(units_list):
        key = units.dimensionality.string
        if key not in cache:
            cache[key] = float(pq.Quantity(1.0, units.dimensionality).rescale(pq.s).magnitude)
        factors[index] = cache[key]
    return factors


def _same(values: np.ndarray) -> bool:
    return bool(np.all(np.isclose(values, values[0], rtol=_TIME_TOLERANCE, atol=_TIME_TOLERANCE)))


def _window(starts: np.ndarray, stops: np.ndarray, t_start_s, t_stop_s, name: str) -> tuple[float, float]:
    """The analysis window from the trains' bounds and the explicit ones (seconds)."""
    if t_start_s is None:
        if not _same(starts):
            raise ValueError(f"the {name} start at different times ({starts.min():g} to {starts.max():g} s); pass "
                             "an explicit t_start and t_stop (pq.Quantity) to choose the analysis window")
        t_start_s = float(starts[0])
    if t_stop_s is None:
        if not _same(stops):
            raise ValueError(f"the {name} stop at different times ({stops.min():g} to {stops.max():g} s); pass "
                             "an explicit t_start and t_stop (pq.Quantity) to choose the analysis window")
        t_stop_s = float(stops[0])
    if t_stop_s <= t_start_s:
        raise ValueError(f"t_stop ({t_stop_s:g} s) must be greater than t_start ({t_start_s:g} s); pass a "
                         "non-empty window")
    uncovered = (starts > t_start_s + _TIME_TOLERANCE) | (stops < t_stop_s - _TIME_TOLERANCE)
    if np.any(uncovered):
        logger.warning("%d of %d trains do not cover the window [%g, %g) s; they are taken as silent outside their "
                       "own bounds", int(uncovered.sum()), starts.size, t_start_s, t_stop_s)
    return float(t_start_s), float(t_stop_s)


def _check_bin_vs_window(bin_size_s: float, start_s: float, stop_s: float) -> None:
    if (stop_s - start_s) / bin_size_s < 1.0 - EDGE_TOLERANCE:  # one whole bin, up to floating-point noise
        raise ValueError(f"bin_size ({bin_size_s:g} s) is longer than the analysis window ({stop_s - start_s:g} s); "
                         "pass a smaller bin_size (typically 1-10 ms)")


def _train_name(train: neo.SpikeTrain, index: int) -> str:
    if train.name is not None:
        return str(train.name)
    for key in ("channel_id", "unit_id", "id"):
        if key in train.annotations:
            return str(train.annotations[key])
    return str(index)


@dataclass(frozen=True, eq=False)
class _Trains:
    """Checked spike trains of one recording (or segment): names, window, observed intervals, seconds."""

    trains: list
    factors: np.ndarray
    names: tuple
    start_s: float
    stop_s: float
    observed_s: list | None

    @property
    def sizes(self) -> np.ndarray:
        return np.array([train.size for train in self.trains], dtype=np.int64)

    def seconds(self) -> list[np.ndarray]:
        return [np.asarray(train.magnitude, dtype=float).reshape(-1) * factor
                for train, factor in zip(self.trains, self.factors)]

    def flat(self) -> tuple[np.ndarray, np.ndarray]:
        """All spike times (s) and their rows."""
        sizes = self.sizes
        times = np.concatenate(self.seconds()) if sizes.sum() else np.zeros(0)
        return times, np.repeat(np.arange(len(self.trains), dtype=np.int64), sizes)


def _check_trains(trains: list[neo.SpikeTrain], bin_size_s, t_start_s, t_stop_s, name: str) -> _Trains:
    factors = _seconds_per_unit([train.units for train in trains])
    starts = np.array([float(train.t_start.magnitude) for train in trains]) * factors
    stops = np.array([float(train.t_stop.magnitude) for train in trains]) * factors
    for label, values in (("t_start", starts), ("t_stop", stops)):
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raise ValueError(f"{name}[{bad[0]}] has a non-finite {label}; give every train finite bounds")
    for index, train in enumerate(trains):
        if train.size and not np.all(np.isfinite(train.magnitude)):
            raise ValueError(f"{name}[{index}] contains NaN or infinite spike times; remove them first")
    observed_s = _observation_intervals(trains, name)
    bin_size_s = _require_bin_size(bin_size_s)
    start_s, stop_s = _window(starts, stops, t_start_s, t_stop_s, name)
    _check_bin_vs_window(bin_size_s, start_s, stop_s)
    names = tuple(_train_name(train, index) for index, train in enumerate(trains))
    return _Trains(trains, factors, names, start_s, stop_s, observed_s)


def _plan_trains(trains: list[neo.SpikeTrain], bin_size_s, t_start_s, t_stop_s, name: str) -> RasterPlan:
    checked = _check_trains(trains, bin_size_s, t_start_s, t_stop_s, name)
    start_s, stop_s, names, observed_s = checked.start_s, checked.stop_s, checked.names, checked.observed_s

    def build() -> SpikeRaster:
        times, neuron = checked.flat()
        return SpikeRaster.from_row_times(times, neuron, len(trains), bin_size_s, start_s, stop_s, unit_names=names,
                                          observed_s=observed_s)

    return RasterPlan(bin_size_s, start_s, stop_s, len(trains), count_bins(start_s, stop_s, bin_size_s), build,
                      n_spikes=int(checked.sizes.sum()), _summary=lambda: (checked.seconds(), observed_s))


# ---------------------------------------------------------------------------------------------
# other inputs: Blocks, spikeinterface sortings, pynapple TsGroups
# ---------------------------------------------------------------------------------------------
def _resolve(spiketrains, segment_index, name: str) -> tuple[object, list | None, np.ndarray | None]:
    """``(single input, None, support)`` for one recording, or ``(None, [trains per segment], None)`` for several.

    Converts spikeinterface sortings and pynapple TsGroups (imported lazily, inside their
    adapters) to Neo trains and picks a Block's segment; anything else is returned as is.
    """
    from convseq_neo.io import pynapple as nap_io
    from convseq_neo.io import spikeinterface as si_io

    if si_io.is_sorting(spiketrains):
        n_segments = int(spiketrains.get_num_segments())
        if segment_index is None and n_segments > 1:
            return None, [si_io.to_spiketrains(spiketrains, index, name) for index in range(n_segments)], None
        return si_io.to_spiketrains(spiketrains, segment_index, name), None, None
    if nap_io.is_tsgroup(spiketrains):
        _no_segments(segment_index, "a pynapple TsGroup")
        return nap_io.to_spiketrains(spiketrains, name), None, nap_io.time_support(spiketrains, name)
    if isinstance(spiketrains, neo.Block):
        segments = list(spiketrains.segments)
        if not segments:
            raise TypeError(f"{name} must be {_INPUT_TYPES}, got a neo.Block without segments: add segments holding "
                            "the spike trains")
        if segment_index is not None:
            if isinstance(segment_index, (bool, np.bool_)) or not isinstance(segment_index, (int, np.integer)):
                raise TypeError(f"segment_index must be an int, got {type(segment_index).__name__}")
            if not 0 <= int(segment_index) < len(segments):
                raise ValueError(f"segment_index must lie in [0, {len(segments)}) for this Block, got {segment_index}")
            return segments[int(segment_index)], None, None
        if len(segments) == 1:
            return segments[0], None, None
        return None, [as_spiketrains(segment, f"{name}.segments[{index}]") for index, segment in enumerate(segments)], \
            None
    _no_segments(segment_index, f"a {type(spiketrains).__name__}")
    return spiketrains, None, None


def _no_segments(segment_index, what: str) -> None:
    if segment_index is not None:
        raise ValueError(f"segment_index applies to a neo.Block or a spikeinterface sorting, not to {what}; leave it "
                         "None")


def _same_units(parts: list[_Trains], name: str) -> list[_Trains]:
    """Every segment's trains in the first segment's unit order (matched by name)."""
    names = parts[0].names
    lookup = {unit: row for row, unit in enumerate(names)}
    if len(lookup) != len(names):
        raise ValueError(f"{name}: the first segment repeats a unit name; give every train a distinct name")
    ordered = [parts[0]]
    for index, part in enumerate(parts[1:], start=1):
        if part.names == names:
            ordered.append(part)
            continue
        if len(part.names) != len(names) or set(part.names) != set(names):
            missing = sorted(set(names) ^ set(part.names))[:5]
            raise ValueError(f"{name}: segment {index} holds other units than segment 0 ({len(part.names)} against "
                             f"{len(names)} trains; differing names: {missing}); every segment must hold the same "
                             "units, matched by train name")
        order = [dict(zip(part.names, range(len(part.names))))[unit] for unit in names]
        observed = None if part.observed_s is None else [part.observed_s[row] for row in order]
        ordered.append(_Trains([part.trains[row] for row in order], part.factors[order], names, part.start_s,
                               part.stop_s, observed))
    return ordered


def _plan_pieces(parts: list, bin_size_s, t_start_s, t_stop_s, width_s, table: np.ndarray | None,
                 support: np.ndarray | None, name: str) -> RasterPlan:
    """Intervals and/or several segments laid end to end with guard gaps of ``width`` bins (module docstring)."""
    checked = []
    for index, part in enumerate(parts):
        where = name if len(parts) == 1 else f"{name}.segments[{index}]"
        trains = part if isinstance(part, list) else as_spiketrains(part, where)
        if not trains:
            raise ValueError(f"{where} holds no spike train; pass at least one neo.SpikeTrain")
        checked.append(_check_trains(trains, bin_size_s, t_start_s, t_stop_s, where))
    checked = _same_units(checked, name)
    bin_size_s = float(bin_size_s)
    piece_part, piece_table = [], []
    for index, part in enumerate(checked):
        pieces = np.array([[part.start_s, part.stop_s]])
        if support is not None:
            pieces = intersect_intervals(support, pieces)
        if table is not None:
            if len(checked) == 1:
                pieces = clip_intervals(table, part.start_s, part.stop_s, "intervals") if support is None else \
                    intersect_intervals(pieces, clip_intervals(table, part.start_s, part.stop_s, "intervals"))
            else:  # the intervals apply on every segment's own clock; each segment keeps what lies in its window
                pieces = intersect_intervals(pieces, table)
        piece_part.extend([index] * len(pieces))
        piece_table.append(pieces)
    pieces = np.concatenate(piece_table).reshape(-1, 2)
    if table is not None and len(checked) > 1:
        windows = np.array([[part.start_s, part.stop_s] for part in checked])
        nowhere = [row for row in table if not np.any((windows[:, 0] < row[1]) & (windows[:, 1] > row[0]))]
        if nowhere:
            _warn(f"{len(nowhere)} of the {table.shape[0]} intervals overlap no segment's window; they are left out")
    if table is not None or support is not None:
        unsearched = sorted(set(range(len(checked))) - set(piece_part))
        if unsearched and len(unsearched) < len(checked):
            what = "intervals" if table is not None else f"{name}'s time_support"
            listed = ", ".join(map(str, unsearched[:20])) + (", ..." if len(unsearched) > 20 else "")
            _warn(f"{len(unsearched)} of the {len(checked)} segments have no time inside the {what} and are not "
                  f"searched: segment(s) {listed} (their recording_t_start/recording_t_stop are NaN)")
    if pieces.shape[0] == 0:
        what = "intervals" if table is not None else f"{name}'s time_support"
        raise ValueError(f"{what} leave nothing of the analysis window(s) to look in; pass intervals inside the "
                         "recording (in seconds of its own clock)")
    piece_bins = [count_bins(a, b, bin_size_s) for a, b in pieces]
    if width_s is None:
        if pieces.shape[0] > 1:
            raise TypeError("laying several intervals or segments end to end needs the filter width (the guard gap "
                            "between them): pass width as a pq.Quantity")
        guard = 0
        width_bins = None
    else:
        width_bins = width_to_bins(width_s, bin_size_s, int(sum(piece_bins)))
        guard = width_bins
        short = sum(n < width_bins for n in piece_bins)
        if short:
            logger.info("%d of %d intervals are shorter than the width (%d bins): a sequence longer than them cannot "
                        "be seen whole there", short, len(piece_bins), width_bins)
    time_map = TimeMap.layout(piece_part, pieces, bin_size_s, guard, n_parts=len(checked))
    n_neurons = len(checked[0].trains)
    names = checked[0].names
    logger.info("%d interval(s) of %d segment(s) laid end to end, %d guard bins between them: %d bins of which %d "
                "observed", time_map.n_pieces, len(checked), guard, time_map.total_bins, int(sum(piece_bins)))

    def own_observed(part: _Trains) -> list[np.ndarray | None] | None:
        """Each unit's ``obs_intervals``, sorted and merged (None: observed throughout)."""
        if part.observed_s is None:
            return None
        return [None if unit is None else _merged_rows(unit) for unit in part.observed_s]

    def piece_rasters():
        for index, part in enumerate(checked):
            times, rows = part.flat()
            order = np.argsort(times, kind="stable")
            times, rows = times[order], rows[order]
            own = own_observed(part)
            kept = 0
            for piece in np.flatnonzero(time_map.part == index):
                start, stop = float(time_map.start_s[piece]), float(time_map.stop_s[piece])
                low, high = np.searchsorted(times, [start, stop], side="left")
                kept += high - low
                observed = None if own is None else [
                    None if unit is None else intersect_intervals(unit, [[start, stop]]) for unit in own]
                yield piece, SpikeRaster.from_row_times(times[low:high], rows[low:high], n_neurons, bin_size_s, start,
                                                        stop, observed_s=observed)
            if kept < times.size:
                logger.info("left out %d of %d spikes of segment %d outside the intervals", times.size - kept,
                            times.size, index)

    def build() -> SpikeRaster:
        neurons, bins, counts, observed = [], [], [], []
        for piece, raster in piece_rasters():
            first = int(time_map.first_bin[piece])
            neurons.append(raster.neuron_index)
            bins.append(raster.bin_index + first)
            counts.append(raster.counts)
            table = raster.observed_table.copy()
            table[:, 1:] += first
            observed.append(table)
        table = np.concatenate(observed)
        table = table[np.lexsort((table[:, 1], table[:, 0]))]
        return SpikeRaster(np.concatenate(neurons), np.concatenate(bins), np.concatenate(counts), n_neurons,
                           time_map.total_bins, bin_size_s=bin_size_s, t_start_s=time_map.t_start_s, unit_names=names,
                           observed=table)

    def summary() -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Spikes and observed stretches per unit on the analysis clock (for check_recording)."""
        spikes: list[list[np.ndarray]] = [[] for _ in range(n_neurons)]
        observed: list[list[np.ndarray]] = [[] for _ in range(n_neurons)]
        for index, part in enumerate(checked):
            pieces = np.flatnonzero(time_map.part == index)
            starts, stops, shifts = time_map.start_s[pieces], time_map.stop_s[pieces], time_map.shift(pieces)
            spans = np.stack([starts, stops], axis=1)
            times, rows = part.flat()
            which = np.searchsorted(starts, times, side="right") - 1
            inside = which >= 0
            inside[inside] = times[inside] < stops[which[inside]]
            mapped, rows = times[inside] - shifts[which[inside]], rows[inside]
            order = np.argsort(rows, kind="stable")
            mapped, cuts = mapped[order], np.searchsorted(rows[order], np.arange(n_neurons + 1))
            own = own_observed(part)
            for unit in range(n_neurons):
                spikes[unit].append(mapped[cuts[unit]:cuts[unit + 1]])
                if own is None or own[unit] is None:
                    observed[unit].append(spans - shifts[:, None])
                    continue
                for start, stop, shift in zip(starts, stops, shifts):
                    observed[unit].append(intersect_intervals(own[unit], [[start, stop]]) - shift)
        return ([np.concatenate(unit) for unit in spikes], [np.concatenate(unit).reshape(-1, 2) for unit in observed])

    stop_s = time_map.t_start_s + time_map.total_bins * bin_size_s
    return RasterPlan(bin_size_s, time_map.t_start_s, stop_s, n_neurons, time_map.total_bins, build,
                      width_bins=width_bins, n_spikes=int(sum(part.sizes.sum() for part in checked)),
                      _summary=summary, time_map=time_map)


def _warn(message: str) -> None:
    """A :class:`RecordingWarning` at the user's call, and the same text in the log."""
    import warnings

    from convseq_neo._plausibility import _user_stacklevel

    logger.warning("%s", message)
    warnings.warn(message, RecordingWarning, stacklevel=_user_stacklevel())


def _merged_rows(intervals: np.ndarray) -> np.ndarray:
    """Sorted, merged ``(k, 2)`` intervals without empty ones (an ``obs_intervals`` table need not be either)."""
    table = np.asarray(intervals, dtype=float).reshape(-1, 2)
    return merge_intervals(table[table[:, 1] > table[:, 0]])


def _observation_intervals(trains: list[neo.SpikeTrain], name: str) -> list[np.ndarray | None] | None:
    """Each train's ``obs_intervals`` annotation as a float ``(k, 2)`` array in seconds (None when absent).

    None when no train has one (every unit observed over the whole window).
    """
    if not any(train.annotations.get(OBS_INTERVALS) is not None for train in trains):
        return None
    observed: list[np.ndarray | None] = []
    for index, train in enumerate(trains):
        value = train.annotations.get(OBS_INTERVALS)
        if value is None:
            observed.append(None)
            continue
        where = f"{name}[{index}].annotations[{OBS_INTERVALS!r}]"
        try:
            if isinstance(value, pq.Quantity):
                if value.dimensionality.simplified != pq.s.dimensionality:
                    raise ValueError(f"time units, got '{value.dimensionality}'")
                value = value.rescale(pq.s).magnitude
            table = np.array(value, dtype=float)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{where} must be [start, stop) intervals in seconds, shape (k, 2): {err}") from err
        if table.size == 0:
            table = table.reshape(0, 2)
        elif table.shape == (2,):
            table = table.reshape(1, 2)
        if table.ndim != 2 or table.shape[1] != 2:
            raise ValueError(f"{where} must be [start, stop) intervals in seconds, shape (k, 2), got shape "
                             f"{table.shape}")
        if not np.isfinite(table).all() or np.any(table[:, 1] < table[:, 0]):
            raise ValueError(f"{where} must hold finite [start, stop) pairs in seconds with stop >= start")
        observed.append(table)
    return observed


def _array_backed(trains: SpikeTrainList) -> bool:
    """True for a SpikeTrainList built from flat arrays whose trains were never materialised."""
    return (getattr(trains, "_items", []) is None and getattr(trains, "_spike_time_array", None) is not None
            and getattr(trains, "_all_channel_ids", None) is not None
            and {"t_start", "t_stop"} <= set(getattr(trains, "_spiketrain_metadata", {})))


def _plan_multiplexed(trains: SpikeTrainList, bin_size_s, t_start_s, t_stop_s, name: str) -> RasterPlan:
    """Bin an array-backed SpikeTrainList (e.g. Kilosort output) from its flat arrays."""
    channel_ids, times_q = trains.multiplexed
    meta = trains._spiketrain_metadata
    factor = _seconds_per_unit([times_q.units])[0]
    times = np.asarray(times_q.magnitude, dtype=float).reshape(-1) * factor
    if not np.all(np.isfinite(times)):
        raise ValueError(f"{name} contains NaN or infinite spike times; remove them first")
    start = float(pq.Quantity(meta["t_start"]).rescale(pq.s).magnitude) if isinstance(meta["t_start"], pq.Quantity) \
        else float(meta["t_start"]) * factor
    stop = float(pq.Quantity(meta["t_stop"]).rescale(pq.s).magnitude) if isinstance(meta["t_stop"], pq.Quantity) \
        else float(meta["t_stop"]) * factor
    bin_size_s = _require_bin_size(bin_size_s)
    start_s, stop_s = _window(np.array([start]), np.array([stop]), t_start_s, t_stop_s, name)
    _check_bin_vs_window(bin_size_s, start_s, stop_s)
    all_ids = list(trains._all_channel_ids)
    if not all_ids:
        raise ValueError(f"{name} holds no spike train; pass at least one neo.SpikeTrain")
    lookup = {channel: row for row, channel in enumerate(all_ids)}
    try:
        neuron = np.fromiter((lookup[c] for c in np.asarray(channel_ids).tolist()), dtype=np.int64,
                             count=len(channel_ids))
    except KeyError as err:
        raise ValueError(f"{name} has spikes from channel {err.args[0]!r}, which is not in its channel ids") from err
    names = tuple(str(channel) for channel in all_ids)

    def build() -> SpikeRaster:
        return SpikeRaster.from_row_times(times, neuron, len(all_ids), bin_size_s, start_s, stop_s, unit_names=names)

    def per_unit() -> tuple[list[np.ndarray], None]:
        order = np.argsort(neuron, kind="stable")
        cuts = np.searchsorted(neuron[order], np.arange(1, len(all_ids)))
        return np.split(times[order], cuts), None

    return RasterPlan(bin_size_s, start_s, stop_s, len(all_ids), count_bins(start_s, stop_s, bin_size_s), build,
                      n_spikes=int(times.size), _summary=per_unit)


def _edge(value_s: float, raster: SpikeRaster, label: str, what: str) -> int:
    position = (value_s - raster.t_start_s) / raster.bin_size_s
    edge = int(np.round(position))
    if abs(position - edge) > 1e-6:
        raise ValueError(f"{label} ({value_s:g} s) does not fall on a bin edge of the {what} (bins of "
                         f"{raster.bin_size_s:g} s from {raster.t_start_s:g} s); pass a {label} on a bin edge")
    return edge


def _check_own_bin_size(bin_size_s: float | None, own_s: float, what: str) -> None:
    if bin_size_s is not None and not np.isclose(bin_size_s, own_s, rtol=1e-9, atol=0):
        raise ValueError(f"bin_size ({bin_size_s:g} s) differs from the {what}'s own bin size ({own_s:g} s); pass "
                         "bin_size=None to use its own, or rebin the spike trains")


def _plan_binned(raster: SpikeRaster, bin_size_s, t_start_s, t_stop_s, name: str,
                 what: str = "SpikeRaster") -> RasterPlan:
    """An already binned input: check the bin size and slice the window on bin edges."""
    if raster.bin_size_s is None:
        if bin_size_s is None:
            raise TypeError(f"this {what} does not know its bin size: pass bin_size as a pq.Quantity, e.g. 5 * pq.ms")
        raster = SpikeRaster(raster.neuron_index, raster.bin_index, raster.counts, raster.n_neurons, raster.n_bins,
                             bin_size_s=bin_size_s, t_start_s=raster.t_start_s, unit_names=raster.unit_names)
    else:
        _check_own_bin_size(bin_size_s, raster.bin_size_s, what)
    end_s = raster.t_stop_s
    first = 0 if t_start_s is None else _edge(t_start_s, raster, "t_start", what)
    last = raster.n_bins if t_stop_s is None else _edge(t_stop_s, raster, "t_stop", what)
    if not 0 <= first < raster.n_bins:
        raise ValueError(f"t_start ({t_start_s:g} s) lies outside the {what} [{raster.t_start_s:g}, {end_s:g}) s; "
                         "pass a t_start inside it")
    if not first < last <= raster.n_bins:
        raise ValueError(f"t_stop must lie in ({raster.bin_to_time(first):g}, {end_s:g}] s for this {what}, got "
                         f"{t_stop_s:g} s; pass a t_stop inside it")
    if raster.unit_names is None:
        raster = SpikeRaster(raster.neuron_index, raster.bin_index, raster.counts, raster.n_neurons, raster.n_bins,
                             bin_size_s=raster.bin_size_s, t_start_s=raster.t_start_s,
                             unit_names=tuple(str(i) for i in range(raster.n_neurons)))
    if (first, last) != (0, raster.n_bins):
        kept = int(np.count_nonzero((raster.bin_index >= first) & (raster.bin_index < last)))
        if kept < raster.nnz:
            logger.info("left out %d of %d non-empty bins outside the analysis window", raster.nnz - kept, raster.nnz)
        sliced = raster.time_slice(first, last)
    else:
        sliced = raster
    return RasterPlan(float(sliced.bin_size_s), sliced.t_start_s, sliced.t_stop_s, sliced.n_neurons, sliced.n_bins,
                      lambda: sliced, n_spikes=sliced.nnz, _summary=lambda: (sliced, None))
