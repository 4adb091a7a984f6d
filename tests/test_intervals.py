"""Tests for where detect() looks: ``intervals=`` (convseq_neo.io.intervals and the layout in convseq_neo.io.neo).

The intervals are laid end to end with guard gaps of W unobserved bins, so that no filter window and
no surrogate crosses an interval's edge, and occurrence times are mapped back to the recording's clock.
"""

from __future__ import annotations

import warnings

import neo
import numpy as np
import pytest
import quantities as pq

from convseq_neo.core.estimator import ConvSeq
from convseq_neo.core.significance import surrogate_bins
from convseq_neo.detect import detect
from convseq_neo.io.intervals import TimeMap, as_intervals, intersect_intervals
from convseq_neo.io.neo import RecordingWarning, plan_raster
from convseq_neo.raster import SpikeRaster
from convseq_neo.synthetic.evaluate import score_detections
from convseq_neo.synthetic.generate import plant_sequences, poisson_background

BIN = 5 * pq.ms
WIDTH = 200 * pq.ms
FAST = dict(max_epochs=200, min_epochs=50, n_surrogates=40, n_folds=3)
TOLERANCE_S = 0.05


@pytest.fixture(scope="module")
def rec():
    from _recordings import docstring_recording

    return docstring_recording()


@pytest.fixture(scope="module")
def cut(rec):
    """Intervals that cut the recording at its four widest gaps between occurrences (0.1 s apart, less than the
    width) and leave out the third piece: ``(intervals, true centres inside, true centres left out)``."""
    truth = rec.ground_truth
    centers = np.sort(truth.array_annotations["center"])
    gaps = np.argsort(np.diff(centers))[-4:]
    cuts = np.sort((centers[gaps] + centers[gaps + 1]) / 2)
    edges = np.concatenate([[0.0], cuts, [40.0]])
    pieces = [[edges[i] + (0.05 if i else 0.0), edges[i + 1] - (0.05 if i < 4 else 0.0)] for i in range(5)]
    left_out = pieces.pop(2)
    table = np.array(pieces)
    inside = np.array([np.any((table[:, 0] <= c) & (c < table[:, 1])) for c in centers])
    assert inside.sum() >= 8 and (~inside).sum() >= 2
    assert np.all((centers[~inside] > left_out[0]) & (centers[~inside] < left_out[1]))
    return table, centers[inside], centers[~inside]


def _inside(times, table) -> np.ndarray:
    times = np.asarray(times, dtype=float)
    return np.array([np.any((table[:, 0] <= t) & (t < table[:, 1])) for t in times], dtype=bool)


# ---------------------------------------------------------------------------------------------- validation
def test_as_intervals_accepts_every_form_and_merges():
    expected = [[0.5, 1.5], [2.0, 3.0]]
    epoch = neo.Epoch(times=[2.0, 0.5, 1.0] * pq.s, durations=[1.0, 0.5, 0.5] * pq.s)  # [0.5, 1) and [1, 1.5) touch
    assert as_intervals(epoch).tolist() == expected
    assert as_intervals([[2000.0, 3000.0], [500.0, 1500.0]] * pq.ms).tolist() == expected
    assert as_intervals(np.array([[2.0, 3.0], [0.5, 1.0], [0.8, 1.5]])).tolist() == expected
    assert as_intervals([2.0, 3.0]).tolist() == [[2.0, 3.0]]
    nap = pytest.importorskip("pynapple")
    assert as_intervals(nap.IntervalSet(start=[0.5, 2.0], end=[1.5, 3.0])).tolist() == expected


BAD_INTERVALS = [
    ([], ValueError, "no interval"),
    (np.zeros((0, 2)), ValueError, "no interval"),
    ([[1.0, 1.0]], ValueError, "stop > start"),
    ([[0.0, 2.0], [5.0, 3.0]], ValueError, r"intervals\[1\]"),
    ([[0.0, np.nan]], ValueError, "finite"),
    ([[0.0, np.inf]], ValueError, "finite"),
    (np.zeros((2, 3)), ValueError, "shape"),
    ([[0.0, 1.0]] * pq.Hz, ValueError, "time units"),
    (neo.Epoch(times=[1.0] * pq.s, durations=[0.0] * pq.s), ValueError, "stop > start"),
    ("0-1 s", TypeError, "intervals"),
    ({"start": 0}, TypeError, "intervals"),
    ([[30.0, 40.0]], ValueError, "outside the analysis window"),
]


@pytest.fixture
def no_work(monkeypatch):
    """Fail loudly if binning or fitting starts: validation must come first."""
    def refuse(*args, **kwargs):
        raise AssertionError("work started before validation finished")

    monkeypatch.setattr(SpikeRaster, "from_row_times", refuse)
    monkeypatch.setattr(ConvSeq, "fit", refuse)


def _trains(n=3, t_stop=20.0, seed=0):
    rng = np.random.default_rng(seed)
    return [neo.SpikeTrain(np.sort(rng.uniform(0, t_stop, 40)), t_stop=t_stop, units="s", name=f"u{i}")
            for i in range(n)]


@pytest.mark.parametrize(("intervals", "error", "match"), BAD_INTERVALS)
def test_bad_intervals_are_refused_before_any_work(no_work, intervals, error, match):
    with pytest.raises(error, match=match) as info:
        detect(_trains(), BIN, WIDTH, n_patterns=1, intervals=intervals)
    assert "intervals" in str(info.value)


def test_intervals_need_spike_times_and_several_need_a_width():
    trains = _trains()
    raster = plan_raster(trains, BIN).bin()
    with pytest.raises(TypeError, match="intervals need spike times"):
        detect(raster, None, WIDTH, n_patterns=1, intervals=[[0.0, 5.0]])
    with pytest.raises(TypeError, match="width"):
        plan_raster(trains, BIN, intervals=[[0.0, 5.0], [6.0, 8.0]])
    assert plan_raster(trains, BIN, intervals=[[1.0, 5.0]]).bin().shape == (3, 800)  # one interval: no guard needed


def test_intervals_partly_outside_the_window_are_clipped_with_a_warning():
    with pytest.warns(RecordingWarning, match="outside the analysis window"):
        plan = plan_raster(_trains(), BIN, width=WIDTH, intervals=[[-5.0, 4.0], [15.0, 25.0], [40.0, 50.0]])
    assert plan.time_map.start_s.tolist() == [0.0, 15.0] and plan.time_map.stop_s.tolist() == [4.0, 20.0]
    with warnings.catch_warnings():
        warnings.simplefilter("error", RecordingWarning)
        plan_raster(_trains(), BIN, width=WIDTH, intervals=[[0.0, 4.0], [15.0, 20.0]])  # inside: no warning


# ---------------------------------------------------------------------------------------------- layout
def test_layout_puts_width_unobserved_bins_between_intervals():
    trains = [neo.SpikeTrain([1.012, 1.997, 2.062, 2.5, 3.2] * pq.s, t_stop=4 * pq.s, name="a"),
              neo.SpikeTrain([0.5, 2.051] * pq.s, t_stop=4 * pq.s, name="b")]
    # the intervals are 50 ms apart, less than the 100 ms width
    plan = plan_raster(trains, BIN, width=100 * pq.ms, intervals=[[1.0, 2.0], [2.05, 3.0]])
    tmap = plan.time_map
    assert plan.width_bins == 20 and tmap.guard_bins == 20
    assert tmap.first_bin.tolist() == [0, 220] and tmap.n_bins.tolist() == [200, 190]
    raster = plan.bin()
    assert raster.shape == (2, 410) and raster.t_start_s == 1.0
    # each interval binned on its own grid from its own start; spikes outside every interval left out
    assert sorted(zip(raster.neuron_index.tolist(), raster.bin_index.tolist())) == [
        (0, 2), (0, 199), (0, 222), (0, 310), (1, 220)]
    assert raster.observed.tolist() == [[0, 0, 200], [0, 220, 410], [1, 0, 200], [1, 220, 410]]
    # no surrogate moves a spike into the guard gap or into the other interval
    moved = surrogate_bins(raster, 200, np.random.default_rng(0), "dither", dither=20)
    piece_of_spike = raster.bin_index >= 220
    assert np.all((moved >= 220) == piece_of_spike[None, :]) and np.all((moved < 200) | (moved >= 220))
    # analysis clock <-> recording clock
    piece, times = tmap.to_recording(raster.position_to_time(raster.bin_index))
    assert piece.tolist() == [0, 0, 1, 1, 1]
    assert np.allclose(times, [1.0125, 1.9975, 2.0625, 2.5025, 2.0525])
    assert np.allclose(tmap.to_analysis(tmap.to_recording([1.5, 2.3])[1]), [1.5, 2.3])


def test_observation_intervals_and_analysis_intervals_combine():
    trains = [neo.SpikeTrain([1.1, 1.7, 2.2] * pq.s, t_stop=4 * pq.s, name="a", obs_intervals=[[0.0, 1.5]]),
              neo.SpikeTrain([1.2, 2.2] * pq.s, t_stop=4 * pq.s, name="b")]
    raster = plan_raster(trains, BIN, width=100 * pq.ms, intervals=[[1.0, 2.0], [2.05, 3.0]]).bin()
    # "a" was observed only in [1.0, 1.5) of the intervals: its spikes at 1.7 and 2.2 s are left out
    assert raster.observed.tolist() == [[0, 0, 100], [1, 0, 200], [1, 220, 410]]
    assert sorted(zip(raster.neuron_index.tolist(), raster.bin_index.tolist())) == [(0, 20), (1, 40), (1, 250)]


def test_time_map_round_trips():
    tmap = TimeMap.layout([0, 0, 0], np.array([[0.0, 1.0], [3.0, 3.7], [10.0, 20.0]]), 0.01, guard_bins=7)
    rng = np.random.default_rng(0)
    original = np.concatenate([rng.uniform(a, b, 20) for a, b in [(0.0, 1.0), (3.0, 3.7), (10.0, 20.0)]])
    analysis = tmap.to_analysis(original)
    assert np.all(np.isfinite(analysis)) and np.all(np.diff(analysis[np.argsort(original)]) > 0)
    piece, back = tmap.to_recording(analysis)
    assert np.allclose(back, original) and np.all(piece >= 0)
    gaps = tmap.piece_start_s[1:] - 0.5 * tmap.guard_bins * tmap.bin_size_s  # the middle of each guard gap
    assert np.all(tmap.to_recording(gaps)[0] == -1)
    assert np.isnan(tmap.to_analysis([2.0])[0])
    assert intersect_intervals(np.array([[0.0, 1.0]]), np.array([[2.0, 3.0]])).shape == (0, 2)


# ---------------------------------------------------------------------------------------------- detection
def _interval_forms(table: np.ndarray, form: str):
    if form == "array":
        return table
    if form == "quantity":
        return table * 1000.0 * pq.ms
    if form == "epoch":
        return neo.Epoch(times=table[:, 0] * pq.s, durations=(table[:, 1] - table[:, 0]) * pq.s)
    if form == "intervalset":
        nap = pytest.importorskip("pynapple")
        return nap.IntervalSet(start=table[:, 0], end=table[:, 1])
    raise AssertionError(form)


@pytest.mark.parametrize("form", ["array", "epoch", "intervalset"])
def test_intervals_find_the_planted_sequence_inside_them(rec, cut, form):
    table, inside, left_out = cut
    result = detect(rec.spiketrains, BIN, WIDTH, n_patterns=1, intervals=_interval_forms(table, form), random_state=0,
                    **FAST)
    occ = result.occurrences
    centers = occ["center"].to_numpy(float)
    assert len(occ) and np.all(_inside(centers, table))  # on the recording's clock, inside the intervals
    assert np.all((occ["onset"] <= occ["center"]) & (occ["center"] <= occ["offset"]))
    scores = score_detections(centers, occ["pattern"].to_numpy(), inside, np.zeros(inside.size, int), TOLERANCE_S)
    assert scores.f1 >= 0.9, scores.per_pattern
    assert not np.any(np.abs(centers[:, None] - left_out[None, :]) < 0.5)  # nothing where we did not look
    assert np.all(_inside(result.candidates["center"], table))
    assert result.time_map.n_pieces == 4 and result.parameters["n_intervals"] == 4
    # mapped back from the core's bin positions, and forth again onto the laid-out raster
    core = result.model.occurrences_
    core = core[core["significant"].to_numpy(bool)]
    core_times = result.raster.position_to_time(core["center"].to_numpy(float))
    back = result.time_map.to_analysis_frame(occ)
    assert np.allclose(np.sort(back["center"]), np.sort(core_times[result.time_map.to_recording(core_times)[0] >= 0]))
    assert np.allclose(back["offset"] - back["onset"], occ["offset"] - occ["onset"])
    epoch = result.to_epoch()
    assert np.allclose(epoch.array_annotations["center"], centers)
    assert len(set(result.patterns[0].neurons) & set(rec.members[0])) >= 10
    # the spikes the occurrences are made of are labelled on the recording's clock
    labels = result.spike_labels()
    planted = sum(int(np.sum(occurrence >= 0)) for _, occurrence in labels)
    assert planted >= 0.6 * 12 * len(occ)


def test_quantity_intervals_lay_out_the_same_raster(rec, cut):
    table = cut[0]
    a = plan_raster(rec.spiketrains, BIN, width=WIDTH, intervals=table).bin()
    b = plan_raster(rec.spiketrains, BIN, width=WIDTH, intervals=_interval_forms(table, "quantity")).bin()
    assert a.shape == b.shape and (a.to_scipy() != b.to_scipy()).nnz == 0
    assert np.array_equal(a.observed, b.observed)


def test_t_start_t_stop_is_the_one_interval_case(rec):
    window = dict(t_start=5 * pq.s, t_stop=35 * pq.s)
    by_window = plan_raster(rec.spiketrains, BIN, width=WIDTH, **window).bin()
    by_interval = plan_raster(rec.spiketrains, BIN, width=WIDTH, intervals=[[5.0, 35.0]]).bin()
    assert by_window.shape == by_interval.shape and by_window.t_start_s == by_interval.t_start_s == 5.0
    assert (by_window.to_scipy() != by_interval.to_scipy()).nnz == 0 and by_interval.observed is None


def test_a_sequence_planted_only_outside_the_intervals_is_not_reported():
    """Pattern A occurs only inside [3k, 3k + 1.5) s, pattern B only outside: B must not be found."""
    background = poisson_background(30, 2 * pq.Hz, 0 * pq.s, 60 * pq.s, random_state=3)
    members = [np.arange(0, 12), np.arange(12, 24)]
    blocks = np.arange(20) * 3.0
    trains, truth = plant_sequences(background, members, lag_step=10 * pq.ms,
                                    occurrence_times=[(blocks + 0.6) * pq.s, (blocks + 2.1) * pq.s],
                                    participation=0.9, jitter=2 * pq.ms, random_state=4)
    table = np.stack([blocks, blocks + 1.5], axis=1)
    result = detect(trains, BIN, WIDTH, intervals=table, random_state=0, **FAST)  # as many patterns as are found
    occ = result.occurrences
    centers = occ["center"].to_numpy(float)
    assert np.all(_inside(centers, table))
    true_centers = np.asarray(truth.centers.rescale(pq.s).magnitude)
    in_a = true_centers[truth.pattern_id == 0]
    assert np.all(_inside(in_a, table)) and not np.any(_inside(true_centers[truth.pattern_id == 1], table))
    hits = score_detections(centers, occ["pattern"].to_numpy(), in_a, np.zeros(in_a.size, int), TOLERANCE_S)
    assert hits.f1 >= 0.9, hits.per_pattern
    in_b = true_centers[truth.pattern_id == 1]
    assert not np.any(np.abs(centers[:, None] - in_b[None, :]) < 0.5)
    for pattern in result.patterns:
        assert len(set(pattern.neurons.tolist()) & set(members[1].tolist())) <= 2
