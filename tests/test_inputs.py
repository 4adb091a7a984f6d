"""Tests for detect()'s other inputs: spikeinterface sortings, pynapple TsGroups and multi-segment Neo Blocks.

spikeinterface and pynapple are optional: their tests are skipped when the package is missing.
"""

from __future__ import annotations

import copy

import neo
import numpy as np
import pytest
import quantities as pq

from convseq_neo.detect import detect
from convseq_neo.io.neo import plan_raster, to_raster
from convseq_neo.synthetic.evaluate import score_detections
from convseq_neo.synthetic.generate import sequence_recording

BIN = 5 * pq.ms
WIDTH = 200 * pq.ms
FAST = dict(max_epochs=200, min_epochs=50, n_surrogates=40, n_folds=3)
TOLERANCE_S = 0.05
FS = 30_000.0


@pytest.fixture(scope="module")
def rec():
    """30 neurons, 40 s, one planted pattern of 12 members, 20 occurrences (the docstrings' recording)."""
    return sequence_recording(n_neurons=30, members_per_pattern=12, duration=40 * pq.s, rate=2 * pq.Hz,
                              lag_step=10 * pq.ms, n_occurrences=20, jitter=2 * pq.ms, random_state=1)


def _truth(rec) -> np.ndarray:
    return np.asarray(rec.ground_truth.array_annotations["center"], dtype=float)


def _f1(centers, patterns, true_centers) -> float:
    return score_detections(np.asarray(centers, float), np.asarray(patterns), true_centers,
                            np.zeros(len(true_centers), int), TOLERANCE_S).f1


def _same_raster(a, b) -> bool:
    return a.shape == b.shape and a.t_start_s == b.t_start_s and (a.to_scipy() != b.to_scipy()).nnz == 0


# ---------------------------------------------------------------------------------------------- spikeinterface
def _sorting(trains, fs=FS, t_offset=0.0, n_segments=1):
    """A NumpySorting of the trains (unit ids "u0", "u1", ...); with several segments, the recording cut in equal
    parts, each on its own clock from 0."""
    si = pytest.importorskip("spikeinterface.core")
    duration = float(trains[0].t_stop.rescale(pq.s).magnitude)
    samples, labels = [], []
    for segment in range(n_segments):
        start, stop = segment * duration / n_segments, (segment + 1) * duration / n_segments
        times = [train.rescale(pq.s).magnitude for train in trains]
        s = np.concatenate([np.round((t[(t >= start) & (t < stop)] - start - t_offset) * fs) for t in times])
        lab = np.concatenate([np.full(np.count_nonzero((t >= start) & (t < stop)), f"u{i}") for i, t in
                              enumerate(times)])
        order = np.argsort(s, kind="stable")
        samples.append(s[order].astype(np.int64))
        labels.append(lab[order])
    return si.NumpySorting.from_samples_and_labels(samples, labels, sampling_frequency=fs,
                                                   unit_ids=[f"u{i}" for i in range(len(trains))])


def test_sorting_finds_the_planted_sequence(rec):
    sorting = _sorting(rec.spiketrains)
    result = detect(sorting, BIN, WIDTH, n_patterns=1, random_state=0, **FAST)
    assert result.unit_names == tuple(f"u{i}" for i in range(30))
    assert _f1(result.occurrences["center"], result.occurrences["pattern"], _truth(rec)) >= 0.9
    names = set(result.patterns[0].names)
    assert len(names & {f"u{i}" for i in rec.members[0]}) >= 10
    # the window: sample 0 to one sample after the last spike (no recording registered)
    last = max(float(train.magnitude.max()) for train in rec.spiketrains if train.size)
    assert float(result.t_start) == 0.0 and float(result.t_stop) == pytest.approx(last, abs=0.005)
    assert result.time_map is None
    # spike labels work from the converted trains
    assert sum(int(np.sum(p >= 0)) for p, _ in result.spike_labels()) > 0


def test_sorting_times_follow_its_clock_and_segments(rec):
    sorting = _sorting(rec.spiketrains, n_segments=2)
    with pytest.raises(ValueError, match="segment_index"):
        plan_raster(sorting, BIN, width=WIDTH, segment_index=2)
    with pytest.raises(TypeError, match="segment_index"):
        plan_raster(sorting, BIN, width=WIDTH, segment_index=1.0)
    one = plan_raster(sorting, BIN, width=WIDTH, segment_index=1)
    assert one.time_map is None and one.t_start_s == 0.0 and one.t_stop_s <= 20.0
    second_half = [train.time_slice(20 * pq.s, 40 * pq.s).time_shift(-20 * pq.s) for train in rec.spiketrains]
    expected = to_raster(second_half, BIN, t_start=0 * pq.s, t_stop=one.t_stop_s * pq.s)
    assert int(one.bin().counts.sum()) == int(expected.counts.sum())
    both = plan_raster(sorting, BIN, width=WIDTH)  # every segment, laid end to end like a Block's
    assert both.time_map.n_parts == 2 and both.time_map.part.tolist() == [0, 1]
    shifted = _sorting(rec.spiketrains)
    shifted.shift_times(100.0)
    plan = plan_raster(shifted, BIN, width=WIDTH)
    assert plan.t_start_s == 100.0 and plan.bin().t_start_s == 100.0


def test_segment_index_only_for_inputs_with_segments(rec):
    with pytest.raises(ValueError, match="segment_index"):
        plan_raster(rec.spiketrains, BIN, width=WIDTH, segment_index=0)


# ---------------------------------------------------------------------------------------------- pynapple
def _tsgroup(trains, support):
    nap = pytest.importorskip("pynapple")
    return nap.TsGroup({10 + i: nap.Ts(t=train.rescale(pq.s).magnitude) for i, train in enumerate(trains)},
                       time_support=nap.IntervalSet(start=support[:, 0], end=support[:, 1]))


def test_tsgroup_round_trip(rec):
    nap = pytest.importorskip("pynapple")
    from convseq_neo.io.pynapple import to_tsd

    group = _tsgroup(rec.spiketrains, np.array([[0.0, 40.0]]))
    result = detect(group, BIN, WIDTH, n_patterns=1, random_state=0, **FAST)
    assert result.unit_names == tuple(str(10 + i) for i in range(30))
    occ = result.occurrences
    assert _f1(occ["center"], occ["pattern"], _truth(rec)) >= 0.9
    tsd = to_tsd(result)
    assert isinstance(tsd, nap.Tsd) and len(tsd) == len(occ)
    assert np.allclose(tsd.t, occ["center"]) and np.array_equal(tsd.d, occ["pattern"].to_numpy())
    assert np.allclose(tsd.time_support.values, [[0.0, 40.0]])
    # the occurrences select the group's spikes around them, in pynapple
    members = [10 + int(n) for n in result.patterns[0].neurons]
    window = nap.IntervalSet(start=tsd.t - 0.1, end=tsd.t + 0.1)
    inside = sum(len(group[m].restrict(window)) for m in members)
    assert inside >= 0.6 * len(members) * len(occ)
    # a result of one segment takes segment=0 as DetectionResult's exports do; other segments are refused
    again = to_tsd(result, segment=0)
    assert np.array_equal(again.t, tsd.t) and np.array_equal(again.d, tsd.d)
    with pytest.raises(ValueError, match=r"segment must be in \[0, 1\)"):
        to_tsd(result, segment=1)
    with pytest.raises(TypeError, match="segment"):
        to_tsd(result, segment="0")
    with pytest.raises(TypeError, match="DetectionResult"):
        to_tsd(occ)


def test_tsgroup_time_support_is_where_to_look(rec):
    pytest.importorskip("pynapple")
    support = np.array([[0.0, 17.0], [17.1, 40.0]])
    group = _tsgroup(rec.spiketrains, support)
    plan = plan_raster(group, BIN, width=WIDTH)
    assert np.allclose(np.stack([plan.time_map.start_s, plan.time_map.stop_s], axis=1), support)
    assert plan.time_map.first_bin.tolist() == [0, 3400 + 40]
    # intervals given as well: intersected with the support
    plan = plan_raster(group, BIN, width=WIDTH, intervals=[[10.0, 30.0]])
    assert np.allclose(np.stack([plan.time_map.start_s, plan.time_map.stop_s], axis=1), [[10.0, 17.0], [17.1, 30.0]])
    result = detect(group, BIN, WIDTH, n_patterns=1, random_state=0, **FAST)
    centers = result.occurrences["center"].to_numpy(float)
    assert len(centers) and np.all(((centers >= 0) & (centers < 17)) | ((centers >= 17.1) & (centers < 40)))
    truth = _truth(rec)
    whole = ((truth >= 0.2) & (truth < 16.8)) | ((truth >= 17.3) & (truth < 39.8))  # far from the support's edges
    cut = truth[~whole]
    away = np.min(np.abs(centers[:, None] - cut[None, :]), axis=1, initial=np.inf) > 0.1
    assert _f1(centers[away], result.occurrences["pattern"].to_numpy()[away], truth[whole]) >= 0.9


# ---------------------------------------------------------------------------------------------- Neo Block
def _block(trains, n_segments=2, permute=False):
    """The recording cut into ``n_segments`` trials, each on its own clock from 0 (so the trials' clocks overlap)."""
    duration = float(trains[0].t_stop.rescale(pq.s).magnitude)
    length = duration / n_segments
    block = neo.Block()
    for index in range(n_segments):
        segment = neo.Segment(name=f"trial{index}")
        cut = [neo.SpikeTrain(t.magnitude[(t.magnitude >= index * length) & (t.magnitude < (index + 1) * length)]
                              - index * length, t_stop=length, units="s", name=t.name) for t in trains]
        if permute and index:
            cut = cut[::-1]
        segment.spiketrains.extend(cut)
        block.segments.append(segment)
    return block


def test_one_segment_block_is_that_segment(rec):
    block = neo.Block()
    block.segments.append(neo.Segment())
    block.segments[0].spiketrains.extend(copy.deepcopy(rec.spiketrains))
    a = plan_raster(block, BIN, width=WIDTH)
    b = plan_raster(block.segments[0], BIN, width=WIDTH)
    assert a.time_map is None and a.source is block.segments[0] and _same_raster(a.bin(), b.bin())
    with pytest.raises(TypeError, match="Block"):
        plan_raster(neo.Block(), BIN, width=WIDTH)


def test_multi_segment_block_finds_the_sequence_in_every_trial(rec):
    block = _block(rec.spiketrains, n_segments=2)
    result = detect(block, BIN, WIDTH, n_patterns=1, random_state=0, **FAST)
    occ = result.occurrences
    assert set(occ["segment"]) == {0, 1} and np.all(np.diff(occ["segment"].to_numpy()) >= 0)
    centers = occ["center"].to_numpy(float)
    assert np.all((centers >= 0) & (centers < 20))  # each on its own trial's clock
    truth = _truth(rec)
    true_segment = (truth >= 20).astype(int)
    # one clock for scoring: segment k's times moved by 100 k s
    assert _f1(centers + 100 * occ["segment"].to_numpy(), occ["pattern"], truth - 20 * true_segment
               + 100 * true_segment) >= 0.9
    tmap = result.time_map
    assert tmap.n_parts == 2 and tmap.first_bin.tolist() == [0, 4000 + 40] and result.raster.n_bins == 8040
    assert result.parameters["n_segments"] == 2
    assert len(set(result.patterns[0].neurons) & set(rec.members[0])) >= 10


def test_multi_segment_block_layout_and_units(rec):
    block = _block(rec.spiketrains, n_segments=4)
    raster = plan_raster(block, BIN, width=WIDTH).bin()
    assert raster.n_bins == 4 * 2000 + 3 * 40
    assert raster.n_spikes == sum(train.size for train in rec.spiketrains)
    # the units of later trials are matched by name, not position
    permuted = plan_raster(_block(rec.spiketrains, n_segments=4, permute=True), BIN, width=WIDTH).bin()
    assert _same_raster(raster, permuted) and permuted.unit_names == raster.unit_names
    # intervals apply on every trial's own clock
    plan = plan_raster(block, BIN, width=WIDTH, intervals=[[1.0, 9.0]])
    assert plan.time_map.part.tolist() == [0, 1, 2, 3] and np.allclose(plan.time_map.start_s, 1.0)
    assert plan.source is None
    plan = plan_raster(block, BIN, width=WIDTH, segment_index=2)
    assert plan.time_map is None and plan.source is block.segments[2]
    other = _block(rec.spiketrains, n_segments=2)
    other.segments[1].spiketrains[3].name = "stranger"
    with pytest.raises(ValueError, match="same units"):
        plan_raster(other, BIN, width=WIDTH)
    with pytest.raises(TypeError, match="width"):
        to_raster(block, BIN)
