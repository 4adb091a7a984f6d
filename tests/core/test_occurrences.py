"""One pattern per stretch of time: which of two overlapping significant occurrences stays."""

import numpy as np

from convseq_neo.core.occurrences import OCCURRENCE_COLUMNS, occurrence_table, suppress_cross_talk
from convseq_neo.core.significance import empirical_pvalues, pvalue_resolution, standardized_heights

OFFSETS = np.zeros(2)
SPANS = np.array([[-5.0, 5.0], [-5.0, 5.0]])


def _overlapping(pvalue, peak, null_z=None):
    """Pattern 0 and pattern 1 peaking 3 bins apart (their spans overlap), both significant."""
    return occurrence_table(np.array([0, 1]), np.array([100, 103]), np.asarray(peak, float), np.asarray(pvalue, float),
                            np.ones(2, bool), OFFSETS, SPANS, null_z=null_z)


def _kept(frame):
    return frame.loc[frame["significant"], "pattern"].tolist()


def test_the_smaller_pvalue_stays_whatever_the_heights():
    frame = _overlapping([0.01, 0.001], [9.0, 1.0], null_z=[8.0, 1.0])
    assert _kept(suppress_cross_talk(frame, 2.0, pvalue_resolution=1e-4)) == [1]


def test_beyond_every_null_peak_the_peak_furthest_above_its_own_null_stays():
    # pattern 0's filter has more members: the higher peak, but less far above its null; its null
    # also has more peaks, so its floor p-value is smaller although both peaks beat every null peak
    rng = np.random.default_rng(0)
    null = [rng.normal(6.0, 1.0, 900), rng.normal(1.0, 0.1, 400)]
    heights = np.array([10.5, 2.0])
    pvalues = np.array([empirical_pvalues(heights[k:k + 1], null[k])[0] for k in range(2)])
    assert pvalues.tolist() == [1 / 901, 1 / 401]
    z = standardized_heights(np.array([0, 1]), heights, null)
    np.testing.assert_allclose(z, [(h - n.mean()) / n.std() for h, n in zip(heights, null)])
    assert z[1] > 1.5 * z[0]
    frame = _overlapping(pvalues, heights, null_z=z)
    assert _kept(suppress_cross_talk(frame, 2.0, pvalue_resolution=pvalue_resolution(null))) == [1]
    # without the resolution, the larger null's floor would decide
    assert _kept(suppress_cross_talk(frame, 2.0)) == [0]
    assert list(suppress_cross_talk(frame, 2.0).columns) == OCCURRENCE_COLUMNS  # null_z is not reported
    # without standardized heights, the higher peak
    assert _kept(suppress_cross_talk(_overlapping(pvalues, heights), 2.0, pvalue_resolution=1 / 401)) == [0]


def test_without_standardized_heights_the_higher_peak_stays():
    # the fallback of a test with no null (significance="random_filters")
    assert _kept(suppress_cross_talk(_overlapping([np.nan, np.nan], [2.0, 9.0]), 2.0)) == [1]


def test_occurrences_apart_in_time_both_stay():
    frame = occurrence_table(np.array([0, 1]), np.array([100, 140]), np.array([9.0, 2.0]), np.full(2, 0.002),
                             np.ones(2, bool), OFFSETS, SPANS, null_z=np.array([3.0, 10.0]))
    assert sorted(_kept(suppress_cross_talk(frame, 2.0))) == [0, 1]


def test_standardized_heights_of_degenerate_nulls():
    rows, heights = np.array([0, 0, 0, 1, 2]), np.array([2.0, 1.0, 0.5, 3.0, 2.0])
    z = standardized_heights(rows, heights, [np.ones(10), np.array([], float), np.array([0.0, 2.0])])
    assert z[:3].tolist() == [np.inf, 0.0, -np.inf]  # no spread: above, at, below
    assert np.isnan(z[3]) and z[4] == 1.0
    assert pvalue_resolution([np.ones(10), np.array([], float), np.ones(3)]) == 1 / 4
