"""Cross-fitted significance: folds, fold filters matched to the all-data filters, and their test.

The recording's response times are cut into contiguous folds; for each fold a filter is trained on
the other folds (with a guard band of ``W`` bins, so no training window overlaps a test window),
and only that fold's response to its own, unseen data is tested. Because the tested filter never
saw the tested data, the null distribution of its peak heights can be sampled exactly by applying
the same fixed filter to surrogates of the data (dithered by default)
(:func:`~convseq_neo.core.significance.null_peak_heights`). Before testing, each model's filter
rows of non-member neurons are made uniform, the fold filters are matched to the all-data filters
by shape, and the tested peaks are moved into the all-data filter's frame.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from tqdm.auto import tqdm

from convseq_neo.core.membership import membership_for_pattern
from convseq_neo.core.significance import (
    CandidatePeaks,
    benjamini_hochberg,
    collect_peaks,
    masked_peaks,
    null_peak_heights,
    row_pvalues,
)
from convseq_neo.raster import SpikeRaster

logger = logging.getLogger(__name__)

__all__ = ["fold_regions", "model_masks", "restrict_to_members", "match_filters", "crossfit_test"]


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


def restrict_to_members(op, raster: SpikeRaster, model_filters: np.ndarray, masks: np.ndarray, threshold: float,
                        lag_tolerance: int, alpha: float) -> np.ndarray:
    """Each model's filters with the rows of neurons that are not members made uniform (1 / W).

    Every row of a trained filter also learns chance coincidences, which add noise to its
    response. For each model (the all-data fit and every cross-fitting fold) the members are
    found from that model's own training data only (``masks``): its in-sample peaks above
    ``threshold`` (at least the top 5) go through the membership test. A pattern with no member
    keeps its full filter.

    Parameters
    ----------
    op : response operator
        From :func:`~convseq_neo.core.response.make_response`.
    raster : SpikeRaster
    model_filters : ndarray, shape (n_models, K, N, W)
    masks : ndarray of bool, shape (n_models, L)
        Each model's training times (:func:`model_masks`).
    threshold : float
        The reference threshold (:func:`~convseq_neo.core.significance.random_filter_threshold`).
    lag_tolerance : int
    alpha : float

    Returns
    -------
    ndarray, shape (n_models, K, N, W)
        A restricted copy of ``model_filters``.
    """
    n_models, n_patterns, _, width = model_filters.shape
    restricted = model_filters.copy()
    with torch.no_grad():
        responses = op(torch.as_tensor(model_filters.reshape(n_models * n_patterns, -1, width),
                                       device=op.device)).cpu().numpy().reshape(n_models, n_patterns, -1)
    for model in range(n_models):
        for pattern in range(n_patterns):
            peaks, heights = masked_peaks(responses[model, pattern], masks[model], width)
            keep = heights > threshold
            if keep.sum() < 5:
                keep = np.zeros_like(keep)
                keep[np.argsort(heights)[::-1][:5]] = True
            table = membership_for_pattern(pattern, raster, peaks[keep], width, lag_tolerance, alpha)
            members = table["member"].to_numpy()
            if members.any():
                restricted[model, pattern, ~members] = 1.0 / width
    return restricted


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
                  surrogates: str = "dither", dither: int | None = None) -> CandidatePeaks:
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
        Draws the surrogates' offsets.
    progress : bool
        Show a progress bar over the surrogates.
    surrogates : {"dither", "circular"}
        The surrogates of the null (:func:`~convseq_neo.core.significance.surrogate_bins`).
    dither : int, optional
        Their largest dither in bins (default ``W``).

    Returns
    -------
    CandidatePeaks
        With ``fold_shifts`` set; ``tested_responses`` is NaN at the few fold-border bins that no
        fold covers after the shift.
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
    bar = tqdm(total=n_surrogates, desc="surrogates", disable=not progress, leave=False)
    null = null_peak_heights(raster, stacked, row_regions, width, n_surrogates, rng, op.device, bar,
                             method=surrogates, dither=dither)
    bar.close()

    rows, times, heights = collect_peaks(tested, row_regions, width)
    peak_bin = times + fold_shifts.reshape(-1)[rows]
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
                       fold_shifts=fold_shifts)


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
