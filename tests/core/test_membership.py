"""Membership's rate: the larger of a neuron's mean rate and its rate on the flanks of the occurrence windows."""

import numpy as np

from convseq_neo.core.membership import _flank_rates, membership_for_pattern
from convseq_neo.raster import SpikeRaster


def test_flank_rates_count_the_width_either_side_and_never_the_window():
    # W = 10: window of the occurrence peaking at bin 35 is [30, 40), its flanks [20, 30) and [40, 50)
    raster = SpikeRaster([0, 0, 0, 0], [25, 33, 34, 45], [1, 1, 1, 1], 1, 100)
    np.testing.assert_allclose(_flank_rates(raster, np.array([35]), 10), [2 / 20])
    # near the start the left flank [-5, 5) is cut to [0, 5): it must not reach into the window [5, 15)
    raster = SpikeRaster([0, 0, 0], [2, 8, 9], [1, 1, 1], 1, 100)
    np.testing.assert_allclose(_flank_rates(raster, np.array([10]), 10), [1 / 15])


def test_a_neuron_that_only_fires_more_around_the_occurrences_is_not_a_member():
    # neuron 0 fires at random within +-2 W of every occurrence (a local rate rise, no fixed lag);
    # neuron 1 fires at a fixed lag in every occurrence; both are silent elsewhere
    rng = np.random.default_rng(0)
    width, peaks = 20, np.arange(100, 9_900, 400)
    rise = (peaks[:, None] + rng.integers(-2 * width, 2 * width, (peaks.size, 6))).ravel()
    lagged = peaks - 3
    raster = SpikeRaster(np.r_[np.zeros(rise.size, int), np.ones(lagged.size, int)], np.r_[rise, lagged],
                         np.ones(rise.size + lagged.size, int), 2, 10_000)
    table = membership_for_pattern(0, raster, peaks, width, lag_tolerance=1, alpha=0.05)
    assert table["member"].tolist() == [False, True]
