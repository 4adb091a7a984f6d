"""Who belongs to a pattern, and at which lag: evidence from the data at the detected occurrences.

For a pattern with ``M`` occurrences (window peaks ``t_m``) and a neuron with mean count ``r`` per
bin, count for every lag ``l`` in the window the occurrences in which the neuron fires within
``+-delta`` bins of ``t_m + l``. Without a relation to the pattern that count is binomial with
``q = 1 - exp(-r * (window bins))``. The rate ``r`` is the larger of the neuron's mean rate over
the recording and its rate in the ``W`` bins on either side of the occurrence windows, so a
neuron that only fires more around the occurrences (in the up states, or the running periods, in
which they happen) is not called a member; the neuron's lag is the one with the smallest binomial
tail probability, whose p-value is corrected for the ``W / (2 delta + 1)`` lags searched (Sidak).
Members are the neurons significant at a Benjamini-Hochberg false discovery rate over neurons.
The filter rows are not used: measured, their concentration does not separate members.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.stats import binom

from convseq_neo.core.occurrences import pattern_geometry
from convseq_neo.core.significance import benjamini_hochberg
from convseq_neo.raster import SpikeRaster

__all__ = ["membership_for_pattern", "pattern_membership", "MEMBERSHIP_COLUMNS"]

MEMBERSHIP_COLUMNS = ["pattern", "neuron", "score", "pvalue", "member", "lag"]


def _entries_in_windows(bins: np.ndarray, starts: np.ndarray, stops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Indices into the bin-sorted ``bins`` of the entries in each ``[starts[i], stops[i])``, and each one's count."""
    lo = np.searchsorted(bins, starts, side="left")
    hi = np.searchsorted(bins, stops, side="left")
    index = np.concatenate([np.arange(a, b) for a, b in zip(lo, hi)]) if starts.size else np.zeros(0)
    return index.astype(np.int64), hi - lo


def _spikes_in_windows(raster: SpikeRaster, peaks: np.ndarray, width: int):
    """(neuron, occurrence, position-in-window, count) of every spike inside an occurrence window."""
    bins, neuron, counts = raster.by_bin
    half = width // 2
    index, lengths = _entries_in_windows(bins, peaks - half, peaks - half + width)
    occurrence = np.repeat(np.arange(peaks.size), lengths)
    return neuron[index], occurrence, bins[index] - peaks[occurrence] + half, counts[index]


def _flank_rates(raster: SpikeRaster, peaks: np.ndarray, width: int) -> np.ndarray:
    """Each neuron's mean count per bin in the ``width`` bins before and after every occurrence window."""
    bins, neuron, counts = raster.by_bin
    half = width // 2
    starts = np.concatenate([peaks - half - width, peaks - half + width])
    stops = np.clip(starts + width, 0, raster.n_bins)  # a flank cut by the recording's edge stays outside the window
    starts = np.clip(starts, 0, raster.n_bins)
    index, _ = _entries_in_windows(bins, starts, stops)
    n_flank_bins = int(np.sum(stops - starts))
    if n_flank_bins == 0:
        return np.zeros(raster.n_neurons)
    return np.bincount(neuron[index], weights=counts[index], minlength=raster.n_neurons) / n_flank_bins


def membership_for_pattern(pattern: int, raster: SpikeRaster, peaks: np.ndarray, width: int, lag_tolerance: int,
                           alpha: float) -> pd.DataFrame:
    """Membership table of one pattern from its occurrences' window peaks (in bins).

    Returns one row per neuron with ``score`` (z-score of the hit count at the chosen lag against
    the rate's prediction), ``pvalue`` (Sidak-corrected over lags), ``member`` (BH at ``alpha`` over
    neurons) and ``lag`` (bins relative to the window peak, refined to the mean position of the
    spikes that hit; NaN where the neuron never fired in a window).
    """
    n_neurons, half = raster.n_neurons, width // 2
    peaks = np.asarray(peaks, dtype=np.int64)
    n_occ = peaks.size
    frame = pd.DataFrame({"pattern": np.full(n_neurons, pattern, dtype=int), "neuron": np.arange(n_neurons),
                          "score": np.zeros(n_neurons), "pvalue": np.ones(n_neurons),
                          "member": np.zeros(n_neurons, dtype=bool), "lag": np.full(n_neurons, np.nan)})
    if n_occ == 0:
        return frame
    neuron, occurrence, position, counts = _spikes_in_windows(raster, peaks, width)
    delta = int(lag_tolerance)
    # Coverage of each (neuron, occurrence) pair: lags l with a spike within +-delta.
    pair = neuron * n_occ + occurrence
    unique_pair, pair_index = np.unique(pair, return_inverse=True)
    diff = np.zeros((unique_pair.size, width + 1), dtype=np.int32)
    np.add.at(diff, (pair_index, np.clip(position - delta, 0, width)), 1)
    np.add.at(diff, (pair_index, np.clip(position + delta + 1, 0, width)), -1)
    covered = (np.cumsum(diff[:, :width], axis=1) > 0).astype(np.float64)
    pair_neuron = unique_pair // n_occ
    indicator = sp.csr_matrix((np.ones(unique_pair.size), (pair_neuron, np.arange(unique_pair.size))),
                              shape=(n_neurons, unique_pair.size))
    hits = np.asarray(indicator @ covered)  # (N, W)
    lags = np.arange(width)
    window_bins = np.minimum(lags + delta, width - 1) - np.maximum(lags - delta, 0) + 1
    rates = np.maximum(raster.rates_per_bin(), _flank_rates(raster, peaks, width))
    chance = 1.0 - np.exp(-rates[:, None] * window_bins[None, :])
    chance = np.clip(chance, 1e-12, 1 - 1e-12)
    tail = binom.sf(hits - 1, n_occ, chance)  # P(count >= hits)
    tail = np.where(hits > 0, tail, 1.0)
    best_lag = np.argmin(tail + 1e-15 * np.abs(lags - (width - 1) / 2.0)[None, :], axis=1)
    rows = np.arange(n_neurons)
    p_single = tail[rows, best_lag]
    n_tests = max(1.0, width / (2 * delta + 1))
    pvalues = -np.expm1(n_tests * np.log1p(-np.clip(p_single, 0, 1 - 1e-16)))
    pvalues = np.clip(np.where(p_single >= 1, 1.0, pvalues), 0.0, 1.0)
    expected = n_occ * chance[rows, best_lag]
    score = (hits[rows, best_lag] - expected) / np.sqrt(expected * (1 - chance[rows, best_lag]))
    # Refine each lag to the mean position of the spikes that hit it.
    near = np.abs(position - best_lag[neuron]) <= delta
    weight_sum = np.bincount(neuron[near], weights=counts[near], minlength=n_neurons)
    position_sum = np.bincount(neuron[near], weights=(counts * position)[near], minlength=n_neurons)
    with np.errstate(invalid="ignore", divide="ignore"):
        refined = np.where(weight_sum > 0, position_sum / weight_sum, np.nan)
    member, _ = benjamini_hochberg(pvalues, alpha)
    frame["score"] = score
    frame["pvalue"] = pvalues
    frame["member"] = member
    frame["lag"] = refined - half
    return frame


def pattern_membership(raster: SpikeRaster, pattern: np.ndarray, peak_bin: np.ndarray, n_patterns: int, width: int,
                       lag_tolerance: int, alpha: float) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Membership of every pattern from its occurrences, and where each pattern sits in its window.

    Parameters
    ----------
    pattern, peak_bin : ndarray of int
        Pattern and window peak (bin) of each occurrence (the significant ones).
    n_patterns, width, lag_tolerance : int
    alpha : float
        False discovery rate over neurons.

    Returns
    -------
    membership : pandas.DataFrame
        Columns :data:`MEMBERSHIP_COLUMNS`, one row per (pattern, neuron); ``lag`` in bins relative to
        the pattern centre.
    offsets, spans : ndarray
        From :func:`~convseq_neo.core.occurrences.pattern_geometry`.
    """
    frames = [membership_for_pattern(k, raster, peak_bin[pattern == k], width, lag_tolerance, alpha)
              for k in range(n_patterns)]
    membership = pd.concat(frames, ignore_index=True)[MEMBERSHIP_COLUMNS]
    offsets, spans = pattern_geometry(membership, n_patterns, width)
    membership["lag"] = membership["lag"] - offsets[membership["pattern"].to_numpy()]
    return membership, offsets, spans
