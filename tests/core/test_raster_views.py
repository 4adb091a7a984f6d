"""SpikeRaster.by_bin: the cached (bin, neuron)-ordered view the event-driven code reads."""

import numpy as np

from convseq_neo.raster import SpikeRaster


def _raster():
    rng = np.random.default_rng(0)
    dense = rng.poisson(0.3, size=(12, 200))
    return SpikeRaster.from_dense(dense), dense


def test_by_bin_is_sorted_by_bin_then_neuron_and_holds_every_entry():
    raster, dense = _raster()
    bins, neurons, counts = raster.by_bin
    assert bins.size == neurons.size == counts.size == raster.nnz
    key = bins * raster.n_neurons + neurons
    assert (np.diff(key) > 0).all()
    assert counts.dtype == np.float64
    np.testing.assert_array_equal(counts, dense[neurons, bins])


def test_by_bin_is_computed_once():
    raster, _ = _raster()
    first = raster.by_bin
    assert raster.by_bin is first
    assert all(a is b for a, b in zip(raster.by_bin, first))
    assert SpikeRaster.from_dense(raster.to_dense()).by_bin is not first  # cached per raster
