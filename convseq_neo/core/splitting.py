"""Splitting a filter that learned several disjoint sequences at once.

Each row of a filter is its own softmax, so one filter can hold two sequences on disjoint
neurons at full strength and respond to both: the variance objective even prefers that. When
more than one pattern is asked for, the occurrences of a freshly trained filter are therefore
checked for two groups that recruit different neurons. The occurrences are split in two (sign
of the first principal component of the member-participation matrix, refined by 2-means), and
each member neuron is tested for a difference in participation between the groups (Fisher's
exact test). A split is accepted only when at least ``min_specific`` neurons are specific to
*each* group at ``p < specific_p``: a single sequence with random drop-outs gives no such
two-sided structure. Three groups are tried first, each pair of them held to the same rule (a
filter that learned three sequences splits into three). The filter then keeps the strongest group:
the rows of the neurons specific to the others are reset to flat, and the filter trains again
with the others' times explained away, so that it stops responding to them and a later filter can
learn them; what it keeps is checked again.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import hypergeom

from convseq_neo.core.membership import membership_for_pattern
from convseq_neo.raster import SpikeRaster

__all__ = ["OccurrenceSplit", "split_occurrences"]


@dataclass(frozen=True)
class OccurrenceSplit:
    """The weaker neuron-specific groups of a filter's occurrences (all but the strongest)."""

    peaks: np.ndarray  # window peaks (bins) of the weaker groups' occurrences
    neurons: np.ndarray  # the members that take part more often in a weaker group than in the strongest


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


def _first_component_sign(matrix: np.ndarray) -> np.ndarray:
    """Bool: which side of the mean each row lies on along the first principal component."""
    centred = matrix - matrix.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return centred @ vt[0] > 0


def _k_means(matrix: np.ndarray, labels: np.ndarray, n_iter: int = 20) -> np.ndarray:
    """Lloyd's iterations from ``labels`` (int, 0..k-1); a cluster that empties stays empty."""
    for _ in range(n_iter):
        present = np.unique(labels)
        centres = np.stack([matrix[labels == k].mean(axis=0) for k in present])
        new = present[((matrix[:, None, :] - centres[None]) ** 2).sum(axis=2).argmin(axis=1)]
        if np.array_equal(new, labels):
            break
        labels = new
    return labels


def _two_means(matrix: np.ndarray, n_iter: int = 20) -> np.ndarray:
    """Int labels (0, 1) of a 2-means split of the rows, started from the first principal component's sign."""
    return _k_means(matrix, _first_component_sign(matrix).astype(np.int64), n_iter)


def _three_means(matrix: np.ndarray, n_iter: int = 20) -> np.ndarray:
    """Int labels (0, 1, 2): the 2-means split with its larger group cut along its own first component, refined."""
    labels = _two_means(matrix, n_iter)
    larger = int(np.bincount(labels, minlength=2).argmax())
    rows = np.flatnonzero(labels == larger)
    if rows.size < 2:
        return labels
    labels = labels.copy()
    labels[rows[_first_component_sign(matrix[rows])]] = 2
    return _k_means(matrix, labels, n_iter)


def _fisher_two_sided(hits_a: np.ndarray, n_a: int, hits_b: np.ndarray, n_b: int) -> np.ndarray:
    """Two-sided p-values of Fisher's exact test of every column's table ``[[a, n_a - a], [b, n_b - b]]``.

    The p-value :func:`scipy.stats.fisher_exact` gives (the probability of the tables with the
    column's total that are no more likely than the observed one), for all columns at once.
    """
    totals = (hits_a + hits_b)[:, None]
    pmf = hypergeom.pmf(np.arange(n_a + 1)[None, :], n_a + n_b, n_a, totals)  # 0 outside each table's support
    observed = hypergeom.pmf(hits_a, n_a + n_b, n_a, totals[:, 0])
    return np.minimum(np.where(pmf <= observed[:, None] * (1 + 1e-14), pmf, 0.0).sum(axis=1), 1.0)


def _specific_neurons(participation: np.ndarray, rows_a: np.ndarray, rows_b: np.ndarray,
                      specific_p: float) -> tuple[np.ndarray, np.ndarray]:
    """Columns that take part more often in the ``rows_a`` than in the ``rows_b`` occurrences, and the reverse.

    Fisher's exact test per column at ``p < specific_p``.
    """
    n_a, n_b = int(rows_a.sum()), int(rows_b.sum())
    hits_a = participation[rows_a].sum(axis=0).astype(np.int64)
    hits_b = participation[rows_b].sum(axis=0).astype(np.int64)
    leaning = hits_a * n_b - hits_b * n_a
    specific = (leaning != 0) & (_fisher_two_sided(hits_a, n_a, hits_b, n_b) < specific_p)
    return np.flatnonzero(specific & (leaning > 0)), np.flatnonzero(specific & (leaning < 0))


def _weaker_groups(participation: np.ndarray, labels: np.ndarray, heights: np.ndarray, *, min_specific: int,
                   specific_p: float, min_group: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Rows and columns of every group but the strongest, or ``None`` unless all groups are distinct.

    The groups of at least ``min_group`` rows count (smaller ones stay with the strongest); there
    must be two or more, and every two of them must each have ``min_specific`` columns specific to
    it against the other. The strongest has the largest summed height; the columns returned are
    those specific to a weaker group against the strongest.
    """
    groups = [group for group in np.unique(labels) if (labels == group).sum() >= min_group]
    if len(groups) < 2:
        return None
    specific = {}
    for i, a in enumerate(groups):
        for b in groups[i + 1:]:
            to_a, to_b = _specific_neurons(participation, labels == a, labels == b, specific_p)
            if to_a.size < min_specific or to_b.size < min_specific:
                return None
            specific[a, b], specific[b, a] = to_a, to_b
    kept = max(groups, key=lambda group: heights[labels == group].sum())
    weaker = [group for group in groups if group != kept]
    columns = np.unique(np.concatenate([specific[group, kept] for group in weaker]))
    return np.isin(labels, weaker), columns


def split_occurrences(raster: SpikeRaster, peaks: np.ndarray, heights: np.ndarray, width: int, lag_tolerance: int,
                      alpha: float, *, min_specific: int = 3, specific_p: float = 1e-3,
                      min_group: int = 4) -> OccurrenceSplit | None:
    """The weaker neuron-specific groups of a filter's occurrences, or ``None`` when they do not split.

    The occurrences are split in three (the larger group of a 2-means split cut along its own
    first principal component, refined by 3-means) and, when that fails, in two (2-means). A split
    holds when every two of its groups of at least ``min_group`` occurrences are distinct: each has
    at least ``min_specific`` members that take part in it more often than in the other (Fisher's
    exact test at ``p < specific_p``). Two halves of one sequence's occurrences are not distinct,
    so one sequence never splits in three; three sequences split in two would leave two mixed in
    one group, whose members take part in only some of its occurrences. The strongest group
    (largest summed height) is kept.

    Parameters
    ----------
    peaks, heights : ndarray
        Window peaks (bins) of the filter's candidate occurrences and their response heights.

    Returns
    -------
    OccurrenceSplit or None
        The peaks of every distinct group but the strongest, to explain away, and the members
        specific to those groups (not to the strongest).
    """
    if peaks.size < 2 * min_group:
        return None
    membership = membership_for_pattern(0, raster, peaks, width, lag_tolerance, alpha)
    members = membership[membership["member"]]
    if len(members) < 2 * min_specific:
        return None
    neurons = members["neuron"].to_numpy()
    participation = _participation(raster, peaks, neurons, np.round(members["lag"].to_numpy()).astype(np.int64),
                                   lag_tolerance).astype(float)
    settings = {"min_specific": min_specific, "specific_p": specific_p, "min_group": min_group}
    weaker = None
    if peaks.size >= 3 * min_group:
        weaker = _weaker_groups(participation, _three_means(participation), heights, **settings)
    if weaker is None:
        weaker = _weaker_groups(participation, _two_means(participation), heights, **settings)
    if weaker is None:
        return None
    rows, columns = weaker
    return OccurrenceSplit(peaks[rows], np.sort(neurons[columns]))
