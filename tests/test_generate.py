"""Tests for convseq_neo.synthetic.generate: synthetic recordings with planted sequences."""

from __future__ import annotations

import time

import neo
import numpy as np
import pytest
import quantities as pq

from convseq_neo.raster import SpikeRaster
from convseq_neo.synthetic.generate import (
    PlantedSequences,
    ReferenceRecipe,
    SyntheticRecording,
    plant_sequences,
    poisson_background,
    reference_recipe,
    sequence_recording,
    shuffle_isis,
    shuffle_isis_raster,
)


def _all_times(trains):
    return [np.asarray(train.rescale("s").magnitude) for train in trains]


def _isis(times):
    return np.sort(np.diff(np.sort(times)))


@pytest.fixture(scope="module")
def small_recording() -> SyntheticRecording:
    return sequence_recording(n_neurons=40, n_patterns=2, members_per_pattern=8, duration=30 * pq.s,
                              n_occurrences=10, participation=1.0, jitter=0 * pq.ms, time_warp=(0.8, 1.25),
                              random_state=3)


# ------------------------------------------------------------------ randomness
def test_same_seed_same_recording_pinned():
    """The recording for a seed is pinned: refactors of the generator must not change a single spike."""
    rec = sequence_recording(n_neurons=20, n_patterns=2, members_per_pattern=4, duration=10 * pq.s, n_occurrences=3,
                             participation=0.8, jitter=1 * pq.ms, time_warp=(0.9, 1.1), random_state=11)
    np.testing.assert_allclose(rec.truth.onsets.magnitude, [0.6502806636558383, 1.6365289583940246, 2.2046558113241077,
                                                            5.238083106926917, 9.044436553158638, 9.162896118032727],
                               rtol=0, atol=1e-15)
    np.testing.assert_array_equal(rec.truth.pattern_id, [0, 0, 1, 1, 0, 1])
    np.testing.assert_array_equal(rec.planted_spikes.neuron[:5], [0, 18, 1, 0, 18])
    assert len(rec.planted_spikes) == 17
    assert sum(len(t) for t in rec.spiketrains) == 1040
    assert float(np.sum([t.magnitude.sum() for t in rec.spiketrains])) == pytest.approx(5236.134395765551, abs=1e-9)


@pytest.mark.parametrize("make", [
    lambda seed: poisson_background(5, 10 * pq.Hz, 0 * pq.s, 5 * pq.s, random_state=seed),
    lambda seed: sequence_recording(n_neurons=20, members_per_pattern=5, duration=10 * pq.s, n_occurrences=5,
                                    random_state=seed).spiketrains,
])
def test_same_seed_same_spikes_different_seed_different(make):
    first, again, other = make(7), make(7), make(8)
    for a, b in zip(_all_times(first), _all_times(again)):
        np.testing.assert_array_equal(a, b)
    assert any(a.size != c.size or not np.array_equal(a, c) for a, c in zip(_all_times(first), _all_times(other)))


def test_generator_is_accepted_and_reproducible():
    a = sequence_recording(n_neurons=20, members_per_pattern=5, duration=10 * pq.s, n_occurrences=5,
                           random_state=np.random.default_rng(11))
    b = sequence_recording(n_neurons=20, members_per_pattern=5, duration=10 * pq.s, n_occurrences=5,
                           random_state=np.random.default_rng(11))
    np.testing.assert_array_equal(a.ground_truth.times.magnitude, b.ground_truth.times.magnitude)
    for x, y in zip(_all_times(a.spiketrains), _all_times(b.spiketrains)):
        np.testing.assert_array_equal(x, y)


def test_global_numpy_state_untouched():
    before = np.random.get_state()  # noqa: NPY002 - reading the legacy global state is the point
    background = poisson_background(5, 10 * pq.Hz, 0 * pq.s, 5 * pq.s, refractory_period=2 * pq.ms, random_state=1)
    shuffle_isis(background, random_state=2)
    shuffle_isis_raster(np.eye(5, 50, dtype=np.uint8), random_state=3)
    plant_sequences(background, [np.array([0, 1, 2])], n_occurrences=3, jitter=1 * pq.ms, time_warp=(0.9, 1.1),
                    random_state=4)
    sequence_recording(n_neurons=20, members_per_pattern=5, duration=5 * pq.s, n_occurrences=3, random_state=5)
    reference_recipe((np.random.default_rng(0).random((30, 500)) < 0.1).astype(np.uint8), seqlen=10, gap=100,
                     random_state=6)
    after = np.random.get_state()  # noqa: NPY002
    assert before[0] == after[0]
    np.testing.assert_array_equal(before[1], after[1])
    assert before[2:] == after[2:]


# ------------------------------------------------------------------ Poisson background
def test_poisson_background_rates_names_and_window():
    trains = poisson_background(50, 20 * pq.Hz, 1 * pq.s, 21 * pq.s, random_state=0)
    assert [train.name for train in trains[:3]] == ["unit0", "unit1", "unit2"]
    assert trains[4].annotations["unit_id"] == 4
    counts = np.array([train.size for train in trains])
    assert abs(counts.mean() / 20.0 - 20.0) < 1.0  # 20 Hz x 20 s, SE of the mean ~0.13 Hz
    for times in _all_times(trains):
        assert np.all(np.diff(times) > 0)
        assert times.min() >= 1.0 and times.max() < 21.0


def test_poisson_background_refractory_period_keeps_rate():
    trains = poisson_background(40, 50 * pq.Hz, 0 * pq.s, 20 * pq.s, refractory_period=5 * pq.ms, random_state=1)
    rate = np.mean([train.size for train in trains]) / 20.0
    assert abs(rate - 50.0) < 2.0
    assert min(np.diff(times).min() for times in _all_times(trains)) >= 0.005 - 1e-12
    # the dead time lowers the ISI coefficient of variation to 1 - rate * tau = 0.75
    isis = np.concatenate([np.diff(times) for times in _all_times(trains)])
    assert abs(isis.std() / isis.mean() - 0.75) < 0.05


def test_poisson_background_per_neuron_rates():
    trains = poisson_background(3, np.array([0.0, 5.0, 50.0]) * pq.Hz, 0 * pq.s, 100 * pq.s, random_state=2)
    assert trains[0].size == 0
    assert abs(trains[1].size / 100 - 5) < 1.5
    assert abs(trains[2].size / 100 - 50) < 4


def test_poisson_background_is_fast():
    start = time.perf_counter()
    trains = poisson_background(452, 2 * pq.Hz, 0 * pq.s, 900 * pq.s, random_state=0)
    assert time.perf_counter() - start < 3.0  # ~0.05 s in practice; generous for loaded CI machines
    assert len(trains) == 452


# ------------------------------------------------------------------ ISI shuffling
def test_shuffle_isis_preserves_counts_isis_and_metadata():
    source = poisson_background(20, 8 * pq.Hz, 0 * pq.s, 30 * pq.s, random_state=4)
    source[3] = neo.SpikeTrain([0.5, 0.6, 2.0] * pq.s, t_stop=30 * pq.s, name="unit3", quality="good")
    source[4] = neo.SpikeTrain([] * pq.s, t_stop=30 * pq.s, name="unit4")
    source[5] = neo.SpikeTrain([12.0] * pq.s, t_stop=30 * pq.s, name="unit5")
    shuffled = shuffle_isis(source, random_state=5)
    assert len(shuffled) == len(source)
    moved = 0
    for before, after in zip(source, shuffled):
        assert after.size == before.size  # so each rate is kept exactly
        assert after.name == before.name and after.annotations == before.annotations
        assert after.t_start == before.t_start and after.t_stop == before.t_stop
        times = after.magnitude
        assert np.all(np.diff(times) >= 0)
        if times.size:
            assert times.min() >= 0 and times.max() < 30
        if times.size > 1:
            np.testing.assert_allclose(_isis(times), _isis(before.magnitude), atol=1e-9)
        moved += int(not np.array_equal(times, before.magnitude))
    assert moved >= 18


def test_shuffle_isis_keeps_units_of_each_train():
    train = neo.SpikeTrain([10, 20, 45, 70] * pq.ms, t_start=0 * pq.ms, t_stop=100 * pq.ms)
    (out,) = shuffle_isis([train], random_state=0)
    assert out.units == pq.ms
    np.testing.assert_allclose(_isis(out.magnitude), [10, 25, 25])
    assert out.magnitude.min() >= 0 and out.magnitude.max() < 100


def test_shuffle_isis_raster_numpy_preserves_rows_and_isis():
    rng = np.random.default_rng(0)
    raster = (rng.random((30, 2000)) < 0.02).astype(np.uint8)
    shuffled = shuffle_isis_raster(raster, random_state=1)
    assert isinstance(shuffled, np.ndarray) and shuffled.dtype == raster.dtype and shuffled.shape == raster.shape
    np.testing.assert_array_equal(shuffled.sum(axis=1), raster.sum(axis=1))
    assert shuffled.max() == 1
    for row_before, row_after in zip(raster, shuffled):
        np.testing.assert_array_equal(_isis(np.flatnonzero(row_after)), _isis(np.flatnonzero(row_before)))
    assert not np.array_equal(shuffled, raster)


def test_shuffle_isis_raster_counts_and_sparse_type():
    dense = np.zeros((3, 50), dtype=np.int64)
    dense[0, [3, 3, 10, 40]] = [2, 2, 1, 3]  # fancy assignment: bin 3 gets 2
    dense[1, 7] = 1
    sparse = SpikeRaster.from_dense(dense, bin_size_s=0.01, t_start_s=2.0, unit_names=["a", "b", "c"])
    out = shuffle_isis_raster(sparse, random_state=2)
    assert isinstance(out, SpikeRaster)
    assert out.shape == sparse.shape and out.bin_size_s == 0.01 and out.t_start_s == 2.0
    assert out.unit_names == ("a", "b", "c")
    out_dense = out.to_dense()
    np.testing.assert_array_equal(out_dense.sum(axis=1), dense.sum(axis=1))
    expanded_before = np.repeat(np.arange(50), dense[0])
    expanded_after = np.repeat(np.arange(50), out_dense[0])
    np.testing.assert_array_equal(_isis(expanded_after), _isis(expanded_before))
    dense_out = shuffle_isis_raster(dense, random_state=2)
    np.testing.assert_array_equal(dense_out, out_dense)  # same draws for either input type


# ------------------------------------------------------------------ planting
def test_every_planted_spike_is_in_the_output():
    background = poisson_background(30, 5 * pq.Hz, 0 * pq.s, 20 * pq.s, random_state=0)
    members = [np.array([0, 5, 9, 12]), np.array([12, 9, 5, 0]), np.array([3, 5, 20, 21, 22])]
    trains, truth = plant_sequences(background, members, lag_step=20 * pq.ms, n_occurrences=[4, 4, 3],
                                    jitter=3 * pq.ms, participation=0.8, time_warp=(0.8, 1.25), random_state=1)
    assert isinstance(truth, PlantedSequences)
    assert len(truth.planted) > 0
    for neuron, train in enumerate(trains):
        times = train.magnitude
        assert np.all(np.diff(times) >= 0)
        assert np.all(times >= 0) and np.all(times < 20)
        planted_here = truth.planted.times_s[truth.planted.neuron == neuron]
        assert np.all(np.isin(planted_here, times))
        assert np.all(np.isin(background[neuron].magnitude, times))
        assert times.size == background[neuron].size + planted_here.size
        pattern = train.array_annotations["planted_pattern"]
        assert int((pattern >= 0).sum()) == planted_here.size
        np.testing.assert_array_equal(np.sort(times[pattern >= 0]), np.sort(planted_here))
        assert train.name == background[neuron].name
        assert train.annotations["unit_id"] == neuron


def test_spikes_leaving_the_window_are_dropped_and_recorded():
    background = poisson_background(10, 1 * pq.Hz, 0 * pq.s, 2 * pq.s, random_state=0)
    onsets = [np.array([0.05, 1.95]) * pq.s]
    trains, truth = plant_sequences(background, [np.arange(10)], lag_step=10 * pq.ms, occurrence_times=onsets,
                                    random_state=1)
    np.testing.assert_allclose(truth.onsets.magnitude, [0.05, 1.95])
    # second occurrence: members at 1.95 + 0.01 i, so members 5..9 (>= 2 s) fall outside
    assert len(truth.dropped) == 5
    assert np.all(truth.dropped.times_s >= 2.0) and np.all(truth.dropped.occurrence == 1)
    assert len(truth.planted) == 15
    assert all(train.magnitude.max(initial=0) < 2.0 for train in trains)


def test_ground_truth_epoch_consistent_with_members_and_lags(small_recording):
    rec = small_recording
    epoch = rec.ground_truth
    assert isinstance(epoch, neo.Epoch)
    assert len(epoch) == 20  # 10 occurrences of each of 2 patterns
    onsets = epoch.times.rescale("s").magnitude
    assert np.all(np.diff(onsets) > 0)
    pattern_id = epoch.array_annotations["pattern_id"]
    assert np.issubdtype(pattern_id.dtype, np.integer)
    assert np.bincount(pattern_id).tolist() == [10, 10]
    centers = epoch.array_annotations["center"]
    warps = epoch.array_annotations["warp"]
    spikes = rec.planted_spikes
    assert len(spikes) == 20 * 8  # participation 1, nothing near the edges
    for p in range(2):
        lags = rec.lags[p].rescale("s").magnitude
        assert abs(lags.sum()) < 1e-12
        np.testing.assert_allclose(np.diff(lags), 0.005)  # linear default lag_step 5 ms
    for k in range(len(epoch)):
        p = pattern_id[k]
        lags = rec.lags[p].rescale("s").magnitude
        mine = spikes.occurrence == k
        assert np.all(spikes.pattern_id[mine] == p)
        np.testing.assert_array_equal(spikes.neuron[mine], rec.members[p][spikes.member[mine]])
        # jitter 0: member i fires exactly at center + warp * lag_i
        np.testing.assert_allclose(spikes.times_s[mine], centers[k] + warps[k] * lags[spikes.member[mine]], atol=1e-12)
        assert abs(onsets[k] - spikes.times_s[mine].min()) < 1e-12
        np.testing.assert_allclose(epoch.durations[k].rescale("s").magnitude, np.ptp(spikes.times_s[mine]), atol=1e-12)
        np.testing.assert_allclose(centers[k], onsets[k] + np.mean(spikes.times_s[mine] - onsets[k]), atol=1e-12)


def test_occurrences_of_different_patterns_do_not_overlap_and_min_gap_holds():
    background = poisson_background(30, 2 * pq.Hz, 0 * pq.s, 30 * pq.s, random_state=0)
    members = [np.arange(10), np.arange(10, 20), np.arange(20, 30)]
    for placement in ("random", "grid"):
        _, truth = plant_sequences(background, members, lag_step=10 * pq.ms, n_occurrences=15,
                                   min_gap=300 * pq.ms, placement=placement, time_warp=(0.5, 2.0), random_state=1)
        onsets = truth.onsets.magnitude
        ends = onsets + truth.spans.magnitude
        assert truth.n_occurrences == 45
        assert np.all(onsets[1:] - ends[:-1] >= 0.3 - 1e-9)
        assert onsets[0] >= 0 and ends[-1] <= 30


def test_occurrences_that_do_not_fit_raise():
    background = poisson_background(10, 2 * pq.Hz, 0 * pq.s, 1 * pq.s, random_state=0)
    with pytest.raises(ValueError, match="n_occurrences"):
        plant_sequences(background, [np.arange(10)], lag_step=10 * pq.ms, n_occurrences=20, min_gap=100 * pq.ms)
    with pytest.raises(ValueError, match="n_occurrences"):
        plant_sequences(background, [np.arange(10)], lag_step=10 * pq.ms, n_occurrences=20, placement="grid")


def test_grid_placement_is_regular_and_interleaved():
    background = poisson_background(20, 2 * pq.Hz, 0 * pq.s, 10 * pq.s, random_state=0)
    _, truth = plant_sequences(background, [np.arange(5), np.arange(5, 10)], lag_step=10 * pq.ms, n_occurrences=5,
                               placement="grid", random_state=0)
    np.testing.assert_allclose(np.diff(truth.onsets.magnitude), 1.0)
    assert truth.pattern_id.tolist() == [0, 1] * 5


def test_default_occurrences_fill_the_grid():
    background = poisson_background(20, 2 * pq.Hz, 0 * pq.s, 10 * pq.s, random_state=0)
    _, truth = plant_sequences(background, [np.arange(11)], lag_step=10 * pq.ms, placement="grid", random_state=0)
    assert truth.n_occurrences == 50  # span 0.1 s + default min_gap 0.1 s -> 10 s / 0.2 s


def test_participation_matches_observed_fraction():
    rec = sequence_recording(n_neurons=60, members_per_pattern=30, duration=60 * pq.s, n_occurrences=40,
                             participation=0.6, jitter=0 * pq.ms, random_state=5)
    observed = len(rec.planted_spikes) / (40 * 30)
    assert abs(observed - 0.6) < 0.05  # SE ~0.014
    assert rec.truth.n_skipped == 40 * 30 - len(rec.planted_spikes)


def test_per_member_participation():
    background = poisson_background(10, 1 * pq.Hz, 0 * pq.s, 20 * pq.s, random_state=0)
    _, truth = plant_sequences(background, [np.arange(4)], n_occurrences=30,
                               participation=[np.array([1.0, 0.0, 1.0, 0.5])], random_state=0)
    per_member = np.bincount(truth.planted.member, minlength=4)
    assert per_member[0] == 30 and per_member[1] == 0 and per_member[2] == 30
    assert 5 < per_member[3] < 25


def test_layouts():
    disjoint = sequence_recording(n_neurons=60, n_patterns=3, members_per_pattern=10, duration=10 * pq.s,
                                  n_occurrences=2, random_state=0)
    all_members = np.concatenate(disjoint.members)
    assert np.unique(all_members).size == 30

    reverse = sequence_recording(n_neurons=40, n_patterns=2, members_per_pattern=10, layout="reverse",
                                 duration=10 * pq.s, n_occurrences=3, jitter=0 * pq.ms, participation=1.0,
                                 random_state=1)
    np.testing.assert_array_equal(reverse.members[1], reverse.members[0][::-1])
    # in the data, pattern 1's occurrences fire the neurons of pattern 0 in reverse order
    spikes = reverse.planted_spikes
    for k in np.flatnonzero(reverse.pattern_ids == 1):
        mine = spikes.occurrence == k
        order = spikes.neuron[mine][np.argsort(spikes.times_s[mine])]
        np.testing.assert_array_equal(order, reverse.members[0][::-1])

    overlapping = sequence_recording(n_neurons=40, n_patterns=2, members_per_pattern=10, layout="overlapping",
                                     overlap=0.3, duration=10 * pq.s, n_occurrences=2, random_state=2)
    assert np.intersect1d(overlapping.members[0], overlapping.members[1]).size == 3
    assert all(np.unique(m).size == 10 for m in overlapping.members)


def test_members_are_random_and_seeded():
    a = sequence_recording(n_neurons=100, members_per_pattern=10, duration=5 * pq.s, n_occurrences=2, random_state=0)
    b = sequence_recording(n_neurons=100, members_per_pattern=10, duration=5 * pq.s, n_occurrences=2, random_state=0)
    np.testing.assert_array_equal(a.members[0], b.members[0])
    assert not np.array_equal(a.members[0], np.arange(10))


def test_time_warp_changes_spans():
    background = poisson_background(20, 1 * pq.Hz, 0 * pq.s, 60 * pq.s, random_state=0)
    members = [np.arange(11)]
    _, plain = plant_sequences(background, members, lag_step=10 * pq.ms, n_occurrences=30, random_state=1)
    np.testing.assert_allclose(plain.spans.magnitude, 0.1)
    _, warped = plant_sequences(background, members, lag_step=10 * pq.ms, n_occurrences=30, time_warp=(0.5, 2.0),
                                random_state=1)
    spans = warped.spans.magnitude
    assert spans.min() >= 0.05 - 1e-12 and spans.max() <= 0.2 + 1e-12
    assert spans.std() > 0.01
    np.testing.assert_allclose(spans, 0.1 * warped.warps)
    factors = np.linspace(0.5, 1.5, 30)
    _, explicit = plant_sequences(background, members, lag_step=10 * pq.ms, n_occurrences=30,
                                  time_warp=factors, random_state=1)
    np.testing.assert_allclose(np.sort(explicit.warps), factors)
    np.testing.assert_allclose(explicit.warps, factors)  # one pattern: listed in time order


def test_custom_lags_and_explicit_overlapping_times():
    background = poisson_background(10, 1 * pq.Hz, 0 * pq.s, 10 * pq.s, random_state=0)
    lags = [np.array([30.0, 0.0, 10.0]) * pq.ms, np.array([5.0, 0.0]) * pq.ms]
    times = [np.array([1.0, 5.0]) * pq.s, np.array([1.01]) * pq.s]
    trains, truth = plant_sequences(background, [np.array([1, 2, 3]), np.array([2, 3])], lags=lags,
                                    occurrence_times=times, random_state=0)
    assert truth.pattern_id.tolist() == [0, 1, 0]
    np.testing.assert_allclose(truth.onset_lags[0].magnitude, [0.03, 0.0, 0.01])
    np.testing.assert_allclose(truth.lags[0].magnitude, [0.03 - 0.04 / 3, -0.04 / 3, 0.01 - 0.04 / 3])
    first = truth.planted.occurrence == 0
    np.testing.assert_allclose(np.sort(truth.planted.times_s[first]), [1.0, 1.01, 1.03])
    np.testing.assert_allclose(truth.centers.magnitude, [1.0 + 0.04 / 3, 1.01 + 0.0025, 5.0 + 0.04 / 3])


def test_recording_raster_and_bins(small_recording):
    rec = small_recording
    raster = rec.raster
    assert isinstance(raster, SpikeRaster)
    assert raster.shape == (40, 6000)
    assert raster.bin_size_s == pytest.approx(0.005)
    assert raster.unit_names[0] == "unit0"
    assert raster.n_spikes == sum(train.size for train in rec.spiketrains)
    # ground truth is on the core's axis: position b is the middle of bin b
    centers_bins = rec.centers_bins()
    np.testing.assert_allclose(raster.position_to_time(centers_bins), rec.ground_truth.array_annotations["center"])
    np.testing.assert_allclose(raster.position_to_time(rec.onsets_bins()), rec.ground_truth.times.magnitude)
    np.testing.assert_allclose(centers_bins, rec.ground_truth.array_annotations["center"] / 0.005 - 0.5)
    # a spike exactly at a centre lands in the bin nearest to that position
    np.testing.assert_array_equal(np.floor(rec.ground_truth.array_annotations["center"] / 0.005),
                                  np.round(centers_bins))
    assert rec.centers_bins(pattern_id=1).size == 10
    # every planted spike's bin holds a spike of its neuron
    spikes = rec.planted_spikes
    bins = np.floor(spikes.times_s / 0.005).astype(int)
    dense = raster.to_dense()
    assert np.all(dense[spikes.neuron, bins] >= 1)
    with pytest.raises(ValueError, match="pattern_id"):
        rec.centers_bins(pattern_id=5)


def test_recording_with_t_start_offset():
    rec = sequence_recording(n_neurons=20, members_per_pattern=5, duration=10 * pq.s, t_start=100 * pq.s,
                             n_occurrences=4, random_state=0)
    assert rec.t_start == 100 * pq.s and rec.t_stop == 110 * pq.s
    assert all(train.t_start == 100 * pq.s for train in rec.spiketrains)
    # positions run from -0.5 (left edge of bin 0) to n_bins - 0.5 (right edge of the last bin)
    assert np.all((rec.onsets_bins() >= -0.5) & (rec.onsets_bins() < rec.raster.n_bins - 0.5))
    np.testing.assert_allclose(rec.raster.position_to_time(rec.onsets_bins()), rec.ground_truth.times.magnitude)


def test_sequence_recording_is_fast():
    start = time.perf_counter()
    rec = sequence_recording(n_neurons=452, n_patterns=2, members_per_pattern=50, duration=900 * pq.s,
                             rate=1 * pq.Hz, n_occurrences=100, random_state=0)
    assert time.perf_counter() - start < 5.0  # ~0.2 s in practice
    assert len(rec.ground_truth) == 200


# ------------------------------------------------------------------ the paper's recipe
def _sparse_background(seed=0, shape=(80, 4000), p=0.02):
    return (np.random.default_rng(seed).random(shape) < p).astype(np.uint8)


def test_reference_recipe_preserves_total_count_and_counts_survivors():
    background = _sparse_background()
    recipe = reference_recipe(background, seqlen=30, p_drop=0.2, gap=300, jitter_std=3, random_state=1)
    assert isinstance(recipe, ReferenceRecipe)
    out = recipe.raster
    assert out.shape == background.shape and out.dtype == background.dtype
    assert int(out.sum()) == int(background.sum())  # each added spike removed a background spike
    # the population count per bin is unchanged too
    np.testing.assert_array_equal(out.sum(axis=0), background.sum(axis=0))
    assert recipe.n_occurrences == len(range(0, 4000 - 300, 300))
    n_added = recipe.planted_neurons.size
    assert recipe.surviving_fraction == pytest.approx(n_added / (30 * recipe.n_occurrences))
    assert np.all(out[recipe.planted_neurons, recipe.planted_bins] == 1)
    assert set(recipe.planted_neurons.tolist()) <= set(recipe.members.tolist())
    # member rows gained exactly the added spikes; the others lost exactly as many
    original_rows = recipe.permutation[recipe.members]
    gained = int(out[recipe.members].sum()) - int(background[original_rows].sum())
    assert gained == n_added
    np.testing.assert_array_equal(out, recipe.raster)
    # rows were permuted: row r of the output is row permutation[r] of the embedded raster
    non_members = np.setdiff1d(np.arange(80), recipe.members)
    assert np.all(out[non_members] <= background[recipe.permutation[non_members]])
    np.testing.assert_allclose(recipe.midpoints_bins, recipe.onsets_bins + 14.5)
    np.testing.assert_allclose(recipe.lags_bins, np.arange(30) - 14.5)
    assert recipe.surviving_fraction < 0.8


def test_reference_recipe_planted_spikes_follow_the_sequence():
    background = _sparse_background(seed=2, p=0.2)  # dense enough that most spikes survive
    recipe = reference_recipe(background, seqlen=20, p_drop=0.0, gap=200, jitter_std=0, random_state=3)
    # a member spike is either added or lands on a cell already holding a background spike
    n_total = 20 * recipe.n_occurrences
    assert recipe.planted_neurons.size + recipe.n_coincident > 0.95 * n_total
    assert recipe.surviving_fraction == pytest.approx(recipe.planted_neurons.size / n_total)
    position = {int(row): i for i, row in enumerate(recipe.members)}
    offsets = recipe.planted_bins - recipe.onsets_bins[recipe.planted_occurrence]
    members_pos = np.array([position[int(row)] for row in recipe.planted_neurons])
    np.testing.assert_array_equal(offsets, members_pos)  # no jitter: member i at start + i


def test_reference_recipe_without_non_member_spikes_adds_nothing():
    background = np.zeros((20, 600), dtype=np.uint8)
    background[:, ::7] = 1
    recipe = reference_recipe(background, seqlen=20, p_drop=0.0, gap=100, jitter_std=1, random_state=0)
    assert recipe.surviving_fraction == 0.0
    assert int(recipe.raster.sum()) == int(background.sum())


def test_reference_recipe_is_reproducible():
    background = _sparse_background(seed=4)
    a = reference_recipe(background, seqlen=10, gap=200, random_state=9)
    b = reference_recipe(background, seqlen=10, gap=200, random_state=9)
    np.testing.assert_array_equal(a.raster, b.raster)
    np.testing.assert_array_equal(a.members, b.members)
    c = reference_recipe(background, seqlen=10, gap=200, random_state=10)
    assert not np.array_equal(a.raster, c.raster)


@pytest.mark.slow
def test_reference_recipe_on_shuffled_ca1(ca1_raster):
    raster = ca1_raster
    assert raster.shape == (452, 18137)
    background = shuffle_isis_raster(raster, random_state=0)
    np.testing.assert_array_equal(background.sum(axis=1), raster.sum(axis=1))
    recipe = reference_recipe(background, random_state=0)
    assert recipe.n_occurrences == 45
    assert recipe.members.size == 120
    assert int(recipe.raster.sum()) == int(raster.sum())
    # the quirk: far fewer sequence spikes survive than 1 - p_drop = 0.9 suggests (~0.34 measured)
    assert 0.2 < recipe.surviving_fraction < 0.5
    np.testing.assert_allclose(recipe.midpoints_bins[:2], [59.5, 459.5])


# ------------------------------------------------------------------ argument checks
_BG = [neo.SpikeTrain([0.1, 0.5] * pq.s, t_stop=2 * pq.s) for _ in range(5)]


@pytest.mark.parametrize(("call", "error", "name"), [
    (lambda: poisson_background(3, -1 * pq.Hz, 0 * pq.s, 1 * pq.s), ValueError, "rate"),
    (lambda: poisson_background(3, 5.0, 0 * pq.s, 1 * pq.s), TypeError, "rate"),
    (lambda: poisson_background(3, 5 * pq.s, 0 * pq.s, 1 * pq.s), ValueError, "rate"),
    (lambda: poisson_background(3, [1, 2] * pq.Hz, 0 * pq.s, 1 * pq.s), ValueError, "rate"),
    (lambda: poisson_background(3, 5 * pq.Hz, 0.0, 1 * pq.s), TypeError, "t_start"),
    (lambda: poisson_background(3, 5 * pq.Hz, 0 * pq.s, 1.0), TypeError, "t_stop"),
    (lambda: poisson_background(3, 5 * pq.Hz, 1 * pq.s, 1 * pq.s), ValueError, "t_stop"),
    (lambda: poisson_background(3, 5 * pq.Hz, 2 * pq.s, 1 * pq.s), ValueError, "t_stop"),
    (lambda: poisson_background(0, 5 * pq.Hz, 0 * pq.s, 1 * pq.s), ValueError, "n_neurons"),
    (lambda: poisson_background(3, 5 * pq.Hz, 0 * pq.s, 1 * pq.s, refractory_period=0.002), TypeError,
     "refractory_period"),
    (lambda: poisson_background(3, 500 * pq.Hz, 0 * pq.s, 1 * pq.s, refractory_period=2 * pq.ms), ValueError,
     "refractory_period"),
    (lambda: poisson_background(3, 5 * pq.Hz, 0 * pq.s, 1 * pq.s, random_state="x"), TypeError, "random_state"),
    (lambda: shuffle_isis([1, 2, 3]), TypeError, "spiketrains"),
    (lambda: shuffle_isis_raster([[0, 1]]), TypeError, "raster"),
    (lambda: shuffle_isis_raster(np.zeros(5)), ValueError, "raster"),
    (lambda: plant_sequences(_BG, [np.array([0, 1])], participation=1.5), ValueError, "participation"),
    (lambda: plant_sequences(_BG, [np.array([0, 1])], participation=[1.5]), ValueError, "participation"),
    (lambda: plant_sequences(_BG, [np.array([0, 1])], jitter=1.0), TypeError, "jitter"),
    (lambda: plant_sequences(_BG, [np.array([0, 1])], jitter=-1 * pq.ms), ValueError, "jitter"),
    (lambda: plant_sequences(_BG, [np.array([0, 1])], lag_step=0.01), TypeError, "lag_step"),
    (lambda: plant_sequences(_BG, [np.array([0, 1])], min_gap=0.1), TypeError, "min_gap"),
    (lambda: plant_sequences(_BG, [np.array([0, 7])]), ValueError, "members"),
    (lambda: plant_sequences(_BG, [np.array([0, 0])]), ValueError, "members"),
    (lambda: plant_sequences(_BG, [np.array([0, 1])], lags=[np.array([0.0, 1.0])]), TypeError, "lags"),
    (lambda: plant_sequences(_BG, [np.array([0, 1])], lags=[[0, 1, 2] * pq.ms]), ValueError, "lags"),
    (lambda: plant_sequences(_BG, [np.array([0, 1])], occurrence_times=[[5.0] * pq.s]), ValueError,
     "occurrence_times"),
    (lambda: plant_sequences(_BG, [np.array([0, 1])], occurrence_times=[np.array([0.5])]), TypeError,
     "occurrence_times"),
    (lambda: plant_sequences(_BG, [np.array([0, 1])], time_warp=(1.2, 0.8)), ValueError, "time_warp"),
    (lambda: plant_sequences(_BG, [np.array([0, 1])], time_warp=-1.0), ValueError, "time_warp"),
    (lambda: plant_sequences(_BG, [np.array([0, 1])], n_occurrences=3, time_warp=[1.0, 1.0]), ValueError,
     "time_warp"),
    (lambda: plant_sequences(_BG, [np.array([0, 1])], n_occurrences=-1), ValueError, "n_occurrences"),
    (lambda: plant_sequences(_BG, [np.array([0, 1])], placement="nowhere"), ValueError, "placement"),
    (lambda: sequence_recording(duration=60), TypeError, "duration"),
    (lambda: sequence_recording(bin_size=0.005), TypeError, "bin_size"),
    (lambda: sequence_recording(bin_size=0 * pq.ms), ValueError, "bin_size"),
    (lambda: sequence_recording(rate=-2 * pq.Hz), ValueError, "rate"),
    (lambda: sequence_recording(participation=1.2), ValueError, "participation"),
    (lambda: sequence_recording(n_neurons=10, members_per_pattern=20), ValueError, "members_per_pattern"),
    (lambda: sequence_recording(n_neurons=30, n_patterns=2, members_per_pattern=20), ValueError,
     "members_per_pattern"),
    (lambda: sequence_recording(layout="spiral"), ValueError, "layout"),
    (lambda: sequence_recording(overlap=2.0), ValueError, "overlap"),
    (lambda: sequence_recording(jitter=0.001), TypeError, "jitter"),
    (lambda: reference_recipe(np.zeros((10, 500)), seqlen=5, p_drop=1.5), ValueError, "p_drop"),
    (lambda: reference_recipe(np.zeros((10, 500)), seqlen=5, p_drop=-0.1), ValueError, "p_drop"),
    (lambda: reference_recipe(np.zeros((10, 500)), seqlen=11), ValueError, "seqlen"),
    (lambda: reference_recipe(np.zeros((10, 500)), seqlen=5, gap=500), ValueError, "gap"),
    (lambda: reference_recipe(np.zeros((10, 500)), seqlen=5, jitter_std=-1), ValueError, "jitter_std"),
    (lambda: reference_recipe(np.zeros(500), seqlen=5), ValueError, "background"),
    (lambda: reference_recipe([[0, 1]], seqlen=1), TypeError, "background"),
])
def test_bad_arguments_name_the_argument(call, error, name):
    with pytest.raises(error, match=name):
        call()


def test_mismatched_windows_are_rejected():
    trains = [neo.SpikeTrain([0.1] * pq.s, t_stop=2 * pq.s), neo.SpikeTrain([0.1] * pq.s, t_stop=3 * pq.s)]
    with pytest.raises(ValueError, match="spiketrains"):
        plant_sequences(trains, [np.array([0, 1])])


def test_evenly_planted_raster_plants_each_member_at_its_lag():
    from convseq_neo.synthetic.even_raster import evenly_planted_raster

    planted = evenly_planted_raster(10, background=0.0, participation=1.0, random_state=3)
    onsets = np.round(planted.centres - 4.5).astype(int)
    assert planted.raster.sum() == 10 * 20
    for onset in onsets:
        assert planted.raster[planted.members, onset + planted.lags].all()
    assert planted.raster.shape == (75, 555)


@pytest.mark.parametrize("kwargs, error, words", [({"n_occurrences": 0}, ValueError, "n_occurrences"),
                                                  ({"n_occurrences": 2.5}, TypeError, "n_occurrences"),
                                                  ({"n_occurrences": 5, "n_members": 80}, ValueError, "n_members"),
                                                  ({"n_occurrences": 5, "participation": 1.5}, ValueError,
                                                   "participation"),
                                                  ({"n_occurrences": 5, "span": 60}, ValueError, "span")])
def test_evenly_planted_raster_refuses_bad_arguments(kwargs, error, words):
    from convseq_neo.synthetic.even_raster import evenly_planted_raster

    with pytest.raises(error, match=words):
        evenly_planted_raster(**kwargs)
