"""The Neo/Elephant front door: :func:`detect` and :class:`DetectionResult`.

``detect`` turns Neo/Elephant input into a :class:`~convseq_neo.raster.SpikeRaster` (through
:mod:`convseq_neo.io.neo`), fits the torch core (:class:`~convseq_neo.core.estimator.ConvSeq`)
and returns a :class:`DetectionResult` in seconds, with exports to Neo objects (an ``Epoch`` of
occurrences, one ``Group`` per pattern, per-spike labels), Elephant's SPADE output shape and a
figure.

Time convention
---------------
The core works in bins: bin ``b`` holds the spikes in ``[t_start + b * bin_size, t_start + (b + 1)
* bin_size)``. The core's occurrence ``center`` (and ``onset``/``offset``) is a fractional bin
*index*: the mean over the pattern's members of the bins their spikes fall in, i.e. a position
on the same axis as ``bin_index``. The raster converts positions to
seconds (:meth:`~convseq_neo.raster.SpikeRaster.position_to_time`): position ``c`` is the middle
of bin ``c``, ``t_start + (c + 0.5) * bin_size``, and that is what
:attr:`DetectionResult.occurrences` reports. A response index ``t`` (the filter window covering
bins ``[t - W // 2, t - W // 2 + W)``) is likewise drawn at position ``t``. Lags are differences
of bin positions, so a lag of ``l`` bins is ``l * bin_size`` seconds.
"""

from __future__ import annotations

import logging
import time
import warnings
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from convseq_neo.multiscale import MultiScaleResult
    from convseq_neo.result import DetectionResult

logger = logging.getLogger(__name__)

__all__ = ["detect"]

#: ConvSeq parameters that detect() sets itself (everything else is a core option).
_OWN_PARAMETERS = ("n_patterns", "width", "random_state", "device", "n_jobs", "progress")
_USAGE = ("pass them as time quantities, e.g. detect(spiketrains, bin_size=5 * pq.ms, width=300 * pq.ms): bin_size "
          "is the time resolution (typically 1-10 ms) and width the longest sequence to look for (typically "
          "0.1-1 s, at least 2 bins)")


def _core_option_names() -> tuple[str, ...]:
    from convseq_neo.core.estimator import ConvSeq

    return tuple(name for name in ConvSeq._param_names() if name not in _OWN_PARAMETERS)


def _check_core_options(core_options: dict) -> dict:
    allowed = _core_option_names()
    unknown = sorted(set(core_options) - set(allowed))
    if unknown:
        raise TypeError(f"detect() got unknown core option(s) {', '.join(map(repr, unknown))}; the core options are "
                        f"{', '.join(allowed)}")
    return dict(core_options)


# ---------------------------------------------------------------------------------------------
# detect
# ---------------------------------------------------------------------------------------------
def detect(spiketrains, bin_size="auto", width="auto", n_patterns="auto", *, max_patterns=4, t_start=None,
           t_stop=None, intervals=None, segment_index=None, random_state=None, device="auto", n_jobs=None,
           progress=False, client=None, **core_options) -> DetectionResult | MultiScaleResult:
    """Detect repeating spike sequences (convSeq) in Neo/Elephant data.

    Learns ``n_patterns`` spatiotemporal filters (one ``N x W`` pattern each), tests every peak of
    their responses against surrogates that dither every spike by up to the width and keep
    slow rate changes (cross-fitted, see
    :class:`~convseq_neo.core.estimator.ConvSeq`) and finds each pattern's member neurons and
    their lags. With the defaults, ``detect(spiketrains)`` also chooses the time scale and the
    number of patterns from held-out evidence (*Automatic time scale* below).

    Parameters
    ----------
    spiketrains : list of neo.SpikeTrain, SpikeTrainList, neo.Segment, neo.Block, BinnedSpikeTrain, SpikeRaster, \
spikeinterface BaseSorting or pynapple TsGroup
        The recording, one neuron per train (a Segment: its ``spiketrains``). Trains in different
        time units are rescaled; empty trains are silent neurons. A Block with one segment is that
        Segment; a Block with several segments (trials) is analysed as one recording, see
        *Several segments* below. A spikeinterface ``BaseSorting``: one neuron per unit, named by
        its unit id, spike times from its sampling frequency (and registered recording), window
        from the segment's start to one sample after its end
        (:mod:`convseq_neo.io.spikeinterface`); several segments are treated like a Block's. A
        pynapple ``TsGroup``: one neuron per unit, named by its index; its ``time_support``
        becomes the ``intervals`` (intersected with any given).
    bin_size : pq.Quantity or "auto", default "auto"
        Time resolution, e.g. ``5 * pq.ms``. ``"auto"``: tied to the window (``width / 20``, never
        finer than the data's own time resolution); for a ``BinnedSpikeTrain`` or a
        ``SpikeRaster`` with a known bin size, its own (``None`` too; a different value raises
        ``ValueError``).
    width : pq.Quantity or "auto", default "auto"
        Filter window: the longest sequence to look for, e.g. ``300 * pq.ms``; rounded to whole
        bins, at least 2 bins and at most the analysis window. ``"auto"``: several windows are
        searched and a :class:`~convseq_neo.multiscale.MultiScaleResult` is returned (*Automatic
        time scale*).
    n_patterns : int or "auto", default "auto"
        Number of patterns to learn (per window searched). ``"auto"``: fits with 1, 2, ...
        patterns, up to ``max_patterns``, until the newest pattern has no significant held-out
        occurrence with at least 2 member neurons.
    max_patterns : int, default 4
        The most patterns ``n_patterns="auto"`` learns at one window.
    t_start, t_stop : pq.Quantity, optional
        Analysis window ``[t_start, t_stop)``. Default: the trains' common bounds. Trains with
        differing bounds need both. Spikes outside the window are left out (logged). With
        several segments, the window on every segment's own clock.
    intervals : neo.Epoch, pynapple IntervalSet, pq.Quantity or array_like, optional
        Where to look: ``[start, stop)`` intervals (an Epoch's ``times`` to ``times +
        durations``; an IntervalSet's ``start`` to ``end``; an ``(n, 2)`` time Quantity or
        array of floats in seconds), on the recording's clock. Overlapping or touching intervals
        are merged; parts outside ``[t_start, t_stop)`` are clipped with a
        :class:`~convseq_neo.io.neo.RecordingWarning`. No filter window and no surrogate crosses
        an interval's edge, and only occurrences whose centre lies inside an interval are
        reported. ``None`` (default): the whole window, which is the one-interval case of
        ``t_start``/``t_stop``. See *Intervals* below.
    segment_index : int, optional
        For a Block or a spikeinterface sorting with several segments: analyse only this one
        (default: all of them, see *Several segments*).
    random_state : int, numpy.random.Generator or None
        Seeds the core (numpy and torch); global random state is never touched.
    device : {"auto", "cpu", "cuda"} or torch.device, default "auto"
        Where the core runs ("auto": CUDA when available).
    n_jobs : int, optional
        Threads (torch and BLAS) of the fit. ``None`` keeps torch's setting (the cores the process
        may use, or ``OMP_NUM_THREADS``); ``-1`` every core the process may use.
    progress : bool, default False
        Show progress bars.
    client : distributed.Client, optional
        Run the fit's independent work (the all-data and each fold's training, the surrogate
        null's chunks) as tasks on this dask cluster, with the result of a run without a client
        up to float rounding (:meth:`ConvSeq.fit <convseq_neo.core.estimator.ConvSeq.fit>`).
        Needs ``dask.distributed`` (the ``cluster`` extra).
    **core_options
        Any other :class:`~convseq_neo.core.estimator.ConvSeq` parameter, e.g. ``alpha``,
        ``n_surrogates``, ``n_folds``, ``max_epochs``, ``significance``, ``backend``.

    Returns
    -------
    DetectionResult or MultiScaleResult
        Significant occurrences in seconds, patterns (members, lags, filters) and exports. With
        ``intervals`` (or a TsGroup, or several segments) it also has a ``time_map``
        (:class:`~convseq_neo.io.intervals.TimeMap`; see *Intervals*), else ``time_map`` is None.
        With ``width="auto"``, a :class:`~convseq_neo.multiscale.MultiScaleResult`: one such
        result per window searched, the patterns kept from all of them in one numbering (each
        with its ``bin_size`` and ``width``), their occurrences in one table, and the evidence for
        every fit tried (``search``). With ``n_patterns="auto"`` at one window, the kept fit's
        result, whose ``pattern_search`` table and ``n_patterns_search`` parameter record the
        fits tried.

    Raises
    ------
    TypeError
        ``bin_size`` or ``width`` None (for spike trains); a float where a Quantity is expected;
        an unsupported input type; an unknown core option (named in the message).
    ValueError
        A string other than ``"auto"``; ``max_patterns`` not a positive int; with
        ``width="auto"``, a recording where no window of the search fits (shorter than 50
        windows of 0.1 s); width shorter than 2 bins or longer than the window, non-positive bin size,
        ``t_stop <= t_start``, NaN spike times, non-time or dimensionless units, trains with
        differing bounds and no explicit window, no spike in the window, a bin size that differs
        from a ``BinnedSpikeTrain``'s own, a bad core option value, or a recording too short for
        the significance test (at least ``4 * width``). ``intervals`` that are empty, have a stop
        not after their start, are not finite, have the wrong shape or units, or lie wholly
        outside the window (the message names ``intervals``); segments holding different units;
        a ``segment_index`` out of range or given for an input without segments.

    See Also
    --------
    convseq_neo.core.estimator.ConvSeq : the estimator on bins.
    convseq_neo.io.neo.to_raster : the binning rules.

    Notes
    -----
    All checks run before any binning or fitting: the input and its time quantities are planned
    first (:func:`~convseq_neo.io.neo.plan_raster`, which also turns ``width`` into bins), then the
    one :class:`~convseq_neo.core.estimator.ConvSeq` is built with that width and checks its
    parameters (:meth:`~convseq_neo.core.estimator.ConvSeq.check_params`). Occurrence times use
    the convention in this module's docstring (:meth:`SpikeRaster.position_to_time`).

    **Intervals.** The intervals are laid end to end into one raster, each binned on its own grid
    from its own start, with a guard gap of ``width`` bins between consecutive intervals in which
    no neuron is observed (:mod:`convseq_neo.io.intervals`): no filter window (``width`` bins)
    reads two intervals, and the surrogates of the significance test keep every spike inside
    the interval it was observed in. Filters are learned and tested on all intervals together.
    The occurrence times are then mapped back: :attr:`~DetectionResult.occurrences` and
    :attr:`~DetectionResult.candidates` (``center``, ``onset``, ``offset``), and so
    :meth:`~DetectionResult.to_epoch`, :meth:`~DetectionResult.spike_labels` and
    :meth:`~DetectionResult.annotate`, are on the recording's clock. Occurrences (and candidates)
    whose centre is not inside an interval (in a guard gap) are dropped, and the model's own
    ``occurrences_`` keep them. The binned views stay on the *analysis clock* of the laid-out
    raster, which starts at the first interval's start (so a single interval is the
    recording's clock): ``result.raster``, ``responses``, ``thresholds``, ``t_start``,
    ``t_stop`` and the ``t_start_s``/``t_stop_s`` parameters (the parameters also record
    ``n_intervals``, ``intervals_total_s``, ``guard_bins``, ``n_segments`` and, on the recording's
    clock, ``recording_t_start_s``, ``recording_t_stop_s``, ``searched_intervals_s`` and, with
    several segments, ``searched_segments``); the searched span
    on the recording's clock is ``recording_t_start``/``recording_t_stop`` and the intervals
    ``searched_intervals()``. ``result.time_map.to_recording``, ``to_analysis`` and
    ``to_analysis_frame`` convert between the two clocks (*Clocks* in
    :class:`~convseq_neo.result.DetectionResult`).
    :meth:`~DetectionResult.plot` draws on the analysis clock, the occurrences moved onto it and
    the guard gaps shaded. :meth:`~DetectionResult.find` searches a new recording on its own
    clock: the intervals are not carried over unless passed to it.

    **Several segments.** A Block (or sorting) with several segments is analysed as one
    recording: the segments (each cut to the ``intervals``, on its own clock, when given) are
    laid end to end in segment order with the same guard gaps, so the filters are shared and
    learned from every segment, no window or surrogate crosses from one segment to the next,
    and every occurrence gets a ``segment`` column (the segment's position in the Block) and
    times on that segment's own clock (occurrences are ordered by segment, then time). Units
    are matched across segments by train name (or annotation ``channel_id``/``unit_id``, or
    position) and every segment must hold the same units. Such a result keeps no single list of
    trains: pass a segment's trains to :meth:`~DetectionResult.to_groups`; its exports on one
    clock (:meth:`~DetectionResult.to_epoch`, :meth:`~DetectionResult.spike_labels`,
    :meth:`~DetectionResult.to_pynapple`, :meth:`~DetectionResult.to_spade_dict`) take the
    segment to export (``segment=``), and :meth:`~DetectionResult.annotate` given the Block puts
    each segment's Epoch into that segment.

    With ``intervals=None`` and one segment nothing of this applies: the raster is on the
    recording's clock and ``result.time_map`` is None.

    **Automatic time scale.** With ``width="auto"`` (the default) the windows searched are a
    geometric set, ``0.1 s * 3 ** k`` (0.1, 0.3, 0.9, 2.7 s, ...), each binned at a twentieth of
    itself, and bounded by the recording alone (:mod:`convseq_neo.scales`): no bin finer than
    the data's time resolution (the smallest gap between distinct spike times: 50 ms for spike
    times on imaging frames; a binned input's bin size), no window under 8 bins, no bin in which
    the median neuron fires more than 0.5 spikes on average, no window longer than a fiftieth of
    the searched time, and at most 5 windows, finest first. At each window, ``n_patterns``
    patterns are learned (``"auto"``: 1, 2, ... until the newest is not *found*, i.e. has no
    significant cross-fitted occurrence or fewer than 2 member neurons, or repeats part of an
    earlier pattern of the same fit, and the last fit whose newest pattern was found is kept),
    exactly as with an explicit window; only found patterns are reported. A pattern found at two
    windows (half of the smaller member set shared, and half of the occurrences of the one with
    fewer within half the larger window of the other's) is reported once, at the window where it
    has more significant occurrences.
    Nothing in these choices looks at ground truth: they use the held-out test alone.

    *False detections over the whole search.* Each window's fits are tested at ``alpha / S``
    (Bonferroni over the ``S`` windows searched). On a recording with nothing in it a second fit
    runs at a window only after the first one there made a (false) detection, so the chance of
    any false occurrence over the whole search stays at most about ``alpha``, however many
    windows and patterns are tried. :meth:`DetectionResult.find` with several ``warp`` factors
    applies the same correction over the factors.

    The search costs one fit per window, and more where patterns are found: on 2 CPU cores a
    120-neuron, 10-minute recording takes minutes (``benchmarks/bench_scales.py``). Pass
    ``width`` (and ``n_patterns``) when the time scale is known.

    Examples
    --------
    A generated recording with one planted pattern and a small, quick fit: the other docstrings'
    examples use this ``recording`` and this ``result``.

    >>> import quantities as pq
    >>> from convseq_neo.detect import detect
    >>> from convseq_neo.synthetic.generate import sequence_recording
    >>> recording = sequence_recording(n_neurons=30, members_per_pattern=12, duration=40 * pq.s, rate=2 * pq.Hz,
    ...                                lag_step=10 * pq.ms, n_occurrences=20, jitter=2 * pq.ms, random_state=1)
    >>> result = detect(recording.spiketrains, bin_size=5 * pq.ms, width=200 * pq.ms, n_patterns=1, random_state=0,
    ...                 max_epochs=200, min_epochs=50, n_surrogates=40, n_folds=3)
    >>> list(result.occurrences.columns)
    ['pattern', 'center', 'onset', 'offset', 'peak', 'pvalue']
    >>> len(result.occurrences) >= 15
    True
    >>> epoch = result.to_epoch()
    >>> epoch.name, str(epoch.times.units.dimensionality), str(epoch.labels[0])
    ('convseq_occurrences', 's', 'pattern0')
    >>> len(set(result.patterns[0].neurons) & set(recording.members[0])) >= 10
    True

    With no time scale given, the windows are searched (the settings after ``random_state``
    only make this example quick):

    >>> searched = detect(recording.spiketrains, random_state=0, max_epochs=200, min_epochs=50, n_surrogates=40,
    ...                   n_folds=3)
    >>> searched.scales["width"].round(3).tolist()
    [0.1, 0.3]
    >>> [(round(float(p.width), 3), len(set(p.neurons) & set(recording.members[0])) >= 10)
    ...  for p in searched.patterns]
    [(0.1, True)]
    """
    # imported here, not at the top, so that ``import convseq_neo`` (which binds this function) stays light
    from convseq_neo._validation import check_random_state
    from convseq_neo.core.tasks import check_client
    from convseq_neo.io.neo import BinnedSpikeTrain
    from convseq_neo.raster import SpikeRaster
    from convseq_neo.scale_search import (
        _is_auto,
        check_auto_arguments,
        fit_patterns,
        plan_scales,
        search_scales,
    )

    options = _check_core_options(core_options)
    check_client(client)
    check_auto_arguments(bin_size, width, n_patterns, max_patterns)
    binned_input = isinstance(spiketrains, SpikeRaster) or (bool(BinnedSpikeTrain)
                                                             and isinstance(spiketrains, BinnedSpikeTrain))
    if bin_size is None and not binned_input:
        raise TypeError(f"detect() got bin_size=None: leave it out (or pass 'auto') to choose it from the data, or "
                        f"{_USAGE}")
    if width is None:
        raise TypeError(f"detect() got width=None: leave it out (or pass 'auto') to search the time scale, or {_USAGE}")
    if not _is_auto(n_patterns):
        from convseq_neo._validation import check_positive_int

        check_positive_int(n_patterns, "n_patterns")
    alpha = float(options.get("alpha", 0.05))
    window = dict(t_start=t_start, t_stop=t_stop, intervals=intervals, segment_index=segment_index)
    shared = dict(device=device, n_jobs=n_jobs, progress=progress, client=client, **window)
    if not _is_auto(width):
        # one window: the bin given (or a binned input's own) or one tied to the window
        if _is_auto(bin_size):
            bin_size = None if binned_input else _tied_bin_size(spiketrains, width, window)
        if not _is_auto(n_patterns):
            return _detect_one(spiketrains, bin_size, width, int(n_patterns), random_state=random_state,
                               options=options, **shared)
        result, rows = fit_patterns(
            lambda k, level: _detect_one(spiketrains, bin_size, width, k, random_state=random_state,
                                         options={**options, "alpha": level}, **shared),
            n_patterns, max_patterns, alpha=alpha, scale_index=0)
        return _record_pattern_search(result, rows)
    if binned_input and _is_auto(bin_size):
        bin_size = None
    scales, facts = plan_scales(spiketrains, bin_size, **window)
    # one seed per window, drawn from random_state (None stays None: fresh randomness at every window)
    seeds = ([None] * len(scales) if random_state is None
             else [int(s) for s in check_random_state(random_state).integers(2**31, size=len(scales))])

    import quantities as pq

    from convseq_neo._plausibility import RecordingWarning

    def fit_at(scale, k, level, index):
        with warnings.catch_warnings():
            # the recording was checked (and warned about) once, when the scales were planned
            warnings.simplefilter("ignore", RecordingWarning)
            return _detect_one(spiketrains, scale.bin_size_s * pq.s, scale.width_bins * scale.bin_size_s * pq.s, k,
                               random_state=seeds[index], options={**options, "alpha": level},
                               **{**shared, "progress": False})

    logger.info("detect: searching %d time scale(s): %s", len(scales), "; ".join(map(str, scales)))
    return search_scales(fit_at, scales, n_patterns, max_patterns, alpha, progress=progress, facts=facts)


def _tied_bin_size(spiketrains, width, window: dict):
    """The bin tied to an explicit ``width`` (``bin_size="auto"``): ``width / 20``, never finer than the data."""
    import quantities as pq

    from convseq_neo._validation import check_time_quantity
    from convseq_neo.scale_search import recording_facts
    from convseq_neo.scales import BINS_PER_WIDTH

    width_s = float(check_time_quantity(width, "width").rescale("s").magnitude)
    facts = recording_facts(spiketrains, "auto", **window)
    return max(width_s / BINS_PER_WIDTH, facts["resolution_s"]) * pq.s


def _record_pattern_search(result, rows):
    """Record the ``n_patterns="auto"`` fits of one scale in the kept result's parameters (and ``pattern_search``)."""
    import json

    import pandas as pd

    table = pd.DataFrame(rows)
    result.pattern_search = table
    fits = table.groupby("n_patterns")["n_occurrences"].apply(list)
    result.parameters["n_patterns_search"] = json.dumps({int(k): [int(v) for v in vs] for k, vs in fits.items()})
    return result


def _detect_one(spiketrains, bin_size, width, n_patterns, *, t_start, t_stop, intervals, segment_index, random_state,
                device, n_jobs, progress, client, options) -> DetectionResult:
    """One fit at one scale: what detect() did before the automatic search (and does with explicit values)."""
    from convseq_neo.core.estimator import ConvSeq
    from convseq_neo.io.neo import plan_raster
    from convseq_neo.result import DetectionResult

    plan = plan_raster(spiketrains, bin_size, t_start=t_start, t_stop=t_stop, width=width, n_patterns=n_patterns,
                       n_init=options.get("n_init", 2), n_folds=options.get("n_folds", 5),
                       n_surrogates=options.get("n_surrogates", 200), intervals=intervals,
                       segment_index=segment_index)
    model = ConvSeq(n_patterns=n_patterns, width=plan.width_bins, random_state=random_state, device=device,
                    n_jobs=n_jobs, progress=progress, **options)
    model.check_params()
    started = time.perf_counter()
    raster = plan.bin()
    binned = time.perf_counter() - started
    logger.info("detect: %r, width %d bins, %d pattern(s)", raster, model.width, model.n_patterns)
    model.fit(raster, client=client)
    model.timings_ = {"binning": binned, **model.timings_, "total": binned + model.timings_["total"]}
    # with a time map (intervals, a TsGroup's support, several segments) the result maps its occurrences back to
    # the recording's clock and leaves out those whose centre lies between intervals (DetectionResult, Clocks)
    return DetectionResult._from_model(model, raster, source=plan.source, applied="fit", time_map=plan.time_map)
