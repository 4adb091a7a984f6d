"""convseq_neo.analysis.rank_order: each occurrence's member order against its pattern's lags."""

import neo
import numpy as np
import pytest
import quantities as pq

from convseq_neo import detect
from convseq_neo.analysis.rank_order import occurrence_rank_order
from convseq_neo.synthetic.generate import sequence_recording

SMALL_FIT = {"max_epochs": 200, "min_epochs": 50, "n_surrogates": 40, "n_folds": 3}


@pytest.fixture(scope="module")
def planted():
    recording = sequence_recording(n_neurons=30, members_per_pattern=12, duration=60 * pq.s, lag_step=10 * pq.ms,
                                   n_occurrences=30, jitter=2 * pq.ms, random_state=0)
    result = detect(recording.spiketrains, bin_size=5 * pq.ms, width=200 * pq.ms, random_state=0, **SMALL_FIT)
    assert len(result.occurrences) >= 20
    return recording, result


def _mirrored(trains, neurons, spans):
    """``trains`` with the spikes of ``neurons`` inside each ``(start, stop)`` span mirrored about its midpoint."""
    out = []
    for row, train in enumerate(trains):
        times = train.times.rescale(pq.s).magnitude.copy()
        if row in neurons:
            for start, stop in spans:
                inside = (times >= start) & (times <= stop)
                times[inside] = start + stop - times[inside]
        out.append(neo.SpikeTrain(np.sort(times) * pq.s, t_start=train.t_start, t_stop=train.t_stop,
                                  name=train.name))
    return out


def test_planted_occurrences_follow_the_pattern_order(planted):
    _, result = planted
    order = occurrence_rank_order(result, random_state=0)
    assert list(order.columns) == ["pattern", "center", "n_active", "rho", "pvalue"]
    assert order.index.equals(result.occurrences.index)
    np.testing.assert_array_equal(order.center, result.occurrences.center)
    assert (order.n_active <= result.patterns[0].size).all()
    assert np.median(order.rho) > 0.6
    assert np.mean(order.pvalue < 0.05) > 0.7


def test_mirrored_occurrences_reverse_the_sign(planted):
    recording, result = planted
    order = occurrence_rank_order(result, random_state=0)
    margin = result._spike_tolerance_s
    spans = list(zip(result.occurrences.onset - margin, result.occurrences.offset + margin))
    assert all(stop < next_start for (_, stop), (next_start, _) in zip(spans, spans[1:]))  # no two spans overlap
    mirrored = _mirrored(recording.spiketrains, set(result.patterns[0].neurons.tolist()), spans)
    reversed_order = occurrence_rank_order(result, mirrored, random_state=0)
    np.testing.assert_array_equal(reversed_order.n_active, order.n_active)
    np.testing.assert_allclose(reversed_order.rho, -order.rho, atol=1e-12)
    assert np.median(reversed_order.rho) < -0.6


def test_same_seed_same_pvalues(planted):
    _, result = planted
    first = occurrence_rank_order(result, n_shuffles=200, random_state=np.random.default_rng(3))
    again = occurrence_rank_order(result, n_shuffles=200, random_state=3)
    np.testing.assert_array_equal(first.pvalue, again.pvalue)
    assert first.pvalue.min() >= 1 / 201


def test_too_few_active_members_give_nan(planted):
    _, result = planted
    order = occurrence_rank_order(result, min_active=13, random_state=0)  # more than the pattern's members
    assert order.rho.isna().all() and order.pvalue.isna().all()


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"n_shuffles": 0}, ValueError, "n_shuffles"), ({"n_shuffles": 10.0}, TypeError, "n_shuffles"),
    ({"min_active": 2}, ValueError, "min_active"), ({"min_active": True}, TypeError, "min_active"),
])
def test_bad_arguments(planted, kwargs, error, match):
    _, result = planted
    with pytest.raises(error, match=match):
        occurrence_rank_order(result, **kwargs)


def test_not_a_result():
    with pytest.raises(TypeError, match="result must be a DetectionResult"):
        occurrence_rank_order(np.zeros(3))


def test_a_search_over_warps_reads_each_pattern_at_its_scale():
    # a clean recording, so that find (each peak tested against the new data's surrogates, at alpha / 2
    # for two warps) keeps its occurrences
    recording = sequence_recording(n_neurons=30, members_per_pattern=12, duration=60 * pq.s, rate=1 * pq.Hz,
                                   lag_step=10 * pq.ms, n_occurrences=30, jitter=1 * pq.ms, participation=1.0,
                                   random_state=0)
    result = detect(recording.spiketrains, bin_size=5 * pq.ms, width=200 * pq.ms, random_state=0, **SMALL_FIT)
    found = result.find(recording.spiketrains, warp=[1.0, 2.0], random_state=0)
    order = occurrence_rank_order(found, random_state=0)
    assert order.index.equals(found.occurrences.index)
    at_one = found.occurrences["warp"].to_numpy() == 1.0
    assert at_one.sum() >= 20
    assert np.median(order.rho[at_one]) > 0.8
