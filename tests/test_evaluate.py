"""Tests for convseq_neo.synthetic.evaluate: matching, per-pattern scoring, membership, order, false rate."""

from __future__ import annotations

import doctest
import itertools
import math
import time

import networkx as nx
import numpy as np
import pandas as pd
import pytest
import quantities as pq
from hypothesis import example, given, settings
from hypothesis import strategies as st
from scipy.optimize import linear_sum_assignment

import convseq_neo.synthetic.evaluate as evaluate
from convseq_neo.synthetic.evaluate import (
    DetectionScores,
    EventMatch,
    OrderCorrelation,
    false_detections_per_minute,
    match_events,
    membership_auc,
    order_correlation,
    score_detections,
)

# ---------------------------------------------------------------------------------------------
# References
# ---------------------------------------------------------------------------------------------


def _networkx_max_matching(detected, true, tol) -> int:
    graph = nx.Graph()
    left = [("d", i) for i in range(len(detected))]
    right = [("t", j) for j in range(len(true))]
    graph.add_nodes_from(left, bipartite=0)
    graph.add_nodes_from(right, bipartite=1)
    graph.add_edges_from(
        (("d", i), ("t", j))
        for i, d in enumerate(detected)
        for j, t in enumerate(true)
        if abs(d - t) <= tol
    )
    matching = nx.bipartite.maximum_matching(graph, top_nodes=left)
    return len(matching) // 2


def _brute_force(detected, true, tol) -> tuple[int, float]:
    """Largest matching size and, among those, the smallest total |error|, by enumeration."""
    n, m = len(detected), len(true)
    for k in range(min(n, m), 0, -1):
        costs = []
        for rows in itertools.combinations(range(n), k):
            for cols in itertools.permutations(range(m), k):
                errs = [abs(detected[i] - true[j]) for i, j in zip(rows, cols)]
                if max(errs) <= tol:
                    costs.append(sum(errs))
        if costs:
            return k, min(costs)
    return 0, 0.0


def _dense_lsa(detected, true, tol) -> tuple[int, float]:
    detected, true = np.asarray(detected, float), np.asarray(true, float)
    if detected.size == 0 or true.size == 0:
        return 0, 0.0
    err = np.abs(detected[:, None] - true[None, :])
    allowed = err <= tol
    scaled = err / tol if tol > 0 else np.zeros_like(err)
    r, c = linear_sum_assignment(np.where(allowed, scaled, min(err.shape) + 1.0))
    keep = allowed[r, c]
    return int(keep.sum()), float(err[r[keep], c[keep]].sum())


def _check_valid(m: EventMatch, detected, true, tol) -> None:
    detected, true = np.asarray(detected, float), np.asarray(true, float)
    assert m.pairs.shape == (m.n_hits, 2)
    assert m.n_hits <= min(len(detected), len(true))
    assert len(np.unique(m.pairs[:, 0])) == m.n_hits
    assert len(np.unique(m.pairs[:, 1])) == m.n_hits
    if m.n_hits:
        np.testing.assert_allclose(m.errors, detected[m.pairs[:, 0]] - true[m.pairs[:, 1]])
        assert np.all(np.abs(m.errors) <= tol)
        assert np.all(np.diff(m.pairs[:, 0]) > 0)
    assert m.n_misses == len(true) - m.n_hits
    assert m.n_false == len(detected) - m.n_hits


# ---------------------------------------------------------------------------------------------
# match_events: hand-made cases
# ---------------------------------------------------------------------------------------------


def test_detection_between_two_true_events_counts_once():
    m = match_events([5.0], [0.0, 10.0], tolerance=5.0)
    assert (m.n_hits, m.n_misses, m.n_false) == (1, 1, 0)
    assert m.pairs.tolist() == [[0, 0]]  # equally near: the earlier true event
    assert m.precision == 1.0 and m.recall == 0.5


def test_tolerance_edge_is_inclusive():
    assert match_events([3.0], [1.0], tolerance=2.0).n_hits == 1
    assert match_events([1.0], [3.0], tolerance=2.0).n_hits == 1
    beyond = np.nextafter(3.0, np.inf)
    assert match_events([beyond], [1.0], tolerance=2.0).n_hits == 0
    assert match_events([1.0], [beyond], tolerance=2.0).n_hits == 0
    # rounding in d - tol must not change the rule |d - t| <= tol
    assert match_events([0.3], [0.1], tolerance=0.2).n_hits == int(abs(0.3 - 0.1) <= 0.2)
    assert match_events([0.1], [0.3], tolerance=0.2).n_hits == int(abs(0.1 - 0.3) <= 0.2)


def test_zero_tolerance_requires_equal_times():
    m = match_events([1.0, 2.0, 2.0], [2.0, 3.0], tolerance=0.0)
    assert m.n_hits == 1 and m.errors.tolist() == [0.0]


def test_two_detections_near_one_true_event():
    m = match_events([9.0, 10.5], [10.0], tolerance=2.0)
    assert (m.n_hits, m.n_false, m.n_misses) == (1, 1, 0)
    assert m.pairs.tolist() == [[1, 0]]  # the nearer one
    assert m.errors.tolist() == [0.5]
    assert m.unmatched_detected.tolist() == [0]
    assert m.unmatched_true.tolist() == []


def test_greedy_nearest_first_is_suboptimal_but_matching_is_maximal():
    # Nearest pair first takes (6, 10) (error 4), leaving 0 and 15 without partners: 1 hit.
    # The optimum pairs 6 -> 0 (error 6) and 15 -> 10 (error 5): 2 hits.
    detected, true = [6.0, 15.0], [0.0, 10.0]
    m = match_events(detected, true, tolerance=6.0)
    assert m.n_hits == 2
    assert m.pairs.tolist() == [[0, 0], [1, 1]]
    assert m.errors.tolist() == [6.0, 5.0]
    assert m.median_abs_error == 5.5


def test_minimises_total_error_among_maximal_matchings():
    # Both 1 -> 2.5, 2 -> 1.5 (total 2) and 1 -> 1.5, 2 -> 2.5 (total 1) are maximal.
    m = match_events([1.0, 2.0], [2.5, 1.5], tolerance=2.0)
    assert m.pairs.tolist() == [[0, 1], [1, 0]]
    assert np.abs(m.errors).sum() == pytest.approx(1.0)


def test_unsorted_inputs_index_into_the_given_order():
    detected = [30.2, 10.1, 20.0]
    true = [20.3, 30.0, 10.0]
    m = match_events(detected, true, tolerance=0.5)
    assert m.pairs.tolist() == [[0, 1], [1, 2], [2, 0]]
    np.testing.assert_allclose(m.errors, [0.2, 0.1, -0.3])
    assert m.precision == m.recall == m.f1 == 1.0


def test_scores_and_median_error():
    m = match_events([1.0, 5.2, 9.0, 20.0], [1.1, 5.0, 12.0], tolerance=0.5)
    assert (m.n_hits, m.n_false, m.n_misses) == (2, 2, 1)
    assert m.precision == pytest.approx(0.5)
    assert m.recall == pytest.approx(2 / 3)
    assert m.f1 == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
    assert m.median_abs_error == pytest.approx(0.15)
    assert m.tolerance == 0.5


def test_result_is_frozen_and_read_only():
    m = match_events([1.0], [1.0], tolerance=0.1)
    with pytest.raises(AttributeError):
        m.n_hits = 3  # type: ignore[misc]
    with pytest.raises(ValueError):
        m.pairs[0, 0] = 5


@pytest.mark.parametrize(
    ("detected", "true", "expected"),
    [
        ([], [], (1.0, 1.0, 1.0)),
        ([], [1.0, 2.0], (1.0, 0.0, 0.0)),
        ([1.0, 2.0], [], (0.0, 1.0, 0.0)),
        ([1.0], [5.0], (0.0, 0.0, 0.0)),
    ],
)
def test_empty_case_conventions(detected, true, expected):
    m = match_events(detected, true, tolerance=1.0)
    assert (m.precision, m.recall, m.f1) == expected
    assert m.n_hits == 0 and m.pairs.shape == (0, 2) and m.errors.shape == (0,)
    assert math.isnan(m.median_abs_error)


def test_quantities_are_rescaled_to_seconds():
    m = match_events([101.0, 2000.0] * pq.ms, [0.1, 2.5] * pq.s, tolerance=2 * pq.ms)
    assert m.n_hits == 1
    assert m.errors[0] == pytest.approx(0.001)
    assert m.tolerance == pytest.approx(0.002)
    assert match_events([] * pq.s, [1.0] * pq.s, tolerance=1 * pq.ms).n_hits == 0


def test_many_events_are_fast_and_agree_with_assignment_reference():
    rng = np.random.default_rng(0)
    true = np.sort(rng.uniform(0, 20_000, 5000))
    detected = np.concatenate([true + rng.normal(0, 1.0, true.size), rng.uniform(0, 20_000, 2000)])
    start = time.perf_counter()
    m = match_events(detected, true, tolerance=3.0)
    assert time.perf_counter() - start < 2.0
    _check_valid(m, detected, true, 3.0)
    assert m.n_hits > 4500
    # a chained, dense case against the exact dense assignment
    d = rng.uniform(0, 300, 300)
    t = rng.uniform(0, 300, 250)
    m = match_events(d, t, tolerance=4.0)
    k, cost = _dense_lsa(d, t, 4.0)
    assert m.n_hits == k
    assert np.abs(m.errors).sum() == pytest.approx(cost)


# ---------------------------------------------------------------------------------------------
# match_events: properties
# ---------------------------------------------------------------------------------------------

_times = st.lists(st.integers(0, 60).map(lambda x: x / 2), max_size=14)


@settings(max_examples=200, deadline=None)
@given(detected=_times, true=_times, tol=st.integers(0, 10).map(lambda x: x / 2))
def test_matching_is_valid_and_maximum(detected, true, tol):
    detected, true = sorted(detected), sorted(true)
    m = match_events(detected, true, tolerance=tol)
    _check_valid(m, detected, true, tol)
    assert m.n_hits == _networkx_max_matching(detected, true, tol)
    k, cost = _dense_lsa(detected, true, tol)
    assert m.n_hits == k
    assert np.abs(m.errors).sum() == pytest.approx(cost, abs=1e-9)


@settings(max_examples=100, deadline=None)
@given(
    detected=st.lists(st.floats(0, 10, allow_nan=False), max_size=5),
    true=st.lists(st.floats(0, 10, allow_nan=False), max_size=5),
    tol=st.floats(0, 3, allow_nan=False),
)
@example(detected=[0.0, 0.0], true=[0.0, 0.0], tol=5e-324)  # a subnormal tolerance once gave NaN pair values
def test_matching_minimises_error_against_brute_force(detected, true, tol):
    m = match_events(detected, true, tolerance=tol)
    _check_valid(m, detected, true, tol)
    k, cost = _brute_force(detected, true, tol)
    assert m.n_hits == k
    assert np.abs(m.errors).sum() == pytest.approx(cost, rel=1e-9, abs=1e-9)


# ---------------------------------------------------------------------------------------------
# match_events: bad arguments
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"detected": [1.0], "true": [1.0], "tolerance": -1.0}, ValueError, "tolerance"),
        ({"detected": [1.0], "true": [1.0], "tolerance": float("nan")}, ValueError, "tolerance"),
        ({"detected": [1.0], "true": [1.0], "tolerance": "1"}, TypeError, "tolerance"),
        ({"detected": [1.0], "true": [1.0], "tolerance": True}, TypeError, "tolerance"),
        ({"detected": [np.nan], "true": [1.0], "tolerance": 1.0}, ValueError, "detected"),
        ({"detected": [1.0], "true": [np.inf], "tolerance": 1.0}, ValueError, "true"),
        ({"detected": [[1.0, 2.0]], "true": [1.0], "tolerance": 1.0}, ValueError, "detected"),
        ({"detected": 1.0, "true": [1.0], "tolerance": 1.0}, ValueError, "detected"),
        ({"detected": ["a"], "true": [1.0], "tolerance": 1.0}, TypeError, "detected"),
        ({"detected": [True], "true": [1.0], "tolerance": 1.0}, TypeError, "detected"),
        ({"detected": None, "true": [1.0], "tolerance": 1.0}, TypeError, "detected"),
        ({"detected": [1.0] * pq.s, "true": [1.0], "tolerance": 1.0}, TypeError, "detected"),
        ({"detected": [1.0], "true": [1.0] * pq.s, "tolerance": 1 * pq.s}, TypeError, "detected"),
        ({"detected": [1.0] * pq.s, "true": [1.0], "tolerance": 1 * pq.s}, TypeError, "true"),
        ({"detected": [1.0] * pq.s, "true": [1.0] * pq.m, "tolerance": 1 * pq.s}, ValueError, "true"),
        ({"detected": [1.0] * pq.s, "true": [1.0] * pq.s, "tolerance": -1 * pq.s}, ValueError, "tolerance"),
    ],
)
def test_match_events_bad_arguments(kwargs, error, name):
    with pytest.raises(error, match=name):
        match_events(**kwargs)


# ---------------------------------------------------------------------------------------------
# score_detections
# ---------------------------------------------------------------------------------------------


def _planted(rng, n_patterns=3, n_each=20):
    times = np.sort(rng.choice(np.arange(0, 100_000, 50), n_patterns * n_each, replace=False)).astype(float)
    labels = rng.permutation(np.repeat(np.arange(n_patterns), n_each))
    return times, labels


def test_permuted_learned_labels_are_recovered():
    rng = np.random.default_rng(1)
    true_times, true_labels = _planted(rng)
    permutation = {0: 7, 1: 5, 2: 6}
    detected_labels = np.array([permutation[x] for x in true_labels])
    detected_times = true_times + rng.uniform(-1, 1, true_times.size)
    scores = score_detections(detected_times, detected_labels, true_times, true_labels, tolerance=2.0)
    assert isinstance(scores, DetectionScores)
    assert scores.assignment == {7: 0, 5: 1, 6: 2}
    assert (scores.n_hits, scores.n_false, scores.n_misses) == (60, 0, 0)
    assert scores.precision == scores.recall == scores.f1 == 1.0
    table = scores.per_pattern
    assert list(table.columns) == list(evaluate.PER_PATTERN_COLUMNS)
    assert table["true_pattern"].tolist() == [0, 1, 2]
    assert table["learned_pattern"].tolist() == [7, 5, 6]
    assert (table["f1"] == 1.0).all()
    assert scores.hit_matrix.loc[7, 0] == 20 and scores.hit_matrix.loc[7, 1] == 0
    assert set(scores.matches) == {0, 1, 2}
    assert 0 < scores.median_abs_error <= 1.0


def test_extra_learned_pattern_counts_as_false_detections():
    true_times = np.array([10.0, 20.0, 30.0, 40.0])
    true_labels = np.array(["A", "B", "A", "B"])
    detected_times = np.array([10.0, 30.0, 20.0, 40.0, 55.0, 65.0, 75.0])
    detected_labels = np.array([0, 0, 1, 1, 9, 9, 9])
    scores = score_detections(detected_times, detected_labels, true_times, true_labels, tolerance=1.0)
    assert scores.assignment == {0: "A", 1: "B"}
    assert (scores.n_hits, scores.n_false, scores.n_misses) == (4, 3, 0)
    assert scores.precision == pytest.approx(4 / 7)
    assert scores.recall == 1.0
    assert scores.f1 == pytest.approx(8 / 11)
    table = scores.per_pattern
    extra = table[table["learned_pattern"] == 9].iloc[0]
    assert extra["true_pattern"] is None
    assert (extra["n_true"], extra["n_detected"], extra["n_false"], extra["n_hits"]) == (0, 3, 3, 0)
    assert extra["precision"] == 0.0 and extra["f1"] == 0.0
    for column in ("n_hits", "n_misses", "n_false", "n_true", "n_detected"):
        assert table[column].sum() == getattr(scores, column)


def test_detections_of_the_wrong_pattern_are_false_and_unlearned_truth_is_missed():
    # learned 0 fires on A's times; learned 1 fires on A's times too (a duplicate);
    # true B is found by no one.
    true_times = np.array([10.0, 20.0, 30.0, 40.0])
    true_labels = np.array([0, 1, 0, 1])
    detected_times = np.array([10.0, 30.0, 10.2, 30.2])
    detected_labels = np.array([0, 0, 1, 1])
    scores = score_detections(detected_times, detected_labels, true_times, true_labels, tolerance=0.5)
    assert len(scores.assignment) == 1 and list(scores.assignment.values()) == [0]
    assert (scores.n_hits, scores.n_false, scores.n_misses) == (2, 2, 2)
    row_b = scores.per_pattern[scores.per_pattern["true_pattern"] == 1].iloc[0]
    assert row_b["learned_pattern"] is None
    assert (row_b["n_true"], row_b["n_misses"], row_b["recall"]) == (2, 2, 0.0)
    assert math.isnan(row_b["median_abs_error"])


def test_assignment_maximises_total_hits_not_greedy():
    # learned 0 hits A 3 times and B 2 times; learned 1 hits A 3 times and B 0 times.
    # Greedy best-first could give 0 -> A (3) and leave 1 nowhere (total 3);
    # the optimum is 0 -> B, 1 -> A (total 5).
    a_times = [10.0, 20.0, 30.0]
    b_times = [100.0, 110.0]
    true_times = a_times + b_times
    true_labels = ["A"] * 3 + ["B"] * 2
    detected_times = a_times + b_times + a_times
    detected_labels = [0] * 5 + [1] * 3
    scores = score_detections(detected_times, detected_labels, true_times, true_labels, tolerance=0.1)
    assert scores.assignment == {0: "B", 1: "A"}
    assert scores.n_hits == 5 and scores.n_false == 3


def test_score_detections_empty_inputs():
    both = score_detections([], [], [], [], tolerance=1.0)
    assert both.assignment == {} and len(both.per_pattern) == 0
    assert (both.precision, both.recall, both.f1) == (1.0, 1.0, 1.0)
    no_detection = score_detections([], [], [1.0, 2.0], [0, 1], tolerance=1.0)
    assert (no_detection.precision, no_detection.recall, no_detection.f1) == (1.0, 0.0, 0.0)
    assert no_detection.per_pattern["n_misses"].tolist() == [1, 1]
    no_truth = score_detections([1.0, 2.0], [3, 3], [], [], tolerance=1.0)
    assert (no_truth.precision, no_truth.recall, no_truth.f1) == (0.0, 1.0, 0.0)
    assert no_truth.per_pattern["n_false"].tolist() == [2]


def test_score_detections_with_quantities():
    scores = score_detections([100.0, 301.0] * pq.ms, ["x", "y"], [0.1, 0.3] * pq.s, [1, 2], tolerance=2 * pq.ms)
    assert scores.assignment == {"x": 1, "y": 2}
    assert scores.n_hits == 2
    assert scores.median_abs_error == pytest.approx(0.0005)


@pytest.mark.parametrize(
    ("args", "error", "name"),
    [
        (([1.0, 2.0], [0], [1.0], [0], 1.0), ValueError, "detected_labels"),
        (([1.0], [0], [1.0], [0, 1], 1.0), ValueError, "true_labels"),
        (([1.0], [None], [1.0], [0], 1.0), ValueError, "detected_labels"),
        (([1.0], [0], [1.0], [np.nan], 1.0), ValueError, "true_labels"),
        (([1.0], "a", [1.0], [0], 1.0), TypeError, "detected_labels"),
        (([1.0], [0], [1.0], [0], -0.5), ValueError, "tolerance"),
        (([np.nan], [0], [1.0], [0], 1.0), ValueError, "detected_times"),
        (([1.0] * pq.s, [0], [1.0], [0], 1.0), TypeError, "detected_times"),
        (([1.0] * pq.s, [0], [1.0], [0], 1 * pq.s), TypeError, "true_times"),
    ],
)
def test_score_detections_bad_arguments(args, error, name):
    with pytest.raises(error, match=name):
        score_detections(*args)


# ---------------------------------------------------------------------------------------------
# membership_auc
# ---------------------------------------------------------------------------------------------


def test_membership_auc_perfect_reversed_and_ties():
    scores = np.array([0.9, 0.1, 0.8, 0.2, 0.3])
    assert membership_auc(scores, [0, 2]) == 1.0
    assert membership_auc(-scores, [0, 2]) == 0.0
    assert membership_auc(np.ones(5), [0, 2]) == 0.5
    assert membership_auc(scores, np.array([True, False, True, False, False]), n_neurons=5) == 1.0


def test_membership_auc_matches_pairwise_definition():
    rng = np.random.default_rng(3)
    scores = rng.integers(0, 4, 30).astype(float)  # many ties
    members = rng.choice(30, 10, replace=False)
    mask = np.zeros(30, bool)
    mask[members] = True
    diff = scores[mask][:, None] - scores[~mask][None, :]
    expected = ((diff > 0).sum() + 0.5 * (diff == 0).sum()) / diff.size
    assert membership_auc(scores, members) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "name"),
    [
        (([0.1, 0.2, 0.3], []), {}, ValueError, "true_members"),
        (([0.1, 0.2, 0.3], [0, 1, 2]), {}, ValueError, "true_members"),
        (([0.1, 0.2, 0.3], [3]), {}, ValueError, "true_members"),
        (([0.1, 0.2, 0.3], [-1]), {}, ValueError, "true_members"),
        (([0.1, 0.2, 0.3], [0, 0]), {}, ValueError, "true_members"),
        (([0.1, 0.2, 0.3], [0.5]), {}, TypeError, "true_members"),
        (([0.1, 0.2, 0.3], [True, False]), {}, ValueError, "true_members"),
        (([0.1, np.nan, 0.3], [0]), {}, ValueError, "scores"),
        ((["a", "b"], [0]), {}, TypeError, "scores"),
        (([0.1, 0.2, 0.3], [0]), {"n_neurons": 4}, ValueError, "n_neurons"),
        (([0.1, 0.2, 0.3], [0]), {"n_neurons": 3.0}, TypeError, "n_neurons"),
    ],
)
def test_membership_auc_bad_arguments(args, kwargs, error, name):
    with pytest.raises(error, match=name):
        membership_auc(*args, **kwargs)


# ---------------------------------------------------------------------------------------------
# order_correlation
# ---------------------------------------------------------------------------------------------


def test_order_correlation_perfect_reversed_and_nan_dropped():
    result = order_correlation([0.0, 3.0, 4.0, 10.0], [0, 1, 2, 3])
    assert isinstance(result, OrderCorrelation)
    rho, pvalue = result
    assert rho == pytest.approx(1.0) and 0 <= pvalue < 1
    assert order_correlation([5, 4, 3, 2, 1], [1, 2, 3, 4, 5]).rho == pytest.approx(-1.0)
    # the member without a learned lag is dropped, not ranked
    assert order_correlation([0.0, np.nan, 2.0, 3.0], [0, 100, 1, 2]).rho == pytest.approx(1.0)
    assert order_correlation([0.0, 3.0] * pq.ms, [0.0, 1.0]).rho == pytest.approx(1.0)


def test_order_correlation_undefined_cases_are_nan():
    assert all(math.isnan(x) for x in order_correlation([1.0, np.nan], [0, 1]))
    assert all(math.isnan(x) for x in order_correlation([2.0, 2.0, 2.0], [0, 1, 2]))
    assert all(math.isnan(x) for x in order_correlation([], []))


@pytest.mark.parametrize(
    ("args", "error", "name"),
    [
        (([1.0, 2.0], [1.0]), ValueError, "learned_lags"),
        (([1.0, 2.0], [1.0, np.nan]), ValueError, "true_lags"),
        (([1.0, np.inf], [1.0, 2.0]), ValueError, "learned_lags"),
        ((["a", "b"], [1.0, 2.0]), TypeError, "learned_lags"),
        (([1.0, 2.0], None), TypeError, "true_lags"),
    ],
)
def test_order_correlation_bad_arguments(args, error, name):
    with pytest.raises(error, match=name):
        order_correlation(*args)


# ---------------------------------------------------------------------------------------------
# false_detections_per_minute
# ---------------------------------------------------------------------------------------------


def test_false_detection_rate_arithmetic():
    assert false_detections_per_minute(30, 600.0) == 3.0
    assert false_detections_per_minute(np.int64(0), 60) == 0.0
    assert false_detections_per_minute(np.arange(12.0), 2 * pq.min) == 6.0
    assert false_detections_per_minute([1.0, 2.0] * pq.s, 30000 * pq.ms) == 4.0
    assert false_detections_per_minute([], 10.0) == 0.0


@pytest.mark.parametrize(
    ("args", "error", "name"),
    [
        ((-1, 60.0), ValueError, "n_detections_or_times"),
        ((2.5, 60.0), TypeError, "n_detections_or_times"),
        ((True, 60.0), TypeError, "n_detections_or_times"),
        (([[1.0, 2.0]], 60.0), ValueError, "n_detections_or_times"),
        ((3, 0.0), ValueError, "duration"),
        ((3, -5.0), ValueError, "duration"),
        ((3, "60"), TypeError, "duration"),
        ((3, 5 * pq.m), ValueError, "duration"),
    ],
)
def test_false_detection_rate_bad_arguments(args, error, name):
    with pytest.raises(error, match=name):
        false_detections_per_minute(*args)


# ---------------------------------------------------------------------------------------------
# Docstring examples
# ---------------------------------------------------------------------------------------------


def test_docstring_examples():
    results = doctest.testmod(evaluate, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert results.attempted > 0
    assert results.failed == 0


def test_public_api():
    assert set(evaluate.__all__) >= {
        "match_events", "score_detections", "membership_auc", "order_correlation",
        "false_detections_per_minute", "EventMatch", "DetectionScores",
    }
    assert isinstance(score_detections([1.0], [0], [1.0], [0], 0.1).per_pattern, pd.DataFrame)
