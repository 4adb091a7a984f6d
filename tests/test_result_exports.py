"""Exports of a DetectionResult for other tools: pynapple IntervalSets and viziphant's SPADE plots."""

from __future__ import annotations

import copy
import logging
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
import quantities as pq

from convseq_neo.detect import detect
from convseq_neo.synthetic.generate import sequence_recording

FAST = dict(max_epochs=200, min_epochs=50, n_surrogates=40, n_folds=3)


@pytest.fixture(scope="module")
def recording():
    return sequence_recording(n_neurons=40, n_patterns=2, members_per_pattern=10, duration=40 * pq.s, rate=2 * pq.Hz,
                              lag_step=10 * pq.ms, participation=0.9, jitter=3 * pq.ms, n_occurrences=20,
                              random_state=5)


@pytest.fixture(scope="module")
def result(recording):
    return detect(recording.spiketrains, 5 * pq.ms, 200 * pq.ms, n_patterns=2, random_state=0, device="cpu", **FAST)


def _with_occurrences(result, rows: pd.DataFrame):
    changed = copy.copy(result)
    changed.occurrences = rows.reset_index(drop=True)
    return changed


# ------------------------------------------------------------------ pynapple
def test_to_pynapple_one_interval_set_with_metadata(result):
    nap = pytest.importorskip("pynapple")
    occ = result.occurrences
    assert len(occ) >= 15 and occ["pattern"].nunique() == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # pynapple warns when it merges or drops intervals (and their metadata)
        epochs = result.to_pynapple()
    assert isinstance(epochs, nap.IntervalSet) and len(epochs) == len(occ)
    order = occ.sort_values(["onset", "pattern"], kind="stable")
    np.testing.assert_allclose(epochs.start, order["onset"])
    np.testing.assert_allclose(epochs.end, order["offset"])
    assert {"pattern", "center", "onset", "offset", "peak", "pvalue"} <= set(epochs.metadata_columns)
    np.testing.assert_array_equal(epochs.pattern.to_numpy(), order["pattern"].to_numpy())
    np.testing.assert_allclose(epochs["pvalue"].to_numpy(), order["pvalue"].to_numpy())
    first = epochs[epochs.pattern == 0]
    assert len(first) == result.patterns[0].n_occurrences
    # the members' spikes fall inside the pattern's occurrences far more often than the time they cover
    members = result.patterns[0].neurons
    spikes = [nap.Ts(t=result._source[n].times.rescale(pq.s).magnitude) for n in members]
    inside = sum(len(ts.restrict(first)) for ts in spikes)
    assert inside >= 0.5 * len(first) * len(members)
    assert inside / sum(len(ts) for ts in spikes) > 2 * float(first.tot_length()) / 40.0


def test_to_pynapple_by_pattern(result):
    nap = pytest.importorskip("pynapple")
    by_pattern = result.to_pynapple(by_pattern=True)
    assert sorted(by_pattern) == [0, 1]
    for k, epochs in by_pattern.items():
        assert isinstance(epochs, nap.IntervalSet)
        assert len(epochs) == result.patterns[k].n_occurrences
        assert set(epochs.pattern.to_numpy().tolist()) == {k}
    nothing = _with_occurrences(result, result.occurrences[result.occurrences["pattern"] == 0])
    empty = nothing.to_pynapple(by_pattern=True)[1]
    assert len(empty) == 0 and "pvalue" in empty.metadata_columns


def test_to_pynapple_widens_zero_length_and_splits_overlaps(result, caplog):
    pytest.importorskip("pynapple")
    bin_size = float(result.bin_size)
    rows = result.occurrences.iloc[:3].copy()
    rows["onset"] = rows["offset"] = rows["center"]                # a one-member pattern: zero length
    clash = result.occurrences.iloc[[3]].copy()
    clash["onset"] = rows["center"].iloc[2] - bin_size / 4       # overlaps the third one
    clash["offset"] = clash["onset"] + 10 * bin_size
    changed = _with_occurrences(result, pd.concat([rows, clash]))
    with caplog.at_level(logging.WARNING, logger="convseq_neo.result"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pynapple's own note on the intervals that now touch
        epochs = changed.to_pynapple()
    assert len(epochs) == 4 and "overlap" in caplog.text
    lengths = (epochs.end - epochs.start)
    assert np.all(lengths > 0)
    np.testing.assert_allclose(lengths[:2], bin_size)
    np.testing.assert_allclose((epochs.start + epochs.end)[:2] / 2, rows["center"].iloc[:2])
    np.testing.assert_allclose(epochs["onset"].to_numpy()[:3], rows["center"].to_numpy())  # metadata kept as is


def test_to_pynapple_without_pynapple(result, monkeypatch):
    monkeypatch.setitem(sys.modules, "pynapple", None)
    with pytest.raises(ImportError, match="pip install pynapple"):
        result.to_pynapple()


# ------------------------------------------------------------------ viziphant
def test_spade_dict_plots_with_viziphant(result, recording):
    pytest.importorskip("viziphant")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from viziphant.patterns import plot_patterns, plot_patterns_statistics_all

    patterns = result.to_spade_dict()["patterns"]
    assert len(patterns) == 2
    try:
        # colors are passed: viziphant 0.4's default calls plt.cm.get_cmap, which matplotlib >= 3.9 removed
        axes = plot_patterns(recording.spiketrains, patterns, colors=["tab:red", "tab:blue"])
        drawn = sum(len(c.get_offsets()) for c in axes.collections)
        assert drawn >= sum(len(p["neurons"]) * len(p["times"]) for p in patterns)
        stats = plot_patterns_statistics_all(patterns)
        assert len(stats) == 4  # participation, occurrences, size and (patterns with delays) lags
    finally:
        plt.close("all")


def test_to_pynapple_nested_occurrences_keep_every_row_valid(result, caplog):
    pytest.importorskip("pynapple")
    rows = result.occurrences.iloc[:4].copy()
    bounds = np.array([[0.0, 10.0], [1.0, 10.0], [2.0, 3.0], [5.0, 15.0]])  # 2 nested in the first, 1 reaching past
    rows["onset"], rows["offset"] = bounds[:, 0], bounds[:, 1]
    rows["center"] = bounds.mean(axis=1)
    rows["pattern"] = [0, 1, 0, 1]
    changed = _with_occurrences(result, rows)
    with caplog.at_level(logging.WARNING, logger="convseq_neo.result"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pynapple's own note on the intervals that now touch
        epochs = changed.to_pynapple()
    assert "nested" in caplog.text and "overlap" in caplog.text
    assert len(epochs) == 2 and np.all(epochs.end > epochs.start)
    assert {"pattern", "center", "onset", "offset", "peak", "pvalue"} <= set(epochs.metadata_columns)
    np.testing.assert_allclose(epochs["onset"].to_numpy(), [0.0, 5.0])     # the unsplit times, of the kept rows
    np.testing.assert_allclose(epochs["offset"].to_numpy(), [10.0, 15.0])
    np.testing.assert_allclose(epochs.start, [0.0, 7.5], atol=1e-5)
    np.testing.assert_allclose(epochs.end, [7.5, 15.0], atol=1e-5)
    by_pattern = changed.to_pynapple(by_pattern=True)   # within one pattern: [1, 10] and [5, 15] split
    assert len(by_pattern[1]) == 2 and np.all(by_pattern[1].end > by_pattern[1].start)
