"""Rank order within each occurrence: do the members fire in the pattern's order, or reversed?

A convSeq filter's rows are broad where spike timing jitters, so a filter also answers its
members firing in another order, even the reverse (the sequence and its reverse on the same
neurons being the extreme case; see the method page, *Limits*). Whether one occurrence follows
the pattern's order is its own question, answered here as in hippocampal replay analysis
(rank-order correlation, Lee & Wilson 2002; Foster & Wilson 2006): within the occurrence's
span, each member that fired gets its mean spike time; Spearman's rho of those times against
the pattern's lags says whether the members fired in the pattern's order (rho near +1), reversed
(near -1) or in no order (near 0), and a shuffle of the times among those members gives its
p-value.

The detection itself does not use this: an occurrence is significant because the filter's
response is, whatever the order. Read the table next to :attr:`DetectionResult.occurrences
<convseq_neo.result.DetectionResult.occurrences>`, e.g. to tell forward from reverse events, or to
see which occurrences of a pattern are its reverse.

References
----------
Lee, A. K. & Wilson, M. A. (2002). Memory of sequential experience in the hippocampus during slow
wave sleep. Neuron 36, 1183-1194.

Foster, D. J. & Wilson, M. A. (2006). Reverse replay of behavioural sequences in hippocampal place
cells during the awake state. Nature 440, 680-683.
"""

from __future__ import annotations

import logging
import numbers
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import quantities as pq
from scipy.stats import rankdata

from convseq_neo._validation import check_random_state

if TYPE_CHECKING:
    from convseq_neo.multiscale import MultiScaleResult
    from convseq_neo.result import DetectionResult

logger = logging.getLogger(__name__)

__all__ = ["occurrence_rank_order"]

COLUMNS = ["pattern", "center", "n_active", "rho", "pvalue"]


def _fit_of(result, pattern_id: int | None = None) -> DetectionResult:
    """The single-scale result a pattern was found in (``None``: any; a search's scales share their trains)."""
    from convseq_neo.multiscale import MultiScaleResult
    from convseq_neo.result import DetectionResult

    if isinstance(result, DetectionResult):
        return result
    if not isinstance(result, MultiScaleResult):
        raise TypeError(f"result must be a DetectionResult or MultiScaleResult (from convseq_neo.detect or find), "
                        f"got {type(result).__name__}")
    if pattern_id is None:
        return result.results[0]
    row = result.pattern_map[result.pattern_map["pattern"] == pattern_id].iloc[0]
    return result.results[int(row["scale"])]


def _spearman_with_shuffles(times: np.ndarray, lags: np.ndarray, n_shuffles: int,
                            rng: np.random.Generator) -> tuple[float, float]:
    """Spearman's rho of ``times`` against ``lags`` and its two-sided shuffle p-value (times permuted)."""
    rank_t, rank_l = rankdata(times), rankdata(lags)
    if np.ptp(rank_t) == 0 or np.ptp(rank_l) == 0:
        return np.nan, np.nan
    centred_l = (rank_l - rank_l.mean()) / np.linalg.norm(rank_l - rank_l.mean())
    shuffled = rng.permuted(np.broadcast_to(rank_t, (n_shuffles, rank_t.size)), axis=1)
    both = np.vstack([rank_t, shuffled])
    both = both - both.mean(axis=1, keepdims=True)
    rhos = both @ centred_l / np.linalg.norm(both, axis=1)
    rho = float(rhos[0])
    extreme = np.sum(np.abs(rhos[1:]) >= abs(rho) - 1e-12)
    return rho, float((1 + extreme) / (1 + n_shuffles))


def occurrence_rank_order(result: DetectionResult | MultiScaleResult, spiketrains=None, *,
                          segment: int | None = None, n_shuffles: int = 1000, min_active: int = 4,
                          random_state=None) -> pd.DataFrame:
    """Rank-order correlation of each occurrence's member spike times with its pattern's lags.

    For each significant occurrence, each member of its pattern that fired between the
    occurrence's ``onset`` and ``offset`` (its earliest and latest member's expected spike time),
    widened by the fit's lag tolerance, contributes its mean spike time there. Spearman's rho of
    those times against the members' lags is +1 when they fired in the pattern's order and -1 when
    reversed; its p-value (two-sided) comes from shuffling the times among those members.

    Parameters
    ----------
    result : DetectionResult or MultiScaleResult
        From :func:`convseq_neo.detect` or :meth:`~convseq_neo.result.DetectionResult.find`; each
        pattern is read at its own scale.
    spiketrains : list of neo.SpikeTrain, SpikeTrainList or neo.Segment, optional
        The trains the occurrences were found in (default: those given to :func:`detect`; needed
        for a result of binned data or of several segments), one per raster row, as for
        :meth:`~convseq_neo.result.DetectionResult.spike_labels`.
    segment : int, optional
        For a result of several segments: the segment whose occurrences to read (its trains in
        ``spiketrains``).
    n_shuffles : int, default 1000
        Shuffles of the spike times among the active members per occurrence.
    min_active : int, default 4
        Fewer active members than this give ``rho`` and ``pvalue`` NaN.
    random_state : int, numpy.random.Generator or None
        Drives the shuffles.

    Returns
    -------
    pandas.DataFrame
        One row per occurrence, with the index of :attr:`~convseq_neo.result.DetectionResult.occurrences`:
        ``pattern``, ``center`` (s), ``n_active`` (members that fired in the window), ``rho`` and
        ``pvalue``.

    Raises
    ------
    TypeError
        ``result`` not a detection result, or a bad ``n_shuffles``, ``min_active`` or ``random_state``.
    ValueError
        ``n_shuffles`` or ``min_active`` too small, or trains that do not match the result.

    Examples
    --------
    ``result`` is :func:`convseq_neo.detect`'s example (one planted 12-member sequence):

    >>> from convseq_neo.analysis.rank_order import occurrence_rank_order
    >>> order = occurrence_rank_order(result, random_state=0)
    >>> list(order.columns)
    ['pattern', 'center', 'n_active', 'rho', 'pvalue']
    >>> bool(order.rho.median() > 0.5)
    True
    """
    first_scale = _fit_of(result)
    for name, value, least in (("n_shuffles", n_shuffles, 1), ("min_active", min_active, 3)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError(f"{name} must be an int, got {type(value).__name__}")
        if value < least:
            raise ValueError(f"{name} must be at least {least}, got {value}")
    rng = check_random_state(random_state)
    part = result._check_segment(segment, "occurrence_rank_order")
    trains, _ = first_scale._unit_trains(spiketrains)
    times = [np.sort(np.asarray(train.times.rescale(pq.s).magnitude, dtype=float).reshape(-1)) for train in trains]
    occ = result._occurrences_of(part)
    kind = occ["pattern"].to_numpy(np.int64)
    onsets, offsets = occ["onset"].to_numpy(float), occ["offset"].to_numpy(float)
    n_active = np.zeros(len(occ), dtype=np.int64)
    rhos, pvalues = np.full(len(occ), np.nan), np.full(len(occ), np.nan)
    for pattern in result.patterns:
        rows = np.flatnonzero(kind == pattern.pattern_id)
        if not rows.size or pattern.size < min_active:
            continue
        margin = _fit_of(result, pattern.pattern_id)._spike_tolerance_s
        lags = np.asarray(pattern.lags.rescale(pq.s).magnitude, dtype=float)
        for row in rows:
            start, stop = onsets[row] - margin, offsets[row] + margin
            mean_times = np.full(pattern.size, np.nan)
            for j, neuron in enumerate(pattern.neurons):
                spikes = times[neuron]
                inside = spikes[np.searchsorted(spikes, start):np.searchsorted(spikes, stop, side="right")]
                if inside.size:
                    mean_times[j] = inside.mean()
            active = ~np.isnan(mean_times)
            n_active[row] = int(active.sum())
            if n_active[row] >= min_active:
                rhos[row], pvalues[row] = _spearman_with_shuffles(mean_times[active], lags[active], n_shuffles, rng)
    out = pd.DataFrame({"pattern": kind, "center": occ["center"].to_numpy(float), "n_active": n_active,
                        "rho": rhos, "pvalue": pvalues}, index=occ.index, columns=COLUMNS)
    logger.debug("rank order of %d occurrences", len(out))
    return out
