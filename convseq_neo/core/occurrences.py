"""Window peaks -> occurrence table, with each occurrence placed where its pattern is."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["NULL_Z", "OCCURRENCE_COLUMNS", "occurrence_table", "pattern_geometry", "suppress_cross_talk"]

OCCURRENCE_COLUMNS = ["pattern", "center", "onset", "offset", "peak", "pvalue", "significant"]
#: The column of :func:`occurrence_table` that only :func:`suppress_cross_talk` reads (and drops).
NULL_Z = "null_z"


def pattern_geometry(membership: pd.DataFrame, n_patterns: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Per pattern: the centre offset from the window peak, and (earliest, latest) member lag around the centre.

    The centre of a pattern is the mean of its members' lags (bins relative to the window peak); a
    pattern with no members keeps the window centre and spans the window.
    """
    offsets = np.zeros(n_patterns)
    spans = np.tile([-(width // 2), width - 1 - width // 2], (n_patterns, 1)).astype(float)
    for pattern in range(n_patterns):
        lags = membership.loc[(membership["pattern"] == pattern) & membership["member"], "lag"].to_numpy(float)
        lags = lags[np.isfinite(lags)]
        if lags.size:
            offsets[pattern] = lags.mean()
            spans[pattern] = (lags.min() - offsets[pattern], lags.max() - offsets[pattern])
    return offsets, spans


def occurrence_table(pattern: np.ndarray, peak_bin: np.ndarray, peak: np.ndarray, pvalue: np.ndarray,
                     significant: np.ndarray, offsets: np.ndarray, spans: np.ndarray,
                     null_z: np.ndarray | None = None) -> pd.DataFrame:
    """Build the occurrence DataFrame (times in bins, float), sorted by pattern then centre.

    ``center = peak_bin + offsets[pattern]``; ``onset``/``offset`` add the earliest/latest member
    lag around the centre. ``null_z`` (each peak's height in its own null's standard deviations),
    when given, rides along in a column of that name for :func:`suppress_cross_talk`, which
    removes it.
    """
    pattern = np.asarray(pattern, dtype=int)
    center = np.asarray(peak_bin, dtype=float) + offsets[pattern]
    frame = pd.DataFrame({
        "pattern": pattern,
        "center": center,
        "onset": center + spans[pattern, 0],
        "offset": center + spans[pattern, 1],
        "peak": np.asarray(peak, dtype=float),
        "pvalue": np.asarray(pvalue, dtype=float),
        "significant": np.asarray(significant, dtype=bool),
    }, columns=OCCURRENCE_COLUMNS)
    if null_z is not None:
        frame[NULL_Z] = np.asarray(null_z, dtype=float)
    return frame.sort_values(["pattern", "center"], kind="stable").reset_index(drop=True)


def suppress_cross_talk(frame: pd.DataFrame, tolerance: float, pvalue_resolution: float = 0.0) -> pd.DataFrame:
    """Keep one pattern per stretch of time: the strongest of overlapping significant occurrences.

    A filter keeps a little weight on another pattern's members, so it can answer a real
    occurrence of that pattern with a displaced, weaker peak. Among significant occurrences of
    *different* patterns whose spans ``[onset - tolerance, offset + tolerance]`` overlap, only the
    one with the smallest p-value stays significant. p-values at or below ``pvalue_resolution``
    are ties: a peak beyond every peak of its null gets ``1 / (1 + null size)``, which differs
    between filters only by the size of their nulls. Ties go to the peak furthest above its own
    null in that null's standard deviations (the ``null_z`` column, which is dropped here);
    without it, to the highest peak. Raw heights of two filters are not on one scale: a filter
    with more members gives higher peaks to everything.
    """
    frame = frame.copy()
    if NULL_Z in frame:
        strength = np.nan_to_num(frame.pop(NULL_Z).to_numpy(float), nan=-np.inf, posinf=np.inf, neginf=-np.inf)
    else:
        strength = frame["peak"].to_numpy(float)
    significant = np.flatnonzero(frame["significant"].to_numpy())
    if np.unique(frame["pattern"].to_numpy()[significant]).size < 2:
        return frame
    pvalues = np.maximum(frame["pvalue"].to_numpy(float), float(pvalue_resolution))
    ranked = significant[np.lexsort((-strength[significant], pvalues[significant]))]
    patterns, onsets, offsets = (frame[column].to_numpy(float) for column in ("pattern", "onset", "offset"))
    kept: list[tuple[float, float, float]] = []
    column = frame.columns.get_loc("significant")
    for position in ranked:
        lo, hi = onsets[position] - tolerance, offsets[position] + tolerance
        if any(pattern != patterns[position] and lo <= k_hi and k_lo <= hi for pattern, k_lo, k_hi in kept):
            frame.iloc[position, column] = False
        else:
            kept.append((patterns[position], lo, hi))
    return frame
