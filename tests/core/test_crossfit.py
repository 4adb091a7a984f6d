"""Cross-fitting as a function: folds, masks, matching fold filters to the all-data ones, and the test itself."""

import numpy as np
import pytest
import torch

from convseq_neo.core.crossfit import (
    _height_threshold,
    _offsets_around,
    crossfit_test,
    fold_regions,
    match_filters,
    model_masks,
)
from convseq_neo.core.response import make_response, response_length
from convseq_neo.core.significance import (
    CandidatePeaks,
    collect_peaks,
    empirical_pvalues,
    masked_peaks,
    one_peak_per_window,
    peaks_in_region,
)
from convseq_neo.raster import SpikeRaster

N_PER_PATTERN, WIDTH, N_BINS, SPAN = 20, 40, 3000, 20
STARTS = {0: np.arange(50, N_BINS - 100, 150), 1: np.arange(125, N_BINS - 100, 150)}
FOLD_SHIFTS = [0, 2, -3]  # bins each fold's filters sit later in their window than the all-data ones


def _raster(starts_by_pattern=None):
    rng = np.random.default_rng(0)
    dense = (rng.random((2 * N_PER_PATTERN, N_BINS)) < 0.01).astype(int)
    for pattern, starts in (STARTS if starts_by_pattern is None else starts_by_pattern).items():
        neurons = pattern * N_PER_PATTERN + np.arange(N_PER_PATTERN)
        for start in starts:
            dense[neurons, start + np.arange(N_PER_PATTERN)] = 1
    return SpikeRaster.from_dense(dense)


def _filters(shift=0):
    """Pattern k: neuron n of its group at window position W // 2 - SPAN // 2 + n + shift (peak at start + 10)."""
    filters = np.full((2, 2 * N_PER_PATTERN, WIDTH), 0.1)
    for pattern in range(2):
        neurons = pattern * N_PER_PATTERN + np.arange(N_PER_PATTERN)
        filters[pattern, neurons, WIDTH // 2 - SPAN // 2 + np.arange(N_PER_PATTERN) + shift] = 10.0
    return (filters / filters.sum(axis=2, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def tested():
    raster = _raster()
    length = response_length(raster.n_bins, WIDTH)
    regions = fold_regions(length, len(FOLD_SHIFTS))
    masks = model_masks(length, regions, WIDTH)
    folds = [_filters(shift) for shift in FOLD_SHIFTS]
    folds[1] = folds[1][::-1]  # fold 1 learned the patterns in the other order
    model_filters = np.stack([_filters()] + folds)
    op = make_response(raster, WIDTH, backend="events", device=torch.device("cpu"))
    result = crossfit_test(op, raster, model_filters, masks, regions, threshold=0.0, lag_tolerance=2, alpha=0.05,
                           n_surrogates=30, rng=np.random.default_rng(2))
    return result, length


def test_folds_tile_the_response_and_masks_keep_a_guard_band():
    regions = fold_regions(1000, 3)
    assert regions[0][0] == 0 and regions[-1][1] == 1000
    assert all(a[1] == b[0] for a, b in zip(regions, regions[1:]))
    masks = model_masks(1000, regions, 50)
    assert masks.shape == (4, 1000) and masks[0].all()
    for fold, (start, stop) in enumerate(regions):
        assert not masks[1 + fold, max(0, start - 50):stop + 50].any()
        assert masks[1 + fold, :max(0, start - 50)].all() and masks[1 + fold, stop + 50:].all()
    assert model_masks(1000, [], 50).shape == (1, 1000)


def test_match_filters_finds_order_and_shift():
    reference = _filters()
    order, shifts = match_filters(reference, _filters(3)[::-1])
    np.testing.assert_array_equal(order, [1, 0])
    np.testing.assert_array_equal(shifts, [3, 3])


def test_crossfit_result_has_documented_shapes(tested):
    result, length = tested
    assert isinstance(result, CandidatePeaks)
    n = result.pattern.size
    assert n > 0
    for field in (result.peak_bin, result.height, result.pvalue, result.significant):
        assert field.shape == (n,)
    assert result.tested_responses.shape == result.thresholds.shape == (2, length)
    assert result.fold_shifts.shape == (len(FOLD_SHIFTS), 2)
    assert ((result.pvalue > 0) & (result.pvalue <= 1)).all()


def test_fold_shifts_are_recovered_and_within_a_quarter_window(tested):
    result, _ = tested
    assert (np.abs(result.fold_shifts) <= WIDTH // 4).all()
    np.testing.assert_array_equal(result.fold_shifts, np.repeat(np.array(FOLD_SHIFTS)[:, None], 2, axis=1))


def test_thresholds_are_finite_wherever_a_response_was_tested(tested):
    result, _ = tested
    covered = np.isfinite(result.tested_responses)
    assert covered.mean() > 0.99
    assert np.isfinite(result.thresholds[covered]).all()
    assert np.isposinf(result.thresholds[~covered]).all()


def test_significant_peaks_sit_at_the_planted_occurrences_in_the_reference_frame(tested):
    result, _ = tested
    np.testing.assert_allclose(result.tested_responses[result.pattern, result.peak_bin], result.height)
    for pattern, starts in STARTS.items():
        found = result.peak_bin[result.significant & (result.pattern == pattern)]
        truth = starts + SPAN // 2
        distance = np.abs(found[:, None] - truth[None, :]).min(axis=1)
        assert (distance <= 1).mean() >= 0.85  # BH at 5 %: a few background peaks may pass
        assert np.isin(truth, found).mean() >= 0.8


def test_an_occurrence_where_two_folds_overlap_is_tested_once():
    """Fold 1's filters sit 2 bins later and fold 2's 3 earlier, so their moved regions overlap.

    An occurrence peaking in that overlap is a peak of both folds' filters in their own regions;
    it must come back as one candidate, the one of the fold whose region holds the moved peak.
    """
    length = response_length(N_BINS, WIDTH)
    regions = fold_regions(length, len(FOLD_SHIFTS))
    border = regions[1][1]
    start = border - 1 - SPAN // 2  # reference peak at border - 1: fold 1's region, fold 2's moved one
    raster = _raster({0: np.array([400, 1400, start]), 1: np.array([800, 2200])})
    masks = model_masks(length, regions, WIDTH)
    model_filters = np.stack([_filters()] + [_filters(shift) for shift in FOLD_SHIFTS])
    op = make_response(raster, WIDTH, backend="events", device=torch.device("cpu"))
    result = crossfit_test(op, raster, model_filters, masks, regions, threshold=0.0, lag_tolerance=2, alpha=0.05,
                           n_surrogates=30, rng=np.random.default_rng(2))
    near = (result.pattern == 0) & (np.abs(result.peak_bin - (border - 1)) < WIDTH)
    assert near.sum() == 1, (result.peak_bin[near], result.fold[near])
    assert result.fold[near][0] == 1
    assert result.tested_responses[0, result.peak_bin[near][0]] == result.height[near][0]
    # any two candidates of one pattern from different folds less than a window apart are two tests:
    # not a quarter window apart or less, and neither in the other fold's moved region
    moved = [[(start + shift, stop + shift) for shift in result.fold_shifts[fold]]
             for fold, (start, stop) in enumerate(regions)]
    for a in range(result.pattern.size):
        for b in range(a + 1, result.pattern.size):
            k, fa, fb = result.pattern[a], result.fold[a], result.fold[b]
            distance = abs(int(result.peak_bin[a]) - int(result.peak_bin[b]))
            if result.pattern[b] != k or fa == fb or distance >= WIDTH:
                continue
            assert distance >= WIDTH // 4
            assert not moved[fb][k][0] <= result.peak_bin[a] < moved[fb][k][1]
            assert not moved[fa][k][0] <= result.peak_bin[b] < moved[fa][k][1]


def test_one_peak_per_window_keeps_the_peak_inside_its_own_region():
    regions = [(0, 100), (100, 200), (200, 300)]
    shifts = np.array([[2, 0], [-2, 0], [0, 0]])  # folds 0 and 1 moved into each other's region (pattern 0)
    pattern = np.array([0, 0, 0, 1, 1, 0])
    peak_bin = np.array([98, 101, 150, 99, 102, 250])
    fold = np.array([1, 0, 1, 0, 0, 2])  # 98 from fold 1 and 101 from fold 0: both moved out of their regions
    keep = one_peak_per_window(pattern, peak_bin, fold, regions, width=20, shifts=shifts)
    # 98 and 101 are both 2 bins outside: a tie, the earlier fold's (101) stays; one fold's peaks
    # closer than a window (pattern 1) are not duplicates; 150 and 250 are far
    np.testing.assert_array_equal(keep, [False, True, True, True, True, True])
    # 99 was moved out of fold 1 into fold 0's region, where fold 0 found 95: one window
    keep = one_peak_per_window(np.array([0, 0]), np.array([95, 99]), np.array([0, 1]), regions, width=20,
                               shifts=np.array([[0], [-2], [0]]))
    np.testing.assert_array_equal(keep, [True, False])
    # 101 (fold 0, 2 outside) goes to 115 (fold 1, inside; fold 1 tests from bin 95 on); 95 and 115 are
    # one fold's two peaks
    keep = one_peak_per_window(np.zeros(3, int), np.array([95, 101, 115]), np.array([1, 0, 1]), regions, width=20,
                               shifts=np.array([[2], [-5], [0]]))
    np.testing.assert_array_equal(keep, [True, False, True])
    assert one_peak_per_window(np.zeros(0, int), np.zeros(0, int), np.zeros(0, int), regions, 20,
                               np.zeros((3, 1))).shape == (0,)
    for wrong in (np.zeros((3, 1)), np.zeros((2, 2)), np.zeros(3)):
        with pytest.raises(ValueError, match="shifts"):
            one_peak_per_window(np.array([0, 1]), np.array([10, 50]), np.array([0, 0]), regions, 20, wrong)
    # the shifts decide: fold 1 moved by 6 tests 205 too, where fold 2 found its (deeper) peak
    candidates = (np.zeros(2, int), np.array([195, 205]), np.array([1, 2]), regions, 20)
    np.testing.assert_array_equal(one_peak_per_window(*candidates, np.array([[0], [6], [0]])), [False, True])
    np.testing.assert_array_equal(one_peak_per_window(*candidates, np.zeros((3, 1))), [True, True])


def test_one_peak_per_window_keeps_both_folds_windows_on_either_side_of_a_border():
    """Found on the whole CA1 background (W = 200): occurrences 36 and 5 bins past a border (fold 1's
    peak 3664, fold 2's 7260) were dropped for chance peaks of the previous fold 180 and 64 bins
    before them (3484, 7196), although no fold tested the other's position; the rule then was any
    two folds' candidates less than a window apart. So was every such occurrence, in every seed."""
    regions = [(0, 3628), (3628, 7255), (7255, 10883)]
    shifts = np.array([[3], [0], [-1]])  # the fit's; folds 0 and 1 both test bins 3628-3630
    keep = one_peak_per_window(np.zeros(4, int), np.array([3484, 3664, 7196, 7260]), np.array([0, 1, 1, 2]),
                               regions, width=200, shifts=shifts)
    np.testing.assert_array_equal(keep, [True, True, True, True])
    # fold 0's peak moved to 3629, which fold 1 tests too and where it found 3630: one window
    keep = one_peak_per_window(np.zeros(2, int), np.array([3629, 3630]), np.array([0, 1]), regions, width=200,
                               shifts=shifts)
    np.testing.assert_array_equal(keep, [False, True])
    # without shifts, a response peaking 10 bins past a border rises over the previous fold's last
    # bins, which finds a local maximum 3 bins before it: one occurrence, the peak kept
    keep = one_peak_per_window(np.zeros(2, int), np.array([7252, 7265]), np.array([1, 2]), regions, width=200,
                               shifts=np.zeros((3, 1)))
    np.testing.assert_array_equal(keep, [False, True])


def test_collect_peaks_keeps_each_row_in_its_region():
    rng = np.random.default_rng(2)
    responses = rng.random((3, 500))
    regions = [(0, 100), (100, 400), (350, 500)]
    rows, times, heights = collect_peaks(responses, regions, 10)
    assert (np.diff(rows) >= 0).all() and set(rows) == {0, 1, 2}
    for row, (start, stop) in enumerate(regions):
        at = times[rows == row]
        assert ((at >= start) & (at < stop)).all() and (np.diff(at) >= 10).all()
    np.testing.assert_array_equal(heights, responses[rows, times])


def test_padded_peaks_drop_a_flank_below_a_higher_peak_past_the_border():
    # a response peaking 5 bins past a border at 100 rises over the last bins before it, with a
    # ripple: the fold ending at 100 finds a local maximum at 88 on that flank
    time = np.arange(300, dtype=float)
    response = np.exp(-0.5 * ((time - 105) / 20) ** 2) + 0.05 * (time == 88)
    times, _ = peaks_in_region(response, 0, 100, 40)
    assert times.tolist() == [88]
    times, _ = peaks_in_region(response, 0, 100, 40, pad=20)
    assert times.size == 0  # the peak past the border is higher and less than a window away
    times, heights = peaks_in_region(response, 100, 300, 40, pad=20)
    assert times.tolist() == [105] and heights[0] == response[105]
    # a peak past the border farther than a window does not suppress one inside
    response = np.exp(-0.5 * ((time - 60) / 5) ** 2) + 2 * np.exp(-0.5 * ((time - 115) / 5) ** 2)
    assert peaks_in_region(response, 0, 100, 40, pad=20)[0].tolist() == [60]
    assert peaks_in_region(response, 0, 100, 60, pad=20)[0].size == 0
    # padding stops at the response's ends
    assert peaks_in_region(response, 0, 100, 40, pad=150)[0].tolist() == [60]


def test_collect_peaks_pads_each_region():
    time = np.arange(300, dtype=float)
    response = np.exp(-0.5 * ((time - 105) / 20) ** 2) + 0.05 * (time == 88)
    responses = np.stack([response, response])
    rows, times, _ = collect_peaks(responses, [(0, 100), (100, 300)], 40)
    assert list(zip(rows, times)) == [(0, 88), (1, 105)]
    rows, times, _ = collect_peaks(responses, [(0, 100), (100, 300)], 40, pad=20)
    assert list(zip(rows, times)) == [(1, 105)]


def test_crossfit_test_pads_its_candidates_and_its_null_alike(monkeypatch):
    from _spies import record_padding

    from convseq_neo.core import crossfit

    seen = record_padding(monkeypatch, crossfit)
    raster = _raster()
    length = response_length(raster.n_bins, WIDTH)
    regions = fold_regions(length, 3)
    op = make_response(raster, WIDTH, backend="events", device=torch.device("cpu"))
    crossfit_test(op, raster, np.stack([_filters()] * 4), model_masks(length, regions, WIDTH), regions,
                  threshold=0.0, lag_tolerance=2, alpha=0.05, n_surrogates=4, rng=np.random.default_rng(0))
    assert seen == {"candidates": WIDTH // 2, "null": WIDTH // 2}


def test_masked_peaks_only_where_the_mask_allows():
    rng = np.random.default_rng(3)
    response = rng.random(400)
    mask = np.zeros(400, dtype=bool)
    mask[100:250] = True
    times, heights = masked_peaks(response, mask, 5)
    assert times.size > 0 and mask[times].all()
    np.testing.assert_array_equal(heights, response[times])


@pytest.mark.parametrize("n_null", [50, 200, 999])
def test_height_threshold_is_the_smallest_height_whose_pvalue_passes(n_null):
    null = np.random.default_rng(n_null).random(n_null)
    for n_above in (1, 3, 10):
        cutoff = (1.0 + n_above) / (1.0 + n_null) + 1e-9
        threshold = _height_threshold(null, cutoff)
        assert empirical_pvalues([threshold], null)[0] <= cutoff
        assert empirical_pvalues([np.nextafter(threshold, -np.inf)], null)[0] > cutoff
    assert _height_threshold(null, 0.5 / (1.0 + n_null)) == np.inf
    assert _height_threshold(null, 1.0) == -np.inf


def test_height_threshold_at_the_smallest_attainable_pvalue():
    """cutoff * (1 + n) - 1 rounds below 0 for n = 560 (1/561 * 561 < 1): the threshold must still be finite."""
    null = np.arange(560.0)
    cutoff = empirical_pvalues([1000.0], null)[0]  # 1 / 561: the p-value of a peak above the whole null
    assert _height_threshold(null, cutoff) == np.nextafter(559.0, np.inf)


def test_height_threshold_agrees_with_the_pvalues_at_every_attainable_cutoff():
    """At a cutoff equal to an attainable p-value, exactly the heights with that p-value or less pass."""
    for n_null in (1, 7, 200, 560, 999):
        null = np.arange(float(n_null))
        for n_above in range(0, n_null, max(1, n_null // 13)):
            cutoff = empirical_pvalues([n_null - n_above - 0.5], null)[0]
            threshold = _height_threshold(null, cutoff)
            assert np.isfinite(threshold), (n_null, n_above)
            assert empirical_pvalues([threshold], null)[0] <= cutoff
            assert empirical_pvalues([np.nextafter(threshold, -np.inf)], null)[0] > cutoff


def test_offsets_around_pools_each_centres_spikes_in_order():
    rng = np.random.default_rng(4)
    dense = (rng.random((3, 800)) < 0.08).astype(int)
    raster = SpikeRaster.from_dense(dense)
    centres = np.array([0, 5, 6, 300, 790, 799])  # overlapping reaches and both edges
    for neuron in range(3):
        spikes = np.flatnonzero(dense[neuron])
        expected = np.concatenate([spikes[np.abs(spikes - c) <= 7] - c for c in centres])
        np.testing.assert_array_equal(_offsets_around(raster, neuron, centres, 7), expected)
    assert _offsets_around(raster, 0, centres[:0], 7).size == 0
