"""One pattern per stretch of time: which of two overlapping significant occurrences stays."""

import numpy as np

from convseq_neo.core.occurrences import occurrence_table, suppress_cross_talk
from convseq_neo.core.significance import standardized_heights

OFFSETS = np.zeros(2)
SPANS = np.array([[-5.0, 5.0], [-5.0, 5.0]])


def _overlapping(pvalue, peak, null_z=None):
    """Pattern 0 and pattern 1 peaking 3 bins apart (their spans overlap), both significant."""
    return occurrence_table(np.array([0, 1]), np.array([100, 103]), np.asarray(peak, float), np.asarray(pvalue, float),
                            np.ones(2, bool), OFFSETS, SPANS, null_z=null_z)


def _kept(frame):
    return frame.loc[frame["significant"], "pattern"].tolist()


def test_the_smaller_pvalue_stays_whatever_the_heights():
    assert _kept(suppress_cross_talk(_overlapping([0.01, 0.001], [9.0, 1.0], null_z=[8.0, 1.0]), 2.0)) == [1]


def test_at_tied_pvalues_the_peak_furthest_above_its_own_null_stays():
    # pattern 0's filter has more members: a higher peak, but less far above its null
    rng = np.random.default_rng(0)
    null = [rng.normal(6.0, 1.0, 500), rng.normal(1.0, 0.1, 500)]
    heights = np.array([9.0, 2.0])  # 3 and 10 null standard deviations above the null means
    z = standardized_heights(np.array([0, 1]), heights, null)
    np.testing.assert_allclose(z, [(h - n.mean()) / n.std() for h, n in zip(heights, null)])
    assert z[1] > 2 * z[0]
    frame = suppress_cross_talk(_overlapping([1 / 501, 1 / 501], heights, null_z=z), 2.0)
    assert _kept(frame) == [1]
    assert list(frame.columns) == list(_overlapping([0.1, 0.1], [1, 1]).columns)  # null_z is not reported
    # without it, the raw height decides (the rule's fallback, e.g. for random filters)
    assert _kept(suppress_cross_talk(_overlapping([1 / 501, 1 / 501], heights), 2.0)) == [0]


def test_occurrences_apart_in_time_both_stay():
    frame = occurrence_table(np.array([0, 1]), np.array([100, 140]), np.array([9.0, 2.0]), np.full(2, 0.002),
                             np.ones(2, bool), OFFSETS, SPANS, null_z=np.array([3.0, 10.0]))
    assert sorted(_kept(suppress_cross_talk(frame, 2.0))) == [0, 1]


def test_a_null_without_spread_gives_no_standardized_height():
    z = standardized_heights(np.array([0, 1, 1]), np.array([1.0, 2.0, 3.0]), [np.ones(10), np.array([0.0, 2.0])])
    assert np.isnan(z[0]) and z[1:].tolist() == [1.0, 2.0]
