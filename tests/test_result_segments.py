"""DetectionResult and its figures for results laid out from several intervals or segments (``result.time_map``).

Such a result has two clocks: the raster, responses, thresholds and ``t_start``/``t_stop`` are on the analysis clock of
the laid-out raster; the occurrences and every export on the recording's (each segment's own). These tests check that
the exports pick one segment's occurrences, that the figures draw the occurrences where they are on the laid-out raster,
and that ``find`` searches a new recording on its own clock.
"""

from __future__ import annotations

import copy
import json

import neo
import numpy as np
import pytest
import quantities as pq

from convseq_neo.detect import detect
from convseq_neo.io.intervals import TimeMap
from convseq_neo.plot import plot_responses
from convseq_neo.plot.figures import GUARD_GID, PIECE_LABEL_GID
from convseq_neo.result import OCCURRENCE_COLUMNS, DetectionResult

BIN = 5 * pq.ms
WIDTH = 200 * pq.ms
FAST = dict(max_epochs=200, min_epochs=50, n_surrogates=40, n_folds=3)
INTERVALS = np.array([[0.0, 15.0], [25.0, 40.0]])
TOLERANCE_S = 0.05


@pytest.fixture(scope="module")
def rec():
    from _recordings import docstring_recording

    return docstring_recording()


@pytest.fixture(scope="module")
def truth(rec) -> np.ndarray:
    return np.sort(np.asarray(rec.ground_truth.array_annotations["center"], dtype=float))


@pytest.fixture(scope="module")
def two_intervals(rec):
    """Detected in [0, 15) and [25, 40) s: on the analysis clock the second interval starts at 15.2 s."""
    return detect(rec.spiketrains, BIN, WIDTH, n_patterns=1, intervals=INTERVALS, random_state=0, **FAST)


def _block(trains, n_segments=2):
    """The recording cut into ``n_segments`` trials, each on its own clock from 0."""
    duration = float(trains[0].t_stop.rescale(pq.s).magnitude)
    length = duration / n_segments
    block = neo.Block()
    for index in range(n_segments):
        segment = neo.Segment(name=f"trial{index}")
        segment.spiketrains.extend([
            neo.SpikeTrain(t.magnitude[(t.magnitude >= index * length) & (t.magnitude < (index + 1) * length)]
                           - index * length, t_stop=length, units="s", name=t.name) for t in trains])
        block.segments.append(segment)
    return block


@pytest.fixture(scope="module")
def block(rec):
    return _block(rec.spiketrains)


@pytest.fixture(scope="module")
def two_segments(block):
    """Detected on a Block of two 20 s trials: on the analysis clock the second starts at 20.2 s."""
    return detect(block, BIN, WIDTH, n_patterns=1, random_state=0, **FAST)


def _only(container, item) -> bool:
    """Whether ``container`` holds exactly ``item`` (by identity: Neo objects compare element-wise)."""
    return len(container) == 1 and container[0] is item


def _same(a, b) -> bool:
    return len(a) == len(b) and all(x is y for x, y in zip(a, b))


def _near(times, targets, tolerance=TOLERANCE_S) -> np.ndarray:
    """Whether each of ``times`` lies within ``tolerance`` of one of ``targets``."""
    times, targets = np.asarray(times, float), np.asarray(targets, float)
    if not targets.size:
        return np.zeros(times.size, bool)
    return np.min(np.abs(times[:, None] - targets[None, :]), axis=1) <= tolerance


# ---------------------------------------------------------------------------------------------- attribute and clocks
def test_time_map_is_set_through_the_constructor(two_intervals):
    result = two_intervals
    assert isinstance(result.time_map, TimeMap) and result.time_map.n_pieces == 2
    # the same model and raster without a time map: occurrences stay on the analysis clock (the core's positions)
    plain = DetectionResult._from_model(result.model, result.raster, source=None, applied="fit")
    assert plain.time_map is None and plain.n_segments == 1
    core = result.model.occurrences_
    core_times = np.sort(result.raster.position_to_time(core.loc[core["significant"], "center"].to_numpy(float)))
    assert np.allclose(np.sort(plain.occurrences["center"]), core_times)
    # with it: rebuilt exactly as detect built it, the mapping done by the result itself
    again = DetectionResult._from_model(result.model, result.raster, source=None, applied="fit",
                                        time_map=result.time_map)
    assert again.occurrences.equals(result.occurrences) and again.candidates.equals(result.candidates)
    assert again.parameters["n_intervals"] == 2 and again.parameters["guard_bins"] == result.model.width
    # moving the occurrences back onto the raster gives the core's positions again
    moved = result.time_map.to_analysis_frame(result.occurrences)
    assert np.allclose(np.sort(moved["center"]), core_times[result.time_map.to_recording(core_times)[0] >= 0])
    with pytest.raises(TypeError, match="time_map"):
        DetectionResult(result.model, result.raster, result.model.occurrences_, result.responses, None, {},
                        time_map=INTERVALS)


def test_clocks_of_a_result_on_intervals(two_intervals, truth):
    result = two_intervals
    tmap = result.time_map
    # analysis clock: the raster's window, guard gap included
    assert float(result.t_start) == result.raster.t_start_s == 0.0
    assert float(result.t_stop) == pytest.approx(result.raster.t_stop_s)
    assert float(result.t_stop) == pytest.approx(30.0 + tmap.guard_bins * 0.005)
    assert result.responses.shape[1] - result.raster.n_bins in (0, 1)  # indexed by the laid-out raster's bins
    # recording clock: where the search was
    assert float(result.recording_t_start) == 0.0 and float(result.recording_t_stop) == 40.0
    assert np.allclose(result.searched_intervals().rescale(pq.s).magnitude, INTERVALS)
    occ = result.occurrences
    assert list(occ.columns) == OCCURRENCE_COLUMNS and result.n_segments == 1
    centers = occ["center"].to_numpy(float)
    inside = ((centers >= 0) & (centers < 15)) | ((centers >= 25) & (centers < 40))
    assert inside.all() and np.any(centers > float(result.t_stop))  # the second interval: past the analysis clock
    assert _near(centers, truth).mean() >= 0.9
    assert "2 interval(s)" in repr(result)


def test_one_segment_exports_take_no_or_segment_zero(two_intervals):
    result = two_intervals
    epoch = result.to_epoch()
    assert np.allclose(epoch.times.magnitude, result.occurrences["onset"])
    assert "occurrence" not in epoch.array_annotations and "segment_index" not in epoch.annotations
    assert np.array_equal(result.to_epoch(segment=0).times, epoch.times)
    with pytest.raises(ValueError, match=r"segment must be in \[0, 1\)"):
        result.to_epoch(segment=1)
    with pytest.raises(TypeError, match="segment must be an int"):
        result.to_epoch(segment=True)
    labels = result.spike_labels(segment=0)
    assert sum(int(np.sum(occurrence >= 0)) for _, occurrence in labels) >= 0.6 * 12 * len(result.occurrences)
    assert result.to_spade_dict(segment=0)["patterns"][0]["signature"][1] == len(result.occurrences)


# ---------------------------------------------------------------------------------------------- several segments
def test_exports_of_several_segments_need_a_segment(two_segments, block):
    result = two_segments
    assert result.n_segments == 2 and "segment" in result.occurrences
    calls = {"to_epoch": lambda: result.to_epoch(),
             "spike_labels": lambda: result.spike_labels(block.segments[0].spiketrains),
             "to_spade_dict": lambda: result.to_spade_dict(),
             "searched_intervals": lambda: result.searched_intervals()}
    for method, call in calls.items():
        with pytest.raises(ValueError, match=r"segment is required.*2 segments \(0, 1\)") as info:
            call()
        assert method in str(info.value)
    with pytest.raises(ValueError, match=r"segment must be in \[0, 2\)"):
        result.to_epoch(segment=2)
    with pytest.raises(TypeError, match="segments"):  # no single list of trains to default to
        result.spike_labels(segment=0)
    # recording clock per segment: each trial from 0 to 20 s
    assert np.allclose(result.recording_t_start.magnitude, [0.0, 0.0])
    assert np.allclose(result.recording_t_stop.magnitude, [20.0, 20.0])
    assert np.allclose(result.searched_intervals(segment=1).magnitude, [[0.0, 20.0]])


def test_to_epoch_of_one_segment(two_segments, rec):
    result = two_segments
    occ = result.occurrences
    rows = []
    for segment in (0, 1):
        epoch = result.to_epoch(segment=segment)
        mine = occ[occ["segment"] == segment]
        assert len(mine) and len(epoch) == len(mine) and epoch.annotations["segment_index"] == segment
        assert np.allclose(epoch.times.rescale(pq.s).magnitude, mine["onset"])
        assert np.allclose(epoch.array_annotations["center"], mine["center"])
        assert np.array_equal(epoch.array_annotations["occurrence"], mine.index.to_numpy())
        assert np.all((epoch.times.magnitude >= -0.2) & (epoch.times.magnitude < 20.2))
        rows.extend(epoch.array_annotations["occurrence"].tolist())
    assert sorted(rows) == list(range(len(occ)))


def test_annotate_puts_each_segments_epoch_into_its_segment(two_segments, block):
    result = two_segments
    target = copy.deepcopy(block)
    epochs, groups = result.annotate(target, label_spikes=True)
    occ = result.occurrences
    assert len(epochs) == 2
    for segment, epoch in enumerate(epochs):
        assert _only(target.segments[segment].epochs, epoch) and epoch.segment is target.segments[segment]
        assert len(epoch) == int(np.sum(occ["segment"] == segment))
        # the spikes of this segment are labelled with this segment's occurrences only
        ids = np.concatenate([np.asarray(train.array_annotations["convseq_occurrence"])
                              for train in target.segments[segment].spiketrains])
        used = np.unique(ids[ids >= 0])
        assert used.size >= 0.8 * len(epoch) and set(occ.loc[used, "segment"]) == {segment}
    assert _same(target.groups, groups) and len(groups) == result.n_patterns
    members = result.patterns[0].neurons
    expected = [target.segments[s].spiketrains[n] for s in (0, 1) for n in members]
    assert len(groups[0].spiketrains) == len(expected)
    assert all(a is b for a, b in zip(groups[0].spiketrains, expected))
    assert groups[0].annotations["object_segment"].tolist() == [0] * members.size + [1] * members.size


def test_annotate_checks_everything_before_adding(two_segments, block, rec):
    result = two_segments
    three = _block(rec.spiketrains, n_segments=4)
    three.segments.pop()
    with pytest.raises(ValueError, match="3 segment"):
        result.annotate(three)
    assert all(not segment.epochs for segment in three.segments) and not three.groups
    wrong = copy.deepcopy(block)
    wrong.segments[1].spiketrains.pop()
    with pytest.raises(ValueError, match="segment 1"):
        result.annotate(wrong)
    assert not wrong.segments[0].epochs and not wrong.groups  # segment 0 was fine, but nothing was added
    one = copy.deepcopy(block)
    with pytest.raises(ValueError, match="segment is required"):
        result.annotate(one.segments[1])
    epoch, groups = result.annotate(one.segments[1], segment=1)
    assert _only(one.segments[1].epochs, epoch) and not one.segments[0].epochs
    assert epoch.annotations["segment_index"] == 1 and len(one.groups) == len(groups) == result.n_patterns
    epoch, _ = result.annotate(one, segment=0)  # a Block and one segment
    assert _only(one.segments[0].epochs, epoch) and epoch.annotations["segment_index"] == 0


def test_spike_labels_and_spade_and_pynapple_of_one_segment(two_segments, block):
    result = two_segments
    occ = result.occurrences
    pattern = result.patterns[0]
    trains = block.segments[1].spiketrains
    labels = result.spike_labels(trains, segment=1)
    ids = np.concatenate([occurrence for _, occurrence in labels])
    assert ids.max() >= 0 and set(occ.loc[np.unique(ids[ids >= 0]), "segment"]) == {1}
    # a labelled spike sits at its occurrence's centre plus its neuron's lag, on segment 1's clock
    neuron, lag = pattern.neurons[0], float(pattern.lags.magnitude[0])
    spikes = trains[neuron].magnitude
    hit = labels[neuron][1] >= 0
    expected = occ.loc[labels[neuron][1][hit], "center"].to_numpy(float) + lag
    assert hit.any() and np.all(np.abs(spikes[hit] - expected) <= (result.model.lag_tolerance_ + 0.5) * 0.005 + 1e-9)
    spade = result.to_spade_dict(segment=1)
    mine = occ[(occ["segment"] == 1) & (occ["pattern"] == 0)]
    assert np.allclose(spade["patterns"][0]["times"].magnitude, np.sort(mine["onset"]))
    assert spade["patterns"][0]["signature"] == (pattern.size, len(mine)) and spade["parameters"]["segment_index"] == 1
    pytest.importorskip("pynapple")
    with pytest.raises(ValueError, match="segment is required"):
        result.to_pynapple()
    epochs = result.to_pynapple(segment=0)
    assert len(epochs) == int(np.sum(occ["segment"] == 0))
    assert np.allclose(np.sort(epochs.center), np.sort(occ.loc[occ["segment"] == 0, "center"]))


# ---------------------------------------------------------------------------------------------- figures
def _marks(ax, marker: str) -> np.ndarray:
    """x of every point drawn with ``marker`` in ``ax`` (the occurrence triangles, the peak circles)."""
    xs = [np.asarray(line.get_xdata(), float) for line in ax.lines if line.get_marker() == marker]
    return np.sort(np.concatenate(xs)) if xs else np.zeros(0)


def _check_marks_on_the_analysis_clock(result, raster_ax, response_ax):
    tmap = result.time_map
    moved = tmap.to_analysis_frame(result.occurrences)
    drawn = _marks(raster_ax, "^")
    assert drawn.size == len(result.occurrences)
    assert np.allclose(drawn, np.sort(moved["center"]))
    # the test could fail: on the recording's clock most of these marks would be elsewhere
    assert np.max(np.abs(np.sort(result.occurrences["center"]) - drawn)) > 5.0
    starts = tmap.piece_start_s
    stops = starts + tmap.n_bins * tmap.bin_size_s
    assert np.all(np.any((drawn[:, None] >= starts[None, :]) & (drawn[:, None] < stops[None, :]), axis=1))
    # guard gaps shaded where they are on the laid-out raster
    gaps = [patch for patch in raster_ax.patches if patch.get_gid() == GUARD_GID]
    assert len(gaps) == tmap.n_pieces - 1
    spans = sorted(tuple(np.round(patch.get_bbox().intervalx, 9)) for patch in gaps)
    assert np.allclose(spans, np.stack([stops[:-1], starts[1:]], axis=1))
    # each significant peak circle sits on the response curve at its peak: x on the analysis clock
    circles = [line for line in response_ax.lines if line.get_marker() == "o"]
    assert len(circles) == 1
    x, y = np.asarray(circles[0].get_xdata(), float), np.asarray(circles[0].get_ydata(), float)
    assert x.size == len(result.occurrences)
    index = np.rint(result.raster.time_to_position(x)).astype(int)
    assert np.allclose(result.responses[0, index], y)
    return [text.get_text() for text in raster_ax.texts if text.get_gid() == PIECE_LABEL_GID]


def test_plot_draws_occurrences_on_the_laid_out_raster(two_intervals):
    fig = two_intervals.plot()
    labels = _check_marks_on_the_analysis_clock(two_intervals, fig.axes[0], fig.axes[1])
    assert [label.strip() for label in labels] == ["0 s", "25 s"]
    assert "laid end to end" in fig.axes[0].get_xlabel() or "laid end to end" in fig.axes[1].get_xlabel()
    # zoomed on the second interval (analysis clock): its marks only
    zoom = two_intervals.plot(time_range=(15.2 * pq.s, 31 * pq.s)).axes[0]
    moved = two_intervals.time_map.to_analysis_frame(two_intervals.occurrences)
    assert np.allclose(_marks(zoom, "^"), np.sort(moved.loc[moved["center"] >= 15.2, "center"]))


def test_plot_of_several_segments(two_segments):
    fig = two_segments.plot()
    labels = _check_marks_on_the_analysis_clock(two_segments, fig.axes[0], fig.axes[1])
    assert [label.strip() for label in labels] == ["segment 0: 0 s", "segment 1: 0 s"]
    responses = plot_responses(two_segments, pattern=0).axes[0]
    assert np.allclose(_marks(responses, "o"), _marks(fig.axes[1], "o"))
    assert sum(patch.get_gid() == GUARD_GID for patch in responses.patches) == 1


# ---------------------------------------------------------------------------------------------- find
def test_find_searches_new_data_on_its_own_clock(two_intervals, rec, truth, block):
    result = two_intervals
    found = result.find(rec.spiketrains, random_state=0)  # the intervals are not carried over
    assert found.time_map is None and found.n_segments == 1
    assert float(found.t_start) == 0.0 and float(found.t_stop) == 40.0
    centers = found.occurrences["center"].to_numpy(float)
    gap = truth[(truth > 15.3) & (truth < 24.7)]  # in the part the filters were never trained on
    assert gap.size >= 2 and _near(gap, centers).mean() >= 0.8
    assert _near(centers, truth).mean() >= 0.9
    # with intervals passed: searched only there, times on the recording's clock
    inside = result.find(rec.spiketrains, intervals=[[10.0, 20.0], [30.0, 40.0]], random_state=0)
    assert inside.time_map.n_pieces == 2 and inside.parameters["applied"] == "find"
    centers = inside.occurrences["center"].to_numpy(float)
    assert len(centers) and np.all(((centers >= 10) & (centers < 20)) | ((centers >= 30) & (centers < 40)))
    expected = truth[((truth > 10.1) & (truth < 19.9)) | ((truth > 30.1) & (truth < 39.9))]
    assert _near(centers, truth).all() and _near(expected, centers).mean() >= 0.6
    # one interval over the whole window: what the search without intervals finds, with a time map of one piece
    whole = result.find(rec.spiketrains, intervals=[[0.0, 40.0]], random_state=0)
    assert whole.time_map.n_pieces == 1 and list(whole.occurrences.columns) == list(found.occurrences.columns)
    assert np.allclose(whole.occurrences[["center", "onset", "offset", "peak", "pvalue"]],
                       found.occurrences[["center", "onset", "offset", "peak", "pvalue"]])
    # a Block of two trials: each segment's occurrences on its own clock
    trials = result.find(block, random_state=0)
    assert trials.n_segments == 2 and set(trials.occurrences["segment"]) == {0, 1}
    assert np.all(trials.occurrences["center"].between(0.0, 20.0))
    with pytest.raises(ValueError, match="intervals"):
        result.find(rec.spiketrains, intervals=[[50.0, 60.0]])


# ---------------------------------------------------------------------------------------------- units matched by name
def _reversed_copy(block, segment=1):
    """A copy of ``block`` whose segment ``segment`` holds its trains in reverse order (the same train objects)."""
    copy_ = neo.Block()
    for index, source in enumerate(block.segments):
        seg = neo.Segment(name=source.name)
        trains = list(source.spiketrains)
        seg.spiketrains.extend(trains[::-1] if index == segment else trains)
        copy_.segments.append(seg)
    return copy_


def test_exports_match_each_segments_trains_by_name(two_segments, block):
    result = two_segments
    reversed_block = _reversed_copy(copy.deepcopy(block))
    ordered_block = copy.deepcopy(block)
    _, groups = result.annotate(reversed_block)
    _, expected = result.annotate(ordered_block)
    for group, want in zip(groups, expected):
        names = [train.name for train in group.spiketrains]
        assert names == [train.name for train in want.spiketrains]
        segment_of = group.annotations["object_segment"]
        members = [result.unit_names[n] for n in result.patterns[group.annotations["pattern_id"]].neurons]
        assert [n for n, s in zip(names, segment_of) if s == 1] == members  # not the reversed list's positions
        assert all(any(train is t for t in reversed_block.segments[1].spiketrains)
                   for train, s in zip(group.spiketrains, segment_of) if s == 1)
    # spike labels: one pair per train in the order given, the same labels as for the trains in order
    trains = list(block.segments[1].spiketrains)
    labels = result.spike_labels(trains[::-1], segment=1)
    wanted = result.spike_labels(trains, segment=1)[::-1]
    assert any((pattern >= 0).any() for pattern, _ in wanted)
    for (pattern, occurrence), (want_pattern, want_occurrence) in zip(labels, wanted):
        np.testing.assert_array_equal(pattern, want_pattern)
        np.testing.assert_array_equal(occurrence, want_occurrence)
    # other units: an error naming them, before anything is added
    renamed = [t.copy() for t in trains]
    renamed[3].name = "stranger"
    with pytest.raises(ValueError, match=f"missing \\['{trains[3].name}'\\]"):
        result.spike_labels(renamed, segment=1)
    with pytest.raises(ValueError, match="stranger"):
        result.to_groups(renamed)
    # unnamed trains of one segment stay positional
    unnamed = [neo.SpikeTrain(t.magnitude, t_stop=t.t_stop, units=t.units) for t in trains]
    assert len(result.to_groups(unnamed)[0].spiketrains) == result.patterns[0].size


def test_a_segment_outside_the_intervals_is_named_and_has_no_bounds(rec):
    from convseq_neo.io.neo import RecordingWarning

    block = neo.Block()
    for start, stop in ((0.0, 20.0), (20.0, 30.0)):  # 20 s and 10 s, each on its own clock from 0
        seg = neo.Segment()
        seg.spiketrains.extend([
            neo.SpikeTrain(t.magnitude[(t.magnitude >= start) & (t.magnitude < stop)] - start, t_stop=stop - start,
                           units="s", name=t.name) for t in rec.spiketrains])
        block.segments.append(seg)
    with pytest.warns(RecordingWarning, match=r"segment\(s\) 1 "):
        result = detect(block, BIN, WIDTH, n_patterns=1, intervals=[[12.0, 20.0]], random_state=0, **FAST)
    assert result.n_segments == 2
    start, stop = result.recording_t_start.magnitude, result.recording_t_stop.magnitude
    assert start[0] == 12.0 and stop[0] == 20.0 and np.isnan(start[1]) and np.isnan(stop[1])
    assert result.searched_intervals(segment=1).shape == (0, 2)
    params = result.parameters
    assert json.loads(params["recording_t_start_s"]) == [12.0, None]
    assert json.loads(params["recording_t_stop_s"]) == [20.0, None]
    assert json.loads(params["searched_intervals_s"]) == [[12.0, 20.0]]
    assert json.loads(params["searched_segments"]) == [0]
    assert set(result.occurrences["segment"]) <= {0}


def test_parameters_map_back_to_the_recordings_clock(two_intervals, two_segments):
    params = two_intervals.parameters
    assert params["t_start_s"] == 0.0 and params["t_stop_s"] > 30.0  # analysis clock: guard gap included
    assert params["recording_t_start_s"] == 0.0 and params["recording_t_stop_s"] == 40.0
    assert json.loads(params["searched_intervals_s"]) == INTERVALS.tolist()
    assert "searched_segments" not in params
    annotations = two_intervals.to_epoch().annotations
    assert json.loads(annotations["searched_intervals_s"]) == INTERVALS.tolist()
    assert all(isinstance(value, (str, int, float, bool)) for value in params.values())
    params = two_segments.parameters
    assert json.loads(params["recording_t_start_s"]) == [0.0, 0.0]
    assert json.loads(params["recording_t_stop_s"]) == [20.0, 20.0]
    assert json.loads(params["searched_segments"]) == [0, 1]
    assert json.loads(params["searched_intervals_s"]) == [[0.0, 20.0], [0.0, 20.0]]
