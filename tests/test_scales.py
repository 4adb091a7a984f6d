"""The automatic search: the scale grid, n_patterns="auto", several scales in one result, warped search."""

from __future__ import annotations

import json

import neo
import numpy as np
import pytest
import quantities as pq

from convseq_neo import detect
from convseq_neo.multiscale import MultiScaleResult
from convseq_neo.result import DetectionResult
from convseq_neo.scale_search import _members_shared, _occurrences_shared, _same_order
from convseq_neo.scales import MIN_BINS, scale_grid, time_resolution
from convseq_neo.synthetic.evaluate import score_detections
from convseq_neo.synthetic.generate import plant_sequences, poisson_background, sequence_recording

FAST = dict(max_epochs=200, min_epochs=50, n_surrogates=40, n_folds=3)
TOLERANCE_S = 0.05


def _recording(seed=1, lag_step=10 * pq.ms, duration=40 * pq.s, n_patterns=1):
    return sequence_recording(n_neurons=30, n_patterns=n_patterns, members_per_pattern=12, duration=duration,
                              rate=2 * pq.Hz, lag_step=lag_step, n_occurrences=20 * n_patterns, jitter=2 * pq.ms,
                              random_state=seed)


def _f1(occurrences, rec, pattern_of=None):
    truth = rec.ground_truth.array_annotations
    labels = occurrences["pattern"].to_numpy() if pattern_of is None else pattern_of
    return score_detections(occurrences["center"].to_numpy(), labels, truth["center"], truth["pattern_id"],
                            tolerance=TOLERANCE_S)


# ---------------------------------------------------------------------------------------------- the grid
def test_grid_follows_resolution_rate_and_length():
    # microsecond spike times, 3 Hz, 10 minutes: 0.1-2.7 s, 20 bins each; 8.1 s would need 405 ms bins (> 0.5 / 3 Hz)
    grid = scale_grid(600.0, 3.0, 1e-6)
    assert [s.width_s for s in grid] == pytest.approx([0.1, 0.3, 0.9, 2.7])
    assert [s.width_bins for s in grid] == [20, 20, 20, 20]
    # imaging frames of 50 ms: no window under 8 bins of 50 ms
    ca1 = scale_grid(906.85, 0.04, 0.05)
    assert ca1[0].bin_size_s == pytest.approx(0.05) and all(s.width_bins >= MIN_BINS for s in ca1)
    assert all(s.bin_size_s >= 0.05 for s in ca1)
    # a short recording: no window over a fiftieth of it
    assert [s.width_s for s in scale_grid(20.0, 3.0, 1e-6)] == pytest.approx([0.1, 0.3])
    assert scale_grid(4.0, 3.0, 1e-6) == []
    # a dense recording: bins stop where the median neuron fills them
    assert [s.width_s for s in scale_grid(600.0, 40.0, 1e-6)] == pytest.approx([0.1])
    # a bin fixed by the caller is used at every window
    assert {s.bin_size_s for s in scale_grid(600.0, 3.0, 1e-6, bin_size_s=0.01)} == {0.01}


def test_grid_rejects_nonsense():
    with pytest.raises(ValueError, match="duration_s"):
        scale_grid(0.0, 1.0, 1e-3)
    with pytest.raises(ValueError, match="bin_size"):
        scale_grid(10.0, 1.0, 1e-3, bin_size_s=-1.0)


def test_time_resolution_is_the_smallest_gap_between_distinct_times():
    frames = [np.array([0.05, 0.10, 0.10, 0.40]), np.array([0.20, 0.25])]
    assert time_resolution(frames) == pytest.approx(0.05)
    assert time_resolution([np.array([1.0])]) == np.inf


def test_duplicate_rule_needs_shared_members_and_shared_occurrences():
    assert _members_shared([1, 2, 3, 4], [3, 4, 5]) == pytest.approx(2 / 3)
    assert _members_shared([1, 2], [3, 4]) == 0.0
    assert _occurrences_shared(np.array([1.0, 5.0, 9.0]), np.array([1.1, 9.05, 20.0]), 0.2) == pytest.approx(2 / 3)
    assert _occurrences_shared(np.array([1.0]), np.array([]), 0.2) == 0.0


def test_duplicate_rule_keeps_a_sequence_and_its_reverse_apart():
    from convseq_neo.result import Pattern

    def pattern(neurons, lags_ms):
        return Pattern(0, np.array(neurons), (), np.array(lags_ms, dtype=float) * pq.ms, np.zeros(len(neurons)),
                       np.zeros(len(neurons)), np.zeros((10, 4)), 5)

    forward = pattern([1, 2, 3, 4, 5], [0, 10, 20, 30, 40])
    assert _same_order(forward, pattern([5, 3, 2, 9], [400, 200, 100, 0]))  # slower, one member more
    assert not _same_order(forward, pattern([5, 3, 2, 9], [0, 200, 400, 0]))  # the shared members reversed
    assert _same_order(forward, pattern([1, 7, 8], [0, 10, 20]))  # one shared member: order unknown
    assert _same_order(forward, pattern([1, 2, 3], [0, 0, 0]))  # synchronous: order unknown


# ---------------------------------------------------------------------------------------------- errors
@pytest.mark.parametrize(("kwargs", "error", "words"), [
    (dict(n_patterns="two"), ValueError, ["n_patterns", "auto"]),
    (dict(width="wide"), ValueError, ["width", "auto"]),
    (dict(max_patterns=0), ValueError, ["max_patterns"]),
    (dict(bin_size=None), TypeError, ["bin_size", "auto"]),
    (dict(width=None), TypeError, ["width", "auto"]),
    (dict(n_patterns=0), ValueError, ["n_patterns"]),
])
def test_bad_automatic_arguments_fail_before_any_work(kwargs, error, words, monkeypatch):
    from convseq_neo.core.estimator import ConvSeq

    monkeypatch.setattr(ConvSeq, "fit", lambda *a, **k: pytest.fail("fit() was reached"))
    with pytest.raises(error) as info:
        detect(_recording().spiketrains, **kwargs)
    for word in words:
        assert word in str(info.value), str(info.value)


def test_a_recording_too_short_for_any_window_says_so():
    trains = poisson_background(5, 5 * pq.Hz, 0 * pq.s, 4 * pq.s, random_state=0)
    with pytest.raises(ValueError, match="pass bin_size and width"):
        detect(trains)


@pytest.mark.parametrize(("warp", "error"), [(-1, ValueError), (0, ValueError), (np.inf, ValueError),
                                             ([2, 2], ValueError), ([], ValueError), ("x", TypeError),
                                             (10 * pq.ms, TypeError)])
def test_bad_warp(fitted, warp, error):
    with pytest.raises(error, match="warp"):
        fitted.find(_recording().spiketrains, warp=warp)


# ---------------------------------------------------------------------------------------------- fits
@pytest.fixture(scope="module")
def fitted():
    """One pattern at 10 ms steps, learned at an explicit scale."""
    return detect(_recording().spiketrains, bin_size=5 * pq.ms, width=200 * pq.ms, n_patterns=1, random_state=0,
                  **FAST)


@pytest.fixture(scope="module")
def searched():
    """The same recording with nothing given: the windows are searched."""
    rec = _recording()
    return rec, detect(rec.spiketrains, random_state=0, **FAST)


def test_search_finds_the_pattern_at_a_window_that_holds_it(searched):
    rec, result = searched
    assert isinstance(result, MultiScaleResult)
    assert result.scales["width"].tolist() == pytest.approx([0.1, 0.3])
    assert result.n_patterns == 1
    (pattern,) = result.patterns
    # the planted span is 110 ms: the 300 ms window holds all 12 members, the 100 ms one the first 11; both
    # find the sequence, and it is reported once, at the window where it has more significant occurrences
    assert len(set(pattern.neurons) & set(rec.members[0])) >= 10
    assert _f1(result.occurrences, rec).f1 >= 0.9
    assert float(pattern.bin_size) == pytest.approx(float(pattern.width) / 20)
    # every fit tried is on record, the kept one marked, and each tested at alpha / 2 windows
    search = result.search
    assert set(search["alpha"]) == {0.025} and result.parameters["alpha_per_scale"] == 0.025
    kept = search[search["kept"] >= 0]
    assert kept["width"].tolist() == pytest.approx([float(pattern.width)])
    other = search[search["chosen"] & (search["scale"] != int(kept["scale"].iloc[0]))]
    assert other["note"].str.startswith("same sequence as the pattern kept at").all()
    assert int(kept["n_occurrences"].iloc[0]) >= other["n_occurrences"].max()
    assert (search.groupby("scale")["chosen"].any()).all()
    assert not search[(search["kept"] < 0) & search["chosen"]]["note"].eq("").any()


def test_multiscale_exports_keep_each_patterns_scale(searched):
    rec, result = searched
    epoch = result.to_epoch()
    assert len(epoch) == len(result.occurrences)
    assert np.allclose(epoch.array_annotations["width"], result.occurrences["width"])
    assert set(epoch.labels) == {"pattern0"}
    groups = result.to_groups()
    width = float(result.patterns[0].width)
    assert [g.name for g in groups] == ["pattern0"] and groups[0].annotations["width"] == pytest.approx(width)
    assert len(groups[0].spiketrains) == result.patterns[0].size
    spade = result.to_spade_dict()
    assert [float(e["width"]) for e in spade["patterns"]] == pytest.approx([width])
    assert json.loads(spade["parameters"]["scales_width_s"]) == pytest.approx([0.1, 0.3])
    segment = neo.Segment()
    segment.spiketrains.extend(rec.spiketrains)
    block = neo.Block()
    block.segments.append(segment)
    segment.block = block
    added, added_groups = result.annotate(segment)
    assert segment.epochs[-1] is added and block.groups[-1] is added_groups[-1]
    figure = result.plot_search()
    assert [t.get_text() for t in figure.axes[0].texts] == ["pattern0"]
    assert figure.axes[0].get_xscale() == "log"


def test_search_on_pure_noise_reports_nothing():
    trains = poisson_background(30, 2 * pq.Hz, 0 * pq.s, 40 * pq.s, random_state=3)
    result = detect(trains, random_state=0, **FAST)
    assert len(result.occurrences) == 0 and result.n_patterns == 0
    assert result.to_spade_dict()["patterns"] == []
    assert len(result.to_epoch()) == 0
    # nothing found at any window: one fit per window
    assert result.parameters["n_fits"] == len(result.results)


def test_auto_number_of_patterns_at_one_window():
    rec = _recording(seed=2, n_patterns=2, duration=60 * pq.s)
    result = detect(rec.spiketrains, bin_size=5 * pq.ms, width=200 * pq.ms, random_state=0, **FAST)
    assert isinstance(result, DetectionResult)
    fits = {int(k): v for k, v in json.loads(result.parameters["n_patterns_search"]).items()}
    # fits with 1, 2, ... patterns until the newest had no significant occurrence or repeated part of an earlier
    # pattern; the last one before is kept
    notes = result.pattern_search.groupby("n_patterns")["note"].first()
    stopped = notes[notes.str.endswith(": stop")]
    assert fits[max(fits)][-1] == 0 or max(fits) == 4 or "repeats part of pattern" in stopped.iloc[0]
    last = int(stopped.index[0]) - 1 if len(stopped) else max(fits)
    assert result.n_patterns == max(last, 1)
    assert all(counts[-1] > 0 for k, counts in fits.items() if 1 < k <= result.n_patterns)
    found = [max(len(set(p.neurons) & set(members)) for p in result.patterns) for members in rec.members]
    assert min(found) >= 9, found


# ---------------------------------------------------------------------------------------------- warp
def _compressed(factor, seed=5):
    """The training recording's members, replayed ``factor`` times faster in a new recording."""
    rec = _recording()
    background = poisson_background(30, 2 * pq.Hz, 0 * pq.s, 40 * pq.s, random_state=seed)
    trains, truth = plant_sequences(background, [rec.members[0]], lag_step=10 * pq.ms / factor, n_occurrences=20,
                                    participation=0.9, jitter=2 * pq.ms / factor, random_state=seed)
    return trains, truth


def test_find_warp_finds_a_compressed_recurrence(fitted):
    trains, truth = _compressed(4.0)
    plain = fitted.find(trains, random_state=0)
    warped = fitted.find(trains, random_state=0, warp=4)
    assert isinstance(warped, DetectionResult) and warped.parameters["warp"] == 4.0
    assert float(warped.patterns[0].bin_size) == pytest.approx(0.005 / 4)
    assert np.ptp(warped.patterns[0].lags.magnitude) < np.ptp(fitted.patterns[0].lags.magnitude) / 2

    def hits(found):
        centers = found.occurrences["center"].to_numpy()
        truth_centers = truth.centers.rescale("s").magnitude
        return sum(np.abs(centers - c).min() < 0.02 for c in truth_centers) if centers.size else 0

    assert hits(warped) >= 15
    assert hits(warped) > hits(plain) + 5


def test_find_several_warps_is_corrected_over_them(fitted):
    trains, _ = _compressed(4.0)
    both = fitted.find(trains, random_state=0, warp=[1, 4])
    assert isinstance(both, MultiScaleResult)
    assert both.pattern_map["warp"].tolist() == [1.0, 4.0]
    assert both.pattern_map["source_pattern"].tolist() == [0, 0]
    assert set(both.occurrences["source_pattern"]) <= {0}
    assert set(both.search["alpha"]) == {fitted.model.alpha / 2}
    by_warp = both.occurrences.groupby("warp").size()
    assert by_warp.get(4.0, 0) > by_warp.get(1.0, 0)


def test_multiscale_find_uses_each_patterns_own_scale(searched):
    rec, result = searched
    again = result.find(rec.spiketrains, random_state=0)
    assert again.pattern_map["width"].tolist() == pytest.approx([float(result.patterns[0].width)])
    assert again.pattern_map["source_pattern"].tolist() == [0]
    scale = int(result.pattern_map["scale"].iloc[0])
    alone = result.results[scale].find(rec.spiketrains, random_state=0)
    assert np.array_equal(again.occurrences["center"], alone.occurrences["center"])
    assert len(again.occurrences) > 0 and _f1(again.occurrences, rec).precision == 1.0


def test_a_saved_model_finds_warped_as_the_result_does(fitted, tmp_path):
    from convseq_neo.io.model_file import load_model

    trains, _ = _compressed(4.0)
    saved = load_model(fitted.save_model(tmp_path / "model.npz"))
    one = saved.find(trains, random_state=0, warp=4)
    assert one.occurrences.equals(fitted.find(trains, random_state=0, warp=4).occurrences)
    several = saved.find(trains, random_state=0, warp=[1, 4])
    assert several.occurrences.equals(fitted.find(trains, random_state=0, warp=[1, 4]).occurrences)


def test_the_grid_of_several_intervals_counts_only_their_time():
    from convseq_neo.scale_search import plan_scales

    rec = _recording()
    scales, facts = plan_scales(rec.spiketrains, "auto", intervals=[[0.0, 18.0], [22.0, 40.0]])
    assert facts["duration_s"] == pytest.approx(36.0)
    assert [s.width_s for s in scales] == pytest.approx([0.1, 0.3])


def test_a_pattern_counts_as_found_with_occurrences_and_two_members():
    from types import SimpleNamespace

    from convseq_neo.scale_search import is_found

    assert is_found(SimpleNamespace(n_occurrences=3, size=2))
    assert not is_found(SimpleNamespace(n_occurrences=3, size=1))
    assert not is_found(SimpleNamespace(n_occurrences=0, size=12))


def test_recording_facts_count_only_the_searched_window():
    from convseq_neo.scale_search import recording_facts

    trains = poisson_background(10, 4 * pq.Hz, 0 * pq.s, 40 * pq.s, random_state=0)
    silent_first_half = [neo.SpikeTrain(t.magnitude[t.magnitude >= 20.0], t_stop=t.t_stop, units=t.units)
                         for t in trains]
    whole = recording_facts(silent_first_half, "auto")
    second = recording_facts(silent_first_half, "auto", t_start=20 * pq.s, t_stop=40 * pq.s)
    first = recording_facts(silent_first_half, "auto", t_start=0 * pq.s, t_stop=20 * pq.s)
    assert whole["median_rate_hz"] == pytest.approx(second["median_rate_hz"] / 2, rel=1e-9)
    assert first["median_rate_hz"] == 0.0
    assert (second["window_start_s"], second["window_stop_s"]) == (20.0, 40.0)


def test_a_reversed_pattern_at_another_window_is_kept_beside_the_first():
    from types import SimpleNamespace

    import pandas as pd

    from convseq_neo.result import Pattern
    from convseq_neo.scale_search import keep_across_scales

    def fit(lags_ms, centres, bin_size_s):
        neurons = np.arange(6)
        pattern = Pattern(0, neurons, (), np.array(lags_ms, dtype=float) * pq.ms, np.zeros(6), np.zeros(6),
                          np.zeros((10, 4)), len(centres))
        occurrences = pd.DataFrame({"pattern": 0, "center": centres, "pvalue": 0.001})
        return SimpleNamespace(occurrences=occurrences, patterns=[pattern],
                               raster=SimpleNamespace(bin_size_s=bin_size_s), model=SimpleNamespace(width=20))

    centres = np.arange(10.0, 100.0, 10.0)
    forward = fit([0, 50, 100, 150, 200, 250], centres, 0.05)
    rows = [{"scale": scale, "pattern": 0, "chosen": True, "note": "", "n_occurrences": 9} for scale in (0, 1)]
    slower = fit([0, 150, 300, 450, 600, 750], centres + 0.3, 0.135)
    same = keep_across_scales([forward, slower], [dict(row) for row in rows])
    reverse = keep_across_scales([forward, fit([750, 600, 450, 300, 150, 0], centres + 0.3, 0.135)], rows)
    assert len(same) == 1  # the same order at a slower window: one sequence
    assert len(reverse) == 2  # the reverse order: two
