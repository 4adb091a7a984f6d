"""The opt-in second pass (ConvSeq(second_pass=True)): each fold tested with members measured on the other folds."""

import numpy as np
import pytest
import quantities as pq
import torch

from convseq_neo import ConvSeq, detect
from convseq_neo.core.crossfit import fold_regions
from convseq_neo.core.response import make_response
from convseq_neo.core.second_pass import second_pass_filters, second_pass_test
from convseq_neo.core.significance import CandidatePeaks
from convseq_neo.plot import plot_responses
from convseq_neo.raster import SpikeRaster
from convseq_neo.synthetic.evaluate import score_detections
from convseq_neo.synthetic.generate import poisson_background, sequence_recording

FAST = dict(max_epochs=300, n_surrogates=40, n_folds=3)


SEEDS = range(5)


def _two_sequences(seed: int, members: int = 12):
    """40 neurons, 60 s, two disjoint sequences, 20 occurrences each at participation 0.85."""
    return sequence_recording(n_neurons=40, n_patterns=2, members_per_pattern=members, layout="disjoint",
                              duration=60 * pq.s, rate=2 * pq.Hz, lag_step=10 * pq.ms, n_occurrences=20,
                              participation=0.85, jitter=2 * pq.ms, random_state=seed)


def _f1(result, recording):
    truth = recording.ground_truth
    occurrences = result.occurrences
    return score_detections(occurrences["center"].to_numpy(), occurrences["pattern"].to_numpy(),
                            truth.array_annotations["center"], truth.array_annotations["pattern_id"], 0.0625)


@pytest.fixture(scope="module")
def both_passes():
    """Both passes on the layout above, recordings of seeds 0-4: (first, second) results and scores per seed.

    In this layout the first pass often mixes the two sequences. Measured on one machine (F1 per
    pattern, false detections), first pass then second: seed 0 0.39/0.53 (15) and 0.63/0.82 (6),
    seed 1 0.71/0.69 (12) and 0.92/0.97 (1), seed 2 0.61/0.68 (14) and 0.53/0.65 (16), seed 3
    0.79/0.83 (7) and 1.00/0.97 (0), seed 4 0.83/0.91 (5) and 1.00/1.00 (0). Single seeds move
    with the machine's floating point (seed 0's second pass gave 0.7 or more on another), so the
    claims are over the five.
    """
    options = dict(bin_size=5 * pq.ms, width=250 * pq.ms, n_patterns=2, random_state=0, n_jobs=1, **FAST)
    rows = []
    for seed in SEEDS:
        recording = _two_sequences(seed)
        first = detect(recording.spiketrains, **options)
        second = detect(recording.spiketrains, second_pass=True, **options)
        rows.append((first, second, _f1(first, recording), _f1(second, recording)))
    return rows


def test_second_pass_finds_two_mixed_sequences_better(both_passes):
    first_f1 = np.mean([first.per_pattern["f1"].mean() for _, _, first, _ in both_passes])
    second_f1 = np.mean([second.per_pattern["f1"].mean() for _, _, _, second in both_passes])
    assert second_f1 >= first_f1 + 0.1, (first_f1, second_f1)
    assert sum(second.n_false for *_, second in both_passes) < sum(first.n_false for *_, first, _ in both_passes)


def test_second_pass_records_what_it_cost(both_passes):
    for first, second, *_ in both_passes:
        assert second.parameters["second_pass"] is True and first.parameters["second_pass"] is False
        # its responses and the surrogates of the folds x patterns it tests: at most one more
        # response per fold filter and one more null per pattern
        extra = second.model.n_filter_passes_ - first.model.n_filter_passes_
        n_folds, n_patterns = second.model.n_folds_, 2
        assert 0 < extra <= n_folds * n_patterns + n_patterns * FAST["n_surrogates"] + 1, extra


def test_every_tested_peak_sits_on_the_tested_response(both_passes):
    """As drawn by plot_responses: each candidate's marker on the response at its tested height."""
    for _, second, *_ in both_passes:
        fig = plot_responses(second)
        for ax in fig.axes:
            times, values = ax.lines[0].get_xdata(), ax.lines[0].get_ydata()
            for line in ax.lines:
                if "peak" not in str(line.get_label()):
                    continue
                for x, y in zip(line.get_xdata(), line.get_ydata()):
                    i = int(np.argmin(np.abs(times - x)))
                    assert times[i] == pytest.approx(x) and values[i] == pytest.approx(y, rel=1e-5)


def test_a_first_pass_peak_moved_into_a_retested_region_keeps_its_height():
    """Fold 0 has no members from the other folds (every significant occurrence is in it), so its
    candidates stay; one of them, moved by its fold's shift, sits 2 bins inside fold 1, whose
    responses the second pass replaces. The tested responses still hold its height there."""
    rng = np.random.default_rng(0)
    dense = (rng.random((20, 3000)) < 0.002).astype(int)
    starts = np.arange(100, 900, 100)  # listed occurrences, all in fold 0
    for start in np.concatenate([starts, [1500, 1700, 2300, 2600]]):
        dense[np.arange(10), start + np.arange(10)] = 1
    raster = SpikeRaster.from_dense(dense)
    regions = fold_regions(3001, 3)
    moved = regions[0][1] + 2
    peaks = np.concatenate([starts + 4, [moved]])
    n = peaks.size
    first = CandidatePeaks(pattern=np.zeros(n, int), peak_bin=peaks, height=np.r_[np.ones(n - 1), 0.5],
                           pvalue=np.r_[np.full(n - 1, 0.01), 0.9], significant=np.arange(n) < n - 1,
                           tested_responses=np.zeros((1, 3001)), thresholds=np.zeros((1, 3001)),
                           fold=np.zeros(n, int))
    op = make_response(raster, 20, backend="events", device=torch.device("cpu"))
    again = second_pass_test(op, raster, first, regions, lag_tolerance=1, alpha=0.05, n_surrogates=40,
                             rng=np.random.default_rng(1))
    kept = (again.peak_bin == moved) & (again.fold == 0)
    assert kept.sum() == 1 and (again.fold == 1).any()  # fold 1 was retested around it
    np.testing.assert_array_equal(again.tested_responses[again.pattern, again.peak_bin], again.height)


def test_the_retested_folds_pad_their_candidates_and_their_null_alike(monkeypatch):
    from _spies import record_padding

    from convseq_neo.core import second_pass

    seen = record_padding(monkeypatch, second_pass)
    test_a_first_pass_peak_moved_into_a_retested_region_keeps_its_height()
    assert seen == {"candidates": 10, "null": 10}  # W = 20


def test_two_15_member_sequences_are_each_found_with_f1_09_for_4_of_5_seeds():
    """Issue 21's CI case: two disjoint 15-member sequences, each found with F1 >= 0.9.

    40 neurons (10 in no sequence), 60 s at 2 Hz, 20 occurrences each at participation 0.85, member
    steps 10 ms, jitter 2 ms; recordings of seeds 0-4, the detector's settings as in the other
    tests here. Measured: the second pass 1.00 / 1.00, 1.00 / 0.98, 1.00 / 1.00, 1.00 / 0.98 and
    1.00 / 1.00; the first pass alone 0.98 / 1.00, 0.71 / 0.80, 1.00 / 1.00, 1.00 / 0.98 and
    1.00 / 1.00. The benchmark's harder layout (80 neurons, 180 s, 5-15 ms steps) is on the
    performance page.
    """
    options = dict(bin_size=5 * pq.ms, width=250 * pq.ms, n_patterns=2, random_state=0, n_jobs=1, **FAST)
    weakest = []
    for seed in SEEDS:
        recording = _two_sequences(seed, members=15)
        scores = _f1(detect(recording.spiketrains, second_pass=True, **options), recording)
        assert len(scores.per_pattern) == 2
        weakest.append(scores.per_pattern["f1"].min())
    assert sum(f1 >= 0.9 for f1 in weakest) >= 4, weakest


def test_second_pass_adds_nothing_where_the_first_finds_nothing():
    trains = poisson_background(30, 3 * pq.Hz, 0 * pq.s, 40 * pq.s, random_state=4)
    options = dict(bin_size=5 * pq.ms, width=200 * pq.ms, n_patterns=1, random_state=0, n_jobs=1, **FAST)
    first = detect(trains, **options)
    second = detect(trains, second_pass=True, **options)
    assert len(first.occurrences) == 0 and len(second.occurrences) == 0
    np.testing.assert_array_equal(first.candidates["pvalue"].to_numpy(), second.candidates["pvalue"].to_numpy())
    assert second.model.n_filter_passes_ == first.model.n_filter_passes_  # it tested nothing, so it costs nothing


def test_filters_of_a_fold_never_read_what_its_tests_read():
    """Spikes a fold's tests read change nothing in that fold's filter; spikes elsewhere do."""
    rng = np.random.default_rng(0)
    width = 20
    dense = (rng.random((12, 3000)) < 0.01).astype(int)
    regions = [(0, 1000), (1000, 2000), (2000, 3001)]
    # occurrences every 150 bins, two exactly two windows from fold 1's region (window peaks 960, 2040)
    # and two one window from it (980, 2020), which the filters leave out: their flanks reach those bins
    starts = np.array(sorted({*range(100, 2900, 150)} - {1900, 2050} | {957, 977, 2017, 2037}))
    for start in starts:
        dense[np.arange(6), start + np.arange(6)] = 1
    peaks = starts + 3
    first = CandidatePeaks(pattern=np.zeros(peaks.size, int), peak_bin=peaks, height=np.ones(peaks.size),
                           pvalue=np.full(peaks.size, 0.01), significant=np.ones(peaks.size, bool),
                           tested_responses=np.zeros((1, 3001)), thresholds=np.zeros((1, 3001)))
    before = second_pass_filters(SpikeRaster.from_dense(dense), first, regions, 1, width, 1, 0.05)
    assert before[1, 0, :6].any() and not before[1, 0, 6:].any()
    # response t reads raster bins [t - W // 2, t - W // 2 + W): fold 1's tests read [990, 2010)
    low, high = 1000 - width // 2, 2000 - width // 2 + width
    changed = dense.copy()
    changed[:, low:high] = changed[:, low:high][:, rng.permutation(high - low)]  # times shuffled, counts kept
    after = second_pass_filters(SpikeRaster.from_dense(changed), first, regions, 1, width, 1, 0.05)
    np.testing.assert_array_equal(before[1], after[1])
    assert not np.array_equal(before[0], after[0])  # fold 0 reads fold 1's occurrences


@pytest.mark.parametrize("options, error, words", [
    ({"second_pass": "yes"}, TypeError, "second_pass must be a bool"),
    ({"second_pass": True, "significance": "random_filters"}, ValueError, "significance='crossfit'"),
])
def test_second_pass_is_checked_up_front(options, error, words):
    with pytest.raises(error, match=words):
        ConvSeq(**options).check_params()
