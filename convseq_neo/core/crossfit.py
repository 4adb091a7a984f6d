"""Cross-fitted significance: folds, fold filters matched to the all-data filters, and their test.

The recording's response times are cut into contiguous folds; for each fold a filter is trained on
the other folds (with a guard band of ``W`` bins, so no training window overlaps a test window),
and only that fold's response to its own, unseen data is tested. Because the tested filter never
saw the tested data, the null distribution of its peak heights can be sampled exactly by applying
the same fixed filter to surrogates of the data (dithered by default)
(:func:`~convseq_neo.core.significance.null_peak_heights`). Before testing, each model's filters
are put in their tested form: the members found in that model's own training data, each member's
spikes weighed by their log likelihood ratio around its lag, and no other neuron
(:func:`restrict_to_members`); the fold
filters are matched to the all-data filters by shape, and the tested peaks are moved into the
all-data filter's frame.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import torch
from scipy.optimize import linear_sum_assignment

from convseq_neo.core.membership import membership_for_pattern
from convseq_neo.core.significance import (
    CandidatePeaks,
    benjamini_hochberg,
    collect_peaks,
    fold_pad,
    masked_peaks,
    null_peak_heights_in_chunks,
    null_share,
    one_peak_per_window,
    pvalue_resolution,
    row_pvalues,
    standardized_heights,
)
from convseq_neo.raster import SpikeRaster

logger = logging.getLogger(__name__)

__all__ = ["fold_regions", "model_masks", "member_filter", "membership_filters", "select_members",
           "restrict_to_members", "unmix_members", "match_filters", "crossfit_test"]


def fold_regions(length: int, n_folds: int) -> list[tuple[int, int]]:
    """Contiguous ``[start, stop)`` test regions of a response of ``length`` bins."""
    edges = np.linspace(0, length, n_folds + 1).round().astype(int)
    return [(int(edges[i]), int(edges[i + 1])) for i in range(n_folds)]


def model_masks(length: int, regions: list[tuple[int, int]], width: int) -> np.ndarray:
    """Boolean ``(1 + n_folds, length)``: the times each model trains on.

    Row 0 is the all-data model (every time). Row ``1 + f`` is fold ``f``'s filter, which never
    trains within ``width`` bins of its test region, so the spikes its training windows see and the
    spikes its test windows see are disjoint. With no regions there is only row 0.
    """
    masks = np.ones((1 + len(regions), length), dtype=bool)
    for fold, (start, stop) in enumerate(regions):
        masks[1 + fold, max(0, start - width):min(length, stop + width)] = False
    return masks


def _offsets_around(raster: SpikeRaster, neuron: int, centres: np.ndarray, reach: int) -> np.ndarray:
    """Offsets ``s - c`` of the neuron's spike bins ``s`` within ``reach`` bins of each centre ``c`` (pooled)."""
    start = np.searchsorted(raster.neuron_index, neuron, side="left")
    stop = np.searchsorted(raster.neuron_index, neuron, side="right")
    spikes = raster.bin_index[start:stop]  # stored sorted by (neuron, bin)
    low = np.searchsorted(spikes, centres - reach, side="left")
    high = np.searchsorted(spikes, centres + reach, side="right")
    lengths = high - low
    # every centre's run of spikes, laid end to end (one gather instead of a Python loop over centres)
    within = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return spikes[np.repeat(low, lengths) + within] - np.repeat(centres, lengths)


def member_filter(raster: SpikeRaster, peaks: np.ndarray, members: np.ndarray, lags: np.ndarray, width: int,
                  lag_tolerance: int) -> np.ndarray:
    """The tested form of a pattern: each member's log likelihood ratio around its lag; other rows zero.

    For member ``n`` at lag ``l`` (bins relative to the window peak), the spikes within ``R`` bins
    of ``peak + l`` at the given occurrence ``peaks`` (``R = max(3 lag_tolerance, W // 8)``) give its
    participation ``q`` (spikes above the expected background count, per occurrence; 0.05 to 1) and
    its jitter ``sigma`` (their spread, corrected for the background's; 0.5 to ``R / 2`` bins). A
    spike at offset ``d`` from the lag then weighs ``log(1 + q phi_sigma(d) / r)``, with
    ``phi_sigma`` the Gaussian of that spread over the offsets ``|d| <= R`` and ``r`` the neuron's
    mean count per bin away from those occurrences: the log likelihood ratio of "member of an
    occurrence here" against "background" for one spike (Neyman-Pearson: the most powerful weight
    for that model). Reliable, precise members of low rate weigh most; a neuron that fires anyway
    weighs little.

    Parameters
    ----------
    raster : SpikeRaster
    peaks : ndarray of int
        Window peaks of the occurrences the lags were measured at.
    members : ndarray of bool, shape (N,)
    lags : ndarray, shape (N,)
        Lag of each neuron relative to the window peak (NaN where unknown; such a row stays zero).
    width, lag_tolerance : int

    Returns
    -------
    ndarray of float32, shape (N, W)
        Zero outside the members' reach; member rows are positive and do not sum to 1.

    Examples
    --------
    >>> import numpy as np
    >>> from convseq_neo.raster import SpikeRaster
    >>> dense = np.zeros((3, 400), dtype=int)
    >>> peaks = np.arange(50, 350, 50)
    >>> dense[0, peaks - 2] = 1  # neuron 0 fires 2 bins before every peak
    >>> dense[1, ::7] = 1        # neuron 1 fires regularly, unrelated
    >>> rows = member_filter(SpikeRaster.from_dense(dense), peaks, np.array([True, False, False]),
    ...                      np.array([-2.0, np.nan, np.nan]), width=20, lag_tolerance=1)
    >>> int(rows[0].argmax()), bool(rows[1:].any())
    (8, False)
    """
    half = width // 2
    reach = max(3 * int(lag_tolerance), width // 8, 1)
    rows = np.zeros((raster.n_neurons, width), dtype=np.float32)
    peaks = np.asarray(peaks, dtype=np.int64)
    if peaks.size == 0:
        return rows
    counts = np.bincount(raster.neuron_index, weights=raster.counts, minlength=raster.n_neurons)
    offsets = np.arange(-reach, reach + 1)
    outside_bins = max(raster.n_bins - peaks.size * offsets.size, 1)
    background_second_moment = reach * (reach + 1) / 3.0  # of an offset uniform on -R..R
    for neuron in np.flatnonzero(members & np.isfinite(lags)):
        lag = int(np.round(lags[neuron]))
        found = _offsets_around(raster, neuron, peaks + lag, reach).astype(float)
        rate = max((counts[neuron] - found.size) / outside_bins, 1e-9)  # away from these occurrences
        expected = rate * offsets.size * peaks.size
        signal = max(found.size - expected, 0.5)
        participation = float(np.clip(signal / peaks.size, 0.05, 1.0))
        variance = (np.square(found).sum() - expected * background_second_moment) / signal
        sigma = float(np.clip(np.sqrt(max(variance, 0.0)), 0.5, reach / 2.0))
        shape = np.exp(-0.5 * np.square(offsets / sigma))
        weights = np.log1p(participation * shape / shape.sum() / rate)
        positions = offsets + lag + half
        inside = (positions >= 0) & (positions < width)
        rows[neuron, positions[inside]] = weights[inside]
    return rows


def membership_filters(raster: SpikeRaster, membership: pd.DataFrame, offsets: np.ndarray, pattern: np.ndarray,
                       peak_bin: np.ndarray, width: int, lag_tolerance: int, fallback: np.ndarray) -> np.ndarray:
    """Each pattern as reported, in its tested form: :func:`member_filter` of its members at their lags.

    The members and lags are the fit's final membership (``membership``, lags relative to the
    pattern centre, ``offsets`` the centre's place in the window), and each member's participation
    and jitter are measured at the pattern's significant occurrences (``pattern``, ``peak_bin``),
    so a pattern is looked for in new data as what the result reports. As in the cross-fitted test,
    a pattern whose members hold another pattern's and more is weighed without the other's
    (:func:`unmix_members`). A pattern without members keeps its ``fallback`` filter.

    Returns
    -------
    ndarray of float32, shape (K, N, W)
    """
    filters = np.array(fallback, dtype=np.float32, copy=True)
    n_patterns = filters.shape[0]
    tables = [membership[membership["pattern"] == k].sort_values("neuron") for k in range(n_patterns)]
    if any(len(table) != raster.n_neurons for table in tables):
        raise ValueError(f"membership holds {[len(t) for t in tables]} rows per pattern; expected {raster.n_neurons}")
    members = unmix_members(np.stack([table["member"].to_numpy(bool) for table in tables]))
    for k, table in enumerate(tables):
        if members[k].any():
            lags = table["lag"].to_numpy(float) + offsets[k]
            filters[k] = member_filter(raster, peak_bin[pattern == k], members[k], lags, width, lag_tolerance)
    return filters


#: Counts of top in-sample peaks tried by :func:`select_members` (the count above the reference
#: threshold is tried too); grows geometrically so a long recording costs a few dozen tests.
PEAK_COUNTS = (5, 6, 8, 10, 13, 16, 20, 25, 32, 40, 50, 64, 80, 100, 128, 160, 200, 256, 320, 400, 512)
#: Neurons below this membership p-value make the preliminary filter of :func:`select_members`'
#: refinement (a filter to find peaks with, not a claim of membership).
PRELIMINARY_LEVEL = 0.2
#: Counts tried past the best one before :func:`select_members` stops looking (when it has members).
_PATIENCE = 3
#: Refinements of :func:`select_members`: peaks of the preliminary member filter, then members again.
N_REFINEMENTS = 2


def _most_evidence(pattern: int, raster: SpikeRaster, peaks: np.ndarray, heights: np.ndarray, width: int,
                  lag_tolerance: int, alpha: float, n_above: int) -> tuple[np.ndarray, pd.DataFrame]:
    """The top-``m`` peaks whose members hold the most evidence, and their membership table.

    The evidence is the sum of ``-log10 p`` over the members. Counting members instead rewards chance: a few
    peaks can name a neuron or two that happened to fire there, while more true occurrences make every true
    member's p-value smaller.
    """
    order = np.argsort(heights, kind="stable")[::-1]
    counts = sorted({m for m in (*PEAK_COUNTS, n_above) if 5 <= m <= peaks.size} or {peaks.size})
    best, below = None, 0
    for m in counts:
        chosen = peaks[order[:m]]
        table = membership_for_pattern(pattern, raster, chosen, width, lag_tolerance, alpha)
        evidence = float(-np.log10(np.clip(table.loc[table["member"], "pvalue"].to_numpy(), 1e-300, 1)).sum())
        if best is None or evidence > best[0]:
            best, below = (evidence, chosen, table), 0
        else:
            below += 1
            if below == _PATIENCE and best[0] > 0:  # past the occurrences: more peaks only add chance ones
                break
    return best[1], best[2]


def select_members(op, raster: SpikeRaster, pattern: int, response: np.ndarray, mask: np.ndarray, threshold: float,
                   width: int, lag_tolerance: int, alpha: float) -> tuple[np.ndarray, pd.DataFrame]:
    """A model's occurrences and members of one pattern, from its own training times only.

    The trained filter's in-sample peaks (``mask``) are ranked by height. Of the top ``m`` peaks,
    for each ``m`` of :data:`PEAK_COUNTS` and the count above ``threshold``, the membership test
    (:func:`~convseq_neo.core.membership.membership_for_pattern`) is run, and the ``m`` whose
    members hold the most evidence (the sum of their ``-log10 p``) is kept; the counts are tried
    in increasing order, and the scan stops three counts past the best one (more peaks than the
    occurrences add only chance ones). A trained filter weighs
    every neuron a little, so its peaks rank true occurrences among chance ones. Then,
    :data:`N_REFINEMENTS` times, the neurons below :data:`PRELIMINARY_LEVEL` make a member filter
    (:func:`member_filter`), whose peaks on the same training times rank the occurrences again,
    and ``m`` is chosen again.

    Measured on short recordings (8 occurrences of a 20-member sequence in 75 neurons), a fold
    model's top 8 peaks held 6-7 true occurrences, but the top 5, which the threshold alone kept,
    named 0-3 members; so the fold was tested with its whole trained filter and nothing was found.

    Every step reads the training times only, so the tested fold stays unseen and the
    cross-fitted p-values keep their meaning.

    Parameters
    ----------
    op : response operator
        From :func:`~convseq_neo.core.response.make_response`; computes the provisional filters' responses.
    raster : SpikeRaster
    pattern : int
        The pattern's number (the membership table's ``pattern`` column).
    response : ndarray, shape (L,)
        The model's trained filter's response.
    mask : ndarray of bool, shape (L,)
        The model's training times (:func:`model_masks`).
    threshold : float
        The reference threshold; the number of peaks above it is one of the counts tried.
    width, lag_tolerance : int
    alpha : float
        False discovery rate of the membership test.

    Returns
    -------
    peaks : ndarray of int
        The chosen in-sample occurrence peaks.
    table : pandas.DataFrame
        Their membership table (``member`` at ``alpha``).
    """
    peaks, heights = masked_peaks(response, mask, width)
    if peaks.size == 0:
        return peaks, membership_for_pattern(pattern, raster, peaks, width, lag_tolerance, alpha)
    chosen, table = _most_evidence(pattern, raster, peaks, heights, width, lag_tolerance, alpha,
                                  int(np.sum(heights > threshold)))
    for _ in range(N_REFINEMENTS):
        preliminary = table["pvalue"].to_numpy() < PRELIMINARY_LEVEL
        if not preliminary.any():
            break
        rows = member_filter(raster, chosen, preliminary, table["lag"].to_numpy(dtype=float), width, lag_tolerance)
        with torch.no_grad():
            refined = op(torch.as_tensor(rows[None], device=op.device)).cpu().numpy()[0]
        peaks, heights = masked_peaks(refined, mask, width)
        if peaks.size == 0:
            break
        chosen, table = _most_evidence(pattern, raster, peaks, heights, width, lag_tolerance, alpha, 0)
    return chosen, table


def restrict_to_members(op, raster: SpikeRaster, model_filters: np.ndarray, masks: np.ndarray, threshold: float,
                        lag_tolerance: int, alpha: float) -> np.ndarray:
    """Each model's filters in their tested form: the members' evidence only (:func:`member_filter`).

    Every row of a trained filter also learns chance coincidences, and the trained rows are
    smooth (the objective rewards a smooth response), so the full filter adds the noise of every
    non-member and of every member's spikes far from its lag. For each model (the all-data fit and
    every cross-fitting fold) the occurrences, members and lags are found from that model's own
    training data only (``masks``; :func:`select_members`), and each member's participation and
    jitter are measured at those same occurrences. The tested filter weighs each member's spikes
    by their log likelihood ratio around its lag and ignores every other neuron. A pattern with no
    member keeps its full filter. With several patterns, a pattern whose members hold another
    pattern's and more is tested without the other's (:func:`unmix_members`).

    The one thing taken from the whole recording is each neuron's spike count (for its background
    rate), which the surrogates keep, so the null still holds.

    Parameters
    ----------
    op : response operator
        From :func:`~convseq_neo.core.response.make_response`.
    raster : SpikeRaster
    model_filters : ndarray, shape (n_models, K, N, W)
    masks : ndarray of bool, shape (n_models, L)
        Each model's training times (:func:`model_masks`).
    threshold : float
        The reference threshold (:func:`~convseq_neo.core.significance.random_filter_threshold`):
        the number of peaks above it is one of the counts :func:`select_members` tries.
    lag_tolerance : int
    alpha : float

    Returns
    -------
    ndarray, shape (n_models, K, N, W)
        The tested filters: for a pattern with members, :func:`member_filter`'s rows (zero for a
        non-member); for a pattern without, its trained filter.
    """
    n_models, n_patterns, _, width = model_filters.shape
    restricted = model_filters.copy()
    with torch.no_grad():
        responses = op(torch.as_tensor(model_filters.reshape(n_models * n_patterns, -1, width),
                                       device=op.device)).cpu().numpy().reshape(n_models, n_patterns, -1)
    for model in range(n_models):
        tables, kept = [], []
        for pattern in range(n_patterns):
            peaks, table = select_members(op, raster, pattern, responses[model, pattern], masks[model], threshold,
                                          width, lag_tolerance, alpha)
            kept.append(peaks)
            tables.append(table)
        members = unmix_members(np.stack([table["member"].to_numpy() for table in tables]))
        for pattern, table in enumerate(tables):
            if members[pattern].any():
                restricted[model, pattern] = member_filter(raster, kept[pattern], members[pattern],
                                                           table["lag"].to_numpy(dtype=float), width, lag_tolerance)
    return restricted


def unmix_members(members: np.ndarray, contained: float = 0.8, larger: float = 1.5) -> np.ndarray:
    """Take another pattern's members out of a pattern that holds that pattern and more.

    One filter can learn two sequences at once (each row is its own softmax); its members are then
    both sequences' members, and its evidence answers both. When most (``contained``) of pattern
    ``j``'s members are members of pattern ``k`` and ``k`` has at least ``larger`` times as many,
    ``k`` is tested on its other members only. Patterns on the same neurons in another order (a
    sequence and its reverse) have equal member sets and are left alone.

    Parameters
    ----------
    members : ndarray of bool, shape (K, N)

    Returns
    -------
    ndarray of bool, shape (K, N)

    Examples
    --------
    >>> import numpy as np
    >>> mixed = np.zeros((2, 10), dtype=bool)
    >>> mixed[0, :8] = True   # two sequences in one pattern
    >>> mixed[1, 4:8] = True  # one of them alone
    >>> unmix_members(mixed).nonzero()[1][:4].tolist()
    [0, 1, 2, 3]
    """
    members = np.asarray(members, dtype=bool)
    out = members.copy()
    sizes = members.sum(axis=1)
    for k in range(members.shape[0]):
        for j in range(members.shape[0]):
            if j == k or sizes[j] == 0 or sizes[k] < larger * sizes[j]:
                continue
            if (members[k] & members[j]).sum() >= contained * sizes[j]:
                out[k] &= ~members[j]
    return out


def match_filters(reference: np.ndarray, candidates: np.ndarray,
                  max_shift: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Assign candidate filters to reference filters by shape; return the order and each one's time shift.

    Similarity is the largest inner product of the filters' excess weights (above uniform) over
    shifts of up to ``max_shift`` bins (default ``W // 4``). A candidate whose pattern sits ``d``
    bins later in its window peaks ``d`` bins earlier, so ``d`` is added to its peak times to bring
    them into the reference frame.

    Parameters
    ----------
    reference, candidates : ndarray, shape (K, N, W)
    max_shift : int, optional

    Returns
    -------
    order : ndarray of int, shape (K,)
        ``candidates[order[k]]`` is matched to ``reference[k]``.
    shifts : ndarray of int64, shape (K,)
        The time shift of each matched candidate, in the reference's order.
    """
    n_patterns, _, width = reference.shape
    max_shift = width // 4 if max_shift is None else max_shift
    ref = np.clip(reference - 1.0 / width, 0, None)
    cand = np.clip(candidates - 1.0 / width, 0, None)
    shifts = np.arange(-max_shift, max_shift + 1)
    score = np.zeros((n_patterns, n_patterns, shifts.size))
    for i, shift in enumerate(shifts):
        if shift >= 0:
            score[:, :, i] = np.einsum("anj,bnj->ab", ref[:, :, : width - shift], cand[:, :, shift:])
        else:
            score[:, :, i] = np.einsum("anj,bnj->ab", ref[:, :, -shift:], cand[:, :, : width + shift])
    best = score.max(axis=2)
    rows, cols = linear_sum_assignment(-best)
    order = np.empty(n_patterns, dtype=int)
    order[rows] = cols
    best_shift = shifts[score.argmax(axis=2)]
    return order, best_shift[np.arange(n_patterns), order].astype(np.int64)


def crossfit_test(op, raster: SpikeRaster, model_filters: np.ndarray, masks: np.ndarray,
                  regions: list[tuple[int, int]], *, threshold: float, lag_tolerance: int, alpha: float,
                  n_surrogates: int, rng: np.random.Generator, progress: bool = False,
                  surrogates: str = "dither", dither: int | None = None, client=None) -> CandidatePeaks:
    """Test each fold's peaks with the filter that did not see that fold; Benjamini-Hochberg over all.

    The filters are first restricted to their members (:func:`restrict_to_members`), each fold's
    filters are matched to the all-data ones (:func:`match_filters`), and each fold filter's peaks
    in its own region get empirical p-values against its peaks on ``n_surrogates`` surrogates
    (:func:`~convseq_neo.core.significance.surrogate_bins`). Peak bins, tested responses and
    thresholds are returned in the all-data filters' frame.

    Parameters
    ----------
    op : response operator
        From :func:`~convseq_neo.core.response.make_response`.
    raster : SpikeRaster
    model_filters : ndarray, shape (1 + n_folds, K, N, W)
        The all-data filters, then each fold's (:class:`~convseq_neo.core.training.TrainedPatterns`).
    masks : ndarray of bool, shape (1 + n_folds, L)
        Each model's training times (:func:`model_masks`).
    regions : list of (start, stop)
        Each fold's test region (:func:`fold_regions`).
    threshold : float
        The reference threshold, used to find the members that :func:`restrict_to_members` keeps.
    lag_tolerance : int
    alpha : float
        False discovery rate over all candidates.
    n_surrogates : int
    rng : numpy.random.Generator
        Seeds the surrogates' chunks (:func:`~convseq_neo.core.significance.null_peak_heights_in_chunks`).
    progress : bool
        Show a progress bar over the surrogates' chunks.
    surrogates : {"dither", "circular"}
        The surrogates of the null (:func:`~convseq_neo.core.significance.surrogate_bins`).
    dither : int, optional
        Their largest dither in bins (default ``W``).
    client : distributed.Client, optional
        Sample the null's chunks as tasks on this dask cluster (:mod:`convseq_neo.core.tasks`).

    Returns
    -------
    CandidatePeaks
        With ``fold_shifts`` and ``tested_filters`` (the all-data model's) set;
        ``tested_responses`` is NaN at the few fold-border bins that no fold covers after the shift.
    """
    tested_filters = restrict_to_members(op, raster, model_filters, masks, threshold, lag_tolerance, alpha)
    n_patterns, width = tested_filters.shape[1], tested_filters.shape[-1]
    n_folds = len(regions)
    reference = tested_filters[0]
    fold_filters = []
    fold_shifts = np.zeros((n_folds, n_patterns), dtype=np.int64)
    for fold in range(n_folds):
        order, fold_shifts[fold] = match_filters(reference, tested_filters[fold + 1])
        fold_filters.append(tested_filters[fold + 1][order])
    stacked = np.concatenate(fold_filters, axis=0)  # (n_folds * K, N, W), fold-major
    row_regions = [regions[fold] for fold in range(n_folds) for _ in range(n_patterns)]
    with torch.no_grad():
        tested = op(torch.as_tensor(stacked, device=op.device)).cpu().numpy()
    null = null_peak_heights_in_chunks(raster, stacked, row_regions, width, n_surrogates, rng, op.device,
                                       method=surrogates, dither=dither, client=client, progress=progress,
                                       pad=fold_pad(width))

    rows, times, heights = collect_peaks(tested, row_regions, width, fold_pad(width))
    peak_bin = times + fold_shifts.reshape(-1)[rows]
    once = one_peak_per_window(rows % n_patterns, peak_bin, rows // n_patterns, regions, width, fold_shifts)
    rows, heights, peak_bin = rows[once], heights[once], peak_bin[once]
    pvalues = row_pvalues(rows, heights, null)
    significant, cutoff = benjamini_hochberg(pvalues, alpha)
    cutoff = cutoff if significant.any() else alpha / max(1, pvalues.size)
    length = tested.shape[1]
    thresholds = np.full((n_patterns, length), np.inf)
    for fold, (start, stop) in enumerate(regions):
        for pattern in range(n_patterns):
            low, high = _shifted_span(start, stop, fold_shifts[fold, pattern], length)
            thresholds[pattern, low:high] = _height_threshold(null[fold * n_patterns + pattern], cutoff)
    tested_responses = _tested_in_reference_frame(tested, n_patterns, regions, fold_shifts, rows, peak_bin, heights,
                                                  width)
    return CandidatePeaks(pattern=rows % n_patterns, peak_bin=peak_bin, height=heights, pvalue=pvalues,
                       significant=significant, tested_responses=tested_responses, thresholds=thresholds,
                       fold_shifts=fold_shifts, tested_filters=reference, fold=rows // n_patterns, null=list(null),
                       null_z=standardized_heights(rows, heights, null), pvalue_resolution=pvalue_resolution(null),
                       null_passes=null_share(row_regions, length) * n_surrogates)


def _height_threshold(null: np.ndarray, cutoff: float) -> float:
    """The smallest peak height whose p-value against ``null`` is at most ``cutoff``.

    That is the smallest ``h`` with ``(1 + #{null >= h}) / (1 + n) <= cutoff``: just above the
    ``(allowed + 1)``-th highest null height; ``inf`` when no height can be (the cutoff is below
    ``1 / (1 + n)``) and ``-inf`` when every height is.
    """
    sample = np.sort(null)
    # the attainable p-values, computed exactly as empirical_pvalues does (a floor of
    # cutoff * (1 + n) - 1 rounds 1/(1+n) * (1+n) below 1 for some n and loses the smallest one)
    attainable = (1.0 + np.arange(sample.size + 1)) / (1.0 + sample.size)
    allowed = int(np.searchsorted(attainable, cutoff, side="right")) - 1
    if allowed < 0:
        return np.inf
    if allowed >= sample.size:
        return -np.inf
    return np.nextafter(sample[sample.size - 1 - allowed], np.inf)


def _tested_in_reference_frame(tested: np.ndarray, n_patterns: int, regions: list[tuple[int, int]],
                               fold_shifts: np.ndarray, fold_of: np.ndarray, peak_bins: np.ndarray,
                               heights: np.ndarray, width: int) -> np.ndarray:
    """The cross-fitted responses, each fold's moved by its filter's shift into the all-data frame.

    ``tested`` holds one row per (fold, pattern), fold-major, and ``fold_of`` gives each peak's row.
    Shifted spans of neighbouring folds can overlap (by up to ``W // 4`` bins) or leave a gap (NaN
    there): in an overlap the later fold is kept, except around every tested peak, whose fold's
    response is kept within ``W // 4`` bins; the peak bins themselves hold the tested heights.
    """
    length = tested.shape[1]
    out = np.full((n_patterns, length), np.nan)

    def copy(index: int, low: int, high: int) -> None:
        fold, pattern = divmod(int(index), n_patterns)
        shift = int(fold_shifts[fold, pattern])
        span_low, span_high = _shifted_span(*regions[fold], shift, length)
        low, high = max(low, span_low), min(high, span_high)
        out[pattern, low:high] = tested[index, low - shift:high - shift]

    for index in range(tested.shape[0]):
        copy(index, 0, length)
    reach = max(1, width // 4)
    for peak_bin, index in zip(peak_bins, fold_of):
        copy(index, int(peak_bin) - reach, int(peak_bin) + reach + 1)
    inside = (peak_bins >= 0) & (peak_bins < length)
    out[fold_of[inside] % n_patterns, peak_bins[inside]] = heights[inside]
    return out


def _shifted_span(start: int, stop: int, shift: int, length: int) -> tuple[int, int]:
    """The bins ``[start, stop)`` moved by ``shift``, clipped to ``[0, length)``."""
    return max(0, start + int(shift)), min(length, stop + int(shift))
