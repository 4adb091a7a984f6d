"""The opt-in second pass (ConvSeq(second_pass=True)): each fold tested with members measured on the other folds."""

import numpy as np
import pytest
import quantities as pq

from convseq_neo import ConvSeq, detect
from convseq_neo.core.second_pass import second_pass_filters
from convseq_neo.core.significance import CandidatePeaks
from convseq_neo.raster import SpikeRaster
from convseq_neo.synthetic.evaluate import score_detections
from convseq_neo.synthetic.generate import poisson_background, sequence_recording

FAST = dict(max_epochs=300, n_surrogates=40, n_folds=3)


@pytest.fixture(scope="module")
def two_sequences():
    """40 neurons, 60 s, two disjoint 12-member sequences, 20 occurrences each at participation 0.85.

    Seed 0 of this layout is one where the first pass mixes the two (F1 0.47 / 0.53, measured).
    """
    return sequence_recording(n_neurons=40, n_patterns=2, members_per_pattern=12, layout="disjoint",
                              duration=60 * pq.s, rate=2 * pq.Hz, lag_step=10 * pq.ms, n_occurrences=20,
                              participation=0.85, jitter=2 * pq.ms, random_state=0)


def _f1(result, recording):
    truth = recording.ground_truth
    occurrences = result.occurrences
    return score_detections(occurrences["center"].to_numpy(), occurrences["pattern"].to_numpy(),
                            truth.array_annotations["center"], truth.array_annotations["pattern_id"], 0.0625)


def test_second_pass_finds_two_mixed_sequences_better(two_sequences):
    options = dict(bin_size=5 * pq.ms, width=250 * pq.ms, n_patterns=2, random_state=0, n_jobs=1, **FAST)
    first = _f1(detect(two_sequences.spiketrains, **options), two_sequences)
    second_result = detect(two_sequences.spiketrains, second_pass=True, **options)
    second = _f1(second_result, two_sequences)
    assert second_result.parameters["second_pass"] is True
    assert second_result.model.n_filter_passes_ > 0
    assert second.per_pattern["f1"].min() >= 0.7, second.per_pattern
    assert second.per_pattern["f1"].mean() >= first.per_pattern["f1"].mean() + 0.2, (first.per_pattern,
                                                                                        second.per_pattern)
    assert second.n_false <= first.n_false


def test_second_pass_adds_nothing_where_the_first_finds_nothing():
    trains = poisson_background(30, 3 * pq.Hz, 0 * pq.s, 40 * pq.s, random_state=4)
    options = dict(bin_size=5 * pq.ms, width=200 * pq.ms, n_patterns=1, random_state=0, n_jobs=1, **FAST)
    first = detect(trains, **options)
    second = detect(trains, second_pass=True, **options)
    assert len(first.occurrences) == 0 and len(second.occurrences) == 0
    np.testing.assert_array_equal(first.candidates["pvalue"].to_numpy(), second.candidates["pvalue"].to_numpy())


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
