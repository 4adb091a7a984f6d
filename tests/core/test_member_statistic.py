"""The tested form of a pattern: its members' evidence only, and patterns that hold another pattern unmixed."""

import numpy as np
import torch

from convseq_neo.core.crossfit import member_filter, restrict_to_members, select_members, unmix_members
from convseq_neo.core.crossfit import model_masks as make_masks
from convseq_neo.core.membership import membership_for_pattern
from convseq_neo.core.response import make_response, response_length
from convseq_neo.core.significance import masked_peaks
from convseq_neo.raster import SpikeRaster
from convseq_neo.synthetic.even_raster import evenly_planted_raster

PEAKS = np.arange(60, 1940, 60)


def _raster(rng):
    """Neuron 0 fires 3 bins before each peak, neuron 1 at +4 (jittered by 2 bins), neuron 2 at +4 in every
    other occurrence; neurons 3-5 fire at random (neuron 5 also at +4 in every occurrence but at a high rate)."""
    dense = (rng.random((6, 2000)) < 0.005).astype(int)
    dense[0, PEAKS - 3] = 1
    dense[1, PEAKS + 4 + rng.integers(-2, 3, PEAKS.size)] = 1
    dense[2, PEAKS[::2] + 4] = 1
    dense[5, PEAKS + 4] = 1
    dense[5] |= rng.random(2000) < 0.2
    return SpikeRaster.from_dense(dense)


def test_member_rows_weigh_reliable_precise_rare_spikes_most_and_leave_others_zero():
    raster = _raster(np.random.default_rng(0))
    members = np.array([True, True, True, False, False, True])
    lags = np.array([-3.0, 4.0, 4.0, 0.0, np.nan, 4.0])
    width = 40
    rows = member_filter(raster, PEAKS, members, lags, width, lag_tolerance=1)
    assert rows.shape == (6, width) and rows.dtype == np.float32
    assert not rows[[3, 4]].any()  # non-members (and an unknown lag) weigh nothing
    assert (rows >= 0).all()
    reach = max(3, width // 8)
    for neuron, lag in ((0, -3), (1, 4), (2, 4), (5, 4)):
        centre = width // 2 + lag
        assert rows[neuron].argmax() == centre
        outside = np.ones(width, dtype=bool)
        outside[centre - reach:centre + reach + 1] = False
        assert not rows[neuron, outside].any()
    centre = width // 2 + 4
    # the jittered member's weight is spread wider around its lag than the precise one's
    assert rows[1, centre + 2] / rows[1, centre] > 10 * rows[0, width // 2 - 1] / rows[0, width // 2 - 3]
    assert rows[1, centre] > rows[2, centre]  # every occurrence beats every other one
    assert rows[2, centre] > rows[5, centre]  # a neuron that fires anyway weighs little


def test_the_response_of_a_member_filter_peaks_where_the_members_fire_at_their_lags():
    raster = _raster(np.random.default_rng(1))
    width = 40
    rows = member_filter(raster, PEAKS, np.array([True, True, False, False, False, False]),
                         np.array([-3.0, 4.0, np.nan, np.nan, np.nan, np.nan]), width, lag_tolerance=1)
    op = make_response(raster, width, backend="events")
    response = op(torch.as_tensor(rows[None]))[0].numpy()  # index t: window peak t (L = T + 1 at even W)
    top = np.sort(np.argsort(response)[::-1][:PEAKS.size * 3])
    assert np.isin(PEAKS, top).all()


def test_a_pattern_holding_another_one_is_unmixed_and_a_reverse_pair_is_not():
    members = np.zeros((3, 30), dtype=bool)
    members[0, :16] = True  # sequences A (0-7) and B (8-15) in one pattern
    members[1, 8:16] = True  # B alone
    members[2, 16:24] = True  # C
    out = unmix_members(members)
    np.testing.assert_array_equal(np.flatnonzero(out[0]), np.arange(8))
    np.testing.assert_array_equal(out[1:], members[1:])
    pair = np.zeros((2, 30), dtype=bool)
    pair[:, :10] = True  # a sequence and its reverse: the same neurons
    np.testing.assert_array_equal(unmix_members(pair), pair)


def test_tested_filters_hold_only_the_members_found_in_each_models_training_data():
    rng = np.random.default_rng(0)
    n_neurons, n_bins, width = 30, 3000, 20
    dense = (rng.random((n_neurons, n_bins)) < 0.01).astype(int)
    members = np.arange(10)
    for start in range(40, n_bins - 40, 100):
        dense[members, start + np.arange(10)] = 1
    raster = SpikeRaster.from_dense(dense)
    length = response_length(n_bins, width)
    masks = make_masks(length, [(0, length // 2), (length // 2, length)], width)
    template = np.full((n_neurons, width), 0.2 / width, dtype=np.float32)
    template[members, width // 2 - 5 + np.arange(10)] += 0.8
    filters = np.repeat(template[None, None], masks.shape[0], axis=0)  # (3 models, K = 1, N, W)
    op = make_response(raster, width, backend="events")
    # occurrences answer about 8, chance alignments below 1: the threshold keeps the occurrences
    tested = restrict_to_members(op, raster, filters, masks, threshold=4.0, lag_tolerance=1, alpha=0.05)
    for model in range(masks.shape[0]):
        named = np.flatnonzero(tested[model, 0].sum(axis=1) > 0)
        np.testing.assert_array_equal(named, members)
        # each member's weight peaks where the template put it
        np.testing.assert_array_equal(tested[model, 0, members].argmax(axis=1), width // 2 - 5 + np.arange(10))


def _weakly_trained(seed):
    """12 occurrences of a 20-member sequence in 75 neurons at 5 % per bin, and a filter half-way through
    training: every neuron weighs one random lag, the members theirs (so chance peaks rank among the true ones)."""
    rng = np.random.default_rng(seed)
    n_neurons, width = 75, 20
    dense, centres, members, lags = evenly_planted_raster(12, n_neurons=n_neurons, random_state=rng)
    raster = SpikeRaster.from_dense(dense.astype(int))
    template = np.full((n_neurons, width), 0.5 / width, dtype=np.float32)
    template[np.arange(n_neurons), rng.integers(0, width, n_neurons)] += 0.5
    template[members] = 0.5 / width
    template[members, width // 2 - 5 + lags] += 0.5
    op = make_response(raster, width, backend="events")
    with torch.no_grad():
        response = op(torch.as_tensor(template[None]))[0].numpy()
    return raster, op, response, members, centres, width


def test_select_members_finds_the_occurrences_among_chance_peaks_and_names_the_members():
    for seed in range(5):
        raster, op, response, members, centres, width = _weakly_trained(seed)
        mask = np.ones(response.size, dtype=bool)
        peaks, table = select_members(op, raster, 0, response, mask, np.inf, width, 1, 0.05)
        named = np.flatnonzero(table["member"])
        assert np.isin(named, members).sum() >= 18 and (~np.isin(named, members)).sum() <= 3, seed
        distance = np.abs(peaks[:, None] - centres[None, :])
        assert (distance.min(axis=0) <= 3).all(), seed  # every occurrence is among the chosen peaks
        assert (distance.min(axis=1) <= 3).mean() >= 0.7, seed  # and most chosen peaks are occurrences
        # the former rule (the top 5 peaks when none crosses the threshold) names fewer
        all_peaks, heights = masked_peaks(response, mask, width)
        former = membership_for_pattern(0, raster, all_peaks[np.argsort(heights)[::-1][:5]], width, 1, 0.05)
        assert former["member"].sum() < np.isin(named, members).sum(), seed


def test_select_members_with_no_peak_names_nobody():
    raster, op, response, _, _, width = _weakly_trained(0)
    peaks, table = select_members(op, raster, 0, response, np.zeros(response.size, dtype=bool), np.inf, width, 1, 0.05)
    assert peaks.size == 0 and not table["member"].any()
