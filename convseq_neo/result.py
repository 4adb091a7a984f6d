"""What :func:`convseq_neo.detect` returns: :class:`DetectionResult` and its :class:`Pattern` objects.

Times are in seconds, converted from the core's bin positions by the raster
(:meth:`~convseq_neo.raster.SpikeRaster.position_to_time`), with exports to Neo objects (an ``Epoch`` of
occurrences, one ``Group`` per pattern, per-spike labels), Elephant's SPADE output shape and a
figure (:mod:`convseq_neo.plot`, imported only when a figure is asked for).
"""

from __future__ import annotations

import inspect
import logging
import numbers
from dataclasses import dataclass
from typing import TYPE_CHECKING

import neo
import numpy as np
import pandas as pd
import quantities as pq

from convseq_neo._validation import check_random_state
from convseq_neo.io.neo import BinnedSpikeTrain, as_spiketrains, plan_raster
from convseq_neo.raster import SpikeRaster

if TYPE_CHECKING:  # pragma: no cover
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
    """

    pattern_id: int
    neurons: np.ndarray
    names: tuple
    lags: pq.Quantity
    scores: np.ndarray
    pvalues: np.ndarray
    filter: np.ndarray
    n_occurrences: int

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
        Benjamini-Hochberg at ``alpha``). Row ``i`` is entry ``i`` of :meth:`to_epoch`.
    candidates : pandas.DataFrame
        Every tested peak, same columns plus ``significant``.
    patterns : list of Pattern
        One per learned pattern.
    membership : pandas.DataFrame
        All neurons x patterns: ``pattern``, ``neuron``, ``name``, ``score``, ``pvalue``,
        ``member``, ``lag`` (s relative to the centre; NaN where the neuron never fired near an
        occurrence).
    model : ConvSeq
        The fitted core estimator (bins).
    raster : SpikeRaster
        The binned data; its ``bin_size_s`` and ``t_start_s`` are the time base.
    responses : numpy.ndarray, shape (K, L)
        The filters' responses (the tested, cross-fitted ones after :func:`detect`, in the all-data
        filters' frame, so that an occurrence's peak bin holds its ``peak``; NaN at the few
        fold-border bins no fold covers); index ``t`` is drawn at the middle of bin ``t``.
    thresholds : numpy.ndarray, shape (K, L), or None
        The height a peak needed to be significant at each time (None after :meth:`find`).
    parameters : dict
        Flat record (str, int, float, bool) of the method, the package version and every
        parameter; written into :meth:`to_epoch`'s annotations.
    unit_names : tuple of str
        One name per neuron (raster row).

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
    """

    def __init__(self, model: ConvSeq, raster: SpikeRaster, occurrences_bins: pd.DataFrame, responses: np.ndarray,
                 thresholds: np.ndarray | None, parameters: dict, source=None) -> None:
        self.model = model
        self.raster = raster
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
        self.candidates = candidates.sort_values(["center", "pattern"], kind="stable").reset_index(drop=True)
        significant = self.candidates[self.candidates["significant"]]
        self.occurrences = significant[OCCURRENCE_COLUMNS].reset_index(drop=True)
        self.membership, self.patterns = self._patterns()
        self.parameters["n_occurrences"] = len(self.occurrences)

    # ------------------------------------------------------------------ construction
    @classmethod
    def _from_model(cls, model: ConvSeq, raster: SpikeRaster, *, source, applied: str,
                    occurrences_bins: pd.DataFrame | None = None, responses=None, thresholds=None) -> DetectionResult:
        if occurrences_bins is None:
            occurrences_bins = model.occurrences_
            responses = getattr(model, "tested_responses_", model.responses_)
            thresholds = getattr(model, "thresholds_", None)
        return cls(model, raster, occurrences_bins, responses, thresholds, _parameters(model, raster, applied),
                   source)

    @property
    def _source(self) -> tuple | None:
        """The trains given to detect/find (resolved on first use), or None for binned inputs."""
        if self._source_trains is None and self._source_input is not None:
            self._source_trains = tuple(as_spiketrains(self._source_input))
        return self._source_trains

    def _patterns(self) -> tuple[pd.DataFrame, list[Pattern]]:
        table = self.model.membership_.copy()
        bin_size = float(self.raster.bin_size_s)
        table["lag"] = table["lag"].to_numpy(float) * bin_size
        table.insert(2, "name", [self.unit_names[n] for n in table["neuron"].to_numpy(int)])
        table = table[["pattern", "neuron", "name", "score", "pvalue", "member", "lag"]].reset_index(drop=True)
        counts = self.occurrences["pattern"].value_counts()
        patterns = []
        for k in range(self.model.filters_.shape[0]):
            rows = table[(table["pattern"] == k) & table["member"]]
            rows = rows.sort_values(["lag", "neuron"], kind="stable")
            neurons = rows["neuron"].to_numpy(np.int64)
            patterns.append(Pattern(
                pattern_id=k, neurons=neurons, names=tuple(rows["name"]),
                lags=pq.Quantity(rows["lag"].to_numpy(float), "s"), scores=rows["score"].to_numpy(float),
                pvalues=rows["pvalue"].to_numpy(float), filter=np.asarray(self.model.filters_[k]),
                n_occurrences=int(counts.get(k, 0))))
        return table, patterns

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
        """Start of the analysis window (s)."""
        return pq.Quantity(self.raster.t_start_s, "s")

    @property
    def t_stop(self) -> pq.Quantity:
        """End of the analysis window (s)."""
        return pq.Quantity(self.raster.t_stop_s, "s")

    @property
    def width(self) -> pq.Quantity:
        """Filter window (s)."""
        return pq.Quantity(int(self.model.width) * self.raster.bin_size_s, "s")

    def __repr__(self) -> str:
        sizes = ", ".join(f"{p.size} members/{p.n_occurrences} occurrences" for p in self.patterns)
        return (f"DetectionResult({self.n_patterns} pattern(s): {sizes}; {self.raster.n_neurons} neurons, "
                f"{float(self.t_start):g}-{float(self.t_stop):g} s, bin_size={self.raster.bin_size_s * 1e3:g} ms, "
                f"width={float(self.width) * 1e3:g} ms)")

    # ------------------------------------------------------------------ Neo exports
    def to_epoch(self) -> neo.Epoch:
        """The significant occurrences as one :class:`neo.Epoch` named ``"convseq_occurrences"``.

        ``times`` are the onsets (s), ``durations`` ``offset - onset`` (s), ``labels``
        ``"pattern{k}"``. Array annotations (one value per occurrence): ``pattern_id`` (int),
        ``center`` (s), ``peak``, ``pvalue``. Annotations: :attr:`parameters` (flat scalars and
        strings only, so NixIO keeps them).

        Examples
        --------
        See :func:`detect`.
        """
        occ = self.occurrences
        labels = np.array([f"pattern{k}" for k in occ["pattern"]], dtype="U32")
        return neo.Epoch(
            times=pq.Quantity(occ["onset"].to_numpy(float), "s"),
            durations=pq.Quantity((occ["offset"] - occ["onset"]).to_numpy(float), "s"),
            labels=labels, name=EPOCH_NAME,
            description="convSeq occurrences: times are onsets (earliest member), durations reach the latest member",
            array_annotations={"pattern_id": occ["pattern"].to_numpy(np.int64),
                               "center": occ["center"].to_numpy(float),
                               "peak": occ["peak"].to_numpy(float),
                               "pvalue": occ["pvalue"].to_numpy(float)},
            **{(f"convseq_{key}" if key in _EPOCH_ARGUMENTS else key): _flat(value)
               for key, value in self.parameters.items()})

    def _trains(self, spiketrains, name: str = "spiketrains") -> list[neo.SpikeTrain]:
        if spiketrains is None:
            if self._source is None:
                raise TypeError(f"{name} is required: this result was detected on binned data, so pass the spike "
                                "trains (one per raster row)")
            return list(self._source)
        trains = as_spiketrains(spiketrains, name)
        if len(trains) != self.raster.n_neurons:
            raise ValueError(f"{name} holds {len(trains)} trains but the patterns were learned on "
                             f"{self.raster.n_neurons}; pass the same trains, in the same order")
        return trains

    def to_groups(self, spiketrains=None) -> list[neo.Group]:
        """One :class:`neo.Group` per pattern holding its member trains.

        Parameters
        ----------
        spiketrains : list of neo.SpikeTrain, SpikeTrainList or neo.Segment, optional
            The trains the patterns were learned on, in the same order (default: those given to
            :func:`detect`).

        Returns
        -------
        list of neo.Group
            Named ``"pattern{k}"``; members ordered by lag. Annotations: ``pattern_id``,
            ``neurons`` (int array, rows), ``member_names`` (str array), ``lags`` (1-D Quantity in
            s, relative to the occurrence centre, aligned with the members), ``scores``,
            ``pvalues``, ``n_occurrences`` and ``method``. All are flat (NixIO mangles nested
            dicts).
        """
        trains = self._trains(spiketrains)
        groups = []
        for pattern in self.patterns:
            groups.append(neo.Group(
                objects=[trains[n] for n in pattern.neurons], name=f"pattern{pattern.pattern_id}",
                description="convSeq pattern: member trains ordered by lag; lags in s relative to the centre",
                pattern_id=int(pattern.pattern_id), neurons=pattern.neurons.astype(np.int64),
                member_names=np.array(pattern.names, dtype="U" + str(max([1] + [len(n) for n in pattern.names]))),
                lags=pattern.lags.rescale(pq.s), scores=pattern.scores.astype(float),
                pvalues=pattern.pvalues.astype(float), n_occurrences=int(pattern.n_occurrences), method="convseq"))
        return groups

    def annotate(self, segment_or_block, label_spikes: bool = False) -> tuple[neo.Epoch, list[neo.Group]]:
        """Add the Epoch and the Groups to a Neo container (and optionally label spikes).

        Parameters
        ----------
        segment_or_block : neo.Segment or neo.Block
            Where the detected trains live. A Block's segment is the one holding the trains given
            to :func:`detect` (or its only segment). The Epoch goes into that segment's
            ``epochs``; the Groups into the Block's ``groups`` (a Segment without a Block gets
            only the Epoch, with a warning).
        label_spikes : bool, default False
            Also add per-spike ``array_annotations`` to each train: ``convseq_pattern`` (pattern
            of the occurrence the spike took part in, -1 if none) and ``convseq_occurrence`` (row
            of :attr:`occurrences` / entry of the Epoch, -1 if none). A spike takes part when its
            neuron is a member and it lies within ``(lag_tolerance + 0.5) * bin_size`` of the
            occurrence centre plus the member's lag (the nearest such occurrence wins).

        Returns
        -------
        (neo.Epoch, list of neo.Group)
            The objects that were added.
        """
        if isinstance(segment_or_block, neo.Block):
            block = segment_or_block
            segment = self._find_segment(block)
        elif isinstance(segment_or_block, neo.Segment):
            segment, block = segment_or_block, segment_or_block.block
        else:
            raise TypeError(f"segment_or_block must be a neo.Segment or a neo.Block, got "
                            f"{type(segment_or_block).__name__}")
        source_ids = None if self._source is None else {id(train) for train in self._source}
        in_segment = {id(train) for train in segment.spiketrains}
        if source_ids is not None and source_ids <= in_segment:
            trains = list(self._source)
        else:
            trains = self._trains(segment.spiketrains, "segment_or_block's spiketrains")
        epoch = self.to_epoch()
        groups = self.to_groups(trains)
        segment.epochs.append(epoch)
        epoch.segment = segment
        if block is not None:
            block.groups.extend(groups)
        else:
            logger.warning("the segment belongs to no neo.Block: the pattern Groups are returned but not stored")
        if label_spikes:
            self._label_spikes(trains)
        return epoch, groups

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

    def spike_labels(self, spiketrains=None) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per train: (pattern, occurrence) of every spike (-1 where it took part in no occurrence).

        See :meth:`annotate` (``label_spikes``) for the rule.
        """
        trains = self._trains(spiketrains)
        tolerance = (self.model.lag_tolerance_ + 0.5) * self.raster.bin_size_s
        times = [np.asarray(train.times.rescale(pq.s).magnitude, dtype=float).reshape(-1) for train in trains]
        labels = [(np.full(t.size, -1, dtype=np.int64), np.full(t.size, -1, dtype=np.int64)) for t in times]
        best = [np.full(t.size, np.inf) for t in times]
        occ = self.occurrences
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
                labels[neuron][1][better] = rows[pick[better]]
        return labels

    def _label_spikes(self, trains: list[neo.SpikeTrain]) -> None:
        for train, (pattern, occurrence) in zip(trains, self.spike_labels(trains)):
            train.array_annotate(convseq_pattern=pattern, convseq_occurrence=occurrence)

    # ------------------------------------------------------------------ Elephant shape
    def to_spade_dict(self) -> dict:
        """The patterns in the output shape of ``elephant.spade.spade`` and ``cell_assembly_detection``.

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
        entries = []
        occ = self.occurrences
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
        return {"patterns": entries, "parameters": dict(self.parameters)}

    # ------------------------------------------------------------------ figure
    def plot(self, time_range=None, figsize=None):
        """One matplotlib Figure: sorted raster with occurrences, filters, responses and thresholds.

        Parameters
        ----------
        time_range : (pq.Quantity, pq.Quantity), optional
            The part of the recording to draw (default: all of it).
        figsize : (float, float), optional
            Figure size in inches.

        Returns
        -------
        matplotlib.figure.Figure
            Never shown (no ``plt.show()``); built without pyplot, so it works on any backend.
        """
        from convseq_neo.plot import plot_detection

        return plot_detection(self, time_range=time_range, figsize=figsize)

    # ------------------------------------------------------------------ new data
    def find(self, spiketrains, *, t_start=None, t_stop=None, random_state=None) -> DetectionResult:
        """Apply the learned patterns to another recording of the same neurons.

        Each peak of the fixed filters' responses is tested against surrogates of the new
        recording, each spike dithered by up to ``W`` bins by default
        (:meth:`ConvSeq.find_occurrences`). The patterns (members, lags, filters) stay those
        learned by :func:`detect`.

        Parameters
        ----------
        spiketrains : list of neo.SpikeTrain, SpikeTrainList, neo.Segment, BinnedSpikeTrain or SpikeRaster
            The same neurons in the same order, binned at this result's bin size.
        t_start, t_stop : pq.Quantity, optional
            Analysis window (as in :func:`detect`).
        random_state : int, numpy.random.Generator or None
            Seeds the surrogates (default: the model's ``random_state``).

        Returns
        -------
        DetectionResult
            For the new recording (``thresholds`` is None).
        """
        if random_state is not None:
            check_random_state(random_state)
        plan = plan_raster(spiketrains, self.bin_size, t_start=t_start, t_stop=t_stop, width=self.width,
                           n_patterns=len(self.patterns), n_init=1, n_folds=0)
        if plan.n_neurons != self.raster.n_neurons:
            raise ValueError(f"spiketrains holds {plan.n_neurons} neurons but the patterns were learned on "
                             f"{self.raster.n_neurons}; pass the same neurons in the same order")
        raster = plan.bin()
        occurrences = self.model.find_occurrences(raster, random_state=random_state)
        responses = self.model.transform(raster)
        return DetectionResult._from_model(self.model, raster, source=spiketrains, applied="find",
                                           occurrences_bins=occurrences, responses=responses, thresholds=None)


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
    return params
