"""Scoring of detected sequence occurrences against ground truth.

Everything here works on plain numbers: occurrence times are 1-D float arrays in any one unit
(bins or seconds, the caller is consistent) and ``tolerance`` is in the same unit. Times may
also be given as ``quantities.Quantity`` arrays (e.g. ``neo.Event`` times) *together with* a
``Quantity`` tolerance; they are then rescaled to seconds. Mixing a ``Quantity`` with a plain
number is a ``TypeError`` naming the offending argument.

Functions
---------
:func:`match_events`
    Optimal one-to-one matching of detected and true occurrence times within a tolerance,
    with precision, recall, F1 and timing error (:class:`EventMatch`).
:func:`score_detections`
    Per-pattern scores with automatic (Hungarian) assignment of learned patterns to true
    patterns (:class:`DetectionScores`).
:func:`membership_auc`
    ROC AUC of a per-neuron membership score against the true member set.
:func:`order_correlation`
    Spearman rank correlation of learned latencies against the true order among members.
:func:`false_detections_per_minute`
    False-detection rate on a recording without planted sequences.

Conventions for empty cases (used everywhere in this module)
------------------------------------------------------------
With ``n_hits`` true positives, ``n_false`` false detections and ``n_misses`` missed events:

* ``precision = n_hits / n_detected``, and **1.0 when there are no detections** (no detection
  was false);
* ``recall = n_hits / n_true``, and **1.0 when there is no true event** (nothing was missed);
* ``f1 = 2 n_hits / (n_detected + n_true)`` (the harmonic mean of precision and recall
  whenever both are defined by their ratios), and **1.0 when both are empty**.

So an empty detector scores ``f1 = 0`` (precision 1, recall 0) as soon as there is truth, a
detector that fires on a recording without truth scores ``f1 = 0`` (precision 0, recall 1), and
nothing against nothing is a perfect ``1.0``. No score is ever NaN except
``median_abs_error``, which is NaN when there are no hits.
"""

from __future__ import annotations

import logging
import numbers
import warnings
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import quantities as pq
from scipy.optimize import linear_sum_assignment
from scipy.stats import ConstantInputWarning, rankdata, spearmanr

from convseq_neo._validation import check_nonnegative_float, check_time_quantity

logger = logging.getLogger(__name__)

__all__ = [
    "EventMatch",
    "DetectionScores",
    "OrderCorrelation",
    "match_events",
    "score_detections",
    "membership_auc",
    "order_correlation",
    "false_detections_per_minute",
]

PER_PATTERN_COLUMNS = (
    "true_pattern",
    "learned_pattern",
    "n_true",
    "n_detected",
    "n_hits",
    "n_misses",
    "n_false",
    "precision",
    "recall",
    "f1",
    "median_abs_error",
)


# --------------------------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------------------------


def _real_1d(value, name: str, what: str = "times", *, allow_nan: bool = False) -> np.ndarray:
    """A 1-D float array from an array-like of real numbers without units (finite unless allow_nan)."""
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"{name} must be a 1-D array of {what}, got {type(value).__name__}")
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be a 1-D array of {what}, got {type(value).__name__}") from err
    if array.size == 0:
        array = array.astype(float).reshape(-1)
    if array.dtype == bool or not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise TypeError(f"{name} must be a 1-D array of real-valued {what}, got dtype {array.dtype}")
    if array.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of {what}, got shape {array.shape}")
    array = array.astype(float)
    if np.any(np.isinf(array)) or (not allow_nan and np.any(np.isnan(array))):
        raise ValueError(f"{name} must contain only finite {what} (no {'inf' if allow_nan else 'NaN or inf'})")
    return array


def _plain_times(value, name: str) -> np.ndarray:
    """A 1-D finite float array of times given without units (tolerance is a plain number)."""
    if isinstance(value, pq.Quantity):
        raise TypeError(
            f"{name} is a quantities.Quantity but tolerance is a plain number; give both as Quantities "
            "or both as plain numbers in the same unit"
        )
    return _real_1d(value, name)


def _quantity_times(value, name: str) -> np.ndarray:
    """A 1-D finite float array in seconds from a time Quantity (tolerance is a Quantity)."""
    if not isinstance(value, pq.Quantity):
        raise TypeError(
            f"{name} must be a quantities.Quantity with time units because tolerance is a Quantity, "
            f"got {type(value).__name__}"
        )
    seconds = check_time_quantity(value, name, scalar=False)
    return _real_1d(np.asarray(seconds.magnitude, dtype=float), name)


def _times_and_tolerance(tolerance, **times) -> tuple[float, dict[str, np.ndarray]]:
    """Check a tolerance and matching time arrays; Quantities become seconds."""
    if isinstance(tolerance, pq.Quantity):
        tol = float(check_time_quantity(tolerance, "tolerance", nonnegative=True).magnitude)
        return tol, {name: _quantity_times(value, name) for name, value in times.items()}
    tol = check_nonnegative_float(tolerance, "tolerance")
    return tol, {name: _plain_times(value, name) for name, value in times.items()}


def _labels(value, name: str, n: int, times_name: str) -> np.ndarray:
    """A 1-D array of hashable pattern labels, one per time, without missing values."""
    if isinstance(value, (str, bytes)) or value is None or isinstance(value, pq.Quantity):
        raise TypeError(f"{name} must be a 1-D array of pattern labels, got {type(value).__name__}")
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be a 1-D array of pattern labels, got {type(value).__name__}") from err
    if array.size == 0:
        array = array.reshape(-1)
    if array.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of pattern labels, got shape {array.shape}")
    if len(array) != n:
        raise ValueError(f"{name} must have one label per time in {times_name}: got {len(array)} labels for {n} times")
    if len(array) and bool(pd.isna(array).any()):
        raise ValueError(f"{name} must not contain missing labels (None or NaN)")
    return array


def _python_scalar(value: Any) -> Any:
    """Numpy scalars become the matching Python scalars (nicer dict keys and DataFrame cells)."""
    return value.item() if isinstance(value, np.generic) else value


def _rates(n_hits: int, n_detected: int, n_true: int) -> tuple[float, float, float]:
    """Precision, recall, F1 with the module's conventions for empty cases."""
    precision = n_hits / n_detected if n_detected else 1.0
    recall = n_hits / n_true if n_true else 1.0
    f1 = 2.0 * n_hits / (n_detected + n_true) if (n_detected + n_true) else 1.0
    return float(precision), float(recall), float(f1)


def _readonly(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


# --------------------------------------------------------------------------------------------
# One-to-one matching
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class EventMatch:
    """Result of :func:`match_events`: an optimal one-to-one matching and its scores.

    Attributes
    ----------
    pairs : numpy.ndarray of int, shape (n_hits, 2)
        ``(detected_index, true_index)`` of each matched pair, indices into the arrays as given
        (not sorted), rows in ascending ``detected_index``.
    errors : numpy.ndarray of float, shape (n_hits,)
        Signed timing error ``detected - true`` of each pair, in the order of ``pairs``.
    n_detected, n_true : int
        Number of detected and true events.
    n_hits : int
        Matched pairs (true positives).
    n_misses : int
        True events left unmatched (``n_true - n_hits``).
    n_false : int
        Detections left unmatched (``n_detected - n_hits``).
    precision, recall, f1 : float
        See the module docstring for the empty-case conventions (never NaN).
    median_abs_error : float
        Median of ``abs(errors)``; NaN when there are no hits.
    tolerance : float
        The tolerance used (seconds when Quantities were given).
    """

    pairs: np.ndarray
    errors: np.ndarray
    n_detected: int
    n_true: int
    n_hits: int
    n_misses: int
    n_false: int
    precision: float
    recall: float
    f1: float
    median_abs_error: float
    tolerance: float

    @property
    def unmatched_detected(self) -> np.ndarray:
        """Indices of the false detections, ascending."""
        return np.setdiff1d(np.arange(self.n_detected), self.pairs[:, 0])

    @property
    def unmatched_true(self) -> np.ndarray:
        """Indices of the missed true events, ascending."""
        return np.setdiff1d(np.arange(self.n_true), self.pairs[:, 1])


def _candidate_windows(d_sorted: np.ndarray, t_sorted: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """For each sorted detection, the run ``[lo, hi)`` of sorted true events with ``|d - t| <= tol``.

    ``searchsorted`` on ``d -+ tol`` gives the run up to rounding in the subtraction; the runs are
    then nudged so that membership is exactly the computed ``abs(d - t) <= tol`` (inclusive edge).
    Both bounds are non-decreasing over detections.
    """
    m = t_sorted.size
    lo = np.searchsorted(t_sorted, d_sorted - tol, side="left")
    hi = np.searchsorted(t_sorted, d_sorted + tol, side="right")

    def inside(j: np.ndarray) -> np.ndarray:
        return np.abs(d_sorted - t_sorted[np.clip(j, 0, m - 1)]) <= tol

    while np.any(step := (lo > 0) & inside(lo - 1)):
        lo = lo - step
    while np.any(step := (hi < m) & inside(hi)):
        hi = hi + step
    while np.any(step := (lo < hi) & ~inside(lo)):
        lo = lo + step
    while np.any(step := (lo < hi) & ~inside(hi - 1)):
        hi = hi - step
    return lo, hi


def _cluster_dp(d: np.ndarray, t: np.ndarray, lo: np.ndarray, hi: np.ndarray, tol: float) -> tuple[list, list]:
    """Optimal matching inside one cluster by dynamic programming on the sorted times.

    On a line an optimal matching can always be taken order-preserving: if ``d1 <= d2`` and
    ``t1 <= t2`` and the crossed pairs ``(d1, t2), (d2, t1)`` are both within tolerance, then so
    are ``(d1, t1), (d2, t2)``, and ``|d1 - t1| + |d2 - t2| <= |d1 - t2| + |d2 - t1|``. So the
    edit-distance recursion ``F(i, j) = max(F(i-1, j), F(i, j-1), F(i-1, j-1) + v(i-1, j-1))``
    over prefixes is exact. Each pair is worth ``1 - |d - t| / (tol (k + 1))`` with ``k`` the
    most pairs possible, so more pairs always win and then the smaller total error. Only each
    row's candidate window changes (heads are frozen, tails are constant), so the work is the
    number of candidate pairs (time and bytes of memory). Returns the matched (row, column)
    indices within the cluster.
    """
    n_rows, n_cols = d.size, t.size
    # divided, not multiplied by its inverse: that overflows for a subnormal tolerance (0 * inf is NaN)
    spread = tol * (min(n_rows, n_cols) + 1) if tol > 0 else np.inf
    value = np.zeros(n_cols + 1)  # value[j] = F(i, j), valid for j <= filled
    filled = 0
    codes = []  # per row, for j in (lo, hi]: 2 match, 0 skip the detection, 1 skip the true event
    for i in range(n_rows):
        a, b = int(lo[i]), int(hi[i])
        if b > filled:
            value[filled + 1:b + 1] = value[filled]
            filled = b
        previous = value[a:b + 1].copy()
        take = previous[:-1] + (1.0 - np.abs(d[i] - t[a:b]) / spread)
        current = np.maximum.accumulate(np.r_[previous[0], np.maximum(previous[1:], take)])
        took = (take >= previous[1:]) & (take == current[1:])
        above = previous[1:] == current[1:]
        codes.append(np.where(took, 2, np.where(above, 0, 1)).astype(np.int8))
        value[a:b + 1] = current
    rows: list[int] = []
    cols: list[int] = []
    i, j = n_rows, n_cols
    while i > 0 and j > 0:
        a, b = int(lo[i - 1]), int(hi[i - 1])
        if j > b:  # constant tail: the later true events are out of reach
            j = b
        elif j <= a:  # the detection reaches none of t[:j]
            i -= 1
        else:
            code = codes[i - 1][j - a - 1]
            if code == 2:
                rows.append(i - 1)
                cols.append(j - 1)
                i -= 1
                j -= 1
            elif code == 0:
                i -= 1
            else:
                j -= 1
    return rows, cols


def _optimal_pairs(detected: np.ndarray, true: np.ndarray, tol: float) -> np.ndarray:
    """Maximum-cardinality, then minimum-total-|error|, matching; returns (k, 2) original indices.

    Candidate pairs (``|d - t| <= tol``) form an interval bipartite graph on the line. Sorted by
    time, each detection's candidates are a contiguous run of true events whose bounds never
    decrease, so the graph splits into independent clusters found in one sweep. A cluster with a
    single detection or a single true event takes its nearest pair; larger ones are solved
    exactly by :func:`_cluster_dp`.
    """
    if detected.size == 0 or true.size == 0:
        return np.empty((0, 2), dtype=np.intp)
    d_order = np.argsort(detected, kind="stable")
    t_order = np.argsort(true, kind="stable")
    d_sorted = detected[d_order]
    t_sorted = true[t_order]
    lo, hi = _candidate_windows(d_sorted, t_sorted, tol)
    candidates = np.flatnonzero(hi > lo)
    if candidates.size == 0:
        return np.empty((0, 2), dtype=np.intp)
    # A new cluster starts where a detection's candidate run does not overlap the previous one's
    # (the bounds are non-decreasing, so the previous run reaches furthest).
    c_lo, c_hi = lo[candidates], hi[candidates]
    starts = np.flatnonzero(np.r_[True, c_lo[1:] >= c_hi[:-1]])
    ends = np.r_[starts[1:], candidates.size]

    matched_d: list[int] = []
    matched_t: list[int] = []
    for s, e in zip(starts.tolist(), ends.tolist()):
        rows = candidates[s:e]
        t0, t1 = int(c_lo[s]), int(c_hi[e - 1])
        if e - s == 1:  # one detection: nearest true event (the earlier one on a tie)
            i = int(rows[0])
            matched_d.append(i)
            matched_t.append(t0 + int(np.argmin(np.abs(t_sorted[t0:t1] - d_sorted[i]))))
        elif t1 - t0 == 1:  # one true event: nearest detection (the earlier one on a tie)
            matched_d.append(int(rows[int(np.argmin(np.abs(d_sorted[rows] - t_sorted[t0])))]))
            matched_t.append(t0)
        else:
            r, c = _cluster_dp(d_sorted[rows], t_sorted[t0:t1], lo[rows] - t0, hi[rows] - t0, tol)
            matched_d.extend(rows[r].tolist())
            matched_t.extend(t0 + k for k in c)
    d_idx = d_order[np.asarray(matched_d, dtype=np.intp)]
    t_idx = t_order[np.asarray(matched_t, dtype=np.intp)]
    order = np.argsort(d_idx, kind="stable")
    return np.column_stack([d_idx[order], t_idx[order]]).astype(np.intp)


def _match(detected: np.ndarray, true: np.ndarray, tol: float) -> EventMatch:
    pairs = _optimal_pairs(detected, true, tol)
    errors = detected[pairs[:, 0]] - true[pairs[:, 1]] if len(pairs) else np.empty(0, dtype=float)
    n_hits, n_detected, n_true = len(pairs), detected.size, true.size
    precision, recall, f1 = _rates(n_hits, n_detected, n_true)
    median = float(np.median(np.abs(errors))) if n_hits else float("nan")
    return EventMatch(
        pairs=_readonly(pairs),
        errors=_readonly(np.asarray(errors, dtype=float)),
        n_detected=int(n_detected),
        n_true=int(n_true),
        n_hits=int(n_hits),
        n_misses=int(n_true - n_hits),
        n_false=int(n_detected - n_hits),
        precision=precision,
        recall=recall,
        f1=f1,
        median_abs_error=median,
        tolerance=float(tol),
    )


def match_events(detected, true, tolerance) -> EventMatch:
    """Match detected to true occurrence times one-to-one within a tolerance, optimally.

    A detection ``d`` and a true event ``t`` may be paired when ``|d - t| <= tolerance`` (the
    edge is inclusive). No detection and no true event is used twice. Among all such
    matchings the one returned has the largest number of pairs and, among those, the smallest
    total absolute timing error. (A greedy nearest-first sweep is not always maximal; this is
    solved exactly, cluster by cluster, so thousands of events take milliseconds.)

    Parameters
    ----------
    detected, true : array_like of float, shape (n,) and (m,)
        Occurrence times, in any one unit, in any order; or time ``quantities.Quantity`` arrays
        (then ``tolerance`` must be a Quantity too and all are rescaled to seconds).
    tolerance : float or quantities.Quantity
        Largest allowed ``|detected - true|``, in the unit of the times, ``>= 0``.

    Returns
    -------
    EventMatch
        Pairs, signed errors (``detected - true``), counts and scores. See the module docstring
        for the conventions when there are no detections or no true events.

    Raises
    ------
    TypeError
        A non-numeric argument, or a Quantity mixed with a plain number (the message names it).
    ValueError
        Negative or non-finite tolerance, NaN/inf times, or times that are not 1-D.

    Examples
    --------
    >>> m = match_events([6.0, 15.0], [0.0, 10.0], tolerance=6.0)
    >>> m.pairs.tolist(), m.n_hits, m.n_false, m.n_misses
    ([[0, 0], [1, 1]], 2, 0, 0)
    >>> m.errors.tolist(), m.median_abs_error
    ([6.0, 5.0], 5.5)
    >>> m = match_events([4.0, 5.0], [5.0], tolerance=1.0)
    >>> m.pairs.tolist(), m.precision, m.recall, m.f1
    ([[1, 0]], 0.5, 1.0, 0.6666666666666666)
    >>> empty = match_events([], [1.0, 2.0], tolerance=0.5)
    >>> empty.precision, empty.recall, empty.f1
    (1.0, 0.0, 0.0)
    >>> import quantities as pq
    >>> match_events([0.101] * pq.s, [100.0] * pq.ms, tolerance=2 * pq.ms).n_hits
    1
    """
    tol, times = _times_and_tolerance(tolerance, detected=detected, true=true)
    result = _match(times["detected"], times["true"], tol)
    logger.debug("match_events: %d detected, %d true, tolerance %g -> %d hits",
                 result.n_detected, result.n_true, tol, result.n_hits)
    return result


# --------------------------------------------------------------------------------------------
# Per-pattern scoring with assignment of learned to true patterns
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class DetectionScores:
    """Result of :func:`score_detections`.

    Attributes
    ----------
    assignment : dict
        ``learned_label -> true_label`` for every learned pattern that was assigned (learned
        patterns absent from the dict matched nothing and all their detections are false).
    per_pattern : pandas.DataFrame
        One row per true pattern (``learned_pattern`` is ``None`` when none was assigned), then
        one row per unassigned learned pattern (``true_pattern`` is ``None``, ``n_true`` 0).
        Columns: ``true_pattern, learned_pattern, n_true, n_detected, n_hits, n_misses,
        n_false, precision, recall, f1, median_abs_error``. The count columns sum to the totals.
    hit_matrix : pandas.DataFrame
        Hits of every learned pattern (rows) against every true pattern (columns) when matched
        one-to-one; the assignment maximises the total over assigned cells.
    n_true, n_detected, n_hits, n_misses, n_false : int
        Totals over all patterns.
    precision, recall, f1 : float
        Micro-averaged scores from the totals (empty-case conventions as in the module docstring).
    median_abs_error : float
        Median ``|detected - true|`` over all hits of assigned pairs; NaN when there are none.
    matches : dict
        ``true_label -> EventMatch`` for every assigned pair, for drilling down.
    tolerance : float
        The tolerance used (seconds when Quantities were given).
    """

    assignment: dict
    per_pattern: pd.DataFrame
    hit_matrix: pd.DataFrame
    n_true: int
    n_detected: int
    n_hits: int
    n_misses: int
    n_false: int
    precision: float
    recall: float
    f1: float
    median_abs_error: float
    matches: dict
    tolerance: float


def _row(true_label, learned_label, n_true: int, n_detected: int, n_hits: int, median: float) -> dict:
    precision, recall, f1 = _rates(n_hits, n_detected, n_true)
    return {
        "true_pattern": true_label,
        "learned_pattern": learned_label,
        "n_true": n_true,
        "n_detected": n_detected,
        "n_hits": n_hits,
        "n_misses": n_true - n_hits,
        "n_false": n_detected - n_hits,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "median_abs_error": median,
    }


def score_detections(detected_times, detected_labels, true_times, true_labels, tolerance) -> DetectionScores:
    """Score labelled detections against labelled ground truth, per pattern and overall.

    Learned patterns (the labels of the detections) are assigned to true patterns
    automatically: every learned pattern's detections are matched one-to-one with every true
    pattern's occurrences (as in :func:`match_events`), giving a matrix of hits, and the
    Hungarian algorithm picks the assignment (each learned pattern to at most one true pattern
    and vice versa) that maximises the total number of hits. Pairs with zero hits are left
    unassigned. Detections of a learned pattern count only against its assigned true pattern;
    learned patterns assigned to nothing count all their detections as false, and true
    patterns with no learned pattern count all their occurrences as misses.

    Parameters
    ----------
    detected_times : array_like of float or quantities.Quantity, shape (n,)
        Detection times (any one unit shared with ``true_times`` and ``tolerance``).
    detected_labels : array_like, shape (n,)
        Learned-pattern label of each detection (ints or strings; no None/NaN).
    true_times : array_like of float or quantities.Quantity, shape (m,)
        True occurrence times.
    true_labels : array_like, shape (m,)
        True-pattern label of each occurrence.
    tolerance : float or quantities.Quantity
        Largest allowed ``|detected - true|`` for a hit, ``>= 0``.

    Returns
    -------
    DetectionScores
        Assignment, per-pattern table, hit matrix and micro-averaged totals.

    Raises
    ------
    TypeError, ValueError
        As :func:`match_events`, and when a labels array's length differs from its times'.

    Examples
    --------
    >>> scores = score_detections(
    ...     detected_times=[10.2, 50.1, 30.0, 70.3, 90.0], detected_labels=[1, 1, 0, 0, 2],
    ...     true_times=[10.0, 30.0, 50.0, 70.0], true_labels=["A", "B", "A", "B"], tolerance=0.5)
    >>> scores.assignment
    {0: 'B', 1: 'A'}
    >>> scores.n_hits, scores.n_false, scores.n_misses, round(scores.f1, 3)
    (4, 1, 0, 0.889)
    >>> scores.per_pattern[["true_pattern", "learned_pattern", "n_hits", "n_false"]]
      true_pattern learned_pattern  n_hits  n_false
    0            A               1       2        0
    1            B               0       2        0
    2         None               2       0        1
    """
    tol, times = _times_and_tolerance(tolerance, detected_times=detected_times, true_times=true_times)
    d_times, t_times = times["detected_times"], times["true_times"]
    d_labels = _labels(detected_labels, "detected_labels", d_times.size, "detected_times")
    t_labels = _labels(true_labels, "true_labels", t_times.size, "true_times")

    learned = [_python_scalar(x) for x in pd.unique(d_labels)] if d_labels.size else []
    truth = [_python_scalar(x) for x in pd.unique(t_labels)] if t_labels.size else []
    learned = _sorted_labels(learned)
    truth = _sorted_labels(truth)

    d_groups = {lab: d_times[d_labels == lab] for lab in learned}
    t_groups = {lab: t_times[t_labels == lab] for lab in truth}
    all_matches = {(lab, tru): _match(d_groups[lab], t_groups[tru], tol) for lab in learned for tru in truth}
    hits = np.array([[all_matches[lab, tru].n_hits for tru in truth] for lab in learned], dtype=float)
    hits = hits.reshape(len(learned), len(truth))

    assignment: dict = {}
    if hits.size:
        rows, cols = linear_sum_assignment(hits, maximize=True)
        for r, c in zip(rows, cols):
            if hits[r, c] > 0:
                assignment[learned[r]] = truth[c]
    inverse = {tru: lab for lab, tru in assignment.items()}

    records = []
    matches: dict = {}
    errors: list[np.ndarray] = []
    for tru in truth:
        lab = inverse.get(tru)
        if lab is None:
            records.append(_row(tru, None, t_groups[tru].size, 0, 0, float("nan")))
            continue
        m = all_matches[lab, tru]
        matches[tru] = m
        errors.append(m.errors)
        records.append(_row(tru, lab, m.n_true, m.n_detected, m.n_hits, m.median_abs_error))
    for lab in learned:
        if lab not in assignment:
            records.append(_row(None, lab, 0, d_groups[lab].size, 0, float("nan")))
    per_pattern = pd.DataFrame.from_records(records, columns=list(PER_PATTERN_COLUMNS))
    for column in ("true_pattern", "learned_pattern"):  # keep labels as given and None as None
        per_pattern[column] = pd.Series([r[column] for r in records], dtype=object, index=per_pattern.index)

    n_hits = int(per_pattern["n_hits"].sum()) if len(per_pattern) else 0
    n_detected, n_true = int(d_times.size), int(t_times.size)
    precision, recall, f1 = _rates(n_hits, n_detected, n_true)
    all_errors = np.concatenate(errors) if errors else np.empty(0)
    median = float(np.median(np.abs(all_errors))) if all_errors.size else float("nan")
    hit_matrix = pd.DataFrame(hits.astype(int), index=pd.Index(learned, name="learned_pattern"),
                              columns=pd.Index(truth, name="true_pattern"))
    logger.debug("score_detections: %d learned, %d true patterns, assignment %s, %d/%d hits",
                 len(learned), len(truth), assignment, n_hits, n_true)
    return DetectionScores(
        assignment=assignment,
        per_pattern=per_pattern,
        hit_matrix=hit_matrix,
        n_true=n_true,
        n_detected=n_detected,
        n_hits=n_hits,
        n_misses=n_true - n_hits,
        n_false=n_detected - n_hits,
        precision=precision,
        recall=recall,
        f1=f1,
        median_abs_error=median,
        matches=matches,
        tolerance=float(tol),
    )


def _sorted_labels(labels: list) -> list:
    """Sort labels when they are mutually comparable, else keep first-appearance order."""
    try:
        return sorted(labels)
    except TypeError:
        return labels


# --------------------------------------------------------------------------------------------
# Membership, order and false-detection rate
# --------------------------------------------------------------------------------------------


def membership_auc(scores, true_members, n_neurons: int | None = None) -> float:
    """ROC AUC of a per-neuron membership score against the true member set.

    The AUC is the Mann-Whitney probability that a random member scores higher than a random
    non-member, ties counting one half (average ranks): 1.0 ranks every member above every
    non-member, 0.5 is chance, 0.0 is perfectly reversed.

    Parameters
    ----------
    scores : array_like of float, shape (n_neurons,)
        Membership score of every neuron (higher means more likely a member); finite.
    true_members : array_like of int, or array_like of bool of shape (n_neurons,)
        Indices of the true members (no duplicates, each in ``[0, n_neurons)``), or a boolean
        membership mask.
    n_neurons : int, optional
        Expected number of neurons; when given, ``len(scores)`` must equal it.

    Returns
    -------
    float
        The ROC AUC in ``[0, 1]``.

    Raises
    ------
    TypeError
        Non-numeric scores or non-integer member indices.
    ValueError
        NaN scores, out-of-range or duplicate members, a length mismatch, or when all or no
        neurons are members (the AUC is undefined).

    Examples
    --------
    >>> membership_auc([0.9, 0.1, 0.8, 0.2], true_members=[0, 2])
    1.0
    >>> membership_auc([0.9, 0.1, 0.8, 0.2], true_members=[1, 3])
    0.0
    >>> membership_auc([0.5, 0.5, 0.5, 0.5], true_members=[0, 1])
    0.5
    """
    if isinstance(scores, pq.Quantity):
        raise TypeError("scores must be a plain array of numbers, got a quantities.Quantity")
    score_array = _real_1d(scores, "scores", "scores")
    n = score_array.size
    if n_neurons is not None:
        if isinstance(n_neurons, (bool, np.bool_)) or not isinstance(n_neurons, numbers.Integral):
            raise TypeError(f"n_neurons must be an int or None, got {type(n_neurons).__name__}")
        if int(n_neurons) != n:
            raise ValueError(f"n_neurons is {n_neurons} but scores has {n} entries; give one score per neuron")
    mask = _member_mask(true_members, n)
    n_pos = int(mask.sum())
    n_neg = n - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError(
            f"true_members must contain some but not all neurons for the AUC to be defined, got {n_pos} of {n}"
        )
    ranks = rankdata(score_array, method="average")
    u = ranks[mask].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def _member_mask(true_members, n: int) -> np.ndarray:
    if isinstance(true_members, (str, bytes)) or true_members is None:
        raise TypeError(f"true_members must be an array of neuron indices, got {type(true_members).__name__}")
    try:
        members = np.asarray(true_members)
    except (TypeError, ValueError) as err:
        raise TypeError(f"true_members must be an array of neuron indices, got {type(true_members).__name__}") from err
    if members.size == 0:
        members = members.astype(np.intp).reshape(-1)
    if members.ndim != 1:
        raise ValueError(f"true_members must be 1-D, got shape {members.shape}")
    if members.dtype == bool:
        if members.size != n:
            raise ValueError(f"a boolean true_members mask must have one entry per neuron ({n}), got {members.size}")
        return members.copy()
    if members.dtype.kind == "f" and np.all(np.isfinite(members)) and np.all(members == np.round(members)):
        members = members.astype(np.intp)
    if not np.issubdtype(members.dtype, np.integer):
        raise TypeError(f"true_members must contain integer neuron indices, got dtype {members.dtype}")
    if members.size and (members.min() < 0 or members.max() >= n):
        raise ValueError(
            f"true_members must be indices in [0, {n}), got values from {members.min()} to {members.max()}"
        )
    if np.unique(members).size != members.size:
        raise ValueError("true_members must not contain duplicate indices")
    mask = np.zeros(n, dtype=bool)
    mask[members] = True
    return mask


class OrderCorrelation(NamedTuple):
    """Result of :func:`order_correlation`; unpacks as ``rho, pvalue``."""

    rho: float
    pvalue: float


def _lags(value, name: str) -> np.ndarray:
    if isinstance(value, pq.Quantity):
        value = np.asarray(value.magnitude)
    return _real_1d(value, name, "lags", allow_nan=True)


def order_correlation(learned_lags, true_lags) -> OrderCorrelation:
    """Spearman rank correlation of learned latencies against the true order among members.

    Parameters
    ----------
    learned_lags : array_like of float, shape (k,)
        Learned latency of each true member (e.g. the argmax lag of its kernel), aligned with
        ``true_lags``. NaN marks a member that got no learned lag; such members are **dropped**
        before the correlation is computed.
    true_lags : array_like of float, shape (k,)
        True latency (or rank) of each member; must not contain NaN. Quantities are accepted
        for either argument and reduced to their magnitudes (ranks do not depend on units).

    Returns
    -------
    OrderCorrelation
        ``(rho, pvalue)`` from :func:`scipy.stats.spearmanr`; both NaN when fewer than two
        members remain or either side is constant (the correlation is undefined).

    Raises
    ------
    TypeError
        Non-numeric lags.
    ValueError
        Lengths differ, ``true_lags`` has NaN, or a lag is infinite.

    Examples
    --------
    >>> rho, p = order_correlation([0.0, 2.0, 5.0, float("nan"), 9.0], [0, 1, 2, 3, 4])
    >>> round(rho, 6)
    1.0
    >>> round(order_correlation([3, 2, 1, 0], [0, 1, 2, 3]).rho, 6)
    -1.0
    """
    learned = _lags(learned_lags, "learned_lags")
    truth = _lags(true_lags, "true_lags")
    if learned.size != truth.size:
        raise ValueError(
            f"learned_lags and true_lags must be aligned per member: got {learned.size} and {truth.size} entries"
        )
    if np.any(np.isnan(truth)):
        raise ValueError("true_lags must not contain NaN")
    keep = ~np.isnan(learned)
    learned, truth = learned[keep], truth[keep]
    if learned.size < 2 or np.ptp(learned) == 0 or np.ptp(truth) == 0:
        logger.debug("order_correlation undefined: %d usable members or a constant side", learned.size)
        return OrderCorrelation(float("nan"), float("nan"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConstantInputWarning)
        result = spearmanr(learned, truth)
    rho = float(np.clip(result.statistic, -1.0, 1.0))
    return OrderCorrelation(rho, float(result.pvalue))


def false_detections_per_minute(n_detections_or_times, duration) -> float:
    """False-detection rate, per minute, on a recording with no planted sequences.

    Every detection there is false, so this is simply ``count / (duration / 60 s)``.

    Parameters
    ----------
    n_detections_or_times : int or array_like
        The number of detections, or the detection times themselves (plain or Quantity; only
        their count is used).
    duration : float or quantities.Quantity
        Length of the recording: seconds as a float, or a time Quantity; ``> 0``.

    Returns
    -------
    float
        Detections per minute.

    Raises
    ------
    TypeError
        A non-integer count, a non-numeric duration.
    ValueError
        A negative count, or a duration that is not positive and finite.

    Examples
    --------
    >>> false_detections_per_minute(3, duration=120.0)
    1.5
    >>> import quantities as pq
    >>> false_detections_per_minute([1.0, 7.5], duration=4 * pq.min)
    0.5
    """
    count = _count(n_detections_or_times)
    if isinstance(duration, pq.Quantity):
        seconds = float(check_time_quantity(duration, "duration", positive=True).magnitude)
    else:
        seconds = check_nonnegative_float(duration, "duration", positive=True)
    return float(count / (seconds / 60.0))


def _count(value) -> int:
    name = "n_detections_or_times"
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be an int count or an array of detection times, got a bool")
    if isinstance(value, numbers.Integral):
        if int(value) < 0:
            raise ValueError(f"{name} must be a non-negative count, got {value}")
        return int(value)
    if isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be an int count or an array of detection times, got {type(value).__name__}")
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"{name} must be an int count or an array of detection times, got {type(value).__name__}")
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be an int count or an array of detection times") from err
    if array.ndim != 1 and array.size != 0:
        raise ValueError(f"{name} must be a count or a 1-D array of times, got shape {array.shape}")
    return int(array.size)
