"""The null's uniform-row shortcut: the same peak heights as applying the full filters to each whole surrogate."""

import numpy as np
import pytest
import torch

from convseq_neo.core import significance
from convseq_neo.core.crossfit import fold_regions
from convseq_neo.core.response import StreamingResponse, response_length
from convseq_neo.core.significance import _uniform_rows, null_peak_heights, peaks_in_region, surrogate_bins
from convseq_neo.raster import SpikeRaster

N_NEURONS, N_BINS = 40, 1500


def _raster(rate: float, seed: int = 0, observed=None) -> SpikeRaster:
    rng = np.random.default_rng(seed)
    counts = rng.poisson(rate, size=(N_NEURONS, N_BINS))
    counts[7] = 0  # a silent neuron, non-uniform in some filters below
    if observed is not None:
        inside = np.zeros(counts.shape, dtype=bool)
        for neuron, start, stop in observed:
            inside[neuron, start:stop] = True
        counts[~inside] = 0
    neuron, bins = np.nonzero(counts)
    return SpikeRaster(neuron, bins, counts[neuron, bins], N_NEURONS, N_BINS, observed=observed)


def _softmax_rows(rng: np.random.Generator, n_rows: int, width: int) -> np.ndarray:
    weights = np.exp(2.0 * rng.normal(size=(n_rows, width)))
    return weights / weights.sum(axis=1, keepdims=True)


def _filters(width: int, n_regions: int, dtype=np.float64) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Filters of several regions: different non-uniform sets, a shared set, one full, one all uniform."""
    rng = np.random.default_rng(1)
    members = [
        [0, 3, 5, 7, 11],  # 7 never spikes
        [2, 5, 9, 20, 21, 22, 30],
        [2, 5, 9, 20, 21, 22, 30],  # the same set as the previous filter, other weights
        list(range(N_NEURONS)),  # no uniform row: the streamed path
        [],  # every row uniform
        [1, 39],
    ]
    filters = np.full((len(members), N_NEURONS, width), 1.0 / width)
    for index, rows in enumerate(members):
        filters[index, rows] = _softmax_rows(rng, len(rows), width)
    regions = fold_regions(response_length(N_BINS, width), n_regions)
    row_regions = [regions[index % n_regions] for index in range(len(members))]
    return filters.astype(dtype), row_regions


def _reference(raster: SpikeRaster, filters: np.ndarray, regions: list[tuple[int, int]], width: int,
               n_surrogates: int, rng: np.random.Generator, method: str, dither: int | None,
               pad: int = 0) -> list[np.ndarray]:
    """The straightforward null: full filters on each whole surrogate (float64), drawn as ``null_peak_heights`` does.

    The shortcut computes the uniform rows' part exactly (level times a spike count), so runs of
    equal response values stay equal; the old float32 path broke such ties by rounding noise.
    """
    dither = width if dither is None else dither
    per_group = max(1, significance.SURROGATE_SPIKE_BUDGET // max(1, raster.nnz))
    heights: list[list[np.ndarray]] = [[] for _ in range(filters.shape[0])]
    done = 0
    while done < n_surrogates:
        n_copies = min(per_group, n_surrogates - done)
        for bins in surrogate_bins(raster, n_copies, rng, method, dither):
            surrogate = SpikeRaster(raster.neuron_index, bins, raster.counts, raster.n_neurons, raster.n_bins)
            op = StreamingResponse(surrogate, width, torch.device("cpu"), torch.float64)
            with torch.no_grad():
                responses = op(torch.as_tensor(filters, dtype=torch.float64)).numpy()
            # equal sums of the same weights in another order: make them equal, so that a plateau (a
            # run of equal response values) has one peak in the middle here too, as in the shortcut
            responses = np.round(responses, 10)
            for index, (start, stop) in enumerate(regions):
                heights[index].append(peaks_in_region(responses[index], start, stop, width, pad)[1])
        done += n_copies
    return [np.concatenate(parts) for parts in heights]


def _assert_same_null(raster, filters, regions, width, method, dither=None, n_surrogates=7, pad=0):
    rng_fast, rng_reference = np.random.default_rng(5), np.random.default_rng(5)
    fast = null_peak_heights(raster, filters, regions, width, n_surrogates, rng_fast, torch.device("cpu"),
                             method=method, dither=dither, pad=pad)
    reference = _reference(raster, filters, regions, width, n_surrogates, rng_reference, method, dither, pad)
    assert len(fast) == filters.shape[0]
    for index, (got, expected) in enumerate(zip(fast, reference)):
        assert got.size == expected.size > 0, index
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6, err_msg=f"filter {index}")
    # the surrogates consumed the generator exactly as before
    assert rng_fast.integers(2**62) == rng_reference.integers(2**62)


def test_uniform_rows_are_the_rows_at_the_common_constant_level():
    filters, _ = _filters(10, 1)
    filters[5, 17] = 0.0  # constant, but not at the level of the other constant rows: not uniform
    level, uniform = _uniform_rows(filters)
    np.testing.assert_array_equal(np.isnan(level), [False, False, False, True, False, False])
    np.testing.assert_allclose(level[~np.isnan(level)], 0.1)
    assert uniform[0].sum() == N_NEURONS - 5 and not uniform[0, [0, 3, 5, 7, 11]].any()
    assert not uniform[3].any() and uniform[4].all()
    assert not uniform[5, [1, 17, 39]].any() and uniform[5].sum() == N_NEURONS - 3


@pytest.mark.parametrize("width", [20, 21])
@pytest.mark.parametrize("method", ["dither", "circular"])
def test_shortcut_matches_full_filters_on_whole_surrogates(width, method):
    raster = _raster(0.05)
    filters, regions = _filters(width, 3)
    _assert_same_null(raster, filters, regions, width, method)


@pytest.mark.parametrize("n_regions", [3, 5])
@pytest.mark.parametrize("width", [20, 21])
@pytest.mark.parametrize("method", ["dither", "circular"])
def test_padded_null_matches_padded_peaks_on_whole_surrogates(width, method, n_regions):
    # both paths (streamed and shortcut) find each region's peaks over half a window beyond it, as
    # the fold test does, clipped at the recording's ends (the first and last regions); with 5
    # regions the streamed filter (index 3) tests a middle region, padded on both sides
    raster = _raster(0.05)
    filters, regions = _filters(width, n_regions)
    _assert_same_null(raster, filters, regions, width, method, pad=width // 2)


def test_chunks_forward_the_padding(monkeypatch):
    seen = []
    real = significance.null_peak_heights

    def spy(*args, **kwargs):
        seen.append(kwargs["pad"])
        return real(*args, **kwargs)

    monkeypatch.setattr(significance, "null_peak_heights", spy)
    raster = _raster(0.05)
    filters, regions = _filters(20, 3)
    significance.null_peak_heights_in_chunks(raster, filters, regions, 20, 3, np.random.default_rng(0), "cpu",
                                             pad=7)
    assert seen == [7, 7, 7]


def test_pad_beyond_the_copies_is_refused():
    raster = _raster(0.05)
    filters, regions = _filters(20, 3)
    with pytest.raises(ValueError, match="pad"):
        null_peak_heights(raster, filters, regions, 20, 2, np.random.default_rng(0), torch.device("cpu"), pad=11)


@pytest.mark.parametrize("method", ["dither", "circular"])
def test_shortcut_matches_with_float32_filters_one_region_and_a_small_dither(method):
    raster = _raster(0.08, seed=3)
    filters, _ = _filters(15, 1, dtype=np.float32)
    length = response_length(N_BINS, 15)
    _assert_same_null(raster, filters, [(0, length)] * filters.shape[0], 15, method, dither=4)


@pytest.mark.parametrize("method", ["dither", "circular"])
def test_shortcut_matches_in_several_groups_and_window_chunks(method, monkeypatch):
    # a sparse raster (fewer spikes than bins) and a small budget: copies are drawn a few at a time
    # and their window counts are computed one copy at a time
    raster = _raster(0.004, seed=4)
    assert raster.nnz < N_BINS
    monkeypatch.setattr(significance, "SURROGATE_SPIKE_BUDGET", 3 * raster.nnz)
    filters, regions = _filters(16, 2)
    _assert_same_null(raster, filters, regions, 16, method, n_surrogates=8)


@pytest.mark.parametrize("method", ["dither", "circular"])
def test_shortcut_matches_with_observed_intervals(method):
    observed = np.array([[neuron, 0, 900] if neuron % 2 else [neuron, 300, N_BINS] for neuron in range(N_NEURONS)])
    raster = _raster(0.06, seed=6, observed=observed)
    filters, regions = _filters(19, 4)
    _assert_same_null(raster, filters, regions, 19, method)
    _assert_same_null(raster, filters, regions, 19, method, pad=9)
