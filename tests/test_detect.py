"""Tests for convseq_neo.detect: the Neo/Elephant front door and its Neo exports."""

from __future__ import annotations

import copy
import io
import sys

import neo
import numpy as np
import pandas as pd
import pytest
import quantities as pq
from elephant.conversion import BinnedSpikeTrain
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from matplotlib.figure import Figure
from neo.core.spiketrainlist import SpikeTrainList
from neo.io import NixIO, PickleIO

from convseq_neo.core.estimator import ConvSeq
from convseq_neo.detect import detect
from convseq_neo.raster import SpikeRaster
from convseq_neo.result import EPOCH_NAME, OCCURRENCE_COLUMNS, DetectionResult
from convseq_neo.synthetic.evaluate import score_detections
from convseq_neo.synthetic.generate import plant_sequences, poisson_background, sequence_recording

BIN = 5 * pq.ms
WIDTH = 300 * pq.ms
TOLERANCE_S = float(WIDTH.rescale(pq.s).magnitude) / 4  # W / 4
#: Small and fast: for checks of plumbing rather than of recovery.
FAST = dict(max_epochs=200, min_epochs=50, n_surrogates=40, n_folds=3)
#: Tiny: for the property test (only the documented exceptions may come out).
TINY = dict(max_epochs=5, min_epochs=0, n_surrogates=5, n_folds=2, n_init=1)


def _score(result: DetectionResult, rec) -> object:
    occ = result.occurrences
    truth = rec.ground_truth
    return score_detections(occ["center"].to_numpy(), occ["pattern"].to_numpy(), truth.array_annotations["center"],
                            truth.array_annotations["pattern_id"], TOLERANCE_S)


@pytest.fixture(scope="module")
def rec1(planted_one):
    return planted_one[0]


@pytest.fixture(scope="module")
def result1(planted_one):
    return planted_one[1]


@pytest.fixture(scope="module")
def small_rec():
    """A short recording that does not start at 0 s (checks the time base)."""
    return sequence_recording(n_neurons=30, members_per_pattern=12, duration=40 * pq.s, t_start=1000 * pq.s,
                              rate=2 * pq.Hz, lag_step=10 * pq.ms, n_occurrences=20, jitter=2 * pq.ms, random_state=1)


@pytest.fixture(scope="module")
def small_result(small_rec):
    # on the CPU: the input-type test below compares results bit for bit, which CUDA does not promise
    return detect(small_rec.spiketrains, BIN, 200 * pq.ms, n_patterns=1, random_state=0, device="cpu", **FAST)



# ---------------------------------------------------------------------------------------------- recovery
def test_one_planted_sequence_is_recovered(rec1, result1):
    scores = _score(result1, rec1)
    assert scores.f1 >= 0.9, scores.per_pattern
    members = set(result1.patterns[0].neurons.tolist())
    true_members = set(rec1.members[0].tolist())
    assert len(members & true_members) >= 0.9 * len(true_members)
    # the learned order follows the planted one
    order = [n for n in result1.patterns[0].neurons if n in true_members]
    true_rank = {n: i for i, n in enumerate(rec1.members[0])}
    ranks = [true_rank[n] for n in order]
    assert pd.Series(ranks).corr(pd.Series(range(len(ranks))), method="spearman") > 0.9


def test_two_planted_sequences_are_recovered(planted_two):
    rec, result = planted_two
    scores = _score(result, rec)
    assert scores.f1 >= 0.9, scores.per_pattern
    assert len(scores.assignment) == 2


def test_occurrence_times_follow_the_raster_time_base(small_rec, small_result):
    model, raster = small_result.model, small_result.raster
    occ = small_result.occurrences
    assert list(occ.columns) == OCCURRENCE_COLUMNS
    assert occ["center"].is_monotonic_increasing
    in_bins = model.occurrences_[model.occurrences_["significant"]].sort_values("center")
    expected = raster.t_start_s + (in_bins["center"].to_numpy() + 0.5) * raster.bin_size_s
    assert np.allclose(np.sort(occ["center"].to_numpy()), expected)
    assert np.all(occ["onset"] <= occ["center"]) and np.all(occ["center"] <= occ["offset"])
    assert occ["center"].min() > 1000.0
    scores = _score(small_result, small_rec)
    assert scores.f1 >= 0.9
    assert scores.median_abs_error < 1.5 * raster.bin_size_s  # bin middles, not left edges
    lags = small_result.patterns[0].lags
    assert str(lags.dimensionality) == "s" and abs(float(lags.magnitude.mean())) < 0.02


def test_every_input_type_gives_the_same_result(small_rec, small_result):
    trains = small_rec.spiketrains
    segment = neo.Segment()
    segment.spiketrains.extend(trains)
    times = np.concatenate([t.magnitude for t in trains])
    ids = np.concatenate([np.full(t.size, i) for i, t in enumerate(trains)])
    stl = SpikeTrainList.from_spike_time_array(times, ids, all_channel_ids=list(range(len(trains))),
                                               t_start=small_rec.t_start, t_stop=small_rec.t_stop, units="s")
    binned = BinnedSpikeTrain(trains, bin_size=BIN, t_start=small_rec.t_start, t_stop=small_rec.t_stop)
    inputs = {"segment": (segment, BIN), "spiketrainlist": (stl, BIN), "binned": (binned, None),
              "raster": (small_rec.raster, None)}
    expected = small_result.occurrences
    for label, (data, bin_size) in inputs.items():
        result = detect(data, bin_size, 200 * pq.ms, n_patterns=1, random_state=0, device="cpu", **FAST)
        pd.testing.assert_frame_equal(result.occurrences, expected, obj=label)


# ---------------------------------------------------------------------------------------------- exports
def test_epoch(result1):
    epoch = result1.to_epoch()
    occ = result1.occurrences
    assert epoch.name == EPOCH_NAME and len(epoch) == len(occ)
    assert np.allclose(epoch.times.rescale(pq.s).magnitude, occ["onset"])
    assert np.allclose(epoch.durations.rescale(pq.s).magnitude, occ["offset"] - occ["onset"])
    assert list(epoch.labels) == [f"pattern{k}" for k in occ["pattern"]]
    assert set(epoch.array_annotations) == {"pattern_id", "center", "peak", "pvalue"}
    assert np.allclose(epoch.array_annotations["center"], occ["center"])
    assert epoch.annotations["method"] == "convseq"
    for key in ("bin_size_s", "width_s", "n_patterns", "alpha", "n_surrogates", "random_state", "t_start_s"):
        assert key in epoch.annotations
    assert all(isinstance(v, (str, int, float, bool)) for v in epoch.annotations.values())


def test_groups(rec1, result1):
    groups = result1.to_groups(rec1.spiketrains)
    assert [g.name for g in groups] == ["pattern0"]
    pattern = result1.patterns[0]
    group = groups[0]
    assert [st.name for st in group.spiketrains] == [rec1.spiketrains[n].name for n in pattern.neurons]
    assert group.annotations["lags"].ndim == 1 and str(group.annotations["lags"].dimensionality) == "s"
    assert np.allclose(group.annotations["lags"].magnitude, pattern.lags.magnitude)
    assert np.all(np.diff(group.annotations["lags"].magnitude) >= 0)
    assert list(group.annotations["member_names"]) == list(pattern.names)
    assert all(not isinstance(v, dict) for v in group.annotations.values())
    assert len(result1.to_groups()) == 1  # defaults to the trains given to detect
    with pytest.raises(ValueError, match="spiketrains"):
        result1.to_groups(rec1.spiketrains[:10])


def test_spade_dict(result1):
    out = result1.to_spade_dict()
    (entry,) = out["patterns"]
    pattern = result1.patterns[0]
    assert entry["neurons"] == pattern.neurons.tolist()
    assert len(entry["lags"]) == len(entry["neurons"]) - 1 and np.all(entry["lags"].magnitude >= 0)
    assert np.allclose(entry["lags"].magnitude, pattern.lags.magnitude[1:] - pattern.lags.magnitude[0])
    assert np.allclose(entry["times"].magnitude, result1.to_epoch().times.magnitude)
    assert entry["signature"] == (pattern.size, len(result1.occurrences))
    assert 0 < entry["pvalue"] <= 1
    # the first member fires at `times`: its expected time is centre + its lag
    assert np.allclose(entry["times"].magnitude, entry["centers"].magnitude + pattern.lags.magnitude[0])


def test_spike_labels_mark_planted_spikes(rec1, result1):
    labels = result1.spike_labels(rec1.spiketrains)
    assert [p.size for p, _ in labels] == [t.size for t in rec1.spiketrains]
    labelled = planted = both = 0
    members = set(result1.patterns[0].neurons.tolist()) & set(rec1.members[0].tolist())
    for neuron in members:
        pattern, occurrence = labels[neuron]
        truth = np.asarray(rec1.spiketrains[neuron].array_annotations["planted_pattern"]) >= 0
        labelled += int((pattern >= 0).sum())
        planted += int(truth.sum())
        both += int(((pattern >= 0) & truth).sum())
        assert np.all((pattern >= 0) == (occurrence >= 0))
        assert np.all(occurrence < len(result1.occurrences))
    assert both / labelled >= 0.8 and both / planted >= 0.7


def _block_with(trains, n_segments=1):
    block = neo.Block(name="recording")
    for index in range(n_segments):
        segment = neo.Segment(name=f"segment{index}")
        segment.spiketrains.extend(copy.deepcopy(trains) if index else trains)
        block.segments.append(segment)
    return block


@pytest.mark.parametrize("io_class", [PickleIO, NixIO])
def test_annotate_round_trips(tmp_path, rec1, result1, io_class):
    trains = copy.deepcopy(rec1.spiketrains)
    block = _block_with(trains)
    epoch, groups = result1.annotate(block, label_spikes=True)
    assert block.segments[0].epochs[-1] is epoch
    assert len(block.groups) == len(groups) and all(a is b for a, b in zip(block.groups, groups))
    path = tmp_path / ("detected.nix" if io_class is NixIO else "detected.pkl")
    if io_class is NixIO:
        with NixIO(str(path), mode="ow") as writer:
            writer.write_block(block)
        with NixIO(str(path), mode="ro") as reader:
            read = reader.read_block()
            _check_read_back(read, epoch, groups, trains)
    else:
        PickleIO(str(path)).write_block(block)
        _check_read_back(PickleIO(str(path)).read_block(), epoch, groups, trains)


def _check_read_back(read, epoch, groups, trains):
    (read_epoch,) = [e for e in read.segments[0].epochs if e.name == EPOCH_NAME]
    assert np.allclose(read_epoch.times.rescale(pq.s).magnitude, epoch.times.rescale(pq.s).magnitude)
    assert np.allclose(read_epoch.durations.rescale(pq.s).magnitude, epoch.durations.rescale(pq.s).magnitude)
    assert list(read_epoch.labels) == list(epoch.labels)
    for key, values in epoch.array_annotations.items():
        assert np.allclose(np.asarray(read_epoch.array_annotations[key], dtype=float), values.astype(float)), key
    for key in ("method", "bin_size_s", "width_bins", "alpha", "random_state"):
        assert read_epoch.annotations[key] == epoch.annotations[key]
    read_groups = [g for g in read.groups if g.name.startswith("pattern")]
    assert len(read_groups) == len(groups)
    for read_group, group in zip(read_groups, groups):
        assert [s.name for s in read_group.spiketrains] == [s.name for s in group.spiketrains]
        lags = read_group.annotations["lags"]
        assert str(lags.dimensionality) == "s" and np.allclose(lags.magnitude, group.annotations["lags"].magnitude)
        assert list(read_group.annotations["neurons"]) == list(group.annotations["neurons"])
        assert list(read_group.annotations["member_names"]) == list(group.annotations["member_names"])
    by_name = {train.name: train for train in read.segments[0].spiketrains}
    for train in trains:
        read_train = by_name[train.name]
        for key in ("convseq_pattern", "convseq_occurrence"):
            assert np.array_equal(read_train.array_annotations[key], train.array_annotations[key])


def test_annotate_finds_the_segment_and_checks_its_input(rec1, result1):
    block = _block_with(rec1.spiketrains, n_segments=2)
    epoch, _ = result1.annotate(block)
    assert block.segments[0].epochs[-1] is epoch and not block.segments[1].epochs
    block.segments[0].epochs.remove(epoch)
    other = _block_with(copy.deepcopy(rec1.spiketrains), n_segments=2)
    with pytest.raises(ValueError, match="Segment"):
        result1.annotate(other)
    lone = neo.Segment()
    lone.spiketrains.extend(copy.deepcopy(rec1.spiketrains))
    epoch, groups = result1.annotate(lone)
    assert len(lone.epochs) == 1 and lone.epochs[0] is epoch and len(groups) == 1
    short = neo.Segment()
    short.spiketrains.extend(copy.deepcopy(rec1.spiketrains[:5]))
    with pytest.raises(ValueError, match="trains"):
        result1.annotate(short)
    with pytest.raises(TypeError, match="segment_or_block"):
        result1.annotate(rec1.spiketrains)


def test_plot_returns_a_figure_without_pyplot(result1, small_result):
    fig = result1.plot()
    assert isinstance(fig, Figure)
    if "matplotlib.pyplot" in sys.modules:
        assert sys.modules["matplotlib.pyplot"].get_fignums() == []
    n_patterns = result1.n_patterns
    assert len(fig.axes) >= 1 + 2 * n_patterns
    fig.savefig(io.BytesIO(), format="png", dpi=40)
    zoom = small_result.plot(time_range=(1010 * pq.s, 1020 * pq.s))
    assert zoom.axes[0].get_xlim() == pytest.approx((1010, 1020))
    with pytest.raises(TypeError, match="time_range"):
        small_result.plot(time_range=(1, 2))


# ---------------------------------------------------------------------------------------------- find
def test_find_applies_the_patterns_to_new_data(rec1, result1):
    background = poisson_background(100, 2 * pq.Hz, 0 * pq.s, 60 * pq.s, random_state=11)
    trains, truth = plant_sequences(background, rec1.members, lag_step=10 * pq.ms, n_occurrences=20,
                                    participation=0.9, jitter=10 * pq.ms, random_state=12)
    found = result1.find(trains, random_state=0)
    assert isinstance(found, DetectionResult) and found.thresholds is None
    assert found.parameters["applied"] == "find"
    assert [p.neurons.tolist() for p in found.patterns] == [p.neurons.tolist() for p in result1.patterns]
    occ = found.occurrences
    scores = score_detections(occ["center"].to_numpy(), occ["pattern"].to_numpy(),
                              truth.centers.rescale(pq.s).magnitude, truth.pattern_id, TOLERANCE_S)
    assert scores.f1 >= 0.9, scores.per_pattern
    found.plot()
    with pytest.raises(ValueError, match="neurons"):
        result1.find(trains[:50])
    with pytest.raises(ValueError, match="bin_size"):
        result1.find(BinnedSpikeTrain(trains, bin_size=10 * pq.ms))
    with pytest.raises(ValueError, match="width"):
        result1.find(trains, t_start=0 * pq.s, t_stop=0.2 * pq.s)


def test_find_on_the_training_recording_keeps_what_detect_found(small_rec, small_result):
    """find() looks for a pattern as detect() reports it: its members' evidence around their lags.

    The learned filters, with every non-member's chance coincidences, kept 17 of the 20
    occurrences detect() found on this recording (5 of 30 on a longer one).
    """
    model = small_result.model
    members = small_result.patterns[0].neurons
    np.testing.assert_array_equal(np.flatnonzero(model.tested_filters_[0].any(axis=1)), np.sort(members))
    table = model.membership_[model.membership_["pattern"] == 0].set_index("neuron")
    expected_peak = np.round(table.loc[members, "lag"].to_numpy(float) + model.pattern_offsets_[0]) + model.width // 2
    np.testing.assert_allclose(model.tested_filters_[0, members].argmax(axis=1), expected_peak, atol=1)
    detected = small_result.occurrences["center"].to_numpy()
    assert detected.size >= 18
    found = small_result.find(small_rec.spiketrains, random_state=0)
    centers = found.occurrences["center"].to_numpy()
    kept = sum(np.abs(centers - center).min() <= TOLERANCE_S for center in detected) if centers.size else 0
    assert kept >= 0.9 * detected.size and centers.size <= detected.size + 2, (kept, centers.size, detected.size)
    assert found.responses.shape == small_result.responses.shape
    np.testing.assert_allclose(found.responses, model.tested_transform(small_result.raster), rtol=1e-6)


# ---------------------------------------------------------------------------------------------- validation
def _trains(n=3, t_stop=20.0, seed=0):
    rng = np.random.default_rng(seed)
    return [neo.SpikeTrain(np.sort(rng.uniform(0, t_stop, 40)), t_stop=t_stop, units="s", name=f"u{i}")
            for i in range(n)]


@pytest.fixture
def no_work(monkeypatch):
    """Fail loudly if binning or fitting starts: validation must come first."""
    def refuse(*args, **kwargs):
        raise AssertionError("work started before validation finished")

    monkeypatch.setattr(SpikeRaster, "from_row_times", refuse)  # the one binning kernel
    monkeypatch.setattr(ConvSeq, "fit", refuse)


VALIDATION_CASES = [
    # (spiketrains, kwargs, error, words that must appear in the message)
    ("ok", dict(bin_size=None, width=WIDTH), TypeError, ["bin_size", "5 * pq.ms", "typically"]),
    ("ok", dict(bin_size=BIN, width=None), TypeError, ["width", "300 * pq.ms", "typically"]),
    ("ok", dict(bin_size=None, width=None), TypeError, ["bin_size=None", "auto"]),
    ("ok", dict(bin_size=0.005, width=WIDTH), TypeError, ["bin_size", "Quantity"]),
    ("ok", dict(bin_size=BIN, width=0.3), TypeError, ["width", "Quantity"]),
    ("ok", dict(bin_size=BIN, width=WIDTH, t_start=0.0), TypeError, ["t_start", "Quantity"]),
    ("ok", dict(bin_size=BIN, width=WIDTH, t_stop=10), TypeError, ["t_stop", "Quantity"]),
    ("ok", dict(bin_size=5 * pq.dimensionless, width=WIDTH), ValueError, ["bin_size", "time units"]),
    ("ok", dict(bin_size=BIN, width=3 * pq.dimensionless), ValueError, ["width", "time units"]),
    ("ok", dict(bin_size=BIN, width=WIDTH, t_stop=5 * pq.Hz), ValueError, ["t_stop", "time units"]),
    ("ok", dict(bin_size=0 * pq.ms, width=WIDTH), ValueError, ["bin_size", "positive"]),
    ("ok", dict(bin_size=-5 * pq.ms, width=WIDTH), ValueError, ["bin_size", "positive"]),
    ("ok", dict(bin_size=BIN, width=-1 * pq.ms), ValueError, ["width", "positive"]),
    ("ok", dict(bin_size=BIN, width=6 * pq.ms), ValueError, ["width", "2 bins"]),
    ("ok", dict(bin_size=BIN, width=30 * pq.s), ValueError, ["width", "longer than the analysis window"]),
    ("ok", dict(bin_size=BIN, width=WIDTH, t_start=1 * pq.s, t_stop=1.2 * pq.s), ValueError, ["width", "window"]),
    ("ok", dict(bin_size=BIN, width=WIDTH, t_start=5 * pq.s, t_stop=5 * pq.s), ValueError, ["t_stop", "t_start"]),
    ("ok", dict(bin_size=BIN, width=WIDTH, t_start=5 * pq.s, t_stop=2 * pq.s), ValueError, ["t_stop", "t_start"]),
    ("ok", dict(bin_size=BIN, width=WIDTH, t_start=np.nan * pq.s), ValueError, ["t_start", "finite"]),
    ("ok", dict(bin_size=BIN, width=WIDTH, n_patterns=0), ValueError, ["n_patterns"]),
    ("ok", dict(bin_size=BIN, width=WIDTH, n_patterns=1.5), TypeError, ["n_patterns"]),
    ("ok", dict(bin_size=BIN, width=WIDTH, random_state="seed"), TypeError, ["random_state"]),
    ("ok", dict(bin_size=BIN, width=WIDTH, device="tpu"), ValueError, ["device"]),
    ("ok", dict(bin_size=BIN, width=WIDTH, progress="yes"), TypeError, ["progress"]),
    ("ok", dict(bin_size=BIN, width=WIDTH, n_surrogate=10), TypeError, ["n_surrogate", "core option"]),
    ("ok", dict(bin_size=BIN, width=WIDTH, bin_size_s=0.005, foo=1), TypeError, ["bin_size_s", "foo"]),
    ("ok", dict(bin_size=BIN, width=WIDTH, alpha=2.0), ValueError, ["alpha"]),
    ("ok", dict(bin_size=BIN, width=WIDTH, significance="bonferroni"), ValueError, ["significance"]),
    ("ok", dict(bin_size=BIN, width=WIDTH, max_epochs=0), ValueError, ["max_epochs"]),
    ("nan", dict(bin_size=BIN, width=WIDTH), ValueError, ["spiketrains[1]", "NaN"]),
    ("bounds", dict(bin_size=BIN, width=WIDTH), ValueError, ["t_start and t_stop"]),
    ("single", dict(bin_size=BIN, width=WIDTH), TypeError, ["spiketrains", "single SpikeTrain"]),
    ("array", dict(bin_size=BIN, width=WIDTH), TypeError, ["spiketrains"]),
    ("empty_list", dict(bin_size=BIN, width=WIDTH), ValueError, ["spiketrains"]),
    ("block", dict(bin_size=BIN, width=WIDTH), TypeError, ["Block", "segments"]),
    ("binned", dict(bin_size=10 * pq.ms, width=WIDTH), ValueError, ["bin_size", "own bin size"]),
    ("binned", dict(bin_size=None, width=WIDTH, t_start=0.0021 * pq.s), ValueError, ["t_start", "bin edge"]),
]


def _input(kind):
    trains = _trains()
    if kind == "ok":
        return trains
    if kind == "nan":
        trains[1] = neo.SpikeTrain([1.0, np.nan] * pq.s, t_stop=20 * pq.s)
        return trains
    if kind == "bounds":
        trains[2] = neo.SpikeTrain([1.0] * pq.s, t_stop=25 * pq.s)
        return trains
    if kind == "single":
        return trains[0]
    if kind == "array":
        return np.zeros((3, 100))
    if kind == "empty_list":
        return []
    if kind == "block":
        return neo.Block()  # an empty Block: nothing to detect in (one segment is that Segment)
    if kind == "binned":
        return BinnedSpikeTrain(trains, bin_size=BIN)
    raise AssertionError(kind)


@pytest.mark.parametrize(("kind", "kwargs", "error", "words"), VALIDATION_CASES)
def test_validation_before_any_work(no_work, kind, kwargs, error, words):
    kwargs = dict(kwargs)
    args = (_input(kind), kwargs.pop("bin_size"), kwargs.pop("width"))
    with pytest.raises(error) as info:
        detect(*args, **kwargs)
    for word in words:
        assert word in str(info.value), str(info.value)


def test_no_spike_in_the_window_is_rejected():
    trains = [neo.SpikeTrain([1.0, 2.0] * pq.s, t_stop=20 * pq.s), neo.SpikeTrain([] * pq.s, t_stop=20 * pq.s)]
    with pytest.raises(ValueError, match="no spike"):
        detect(trains, BIN, WIDTH, n_patterns=1, t_start=5 * pq.s, t_stop=20 * pq.s, **TINY)


def test_empty_trains_and_differing_bounds_with_an_explicit_window():
    trains = _trains(n=4, t_stop=20.0)
    trains.append(neo.SpikeTrain([] * pq.s, t_stop=20 * pq.s, name="silent"))
    trains.append(neo.SpikeTrain([500.0, 25000.0] * pq.ms, t_stop=30000 * pq.ms, name="longer"))
    result = detect(trains, BIN, 100 * pq.ms, n_patterns=1, t_start=0 * pq.s, t_stop=20 * pq.s, random_state=0, **TINY)
    assert result.raster.shape == (6, 4000) and result.unit_names[-2:] == ("silent", "longer")
    assert float(result.t_stop) == pytest.approx(20.0)


def test_too_short_for_crossfitting_is_a_value_error():
    with pytest.raises(ValueError, match="too short"):
        detect(_trains(t_stop=1.0), BIN, WIDTH, n_patterns=1, random_state=0, **TINY)


# ---------------------------------------------------------------------------------------------- property
_GOOD_TIMES = st.sampled_from([2 * pq.ms, 5 * pq.ms, 0.01 * pq.s, 50 * pq.ms])
_BAD_TIMES = st.sampled_from([0.005, 5, -5 * pq.ms, 0 * pq.s, 5 * pq.dimensionless, 1 * pq.Hz, np.nan * pq.ms,
                              [5, 6] * pq.ms, "5 ms"])


@st.composite
def _detect_calls(draw):
    """A detect() call: well formed, or with one to three things wrong."""
    n = draw(st.integers(1, 5))
    duration = draw(st.sampled_from([0.5, 2.0, 4.0]))
    units = draw(st.sampled_from(["s", "ms"]))
    scale = 1.0 if units == "s" else 1e3
    trains = []
    for i in range(n):
        times = draw(st.lists(st.floats(0, duration, allow_nan=False, exclude_max=True), max_size=30))
        trains.append(neo.SpikeTrain(np.sort(times) * scale, t_stop=duration * scale, units=units, name=f"u{i}"))
    call = {"spiketrains": trains, "bin_size": draw(_GOOD_TIMES),
            "width": draw(st.sampled_from([20 * pq.ms, 100 * pq.ms, 0.2 * pq.s])), **TINY,
            "n_patterns": draw(st.sampled_from([1, 2])),
            "significance": draw(st.sampled_from(["crossfit", "random_filters"]))}
    if draw(st.booleans()):
        call["t_start"] = draw(st.sampled_from([0 * pq.s, 0.1 * pq.s]))
    if draw(st.booleans()):
        call["t_stop"] = draw(st.sampled_from([duration * pq.s, 400 * pq.ms]))
    broken = draw(st.lists(st.sampled_from(
        ["nan", "bounds", "single", "not_a_train", "empty", "bin_size", "width", "t_start", "t_stop", "n_patterns",
         "significance", "option", "unknown_option"]), max_size=3, unique=True)) if draw(st.booleans()) else []
    for what in broken:
        if what == "nan" and trains[0].size:
            trains[0] = neo.SpikeTrain(np.r_[trains[0].magnitude[:-1], np.nan], t_stop=trains[0].t_stop,
                                       units=trains[0].units)
        elif what == "bounds":
            trains[-1] = neo.SpikeTrain(trains[-1].magnitude, t_stop=trains[-1].t_stop * 2, units=trains[-1].units)
        elif what in ("single", "not_a_train", "empty"):
            call["spiketrains"] = {"single": trains[0], "not_a_train": [t.magnitude for t in trains],
                                   "empty": []}[what]
        elif what in ("bin_size", "width", "t_start", "t_stop"):
            call[what] = draw(st.one_of(_BAD_TIMES, st.sampled_from([None, 1 * pq.s, 10 * pq.s, 1 * pq.ms])))
        elif what == "n_patterns":
            call[what] = draw(st.sampled_from([0, -1, 1.0, "2", None]))
        elif what == "significance":
            call[what] = draw(st.sampled_from(["nope", None, 1]))
        elif what == "option":
            call[draw(st.sampled_from(["alpha", "n_surrogates", "max_epochs", "n_folds", "lr"]))] = draw(
                st.sampled_from([0, 2, -1, "x", None, np.nan, 1.5]))
        else:
            call["unknown_option"] = 1
    return call


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(_detect_calls())
def test_only_documented_exceptions_come_out(call):
    call = dict(call)
    spiketrains = call.pop("spiketrains")
    try:
        result = detect(spiketrains, call.pop("bin_size"), call.pop("width"), random_state=0, **call)
    except (TypeError, ValueError) as err:
        event(f"{type(err).__name__}: {str(err)[:40]}")
        return
    event("detected")
    assert isinstance(result, DetectionResult)
    epoch = result.to_epoch()
    assert len(epoch) == len(result.occurrences)
    result.to_spade_dict()
    result.to_groups(spiketrains)
    result.spike_labels(spiketrains)


def test_timings_split_the_detection(small_result):
    timings = small_result.model.timings_
    assert set(timings) == {"binning", "training", "significance", "membership", "total"}
    assert all(value >= 0 for value in timings.values())
    parts = sum(timings[name] for name in ("binning", "training", "significance", "membership"))
    assert timings["total"] == pytest.approx(parts, rel=0.05, abs=0.05)
    assert small_result.model.training_ == "responses"
    assert small_result.model.n_filter_passes_ >= small_result.model.n_epochs_[0]
