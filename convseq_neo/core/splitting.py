"""Splitting a filter that learned several disjoint sequences at once.

Each row of a filter is its own softmax, so one filter can hold two sequences on disjoint
neurons at full strength and respond to both: the variance objective even prefers that. When
more than one pattern is asked for, the occurrences of a freshly trained filter are therefore
checked for two groups that recruit different neurons. The occurrences are split in two (sign
of the first principal component of the member-participation matrix, refined by 2-means), and
each member neuron is tested for a difference in participation between the groups (Fisher's
exact test). A split is accepted only when at least ``min_specific`` neurons are specific to
*each* group at ``p < specific_p``: a single sequence with random drop-outs gives no such
two-sided structure. The filter then keeps the stronger group, and the other group's times are
explained away so the next filter can learn it.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import fisher_exact

from convseq_neo.core.membership import membership_for_pattern
from convseq_neo.raster import SpikeRaster

__all__ = ["split_occurrences"]


def _participation(raster: SpikeRaster, peaks: np.ndarray, neurons: np.ndarray, lags: np.ndarray,
                   tolerance: int) -> np.ndarray:
    """Bool ``(n_peaks, n_neurons)``: did each neuron fire within ``tolerance`` bins of ``peak + lag``?"""
    neuron_sorted, bins_sorted = raster.neuron_index, raster.bin_index  # stored sorted by (neuron, bin)
    starts = np.searchsorted(neuron_sorted, neurons, side="left")
    stops = np.searchsorted(neuron_sorted, neurons, side="right")
    out = np.zeros((peaks.size, neurons.size), dtype=bool)
    for column, (start, stop, lag) in enumerate(zip(starts, stops, lags)):
        spikes = bins_sorted[start:stop]
        if spikes.size == 0:
            continue
        target = peaks + lag
        index = np.searchsorted(spikes, target - tolerance, side="left")
        inside = index < spikes.size
        out[inside, column] = spikes[index[inside]] <= target[inside] + tolerance
    return out


def _two_means(matrix: np.ndarray, n_iter: int = 20) -> np.ndarray:
    """Bool labels of a 2-means split of the rows, started from the first principal component's sign."""
    centred = matrix - matrix.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    labels = centred @ vt[0] > 0
    for _ in range(n_iter):
        if labels.all() or not labels.any():
            break
        c1, c0 = matrix[labels].mean(axis=0), matrix[~labels].mean(axis=0)
        new = ((matrix - c1) ** 2).sum(axis=1) < ((matrix - c0) ** 2).sum(axis=1)
        if np.array_equal(new, labels):
            break
        labels = new
    return labels


def split_occurrences(raster: SpikeRaster, peaks: np.ndarray, heights: np.ndarray, width: int, lag_tolerance: int,
                      alpha: float, *, min_specific: int = 3, specific_p: float = 1e-3,
                      min_group: int = 4) -> np.ndarray | None:
    """Peaks of the weaker of two neuron-specific groups, or ``None`` when the occurrences do not split.

    Parameters
    ----------
    peaks, heights : ndarray
        Window peaks (bins) of the filter's candidate occurrences and their response heights.

    Returns
    -------
    ndarray or None
        The peaks to explain away (the group with the smaller summed height).
    """
    if peaks.size < 2 * min_group:
        return None
    membership = membership_for_pattern(0, raster, peaks, width, lag_tolerance, alpha)
    members = membership[membership["member"]]
    if len(members) < 2 * min_specific:
        return None
    participation = _participation(raster, peaks, members["neuron"].to_numpy(),
                                   np.round(members["lag"].to_numpy()).astype(np.int64), lag_tolerance)
    labels = _two_means(participation.astype(float))
    n_a, n_b = int(labels.sum()), int((~labels).sum())
    if min(n_a, n_b) < min_group:
        return None
    in_a = participation[labels].sum(axis=0)
    in_b = participation[~labels].sum(axis=0)
    specific_a = specific_b = 0
    for hits_a, hits_b in zip(in_a, in_b):
        _, pvalue = fisher_exact([[hits_a, n_a - hits_a], [hits_b, n_b - hits_b]])
        if pvalue < specific_p:
            if hits_a / n_a > hits_b / n_b:
                specific_a += 1
            else:
                specific_b += 1
    if specific_a < min_specific or specific_b < min_specific:
        return None
    weaker = ~labels if heights[labels].sum() >= heights[~labels].sum() else labels
    return peaks[weaker]
