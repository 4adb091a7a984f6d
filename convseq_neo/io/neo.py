"""Neo and Elephant inputs -> :class:`~convseq_neo.raster.SpikeRaster`.

Every Neo-side entry point (:func:`convseq_neo.detect`, :meth:`DetectionResult.find`) turns its
input into a :class:`SpikeRaster` here, and only here. Accepted inputs:

- a list (or tuple) of :class:`neo.SpikeTrain` (lazy ``SpikeTrainProxy`` objects are loaded),
- a :class:`neo.core.spiketrainlist.SpikeTrainList` (an array-backed one, e.g. from
  ``SpikeTrainList.from_spike_time_array``, is binned from its flat arrays without building trains),
- a :class:`neo.Segment` (its ``spiketrains``),
- an :class:`elephant.conversion.BinnedSpikeTrain` (its sparse matrix, its own bin size),
- a :class:`SpikeRaster` (returned as is, or sliced to ``[t_start, t_stop)``).

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
           "OBS_INTERVALS"]

#: Relative/absolute tolerance (s) when comparing trains' bounds.
_TIME_TOLERANCE = 1e-9

#: The SpikeTrain annotation that holds a unit's observation intervals (seconds, shape (k, 2)).
OBS_INTERVALS = "obs_intervals"

_INPUT_TYPES = ("a list of neo.SpikeTrain, a SpikeTrainList, a neo.Segment, an elephant BinnedSpikeTrain or a "
                "SpikeRaster")


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
                n_surrogates: int = 200) -> RasterPlan:
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
    plan = _plan(spiketrains, bin_size_s, t_start_s, t_stop_s, name)
    if width_s is not None:
        plan = replace(plan, width_bins=width_to_bins(width_s, plan.bin_size_s, plan.n_bins))
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


def _plan_trains(trains: list[neo.SpikeTrain], bin_size_s, t_start_s, t_stop_s, name: str) -> RasterPlan:
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
    sizes = np.array([train.size for train in trains], dtype=np.int64)

    def seconds() -> list[np.ndarray]:
        return [np.asarray(train.magnitude, dtype=float).reshape(-1) * factor for train, factor in zip(trains, factors)]

    def build() -> SpikeRaster:
        times = np.concatenate(seconds()) if sizes.sum() else np.zeros(0)
        neuron = np.repeat(np.arange(len(trains), dtype=np.int64), sizes)
        return SpikeRaster.from_row_times(times, neuron, len(trains), bin_size_s, start_s, stop_s, unit_names=names,
                                          observed_s=observed_s)

    return RasterPlan(bin_size_s, start_s, stop_s, len(trains), count_bins(start_s, stop_s, bin_size_s), build,
                      n_spikes=int(sizes.sum()), _summary=lambda: (seconds(), observed_s))


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
