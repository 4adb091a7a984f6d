"""Peaks, nulls and p-values: dithered (or circularly shifted) surrogates, the reference threshold, Benjamini-Hochberg.

A candidate occurrence is a peak of a filter's response (a local maximum at least ``W`` bins from
any higher one). A fixed filter that did not see the data it is applied to is tested against its
own peak heights on surrogates of those data (:func:`surrogate_bins`). By default each spike is
dithered by up to ``W`` bins within the stretch where its neuron was observed: that keeps every
neuron's spike count and slow rate changes (shared by all neurons or not) and destroys the
alignment between neurons that a sequence needs. How the training data are tested that way is in
:mod:`convseq_neo.core.crossfit`; the reference's threshold (random filters), kept for comparison,
is here.
"""

from __future__ import annotations

import logging
from bisect import bisect_left, bisect_right
from dataclasses import dataclass

import numpy as np
import torch
from scipy.signal import find_peaks

from convseq_neo.core.response import StreamingResponse, response_length
from convseq_neo.raster import SpikeRaster

logger = logging.getLogger(__name__)

__all__ = ["CandidatePeaks", "SURROGATES", "surrogate_bins", "peaks_in_region", "masked_peaks", "collect_peaks",
           "null_peak_heights", "null_peak_heights_in_chunks", "SURROGATE_CHUNKS",
           "empirical_pvalues", "row_pvalues", "standardized_heights", "pvalue_resolution", "null_share",
           "one_peak_per_window", "fold_pad",
           "benjamini_hochberg",
           "random_filter_threshold",
           "random_filter_test"]

#: Spikes processed together when applying filters to surrogate copies.
SURROGATE_SPIKE_BUDGET = 4_000_000


@dataclass(frozen=True)
class CandidatePeaks:
    """Every candidate peak of a recording's responses, tested.

    Attributes
    ----------
    pattern : ndarray of int, shape (n_peaks,)
        Pattern of each candidate.
    peak_bin : ndarray of int, shape (n_peaks,)
        Its peak bin, in the all-data filter's frame.
    height : ndarray, shape (n_peaks,)
        Its tested response height.
    pvalue : ndarray, shape (n_peaks,)
        Its p-value before correction (NaN where the test gives none).
    significant : ndarray of bool, shape (n_peaks,)
        Whether it passed the test.
    tested_responses : ndarray, shape (K, L)
        The responses that were tested, with each candidate's height at its ``peak_bin``.
    thresholds : ndarray, shape (K, L)
        Height a peak needed at each time to be significant (``inf`` where nothing could be).
    fold_shifts : ndarray of int, shape (n_folds, K), or None
        Bins added to each fold filter's peak times to bring them into the all-data filter's frame
        (cross-fitting only).
    tested_filters : ndarray, shape (K, N, W), or None
        The all-data model's filters in the form they are tested in (cross-fitting only: each
        pattern's members' evidence, :func:`~convseq_neo.core.crossfit.restrict_to_members`); the
        fallback of :func:`~convseq_neo.core.crossfit.membership_filters`.
    fold : ndarray of int, shape (n_peaks,), or None
        The fold whose test region each candidate came from (cross-fitting only).
    null : list of ndarray, or None
        The surrogate peak heights of each tested row, fold-major (``fold * K + pattern``;
        cross-fitting only), from which the thresholds were set.
    null_z : ndarray, shape (n_peaks,), or None
        Its height in standard deviations of its own null above that null's mean
        (:func:`standardized_heights`; NaN where the test gives none). Unlike the height, it
        compares peaks of different filters.
    pvalue_resolution : float
        p-values at or below it are ties (:func:`pvalue_resolution`; 0 where the test gives no
        p-value): a peak beyond every peak of its null gets one, whatever its height.
    null_passes : float
        Applications of one filter to the whole recording that the surrogate null took, a
        surrogate of one fold's region counted as that region's share of the recording (0 where
        the test draws no surrogate).
    """

    pattern: np.ndarray
    peak_bin: np.ndarray
    height: np.ndarray
    pvalue: np.ndarray
    significant: np.ndarray
    tested_responses: np.ndarray
    thresholds: np.ndarray
    fold_shifts: np.ndarray | None = None
    tested_filters: np.ndarray | None = None
    fold: np.ndarray | None = None
    null: list | None = None
    null_z: np.ndarray | None = None
    pvalue_resolution: float = 0.0
    null_passes: float = 0.0


def peaks_in_region(response: np.ndarray, start: int, stop: int, width: int,
                    pad: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Local maxima of ``response`` in ``[start, stop)`` at least ``width`` bins apart: (times, heights).

    With ``pad > 0`` the peaks are found over ``[start - pad, stop + pad)`` (clipped to the
    response) and those in ``[start, stop)`` returned, so a region's peaks are those the whole
    response would have there as far as ``pad`` reaches: a local maximum just inside the region
    less than ``width`` bins from a higher peak at most ``pad`` bins beyond its edge (the rising
    flank of a response that peaks past a fold border) is not one, and a peak on the region's
    first or last bin is.
    """
    low, high = max(0, start - pad), min(len(response), stop + pad)
    segment = np.asarray(response[low:high], dtype=float)
    if segment.size < 3:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    peaks, _ = find_peaks(segment, distance=width)
    peaks = peaks[(peaks >= start - low) & (peaks < stop - low)]
    return peaks.astype(np.int64) + low, segment[peaks]



def fold_pad(width: int) -> int:
    """Bins beyond a fold's test region that its peaks must also beat (:func:`peaks_in_region`): ``width // 2``.

    A response that peaks just past a fold border also rises over the last bins before it; with
    this padding the fold on the near side finds no peak of its own on that flank, and its null is
    padded alike. Half a window is as far as the null's copies of a region reach (they hold the
    spikes one window beyond it). The padded response is only compared, never tested: its far end
    reads spikes that the fold's model trained on.
    """
    return int(width) // 2


def masked_peaks(response: np.ndarray, mask: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Peaks (at least ``width`` apart) of ``response`` at the times ``mask`` allows: (times, heights)."""
    peaks, heights = peaks_in_region(np.where(mask, response, -np.inf), 0, response.size, width)
    finite = np.isfinite(heights)
    return peaks[finite], heights[finite]


def collect_peaks(responses: np.ndarray, regions: list[tuple[int, int]], width: int,
                  pad: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Peaks of every row of ``responses`` within its own region, concatenated row after row.

    Parameters
    ----------
    responses : ndarray, shape (R, L)
    regions : list of (start, stop)
        One region per row.
    width : int
        Minimum distance between peaks of a row.
    pad : int
        Bins beyond each region's edges that its peaks must also beat (:func:`peaks_in_region`).

    Returns
    -------
    rows, times, heights : ndarray
        Row, time (bin) and height of every peak; ``rows`` is non-decreasing.
    """
    rows, times, heights = [], [], []
    for row, (start, stop) in enumerate(regions):
        peak_times, peak_heights = peaks_in_region(responses[row], start, stop, width, pad)
        rows.append(np.full(peak_times.size, row))
        times.append(peak_times)
        heights.append(peak_heights)
    return np.concatenate(rows), np.concatenate(times), np.concatenate(heights)


#: The surrogate kinds :func:`null_peak_heights` can draw.
SURROGATES = ("dither", "circular")


def _interval_of_entries(raster: SpikeRaster) -> tuple[np.ndarray, np.ndarray]:
    """Start bin and length of the observed interval holding each entry of the raster."""
    table = raster.observed_table
    starts = table[:, 0] * raster.n_bins + table[:, 1]
    which = np.searchsorted(starts, raster.neuron_index * raster.n_bins + raster.bin_index, side="right") - 1
    return table[which, 1], table[which, 2] - table[which, 1]


def surrogate_bins(raster: SpikeRaster, n_copies: int, rng: np.random.Generator, method: str = "dither",
                   dither: int = 1) -> np.ndarray:
    """The bin of every raster entry in ``n_copies`` surrogates, one row per surrogate.

    ``"dither"`` moves each entry (a neuron's spikes in one bin) by its own uniform random offset
    in ``[-dither, dither]`` bins; ``"circular"`` shifts each neuron's spikes together by one
    random offset. Either way a spike never leaves the observed interval it lies in (dithers are
    reflected at its edges, circular shifts wrap around within it), so silence and gaps stay where
    they are. Dithering keeps each neuron's rate profile at time scales much longer than
    ``dither`` and breaks alignments between neurons finer than it; the circular shift keeps each
    neuron's whole spike train and assumes a stationary population rate.

    Examples
    --------
    >>> raster = SpikeRaster([0, 0, 1], [2, 50, 99], [1, 1, 1], 2, 100)
    >>> bins = surrogate_bins(raster, 3, np.random.default_rng(0), "dither", dither=5)
    >>> bins.shape, bool(np.all(np.abs(bins - raster.bin_index) <= 5)), bool(np.all(bins < 100))
    ((3, 3), True, True)
    """
    start, length = _interval_of_entries(raster)
    return _shifted_entries(raster, start, length, n_copies, rng, method, dither)


def _shifted_entries(raster: SpikeRaster, start: np.ndarray, length: np.ndarray, n_copies: int,
                     rng: np.random.Generator, method: str, dither: int) -> np.ndarray:
    """:func:`surrogate_bins` given each entry's observed interval (``start``, ``length``), drawn the same way."""
    if method == "dither":
        offsets = rng.integers(-int(dither), int(dither) + 1, size=(n_copies, raster.nnz))
        position = np.mod(raster.bin_index - start + offsets, 2 * length)
        position = np.where(position >= length, 2 * length - 1 - position, position)  # reflect at the edges
        return start + position
    if method == "circular":
        offsets = rng.integers(0, raster.n_bins, size=(n_copies, raster.n_neurons))
        return start + np.mod(raster.bin_index - start + offsets[:, raster.neuron_index], length)
    raise ValueError(f"method must be one of {SURROGATES}, got {method!r}")



def _compact_entries(neuron: np.ndarray, counts: np.ndarray, shifted_bins: np.ndarray, start: int, stop: int,
                     width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, np.ndarray]:
    """The entries that region ``[start, stop)`` reads in each copy, laid side by side with empty gaps.

    ``neuron`` and ``counts`` describe the entries (columns of ``shifted_bins``, one row per copy).
    Returns their neurons, compact bins and counts, the compact length in bins, and for each copy
    where the region's response starts in it.
    """
    low, high = start - width, stop + width  # superset of the bins the region's windows read
    stride = (high - low) + width + 1
    n_copies = shifted_bins.shape[0]
    inside = (shifted_bins >= low) & (shifted_bins < high)
    copy_index, entry = np.nonzero(inside)
    bins = shifted_bins[copy_index, entry] - low + copy_index * stride
    return neuron[entry], bins, counts[entry], max(1, n_copies * stride), start - low + np.arange(n_copies) * stride


def _region_copies(raster: SpikeRaster, shifted_bins: np.ndarray, start: int, stop: int, width: int):
    """Lay the part of each surrogate that region ``[start, stop)`` reads side by side, with empty gaps.

    Returns the compact raster and, for each copy, where the region's response starts in it.
    """
    neuron, bins, counts, n_bins, origins = _compact_entries(raster.neuron_index, raster.counts, shifted_bins,
                                                             start, stop, width)
    return SpikeRaster(neuron, bins, counts, raster.n_neurons, n_bins), origins


def _uniform_rows(filters: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each filter's uniform level and which of its rows hold exactly that constant.

    A row is uniform when all its weights equal the filter's most common constant row value
    (0 for the non-members after :func:`~convseq_neo.core.crossfit.restrict_to_members`, ``1 / W`` for a
    uniform row).

    Returns
    -------
    level : ndarray, shape (F,)
        The level (NaN for a filter with no constant row).
    uniform : ndarray of bool, shape (F, N)
    """
    constant = np.all(filters == filters[:, :, :1], axis=2)
    level = np.full(filters.shape[0], np.nan)
    uniform = np.zeros(constant.shape, dtype=bool)
    for index in np.flatnonzero(constant.any(axis=1)):
        values, counts = np.unique(filters[index, constant[index], 0], return_counts=True)
        level[index] = values[np.argmax(counts)]
        uniform[index] = constant[index] & (filters[index, :, 0] == level[index])
    return level, uniform


@dataclass(frozen=True)
class _UniformGroup:
    """Filters of one region sharing the same non-uniform rows, applied through the uniform-row shortcut."""

    indices: np.ndarray  # the filters (positions in ``filters``)
    levels: np.ndarray  # their uniform levels
    n_rows: int  # number of non-uniform rows
    entries: np.ndarray  # the raster entries of the non-uniform rows' neurons
    local_neuron: np.ndarray  # those entries' neurons, renumbered 0 .. n_rows - 1
    excess: torch.Tensor | None  # (k, n_rows, W): the non-uniform rows minus each filter's level


def _uniform_groups(raster: SpikeRaster, filters: np.ndarray, indices: list[int], level: np.ndarray,
                    uniform: np.ndarray, device: torch.device) -> list[_UniformGroup]:
    """Group the filters ``indices`` (all with a uniform row) by their set of non-uniform rows."""
    by_rows: dict[bytes, list[int]] = {}
    for index in indices:
        by_rows.setdefault(np.packbits(~uniform[index]).tobytes(), []).append(index)
    groups = []
    for members in by_rows.values():
        rows = np.flatnonzero(~uniform[members[0]])
        entries = np.flatnonzero(~uniform[members[0]][raster.neuron_index])
        renumber = np.cumsum(~uniform[members[0]]) - 1
        excess = None
        if rows.size:
            values = filters[members][:, rows] - level[members][:, None, None]
            excess = torch.as_tensor(values, dtype=torch.float32, device=device)
        groups.append(_UniformGroup(np.asarray(members), level[members], int(rows.size), entries,
                                    renumber[raster.neuron_index[entries]], excess))
    return groups


def _cumulative_counts(shifted_bins: np.ndarray, counts: np.ndarray, n_bins: int) -> np.ndarray:
    """Spikes (all neurons) before each bin of each copy: ``(n_copies, n_bins + 1)``, starting at 0."""
    weights = np.asarray(counts, dtype=np.float64)
    cumulative = np.zeros((shifted_bins.shape[0], n_bins + 1))
    for copy, bins in enumerate(shifted_bins):
        np.cumsum(np.bincount(bins, weights=weights, minlength=n_bins), out=cumulative[copy, 1:])
    return cumulative


def _window_counts(cumulative: np.ndarray, start: int, stop: int, width: int) -> np.ndarray:
    """Spikes in the window of each response time of ``[start, stop)``, per copy: ``(n_copies, stop - start)``.

    The window of response time ``t`` is ``[t - W // 2, t - W // 2 + W)``, clipped to the raster,
    as in :class:`~convseq_neo.core.response.StreamingResponse`.
    """
    n_bins = cumulative.shape[1] - 1
    first = np.arange(start, stop) - width // 2
    return cumulative[:, np.clip(first + width, 0, n_bins)] - cumulative[:, np.clip(first, 0, n_bins)]


def _uniform_shortcut_heights(raster: SpikeRaster, shifted_bins: np.ndarray,
                              plans: dict[tuple[int, int], list[_UniformGroup]], width: int,
                              device: torch.device, heights: list[list[np.ndarray]], pad: int = 0) -> None:
    """Null peak heights of the filters in ``plans`` on the copies ``shifted_bins``, appended to ``heights``.

    A filter's response is its level times the window's spike count (all neurons), plus the
    streamed response of its non-uniform rows minus the level, over those rows' spikes only.
    """
    cumulative = _cumulative_counts(shifted_bins, raster.counts, raster.n_bins)
    length = response_length(raster.n_bins, width)
    for (start, stop), groups in plans.items():
        before, after = min(pad, start), max(0, min(pad, length - stop))
        window = _window_counts(cumulative, start - before, stop + after, width)
        for group in groups:
            excess = None
            if group.excess is not None and group.entries.size:
                neuron, bins, counts, n_bins, origins = _compact_entries(
                    group.local_neuron, raster.counts[group.entries], shifted_bins[:, group.entries], start, stop,
                    width)
                op = StreamingResponse(SpikeRaster(neuron, bins, counts, group.n_rows, n_bins), width, device,
                                       torch.float32)
                with torch.no_grad():
                    excess = op(group.excess).cpu().numpy()
            for copy in range(shifted_bins.shape[0]):
                for row, (index, level) in enumerate(zip(group.indices, group.levels)):
                    response = level * window[copy]
                    if excess is not None:
                        response += excess[row, origins[copy] - before:origins[copy] + stop - start + after]
                    heights[index].append(peaks_in_region(response, before, before + stop - start, width, pad)[1])


def null_peak_heights(raster: SpikeRaster, filters: np.ndarray, regions: list[tuple[int, int]], width: int,
                      n_surrogates: int, rng: np.random.Generator, device: torch.device,
                      progress_bar=None, method: str = "dither", dither: int | None = None,
                      pad: int = 0) -> list[np.ndarray]:
    """Peak heights of fixed ``filters`` on surrogates of the raster, within each filter's region.

    Each filter is applied only to the part of each surrogate its region reads, so testing
    ``n_folds`` folds costs about as much as one pass over the surrogates. Rows that are exactly
    constant (zero, as :func:`~convseq_neo.core.crossfit.restrict_to_members` leaves non-members,
    or uniform) are not streamed: together they add their level times the window's spike count, a
    moving sum (nothing at level 0), so such a filter costs about ``W`` times the spikes of its
    other rows' neurons instead of ``W`` times all spikes; the heights are the same up to float32
    rounding.

    Parameters
    ----------
    filters : ndarray, shape (F, N, W)
        Fixed filters: learned ones (rows on the simplex) or tested ones (non-negative
        weights of the members' evidence).
    regions : list of (start, stop)
        For each filter, the response times whose peaks are tested.
    method : {"dither", "circular"}
        The surrogates (:func:`surrogate_bins`).
    dither : int, optional
        Largest dither in bins (default ``width``).
    pad : int
        Bins beyond each region's edges that its peaks must also beat, as the tested peaks do
        (:func:`peaks_in_region`); at most ``width // 2``.

    Returns
    -------
    list of ndarray
        One array of null peak heights per filter, pooled over surrogates.
    """
    if not 0 <= int(pad) <= width // 2:
        raise ValueError(f"pad must be in [0, width // 2] = [0, {width // 2}], got {pad}")
    pad = int(pad)
    dither = width if dither is None else int(dither)
    filters = np.asarray(filters)
    per_group = max(1, SURROGATE_SPIKE_BUDGET // max(1, raster.nnz))
    # the spike counts before each bin take n_bins values per copy: at most this many copies at a time
    per_window = max(1, SURROGATE_SPIKE_BUDGET // raster.n_bins)
    heights: list[list[np.ndarray]] = [[] for _ in range(filters.shape[0])]
    level, uniform = _uniform_rows(filters)
    streamed: dict[tuple[int, int], list[int]] = {}
    shortcut: dict[tuple[int, int], list[int]] = {}
    for index, region in enumerate(regions):
        (streamed if np.isnan(level[index]) else shortcut).setdefault(tuple(region), []).append(index)
    plans = {region: _uniform_groups(raster, filters, members, level, uniform, device)
             for region, members in shortcut.items()}
    start, interval_length = _interval_of_entries(raster)
    length = response_length(raster.n_bins, width)
    done = 0
    while done < n_surrogates:
        n_copies = min(per_group, n_surrogates - done)
        shifted = _shifted_entries(raster, start, interval_length, n_copies, rng, method, dither)
        for first in range(0, n_copies if plans else 0, per_window):
            _uniform_shortcut_heights(raster, shifted[first:first + per_window], plans, width, device, heights,
                                      pad)
        for (region_start, region_stop), members in streamed.items():
            compact, origins = _region_copies(raster, shifted, region_start, region_stop, width)
            op = StreamingResponse(compact, width, device, torch.float32)
            with torch.no_grad():
                responses = op(torch.as_tensor(filters[members], dtype=torch.float32, device=device)).cpu().numpy()
            # each copy's region with its padding (clipped to the recording, as the tested response is)
            before, after = min(pad, region_start), max(0, min(pad, length - region_stop))
            for origin in origins:
                for row, index in enumerate(members):
                    segment = responses[row, origin - before:origin + region_stop - region_start + after]
                    heights[index].append(
                        peaks_in_region(segment, before, before + region_stop - region_start, width, pad)[1])
        done += n_copies
        if progress_bar is not None:
            progress_bar.update(n_copies)
    return [np.concatenate(parts) if parts else np.zeros(0) for parts in heights]


#: The surrogates of a cross-fitted test are drawn in this many chunks, each from its own seed: the
#: chunks are independent tasks (:func:`null_peak_heights_in_chunks`), cut the same way with or without
#: a dask client so that the same seed gives the same null.
SURROGATE_CHUNKS = 8


def _null_chunk(n_copies: int, seed: int, *, raster: SpikeRaster, filters: np.ndarray,
                regions: list[tuple[int, int]], width: int, device: str, method: str,
                dither: int | None, pad: int = 0) -> list[np.ndarray]:
    from convseq_neo._validation import resolve_device

    return null_peak_heights(raster, filters, regions, width, n_copies, np.random.default_rng(seed),
                             resolve_device(device), method=method, dither=dither, pad=pad)


def null_peak_heights_in_chunks(raster: SpikeRaster, filters: np.ndarray, regions: list[tuple[int, int]], width: int,
                                n_surrogates: int, rng: np.random.Generator, device: torch.device | str, *,
                                method: str = "dither", dither: int | None = None, client=None,
                                progress: bool = False, pad: int = 0) -> list[np.ndarray]:
    """:func:`null_peak_heights` drawn in :data:`SURROGATE_CHUNKS` independent chunks, optionally on a dask client.

    Each chunk draws its surrogates from its own generator, seeded from ``rng`` before any chunk
    runs, so the null is the same whether the chunks run here one after another or as tasks on
    ``client`` (:func:`~convseq_neo.core.tasks.run_tasks`).

    Returns
    -------
    list of ndarray
        One array of null peak heights per filter, pooled over all chunks in chunk order.

    Examples
    --------
    >>> import numpy as np
    >>> from convseq_neo.raster import SpikeRaster
    >>> raster = SpikeRaster.from_dense((np.random.default_rng(0).random((5, 300)) < 0.1).astype(int))
    >>> filters = np.full((1, 5, 10), 0.1, dtype=np.float32)
    >>> null = null_peak_heights_in_chunks(raster, filters, [(0, 291)], 10, 16, np.random.default_rng(1), "cpu")
    >>> len(null), null[0].size > 16
    (1, True)
    """
    from convseq_neo.core.tasks import run_tasks

    sizes = [int(part.size) for part in np.array_split(np.arange(n_surrogates), min(SURROGATE_CHUNKS, n_surrogates))]
    seeds = rng.integers(0, 2**63 - 1, size=len(sizes))
    parts = run_tasks(_null_chunk, [(size, int(seed)) for size, seed in zip(sizes, seeds)],
                      shared={"raster": raster, "filters": np.asarray(filters), "regions": list(regions),
                              "width": int(width), "device": str(device), "method": method, "dither": dither,
                              "pad": int(pad)},
                      client=client, progress=progress, description="surrogates")
    return [np.concatenate([part[row] for part in parts]) for row in range(len(regions))]


def empirical_pvalues(heights: np.ndarray, null: np.ndarray) -> np.ndarray:
    """``(1 + #{null >= h}) / (1 + n_null)`` for each observed height ``h`` (valid, never zero)."""
    null_sorted = np.sort(np.asarray(null, dtype=float))
    n_at_least = null_sorted.size - np.searchsorted(null_sorted, np.asarray(heights, dtype=float), side="left")
    return (1.0 + n_at_least) / (1.0 + null_sorted.size)



def row_pvalues(rows: np.ndarray, heights: np.ndarray, null: list[np.ndarray]) -> np.ndarray:
    """Empirical p-value of each peak against the null of its row (see :func:`empirical_pvalues`)."""
    pvalues = np.empty(heights.size)
    for row, sample in enumerate(null):
        at = rows == row
        pvalues[at] = empirical_pvalues(heights[at], sample)
    return pvalues


def standardized_heights(rows: np.ndarray, heights: np.ndarray, null: list[np.ndarray]) -> np.ndarray:
    """Each peak's height minus its row's null mean, over that null's standard deviation.

    A null without spread gives ``+inf`` above its value and ``-inf`` below it (0 at it); a row
    whose null is empty gives NaN.
    """
    heights = np.asarray(heights, dtype=float)
    standardized = np.full(heights.size, np.nan)
    for row, sample in enumerate(null):
        sample = np.asarray(sample, dtype=float)
        if sample.size == 0:
            continue
        at = rows == row
        spread = float(sample.std())
        excess = heights[at] - sample.mean()
        standardized[at] = excess / spread if spread > 0 else np.sign(excess) * np.where(excess == 0, 0.0, np.inf)
    return standardized


def pvalue_resolution(null: list[np.ndarray]) -> float:
    """The largest of the rows' smallest possible p-values, ``1 / (1 + null size)``.

    Below it p-values of different rows say nothing more: each row's smallest value only counts
    its null's peaks, so a peak beyond every null peak gets a smaller p-value from a larger null.
    """
    sizes = [len(sample) for sample in null if len(sample)]
    return 1.0 / (1.0 + min(sizes)) if sizes else 0.0


def one_peak_per_window(pattern: np.ndarray, peak_bin: np.ndarray, fold: np.ndarray,
                        regions: list[tuple[int, int]], width: int, shifts: np.ndarray) -> np.ndarray:
    """Which candidates to keep so that one occurrence near a fold border is tested once.

    Each fold's filter is tested on its own region, and its peaks are moved into the all-data
    filter's frame by that filter's shift, so fold ``g`` tests the all-data bins
    ``[start_g + shift_g, stop_g + shift_g)`` (its moved region). Near a border one occurrence can
    give a candidate to both folds: where the moved regions overlap, both filters test it; and a
    response that peaks just past the border rises over the last bins before it, where the
    previous fold can find a local maximum of its own (its peaks are found over :func:`fold_pad`
    bins beyond its region, which removes such a flank below a higher peak within that reach, not
    every one). So two candidates of
    one pattern from different folds, less than ``width`` bins apart (within a fold, peaks are
    ``width`` apart), count as one occurrence when one of them lies in the other's fold's moved
    region (that fold tested its position too), or when they are less than ``width // 4`` bins
    apart. Further apart and each tested by its own fold only, they are two windows and both are
    kept: an occurrence just past a border is not lost to a chance peak of the previous fold.
    Candidates are taken from the one deepest inside its own fold's region (bins to the nearer
    edge; negative outside it) to the shallowest (on a tie, the earlier fold's first), and one is
    dropped when it counts as one occurrence with a candidate of another fold already kept. The
    choice follows peak positions, not p-values.

    Parameters
    ----------
    pattern, peak_bin, fold : ndarray of int, shape (n_peaks,)
        Each candidate's pattern, peak bin (all-data frame) and the fold whose test it came from.
    regions : list of (start, stop)
        The folds' test regions.
    width : int
        The window length W.
    shifts : ndarray of int, shape (n_folds, n_patterns)
        Each fold's shift per pattern: the bins its peaks were moved by.

    Returns
    -------
    ndarray of bool, shape (n_peaks,)

    Examples
    --------
    >>> regions = [(0, 100), (100, 200)]
    >>> shifts = np.array([[2], [-1]])  # the moved regions overlap over bins 99-101
    >>> one_peak_per_window(np.zeros(2, int), np.array([101, 100]), np.array([0, 1]), regions, 20, shifts)
    array([False,  True])
    >>> one_peak_per_window(np.zeros(2, int), np.array([90, 105]), np.array([0, 1]), regions, 20, shifts)
    array([ True,  True])
    >>> # a rising flank before the border and the peak after it: one occurrence, the deeper one kept
    >>> one_peak_per_window(np.zeros(2, int), np.array([98, 102]), np.array([0, 1]), regions, 20, shifts)
    array([False,  True])
    """
    pattern = np.asarray(pattern, dtype=np.int64)
    peak_bin = np.asarray(peak_bin, dtype=np.int64)
    fold = np.asarray(fold, dtype=np.int64)
    moved = np.asarray(shifts, dtype=np.int64)
    n_patterns = int(pattern.max()) + 1 if pattern.size else 0
    if moved.ndim != 2 or moved.shape[0] != len(regions) or moved.shape[1] < n_patterns:
        raise ValueError(f"shifts must hold one shift per fold ({len(regions)}) and pattern ({n_patterns}); "
                         f"got shape {moved.shape}")
    keep = np.ones(pattern.size, dtype=bool)
    if pattern.size < 2:
        return keep
    bounds = np.array(regions, dtype=np.int64).reshape(-1, 2)
    depth = np.minimum(peak_bin - bounds[fold, 0], bounds[fold, 1] - 1 - peak_bin)
    close = max(1, width // 4)

    def tested_by(at: int, other: int, k: int) -> bool:
        return bool(bounds[other, 0] + moved[other, k] <= at < bounds[other, 1] + moved[other, k])

    # deepest first; kept peaks are sorted per pattern and mostly a window apart, so only a few lie
    # within one window of a new one
    kept: dict[int, tuple[list[int], list[int]]] = {}
    for index in np.lexsort((peak_bin, fold, -depth)):
        k = int(pattern[index])
        bins, folds = kept.setdefault(k, ([], []))
        at, here = int(peak_bin[index]), int(fold[index])
        low, high = bisect_right(bins, at - width), bisect_left(bins, at + width)
        if any(folds[j] != here and (abs(bins[j] - at) < close or tested_by(at, folds[j], k)
                                     or tested_by(bins[j], here, k)) for j in range(low, high)):
            keep[index] = False
        else:
            position = bisect_left(bins, at)
            bins.insert(position, at)
            folds.insert(position, here)
    return keep


def null_share(regions: list[tuple[int, int]], length: int) -> float:
    """The recording's share that one surrogate of each of ``regions`` covers: whole filter passes."""
    return float(sum(min(stop, length) - start for start, stop in regions)) / max(1, length)


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


def random_filter_test(responses: np.ndarray, width: int, threshold: float) -> CandidatePeaks:
    """The reference procedure: in-sample peaks above one random-filter threshold, no p-values.

    Parameters
    ----------
    responses : ndarray, shape (K, L)
        The all-data filters' responses to the training raster.
    width : int
        Filter width ``W`` (minimum distance between peaks).
    threshold : float
        From :func:`random_filter_threshold`.
    """
    rows, times, heights = collect_peaks(responses, [(0, responses.shape[1])] * responses.shape[0], width)
    return CandidatePeaks(pattern=rows, peak_bin=times, height=heights, pvalue=np.full(heights.size, np.nan),
                       significant=heights > threshold, tested_responses=responses.copy(),
                       thresholds=np.full(responses.shape, threshold))
