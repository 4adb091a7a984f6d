"""The fit's independent work on a dask cluster: same seed, same result as in one process (to float rounding)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import quantities as pq

from convseq_neo import ConvSeq, detect
from convseq_neo.core.significance import SURROGATE_CHUNKS, null_peak_heights_in_chunks
from convseq_neo.core.tasks import check_client, run_tasks
from convseq_neo.raster import SpikeRaster
from convseq_neo.synthetic.generate import sequence_recording

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=40) as cluster, distributed.Client(cluster) as connected:
        yield connected


def _recording():
    return sequence_recording(n_neurons=30, members_per_pattern=12, duration=40 * pq.s, rate=2 * pq.Hz,
                              lag_step=10 * pq.ms, n_occurrences=12, participation=0.9, random_state=3)


def test_detect_with_a_client_equals_detect_without(client):
    recording = _recording()
    settings = dict(bin_size=5 * pq.ms, width=200 * pq.ms, n_patterns=2, random_state=7, n_jobs=1, device="cpu",
                    max_epochs=150, min_epochs=30, n_folds=3, n_surrogates=40)
    alone = detect(recording.spiketrains, **settings)
    spread = detect(recording.spiketrains, client=client, **settings)
    # the models train in other batches on the workers, so float sums may round differently: the
    # filters agree to float32 rounding and the detections are the same
    np.testing.assert_allclose(spread.model.filters_, alone.model.filters_, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(spread.model.thresholds_, alone.model.thresholds_, rtol=1e-4)
    pd.testing.assert_frame_equal(alone.model.occurrences_, spread.model.occurrences_, check_exact=False, rtol=1e-4)
    pd.testing.assert_frame_equal(alone.occurrences, spread.occurrences, check_exact=False, rtol=1e-4)
    assert alone.model.n_filter_passes_ == spread.model.n_filter_passes_
    # the work really was split: the planted sequence is found either way
    assert alone.occurrences.shape[0] >= 6


def test_the_null_in_chunks_is_the_same_on_a_client(client):
    rng = np.random.default_rng(0)
    raster = SpikeRaster.from_dense((rng.random((12, 900)) < 0.05).astype(int))
    filters = np.random.default_rng(1).dirichlet(np.ones(20), size=(2, 12)).astype(np.float32)
    regions = [(0, 400), (400, 881)]
    here = null_peak_heights_in_chunks(raster, filters, regions, 20, 30, np.random.default_rng(5), "cpu")
    there = null_peak_heights_in_chunks(raster, filters, regions, 20, 30, np.random.default_rng(5), "cpu",
                                        client=client)
    assert len(here) == 2
    for mine, theirs in zip(here, there):
        assert mine.size > 30 and np.array_equal(mine, theirs)
    other_seed = null_peak_heights_in_chunks(raster, filters, regions, 20, 30, np.random.default_rng(6), "cpu")
    assert not np.array_equal(here[0], other_seed[0])
    assert SURROGATE_CHUNKS > 1


def test_run_tasks_keeps_the_order_of_its_arguments(client):
    values = [(value,) for value in range(10)]
    assert run_tasks(abs, [(-v,) for (v,) in values], client=client) == list(range(10))
    assert run_tasks(divmod, [(7, 2)], shared={}, client=None) == [(3, 1)]


def test_a_bad_client_is_refused_before_any_work():
    with pytest.raises(TypeError, match="client must be None or a distributed.Client"):
        detect(_recording().spiketrains, n_patterns=1, bin_size=5 * pq.ms, width=200 * pq.ms, client="tcp://127.0.0.1:8786")
    with pytest.raises(TypeError, match="client"):
        ConvSeq(width=10).fit(np.ones((3, 100)), client=object())
    assert check_client(None) is None
