"""A second cross-fitted pass: each fold tested with its patterns as the other folds' occurrences show them.

The first pass (:func:`~convseq_neo.core.crossfit.crossfit_test`) tests each fold with the filters
of a model that did not see it, restricted to the members that model finds on its own training
data. Those members and lags come from in-sample peaks of one fold model, so with a weak pattern
or several patterns they are noisy, and the test misses occurrences. Once the first pass has found
significant occurrences, a pattern's members and lags can be measured far better from them.

:func:`second_pass_test` does so fold by fold: for fold ``f`` and pattern ``k``, the membership
(:func:`~convseq_neo.core.membership.membership_for_pattern`) and each member's participation and
jitter (:func:`~convseq_neo.core.crossfit.member_filter`) are measured at the first pass's
significant occurrences of ``k`` at least two window lengths away from fold ``f``'s
test region (two windows: nothing those occurrences' membership, flanking rates and member
weights read reaches the spikes the region's tests read), and that filter's peaks in the region
are tested against its peaks on surrogates of the recording, as in the first pass;
Benjamini-Hochberg at ``alpha`` over every candidate.

What was held out: no spike that fold ``f``'s tests read enters the filter that tests them. The
region's data did enter, through the fold models trained on it, the choice of which occurrences
elsewhere were significant; that dependence is indirect (an occurrence elsewhere must itself pass
a held-out test), and the false rate it allows is measured rather than proven (the method page,
*A second pass*). A fold and pattern for which the other folds give no member keep their
first-pass candidates and p-values.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import torch

from convseq_neo.core.crossfit import _height_threshold, _shifted_span, membership_filters
from convseq_neo.core.membership import membership_for_pattern
from convseq_neo.core.significance import (
    CandidatePeaks,
    benjamini_hochberg,
    collect_peaks,
    fold_pad,
    null_peak_heights_in_chunks,
    null_share,
    one_peak_per_window,
    pvalue_resolution,
    row_pvalues,
    standardized_heights,
)
from convseq_neo.raster import SpikeRaster

logger = logging.getLogger(__name__)

__all__ = ["second_pass_filters", "second_pass_test"]


def second_pass_filters(raster: SpikeRaster, first: CandidatePeaks, regions: list[tuple[int, int]], n_patterns: int,
                        width: int, lag_tolerance: int, alpha: float) -> np.ndarray:
    """Each fold's filters from the first pass's significant occurrences away from that fold.

    Returns
    -------
    ndarray of float32, shape (n_folds, K, N, W)
        Zero for a fold and pattern without members.
    """
    significant = np.asarray(first.significant, dtype=bool)
    peak_bin = np.asarray(first.peak_bin, dtype=np.int64)
    filters = np.zeros((len(regions), n_patterns, raster.n_neurons, width), dtype=np.float32)
    for fold, (start, stop) in enumerate(regions):
        # two windows: an occurrence's membership reads a window and its flanks (one window each side)
        away = significant & ((peak_bin + 2 * width <= start) | (peak_bin - 2 * width >= stop))
        pattern, peaks = np.asarray(first.pattern)[away], peak_bin[away]
        membership = pd.concat([membership_for_pattern(k, raster, peaks[pattern == k], width, lag_tolerance, alpha)
                                for k in range(n_patterns)], ignore_index=True)
        # lags relative to the window peak already: no centre offsets
        filters[fold] = membership_filters(raster, membership, np.zeros(n_patterns), pattern, peaks, width,
                                           lag_tolerance, filters[fold])
    return filters


def second_pass_test(op, raster: SpikeRaster, first: CandidatePeaks, regions: list[tuple[int, int]], *,
                     lag_tolerance: int, alpha: float, n_surrogates: int, rng: np.random.Generator,
                     progress: bool = False, surrogates: str = "dither", dither: int | None = None,
                     client=None) -> CandidatePeaks:
    """Test every fold again with :func:`second_pass_filters`; Benjamini-Hochberg over all candidates.

    Parameters
    ----------
    op : response operator
        From :func:`~convseq_neo.core.response.make_response`.
    raster : SpikeRaster
    first : CandidatePeaks
        The first pass (:func:`~convseq_neo.core.crossfit.crossfit_test`), in the all-data frame,
        with each candidate's ``fold`` and each row's ``null`` (without them: folds by region, and
        the first pass's thresholds kept as they are).
    regions : list of (start, stop)
        Each fold's test region (:func:`~convseq_neo.core.crossfit.fold_regions`).
    lag_tolerance : int
    alpha : float
        False discovery rate over all candidates.
    n_surrogates : int
    rng : numpy.random.Generator
        Seeds the surrogates' chunks.
    progress : bool
    surrogates : {"dither", "circular"}
    dither : int, optional
    client : distributed.Client, optional

    Returns
    -------
    CandidatePeaks
        In the all-data frame (the filters are built there); ``fold_shifts`` and
        ``tested_filters`` are the first pass's.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from convseq_neo.core.crossfit import fold_regions
    >>> from convseq_neo.core.response import make_response
    >>> from convseq_neo.core.significance import CandidatePeaks
    >>> from convseq_neo.raster import SpikeRaster
    >>> rng = np.random.default_rng(0)
    >>> dense = (rng.random((20, 3000)) < 0.01).astype(int)
    >>> starts = np.arange(100, 2900, 150)
    >>> for start in starts:                          # 10 neurons in order every 150 bins
    ...     dense[np.arange(10), start + np.arange(10)] = 1
    >>> raster = SpikeRaster.from_dense(dense)
    >>> op = make_response(raster, 20, backend="events", device=torch.device("cpu"))
    >>> regions = fold_regions(3001, 3)
    >>> peaks = starts + 4                             # window peaks of the planted occurrences
    >>> first = CandidatePeaks(pattern=np.zeros(peaks.size, int), peak_bin=peaks, height=np.ones(peaks.size),
    ...                        pvalue=np.full(peaks.size, 0.01), significant=np.ones(peaks.size, bool),
    ...                        tested_responses=np.zeros((1, 3001)), thresholds=np.zeros((1, 3001)))
    >>> again = second_pass_test(op, raster, first, regions, lag_tolerance=1, alpha=0.05, n_surrogates=40,
    ...                          rng=np.random.default_rng(1))
    >>> found = np.sort(again.peak_bin[again.significant])
    >>> bool(np.isin(peaks, found).mean() > 0.9)
    True
    """
    n_patterns = int(first.thresholds.shape[0])
    width = int(op.width)
    filters = second_pass_filters(raster, first, regions, n_patterns, width, lag_tolerance, alpha)
    has_members = filters.reshape(len(regions), n_patterns, -1).any(axis=-1)  # (n_folds, K)
    rows = [(fold, pattern) for fold in range(len(regions)) for pattern in range(n_patterns)
            if has_members[fold, pattern]]
    logger.info("second pass: %d of %d folds x patterns have members from the other folds", len(rows),
                has_members.size)
    length = first.thresholds.shape[1]
    thresholds = np.array(first.thresholds, dtype=float, copy=True)
    tested_responses = np.array(first.tested_responses, dtype=float, copy=True)
    # the first pass's candidates where the other folds give no member
    first_fold = first.fold if first.fold is not None else \
        np.minimum(np.searchsorted([stop for _, stop in regions], first.peak_bin, side="right"),
                   len(regions) - 1)  # no shifts: by region
    keep_first = np.ones(first.pattern.size, dtype=bool)
    for fold, pattern in rows:
        keep_first &= ~((first.pattern == pattern) & (first_fold == fold))
    pattern_out = [np.asarray(first.pattern[keep_first], dtype=np.int64)]
    peak_out = [np.asarray(first.peak_bin[keep_first], dtype=np.int64)]
    height_out = [np.asarray(first.height[keep_first], dtype=float)]
    pvalue_out = [np.asarray(first.pvalue[keep_first], dtype=float)]
    null_z_out = [np.asarray(first.null_z[keep_first], dtype=float) if first.null_z is not None
                  else np.full(int(keep_first.sum()), np.nan)]
    fold_out = [np.asarray(first_fold[keep_first], dtype=np.int64)]
    null = []
    if rows:
        stacked = np.stack([filters[fold, pattern] for fold, pattern in rows])
        row_regions = [regions[fold] for fold, _ in rows]
        with torch.no_grad():
            responses = op(torch.as_tensor(stacked, device=op.device)).cpu().numpy()
        null = null_peak_heights_in_chunks(raster, stacked, row_regions, width, n_surrogates, rng, op.device,
                                           method=surrogates, dither=dither, client=client, progress=progress,
                                           pad=fold_pad(width))
        row, times, heights = collect_peaks(responses, row_regions, width, fold_pad(width))
        row_pattern = np.array([pattern for _, pattern in rows], dtype=np.int64)
        row_fold = np.array([fold for fold, _ in rows], dtype=np.int64)
        pattern_out.append(row_pattern[row])
        fold_out.append(row_fold[row])
        peak_out.append(np.asarray(times, dtype=np.int64))
        height_out.append(np.asarray(heights, dtype=float))
        pvalue_out.append(row_pvalues(row, heights, null))
        null_z_out.append(standardized_heights(row, heights, null))
        for index, (fold, pattern) in enumerate(rows):
            start, stop = regions[fold]
            tested_responses[pattern, start:stop] = responses[index, start:stop]
    pattern = np.concatenate(pattern_out)
    peak_bin = np.concatenate(peak_out)
    height = np.concatenate(height_out)
    pvalue = np.concatenate(pvalue_out)
    null_z = np.concatenate(null_z_out)
    fold_of = np.concatenate(fold_out)
    # a first-pass candidate of one fold (shifted) and a new one of its neighbour can test one window;
    # the folds x patterns tested again were tested in the all-data frame (no shift)
    shifts = np.zeros((len(regions), n_patterns), dtype=np.int64) if first.fold_shifts is None else \
        np.array(first.fold_shifts, dtype=np.int64, copy=True)
    for fold, pattern_k in rows:
        shifts[fold, pattern_k] = 0
    once = one_peak_per_window(pattern, peak_bin, fold_of, regions, width, shifts)
    pattern, peak_bin, height, pvalue, null_z, fold_of = (values[once] for values in
                                                          (pattern, peak_bin, height, pvalue, null_z, fold_of))
    # each candidate's height at its peak, as in the first pass: a first-pass candidate moved by its
    # fold's shift can sit in a neighbouring region that the lines above overwrote
    inside = (peak_bin >= 0) & (peak_bin < length)
    tested_responses[pattern[inside], peak_bin[inside]] = height[inside]
    significant, cutoff = benjamini_hochberg(pvalue, alpha)
    cutoff = cutoff if significant.any() else alpha / max(1, pvalue.size)
    tested_rows = set(rows)
    for fold in range(len(regions)):  # the first pass's rows, at the new cutoff
        for pattern_k in range(n_patterns):
            if (fold, pattern_k) not in tested_rows and first.null is not None:
                low, high = _shifted_span(*regions[fold], int(first.fold_shifts[fold, pattern_k]), length)
                thresholds[pattern_k, low:high] = _height_threshold(first.null[fold * n_patterns + pattern_k], cutoff)
    for index, (fold, pattern_k) in enumerate(rows):
        start, stop = regions[fold]
        thresholds[pattern_k, start:min(stop, length)] = _height_threshold(null[index], cutoff)
    order = np.lexsort((peak_bin, pattern))
    return CandidatePeaks(pattern=pattern[order], peak_bin=peak_bin[order], height=height[order],
                          pvalue=pvalue[order], significant=significant[order], tested_responses=tested_responses,
                          thresholds=thresholds, fold_shifts=first.fold_shifts, tested_filters=first.tested_filters,
                          null_z=null_z[order], fold=fold_of[order],
                          pvalue_resolution=max(first.pvalue_resolution, pvalue_resolution(null)),
                          null_passes=first.null_passes + (null_share(row_regions, length) * n_surrogates if rows
                                                           else 0.0))
