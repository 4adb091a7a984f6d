"""The automatic search of :func:`~convseq_neo.detect`: time scales and number of patterns from held-out evidence.

One job: given a recording and the fitting options, run the fits that the defaults
``bin_size="auto"``, ``width="auto"`` and ``n_patterns="auto"`` ask for, and decide what is kept.
The rules (documented for users in :func:`~convseq_neo.detect`, *Automatic time scale*):

- **Scales** come from :func:`convseq_neo.scales.scale_grid`: a function of the recording's time
  resolution, rates and length, never of what is looked for.
- **A pattern counts as found** when it has at least one significant cross-fitted (held-out)
  occurrence and at least 2 member neurons (a filter whose occurrences pass but whose membership
  test names no neuron orders nothing); only found patterns are reported.
- **Number of patterns, per scale.** Fits with 1, 2, ... patterns are run in turn; the search at
  that scale stops at the first fit whose newest pattern is not found or repeats part of an
  earlier pattern of the same fit (:func:`is_part_of`), or at ``max_patterns``, and the last fit
  whose newest pattern was found is kept (the one-pattern fit when none was).
- **False detections over the whole search.** Every fit at a scale is tested at ``alpha / S``
  for ``S`` searched scales (Bonferroni over scales). On a recording with nothing in it, more
  than one fit runs at a scale only after the first fit there made a (false) detection, so the
  chance of any false occurrence over the whole search is at most about ``alpha``, however many
  scales and patterns are tried (requiring members only removes detections).
- **The same sequence at two scales.** A pattern is dropped when a pattern kept at another scale
  covers it: at least half of the smaller member set is shared, the shared members fire in the
  same order in both (positive rank correlation of their lags; a sequence and its reverse, as in
  a track's two running directions, are two sequences), and at least half of the occurrences of
  the pattern with fewer occurrences lie within half the larger window of one of the other's.
  The one with more significant occurrences is kept (ties: the smaller largest p-value, then the
  finer scale).
"""

from __future__ import annotations

import json
import logging
import time

import numpy as np
import pandas as pd
import quantities as pq

from convseq_neo.scales import Scale, scale_grid, time_resolution

logger = logging.getLogger(__name__)

__all__ = ["AUTO", "MIN_MEMBERS", "check_auto_arguments", "recording_facts", "plan_scales", "is_found",
           "is_part_of", "fit_patterns", "keep_across_scales", "search_scales"]

#: The value of the automatic defaults.
AUTO = "auto"


def _is_auto(value) -> bool:
    return isinstance(value, str) and value == AUTO


def check_auto_arguments(bin_size, width, n_patterns, max_patterns) -> None:
    """``TypeError``/``ValueError`` for strings other than ``"auto"`` and a bad ``max_patterns``, before any work."""
    for name, value in (("bin_size", bin_size), ("width", width), ("n_patterns", n_patterns)):
        if isinstance(value, str) and value != AUTO:
            raise ValueError(f"{name} must be 'auto' or a value, got the string {value!r}")
    if isinstance(max_patterns, bool) or not isinstance(max_patterns, (int, np.integer)) or max_patterns < 1:
        raise ValueError(f"max_patterns must be a positive int, got {max_patterns!r}")


def _recording_summary(plan) -> tuple[float, float, float]:
    """``(searched seconds, median rate in Hz, time resolution in s)`` of a planned (not binned) input."""
    from convseq_neo.raster import SpikeRaster

    duration = float(plan.time_map.observed_s) if plan.time_map is not None else plan.t_stop_s - plan.t_start_s
    spikes, _ = plan._summary() if plan._summary is not None else (plan.bin(), None)
    if isinstance(spikes, SpikeRaster):
        counts = np.bincount(spikes.neuron_index, minlength=spikes.n_neurons) if spikes.nnz else np.zeros(1)
        return duration, float(np.median(counts)) / duration, float(spikes.bin_size_s)
    # the trains may reach beyond the analysis window: only what is searched counts
    inside = [t[(t >= plan.t_start_s) & (t < plan.t_stop_s)] for t in (np.asarray(t, dtype=float) for t in spikes)]
    counts = np.array([t.size for t in inside]) if inside else np.zeros(1)
    return duration, float(np.median(counts)) / duration, time_resolution(inside)


def recording_facts(spiketrains, bin_size, *, t_start=None, t_stop=None, intervals=None,
                    segment_index=None) -> dict:
    """``duration_s``, ``median_rate_hz``, ``resolution_s`` and the window of the searched time, and the bin size given.

    ``bin_size`` ``"auto"`` (or None for a binned input, which then gives its own) leaves the bin
    free (``bin_size_s`` None).
    """
    from convseq_neo.io.neo import plan_raster

    fixed = None if _is_auto(bin_size) or bin_size is None else bin_size
    # only the spike times are read from this plan (never binned): any bin will do, and intervals laid end to end
    # need a window for their guard gaps, here two bins
    probe = fixed if fixed is not None else 10 * pq.ms

    def plan_with(bin_size):
        width = None if bin_size is None else 2 * bin_size
        return plan_raster(spiketrains, bin_size, t_start=t_start, t_stop=t_stop, width=width, n_init=1, n_folds=0,
                           n_surrogates=0, intervals=intervals, segment_index=segment_index)

    try:
        plan = plan_with(probe)
    except ValueError:
        if fixed is not None:
            raise
        # a binned input refuses a bin size other than its own
        plan = plan_raster(spiketrains, None, t_start=t_start, t_stop=t_stop, intervals=intervals,
                           segment_index=segment_index)
        fixed = pq.Quantity(plan.bin_size_s, "s")
    duration, rate, resolution = _recording_summary(plan)
    return {"duration_s": duration, "median_rate_hz": rate, "resolution_s": resolution,
            "window_start_s": float(plan.t_start_s), "window_stop_s": float(plan.t_stop_s),
            "bin_size_s": None if fixed is None else float(fixed.rescale("s").magnitude)}


def plan_scales(spiketrains, bin_size, **window) -> tuple[list[Scale], dict]:
    """The scales an automatic :func:`~convseq_neo.detect` searches on this input, and what they came from.

    Returns
    -------
    scales : list of Scale
    facts : dict
        ``duration_s``, ``median_rate_hz`` and ``resolution_s`` of the searched time, and the
        analysis window ``window_start_s``/``window_stop_s`` (:func:`recording_facts`).

    Raises
    ------
    ValueError
        No scale fits the recording (too short, or too dense for the finest bins).
    """
    facts = recording_facts(spiketrains, bin_size, **window)
    fixed_s = facts.pop("bin_size_s")
    duration, rate, resolution = facts["duration_s"], facts["median_rate_hz"], facts["resolution_s"]
    scales = scale_grid(duration, rate, resolution if fixed_s is None else fixed_s, bin_size_s=fixed_s)
    if not scales:
        raise ValueError(f"no time scale fits this recording ({duration:.4g} s searched, median rate {rate:.3g} Hz, "
                         f"time resolution {resolution:.3g} s): an automatic search needs a window of at least 0.1 s "
                         "that fits 50 times into the recording; pass bin_size and width")
    return scales, facts


def fit_patterns(fit, n_patterns, max_patterns: int, *, alpha: float, scale_index: int) -> tuple:
    """The fit kept at one scale, and its evidence rows.

    ``fit(k, alpha)`` returns a :class:`~convseq_neo.result.DetectionResult` with ``k`` patterns.
    With an int ``n_patterns`` it is called once; with ``"auto"`` with 1, 2, ... patterns (the
    rule in this module's docstring).
    """
    from convseq_neo.multiscale import _evidence_row

    counts = [int(n_patterns)] if not _is_auto(n_patterns) else list(range(1, int(max_patterns) + 1))
    rows, kept_result, kept_rows = [], None, None
    for k in counts:
        started = time.perf_counter()
        result = fit(k, alpha)
        seconds = time.perf_counter() - started
        these = [_evidence_row(result, scale_index, pattern, alpha=alpha, warp=1.0, chosen=False, kept=-1,
                               seconds=seconds) for pattern in result.patterns]
        rows.extend(these)
        newest = result.patterns[-1]
        whole = next((earlier for earlier in result.patterns[:-1] if is_part_of(newest, earlier)), None)
        newest_found = is_found(newest) and whole is None
        if kept_result is None or newest_found:
            kept_result, kept_rows = result, these
        if not newest_found:
            if len(counts) > 1:
                if whole is not None:
                    reason = f"repeats part of pattern {whole.pattern_id} (its members, in its order)"
                elif newest.n_occurrences == 0:
                    reason = "has no significant occurrence"
                else:
                    reason = f"has fewer than {MIN_MEMBERS} member neurons"
                for row in these:
                    row["note"] = f"newest pattern {reason}: stop"
            break
    for row in kept_rows:
        row["chosen"] = True
    return kept_result, rows


#: Fewest member neurons a pattern needs to count as found (a sequence orders at least two neurons).
MIN_MEMBERS = 2


def is_found(pattern) -> bool:
    """A pattern counts as found: at least one significant occurrence and :data:`MIN_MEMBERS` member neurons."""
    return pattern.n_occurrences > 0 and pattern.size >= MIN_MEMBERS


#: Share of a pattern's members that must be members of an earlier one for :func:`is_part_of`.
PART_SHARE = 0.8


def is_part_of(part, whole) -> bool:
    """Whether pattern ``part`` repeats a piece of ``whole``: most of its members are ``whole``'s, in ``whole``'s order.

    A second pattern of one fit can learn the head or tail of the first one's sequence and catch an
    occurrence or two that the first missed. At least :data:`PART_SHARE` of ``part``'s members
    (and at least :data:`MIN_MEMBERS`) must be members of ``whole``, and the shared members' lags
    must rise together (Spearman correlation above 0). A sequence and its reverse share every
    member but not the order, so they stay two patterns.

    Examples
    --------
    >>> import numpy as np
    >>> import quantities as pq
    >>> from convseq_neo.result import Pattern
    >>> def pattern(i, neurons, lags):
    ...     return Pattern(i, np.array(neurons), (), np.array(lags, dtype=float) * pq.ms, np.zeros(len(neurons)),
    ...                    np.zeros(len(neurons)), np.zeros((10, 4)), 5)
    >>> whole = pattern(0, [1, 2, 3, 4, 5], [0, 10, 20, 30, 40])
    >>> is_part_of(pattern(1, [1, 2, 3], [-10, 0, 10]), whole), is_part_of(pattern(1, [3, 2, 1], [-10, 0, 10]), whole)
    (True, False)
    """
    part_neurons, whole_neurons = np.asarray(part.neurons, dtype=int), np.asarray(whole.neurons, dtype=int)
    shared = np.isin(part_neurons, whole_neurons)
    if part_neurons.size == 0 or shared.sum() < max(MIN_MEMBERS, PART_SHARE * part_neurons.size):
        return False
    rho = _shared_lag_order(part, whole)
    return rho is not None and rho > 0


def _shared_lag_order(a, b) -> float | None:
    """Spearman rho between the lags of the members two patterns share; None when it cannot be told
    (fewer than 2 shared members, or all shared lags equal in one of them)."""
    from scipy.stats import spearmanr

    _, a_at, b_at = np.intersect1d(np.asarray(a.neurons, dtype=int), np.asarray(b.neurons, dtype=int),
                                   assume_unique=True, return_indices=True)
    if a_at.size < 2:
        return None
    a_lags = a.lags.rescale(pq.s).magnitude[a_at]
    b_lags = b.lags.rescale(pq.s).magnitude[b_at]
    if np.ptp(a_lags) == 0 or np.ptp(b_lags) == 0:
        return None
    return float(spearmanr(a_lags, b_lags).statistic)


def _members_shared(a, b) -> float:
    a, b = set(int(n) for n in a), set(int(n) for n in b)
    if not a or not b:
        return 1.0
    return len(a & b) / min(len(a), len(b))


def _same_order(a, b) -> bool:
    """Whether the members two patterns share fire in the same order (rho of their lags > 0); True when
    the order cannot be told."""
    rho = _shared_lag_order(a, b)
    return rho is None or rho > 0


def _occurrences_shared(a: np.ndarray, b: np.ndarray, tolerance: float) -> float:
    if a.size == 0 or b.size == 0:
        return 0.0
    few, many = (a, b) if a.size <= b.size else (b, a)
    many = np.sort(many)
    at = np.clip(np.searchsorted(many, few), 1, many.size - 1) if many.size > 1 else np.zeros(few.size, int)
    nearest = np.minimum(np.abs(many[at] - few), np.abs(many[np.maximum(at - 1, 0)] - few))
    return float(np.mean(nearest <= tolerance))


def keep_across_scales(results: list, rows: list[dict]) -> pd.DataFrame:
    """The pattern map of the patterns kept over scales (the rule in this module's docstring); marks ``rows``."""
    candidates = []
    for scale, result in enumerate(results):
        occ = result.occurrences
        for pattern in result.patterns:
            centers = occ[occ["pattern"] == pattern.pattern_id]["center"].to_numpy(float)
            if not is_found(pattern):
                continue
            largest_p = float(occ[occ["pattern"] == pattern.pattern_id]["pvalue"].max())
            candidates.append({"scale": scale, "local_pattern": pattern.pattern_id, "pattern": pattern,
                               "centers": centers, "n": centers.size, "largest_p": largest_p,
                               "bin_size": float(result.raster.bin_size_s),
                               "width": float(result.raster.bin_size_s) * int(result.model.width)})
    order = sorted(range(len(candidates)), key=lambda i: (-candidates[i]["n"], candidates[i]["largest_p"],
                                                          candidates[i]["width"]))
    kept: list[dict] = []
    notes: dict[tuple, str] = {}
    for i in order:
        c = candidates[i]
        cover = None
        for k in kept:
            if k["scale"] == c["scale"]:
                continue
            tolerance = max(c["width"], k["width"]) / 2
            if (_members_shared(c["pattern"].neurons, k["pattern"].neurons) >= 0.5
                    and _same_order(c["pattern"], k["pattern"])
                    and _occurrences_shared(c["centers"], k["centers"], tolerance) >= 0.5):
                cover = k
                break
        if cover is None:
            kept.append(c)
        else:
            notes[(c["scale"], c["local_pattern"])] = (f"same sequence as the pattern kept at the "
                                                       f"{cover['width'] * 1e3:.4g} ms window")
    kept.sort(key=lambda k: (k["width"], k["local_pattern"]))
    numbers = {(k["scale"], k["local_pattern"]): g for g, k in enumerate(kept)}
    for row in rows:
        if not row["chosen"]:
            continue
        key = (row["scale"], row["pattern"])
        row["kept"] = numbers.get(key, -1)
        if key in notes:
            row["note"] = notes[key]
        elif row["kept"] < 0 and not row["note"]:
            row["note"] = ("no significant occurrence" if row["n_occurrences"] == 0
                           else f"fewer than {MIN_MEMBERS} member neurons")
    return pd.DataFrame([{"pattern": g, "scale": k["scale"], "local_pattern": k["local_pattern"],
                          "bin_size": k["bin_size"], "width": k["width"], "warp": 1.0} for g, k in enumerate(kept)],
                        columns=["pattern", "scale", "local_pattern", "bin_size", "width", "warp"])


def search_scales(fit_at, scales: list[Scale], n_patterns, max_patterns: int, alpha: float, *, progress: bool = False,
                  facts: dict | None = None):
    """Fit every scale (``fit_at(scale, k, alpha, index)`` returns a DetectionResult) and build the result.

    Returns
    -------
    MultiScaleResult
    """
    from convseq_neo.multiscale import MultiScaleResult

    alpha_each = float(alpha) / len(scales)
    results, rows = [], []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(scales), desc="convseq scales", unit="scale")
    try:
        for index, scale in enumerate(scales):
            logger.info("scale search: %s (%d of %d), alpha %.3g", scale, index + 1, len(scales), alpha_each)
            if bar is not None:
                bar.set_postfix_str(str(scale))

            def fit(k, level, scale=scale, index=index):
                return fit_at(scale, k, level, index)

            result, these = fit_patterns(fit, n_patterns, max_patterns, alpha=alpha_each, scale_index=index)
            if bar is not None:
                bar.update(1)
            results.append(result)
            rows.extend(these)
    finally:
        if bar is not None:
            bar.close()
    pattern_map = keep_across_scales(results, rows)
    parameters = {"method": "convseq", "applied": "fit", "search": "scales", "n_scales": len(scales),
                  "scales_width_s": _json([s.width_s for s in scales]),
                  "scales_bin_size_s": _json([s.bin_size_s for s in scales]),
                  "alpha": float(alpha), "alpha_per_scale": alpha_each, "n_patterns_asked": str(n_patterns),
                  "n_fits": len({(r["scale"], r["n_patterns"]) for r in rows})}
    if _is_auto(n_patterns):
        parameters["max_patterns"] = int(max_patterns)
    for key, value in (facts or {}).items():
        parameters[f"recording_{key}"] = float(value)
    logger.info("scale search: kept %d pattern(s) over %d scale(s)", len(pattern_map), len(scales))
    return MultiScaleResult(results, pattern_map, pd.DataFrame(rows), parameters)


def _json(values) -> str:
    return json.dumps([round(float(v), 9) for v in values])
