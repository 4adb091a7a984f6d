"""Tests for convseq_neo._plausibility: implausible windows and time units warn, and detection still finishes."""

from __future__ import annotations

import logging
import warnings

import neo
import numpy as np
import pytest
import quantities as pq
from elephant.conversion import BinnedSpikeTrain
from neo.core.spiketrainlist import SpikeTrainList

from convseq_neo import _plausibility
from convseq_neo._plausibility import RecordingWarning, check_recording
from convseq_neo.detect import detect
from convseq_neo.io.neo import plan_raster, to_raster
from convseq_neo.result import DetectionResult

#: A tiny fit (as test_detect.py's TINY): these tests check that detection finishes, not what it finds.
TINY = dict(max_epochs=5, min_epochs=0, n_surrogates=5, n_folds=2, n_init=1, random_state=0)


def _trains(t_stop_s, n=30, rate=5.0, seed=0, spikes_in=None, units="s", scale=1.0, **annotations):
    """Poisson trains over [0, t_stop_s) (spikes only in the ``spikes_in`` stretches), times times ``scale``."""
    rng = np.random.default_rng(seed)
    spans = spikes_in or [(0.0, t_stop_s)]
    trains = []
    for _ in range(n):
        times = np.sort(np.concatenate([rng.uniform(a, b, rng.poisson(rate * (b - a))) for a, b in spans]))
        trains.append(neo.SpikeTrain(times * scale, t_stop=t_stop_s * scale, units=units, **annotations))
    return trains


def _recording_warnings(record) -> list[str]:
    return [str(w.message) for w in record if issubclass(w.category, RecordingWarning)]


def _detect_and_record(trains, bin_size, width):
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        result = detect(trains, n_patterns=1, bin_size=bin_size, width=width, **TINY)
    assert isinstance(result, DetectionResult)  # detection finished
    recording = [w for w in record if issubclass(w.category, RecordingWarning)]
    assert all(w.filename == __file__ for w in recording)  # pointing at the user's call
    return result, [str(w.message) for w in recording]


# ---------------------------------------------------------------------------------------------- plausible
def test_a_normal_recording_does_not_warn():
    trains = _trains(60.0)
    trains[0] = neo.SpikeTrain([] * pq.s, t_stop=60 * pq.s)  # a silent unit is no reason
    with warnings.catch_warnings():
        warnings.simplefilter("error", RecordingWarning)
        plan_raster(trains, 5 * pq.ms, width=300 * pq.ms).bin()
        to_raster(trains, 5 * pq.ms, t_start=10 * pq.s, t_stop=20 * pq.s)
        assert check_recording([t.magnitude for t in trains], 0.0, 60.0) == ()
        # short and sparse: too little to judge
        assert check_recording([[0.001, 0.002, 0.003]], 0.0, 0.01) == ()


def test_a_window_without_spikes_gives_no_warning():
    assert check_recording([np.zeros(0), np.array([5.0])], 10.0, 100.0) == ()  # an error for the raster, not this


# ---------------------------------------------------------------------------------------------- (a) silence
def test_a_mostly_silent_window_warns_and_detection_finishes(caplog):
    trains = _trains(60.0, spikes_in=[(0.0, 25.0)])  # the recording ends at 25 s, the window at 60 s
    with caplog.at_level(logging.WARNING, logger="convseq_neo._plausibility"):
        result, messages = _detect_and_record(trains, 5 * pq.ms, 300 * pq.ms)
    assert messages == ["58 % of the window [0, 60) s has no spike at all (longest silent stretch 25.0-60.0 s): "
                        "check t_start/t_stop; silent stretches are kept in the analysis"]
    assert messages[0] in caplog.text
    assert result.raster.shape == (30, 12_000)  # the silent stretch is kept


def test_silence_anywhere_counts():
    units = [t.magnitude for t in _trains(60.0, spikes_in=[(0.0, 10.0), (50.0, 60.0)])]
    with pytest.warns(RecordingWarning, match=r"^67 % of the window \[0, 60\) s .*longest silent stretch "
                                              r"10\.0-50\.0 s"):
        check_recording(units, 0.0, 60.0)
    # the same silence inside a longer recording is only a quarter of it
    assert check_recording(units + [np.arange(60.0, 120.0, 0.1)], 0.0, 120.0) == ()


def test_the_silence_threshold_follows_the_population_rate():
    # 2 spikes a second: gaps of a few seconds happen (the threshold is 20 median intervals, about 7 s)
    rng = np.random.default_rng(0)
    sparse = [np.sort(rng.uniform(0, 100, 200))]
    assert check_recording(sparse, 0.0, 100.0) == ()
    # bursts at 10 Hz every 25 s: the 20 s gaps between them are silence (threshold 2 s)
    gappy = [np.concatenate([np.arange(k * 25.0, k * 25.0 + 5.0, 0.1) for k in range(4)])]
    with pytest.warns(RecordingWarning, match="80 % of the window"):
        messages = check_recording(gappy, 0.0, 100.0)
    assert len(messages) == 1


def test_unobserved_time_is_not_silence():
    # the units were observed only while they were recorded: no silence, and detection uses the intervals
    trains = _trains(60.0, spikes_in=[(0.0, 25.0)], obs_intervals=np.array([[0.0, 25.0]]))
    result, messages = _detect_and_record(trains, 5 * pq.ms, 300 * pq.ms)
    assert messages == []
    assert result.raster.observed_table.tolist() == [[unit, 0, 5000] for unit in range(30)]
    units = [t.magnitude for t in trains]
    assert check_recording(units, 0.0, 60.0, [[[0.0, 25.0], [40.0, 60.0]]] * 30) == ()  # 20 s of 45 s
    with pytest.warns(RecordingWarning, match=r"55 % of the observed time in the window \[0, 60\) s"):
        check_recording(units, 0.0, 60.0, [[[0.0, 25.0], [30.0, 60.0]]] * 30)  # 30 s of 55 s
    # one unit observed throughout makes the whole window observed
    with pytest.warns(RecordingWarning, match=r"58 % of the window \[0, 60\) s"):
        check_recording(units, 0.0, 60.0, [None] + [[[0.0, 25.0]]] * 29)


# ---------------------------------------------------------------------------------------------- (b) rates
def test_a_rate_far_too_low_warns_and_detection_finishes():
    trains = _trains(20_000.0, n=20, rate=5 / 20_000)  # about 5 spikes per unit in 5.6 hours
    _, messages = _detect_and_record(trains, 1 * pq.s, 60 * pq.s)
    assert len(messages) == 1
    assert messages[0].startswith("the median firing rate over the 20 units that fire in [0, 20000) s is ")
    assert "below 0.001 Hz: spike times may be in the wrong unit (ms given as s?)" in messages[0]


def test_a_rate_far_too_high_warns_and_detection_finishes():
    trains = _trains(60.0, units="ms")  # times in seconds, labelled ms: 5 Hz becomes 5 kHz
    _, messages = _detect_and_record(trains, 5 * pq.us, 300 * pq.us)
    assert len(messages) == 1
    assert messages[0].startswith("the median firing rate over the 30 units that fire in [0, 0.06) s is 5")
    assert "e+03 Hz, above 1000 Hz: spike times may be in the wrong unit (s given as ms?)" in messages[0]


# ---------------------------------------------------------------------------------------------- (c) long windows
def test_a_window_longer_than_a_day_warns_and_detection_finishes():
    trains = _trains(172_800.0, n=10, rate=0.05)
    _, messages = _detect_and_record(trains, 20 * pq.s, 600 * pq.s)
    assert messages == ["the analysis window [0, 172800) s is 2 days long: spike times or t_start/t_stop may be in "
                        "the wrong unit (ms given as s?); check them"]


def test_milliseconds_given_as_seconds_give_every_cause():
    trains = _trains(300.0, n=10, rate=0.5, scale=1e3)  # 0.5 Hz over 300 s, times in ms labelled s
    with pytest.warns(RecordingWarning) as record:
        to_raster(trains, 5 * pq.s)
    messages = _recording_warnings(record)
    assert len(messages) == 2
    assert "below 0.001 Hz" in messages[0] and "3.47 days long" in messages[1]


# ---------------------------------------------------------------------------------------------- every input
def test_every_input_type_is_checked():
    trains = _trains(60.0, n=5, spikes_in=[(0.0, 25.0)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RecordingWarning)
        raster = to_raster(trains, 10 * pq.ms)
    expected = r"58 % of the window \[0, 60\) s has no spike at all"
    with pytest.warns(RecordingWarning, match=expected):
        check_recording(raster)
    with pytest.warns(RecordingWarning, match=expected):
        plan_raster(raster)
    with pytest.warns(RecordingWarning, match=expected):
        plan_raster(BinnedSpikeTrain(trains, bin_size=10 * pq.ms))
    times = np.concatenate([t.magnitude for t in trains])
    ids = np.concatenate([np.full(t.size, i) for i, t in enumerate(trains)])
    multiplexed = SpikeTrainList.from_spike_time_array(times * pq.s, ids, list(range(5)), t_stop=60 * pq.s,
                                                       units="s")
    with pytest.warns(RecordingWarning, match=expected):
        plan_raster(multiplexed, 10 * pq.ms)
    # a raster's own observed table is read
    observed = raster.time_slice(0, 6000)
    observed = type(observed)(observed.neuron_index, observed.bin_index, observed.counts, 5, 6000,
                              bin_size_s=0.01, observed=np.array([[u, 0, 2500] for u in range(5)]))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RecordingWarning)
        assert check_recording(observed) == ()


def test_recording_warning_is_exposed_and_can_be_silenced():
    from convseq_neo.io import neo as adapters

    assert adapters.RecordingWarning is RecordingWarning and issubclass(RecordingWarning, UserWarning)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", category=RecordingWarning)
        to_raster(_trains(60.0, n=3, spikes_in=[(0.0, 20.0)]), 10 * pq.ms)


@pytest.mark.parametrize(("args", "error", "match"), [
    (("not spikes", 0.0, 1.0), TypeError, "spikes must be"),
    (([[0.5]],), TypeError, "t_start_s and t_stop_s"),
    (([[0.5]], 1.0, 1.0), ValueError, "t_stop_s"),
    (([[0.5]], 0.0, float("nan")), ValueError, "t_stop_s"),
    (([[0.5]], 0.0, 1.0, [None, None]), ValueError, "observed_s must have one entry per unit"),
])
def test_bad_arguments(args, error, match):
    with pytest.raises(error, match=match):
        check_recording(*args)


def test_thresholds_are_documented_constants():
    assert (_plausibility.SILENT_FRACTION, _plausibility.MIN_SILENCE_S, _plausibility.SILENCE_ISIS) == (0.5, 1.0, 20)
    assert (_plausibility.MIN_RATE_HZ, _plausibility.MAX_RATE_HZ, _plausibility.MAX_WINDOW_S) == (1e-3, 1e3, 86_400.0)


def _reference_silence(times, intervals, threshold):
    """Silent seconds and the longest silent stretch, one observed interval at a time."""
    silent, longest = 0.0, (0.0, (0.0, 0.0))
    for a, b in intervals:
        points = [a, *[t for t in times if a <= t < b], b]
        for left, right in zip(points[:-1], points[1:]):
            if right - left > threshold:
                silent += right - left
                longest = max(longest, (right - left, (left, right)))
    return silent, longest[1]


@pytest.mark.parametrize("seed", range(20))
def test_silent_stretches_agree_with_a_plain_loop(seed):
    rng = np.random.default_rng(seed)
    cuts = np.sort(rng.uniform(0, 100, 2 * rng.integers(1, 5)))
    intervals = _plausibility._merged(cuts.reshape(-1, 2), 0.0, 100.0)
    times = np.sort(rng.uniform(0, rng.uniform(5, 100), rng.integers(0, 60)))  # often silent at the end
    times = times[_plausibility._inside(times, intervals)]
    if rng.random() < 0.3:
        intervals = np.array([[0.0, 100.0]])
    result = _plausibility._silence(times, intervals)
    isi = np.diff(times)
    threshold = max(1.0, 20 * float(np.median(isi))) if isi.size else 1.0
    silent, longest = _reference_silence(times, intervals, threshold)
    total = float((intervals[:, 1] - intervals[:, 0]).sum())
    if silent / total <= 0.5:
        assert result is None
    else:
        assert result[0] == pytest.approx(silent / total) and result[1] == pytest.approx(longest)
        assert result[2] == pytest.approx(total)


def test_observed_intervals_are_clipped_and_merged():
    merged = _plausibility._merged([[5, 8], [0, 3], [2, 4], [8, 9], [20, 30], [25, 26], [-5, -1], [95, 120]], 0, 100)
    assert merged.tolist() == [[0, 4], [5, 9], [20, 30], [95, 100]]
