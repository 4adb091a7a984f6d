"""Window peaks -> occurrence table, with each occurrence placed where its pattern is."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["OCCURRENCE_COLUMNS", "occurrence_table", "pattern_geometry"]

OCCURRENCE_COLUMNS = ["pattern", "center", "onset", "offset", "peak", "pvalue", "significant"]


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
                     significant: np.ndarray, offsets: np.ndarray, spans: np.ndarray) -> pd.DataFrame:
    """Build the occurrence DataFrame (times in bins, float), sorted by pattern then centre.

    ``center = peak_bin + offsets[pattern]``; ``onset``/``offset`` add the earliest/latest member
    lag around the centre.
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
    return frame.sort_values(["pattern", "center"], kind="stable").reset_index(drop=True)


def suppress_cross_talk(frame: pd.DataFrame, tolerance: float) -> pd.DataFrame:
    """Keep one pattern per stretch of time: the most significant of overlapping significant occurrences.

    A filter keeps a little weight on another pattern's members, so it can answer a real
    occurrence of that pattern with a displaced, weaker peak. Among significant occurrences of
    *different* patterns whose spans ``[onset - tolerance, offset + tolerance]`` overlap, only the
    one with the smallest p-value (then the highest peak) stays significant.
    """
    frame = frame.copy()
    significant = frame.index[frame["significant"].to_numpy()]
    if frame.loc[significant, "pattern"].nunique() < 2:
        return frame
    ranked = frame.loc[significant].sort_values(["pvalue", "peak"], ascending=[True, False], kind="stable")
    kept: list[tuple[int, float, float]] = []
    for index, row in ranked.iterrows():
        lo, hi = row["onset"] - tolerance, row["offset"] + tolerance
        if any(pattern != row["pattern"] and lo <= k_hi and k_lo <= hi for pattern, k_lo, k_hi in kept):
            frame.loc[index, "significant"] = False
        else:
            kept.append((row["pattern"], lo, hi))
    return frame
