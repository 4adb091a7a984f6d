"""Synthetic recordings with planted spike sequences and exact ground truth.

Elephant-style generators (a list of :class:`neo.SpikeTrain` in and out, every time a
``quantities`` Quantity) that never touch the global numpy state: all randomness comes from a
``random_state`` argument (``None``, an int seed or a :class:`numpy.random.Generator`).

Building blocks
---------------
- :func:`poisson_background`: independent homogeneous Poisson trains, optionally with a dead time.
- :func:`shuffle_isis` / :func:`shuffle_isis_raster`: a background made from any recording by
  permuting each neuron's inter-spike intervals (rates and ISI distributions kept exactly,
  sequences destroyed).
- :func:`plant_sequences`: add lagged sequences of spikes (any number of patterns, disjoint,
  overlapping or reversed members, participation, jitter, time warping) to background trains,
  recording every planted spike.
- :func:`sequence_recording`: all of the above in one call, returning a
  :class:`SyntheticRecording` (trains, binned raster, ground-truth :class:`neo.Epoch`).
- :func:`reference_recipe`: the convSeq paper's demo recipe on a binned raster, quirks included.

Conventions used throughout
---------------------------
- A pattern's *onset lags* are its members' spike times relative to the occurrence **onset**; the
  earliest member has onset lag 0. Its *lags* (the package-wide meaning) are the same times
  relative to the occurrence **centre**, i.e. the onset lags minus their mean, so they sum to 0.
- In an occurrence warped by a factor ``w`` every onset lag is multiplied by ``w``; the onset is
  unchanged, the span (first to last member) becomes ``w * span`` and the centre becomes
  ``onset + w * mean(onset lags)``.
- Onsets, centres and spans are noise-free: participation and jitter act on the spikes, not on
  the occurrence times. The centre is averaged over *all* members, participating or not.
"""

from __future__ import annotations

import logging
import numbers
from collections.abc import Sequence
from dataclasses import dataclass

import neo
import numpy as np
import quantities as pq
from neo.core.spiketrainlist import SpikeTrainList

from convseq_neo._validation import (
    check_nonnegative_float,
    check_positive_int,
    check_probability,
    check_random_state,
    check_time_quantity,
)
from convseq_neo.io.neo import _seconds_per_unit, plan_raster
from convseq_neo.raster import SpikeRaster

logger = logging.getLogger(__name__)

__all__ = [
    "PlantedSpikes",
    "PlantedSequences",
    "SyntheticRecording",
    "ReferenceRecipe",
    "poisson_background",
    "shuffle_isis",
    "shuffle_isis_raster",
    "plant_sequences",
    "sequence_recording",
    "reference_recipe",
]

_PLACEMENTS = ("random", "grid")
_LAYOUTS = ("disjoint", "overlapping", "reverse")


# ---------------------------------------------------------------------------------------------
# result types
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class PlantedSpikes:
    """One row per planted spike (flat arrays of equal length).

    Attributes
    ----------
    neuron : numpy.ndarray of int
        Index of the spike train (neuron) the spike was added to.
    times_s : numpy.ndarray of float
        Spike time in seconds (onset + warped onset lag + jitter).
    occurrence : numpy.ndarray of int
        Row of the occurrence in the ground-truth table (sorted by onset time).
    pattern_id : numpy.ndarray of int
        Pattern the spike belongs to.
    member : numpy.ndarray of int
        Position of the neuron in that pattern's member list.
    """

    neuron: np.ndarray
    times_s: np.ndarray
    occurrence: np.ndarray
    pattern_id: np.ndarray
    member: np.ndarray

    def __len__(self) -> int:
        return int(self.neuron.size)

    def __repr__(self) -> str:
        return f"PlantedSpikes({len(self)} spikes)"

    @classmethod
    def _empty(cls) -> PlantedSpikes:
        empty_int = np.zeros(0, dtype=np.int64)
        return cls(empty_int, np.zeros(0, dtype=float), empty_int, empty_int, empty_int)

    def _select(self, mask: np.ndarray) -> PlantedSpikes:
        return PlantedSpikes(self.neuron[mask], self.times_s[mask], self.occurrence[mask], self.pattern_id[mask],
                             self.member[mask])


@dataclass(frozen=True, eq=False)
class PlantedSequences:
    """Exact ground truth of :func:`plant_sequences`.

    Occurrence arrays have one entry per planted occurrence, sorted by onset time; a spike's
    ``occurrence`` indexes them.

    Attributes
    ----------
    members : list of numpy.ndarray of int
        Member neurons of each pattern, in the order given.
    onset_lags : list of pq.Quantity
        Per pattern, each member's time relative to the occurrence onset (unwarped, in s; the
        earliest member is at 0).
    lags : list of pq.Quantity
        Per pattern, each member's time relative to the occurrence centre (unwarped, in s):
        ``onset_lags`` minus their mean, so they sum to zero.
    pattern_id : numpy.ndarray of int
        Pattern of each occurrence.
    onsets, centers, spans : pq.Quantity
        Per occurrence, in s: onset (time of the earliest member lag), centre
        (``onset + warp * mean(onset_lags)``) and span (``warp * (max - min)`` of the lags).
    warps : numpy.ndarray of float
        Time-warp factor of each occurrence (1 = unwarped).
    planted : PlantedSpikes
        Every spike that was added to the trains.
    dropped : PlantedSpikes
        Spikes of participating members that fell outside ``[t_start, t_stop)`` after warping and
        jitter; they were left out rather than clipped.
    n_skipped : int
        Member-occurrence pairs left out by the participation draw.
    t_start, t_stop : pq.Quantity
        The recording window (s).
    """

    members: list[np.ndarray]
    onset_lags: list[pq.Quantity]
    lags: list[pq.Quantity]
    pattern_id: np.ndarray
    onsets: pq.Quantity
    centers: pq.Quantity
    spans: pq.Quantity
    warps: np.ndarray
    planted: PlantedSpikes
    dropped: PlantedSpikes
    n_skipped: int
    t_start: pq.Quantity
    t_stop: pq.Quantity

    @property
    def n_occurrences(self) -> int:
        """Number of planted occurrences (all patterns)."""
        return int(self.pattern_id.size)

    def __repr__(self) -> str:
        return (f"PlantedSequences({self.n_patterns} patterns, {self.n_occurrences} occurrences, "
                f"{len(self.planted)} spikes planted, {len(self.dropped)} dropped)")

    @property
    def n_patterns(self) -> int:
        """Number of patterns."""
        return len(self.members)

    def to_epoch(self) -> neo.Epoch:
        """The occurrences as a :class:`neo.Epoch`.

        ``times`` are onsets, ``durations`` spans, ``labels`` ``"pattern{id}"``; array annotations
        ``pattern_id`` (int), ``center`` (occurrence centre in s) and ``warp`` (float).
        """
        labels = np.array([f"pattern{p}" for p in self.pattern_id], dtype="U16")
        return neo.Epoch(times=pq.Quantity(self.onsets.rescale(pq.s).magnitude, "s"),
                         durations=pq.Quantity(self.spans.rescale(pq.s).magnitude, "s"),
                         labels=labels, name="planted sequences",
                         description="ground truth: one entry per planted occurrence; times are onsets",
                         array_annotations={"pattern_id": self.pattern_id.astype(np.int64),
                                            "center": np.asarray(self.centers.rescale(pq.s).magnitude, dtype=float),
                                            "warp": self.warps.astype(float)})


@dataclass(eq=False)
class SyntheticRecording:
    """A synthetic recording with planted sequences and its exact ground truth.

    Attributes
    ----------
    spiketrains : list of neo.SpikeTrain
        One train per neuron (named ``unit{i}``), background plus planted spikes; array annotations
        ``planted_pattern`` / ``planted_occurrence`` are -1 for background spikes.
    ground_truth : neo.Epoch
        One entry per planted occurrence, sorted by time. ``times``: the occurrence **onset**, the
        time of the earliest member lag as planted (after warping, before jitter). ``durations``:
        the span from the first to the last member lag (warped). Array annotations:
        ``pattern_id`` (int), ``center`` (s; ``onset + mean of the occurrence's warped member lags
        relative to the onset``, averaged over all members whether or not they fired) and ``warp``.
    members : list of numpy.ndarray of int
        Member neurons of each pattern, in sequence order.
    lags : list of pq.Quantity
        Per pattern, member lags relative to the pattern centre (unwarped, s; they sum to zero).
        In an occurrence with warp ``w`` member ``i`` fires at ``center + w * lags[i]`` (+ jitter).
    planted_spikes : PlantedSpikes
        Every planted spike (neuron, time, occurrence row, pattern, member position).
    raster : SpikeRaster
        The trains binned at ``bin_size`` over ``[t_start, t_stop)``.
    bin_size, t_start, t_stop : pq.Quantity
        Bin width and recording window (s).
    truth : PlantedSequences
        The full truth from :func:`plant_sequences` (onset lags, dropped spikes, ...).
    """

    spiketrains: list[neo.SpikeTrain]
    ground_truth: neo.Epoch
    members: list[np.ndarray]
    lags: list[pq.Quantity]
    planted_spikes: PlantedSpikes
    raster: SpikeRaster
    bin_size: pq.Quantity
    t_start: pq.Quantity
    t_stop: pq.Quantity
    truth: PlantedSequences

    @property
    def n_patterns(self) -> int:
        """Number of planted patterns."""
        return len(self.members)

    def __repr__(self) -> str:
        return (f"SyntheticRecording({len(self.spiketrains)} neurons, {float(self.t_start.magnitude):g}-"
                f"{float(self.t_stop.magnitude):g} s, {self.n_patterns} patterns, "
                f"{len(self.ground_truth)} occurrences, {len(self.planted_spikes)} planted spikes)")

    @property
    def pattern_ids(self) -> np.ndarray:
        """Pattern of each ground-truth occurrence."""
        return np.asarray(self.ground_truth.array_annotations["pattern_id"], dtype=np.int64)

    def _of_pattern(self, times_s: np.ndarray, pattern_id: int | None) -> np.ndarray:
        """``times_s`` (one per occurrence) restricted to one pattern's occurrences (all for ``None``)."""
        if pattern_id is None:
            return times_s
        if isinstance(pattern_id, (bool, np.bool_)) or not isinstance(pattern_id, numbers.Integral):
            raise TypeError(f"pattern_id must be an int or None, got {type(pattern_id).__name__}")
        if not 0 <= int(pattern_id) < self.n_patterns:
            raise ValueError(f"pattern_id must be in [0, {self.n_patterns}), got {pattern_id}")
        return times_s[self.pattern_ids == int(pattern_id)]

    def centers_bins(self, pattern_id: int | None = None) -> np.ndarray:
        """Occurrence centres as fractional bin positions of :attr:`raster`.

        On the same axis as the detector's centres: ``raster.time_to_position(center_s)``, so a
        value ``b`` is the time ``raster.position_to_time(b) = t_start + (b + 0.5) * bin_size``
        and position ``b`` is the middle of bin ``b`` (see :meth:`SpikeRaster.position_to_time`).

        Parameters
        ----------
        pattern_id : int, optional
            Only this pattern's occurrences (default: all, in time order).

        Returns
        -------
        numpy.ndarray of float
            One position per occurrence.

        Examples
        --------
        >>> import quantities as pq
        >>> rec = sequence_recording(n_neurons=20, members_per_pattern=5, duration=10 * pq.s, n_occurrences=3,
        ...                          random_state=0)
        >>> centers = rec.centers_bins()
        >>> bool(np.allclose(rec.raster.position_to_time(centers), rec.ground_truth.array_annotations["center"]))
        True
        """
        centers = np.asarray(self.ground_truth.array_annotations["center"], dtype=float)
        return self.raster.time_to_position(self._of_pattern(centers, pattern_id))

    def onsets_bins(self, pattern_id: int | None = None) -> np.ndarray:
        """Occurrence onsets as fractional bin positions of :attr:`raster` (as :meth:`centers_bins`)."""
        onsets = np.asarray(self.ground_truth.times.rescale(pq.s).magnitude, dtype=float)
        return self.raster.time_to_position(self._of_pattern(onsets, pattern_id))


@dataclass(eq=False)
class ReferenceRecipe:
    """Result of :func:`reference_recipe` (everything in bins).

    Attributes
    ----------
    raster : numpy.ndarray
        ``N x T`` raster with the sequence embedded and rows permuted.
    midpoints_bins : numpy.ndarray of float
        Ground truth: occurrence midpoints, ``onset + (seqlen - 1) / 2``.
    onsets_bins : numpy.ndarray of int
        Occurrence starts (``0, gap, 2 gap, ...``; every start ``< T - gap``).
    members : numpy.ndarray of int
        Rows of :attr:`raster` (after the permutation) of the sequence neurons, in sequence order.
    lags_bins : numpy.ndarray of float
        Lag of each member relative to the midpoint: ``i - (seqlen - 1) / 2``.
    surviving_fraction : float
        Sequence spikes added / ``(seqlen * n_occurrences)``.
    n_occurrences : int
        Number of occurrences.
    seqlen, p_drop, gap, jitter_std
        The recipe's parameters.
    permutation : numpy.ndarray of int
        Row permutation applied last: ``raster = embedded[permutation]``.
    planted_neurons, planted_bins, planted_occurrence : numpy.ndarray of int
        Row (after the permutation), bin and occurrence of every added sequence spike.
    n_coincident : int
        Kept sequence spikes whose cell already held a background spike (nothing changed there).
    n_out_of_range : int
        Kept sequence spikes whose jittered bin fell outside ``[0, T)`` (not added).
    """

    raster: np.ndarray
    midpoints_bins: np.ndarray
    onsets_bins: np.ndarray
    members: np.ndarray
    lags_bins: np.ndarray
    surviving_fraction: float
    n_occurrences: int
    seqlen: int
    p_drop: float
    gap: int
    jitter_std: float
    permutation: np.ndarray
    planted_neurons: np.ndarray
    planted_bins: np.ndarray
    planted_occurrence: np.ndarray
    n_coincident: int
    n_out_of_range: int

    def __repr__(self) -> str:
        return (f"ReferenceRecipe({self.raster.shape[0]} x {self.raster.shape[1]} bins, seqlen={self.seqlen}, "
                f"{self.n_occurrences} occurrences, surviving_fraction={self.surviving_fraction:.3f})")


# ---------------------------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------------------------
def _window(t_start, t_stop) -> tuple[float, float]:
    """Validate a ``[t_start, t_stop)`` pair and return it in seconds."""
    start = float(check_time_quantity(t_start, "t_start").magnitude)
    stop = float(check_time_quantity(t_stop, "t_stop").magnitude)
    if stop <= start:
        raise ValueError(f"t_stop ({t_stop}) must be greater than t_start ({t_start})")
    return start, stop


def _check_spiketrains(spiketrains, name: str = "spiketrains") -> list[neo.SpikeTrain]:
    if isinstance(spiketrains, neo.SpikeTrain) or not isinstance(spiketrains, (Sequence, SpikeTrainList)):
        raise TypeError(f"{name} must be a list of neo.SpikeTrain, got {type(spiketrains).__name__}")
    trains = list(spiketrains)
    if not trains:
        raise ValueError(f"{name} must hold at least one neo.SpikeTrain")
    for index, train in enumerate(trains):
        if not isinstance(train, neo.SpikeTrain):
            raise TypeError(f"{name}[{index}] must be a neo.SpikeTrain, got {type(train).__name__}")
    return trains


def _copy_train(train: neo.SpikeTrain, times: np.ndarray, array_annotations: dict | None = None) -> neo.SpikeTrain:
    """A new train with ``train``'s units, window, name and annotations and the given times (in its units)."""
    if train.array_annotations and array_annotations is None:
        logger.debug("array annotations of %s dropped: its spikes changed", train.name)
    return neo.SpikeTrain(times, t_stop=train.t_stop, units=train.units, t_start=train.t_start, name=train.name,
                          description=train.description, file_origin=train.file_origin,
                          array_annotations=array_annotations, **dict(train.annotations))


def _check_rate(rate, n_neurons: int) -> np.ndarray:
    if not isinstance(rate, pq.Quantity):
        raise TypeError(f"rate must be a quantities.Quantity in Hz (e.g. 5 * pq.Hz), got {type(rate).__name__}")
    if rate.dimensionality.simplified != pq.Hz.dimensionality.simplified:
        raise ValueError(f"rate must have units of frequency (Hz), got units '{rate.dimensionality}'")
    values = np.asarray(rate.rescale(pq.Hz).magnitude, dtype=float).reshape(-1)
    if values.size == 1:
        values = np.full(n_neurons, values[0])
    elif values.size != n_neurons:
        raise ValueError(f"rate must be a scalar or hold one value per neuron ({n_neurons}), got {values.size}")
    if np.any(~np.isfinite(values)):
        raise ValueError("rate must be finite")
    if np.any(values < 0):
        raise ValueError(f"rate must be non-negative, got a minimum of {values.min()} Hz")
    return values


# ---------------------------------------------------------------------------------------------
# backgrounds
# ---------------------------------------------------------------------------------------------
def poisson_background(n_neurons: int, rate: pq.Quantity, t_start: pq.Quantity, t_stop: pq.Quantity, *,
                       refractory_period: pq.Quantity | None = None, random_state=None) -> list[neo.SpikeTrain]:
    """Independent homogeneous Poisson spike trains, optionally with a dead time.

    With a refractory period ``tau`` each inter-spike interval is ``tau + Exp(lambda_eff)`` with
    ``lambda_eff = lambda / (1 - lambda * tau)``, so the mean rate is still ``lambda`` (as in
    Elephant's ``StationaryPoissonProcess``). The first spike is drawn from the process's
    equilibrium (forward-recurrence) distribution, so the trains are stationary from ``t_start``.

    Parameters
    ----------
    n_neurons : int
        Number of trains (>= 1).
    rate : pq.Quantity
        Firing rate (frequency units), a scalar or one value per neuron; 0 gives an empty train.
    t_start, t_stop : pq.Quantity
        Recording window.
    refractory_period : pq.Quantity, optional
        Dead time after each spike; needs ``rate * refractory_period < 1``.
    random_state : None, int or numpy.random.Generator
        Source of randomness (the global numpy state is never used).

    Returns
    -------
    list of neo.SpikeTrain
        In seconds, train ``i`` named ``unit{i}`` with annotation ``unit_id=i``.

    Raises
    ------
    TypeError
        If ``rate``, ``t_start``, ``t_stop`` or ``refractory_period`` is not a Quantity.
    ValueError
        For a negative or non-finite rate, ``t_stop <= t_start``, or a refractory period too long
        for the rate.

    Examples
    --------
    >>> import quantities as pq
    >>> trains = poisson_background(3, 20 * pq.Hz, 0 * pq.s, 10 * pq.s, random_state=0)
    >>> len(trains), trains[0].name, str(trains[0].units.dimensionality)
    (3, 'unit0', 's')
    >>> all(0 <= t.magnitude.min() and t.magnitude.max() < 10 for t in trains)
    True
    """
    n_neurons = check_positive_int(n_neurons, "n_neurons")
    rates = _check_rate(rate, n_neurons)
    start, stop = _window(t_start, t_stop)
    tau_q = check_time_quantity(refractory_period, "refractory_period", allow_none=True, nonnegative=True)
    tau = 0.0 if tau_q is None else float(tau_q.magnitude)
    if tau > 0 and np.any(rates * tau >= 1.0):
        raise ValueError(f"refractory_period ({refractory_period}) must be shorter than 1 / rate "
                         f"(max rate {rates.max()} Hz)")
    rng = check_random_state(random_state)
    duration = stop - start
    trains = []
    for index, lam in enumerate(rates):
        times = _renewal_times(rng, float(lam), tau, start, stop, duration)
        trains.append(neo.SpikeTrain(times, t_stop=stop, units="s", t_start=start, name=f"unit{index}",
                                     unit_id=index))
    logger.debug("poisson_background: %d trains, %d spikes", n_neurons, sum(t.size for t in trains))
    return trains


def _renewal_times(rng: np.random.Generator, lam: float, tau: float, start: float, stop: float,
                   duration: float) -> np.ndarray:
    """Spike times of a stationary Poisson process with dead time ``tau`` on ``[start, stop)``."""
    if lam == 0.0:
        return np.zeros(0)
    effective = lam / (1.0 - lam * tau)
    # first spike from the equilibrium forward-recurrence distribution
    u = rng.random()
    if u <= lam * tau:
        first = u / lam
    else:
        first = tau + (np.log1p(-lam * tau) - np.log1p(-u)) / effective
    expected = lam * duration
    chunk = int(expected + 6.0 * np.sqrt(expected) + 10)
    pieces = [np.array([start + first])]
    last = start + first
    while last < stop:
        isi = tau + rng.exponential(1.0 / effective, chunk)
        times = last + np.cumsum(isi)
        pieces.append(times)
        last = times[-1]
    times = np.concatenate(pieces)
    return times[times < stop]


def shuffle_isis(spiketrains, *, random_state=None) -> list[neo.SpikeTrain]:
    """Shuffle each train's inter-spike intervals: same spike count and ISIs, no sequences.

    For each train the intervals between consecutive spikes are permuted at random and the
    resulting block (whose length, last minus first spike, is unchanged) is placed at a uniformly
    random offset inside ``[t_start, t_stop)``. The spike count and the multiset of intervals
    are kept exactly (up to float rounding of the re-summed times), so each neuron's rate and ISI
    distribution are unchanged, while timing relations between neurons are destroyed. A train
    with a single spike gets a uniformly random spike time.

    Parameters
    ----------
    spiketrains : list of neo.SpikeTrain
        Any recording (trains may have different units and windows).
    random_state : None, int or numpy.random.Generator
        Source of randomness.

    Returns
    -------
    list of neo.SpikeTrain
        New trains with the same units, window, name and annotations (array annotations, which
        belong to the original spikes, are dropped).

    Examples
    --------
    >>> import quantities as pq
    >>> trains = poisson_background(2, 10 * pq.Hz, 0 * pq.s, 5 * pq.s, random_state=1)
    >>> shuffled = shuffle_isis(trains, random_state=2)
    >>> [len(t) for t in shuffled] == [len(t) for t in trains]
    True
    """
    trains = _check_spiketrains(spiketrains)
    rng = check_random_state(random_state)
    result = []
    for train in trains:
        times = np.asarray(train.magnitude, dtype=float)
        start = float(train.t_start.rescale(train.units).magnitude)
        stop = float(train.t_stop.rescale(train.units).magnitude)
        if times.size == 0:
            result.append(_copy_train(train, times))
            continue
        times = np.sort(times)
        isis = rng.permutation(np.diff(times))
        span = times[-1] - times[0]
        offset = start + rng.random() * (stop - start - span)
        new_times = offset + np.concatenate(([0.0], np.cumsum(isis)))
        # guard against float rounding at the right edge
        new_times = np.minimum(new_times, np.nextafter(stop, -np.inf))
        result.append(_copy_train(train, new_times))
    return result


def shuffle_isis_raster(raster, *, random_state=None):
    """Shuffle the inter-spike intervals of each row of a binned raster.

    Spikes are expanded from counts (a count of 2 is two spikes with an interval of 0 bins),
    each row's intervals are permuted and the block is placed at a uniformly random integer
    offset that keeps it inside the raster. Each row's total count and multiset of intervals
    are preserved exactly; a 0/1 raster stays 0/1.

    Parameters
    ----------
    raster : numpy.ndarray or SpikeRaster
        ``N x T`` non-negative integer counts (e.g. the binarised CA1 raster).
    random_state : None, int or numpy.random.Generator
        Source of randomness.

    Returns
    -------
    numpy.ndarray or SpikeRaster
        The same type as ``raster`` (same shape and dtype; a SpikeRaster keeps its bin size,
        start time and unit names).

    Raises
    ------
    TypeError, ValueError
        If ``raster`` is not a 2-D array of non-negative integer counts.

    Examples
    --------
    >>> import numpy as np
    >>> raster = np.array([[1, 0, 1, 0, 0, 1], [0, 1, 1, 0, 0, 0]], dtype=np.uint8)
    >>> shuffled = shuffle_isis_raster(raster, random_state=0)
    >>> shuffled.dtype, shuffled.sum(axis=1).tolist()
    (dtype('uint8'), [3, 2])
    """
    is_sparse = isinstance(raster, SpikeRaster)
    if not is_sparse and not isinstance(raster, np.ndarray):
        raise TypeError(f"raster must be a numpy.ndarray or a SpikeRaster, got {type(raster).__name__}")
    if not is_sparse and raster.ndim != 2:
        raise ValueError(f"raster must be 2-D (n_neurons x n_bins), got shape {raster.shape}")
    sparse = SpikeRaster.coerce(raster, "raster")
    counts = sparse.counts
    if counts.size and np.any(counts != np.round(counts)):
        raise ValueError("raster must hold integer spike counts")
    rng = check_random_state(random_state)
    repeats = counts.astype(np.int64)
    neuron = np.repeat(sparse.neuron_index, repeats)
    bins = np.repeat(sparse.bin_index, repeats)
    n_spikes = neuron.size
    if n_spikes:
        starts = np.flatnonzero(np.r_[True, neuron[1:] != neuron[:-1]])
        stops = np.r_[starts[1:], n_spikes]
        row_of = neuron[starts]
        # intervals within each row: positions j where neuron[j] == neuron[j - 1]
        same = np.r_[False, neuron[1:] == neuron[:-1]]
        isi = np.diff(bins, prepend=0)[same]
        isi_row = neuron[same]
        order = np.lexsort((rng.random(isi.size), isi_row))
        new_isi = np.zeros(n_spikes, dtype=np.int64)
        new_isi[same] = isi[order]
        span = bins[stops - 1] - bins[starts]
        offset = rng.integers(0, sparse.n_bins - span)
        new_isi[starts] = offset
        cumulative = np.cumsum(new_isi)
        before = np.r_[0, cumulative[stops[:-1] - 1]]
        new_bins = cumulative - np.repeat(before, stops - starts)
        logger.debug("shuffle_isis_raster: %d spikes in %d rows", n_spikes, row_of.size)
    else:
        new_bins = bins
    if is_sparse:
        out_counts = np.ones(n_spikes, dtype=counts.dtype)
        return SpikeRaster(neuron, new_bins, out_counts, sparse.n_neurons, sparse.n_bins, bin_size_s=sparse.bin_size_s,
                           t_start_s=sparse.t_start_s, unit_names=sparse.unit_names)
    out = np.zeros(raster.shape, dtype=raster.dtype)
    np.add.at(out, (neuron, new_bins), 1)
    return out


# ---------------------------------------------------------------------------------------------
# planting
# ---------------------------------------------------------------------------------------------
def _check_members(members, n_neurons: int) -> list[np.ndarray]:
    if isinstance(members, np.ndarray) and members.ndim == 1:
        members = [members]
    if isinstance(members, (str, bytes)) or not isinstance(members, (Sequence, np.ndarray)):
        raise TypeError(f"members must be a list of integer index arrays (one per pattern), got "
                        f"{type(members).__name__}")
    if len(members) == 0:
        raise ValueError("members must hold at least one pattern")
    checked = []
    for p, member in enumerate(members):
        array = np.asarray(member)
        if array.ndim != 1 or array.size == 0:
            raise ValueError(f"members[{p}] must be a non-empty 1-D array of neuron indices")
        if not np.issubdtype(array.dtype, np.integer):
            raise TypeError(f"members[{p}] must hold integer neuron indices, got dtype {array.dtype}")
        if array.min() < 0 or array.max() >= n_neurons:
            raise ValueError(f"members[{p}] must index spike trains in [0, {n_neurons})")
        if np.unique(array).size != array.size:
            raise ValueError(f"members[{p}] repeats a neuron")
        checked.append(array.astype(np.int64))
    return checked


def _check_lags(lags, lag_step, members: list[np.ndarray]) -> list[np.ndarray]:
    """Per pattern, onset lags in seconds (earliest member at 0)."""
    if lags is None:
        step = float(check_time_quantity(lag_step, "lag_step", nonnegative=True).magnitude)
        return [np.arange(m.size, dtype=float) * step for m in members]
    if isinstance(lags, pq.Quantity) and len(members) == 1 and lags.ndim == 1:
        lags = [lags]
    if not isinstance(lags, Sequence) or isinstance(lags, pq.Quantity):
        raise TypeError(f"lags must be a list of time Quantity arrays, one per pattern, got {type(lags).__name__}")
    if len(lags) != len(members):
        raise ValueError(f"lags must hold one Quantity array per pattern ({len(members)}), got {len(lags)}")
    onset_lags = []
    for p, lag in enumerate(lags):
        seconds = np.asarray(check_time_quantity(lag, f"lags[{p}]", scalar=False).magnitude, dtype=float).reshape(-1)
        if seconds.size != members[p].size:
            raise ValueError(f"lags[{p}] must have one lag per member ({members[p].size}), got {seconds.size}")
        onset_lags.append(seconds - seconds.min())
    return onset_lags


def _check_participation(participation, members: list[np.ndarray]) -> list[np.ndarray]:
    if isinstance(participation, numbers.Real) and not isinstance(participation, (bool, np.bool_)):
        value = check_probability(participation, "participation")
        return [np.full(m.size, value) for m in members]
    if isinstance(participation, (str, bytes)) or not isinstance(participation, (Sequence, np.ndarray)):
        raise TypeError(f"participation must be a probability or one value/array per pattern, got "
                        f"{type(participation).__name__}")
    if len(participation) != len(members):
        raise ValueError(f"participation must hold one entry per pattern ({len(members)}), got {len(participation)}")
    result = []
    for p, entry in enumerate(participation):
        values = np.asarray(entry, dtype=float).reshape(-1)
        if values.size == 1:
            values = np.full(members[p].size, values[0])
        if values.size != members[p].size:
            raise ValueError(f"participation[{p}] must be a scalar or one value per member ({members[p].size})")
        if np.any(~np.isfinite(values)) or np.any(values < 0) or np.any(values > 1):
            raise ValueError(f"participation[{p}] must be in [0, 1]")
        result.append(values)
    return result


def _check_n_occurrences(n_occurrences, n_patterns: int) -> np.ndarray | None:
    if n_occurrences is None:
        return None
    if isinstance(n_occurrences, numbers.Integral) and not isinstance(n_occurrences, (bool, np.bool_)):
        return np.full(n_patterns, check_positive_int(n_occurrences, "n_occurrences", minimum=0), dtype=np.int64)
    if isinstance(n_occurrences, (str, bytes)) or not isinstance(n_occurrences, (Sequence, np.ndarray)):
        raise TypeError(f"n_occurrences must be an int or one int per pattern, got {type(n_occurrences).__name__}")
    if len(n_occurrences) != n_patterns:
        raise ValueError(f"n_occurrences must hold one int per pattern ({n_patterns}), got {len(n_occurrences)}")
    return np.array([check_positive_int(n, "n_occurrences", minimum=0) for n in n_occurrences], dtype=np.int64)


def _check_occurrence_times(occurrence_times, n_patterns: int, start: float, stop: float) -> list[np.ndarray]:
    if isinstance(occurrence_times, pq.Quantity) and n_patterns == 1:
        occurrence_times = [occurrence_times]
    if isinstance(occurrence_times, pq.Quantity) or not isinstance(occurrence_times, Sequence):
        raise TypeError("occurrence_times must be a list of time Quantity arrays, one per pattern")
    if len(occurrence_times) != n_patterns:
        raise ValueError(f"occurrence_times must hold one Quantity array per pattern ({n_patterns}), "
                         f"got {len(occurrence_times)}")
    result = []
    for p, times in enumerate(occurrence_times):
        seconds = np.asarray(check_time_quantity(times, f"occurrence_times[{p}]", scalar=False).magnitude,
                             dtype=float).reshape(-1)
        if np.any(seconds < start) or np.any(seconds >= stop):
            raise ValueError(f"occurrence_times[{p}] must lie in [t_start, t_stop) = [{start}, {stop}) s")
        result.append(np.sort(seconds))
    return result


def _check_time_warp(time_warp, n_total: int | None) -> tuple[str, object]:
    """Return ("const", w), ("range", (lo, hi)) or ("array", values)."""
    if time_warp is None:
        return "const", 1.0
    if isinstance(time_warp, numbers.Real) and not isinstance(time_warp, (bool, np.bool_)):
        value = check_nonnegative_float(time_warp, "time_warp", positive=True)
        return "const", value
    if isinstance(time_warp, tuple):
        if len(time_warp) != 2:
            raise ValueError(f"time_warp as a tuple must be a (low, high) range, got {len(time_warp)} values")
        low = check_nonnegative_float(time_warp[0], "time_warp", positive=True)
        high = check_nonnegative_float(time_warp[1], "time_warp", positive=True)
        if high < low:
            raise ValueError(f"time_warp range must have low <= high, got {time_warp}")
        return "range", (low, high)
    if isinstance(time_warp, (list, np.ndarray)):
        values = np.asarray(time_warp, dtype=float).reshape(-1)
        if np.any(~np.isfinite(values)) or np.any(values <= 0):
            raise ValueError("time_warp values must be finite and > 0")
        if n_total is not None and values.size != n_total:
            raise ValueError(f"time_warp must hold one factor per occurrence ({n_total}), got {values.size}")
        return "array", values
    raise TypeError(f"time_warp must be None, a float, a (low, high) tuple or an array, got {type(time_warp).__name__}")


def _draw_warps(kind: str, spec, labels: np.ndarray, n_per_pattern: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Warp of each occurrence listed in ``labels`` (time order).

    An array spec lists pattern 0's occurrences first (in time order), then pattern 1's, ...
    """
    n_total = labels.size
    if kind == "const":
        return np.full(n_total, float(spec))
    if kind == "range":
        low, high = spec
        return rng.uniform(low, high, n_total) if high > low else np.full(n_total, low)
    if spec.size != n_total:
        raise ValueError(f"time_warp must hold one factor per occurrence ({n_total}), got {spec.size}")
    first = np.r_[0, np.cumsum(n_per_pattern)[:-1]]
    rank = np.zeros(n_total, dtype=np.int64)
    for p in range(n_per_pattern.size):
        where = labels == p
        rank[where] = np.arange(int(where.sum()))
    return spec[first[labels] + rank]


def _interleave(n_per_pattern: np.ndarray) -> np.ndarray:
    """Pattern labels spread evenly over a grid (pattern p at fractional positions (k + 0.5) / n_p)."""
    labels = np.repeat(np.arange(n_per_pattern.size), n_per_pattern)
    positions = np.concatenate([(np.arange(n) + 0.5) / n for n in n_per_pattern if n > 0] or [np.zeros(0)])
    order = np.lexsort((labels, positions))
    return labels[order]


@dataclass(frozen=True)
class _Window:
    """The shared recording window of a list of trains, in seconds and in each train's own units."""

    start: float
    stop: float
    seconds_per_unit: np.ndarray
    local_start: np.ndarray
    local_stop: np.ndarray


def _shared_window(trains: list[neo.SpikeTrain]) -> _Window:
    """The ``[t_start, t_stop)`` all ``trains`` share (``ValueError`` if one differs)."""
    seconds_per_unit = _seconds_per_unit(trains)
    # neo keeps t_start and t_stop in the train's own units
    local_start = np.array([float(train.t_start.magnitude) for train in trains])
    local_stop = np.array([float(train.t_stop.magnitude) for train in trains])
    start = float(local_start[0] * seconds_per_unit[0])
    stop = float(local_stop[0] * seconds_per_unit[0])
    differs = ~(np.isclose(local_start * seconds_per_unit, start) & np.isclose(local_stop * seconds_per_unit, stop))
    if np.any(differs):
        raise ValueError(f"spiketrains must share t_start and t_stop; spiketrains[{int(np.argmax(differs))}] differs")
    return _Window(start, stop, seconds_per_unit, local_start, local_stop)


def _place_given(onsets_per_pattern: list[np.ndarray], time_warp,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels, onsets (s) and warps of explicitly given occurrences, sorted by onset."""
    counts = np.array([t.size for t in onsets_per_pattern], dtype=np.int64)
    labels = np.repeat(np.arange(counts.size), counts)
    onsets = np.concatenate(onsets_per_pattern) if labels.size else np.zeros(0)
    warp_kind, warp_spec = _check_time_warp(time_warp, int(counts.sum()))
    warps = _draw_warps(warp_kind, warp_spec, labels, counts, rng)
    order = np.lexsort((labels, onsets))
    return labels[order], onsets[order], warps[order]


def _max_warp(time_warp) -> float:
    """The largest warp ``time_warp`` can draw (1 for no warping)."""
    kind, spec = _check_time_warp(time_warp, None)
    if kind == "const":
        return float(spec)
    if kind == "range":
        return float(spec[1])
    return float(spec.max(initial=1.0))


def _fill_counts(n_patterns: int, duration: float, max_span: float, gap: float, placement: str) -> np.ndarray:
    """Default occurrences per pattern: as many as fit (half of that for random placement), split evenly."""
    if max_span + gap <= 0:
        raise ValueError("min_gap must be > 0 when every pattern has zero span (cannot size the grid)")
    capacity = int(np.floor(duration / (max_span + gap)))
    n_total = capacity if placement == "grid" else capacity // 2
    if n_total < n_patterns:
        raise ValueError(f"the recording ({duration} s) is too short for one occurrence per pattern with "
                         f"span {max_span} s and min_gap {gap} s")
    return np.full(n_patterns, n_total // n_patterns, dtype=np.int64)


def _grid_onsets(occ_spans: np.ndarray, start: float, duration: float, gap: float) -> np.ndarray:
    """Onsets of occurrences centred in equal slots of the window (``ValueError`` if they do not fit)."""
    n_total = occ_spans.size
    period = duration / max(n_total, 1)
    onsets = start + (np.arange(n_total) + 0.5) * period - occ_spans / 2
    if n_total and (np.any(occ_spans > period) or
                    (n_total > 1 and np.min(onsets[1:] - onsets[:-1] - occ_spans[:-1]) < gap - 1e-12)):
        raise ValueError(f"n_occurrences ({n_total} in all) do not fit on a grid over {duration} s with "
                         f"min_gap {gap} s; lower n_occurrences or min_gap")
    return onsets


def _random_onsets(occ_spans: np.ndarray, start: float, duration: float, gap: float,
                   rng: np.random.Generator) -> np.ndarray:
    """Uniformly random onsets keeping ``gap`` between occurrences (``ValueError`` if they do not fit)."""
    n_total = occ_spans.size
    free = duration - occ_spans.sum() - max(n_total - 1, 0) * gap
    if free < 0:
        raise ValueError(f"n_occurrences ({n_total} in all) do not fit in {duration} s with min_gap {gap} s; "
                         "lower n_occurrences or min_gap")
    slack = np.sort(rng.uniform(0.0, free, n_total))
    before = np.r_[0.0, np.cumsum(occ_spans[:-1] + gap)] if n_total else np.zeros(0)
    return start + slack + before


def _place_in_window(spans: np.ndarray, counts: np.ndarray | None, placement: str, min_gap_s: float | None,
                     time_warp, start: float, stop: float,
                     rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels, onsets (s) and warps of occurrences placed by ``placement``, sorted by onset.

    ``spans`` are the patterns' unwarped spans (s); ``counts`` the occurrences per pattern
    (``None``: as many as fit).
    """
    max_span = float(spans.max()) * _max_warp(time_warp)
    gap = max_span if min_gap_s is None else min_gap_s
    duration = stop - start
    if counts is None:
        counts = _fill_counts(spans.size, duration, max_span, gap, placement)
    warp_kind, warp_spec = _check_time_warp(time_warp, int(counts.sum()))
    if placement == "grid":
        labels = _interleave(counts)
    else:
        labels = rng.permutation(np.repeat(np.arange(spans.size), counts))
    warps = _draw_warps(warp_kind, warp_spec, labels, counts, rng)
    occ_spans = spans[labels] * warps
    if placement == "grid":
        onsets = _grid_onsets(occ_spans, start, duration, gap)
    else:
        onsets = _random_onsets(occ_spans, start, duration, gap, rng)
    # an onset must be inside the window (float rounding at the right edge)
    onsets = np.minimum(onsets, np.nextafter(stop, -np.inf))
    return labels, onsets, warps


def _draw_spikes(members: list[np.ndarray], onset_lags: list[np.ndarray], participation: list[np.ndarray],
                 jitter_sd: float, labels: np.ndarray, onsets: np.ndarray, warps: np.ndarray,
                 rng: np.random.Generator) -> tuple[PlantedSpikes, int]:
    """Every member's spike in every occurrence: warped lag, participation draw, jitter.

    Returns the spikes (pattern by pattern, occurrence-major) and the number of member-occurrence
    pairs the participation draw left out.
    """
    pieces = {"neuron": [], "times_s": [], "occurrence": [], "pattern_id": [], "member": []}
    n_skipped = 0
    for p, (member, lag, part) in enumerate(zip(members, onset_lags, participation)):
        occ = np.flatnonzero(labels == p)
        if occ.size == 0:
            continue
        shape = (occ.size, member.size)
        times = onsets[occ][:, None] + warps[occ][:, None] * lag[None, :]
        fires = rng.random(shape) < part[None, :]
        if jitter_sd > 0:
            times = times + rng.normal(0.0, jitter_sd, shape)
        n_skipped += int((~fires).sum())
        pieces["neuron"].append(np.broadcast_to(member[None, :], shape)[fires])
        pieces["times_s"].append(times[fires])
        pieces["occurrence"].append(np.broadcast_to(occ[:, None], shape)[fires])
        pieces["pattern_id"].append(np.full(int(fires.sum()), p, dtype=np.int64))
        pieces["member"].append(np.broadcast_to(np.arange(shape[1])[None, :], shape)[fires])
    if not pieces["neuron"]:
        return PlantedSpikes._empty(), n_skipped
    return PlantedSpikes(**{key: np.concatenate(value) for key, value in pieces.items()}), n_skipped


def _split_by_window(spikes: PlantedSpikes, window: _Window) -> tuple[PlantedSpikes, PlantedSpikes, np.ndarray]:
    """The spikes inside ``[t_start, t_stop)``, those outside, and the inside ones' times in their train's units."""
    local_times = spikes.times_s / window.seconds_per_unit[spikes.neuron]
    inside = (local_times >= window.local_start[spikes.neuron]) & (local_times < window.local_stop[spikes.neuron])
    dropped = spikes._select(~inside)
    if len(dropped):
        logger.info("plant_sequences: %d planted spikes fell outside [%g, %g) s and were left out", len(dropped),
                    window.start, window.stop)
    return spikes._select(inside), dropped, local_times[inside]


def _merge_with_background(trains: list[neo.SpikeTrain], planted: PlantedSpikes,
                           local_times: np.ndarray) -> list[neo.SpikeTrain]:
    """New sorted trains: each background train plus its planted spikes, with the ``planted_*`` annotations."""
    order = np.lexsort((local_times, planted.neuron))
    bounds = np.searchsorted(planted.neuron[order], np.arange(len(trains) + 1))
    out = []
    for index, train in enumerate(trains):
        sl = order[bounds[index]:bounds[index + 1]]
        background = np.asarray(train.magnitude, dtype=float)
        times = np.concatenate((background, local_times[sl]))
        pattern = np.concatenate((np.full(background.size, -1, dtype=np.int64), planted.pattern_id[sl]))
        occurrence = np.concatenate((np.full(background.size, -1, dtype=np.int64), planted.occurrence[sl]))
        sort = np.argsort(times, kind="stable")
        out.append(_copy_train(train, times[sort], {"planted_pattern": pattern[sort],
                                                    "planted_occurrence": occurrence[sort]}))
    return out


def _ground_truth(members: list[np.ndarray], onset_lags: list[np.ndarray], labels: np.ndarray, onsets: np.ndarray,
                  warps: np.ndarray, planted: PlantedSpikes, dropped: PlantedSpikes, n_skipped: int,
                  window: _Window) -> PlantedSequences:
    """The :class:`PlantedSequences` of placed occurrences: centres and spans follow from onsets, lags and warps."""
    spans = np.array([lag.max() for lag in onset_lags])
    mean_lags = np.array([lag.mean() for lag in onset_lags])
    return PlantedSequences(
        members=members, onset_lags=[pq.Quantity(lag, "s") for lag in onset_lags],
        lags=[pq.Quantity(lag - lag.mean(), "s") for lag in onset_lags], pattern_id=labels.astype(np.int64),
        onsets=pq.Quantity(onsets, "s"), centers=pq.Quantity(onsets + warps * mean_lags[labels], "s"),
        spans=pq.Quantity(spans[labels] * warps, "s"), warps=np.asarray(warps, dtype=float), planted=planted,
        dropped=dropped, n_skipped=n_skipped, t_start=pq.Quantity(window.start, "s"),
        t_stop=pq.Quantity(window.stop, "s"))


def plant_sequences(spiketrains, members, *, lags=None, lag_step: pq.Quantity = 5 * pq.ms,
                    occurrence_times=None, n_occurrences=None, placement: str = "random",
                    min_gap: pq.Quantity | None = None, participation=1.0, jitter: pq.Quantity = 0 * pq.ms,
                    time_warp=None, random_state=None) -> tuple[list[neo.SpikeTrain], PlantedSequences]:
    """Add lagged spike sequences to background trains and record every planted spike.

    In an occurrence with onset ``t0`` and warp ``w``, each member ``i`` of the pattern fires,
    with probability ``participation``, one spike at ``t0 + w * onset_lag[i] + N(0, jitter^2)``.
    Spikes that land outside ``[t_start, t_stop)`` are left out (listed in ``truth.dropped``),
    never clipped. Background spikes are all kept.

    Parameters
    ----------
    spiketrains : list of neo.SpikeTrain
        Background, one train per neuron, all with the same ``t_start`` and ``t_stop``.
    members : list of array_like of int
        One index array per pattern, in sequence order (a single 1-D array is one pattern).
        Patterns may be disjoint, share neurons, or use the same neurons in another order; a
        pattern may not repeat a neuron.
    lags : list of pq.Quantity, optional
        One time array per pattern with each member's lag (any reference: they are shifted so the
        earliest is 0). Default: linear, member ``i`` at ``i * lag_step``.
    lag_step : pq.Quantity
        Step of the default linear lags (default 5 ms).
    occurrence_times : list of pq.Quantity, optional
        One array of onsets per pattern (each in ``[t_start, t_stop)``). Occurrences may then
        overlap; ``n_occurrences``, ``placement`` and ``min_gap`` are ignored.
    n_occurrences : int or sequence of int, optional
        Occurrences per pattern. Default: as many as fit in the grid of period
        ``max_span + min_gap`` (``placement="grid"``), or half of that (``"random"``), split
        evenly over the patterns.
    placement : {"random", "grid"}
        ``"random"``: onsets uniformly at random among all arrangements in which occurrences of all
        patterns keep at least ``min_gap`` between the end of one and the onset of the next and
        lie inside the window. ``"grid"``: the window is split into equal slots, one occurrence
        centred in each, patterns interleaved evenly.
    min_gap : pq.Quantity, optional
        Minimum time from the end (last member lag) of one occurrence to the onset of the next,
        across all patterns. Default: the longest (warped) pattern span.
    participation : float or sequence
        Probability that a member fires in an occurrence: one value, or one value or per-member
        array per pattern.
    jitter : pq.Quantity
        Standard deviation of the Gaussian jitter of each planted spike (default 0 ms).
    time_warp : None, float, (low, high) tuple or array_like
        Per-occurrence stretch of the lags: a constant, a uniform range drawn per occurrence, or
        one factor per occurrence listed pattern by pattern (pattern 0's occurrences in time
        order, then pattern 1's, ...). ``None``: no warping.
    random_state : None, int or numpy.random.Generator
        Source of randomness.

    Returns
    -------
    spiketrains : list of neo.SpikeTrain
        New sorted trains (units, window, name and annotations of the input) with array
        annotations ``planted_pattern`` and ``planted_occurrence`` (-1 for background spikes).
    truth : PlantedSequences
        Occurrences (sorted by onset), every planted and every dropped spike.

    Raises
    ------
    TypeError
        For a float where a Quantity is expected, or wrongly typed ``members``/``lags``.
    ValueError
        For bad values (out-of-range members, participation outside [0, 1], negative jitter,
        occurrences that do not fit, ...), before any work.

    Examples
    --------
    >>> import numpy as np, quantities as pq
    >>> background = poisson_background(10, 2 * pq.Hz, 0 * pq.s, 20 * pq.s, random_state=0)
    >>> trains, truth = plant_sequences(background, [np.array([1, 4, 7])], lag_step=10 * pq.ms,
    ...                                 n_occurrences=5, random_state=1)
    >>> truth.n_occurrences, len(truth.planted)
    (5, 15)
    >>> truth.lags[0]
    array([-0.01,  0.  ,  0.01]) * s
    """
    trains = _check_spiketrains(spiketrains)
    window = _shared_window(trains)
    members_checked = _check_members(members, len(trains))
    n_patterns = len(members_checked)
    onset_lags = _check_lags(lags, lag_step, members_checked)
    part = _check_participation(participation, members_checked)
    jitter_sd = float(check_time_quantity(jitter, "jitter", nonnegative=True).magnitude)
    if placement not in _PLACEMENTS:
        raise ValueError(f"placement must be one of {_PLACEMENTS}, got {placement!r}")
    gap_q = check_time_quantity(min_gap, "min_gap", allow_none=True, nonnegative=True)
    gap_s = None if gap_q is None else float(gap_q.magnitude)
    counts = _check_n_occurrences(n_occurrences, n_patterns)
    explicit = None
    if occurrence_times is not None:
        explicit = _check_occurrence_times(occurrence_times, n_patterns, window.start, window.stop)
        counts = np.array([t.size for t in explicit], dtype=np.int64)
    _check_time_warp(time_warp, None if counts is None else int(counts.sum()))
    rng = check_random_state(random_state)

    if explicit is not None:
        labels, onsets, warps = _place_given(explicit, time_warp, rng)
    else:
        spans = np.array([lag.max() for lag in onset_lags])
        labels, onsets, warps = _place_in_window(spans, counts, placement, gap_s, time_warp, window.start,
                                                 window.stop, rng)
    spikes, n_skipped = _draw_spikes(members_checked, onset_lags, part, jitter_sd, labels, onsets, warps, rng)
    planted, dropped, local_times = _split_by_window(spikes, window)
    out = _merge_with_background(trains, planted, local_times)
    truth = _ground_truth(members_checked, onset_lags, labels, onsets, warps, planted, dropped, n_skipped, window)
    logger.debug("plant_sequences: %d occurrences of %d patterns, %d spikes planted, %d dropped, %d skipped",
                 truth.n_occurrences, n_patterns, len(planted), len(dropped), n_skipped)
    return out, truth


# ---------------------------------------------------------------------------------------------
# one-call recordings
# ---------------------------------------------------------------------------------------------
def _layout_members(n_neurons: int, n_patterns: int, size: int, layout: str, overlap: float,
                    rng: np.random.Generator) -> list[np.ndarray]:
    if layout == "disjoint":
        chosen = rng.choice(n_neurons, n_patterns * size, replace=False)
        return [chosen[p * size:(p + 1) * size] for p in range(n_patterns)]
    if layout == "reverse":
        n_distinct = (n_patterns + 1) // 2
        chosen = rng.choice(n_neurons, n_distinct * size, replace=False)
        members = []
        for p in range(n_patterns):
            base = chosen[(p // 2) * size:(p // 2 + 1) * size]
            members.append(base if p % 2 == 0 else base[::-1].copy())
        return members
    n_shared = int(round(overlap * size))
    n_fresh = size - n_shared
    chosen = rng.choice(n_neurons, size + (n_patterns - 1) * n_fresh, replace=False)
    members = [chosen[:size]]
    used = size
    for _ in range(1, n_patterns):
        shared = rng.choice(members[-1], n_shared, replace=False)
        fresh = chosen[used:used + n_fresh]
        used += n_fresh
        members.append(rng.permutation(np.concatenate((shared, fresh))))
    return members


def _needed_neurons(n_patterns: int, size: int, layout: str, overlap: float) -> int:
    if layout == "disjoint":
        return n_patterns * size
    if layout == "reverse":
        return ((n_patterns + 1) // 2) * size
    return size + (n_patterns - 1) * (size - int(round(overlap * size)))


def sequence_recording(n_neurons: int = 100, n_patterns: int = 1, members_per_pattern: int = 20, *,
                       layout: str = "disjoint", overlap: float = 0.5, duration: pq.Quantity = 60 * pq.s,
                       t_start: pq.Quantity = 0 * pq.s, bin_size: pq.Quantity = 5 * pq.ms,
                       rate: pq.Quantity = 5 * pq.Hz, refractory_period: pq.Quantity | None = None,
                       lag_step: pq.Quantity = 5 * pq.ms, n_occurrences=20, placement: str = "random",
                       min_gap: pq.Quantity | None = None, participation=0.9, jitter: pq.Quantity = 1 * pq.ms,
                       time_warp=None, random_state=None) -> SyntheticRecording:
    """A Poisson recording with planted sequences, its binned raster and exact ground truth.

    Members are drawn at random from all neurons; member ``i`` of a pattern fires at
    ``i * lag_step`` after the occurrence onset (times the occurrence's warp), with probability
    ``participation`` and Gaussian ``jitter``. See :func:`plant_sequences` for placement.

    Parameters
    ----------
    n_neurons : int
        Number of neurons (default 100).
    n_patterns : int
        Number of distinct patterns (default 1).
    members_per_pattern : int
        Members of each pattern (default 20).
    layout : {"disjoint", "overlapping", "reverse"}
        ``"disjoint"``: no neuron in two patterns. ``"overlapping"``: each pattern after the first
        shares ``round(overlap * members_per_pattern)`` neurons (drawn at random) with the previous
        one, at random positions in its order. ``"reverse"``: pattern ``2k + 1`` is pattern ``2k``'s
        neurons in reverse order (pairs are disjoint from each other).
    overlap : float
        Shared fraction for ``layout="overlapping"``, in [0, 1].
    duration : pq.Quantity
        Recording length (default 60 s); the window is ``[t_start, t_start + duration)``.
    t_start : pq.Quantity
        Start of the recording (default 0 s).
    bin_size : pq.Quantity
        Bin width of :attr:`SyntheticRecording.raster` (default 5 ms).
    rate : pq.Quantity
        Background Poisson rate, scalar or per neuron (default 5 Hz).
    refractory_period : pq.Quantity, optional
        Background dead time.
    lag_step : pq.Quantity
        Time between consecutive members (default 5 ms).
    n_occurrences : int, sequence of int or None
        Occurrences per pattern (default 20; ``None``: as many as fit, see :func:`plant_sequences`).
    placement : {"random", "grid"}
        How occurrences are placed (random onsets by default, so they are not periodic).
    min_gap : pq.Quantity, optional
        Minimum silence between occurrences (default: the longest pattern span).
    participation : float or sequence
        Probability that a member fires in an occurrence (default 0.9).
    jitter : pq.Quantity
        Gaussian spike-time jitter SD (default 1 ms).
    time_warp : None, float, (low, high) tuple or array_like
        Per-occurrence stretch of the lags (see :func:`plant_sequences`).
    random_state : None, int or numpy.random.Generator
        Source of randomness.

    Returns
    -------
    SyntheticRecording

    Examples
    --------
    >>> import quantities as pq
    >>> rec = sequence_recording(n_neurons=30, n_patterns=2, members_per_pattern=5, duration=20 * pq.s,
    ...                          n_occurrences=4, random_state=0)
    >>> len(rec.spiketrains), len(rec.ground_truth), rec.raster.shape
    (30, 8, (30, 4000))
    >>> [float(abs(lag.sum())) < 1e-12 for lag in rec.lags]
    [True, True]
    """
    n_neurons = check_positive_int(n_neurons, "n_neurons")
    n_patterns = check_positive_int(n_patterns, "n_patterns")
    members_per_pattern = check_positive_int(members_per_pattern, "members_per_pattern")
    if layout not in _LAYOUTS:
        raise ValueError(f"layout must be one of {_LAYOUTS}, got {layout!r}")
    overlap = check_probability(overlap, "overlap")
    if members_per_pattern > n_neurons:
        raise ValueError(f"members_per_pattern ({members_per_pattern}) exceeds n_neurons ({n_neurons})")
    needed = _needed_neurons(n_patterns, members_per_pattern, layout, overlap)
    if needed > n_neurons:
        raise ValueError(f"members_per_pattern={members_per_pattern} with n_patterns={n_patterns} and layout "
                         f"{layout!r} needs {needed} neurons, but n_neurons is {n_neurons}")
    duration_q = check_time_quantity(duration, "duration", positive=True)
    start_q = check_time_quantity(t_start, "t_start")
    bin_q = check_time_quantity(bin_size, "bin_size", positive=True)
    stop_q = start_q + duration_q
    _check_rate(rate, n_neurons)
    check_time_quantity(lag_step, "lag_step", nonnegative=True)
    check_time_quantity(jitter, "jitter", nonnegative=True)
    check_time_quantity(min_gap, "min_gap", allow_none=True, nonnegative=True)
    check_time_quantity(refractory_period, "refractory_period", allow_none=True, nonnegative=True)
    if placement not in _PLACEMENTS:
        raise ValueError(f"placement must be one of {_PLACEMENTS}, got {placement!r}")
    _check_n_occurrences(n_occurrences, n_patterns)
    _check_time_warp(time_warp, None)
    if not (isinstance(participation, numbers.Real) and not isinstance(participation, (bool, np.bool_))):
        _check_participation(participation, [np.zeros(members_per_pattern)] * n_patterns)
    else:
        check_probability(participation, "participation")
    rng = check_random_state(random_state)

    members = _layout_members(n_neurons, n_patterns, members_per_pattern, layout, overlap, rng)
    background = poisson_background(n_neurons, rate, start_q, stop_q, refractory_period=refractory_period,
                                    random_state=rng)
    trains, truth = plant_sequences(background, members, lag_step=lag_step, n_occurrences=n_occurrences,
                                    placement=placement, min_gap=min_gap, participation=participation, jitter=jitter,
                                    time_warp=time_warp, random_state=rng)
    raster = plan_raster(trains, bin_q, t_start=start_q, t_stop=stop_q).bin()
    return SyntheticRecording(spiketrains=trains, ground_truth=truth.to_epoch(), members=truth.members,
                              lags=truth.lags, planted_spikes=truth.planted, raster=raster, bin_size=bin_q,
                              t_start=start_q, t_stop=stop_q, truth=truth)


# ---------------------------------------------------------------------------------------------
# the paper's recipe
# ---------------------------------------------------------------------------------------------
def reference_recipe(background, *, seqlen: int = 120, p_drop: float = 0.1, gap: int = 400,
                     jitter_std: float = 10, random_state=None) -> ReferenceRecipe:
    """Embed one sequence the way the convSeq paper's demo does (all in bins).

    Every ``gap`` bins (starts ``0, gap, 2 gap, ...`` while ``start < T - gap``, as in the reference
    code) an occurrence begins. ``seqlen`` neurons drawn at random are the sequence; member ``i``
    is meant to fire at ``start + i + round(N(0, jitter_std^2))``. That spike is kept with
    probability ``1 - p_drop``, and only if at least one *non-sequence* neuron fires in that bin:
    then one of them (chosen at random) loses its spike there and the member's cell is set to 1,
    which keeps the population spike count per bin (not each neuron's rate). If the member's
    cell already holds a spike, nothing changes (counted in ``n_coincident``). Jittered bins
    outside ``[0, T)`` are not added. Finally the rows are permuted at random.

    **Quirk.** A kept spike survives only where a non-sequence neuron happens to fire in the same
    bin, so on sparse data far fewer sequence spikes survive than ``1 - p_drop`` suggests: about a
    third at ``p_drop = 0.1`` on the ISI-shuffled CA1 raster (33.5 % with seed 0 in
    ``benchmarks/results/bench_core.json``).
    ``surviving_fraction`` reports the actual figure.

    Parameters
    ----------
    background : numpy.ndarray or SpikeRaster
        ``N x T`` background counts (usually 0/1), e.g. the output of :func:`shuffle_isis_raster`.
    seqlen : int
        Sequence length in neurons (and in bins: one member per bin), ``<= N``.
    p_drop : float
        Probability that a member's spike is dropped, in [0, 1].
    gap : int
        Bins between consecutive occurrence starts; needs ``gap < T``.
    jitter_std : float
        Standard deviation of the (rounded) Gaussian jitter, in bins.
    random_state : None, int or numpy.random.Generator
        Source of randomness.

    Returns
    -------
    ReferenceRecipe

    Raises
    ------
    ValueError
        For ``p_drop`` outside [0, 1], ``seqlen > N``, ``gap >= T`` or a bad raster.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> background = (rng.random((50, 2000)) < 0.05).astype(np.uint8)
    >>> recipe = reference_recipe(background, seqlen=20, gap=200, jitter_std=1, random_state=0)
    >>> recipe.n_occurrences, int(recipe.raster.sum()) == int(background.sum())
    (9, True)
    >>> recipe.midpoints_bins[:2]
    array([  9.5, 209.5])
    """
    if isinstance(background, SpikeRaster):
        dense = background.to_dense()
    elif isinstance(background, np.ndarray):
        dense = background
    else:
        raise TypeError(f"background must be a numpy.ndarray or a SpikeRaster, got {type(background).__name__}")
    if dense.ndim != 2:
        raise ValueError(f"background must be 2-D (n_neurons x n_bins), got shape {dense.shape}")
    if not np.issubdtype(dense.dtype, np.number) or np.issubdtype(dense.dtype, np.complexfloating):
        raise TypeError(f"background must hold real counts, got dtype {dense.dtype}")
    if np.any(dense < 0) or (np.issubdtype(dense.dtype, np.floating) and np.any(~np.isfinite(dense))):
        raise ValueError("background must hold finite non-negative counts")
    seqlen = check_positive_int(seqlen, "seqlen")
    p_drop = check_probability(p_drop, "p_drop")
    gap = check_positive_int(gap, "gap")
    jitter_std = check_nonnegative_float(jitter_std, "jitter_std")
    n_neurons, n_bins = dense.shape
    if seqlen > n_neurons:
        raise ValueError(f"seqlen ({seqlen}) must not exceed the number of neurons ({n_neurons})")
    if gap >= n_bins:
        raise ValueError(f"gap ({gap}) must be smaller than the number of bins ({n_bins})")
    rng = check_random_state(random_state)

    starts = np.arange(0, n_bins - gap, gap, dtype=np.int64)
    n_occ = starts.size
    sequence = rng.choice(n_neurons, seqlen, replace=False)
    jitter = np.rint(rng.normal(0.0, jitter_std, (n_occ, seqlen))).astype(np.int64) if jitter_std > 0 else \
        np.zeros((n_occ, seqlen), dtype=np.int64)
    keep = rng.random((n_occ, seqlen)) >= p_drop
    target = starts[:, None] + np.arange(seqlen)[None, :] + jitter

    work = np.asfortranarray(dense.copy())  # column access below
    is_member = np.zeros(n_neurons, dtype=bool)
    is_member[sequence] = True
    non_member = np.flatnonzero(~is_member)
    in_range = (target >= 0) & (target < n_bins)
    n_out_of_range = int((keep & ~in_range).sum())
    planted_rows, planted_bins, planted_occ = [], [], []
    n_coincident = 0
    occ_index, member_index = np.nonzero(keep & in_range)  # row-major: occurrence by occurrence, member order
    choice_u = rng.random(occ_index.size)
    for k, (o, i) in enumerate(zip(occ_index.tolist(), member_index.tolist())):
        j = int(target[o, i])
        firing = non_member[work[non_member, j] > 0]
        if firing.size == 0:
            continue
        row = int(sequence[i])
        if work[row, j] > 0:
            n_coincident += 1
            continue
        victim = firing[int(choice_u[k] * firing.size)]
        work[victim, j] -= 1
        work[row, j] = 1
        planted_rows.append(row)
        planted_bins.append(j)
        planted_occ.append(o)

    permutation = rng.permutation(n_neurons)
    inverse = np.empty(n_neurons, dtype=np.int64)
    inverse[permutation] = np.arange(n_neurons)
    raster = np.ascontiguousarray(work[permutation])
    n_added = len(planted_rows)
    surviving = n_added / (seqlen * n_occ)
    logger.debug("reference_recipe: %d occurrences, %d of %d sequence spikes survived (%.3f)", n_occ, n_added,
                 seqlen * n_occ, surviving)
    return ReferenceRecipe(
        raster=raster, midpoints_bins=starts + (seqlen - 1) / 2.0, onsets_bins=starts,
        members=inverse[sequence], lags_bins=np.arange(seqlen) - (seqlen - 1) / 2.0,
        surviving_fraction=float(surviving), n_occurrences=int(n_occ), seqlen=seqlen, p_drop=p_drop, gap=gap,
        jitter_std=jitter_std, permutation=permutation,
        planted_neurons=inverse[np.asarray(planted_rows, dtype=np.int64)],
        planted_bins=np.asarray(planted_bins, dtype=np.int64),
        planted_occurrence=np.asarray(planted_occ, dtype=np.int64), n_coincident=n_coincident,
        n_out_of_range=n_out_of_range)
