"""What :func:`convseq_neo.detect` returns: :class:`DetectionResult` and its :class:`Pattern` objects.

Times are in seconds, converted from the core's bin positions by the raster
(:meth:`~convseq_neo.raster.SpikeRaster.position_to_time`), with exports to Neo objects (an ``Epoch`` of
occurrences, one ``Group`` per pattern, per-spike labels), Elephant's SPADE output shape and a
figure (:mod:`convseq_neo.plot`, imported only when a figure is asked for).
"""

from __future__ import annotations

import copy
import inspect
import json
import logging
import numbers
from dataclasses import dataclass
from typing import TYPE_CHECKING

import neo
import numpy as np
import pandas as pd
import quantities as pq

from convseq_neo._validation import check_random_state
from convseq_neo.io.intervals import TimeMap
from convseq_neo.io.neo import BinnedSpikeTrain, _train_name, as_spiketrains, plan_raster
from convseq_neo.raster import SpikeRaster

if TYPE_CHECKING:  # pragma: no cover
    from pathlib import Path

    from convseq_neo.core.estimator import ConvSeq

logger = logging.getLogger(__name__)

__all__ = ["DetectionResult", "Pattern", "OCCURRENCE_COLUMNS", "EPOCH_NAME"]

#: Columns of :attr:`DetectionResult.occurrences` (times in s).
OCCURRENCE_COLUMNS = ["pattern", "center", "onset", "offset", "peak", "pvalue"]
#: Name of the Epoch written by :meth:`DetectionResult.to_epoch`.
EPOCH_NAME = "convseq_occurrences"
#: Keyword arguments of neo.Epoch that a parameter name must not shadow (such names get a "convseq_" prefix).
_EPOCH_ARGUMENTS = frozenset(inspect.signature(neo.Epoch.__new__).parameters) | frozenset(
    inspect.signature(neo.Epoch.__init__).parameters)

def _flat(value):
    """A value NixIO stores as is: str, bool, int, float (None and other objects become strings)."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, str):
        return value
    if isinstance(value, np.random.Generator):
        return "numpy.random.Generator"
    return str(value)


def _positional(names: tuple) -> bool:
    """Whether ``names`` are only row numbers ("0", "1", ...): what unnamed trains and rasters get."""
    return tuple(names) == tuple(str(row) for row in range(len(names)))


def _unit_order(wanted: tuple, given: tuple, name: str) -> np.ndarray | None:
    """The rows of ``given`` in ``wanted`` order, matched by name; None to take them as given.

    Positional (None) when the names already agree, when either side has no names (row numbers
    only) or when ``wanted`` repeats a name. Otherwise the given names must be ``wanted`` in some
    order: a ``ValueError`` naming (up to 5 of) the missing units if not.
    """
    wanted, given = tuple(wanted), tuple(given)
    if given == wanted or _positional(wanted) or _positional(given) or len(set(wanted)) != len(wanted):
        return None
    if len(given) == len(wanted) and set(given) == set(wanted):
        lookup = {unit: row for row, unit in enumerate(given)}
        return np.array([lookup[unit] for unit in wanted], dtype=np.int64)
    present = set(given)
    missing = [unit for unit in wanted if unit not in present]
    extra = [unit for unit in dict.fromkeys(given) if unit not in set(wanted)]
    raise ValueError(f"{name} hold other units than the patterns were learned on: missing {missing[:5]}"
                     f"{' ...' if len(missing) > 5 else ''} ({len(missing)} in all), unexpected {extra[:5]}"
                     f"{' ...' if len(extra) > 5 else ''}; pass the same units (matched by train name: name, else "
                     "channel_id, unit_id or id)")


@dataclass(frozen=True, eq=False)
class Pattern:
    """One learned pattern: its members, their lags and the learned filter.

    Attributes
    ----------
    pattern_id : int
        Index ``k`` of the pattern (label ``"pattern{k}"``).
    neurons : numpy.ndarray of int
        Member neurons (raster rows = positions in the input list), ordered by lag.
    names : tuple of str
        Their train names (``name``, else ``channel_id``, else the row index).
    lags : pq.Quantity
        Each member's expected spike time relative to the occurrence centre, in s (the centre is
        the mean over members, so the lags average to about zero).
    scores : numpy.ndarray
        Membership z-scores of the members.
    pvalues : numpy.ndarray
        Membership p-values of the members (Sidak over lags; members pass BH at ``alpha``).
    filter : numpy.ndarray, shape (N, W)
        The learned filter over all neurons (rows sum to 1); column ``j`` is the lag
        ``(j - W // 2) * bin_size`` from the window centre.
    n_occurrences : int
        Number of significant occurrences.
    bin_size, width : pq.Quantity or None
        The time scale the pattern was learned (or, with a ``warp``, searched) at: the bin size
        and the filter window, in s. Patterns of one result of an automatic search may differ
        in scale (:class:`~convseq_neo.multiscale.MultiScaleResult`).
    tested_filter : numpy.ndarray, shape (N, W), or None
        The pattern as :meth:`DetectionResult.find` looks for it (``ConvSeq.tested_filters_``):
        after a cross-fitted fit, each member's log likelihood ratio around its lag, zero for every
        other neuron (for a pattern without members, its all-data tested filter; with
        ``significance="random_filters"``, the learned filter). None for a model loaded from a file
        that holds none (``find`` then applies :attr:`filter`).
    """

    pattern_id: int
    neurons: np.ndarray
    names: tuple
    lags: pq.Quantity
    scores: np.ndarray
    pvalues: np.ndarray
    filter: np.ndarray
    n_occurrences: int
    bin_size: pq.Quantity | None = None
    width: pq.Quantity | None = None
    tested_filter: np.ndarray | None = None

    @property
    def size(self) -> int:
        """Number of members."""
        return int(self.neurons.size)

    def __repr__(self) -> str:
        return f"Pattern({self.pattern_id}: {self.size} members, {self.n_occurrences} occurrences)"


class DetectionResult:
    """Detected sequences in seconds, with exports to Neo, Elephant's SPADE shape and a figure.

    Built by :func:`detect` (or :meth:`find`); every export is a pure function of it.

    Attributes
    ----------
    occurrences : pandas.DataFrame
        The significant occurrences, sorted by time: ``pattern`` (int), ``center`` (s: the
        pattern's centre, the mean of its members' spike times, not the raw window peak),
        ``onset`` and ``offset`` (s: the earliest and latest member's expected spike time),
        ``peak`` (the tested response height) and ``pvalue`` (uncorrected; all passed
        Benjamini-Hochberg at ``alpha``). Row ``i`` is entry ``i`` of :meth:`to_epoch`. On the
        recording's clock; a result of several segments adds a ``segment`` column (int: the
        segment's position in the Block, or sorting, given to :func:`detect`), its times are on
        that segment's own clock and its rows are sorted by segment, then time (see *Clocks*).
    candidates : pandas.DataFrame
        Every tested peak, same columns plus ``significant`` (and ``segment``), on the same clock.
    patterns : list of Pattern
        One per learned pattern.
    membership : pandas.DataFrame
        All neurons x patterns: ``pattern``, ``neuron``, ``name``, ``score``, ``pvalue``,
        ``member``, ``lag`` (s relative to the centre; NaN where the neuron never fired near an
        occurrence).
    model : ConvSeq
        The fitted core estimator (bins).
    raster : SpikeRaster
        The binned data; its ``bin_size_s`` and ``t_start_s`` are the time base (the analysis
        clock, see *Clocks*).
    responses : numpy.ndarray, shape (K, L)
        The filters' responses (the tested, cross-fitted ones after :func:`detect`, in the all-data
        filters' frame, so that an occurrence's peak bin holds its ``peak``; NaN at the few
        fold-border bins no fold covers; after :meth:`find`, those of the filters in their tested
        form, ``ConvSeq.tested_filters_``); index ``t`` is drawn at the middle of bin ``t``, on the
        analysis clock.
    thresholds : numpy.ndarray, shape (K, L), or None
        The height a peak needed to be significant at each time (None after :meth:`find`), on the
        analysis clock.
    parameters : dict
        Flat record (str, int, float, bool) of the method, the package version and every
        parameter; written into :meth:`to_epoch`'s annotations. With a :attr:`time_map` it also
        holds ``n_intervals``, ``intervals_total_s`` (the searched time), ``guard_bins``,
        ``n_segments`` and, on the recording's clock, ``recording_t_start_s``,
        ``recording_t_stop_s`` and ``searched_intervals_s`` (see *Clocks*).
    unit_names : tuple of str
        One name per neuron (raster row).
    time_map : convseq_neo.io.intervals.TimeMap or None
        How the analysis clock maps to the recording's, when the raster was laid out from several
        pieces: ``intervals=``, a pynapple ``TsGroup``'s time support, or several segments
        (:mod:`convseq_neo.io.intervals`). None when the raster is the recording itself.
    pattern_search : pandas.DataFrame or None
        After :func:`detect` with ``n_patterns="auto"`` at one window: every fit tried (1, 2, ...
        patterns), one row per fit and pattern, as ``MultiScaleResult.search``
        (:class:`~convseq_neo.multiscale.MultiScaleResult`); the kept fit's rows have ``chosen``
        True. None otherwise.

    Notes
    -----
    **Clocks.** Without a :attr:`time_map` there is one clock, the recording's. With one, the
    raster is the searched intervals (and segments) laid end to end with ``guard_bins``
    unobserved bins between them, on an *analysis clock* that starts at the first interval's
    start. On the analysis clock: :attr:`raster`, :attr:`responses`, :attr:`thresholds`,
    :attr:`t_start`, :attr:`t_stop`, the ``t_start_s``/``t_stop_s`` parameters and the x axis of
    :meth:`plot` (whose ``time_range`` is on it too). On the recording's clock (each segment's
    own): :attr:`occurrences`, :attr:`candidates`, :attr:`recording_t_start`,
    :attr:`recording_t_stop`, :meth:`searched_intervals` and every export (:meth:`to_epoch`,
    :meth:`annotate`, :meth:`spike_labels`, :meth:`to_pynapple`, :meth:`to_spade_dict`).
    ``time_map.to_analysis_frame(occurrences)``, ``time_map.to_analysis`` and
    ``time_map.to_recording`` convert between them; :meth:`plot` draws the occurrences through
    the first. So that a stored record (the Epoch's annotations, an NWB parameters table, a
    model file) maps back without the :attr:`time_map`, :attr:`parameters` then also holds, on
    the recording's clock: ``recording_t_start_s`` and ``recording_t_stop_s`` (floats; for a
    result of several segments, JSON strings of one value per segment, ``null`` for a segment
    not searched) and ``searched_intervals_s`` (a JSON string ``[[start, stop], ...]``, the
    searched intervals in order, laid end to end in that order on the analysis clock), plus
    ``searched_segments`` (a JSON string: the segment of each of those intervals) for several
    segments.

    **Several segments.** Exports that put times on one clock (:meth:`to_epoch`,
    :meth:`spike_labels`, :meth:`to_pynapple`, :meth:`to_spade_dict`) take a ``segment``
    argument, which a result of several segments requires (a ``ValueError`` naming ``segment``
    otherwise, rather than mixing clocks); :meth:`annotate` given a Block puts each segment's
    Epoch into that segment of the Block. For a result of one segment, ``segment`` may be
    left out (or be 0) and everything behaves as without it.

    Examples
    --------
    ``recording`` is a generated recording and ``result`` is :func:`convseq_neo.detect` run on its
    spike trains, as in that function's example. A Neo Block holding (copies of) those trains gets
    the result as an Epoch, one Group per pattern and per-spike labels:

    >>> import neo
    >>> block = neo.Block()
    >>> block.segments.append(neo.Segment())
    >>> block.segments[0].spiketrains.extend([train.copy() for train in recording.spiketrains])
    >>> pattern = result.patterns[0]
    >>> str(pattern.lags.dimensionality), bool(pattern.lags[0] < 0 < pattern.lags[-1])
    ('s', True)
    >>> epoch, groups = result.annotate(block, label_spikes=True)
    >>> block.segments[0].epochs[-1] is epoch, groups[0].name, len(block.groups)
    (True, 'pattern0', 1)
    >>> sorted(epoch.array_annotations)
    ['center', 'pattern_id', 'peak', 'pvalue']
    >>> "convseq_pattern" in block.segments[0].spiketrains[pattern.neurons[0]].array_annotations
    True
    >>> spade_like = result.to_spade_dict()["patterns"][0]
    >>> spade_like["signature"] == (pattern.size, pattern.n_occurrences)
    True
    >>> fig = result.plot()
    >>> type(fig).__name__
    'Figure'
    >>> again = result.find(recording.spiketrains, random_state=0)   # the learned patterns on (here: the same) data
    >>> again.patterns[0].neurons.tolist() == pattern.neurons.tolist()
    True
    >>> result.time_map is None, result.n_segments                 # the whole recording: one clock
    (True, 1)
    """

    def __init__(self, model: ConvSeq, raster: SpikeRaster, occurrences_bins: pd.DataFrame, responses: np.ndarray,
                 thresholds: np.ndarray | None, parameters: dict, source=None, time_map: TimeMap | None = None) -> None:
        if time_map is not None and not isinstance(time_map, TimeMap):
            raise TypeError(f"time_map must be a convseq_neo.io.intervals.TimeMap or None, got "
                            f"{type(time_map).__name__}")
        self.model = model
        self.raster = raster
        self.time_map = time_map
        self.responses = np.asarray(responses)
        self.thresholds = None if thresholds is None else np.asarray(thresholds)
        self.parameters = dict(parameters)
        self.unit_names = tuple(raster.unit_names) if raster.unit_names is not None else tuple(
            str(i) for i in range(raster.n_neurons))
        binned = isinstance(source, SpikeRaster) or (bool(BinnedSpikeTrain) and isinstance(source, BinnedSpikeTrain))
        self._source_input = None if binned else source
        self._source_trains = None
        candidates = pd.DataFrame({
            "pattern": occurrences_bins["pattern"].to_numpy(dtype=np.int64),
            "center": raster.position_to_time(occurrences_bins["center"].to_numpy(float)),
            "onset": raster.position_to_time(occurrences_bins["onset"].to_numpy(float)),
            "offset": raster.position_to_time(occurrences_bins["offset"].to_numpy(float)),
            "peak": occurrences_bins["peak"].to_numpy(float),
            "pvalue": occurrences_bins["pvalue"].to_numpy(float),
            "significant": occurrences_bins["significant"].to_numpy(bool),
        })
        # sorted on the analysis clock, where segments and intervals follow each other in order
        candidates = candidates.sort_values(["center", "pattern"], kind="stable").reset_index(drop=True)
        columns = list(OCCURRENCE_COLUMNS)
        if time_map is not None:
            candidates = _to_recording_clock(candidates, time_map)
            if "segment" in candidates:
                columns.append("segment")
            self.parameters.update({"n_intervals": time_map.n_pieces, "intervals_total_s": time_map.observed_s,
                                    "guard_bins": time_map.guard_bins, "n_segments": time_map.n_parts})
            self.parameters.update(_recording_parameters(time_map))
        self.candidates = candidates
        significant = self.candidates[self.candidates["significant"]]
        self.occurrences = significant[columns].reset_index(drop=True)
        self.membership, self.patterns = self._patterns()
        self.parameters["n_occurrences"] = len(self.occurrences)
        self.pattern_search = None

    # ------------------------------------------------------------------ construction
    @classmethod
    def _from_model(cls, model: ConvSeq, raster: SpikeRaster, *, source, applied: str,
                    occurrences_bins: pd.DataFrame | None = None, responses=None, thresholds=None,
                    time_map: TimeMap | None = None) -> DetectionResult:
        """The result of a fitted ``model`` on ``raster`` (its own tables unless ``occurrences_bins`` is given).

        With a ``time_map`` the occurrence times are mapped back to the recording's clock and the
        (candidate) occurrences whose centre lies in a guard gap are left out (see *Clocks*).
        """
        if occurrences_bins is None:
            occurrences_bins = model.occurrences_
            responses = getattr(model, "tested_responses_", model.responses_)
            thresholds = getattr(model, "thresholds_", None)
        return cls(model, raster, occurrences_bins, responses, thresholds, _parameters(model, raster, applied),
                   source, time_map=time_map)

    @property
    def _source(self) -> tuple | None:
        """The trains given to detect/find (resolved on first use), or None for binned inputs."""
        if self._source_trains is None and self._source_input is not None:
            self._source_trains = tuple(as_spiketrains(self._source_input))
        return self._source_trains

    def _patterns(self) -> tuple[pd.DataFrame, list[Pattern]]:
        counts = self.occurrences["pattern"].value_counts()
        n_occurrences = [int(counts.get(k, 0)) for k in range(self.model.filters_.shape[0])]
        return _membership_and_patterns(self.model, float(self.raster.bin_size_s), self.unit_names, n_occurrences)

    # ------------------------------------------------------------------ basic views
    @property
    def n_patterns(self) -> int:
        """Number of learned patterns."""
        return len(self.patterns)

    @property
    def bin_size(self) -> pq.Quantity:
        """Bin width (s)."""
        return pq.Quantity(self.raster.bin_size_s, "s")

    @property
    def t_start(self) -> pq.Quantity:
        """Start of the analysis window (s), on the analysis clock: the raster's ``t_start_s``.

        Without a :attr:`time_map` that is the recording's clock; with one, the start of the
        first searched interval (see :attr:`recording_t_start`).
        """
        return pq.Quantity(self.raster.t_start_s, "s")

    @property
    def t_stop(self) -> pq.Quantity:
        """End of the analysis window (s), on the analysis clock: the raster's ``t_stop_s``.

        With a :attr:`time_map` of several intervals this is the end of the laid-out raster
        (guard gaps included), not a time of the recording: see :attr:`recording_t_stop`.
        """
        return pq.Quantity(self.raster.t_stop_s, "s")

    @property
    def n_segments(self) -> int:
        """Number of segments the result spans (1 unless :func:`detect` was given several)."""
        return 1 if self.time_map is None else int(self.time_map.n_parts)

    @property
    def recording_t_start(self) -> pq.Quantity:
        """Where the search started on the recording's clock (s).

        :attr:`t_start` without a :attr:`time_map`, else the start of the first searched
        interval. A result of several segments gives one value per segment (a 1-D Quantity
        indexed by segment, each on that segment's clock; NaN for a segment that had no time
        inside ``intervals``, so nothing of it was searched).

        Examples
        --------
        >>> float(result.recording_t_start) == float(result.t_start)   # no intervals: one clock
        True
        """
        if self.time_map is None:
            return self.t_start
        return self._segment_bounds(self.time_map.start_s, np.min)

    @property
    def recording_t_stop(self) -> pq.Quantity:
        """Where the search stopped on the recording's clock (s).

        :attr:`t_stop` without a :attr:`time_map`, else the end of the last searched interval;
        one value per segment for a result of several segments (as :attr:`recording_t_start`, NaN
        for a segment that was not searched).
        """
        if self.time_map is None:
            return self.t_stop
        return self._segment_bounds(self.time_map.stop_s, np.max)

    def _segment_bounds(self, values_s: np.ndarray, reduce) -> pq.Quantity:
        """``reduce`` of each segment's piece bounds (NaN for a segment no interval reached)."""
        part = np.asarray(self.time_map.part)
        values = [float(reduce(values_s[part == p])) if np.any(part == p) else np.nan for p in range(self.n_segments)]
        return pq.Quantity(values[0] if self.n_segments == 1 else np.asarray(values), "s")

    def searched_intervals(self, segment: int | None = None) -> pq.Quantity:
        """The ``[start, stop)`` intervals that were searched, on the recording's clock.

        Parameters
        ----------
        segment : int, optional
            Which segment's intervals, on its own clock; required for a result of several
            segments.

        Returns
        -------
        pq.Quantity, shape (n, 2)
            In s, sorted: the ``intervals`` given to :func:`detect` (merged and clipped to the
            window, intersected with a TsGroup's support), or ``[[t_start, t_stop]]`` when the
            whole window was searched.

        Raises
        ------
        ValueError
            ``segment`` missing for a result of several segments, or out of range.

        Examples
        --------
        >>> result.searched_intervals().shape
        (1, 2)
        """
        part = self._check_segment(segment, "searched_intervals")
        if self.time_map is None:
            return pq.Quantity([[float(self.raster.t_start_s), float(self.raster.t_stop_s)]], "s")
        pieces = self.time_map.part == (part or 0)
        return pq.Quantity(np.stack([self.time_map.start_s[pieces], self.time_map.stop_s[pieces]], axis=1), "s")

    @property
    def width(self) -> pq.Quantity:
        """Filter window (s)."""
        return pq.Quantity(int(self.model.width) * self.raster.bin_size_s, "s")

    @property
    def _spike_tolerance_s(self) -> float:
        """How far (s) a member's spike may fall from its expected time and count: lag tolerance + half a bin."""
        return (self.model.lag_tolerance_ + 0.5) * self.raster.bin_size_s

    def __repr__(self) -> str:
        sizes = ", ".join(f"{p.size} members/{p.n_occurrences} occurrences" for p in self.patterns)
        if self.time_map is None:
            span = f"{float(self.t_start):g}-{float(self.t_stop):g} s"
        else:
            segments = f" of {self.n_segments} segments" if self.n_segments > 1 else ""
            span = f"{self.time_map.n_pieces} interval(s){segments}, {self.time_map.observed_s:g} s searched"
        return (f"DetectionResult({self.n_patterns} pattern(s): {sizes}; {self.raster.n_neurons} neurons, "
                f"{span}, bin_size={self.raster.bin_size_s * 1e3:g} ms, width={float(self.width) * 1e3:g} ms)")

    # ------------------------------------------------------------------ segments
    def _check_segment(self, segment, method: str) -> int | None:
        """``segment`` checked against this result's segments (None allowed only for a result of one segment)."""
        n = self.n_segments
        if segment is None:
            if n > 1:
                listed = ", ".join(map(str, range(n))) if n <= 12 else f"0, 1, ..., {n - 1}"
                raise ValueError(f"segment is required: this result spans {n} segments ({listed}), each with its own "
                                 f"clock, so {method} takes one at a time, e.g. {method}(segment=0)")
            return None
        if isinstance(segment, (bool, np.bool_)) or not isinstance(segment, numbers.Integral):
            raise TypeError(f"segment must be an int (a segment's position in the Block given to detect) or None, got "
                            f"{type(segment).__name__}")
        if not 0 <= int(segment) < n:
            raise ValueError(f"segment must be in [0, {n}) (the segments this result spans), got {segment}")
        return int(segment)

    def _occurrences_of(self, segment: int | None) -> pd.DataFrame:
        """The rows of :attr:`occurrences` of one segment (all rows for a result of one segment), index kept."""
        occ = self.occurrences
        if segment is None or "segment" not in occ:
            return occ
        return occ[occ["segment"].to_numpy() == segment]

    # ------------------------------------------------------------------ Neo exports
    def to_epoch(self, segment: int | None = None) -> neo.Epoch:
        """The significant occurrences as one :class:`neo.Epoch` named ``"convseq_occurrences"``.

        ``times`` are the onsets (s), ``durations`` ``offset - onset`` (s), ``labels``
        ``"pattern{k}"``. Array annotations (one value per occurrence): ``pattern_id`` (int),
        ``center`` (s), ``peak``, ``pvalue``. Annotations: :attr:`parameters` (flat scalars and
        strings only, so NixIO keeps them).

        Parameters
        ----------
        segment : int, optional
            For a result of several segments (required then): the segment whose occurrences to
            export, on its own clock. Its Epoch also has the array annotation ``occurrence`` (the
            row of :attr:`occurrences` of each entry) and the annotation ``segment_index``. A
            result of one segment takes None (or 0): entry ``i`` is row ``i`` of
            :attr:`occurrences`.

        Returns
        -------
        neo.Epoch

        Raises
        ------
        ValueError
            ``segment`` missing for a result of several segments (the message lists them), or out
            of range.
        TypeError
            ``segment`` not an int.

        Examples
        --------
        See :func:`detect`.
        """
        part = self._check_segment(segment, "to_epoch")
        occ = self._occurrences_of(part)
        labels = np.array([f"pattern{k}" for k in occ["pattern"]], dtype="U32")
        array_annotations = {"pattern_id": occ["pattern"].to_numpy(np.int64),
                             "center": occ["center"].to_numpy(float),
                             "peak": occ["peak"].to_numpy(float),
                             "pvalue": occ["pvalue"].to_numpy(float)}
        annotations = {(f"convseq_{key}" if key in _EPOCH_ARGUMENTS else key): _flat(value)
                       for key, value in self.parameters.items()}
        if self.n_segments > 1:
            array_annotations["occurrence"] = occ.index.to_numpy(np.int64)
            annotations["segment_index"] = int(part)
        return neo.Epoch(
            times=pq.Quantity(occ["onset"].to_numpy(float), "s"),
            durations=pq.Quantity((occ["offset"] - occ["onset"]).to_numpy(float), "s"),
            labels=labels, name=EPOCH_NAME,
            description="convSeq occurrences: times are onsets (earliest member), durations reach the latest member",
            array_annotations=array_annotations, **annotations)

    def _trains(self, spiketrains, name: str = "spiketrains") -> list[neo.SpikeTrain]:
        """The trains to export to, one per raster row, in :attr:`unit_names` order (see :meth:`_unit_trains`)."""
        return self._unit_trains(spiketrains, name)[0]

    def _unit_trains(self, spiketrains, name: str = "spiketrains") -> tuple[list[neo.SpikeTrain], np.ndarray | None]:
        """``(trains in raster-row order, order)``: ``trains[i]`` is the given train ``order[i]``; order None: as given.

        Named trains are matched to :attr:`unit_names` by name (the rule :func:`convseq_neo.detect` matches the
        segments of a Block by: ``name``, else ``channel_id``/``unit_id``/``id``), so a segment whose trains come
        in another order gets its own trains; unnamed trains (or a result without unit names) are taken by position.
        """
        if spiketrains is None:
            if self.n_segments > 1:
                raise TypeError(f"{name} is required: this result spans {self.n_segments} segments and keeps no single "
                                "list of trains; pass one segment's trains (e.g. block.segments[s].spiketrains)")
            if self._source is None:
                raise TypeError(f"{name} is required: this result was detected on binned data, so pass the spike "
                                "trains (one per raster row)")
            trains = list(self._source)
        else:
            trains = as_spiketrains(spiketrains, name)
        if len(trains) != self.raster.n_neurons:
            raise ValueError(f"{name} holds {len(trains)} trains but the patterns were learned on "
                             f"{self.raster.n_neurons}; pass the same trains, in the same order")
        order = _unit_order(self.unit_names, tuple(_train_name(train, row) for row, train in enumerate(trains)), name)
        if order is None:
            return trains, None
        return [trains[row] for row in order], order

    def to_groups(self, spiketrains=None) -> list[neo.Group]:
        """One :class:`neo.Group` per pattern holding its member trains.

        Parameters
        ----------
        spiketrains : list of neo.SpikeTrain, SpikeTrainList or neo.Segment, optional
            The trains the patterns were learned on (default: those given to :func:`detect`;
            required for a result of several segments: one segment's trains). Named trains are
            matched to :attr:`unit_names` by name, in any order; unnamed ones are taken in order.

        Returns
        -------
        list of neo.Group
            Named ``"pattern{k}"``; members ordered by lag. Annotations: ``pattern_id``,
            ``neurons`` (int array, rows), ``member_names`` (str array), ``lags`` (1-D Quantity in
            s, relative to the occurrence centre, aligned with the members), ``scores``,
            ``pvalues``, ``n_occurrences`` and ``method``. All are flat (NixIO mangles nested
            dicts).
        """
        return self._groups([self._trains(spiketrains)])

    def _groups(self, trains_by_segment: list[list[neo.SpikeTrain]]) -> list[neo.Group]:
        """The pattern Groups holding the members of every list of trains in turn (one list: :meth:`to_groups`)."""
        groups = []
        for pattern in self.patterns:
            extra = {}
            if len(trains_by_segment) > 1:
                extra = {"n_segments": len(trains_by_segment),
                         "object_segment": np.repeat(np.arange(len(trains_by_segment), dtype=np.int64), pattern.size)}
            groups.append(neo.Group(
                objects=[trains[n] for trains in trains_by_segment for n in pattern.neurons],
                name=f"pattern{pattern.pattern_id}",
                description="convSeq pattern: member trains ordered by lag; lags in s relative to the centre",
                pattern_id=int(pattern.pattern_id), neurons=pattern.neurons.astype(np.int64),
                member_names=np.array(pattern.names, dtype="U" + str(max([1] + [len(n) for n in pattern.names]))),
                lags=pattern.lags.rescale(pq.s), scores=pattern.scores.astype(float),
                pvalues=pattern.pvalues.astype(float), n_occurrences=int(pattern.n_occurrences), method="convseq",
                **extra))
        return groups

    def annotate(self, segment_or_block, label_spikes: bool = False, segment: int | None = None) -> tuple[
            neo.Epoch | list[neo.Epoch], list[neo.Group]]:
        """Add the Epoch and the Groups to a Neo container (and optionally label spikes).

        Parameters
        ----------
        segment_or_block : neo.Segment or neo.Block
            Where the detected trains live. A Block's segment is the one holding the trains given
            to :func:`detect` (or its only segment). The Epoch goes into that segment's
            ``epochs``; the Groups into the Block's ``groups`` (a Segment without a Block gets
            only the Epoch, with a warning). For a result of several segments, a Block must have
            as many segments as the result, in the same order (the Block given to
            :func:`detect`, or a copy): each segment gets the Epoch of its own occurrences, and
            each pattern's Group holds its members' trains of every segment, segment by
            segment (annotation ``object_segment``: the segment of each object).
        label_spikes : bool, default False
            Also add per-spike ``array_annotations`` to each train: ``convseq_pattern`` (pattern
            of the occurrence the spike took part in, -1 if none) and ``convseq_occurrence`` (row
            of :attr:`occurrences` / entry of the Epoch, -1 if none). A spike takes part when its
            neuron is a member and it lies within ``(lag_tolerance + 0.5) * bin_size`` of the
            occurrence centre plus the member's lag (the nearest such occurrence wins).
        segment : int, optional
            For a result of several segments: annotate only this segment (a Segment given as
            ``segment_or_block`` must then be that one; a Block's segment ``segment`` is used),
            its Groups holding that segment's trains. Required with a Segment; None with a Block
            annotates every segment. A result of one segment takes None (or 0).

        Returns
        -------
        (neo.Epoch, list of neo.Group)
            The objects that were added. For a result of several segments annotated through a
            Block without ``segment``: (the list of Epochs, one per segment, list of neo.Group).

        Raises
        ------
        TypeError
            ``segment_or_block`` is neither a Segment nor a Block.
        ValueError
            The trains do not match the result; for a result of several segments, a Block with
            another number of segments, or a Segment without ``segment``. Nothing is added then.
        """
        if not isinstance(segment_or_block, (neo.Block, neo.Segment)):
            raise TypeError(f"segment_or_block must be a neo.Segment or a neo.Block, got "
                            f"{type(segment_or_block).__name__}")
        if self.n_segments > 1:
            return self._annotate_segments(segment_or_block, label_spikes, segment)
        self._check_segment(segment, "annotate")
        if isinstance(segment_or_block, neo.Block):
            block = segment_or_block
            target = self._find_segment(block)
        else:
            target, block = segment_or_block, segment_or_block.block
        source_ids = None if self._source is None else {id(train) for train in self._source}
        in_segment = {id(train) for train in target.spiketrains}
        if source_ids is not None and source_ids <= in_segment:
            trains = self._trains(None)
        else:
            trains = self._trains(target.spiketrains, "segment_or_block's spiketrains")
        epoch = self.to_epoch()
        groups = self.to_groups(trains)
        self._store(target, block, [epoch], groups)
        if label_spikes:
            self._label_spikes(trains)
        return epoch, groups

    def _annotate_segments(self, segment_or_block, label_spikes: bool, segment) -> tuple:
        """:meth:`annotate` for a result of several segments: every check first, then the additions."""
        n = self.n_segments
        if isinstance(segment_or_block, neo.Block):
            block = segment_or_block
            if len(block.segments) != n:
                raise ValueError(f"segment_or_block is a Block with {len(block.segments)} segment(s) but this result "
                                 f"spans {n} segments: pass the Block given to detect (or one with the same {n} "
                                 "segments, in the same order)")
            part = None if segment is None else self._check_segment(segment, "annotate")
            parts = list(range(n)) if part is None else [part]
            targets = [block.segments[p] for p in parts]
        else:
            part = self._check_segment(segment, "annotate")
            parts, targets, block = [part], [segment_or_block], segment_or_block.block
        trains = [self._trains(target.spiketrains, f"segment_or_block's segment {p} spiketrains")
                  for p, target in zip(parts, targets)]
        epochs = [self.to_epoch(segment=p) for p in parts]
        groups = self._groups(trains)
        for target, epoch in zip(targets, epochs):
            self._store(target, None, [epoch], [])
        self._store(None, block, [], groups)
        if label_spikes:
            for p, segment_trains in zip(parts, trains):
                self._label_spikes(segment_trains, p)
        if isinstance(segment_or_block, neo.Block) and segment is None:
            return epochs, groups
        return epochs[0], groups

    @staticmethod
    def _store(target: neo.Segment | None, block: neo.Block | None, epochs: list[neo.Epoch],
               groups: list[neo.Group]) -> None:
        for epoch in epochs:
            target.epochs.append(epoch)
            epoch.segment = target
        if not groups:
            return
        if block is not None:
            block.groups.extend(groups)
        else:
            logger.warning("the segment belongs to no neo.Block: the pattern Groups are returned but not stored")

    def _find_segment(self, block: neo.Block) -> neo.Segment:
        if self._source is not None:
            wanted = {id(train) for train in self._source}
            for segment in block.segments:
                if wanted <= {id(train) for train in segment.spiketrains}:
                    return segment
        if len(block.segments) == 1:
            return block.segments[0]
        raise ValueError(f"segment_or_block is a Block with {len(block.segments)} segments and none holds the trains "
                         "given to detect(); pass the neo.Segment to annotate")

    def spike_labels(self, spiketrains=None, segment: int | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per train: (pattern, occurrence) of every spike (-1 where it took part in no occurrence).

        See :meth:`annotate` (``label_spikes``) for the rule. The occurrence is a row of
        :attr:`occurrences`.

        Parameters
        ----------
        spiketrains : list of neo.SpikeTrain, SpikeTrainList or neo.Segment, optional
            The trains (default: those given to :func:`detect`); for a result of several
            segments, required: the trains of segment ``segment``.
        segment : int, optional
            For a result of several segments (required then): only that segment's occurrences
            label the spikes, on its clock. A result of one segment takes None (or 0).

        Returns
        -------
        list of (numpy.ndarray, numpy.ndarray)
            One (pattern, occurrence) pair of int arrays per train, in the order the trains were
            given, one value per spike. Named trains are matched to :attr:`unit_names` by name
            (as :func:`convseq_neo.detect` matches segments), unnamed ones by position.

        Raises
        ------
        ValueError
            ``segment`` missing for a result of several segments (or out of range), or trains
            that do not match (another number of trains, or names other than :attr:`unit_names`).
        """
        part = self._check_segment(segment, "spike_labels")
        trains, given_order = self._unit_trains(spiketrains)
        tolerance = self._spike_tolerance_s
        times = [np.asarray(train.times.rescale(pq.s).magnitude, dtype=float).reshape(-1) for train in trains]
        labels = [(np.full(t.size, -1, dtype=np.int64), np.full(t.size, -1, dtype=np.int64)) for t in times]
        best = [np.full(t.size, np.inf) for t in times]
        occ = self._occurrences_of(part)
        row_of = occ.index.to_numpy(np.int64)
        for pattern in self.patterns:
            rows = np.flatnonzero(occ["pattern"].to_numpy() == pattern.pattern_id)
            if not rows.size:
                continue
            centers = occ["center"].to_numpy(float)[rows]
            order = np.argsort(centers)
            centers, rows = centers[order], rows[order]
            for neuron, lag in zip(pattern.neurons, pattern.lags.magnitude):
                spikes = times[neuron]
                if not spikes.size:
                    continue
                expected = centers + lag
                pos = np.clip(np.searchsorted(expected, spikes), 1, max(1, expected.size - 1))
                candidates = np.stack([np.clip(pos - 1, 0, expected.size - 1), np.clip(pos, 0, expected.size - 1)])
                dist = np.abs(spikes[None, :] - expected[candidates])
                pick = candidates[np.argmin(dist, axis=0), np.arange(spikes.size)]
                distance = np.abs(spikes - expected[pick])
                better = (distance <= tolerance) & (distance < best[neuron])
                best[neuron][better] = distance[better]
                labels[neuron][0][better] = pattern.pattern_id
                labels[neuron][1][better] = row_of[rows[pick[better]]]
        if given_order is not None:  # back to the order the trains were given in
            labels = [labels[row] for row in np.argsort(given_order)]
        return labels

    def _label_spikes(self, trains: list[neo.SpikeTrain], segment: int | None = None) -> None:
        for train, (pattern, occurrence) in zip(trains, self.spike_labels(trains, segment=segment)):
            train.array_annotate(convseq_pattern=pattern, convseq_occurrence=occurrence)

    # ------------------------------------------------------------------ Elephant shape
    def to_spade_dict(self, segment: int | None = None) -> dict:
        """The patterns in the output shape of ``elephant.spade.spade`` and ``cell_assembly_detection``.

        Parameters
        ----------
        segment : int, optional
            For a result of several segments (required then): list that segment's occurrences
            only, on its clock (``signature`` and ``pvalue`` then count those; ``parameters``
            gets ``segment_index``). A result of one segment takes None (or 0).

        Returns
        -------
        dict
            ``{"patterns": [...], "parameters": {...}}``. One entry per pattern that has members
            and at least one significant occurrence (like SPADE, which lists only significant
            patterns), each a dict with:

            ``neurons`` : list of int
                Member neurons (positions in the input list), ordered by lag: ``neurons[0]`` is
                the earliest member.
            ``lags`` : pq.Quantity (s), length ``len(neurons) - 1``
                ``lags[i]`` is the expected delay of ``neurons[i + 1]``'s spike after
                ``neurons[0]``'s spike in the same occurrence (so all ``>= 0``; as in SPADE, the
                first neuron's lag 0 is left out). Unlike SPADE these are estimates (means over
                occurrences), not multiples of the bin size.
            ``times`` : pq.Quantity (s), one per occurrence, sorted
                The expected time of ``neurons[0]``'s spike in each occurrence, i.e. the
                occurrence onset (= :meth:`to_epoch` times). In an occurrence at ``times[j]``,
                ``neurons[i + 1]`` fires at about ``times[j] + lags[i]``. (SPADE's ``times`` are
                the left edges of the bins holding the first spike; these are bin middles.)
            ``signature`` : tuple (int, int)
                ``(number of members, number of occurrences)``.
            ``pvalue`` : float
                The largest per-occurrence p-value among the listed occurrences: every occurrence
                has ``p <= pvalue`` (uncorrected; all passed Benjamini-Hochberg at ``alpha``).
            ``pattern_id``, ``neuron_names``, ``centers`` (Quantity s)
                Extras: the pattern index, the members' train names, the occurrence centres.
        """
        part = self._check_segment(segment, "to_spade_dict")
        entries = []
        occ = self._occurrences_of(part)
        for pattern in self.patterns:
            rows = occ[occ["pattern"] == pattern.pattern_id].sort_values("onset", kind="stable")
            if pattern.size == 0 or rows.empty:
                continue
            lags_s = pattern.lags.magnitude
            entries.append({
                "neurons": [int(n) for n in pattern.neurons],
                "lags": pq.Quantity(lags_s[1:] - lags_s[0], "s"),
                "times": pq.Quantity(rows["onset"].to_numpy(float), "s"),
                "signature": (pattern.size, len(rows)),
                "pvalue": float(rows["pvalue"].max()),
                "pattern_id": int(pattern.pattern_id),
                "neuron_names": list(pattern.names),
                "centers": pq.Quantity(rows["center"].to_numpy(float), "s"),
            })
        parameters = dict(self.parameters)
        if part is not None and self.n_segments > 1:
            parameters["segment_index"] = part
        return {"patterns": entries, "parameters": parameters}

    # ------------------------------------------------------------------ pynapple
    def to_pynapple(self, by_pattern: bool = False, segment: int | None = None):
        """The significant occurrences as a pynapple ``IntervalSet`` with one metadata column per field.

        Each occurrence is the interval ``[onset, offset]`` in seconds, as in :meth:`to_epoch` and
        the NWB ``EventsTable``: from the earliest to the latest member's expected spike time.
        pynapple drops intervals of zero length, so an occurrence shorter than one bin (a pattern
        with a single member) is widened to one bin around its centre. Intervals of one pattern do
        not overlap, nor do significant ones of different patterns (the detection keeps one
        pattern per stretch of time). Where two do overlap all the same (peaks of two
        cross-fitting folds at a fold border), they are split at the middle of the overlap, with
        a warning; an occurrence lying wholly within an earlier one (ending no later) is left out,
        with a warning, as an ``IntervalSet`` cannot hold it. So every interval ends after it
        starts and pynapple keeps every interval given to it and its metadata (the
        ``onset``/``offset`` columns keep the unsplit times).

        Parameters
        ----------
        by_pattern : bool, default False
            False: one ``IntervalSet`` holding every occurrence, sorted by time. True: a dict
            ``{pattern_id: IntervalSet}`` with an entry for every learned pattern (an empty
            ``IntervalSet`` for a pattern without occurrences).
        segment : int, optional
            For a result of several segments (required then): that segment's occurrences, on its
            clock (an ``IntervalSet`` holds times of one clock). A result of one segment takes
            None (or 0).

        Returns
        -------
        pynapple.IntervalSet or dict of int to pynapple.IntervalSet
            Metadata columns (pynapple >= 0.8): ``pattern`` (int), ``center``, ``onset`` and
            ``offset`` (s), ``peak`` and ``pvalue``, one value per interval. Select one
            pattern's occurrences with ``epochs[epochs.pattern == k]`` or ``epochs.groupby("pattern")``.

        Raises
        ------
        ImportError
            pynapple is not installed, or too old to store metadata in an ``IntervalSet``.
        ValueError
            ``segment`` missing for a result of several segments, or out of range.

        Notes
        -----
        One ``IntervalSet`` with a ``pattern`` column is the default because that is how
        pynapple (>= 0.8) represents a table of labelled intervals (its NWB reader turns a
        ``TimeIntervals`` table into one such set) and every pynapple function accepts it;
        ``by_pattern=True`` gives one set per pattern for analyses pattern by pattern
        (``spikes.restrict(epochs[k])``).

        Examples
        --------
        >>> epochs = result.to_pynapple()                  # doctest: +SKIP
        >>> len(epochs) == len(result.occurrences)         # doctest: +SKIP
        True
        """
        part = self._check_segment(segment, "to_pynapple")
        nap = _import_pynapple()
        occ = self._occurrences_of(part)
        bin_size = float(self.raster.bin_size_s)
        if not by_pattern:
            return _interval_set(nap, occ, bin_size)
        return {k: _interval_set(nap, occ[occ["pattern"] == k], bin_size) for k in range(self.n_patterns)}

    # ------------------------------------------------------------------ figure
    def plot(self, time_range=None, figsize=None):
        """One matplotlib Figure: sorted raster with occurrences, filters, responses and thresholds.

        Parameters
        ----------
        time_range : (pq.Quantity, pq.Quantity), optional
            The part of the recording to draw (default: all of it), on the analysis clock (the
            raster's, see *Clocks*; :meth:`TimeMap.to_analysis
            <convseq_neo.io.intervals.TimeMap.to_analysis>` converts recording times).
        figsize : (float, float), optional
            Figure size in inches.

        Returns
        -------
        matplotlib.figure.Figure
            Never shown (no ``plt.show()``); built without pyplot, so it works on any backend.
            With a :attr:`time_map`, the x axis is the analysis clock: the raster and responses
            as binned, the occurrences moved onto it (``time_map.to_analysis_frame``), the guard
            gaps between intervals (and segments) shaded and each interval labelled with its
            start on the recording's clock (see :func:`convseq_neo.plot.plot_detection`).
            The filter panel shows the learned filters (:attr:`Pattern.filter`); the responses
            are the tested ones (after :meth:`find`, those of :attr:`Pattern.tested_filter`).
        """
        from convseq_neo.plot import plot_detection

        return plot_detection(self, time_range=time_range, figsize=figsize)

    # ------------------------------------------------------------------ new data
    def find(self, spiketrains, *, t_start=None, t_stop=None, intervals=None, segment_index=None,
             random_state=None, warp=None):
        """Apply the learned patterns to another recording of the same neurons.

        Each pattern is looked for as it is reported: its members' evidence around their lags
        (``ConvSeq.tested_filters_``, each member weighed by its participation and jitter at the
        training occurrences; no other neuron counts). Each peak of these fixed filters' responses
        is tested against surrogates of the new recording, each spike dithered by up to ``W``
        bins by default (:meth:`ConvSeq.find_occurrences`). The patterns (members, lags,
        filters) stay those learned by :func:`detect`.

        Parameters
        ----------
        spiketrains : list of neo.SpikeTrain, SpikeTrainList, neo.Segment, neo.Block, BinnedSpikeTrain, \
SpikeRaster, spikeinterface BaseSorting or pynapple TsGroup
            The same neurons, binned at this result's bin size (every input :func:`detect`
            takes). When both this result and the new recording name their units, the units are
            matched by name (reordered if they come in another order; a ``ValueError`` naming the
            missing units if the names differ); unnamed inputs (arrays, a SpikeRaster without
            names, unnamed trains) are taken in order.
        t_start, t_stop : pq.Quantity, optional
            Analysis window (as in :func:`detect`), on the new recording's clock.
        intervals : neo.Epoch, pynapple IntervalSet, pq.Quantity or array_like, optional
            Search only inside these intervals of the new recording, laid end to end as in
            :func:`detect`. The intervals (and segments) this result was learned on are not
            carried over: without ``intervals`` the new recording's whole window is searched,
            on its own clock.
        segment_index : int, optional
            For a Block or sorting with several segments: search only this one (default: all,
            laid end to end as in :func:`detect`).
        random_state : int, numpy.random.Generator or None
            Seeds the surrogates (default: the model's ``random_state``).
        warp : float or sequence of float, optional
            Search the patterns *compressed* by this factor (``warp=10``: every lag ten times
            shorter, as when a sequence learned during running recurs during rest; ``warp=0.5``:
            twice as long). The new recording is binned at ``bin_size / warp`` and the same
            filters (the same number of bins) are applied, so the whole pattern, lags and
            window, is rescaled; the surrogates and the test are those of that binning. A
            sequence of factors searches each and returns a
            :class:`~convseq_neo.multiscale.MultiScaleResult` (column ``warp``); each search is
            then tested at ``alpha / len(warp)`` (Bonferroni), so that more factors searched do
            not mean more false occurrences. Default (None): no warp, the result's own scale.

        Returns
        -------
        DetectionResult or MultiScaleResult
            For the new recording (``thresholds`` is None): occurrences on its clock, and a
            :attr:`time_map` when it was laid out from several pieces (``intervals``, a TsGroup's
            time support, several segments), exactly as :func:`detect` would give. With a
            scalar ``warp`` the patterns' ``lags``, ``bin_size`` and ``width`` are the
            compressed ones and :attr:`parameters` records ``warp``. A sequence of ``warp``
            factors gives a :class:`~convseq_neo.multiscale.MultiScaleResult` of one search
            per factor.

        Raises
        ------
        ValueError
            ``warp`` not positive and finite, or compressing the bins below a microsecond.

        Examples
        --------
        >>> found = result.find(recording.spiketrains, intervals=[[0.0, 20.0]], random_state=0)
        >>> bool((found.occurrences["center"] < 20.0).all()), found.time_map.n_pieces
        (True, 1)
        """
        search = dict(t_start=t_start, t_stop=t_stop, intervals=intervals, segment_index=segment_index,
                      random_state=random_state, unit_names=self.unit_names)
        warps = check_warp(warp)
        if warps is None:
            return _apply_model(self.model, float(self.raster.bin_size_s), self.raster.n_neurons, spiketrains, **search)
        if np.ndim(warp) == 0:
            return _apply_model(self.model, float(self.raster.bin_size_s), self.raster.n_neurons, spiketrains,
                                warp=warps[0], **search)
        from convseq_neo.multiscale import MultiScaleResult

        return MultiScaleResult.from_warps([self], spiketrains, warps, **search)

    # ------------------------------------------------------------------ files
    def save_model(self, path, *, overwrite: bool = False) -> Path:
        """Save the learned patterns to one portable file, to find them in other recordings later.

        See :func:`convseq_neo.io.model_file.save_model` (the file holds the filters, the
        membership, the patterns' geometry, the time scale and every parameter; no pickle) and
        :func:`convseq_neo.io.model_file.load_model`, whose model's ``find`` gives what
        :meth:`find` gives.

        Parameters
        ----------
        path : str or os.PathLike
            The file to write (``.npz`` by convention).
        overwrite : bool, default False
            Replace an existing file (atomically); otherwise an existing file is an error.

        Returns
        -------
        pathlib.Path
            The file written.

        Examples
        --------
        >>> import pathlib, tempfile
        >>> from convseq_neo.io.model_file import load_model
        >>> path = result.save_model(pathlib.Path(tempfile.mkdtemp()) / "patterns.npz")
        >>> model = load_model(path)
        >>> model.find(recording.spiketrains, random_state=0).occurrences.equals(
        ...     result.find(recording.spiketrains, random_state=0).occurrences)
        True
        """
        from convseq_neo.io.model_file import save_model

        return save_model(self, path, overwrite=overwrite)

    save = save_model


def _recording_parameters(time_map: TimeMap) -> dict:
    """Flat parameters locating the searched time on the recording's clock (see *Clocks*)."""
    part = np.asarray(time_map.part, dtype=np.int64)
    start, stop = np.asarray(time_map.start_s, dtype=float), np.asarray(time_map.stop_s, dtype=float)
    firsts = [float(start[part == p].min()) if np.any(part == p) else None for p in range(time_map.n_parts)]
    lasts = [float(stop[part == p].max()) if np.any(part == p) else None for p in range(time_map.n_parts)]
    params = {"searched_intervals_s": json.dumps([[float(a), float(b)] for a, b in zip(start, stop)])}
    if time_map.n_parts == 1:
        params.update(recording_t_start_s=firsts[0], recording_t_stop_s=lasts[0])
    else:
        params.update(recording_t_start_s=json.dumps(firsts), recording_t_stop_s=json.dumps(lasts),
                      searched_segments=json.dumps(part.tolist()))
    return params


def _to_recording_clock(frame: pd.DataFrame, time_map: TimeMap) -> pd.DataFrame:
    """Occurrence rows (``center``, ``onset``, ``offset`` in s on the analysis clock) moved to the recording's clock.

    Each row moves by the shift of the piece holding its centre, so its lags are kept; rows whose
    centre lies in no piece (a guard gap, or past the end of an interval in its partial last bin)
    are left out. A ``segment`` column (the piece's part) is added when there are several parts.
    """
    piece, _ = time_map.to_recording(frame["center"].to_numpy(float))
    inside = piece >= 0
    dropped = int(np.count_nonzero(~inside & frame["significant"].to_numpy(bool)))
    if dropped:
        logger.info("left out %d significant occurrence(s) whose centre lies between intervals", dropped)
    frame = frame[inside].reset_index(drop=True)
    piece = piece[inside]
    shift = time_map.shift(piece)
    for column in ("center", "onset", "offset"):
        frame[column] = frame[column].to_numpy(float) + shift
    if time_map.n_parts > 1:
        frame["segment"] = np.asarray(time_map.part, dtype=np.int64)[piece]
    return frame


def _membership_and_patterns(model: ConvSeq, bin_size_s: float, unit_names, n_occurrences) -> tuple[
        pd.DataFrame, list[Pattern]]:
    """The membership table in seconds and one :class:`Pattern` per filter of a fitted ``model``."""
    table = model.membership_.copy()
    table["lag"] = table["lag"].to_numpy(float) * bin_size_s
    table.insert(2, "name", [unit_names[n] for n in table["neuron"].to_numpy(int)])
    table = table[["pattern", "neuron", "name", "score", "pvalue", "member", "lag"]].reset_index(drop=True)
    patterns = []
    tested_filters = getattr(model, "tested_filters_", None)  # None: a model from a file that holds none
    for k in range(model.filters_.shape[0]):
        rows = table[(table["pattern"] == k) & table["member"]]
        rows = rows.sort_values(["lag", "neuron"], kind="stable")
        neurons = rows["neuron"].to_numpy(np.int64)
        patterns.append(Pattern(
            pattern_id=k, neurons=neurons, names=tuple(rows["name"]),
            lags=pq.Quantity(rows["lag"].to_numpy(float), "s"), scores=rows["score"].to_numpy(float),
            pvalues=rows["pvalue"].to_numpy(float), filter=np.asarray(model.filters_[k]),
            n_occurrences=int(n_occurrences[k]), bin_size=pq.Quantity(bin_size_s, "s"),
            width=pq.Quantity(int(model.width) * bin_size_s, "s"),
            tested_filter=None if tested_filters is None else np.asarray(tested_filters[k])))
    return table, patterns


def _import_pynapple():
    """pynapple, if installed and able to store metadata in an IntervalSet (>= 0.8)."""
    try:
        import pynapple as nap
    except ImportError as err:
        raise ImportError("to_pynapple needs pynapple: pip install pynapple") from err
    if "metadata" not in inspect.signature(nap.IntervalSet.__init__).parameters:
        raise ImportError(f"to_pynapple needs pynapple >= 0.8 (IntervalSet metadata); pynapple "
                          f"{getattr(nap, '__version__', '?')} is installed")
    return nap


def _interval_set(nap, occurrences: pd.DataFrame, bin_size_s: float):
    """One pynapple IntervalSet of ``occurrences`` (rows of :attr:`DetectionResult.occurrences`), with metadata."""
    occ = occurrences
    start = occ["onset"].to_numpy(float).copy()
    end = occ["offset"].to_numpy(float).copy()
    center = occ["center"].to_numpy(float)
    short = end - start < bin_size_s
    start[short] = np.minimum(start[short], center[short] - bin_size_s / 2)
    end[short] = np.maximum(end[short], center[short] + bin_size_s / 2)
    order = np.lexsort((occ["pattern"].to_numpy(), start))
    occ, start, end, center = occ.iloc[order], start[order], end[order], center[order]
    # one sweep by start; ``end[kept[-1]]`` is the running maximum end, since every kept interval ends after the one
    # before: an interval ending within it (nested) is dropped, one reaching past it is split with it at the middle
    kept: list[int] = []
    n_split = 0
    for i in range(start.size):
        if kept and end[i] <= end[kept[-1]]:
            continue
        if kept and start[i] < end[kept[-1]]:
            last = kept[-1]
            middle = (max(start[i], start[last]) + end[last]) / 2  # inside both: start[last] < middle < end[i]
            end[last], start[i] = middle, middle
            n_split += 1
        kept.append(i)
    n_dropped = start.size - len(kept)
    if n_split:
        logger.warning("to_pynapple: %d occurrence(s) overlap the one before; split at the middle of the overlap "
                       "(an IntervalSet cannot hold overlapping intervals)", n_split)
    if n_dropped:
        logger.warning("to_pynapple: left out %d occurrence(s) lying wholly within an earlier one (an IntervalSet "
                       "cannot hold nested intervals); DetectionResult.occurrences keeps them", n_dropped)
    occ, start, end, center = occ.iloc[kept], start[kept], end[kept], center[kept]
    if not np.all(end > start):  # the sweep guarantees it; pynapple would silently drop rows and the metadata
        raise RuntimeError("to_pynapple: an interval ends before it starts; please report this")
    metadata = {"pattern": occ["pattern"].to_numpy(np.int64), "center": center,
                "onset": occ["onset"].to_numpy(float), "offset": occ["offset"].to_numpy(float),
                "peak": occ["peak"].to_numpy(float), "pvalue": occ["pvalue"].to_numpy(float)}
    intervals = nap.IntervalSet(start=start, end=end, time_units="s", metadata=metadata)
    if len(intervals) != len(kept) or (kept and set(metadata) - set(intervals.metadata_columns)):
        raise RuntimeError(f"to_pynapple: pynapple kept {len(intervals)} of {len(kept)} intervals or lost their "
                           "metadata; please report this")
    return intervals


def check_warp(warp) -> list[float] | None:
    """``warp`` of :meth:`DetectionResult.find` as a list of factors (None for no warp), or a ``ValueError``."""
    if warp is None:
        return None
    if isinstance(warp, pq.Quantity) and warp.dimensionality != pq.dimensionless.dimensionality:
        raise TypeError(f"warp must be a plain number (a compression factor, e.g. 10), got a Quantity in {warp.units}")
    try:
        values = np.atleast_1d(np.asarray(warp, dtype=float)).ravel()
    except (TypeError, ValueError):
        raise TypeError(f"warp must be a number or a sequence of numbers (compression factors), got "
                        f"{type(warp).__name__}") from None
    if values.size == 0 or not np.all(np.isfinite(values)) or np.any(values <= 0):
        raise ValueError(f"warp must hold positive finite compression factors (e.g. 10 for ten times faster), got "
                         f"{warp!r}")
    if len(set(values.tolist())) != values.size:
        raise ValueError(f"warp lists a factor twice: {warp!r}")
    return [float(v) for v in values]


def _apply_model(model: ConvSeq, bin_size_s: float, n_neurons: int, spiketrains, *, t_start=None, t_stop=None,
                 intervals=None, segment_index=None, random_state=None, unit_names=None, warp: float | None = None,
                 alpha: float | None = None) -> DetectionResult:
    """:meth:`DetectionResult.find` for a fitted ``model`` learned at ``bin_size_s`` on ``n_neurons`` neurons.

    Shared by :meth:`DetectionResult.find` and :meth:`convseq_neo.io.model_file.SavedModel.find`, so that a
    model loaded from a file finds exactly what the result it was saved from finds. With ``unit_names`` (the
    training units) and a named new recording, the new raster's rows are put in the training order by name.
    With a ``warp`` the raster is binned at ``bin_size_s / warp`` (the pattern compressed by that factor);
    with an ``alpha`` the test runs at that level instead of the model's (on a copy of the model).
    """
    if random_state is not None:
        check_random_state(random_state)
    if warp is not None:
        bin_size_s = bin_size_s / float(warp)
        if bin_size_s < 1e-6:
            raise ValueError(f"warp={warp:g} would bin the recording at {bin_size_s:.3g} s, finer than a microsecond; "
                             "pass a smaller compression factor")
    if alpha is not None:
        model = copy.copy(model)
        model.alpha = float(alpha)
    bin_size = pq.Quantity(bin_size_s, "s")
    plan = plan_raster(spiketrains, bin_size, t_start=t_start, t_stop=t_stop,
                       width=pq.Quantity(int(model.width) * bin_size_s, "s"),
                       n_patterns=int(model.filters_.shape[0]), n_init=1, n_folds=0, intervals=intervals,
                       segment_index=segment_index)
    if plan.n_neurons != n_neurons:
        raise ValueError(f"spiketrains holds {plan.n_neurons} neurons but the patterns were learned on "
                         f"{n_neurons}; pass the same neurons in the same order")
    raster = plan.bin()
    if unit_names is not None and raster.unit_names is not None:
        order = _unit_order(tuple(unit_names), raster.unit_names, "spiketrains")
        if order is not None:
            logger.info("find: the new recording holds the training units in another order; matched by name")
            raster = raster.reorder_rows(order)
    occurrences = model.find_occurrences(raster, random_state=random_state)
    responses = model.tested_transform(raster)
    result = DetectionResult._from_model(model, raster, source=plan.source, applied="find",
                                         occurrences_bins=occurrences, responses=responses, thresholds=None,
                                         time_map=plan.time_map)
    if warp is not None:
        result.parameters["warp"] = float(warp)
    return result


def _parameters(model: ConvSeq, raster: SpikeRaster, applied: str) -> dict:
    """Flat record of the method and every parameter (str/int/float/bool only)."""
    from convseq_neo import __version__

    params = {
        "method": "convseq",
        "software": f"convseq_neo {__version__}",
        "applied": applied,
        "bin_size_s": float(raster.bin_size_s),
        "width_s": int(model.width) * float(raster.bin_size_s),
        "width_bins": int(model.width),
        "t_start_s": float(raster.t_start_s),
        "t_stop_s": float(raster.t_stop_s),
        "n_neurons": int(raster.n_neurons),
    }
    for name, value in model.get_params().items():
        params[name] = _flat(value)
    for name in ("backend_", "n_folds_", "lag_tolerance_"):
        if hasattr(model, name):
            params[name.rstrip("_") + "_used"] = _flat(getattr(model, name))
    if hasattr(model, "pattern_offsets_"):
        # where each pattern's centre sits in its window (bins, JSON list): with the filters and the
        # membership, what a stored result needs to place the occurrences found by a rebuilt model
        params["pattern_offsets_bins"] = json.dumps([float(v) for v in np.asarray(model.pattern_offsets_)])
    return params
