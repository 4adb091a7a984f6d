"""convseq_neo.analysis.replication: circular shifts and held-out replication on planted data."""

import numpy as np
import pytest
import quantities as pq

from convseq_neo.analysis.replication import HeldOutReplication, circular_shift, held_out_replication
from convseq_neo.raster import SpikeRaster
from convseq_neo.synthetic.generate import poisson_background, sequence_recording

SMALL_FIT = {"max_epochs": 200, "min_epochs": 50, "n_surrogates": 40, "n_folds": 3}


def test_circular_shift_keeps_each_neuron_and_moves_it():
    rng = np.random.default_rng(0)
    dense = (rng.random((20, 500)) < 0.05).astype(np.int64) * rng.integers(1, 3, (20, 500))
    raster = SpikeRaster.from_dense(dense, bin_size_s=0.01, t_start_s=3.0)
    shifted = circular_shift(raster, random_state=1)
    out = shifted.to_dense()
    np.testing.assert_array_equal(out.sum(axis=1), dense.sum(axis=1))
    assert shifted.t_start_s == 3.0 and shifted.bin_size_s == 0.01
    for row in range(20):  # each row is a rotation of the original
        assert any(np.array_equal(np.roll(dense[row], k), out[row]) for k in range(500))
    assert not np.array_equal(out, dense)
    np.testing.assert_array_equal(circular_shift(raster, random_state=1).to_dense(), out)


def test_planted_sequence_recurs_on_held_out_data_not_on_shifted():
    rec = sequence_recording(n_neurons=30, members_per_pattern=12, duration=80 * pq.s, rate=2 * pq.Hz,
                             lag_step=10 * pq.ms, n_occurrences=40, jitter=2 * pq.ms, random_state=3)
    check = held_out_replication(rec.spiketrains, bin_size=5 * pq.ms, width=200 * pq.ms, random_state=0,
                                 **SMALL_FIT)
    assert isinstance(check, HeldOutReplication)
    assert float(check.split_time) == pytest.approx(40.0)
    counts = check.counts
    centres_s = rec.ground_truth.array_annotations["center"] * 1.0
    truth_after_split = int(np.sum(np.asarray(centres_s) >= 40.0))
    assert counts.held_out[0] >= 0.8 * truth_after_split
    assert counts.shifted[0] <= 1
    assert check.held_out.occurrences.center.min() >= 40.0
    assert "held-out" in repr(check)


def test_background_alone_does_not_replicate():
    trains = poisson_background(30, 2 * pq.Hz, 0 * pq.s, 80 * pq.s, random_state=4)
    counts = held_out_replication(trains, bin_size=5 * pq.ms, width=200 * pq.ms, random_state=0,
                                  **SMALL_FIT).counts
    assert counts.held_out[0] <= 2 and counts.shifted[0] <= 2


@pytest.mark.parametrize(("split", "error"), [(0, ValueError), (1, ValueError), (1.5, ValueError),
                                             (-0.1, ValueError), (True, TypeError), ("half", TypeError)])
def test_bad_split(split, error):
    with pytest.raises(error, match="split"):
        held_out_replication([], bin_size=5 * pq.ms, width=200 * pq.ms, split=split)


def test_bad_width_and_raster():
    with pytest.raises(TypeError, match="width"):
        held_out_replication([], bin_size=5 * pq.ms, width=0.2)
    with pytest.raises(TypeError, match="raster"):
        circular_shift(np.zeros((3, 3)))
