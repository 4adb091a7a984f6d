"""Nulls and p-values: cross-fitting folds, circular-shift surrogates, the reference threshold, BH.

The default test is *cross-fitted*: the recording is cut into contiguous folds; for each fold a
filter is trained on the other folds (with a guard band of ``W`` bins, so no training window
overlaps a test window), and only that fold's response to its own, unseen data is tested. Because
the tested filter never saw the tested data, the null distribution of its peak heights can be
sampled exactly by applying the same fixed filter to surrogates of the test data in which each
neuron is circularly shifted by its own random offset (which keeps every neuron's spike train,
rate and burst structure and destroys the alignment between neurons that a sequence needs).
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from scipy.signal import find_peaks

from convseq_neo.core.response import StreamingResponse
from convseq_neo.raster import SpikeRaster

logger = logging.getLogger(__name__)

__all__ = ["fold_regions", "training_masks", "peaks_in_region", "null_peak_heights", "empirical_pvalues",
           "benjamini_hochberg", "random_filter_threshold"]

#: Spikes processed together when applying filters to surrogate copies.
SURROGATE_SPIKE_BUDGET = 4_000_000


def fold_regions(length: int, n_folds: int) -> list[tuple[int, int]]:
    """Contiguous ``[start, stop)`` test regions of a response of ``length`` bins."""
    edges = np.linspace(0, length, n_folds + 1).round().astype(int)
    return [(int(edges[i]), int(edges[i + 1])) for i in range(n_folds)]


def training_masks(length: int, regions: list[tuple[int, int]], width: int) -> np.ndarray:
    """Boolean ``(n_folds, length)``: the times each fold's filter trains on.

    A fold's filter never trains within ``width`` bins of its test region, so the spikes its
    training windows see and the spikes its test windows see are disjoint.
    """
    masks = np.ones((len(regions), length), dtype=bool)
    for fold, (start, stop) in enumerate(regions):
        masks[fold, max(0, start - width):min(length, stop + width)] = False
    return masks


def peaks_in_region(response: np.ndarray, start: int, stop: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Local maxima of ``response[start:stop]`` at least ``width`` bins apart: (times, heights)."""
    segment = np.asarray(response[start:stop], dtype=float)
    if segment.size < 3:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    peaks, _ = find_peaks(segment, distance=width)
    return peaks.astype(np.int64) + start, segment[peaks]


def _shifted_offsets(raster: SpikeRaster, n_copies: int, rng: np.random.Generator) -> np.ndarray:
    """Circularly shifted bins of every spike, one row per surrogate (each neuron its own offset)."""
    offsets = rng.integers(0, raster.n_bins, size=(n_copies, raster.n_neurons))
    return (raster.bin_index[None, :] + offsets[:, raster.neuron_index]) % raster.n_bins


def _region_copies(raster: SpikeRaster, shifted_bins: np.ndarray, start: int, stop: int, width: int):
    """Lay the part of each surrogate that region ``[start, stop)`` reads side by side, with empty gaps.

    Returns the compact raster and, for each copy, where the region's response starts in it.
    """
    low, high = start - width, stop + width  # superset of the bins the region's windows read
    stride = (high - low) + width + 1
    n_copies = shifted_bins.shape[0]
    inside = (shifted_bins >= low) & (shifted_bins < high)
    copy_index = np.nonzero(inside)[0]
    bins = shifted_bins[inside] - low + copy_index * stride
    neuron = np.broadcast_to(raster.neuron_index, shifted_bins.shape)[inside]
    counts = np.broadcast_to(raster.counts, shifted_bins.shape)[inside]
    compact = SpikeRaster(neuron, bins, counts, raster.n_neurons, max(1, n_copies * stride))
    return compact, start - low + np.arange(n_copies) * stride


def null_peak_heights(raster: SpikeRaster, filters: np.ndarray, regions: list[tuple[int, int]], width: int,
                      n_surrogates: int, rng: np.random.Generator, device: torch.device,
                      progress_bar=None) -> list[np.ndarray]:
    """Peak heights of fixed ``filters`` on circular-shift surrogates, within each filter's region.

    Each filter is applied only to the part of each surrogate its region reads, so testing
    ``n_folds`` folds costs about as much as one pass over the surrogates.

    Parameters
    ----------
    filters : ndarray, shape (F, N, W)
        Fixed filters (rows on the simplex).
    regions : list of (start, stop)
        For each filter, the response times whose peaks are tested.

    Returns
    -------
    list of ndarray
        One array of null peak heights per filter, pooled over surrogates.
    """
    per_group = max(1, SURROGATE_SPIKE_BUDGET // max(1, raster.nnz))
    heights: list[list[np.ndarray]] = [[] for _ in range(filters.shape[0])]
    by_region: dict[tuple[int, int], list[int]] = {}
    for index, region in enumerate(regions):
        by_region.setdefault(tuple(region), []).append(index)
    done = 0
    while done < n_surrogates:
        n_copies = min(per_group, n_surrogates - done)
        shifted = _shifted_offsets(raster, n_copies, rng)
        for (start, stop), members in by_region.items():
            compact, origins = _region_copies(raster, shifted, start, stop, width)
            op = StreamingResponse(compact, width, device, torch.float32)
            with torch.no_grad():
                responses = op(torch.as_tensor(filters[members], dtype=torch.float32, device=device)).cpu().numpy()
            for origin in origins:
                for row, index in enumerate(members):
                    heights[index].append(peaks_in_region(responses[row], origin, origin + stop - start, width)[1])
        done += n_copies
        if progress_bar is not None:
            progress_bar.update(n_copies)
    return [np.concatenate(parts) if parts else np.zeros(0) for parts in heights]


def empirical_pvalues(heights: np.ndarray, null: np.ndarray) -> np.ndarray:
    """``(1 + #{null >= h}) / (1 + n_null)`` for each observed height ``h`` (valid, never zero)."""
    null_sorted = np.sort(np.asarray(null, dtype=float))
    n_at_least = null_sorted.size - np.searchsorted(null_sorted, np.asarray(heights, dtype=float), side="left")
    return (1.0 + n_at_least) / (1.0 + null_sorted.size)


def benjamini_hochberg(pvalues: np.ndarray, alpha: float) -> tuple[np.ndarray, float]:
    """Benjamini-Hochberg step-up: (significant mask, p-value cutoff; 0 when nothing is significant)."""
    pvalues = np.asarray(pvalues, dtype=float)
    m = pvalues.size
    if m == 0:
        return np.zeros(0, dtype=bool), 0.0
    order = np.argsort(pvalues, kind="stable")
    below = pvalues[order] <= alpha * np.arange(1, m + 1) / m
    if not below.any():
        return np.zeros(m, dtype=bool), 0.0
    cutoff = float(pvalues[order][np.nonzero(below)[0].max()])
    return pvalues <= cutoff, cutoff


def random_filter_threshold(op, n_filters: int, generator: torch.Generator, n_sd: float = 5.0) -> float:
    """The reference threshold: mean over random filters of ``mean_t(x)`` plus ``n_sd`` times that of ``std_t(x)``.

    The reference draws 15,000 random softmax filters (standard-normal logits); the two averages
    converge long before that, so ``n_filters`` of them (batched through the same operator) suffice.
    It ignores the shape of a *trained* filter, so on its own it is not a valid null for one.
    """
    logits = torch.randn((n_filters, op.n_neurons, op.width), generator=generator, device=op.device,
                         dtype=op.dtype)
    with torch.no_grad():
        responses = op(torch.softmax(logits, dim=-1))
    return float(responses.mean(dim=1).mean() + n_sd * responses.std(dim=1).mean())
