"""Figures for detection results (matplotlib, without pyplot: safe on any backend, never shown).

Every function returns a :class:`matplotlib.figure.Figure` built without pyplot (so nothing is
ever shown or kept open, whatever the backend) or draws into the ``ax`` it is given and returns
that Axes' figure. Colours come from the Okabe-Ito palette (:data:`PATTERN_COLORS`), which stays
distinguishable with the common colour-vision deficiencies; heat maps use ``viridis``.

The functions take what :func:`~convseq_neo.detect.detect` returns and read it by its attributes
(``raster``, ``model``, ``patterns``, ``occurrences``, ...): this package imports neither
:mod:`convseq_neo.detect` nor :mod:`convseq_neo.result`. Times come from the result's raster
(:meth:`~convseq_neo.raster.SpikeRaster.position_to_time`).

A result with a ``time_map`` (``intervals=``, a TsGroup's time support or several segments,
laid end to end with guard gaps; :mod:`convseq_neo.io.intervals`) is drawn on its raster's
*analysis clock*: the occurrences, which the result gives on the recording's clock, are moved
onto it (:meth:`~convseq_neo.io.intervals.TimeMap.to_analysis_frame`), the guard gaps between
intervals are shaded grey, and the raster labels each interval with the recording time (and
segment) where it starts. ``time_range`` is on the analysis clock too.

Functions
---------
:func:`plot_detection`
    Everything at once: sorted raster with occurrences, responses with thresholds, filters.
:func:`plot_raster`, :func:`plot_responses`, :func:`plot_filters`
    The three pieces of :func:`plot_detection`, one at a time.
:func:`plot_training_curve`
    The training loss per epoch and where (and why) training stopped.
:func:`plot_membership`
    One pattern's members: lag against membership evidence, and their filter rows.
:func:`plot_scale_search`
    The evidence of an automatic search: significant occurrences of every fit, by window.
"""

from __future__ import annotations

import logging
import numbers
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import quantities as pq
from matplotlib.axes import Axes
from matplotlib.figure import Figure, SubFigure

from convseq_neo._validation import check_time_quantity

if TYPE_CHECKING:  # pragma: no cover
    from convseq_neo.core.estimator import ConvSeq
    from convseq_neo.result import DetectionResult

logger = logging.getLogger(__name__)

__all__ = [
    "PATTERN_COLORS",
    "plot_detection",
    "plot_raster",
    "plot_responses",
    "plot_filters",
    "plot_training_curve",
    "plot_membership",
    "plot_scale_search",
    "sorted_rows",
]

#: The Okabe & Ito (2008) colour-blind-safe palette, by name.
OKABE_ITO = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky blue": "#56B4E9",
    "bluish green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish purple": "#CC79A7",
}
#: Colour of pattern ``k`` is ``PATTERN_COLORS[k % len(PATTERN_COLORS)]`` (Okabe-Ito; black is kept for data
#: and thresholds, yellow comes last as it is faint on white).
PATTERN_COLORS = tuple(OKABE_ITO[name] for name in ("blue", "vermillion", "bluish green", "reddish purple", "orange",
                                                      "sky blue", "yellow"))
_GREY = "#7F7F7F"
#: A (start, stop) pair of time Quantities.
TimeRange = tuple[pq.Quantity, pq.Quantity]
_CMAP = "viridis"
_MAX_TICK_LABELS = 40
#: At most this many visible intervals are labelled with their recording time on the raster.
_MAX_PIECE_LABELS = 12
#: ``gid`` of the shading of a guard gap and of an interval's label (to find them among the artists).
GUARD_GID = "convseq_guard_gap"
PIECE_LABEL_GID = "convseq_interval_label"
#: What the figures read from a result (duck typing: no import of convseq_neo.result).
_RESULT_ATTRIBUTES = ("raster", "model", "patterns", "occurrences", "candidates", "responses", "thresholds",
                      "membership")


def _color(k: int) -> str:
    return PATTERN_COLORS[k % len(PATTERN_COLORS)]


# ---------------------------------------------------------------------------------------------
# argument checks
# ---------------------------------------------------------------------------------------------
def _is_result(value) -> bool:
    """Duck-typed check for a DetectionResult (this package does not import convseq_neo.result)."""
    return all(hasattr(value, attribute) for attribute in _RESULT_ATTRIBUTES)


def _check_result(result, name: str = "result") -> DetectionResult:
    if not _is_result(result):
        raise TypeError(f"{name} must be a convseq_neo.DetectionResult (what convseq_neo.detect returns), got "
                        f"{type(result).__name__}")
    return result


def _check_pattern(pattern, n_patterns: int, name: str = "pattern", allow_none: bool = False) -> int | None:
    if pattern is None and allow_none:
        return None
    if isinstance(pattern, (bool, np.bool_)) or not isinstance(pattern, numbers.Integral):
        what = "an int or None" if allow_none else "an int"
        raise TypeError(f"{name} must be {what} (a pattern index), got {type(pattern).__name__}")
    if not 0 <= int(pattern) < n_patterns:
        raise ValueError(f"{name} must be in [0, {n_patterns}) (the result has {n_patterns} pattern(s)), got {pattern}")
    return int(pattern)


def _check_figsize(figsize, name: str = "figsize") -> tuple[float, float] | None:
    if figsize is None:
        return None
    if not isinstance(figsize, (tuple, list)) or len(figsize) != 2 or not all(
            isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_)) for v in figsize):
        raise TypeError(f"{name} must be a (width, height) pair of numbers in inches, got {figsize!r}")
    if not all(np.isfinite(v) and v > 0 for v in figsize):
        raise ValueError(f"{name} must be positive and finite, got {figsize!r}")
    return float(figsize[0]), float(figsize[1])


def _root_figure(ax: Axes) -> Figure:
    fig = ax.figure
    while isinstance(fig, SubFigure):
        fig = fig.figure
    return fig


def _one_axes(ax, name: str, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    """A new figure with one Axes (``ax`` None), or the given Axes and its figure."""
    if ax is None:
        fig = Figure(figsize=figsize, layout="constrained")
        return fig, fig.add_subplot()
    if not isinstance(ax, Axes):
        raise TypeError(f"{name} must be a matplotlib Axes or None, got {type(ax).__name__}")
    return _root_figure(ax), ax


def _many_axes(ax, n: int, name: str, figsize: tuple[float, float]) -> tuple[Figure, list[Axes]]:
    """``n`` stacked Axes in a new figure (``ax`` None), or the ``n`` given ones (one Axes when ``n == 1``)."""
    if ax is None:
        fig = Figure(figsize=figsize, layout="constrained")
        return fig, [fig.add_subplot(n, 1, i + 1) for i in range(n)]
    if isinstance(ax, Axes):
        ax = [ax]
    elif isinstance(ax, np.ndarray):
        ax = list(ax.ravel())
    if not isinstance(ax, Sequence) or not all(isinstance(a, Axes) for a in ax):
        raise TypeError(f"{name} must be None, a matplotlib Axes or a sequence of Axes, got {type(ax).__name__}")
    if len(ax) != n:
        raise ValueError(f"{name} must hold one Axes per pattern drawn ({n}), got {len(ax)}")
    return _root_figure(ax[0]), list(ax)


def _time_range(result, time_range) -> tuple[float, float]:
    start, stop = float(result.t_start), float(result.t_stop)
    if time_range is None:
        return start, stop
    if not isinstance(time_range, (tuple, list)) or len(time_range) != 2:
        raise TypeError("time_range must be a (start, stop) pair of pq.Quantity, e.g. (0 * pq.s, 10 * pq.s)")
    low = float(check_time_quantity(time_range[0], "time_range[0]").magnitude)
    high = float(check_time_quantity(time_range[1], "time_range[1]").magnitude)
    if high <= low:
        raise ValueError(f"time_range must have stop > start, got ({low:g}, {high:g}) s")
    if high <= start or low >= stop:
        raise ValueError(f"time_range ({low:g}, {high:g}) s does not overlap the recording [{start:g}, {stop:g}) s")
    return max(start, low), min(stop, high)


# ---------------------------------------------------------------------------------------------
# shared geometry
# ---------------------------------------------------------------------------------------------
def sorted_rows(result: DetectionResult) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Neuron order for display: each pattern's members by lag (patterns in turn), then everyone else.

    Parameters
    ----------
    result : DetectionResult

    Returns
    -------
    order : numpy.ndarray of int
        Raster rows, top to bottom.
    blocks : list of (int, int)
        Per pattern, the ``[first, stop)`` display rows of the members placed for it (a neuron
        already shown for an earlier pattern is not repeated).

    Examples
    --------
    ``result`` is :func:`convseq_neo.detect` run on a generated recording, as in that function's example.

    >>> order, blocks = sorted_rows(result)
    >>> order[:blocks[0][1]].tolist() == result.patterns[0].neurons.tolist()
    True
    """
    result = _check_result(result)
    placed: list[int] = []
    blocks = []
    seen: set[int] = set()
    for pattern in result.patterns:
        first = len(placed)
        for neuron in pattern.neurons:
            if int(neuron) not in seen:
                seen.add(int(neuron))
                placed.append(int(neuron))
        blocks.append((first, len(placed)))
    rest = [n for n in range(result.raster.n_neurons) if n not in seen]
    return np.asarray(placed + rest, dtype=np.int64), blocks


def _offsets(result) -> np.ndarray:
    """Each pattern's centre relative to its window centre, in bins."""
    return np.asarray(getattr(result.model, "pattern_offsets_", np.zeros(result.n_patterns)), dtype=float)


def _peak_times(result, k: int, centers_s: np.ndarray) -> np.ndarray:
    """Where on the drawn response each tested peak is (s): its occurrence centre minus the pattern's
    centre offset, i.e. its peak bin (the tested responses are stored in the all-data filter's frame)."""
    raster = result.raster
    peak_bins = np.rint(raster.time_to_position(centers_s) - _offsets(result)[k])
    return raster.position_to_time(peak_bins)


def _time_map(result):
    """The result's TimeMap, or None (results without the attribute, e.g. stored ones, have none)."""
    return getattr(result, "time_map", None)


def _on_raster_clock(result, frame):
    """Occurrence rows (recording's clock) moved onto the raster's analysis clock; rows that fall in no
    searched interval are left out. Without a time map the frame is returned as is."""
    time_map = _time_map(result)
    if time_map is None:
        return frame
    moved = time_map.to_analysis_frame(frame)
    return moved[np.isfinite(moved["center"].to_numpy(float))]


def _time_label(result) -> str:
    if _time_map(result) is None:
        return "time (s)"
    return "time (s, searched intervals laid end to end; grey: gaps between them)"


def _draw_pieces(ax: Axes, result, start: float, stop: float, labels: bool = False) -> None:
    """Shade the guard gaps between the laid-out intervals and (``labels``) mark where each starts."""
    time_map = _time_map(result)
    if time_map is None:
        return
    starts = np.asarray(time_map.piece_start_s, dtype=float)
    ends = starts + np.asarray(time_map.n_bins, dtype=float) * float(time_map.bin_size_s)
    for gap_start, gap_stop in zip(ends[:-1], starts[1:]):
        if gap_stop > start and gap_start < stop:
            ax.axvspan(max(gap_start, start), min(gap_stop, stop), facecolor=_GREY, alpha=0.25, lw=0, zorder=0,
                       gid=GUARD_GID)
    if not labels:
        return
    visible = np.flatnonzero((starts < stop) & (ends > start))
    if visible.size > _MAX_PIECE_LABELS:
        return
    transform = ax.get_xaxis_transform()
    for piece in visible:
        x = max(float(starts[piece]), start)
        at = float(time_map.start_s[piece]) + (x - float(starts[piece]))  # the recording time at x
        text = f"{at:.6g} s" if time_map.n_parts == 1 else f"segment {int(time_map.part[piece])}: {at:.6g} s"
        ax.text(x, 0.995, " " + text, transform=transform, ha="left", va="top", fontsize="xx-small",
                color=OKABE_ITO["black"], alpha=0.7, gid=PIECE_LABEL_GID, clip_on=True)


def _lag_extent_ms(result, shift_bins: float = 0.0) -> tuple[float, float]:
    """x extent (ms) of filter columns, each cell centred on its lag ``j - W // 2 - shift_bins`` bins.

    Lags are differences of positions (no time origin); the half bins are the cells' half widths.
    """
    width = int(result.model.filters_.shape[-1])
    bin_ms = float(result.raster.bin_size_s) * 1e3
    return ((-(width // 2) - 0.5 - shift_bins) * bin_ms, (width - width // 2 - 0.5 - shift_bins) * bin_ms)


# ---------------------------------------------------------------------------------------------
# drawing pieces
# ---------------------------------------------------------------------------------------------
def _draw_raster(ax: Axes, result, start: float, stop: float) -> None:
    raster = result.raster
    order, blocks = sorted_rows(result)
    position = np.empty(raster.n_neurons, dtype=np.int64)
    position[order] = np.arange(order.size)
    spike_time = raster.position_to_time(raster.bin_index)
    keep = (spike_time >= start) & (spike_time < stop)
    ax.scatter(spike_time[keep], position[raster.neuron_index[keep]], s=2, marker="|", c=OKABE_ITO["black"],
               linewidths=0.6, rasterized=True)
    _draw_pieces(ax, result, start, stop, labels=True)
    occ = _on_raster_clock(result, result.occurrences)
    occ = occ[(occ["offset"] >= start) & (occ["onset"] < stop)]
    for k, (first, last) in enumerate(blocks):
        color = _color(k)
        rows = occ[occ["pattern"] == k]
        # the rows of this pattern's own members: its block, plus members shown earlier in another
        # pattern's block (a neuron is drawn once); all rows when it has no member
        members = position[np.asarray(result.patterns[k].neurons, dtype=np.int64)]
        low, high = (members.min() - 0.5, members.max() + 0.5) if members.size else (-0.5, raster.n_neurons - 0.5)
        if len(rows):
            spans = list(zip(rows["onset"].to_numpy(float), (rows["offset"] - rows["onset"]).to_numpy(float)))
            ax.broken_barh(spans, (low, high - low), facecolors=color, alpha=0.3, edgecolor="none")
            ax.plot(rows["center"], np.full(len(rows), high), "^", color=color, ms=4, clip_on=False,
                    label=f"pattern{k} ({result.patterns[k].n_occurrences} occurrences)")
        if last > first:
            ax.axhline(last - 0.5, color=color, lw=0.6, ls=":")
    ax.set_ylim(raster.n_neurons - 0.5, -0.5)
    ax.set_xlim(start, stop)
    ax.set_ylabel("neuron (members by lag, then the rest)")
    ax.set_xlabel(_time_label(result))
    time_map = _time_map(result)
    where = "" if time_map is None else f" in {time_map.n_pieces} intervals" + (
        f" of {time_map.n_parts} segments" if time_map.n_parts > 1 else "")
    ax.set_title(f"{raster.n_neurons} neurons, {len(result.occurrences)} significant occurrences{where}",
                 fontsize="medium", loc="left")
    if len(occ):  # above the axes, so that it hides no spike
        ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=min(3, result.n_patterns), fontsize="small",
                  frameon=False, borderaxespad=0.1)


def _draw_response(ax: Axes, result, k: int, start: float, stop: float, candidates: bool = True) -> None:
    raster = result.raster
    length = result.responses.shape[1]
    response_time = raster.position_to_time(np.arange(length))
    window = (response_time >= start) & (response_time < stop)
    color = _color(k)
    _draw_pieces(ax, result, start, stop)
    ax.plot(response_time[window], result.responses[k][window], color=color, lw=0.7, label="response")
    if result.thresholds is not None:
        threshold = np.where(np.isfinite(result.thresholds[k]), result.thresholds[k], np.nan)
        ax.plot(response_time[window], threshold[window], color=OKABE_ITO["black"], lw=0.8, ls="--",
                label="significance threshold")
    if candidates:
        cand = _on_raster_clock(result, result.candidates)
        cand = cand[(cand["pattern"] == k) & ~cand["significant"]]
        peak_time = _peak_times(result, k, cand["center"].to_numpy(float))
        inside = (peak_time >= start) & (peak_time < stop)
        if inside.any():
            ax.plot(peak_time[inside], cand["peak"].to_numpy(float)[inside], ".", color=_GREY, ms=3.5,
                    label="tested peak, not significant")
    occ = _on_raster_clock(result, result.occurrences)
    rows = occ[occ["pattern"] == k]
    peak_time = _peak_times(result, k, rows["center"].to_numpy(float))
    inside = (peak_time >= start) & (peak_time < stop)
    if inside.any():
        ax.plot(peak_time[inside], rows["peak"].to_numpy(float)[inside], "o", color=color, mfc="none", ms=4,
                label="significant peak")
    ax.set_xlim(start, stop)
    ax.set_ylabel(f"pattern{k}\nresponse (a.u.)")
    ax.set_xlabel(_time_label(result))
    ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=4, fontsize="x-small", frameon=False,
              borderaxespad=0.1)


def _draw_filter(ax: Axes, result, k: int, order: np.ndarray):
    extent = (*_lag_extent_ms(result), result.raster.n_neurons - 0.5, -0.5)
    image = ax.imshow(result.patterns[k].filter[order], aspect="auto", interpolation="nearest", extent=extent,
                      cmap=_CMAP)
    ax.set_title(f"pattern{k} filter", fontsize="small", color=_color(k))
    ax.set_ylabel("neuron (sorted)")
    ax.set_xlabel("lag from window centre (ms)")
    colorbar = _root_figure(ax).colorbar(image, ax=ax, fraction=0.08)
    colorbar.set_label("weight (row sums to 1)", fontsize="x-small")
    return image


# ---------------------------------------------------------------------------------------------
# public figures
# ---------------------------------------------------------------------------------------------
def plot_detection(result: DetectionResult, time_range: TimeRange | None = None,
                   figsize: tuple[float, float] | None = None) -> Figure:
    """Draw a :class:`~convseq_neo.result.DetectionResult`.

    Left column, sharing the time axis: the spike raster with neurons sorted by the learned
    order (each pattern's members by lag, then the rest), every significant occurrence shaded
    from onset to offset over its pattern's members and its centre marked; below it, one panel
    per pattern with the filter's response, the significance threshold (where there is one),
    the tested peaks that were not significant (grey) and the significant ones. Right column:
    each pattern's filter as a heat map (neurons in the raster's order, lag from the window
    centre in ms).

    A result with a ``time_map`` (searched intervals or several segments laid end to end) is
    drawn on its analysis clock: the occurrences are moved onto the laid-out raster, the guard
    gaps between intervals are shaded grey (``gid`` ``GUARD_GID``) and, when at most 12
    intervals are visible, each is labelled with its start on the recording's clock (and its
    segment; ``gid`` ``PIECE_LABEL_GID``).

    Parameters
    ----------
    result : DetectionResult
    time_range : (pq.Quantity, pq.Quantity), optional
        Part of the recording to draw (default: all), on the raster's (analysis) clock.
    figsize : (float, float), optional
        Figure size in inches.

    Returns
    -------
    matplotlib.figure.Figure
        ``fig.axes[0]`` is the raster, then the response panels, the filter panels and their
        colour bars.

    Raises
    ------
    TypeError
        ``result`` is not a DetectionResult, ``time_range`` is not a pair of time Quantities,
        ``figsize`` is not a pair of numbers.
    ValueError
        ``time_range`` with stop <= start, a non-positive ``figsize``.

    See Also
    --------
    plot_raster, plot_responses, plot_filters : the pieces, one at a time.

    Examples
    --------
    ``result`` is :func:`convseq_neo.detect` run on a generated recording, as in that function's example.

    >>> import quantities as pq
    >>> fig = plot_detection(result, time_range=(0 * pq.s, 10 * pq.s))
    >>> fig.axes[0].get_ylabel(), [float(x) for x in fig.axes[0].get_xlim()]
    ('neuron (members by lag, then the rest)', [0.0, 10.0])
    """
    result = _check_result(result)
    start, stop = _time_range(result, time_range)
    figsize = _check_figsize(figsize)
    n_patterns = result.n_patterns
    order, _ = sorted_rows(result)

    figsize = figsize or (12.0, 4.0 + 1.6 * n_patterns)
    fig = Figure(figsize=figsize, layout="constrained")
    grid = fig.add_gridspec(1 + n_patterns, 2, width_ratios=[4, 1], height_ratios=[3] + [1] * n_patterns)
    ax_raster = fig.add_subplot(grid[0, 0])
    response_axes = [fig.add_subplot(grid[1 + k, 0], sharex=ax_raster) for k in range(n_patterns)]
    filter_grid = grid[:, 1].subgridspec(n_patterns, 1)
    filter_axes = [fig.add_subplot(filter_grid[0, 0])]
    filter_axes += [fig.add_subplot(filter_grid[k, 0], sharex=filter_axes[0]) for k in range(1, n_patterns)]

    _draw_raster(ax_raster, result, start, stop)
    for k, ax in enumerate(response_axes):
        _draw_response(ax, result, k, start, stop)
        if k < n_patterns - 1:
            ax.tick_params(labelbottom=False)
            ax.set_xlabel("")
    if response_axes:
        ax_raster.tick_params(labelbottom=False)
        ax_raster.set_xlabel("")
    for k, ax in enumerate(filter_axes):
        _draw_filter(ax, result, k, order)
        if k < n_patterns - 1:
            ax.tick_params(labelbottom=False)
            ax.set_xlabel("")
    return fig


def plot_raster(result: DetectionResult, time_range: TimeRange | None = None, ax: Axes | None = None) -> Figure:
    """The spike raster, neurons sorted by the learned order, with the significant occurrences.

    Rows are each pattern's members ordered by lag (earliest on top; patterns in turn, a dotted
    line in the pattern's colour closing each block), then every other neuron. Each significant
    occurrence is shaded from onset to offset over the rows of its pattern's members, and its
    centre marked by a triangle on the lower edge of the shading. A real sequence shows as a
    diagonal of spikes inside the shading. With a ``time_map``, as in :func:`plot_detection`:
    the analysis clock, guard gaps shaded, intervals labelled.

    Parameters
    ----------
    result : DetectionResult
    time_range : (pq.Quantity, pq.Quantity), optional
        Part of the recording to draw (default: all), on the raster's (analysis) clock. Zoom in
        to see single occurrences.
    ax : matplotlib.axes.Axes, optional
        Where to draw (default: a new figure).

    Returns
    -------
    matplotlib.figure.Figure
        The new figure, or ``ax``'s figure.

    Raises
    ------
    TypeError
        ``result`` is not a DetectionResult, ``time_range`` is not a pair of time Quantities,
        ``ax`` is not an Axes.
    ValueError
        ``time_range`` with stop <= start.

    Examples
    --------
    ``result`` is :func:`convseq_neo.detect` run on a generated recording, as in that function's example.

    >>> import quantities as pq
    >>> fig = plot_raster(result, time_range=(5 * pq.s, 8 * pq.s))
    >>> len(fig.axes), fig.axes[0].get_xlabel()
    (1, 'time (s)')
    """
    result = _check_result(result)
    start, stop = _time_range(result, time_range)
    fig, ax = _one_axes(ax, "ax", (10.0, 4.0))
    _draw_raster(ax, result, start, stop)
    return fig


def plot_responses(result: DetectionResult, pattern: int | None = None, time_range: TimeRange | None = None,
                   ax: Axes | Sequence[Axes] | None = None) -> Figure:
    """Each filter's response over time, with the significance threshold and the tested peaks.

    The response is the filter's match to the raster at every time (the cross-fitted response
    that was tested, after :func:`~convseq_neo.detect.detect`). A peak is an occurrence when it
    rises above the dashed threshold (the height its p-value had to beat at the false discovery
    rate ``alpha``; the threshold differs between cross-fitting folds and is missing where no
    peak could be significant). Open circles: significant peaks; grey dots: peaks that were
    tested and not significant. With a ``time_map``, on the analysis clock with the guard gaps
    shaded (as in :func:`plot_detection`).

    Parameters
    ----------
    result : DetectionResult
    pattern : int, optional
        One pattern (default: all, one panel each).
    time_range : (pq.Quantity, pq.Quantity), optional
        Part of the recording to draw (default: all), on the raster's (analysis) clock.
    ax : matplotlib.axes.Axes or sequence of Axes, optional
        Where to draw: one Axes per pattern drawn (default: a new figure).

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    TypeError
        Wrong type for ``result``, ``pattern``, ``time_range`` or ``ax``.
    ValueError
        ``pattern`` out of range, ``time_range`` with stop <= start, not one Axes per pattern.

    Examples
    --------
    ``result`` is :func:`convseq_neo.detect` run on a generated recording, as in that function's example.

    >>> fig = plot_responses(result, pattern=0)
    >>> fig.axes[0].get_xlabel(), fig.axes[0].get_ylabel()
    ('time (s)', 'pattern0\\nresponse (a.u.)')
    """
    result = _check_result(result)
    pattern = _check_pattern(pattern, result.n_patterns, allow_none=True)
    start, stop = _time_range(result, time_range)
    patterns = list(range(result.n_patterns)) if pattern is None else [pattern]
    fig, axes = _many_axes(ax, len(patterns), "ax", (10.0, 0.5 + 1.8 * len(patterns)))
    for k, axis in zip(patterns, axes):
        _draw_response(axis, result, k, start, stop)
    return fig


def plot_filters(result: DetectionResult, pattern: int | None = None,
                 ax: Axes | Sequence[Axes] | None = None) -> Figure:
    """The learned filters as heat maps: neurons (sorted as in :func:`plot_raster`) x lag.

    Each row is one neuron's weight over the window (a softmax: the row sums to 1, so a flat
    row is ``1 / W`` everywhere). A sequence is a diagonal of bright cells across its members;
    the rest of the neurons stay flat.

    Parameters
    ----------
    result : DetectionResult
    pattern : int, optional
        One pattern (default: all, side by side).
    ax : matplotlib.axes.Axes or sequence of Axes, optional
        Where to draw: one Axes per pattern drawn (default: a new figure). A colour bar is added
        next to each.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    TypeError
        Wrong type for ``result``, ``pattern`` or ``ax``.
    ValueError
        ``pattern`` out of range, not one Axes per pattern.

    Examples
    --------
    ``result`` is :func:`convseq_neo.detect` run on a generated recording, as in that function's example.

    >>> fig = plot_filters(result)
    >>> len(fig.axes), fig.axes[0].get_xlabel()        # one heat map and its colour bar
    (2, 'lag from window centre (ms)')
    """
    result = _check_result(result)
    pattern = _check_pattern(pattern, result.n_patterns, allow_none=True)
    patterns = list(range(result.n_patterns)) if pattern is None else [pattern]
    if ax is None:
        fig = Figure(figsize=(3.2 * len(patterns) + 0.5, 4.0), layout="constrained")
        axes = [fig.add_subplot(1, len(patterns), i + 1) for i in range(len(patterns))]
    else:
        fig, axes = _many_axes(ax, len(patterns), "ax", (0.0, 0.0))
    order, _ = sorted_rows(result)
    for k, axis in zip(patterns, axes):
        _draw_filter(axis, result, k, order)
    return fig


def plot_training_curve(model_or_result: ConvSeq | DetectionResult, ax: Axes | None = None) -> Figure:
    """The training loss per epoch of each pattern's filter, and where and why training stopped.

    Shows ``ConvSeq.loss_history_``: for each pattern (trained one after another), the loss of the
    filter fit on all the data (the best of its ``n_init`` restarts; the cross-fitting fold
    filters are trained alongside and stop with it, but are not drawn). The loss is minus the
    response variance plus the smoothness and explaining-away penalties, so it is in arbitrary
    units and only its shape matters: a plateau, a drop when the filter locks onto a sequence,
    then a flat tail. A filled circle marks the last epoch of a filter that converged (the best
    loss improved by less than ``tol`` over ``patience`` epochs); a cross, one stopped by
    ``max_epochs`` before converging (train longer, or accept a filter that was still improving).
    The dotted line is ``min_epochs``, before which training never stops. For ``K > 1`` a filter
    that was split into two sequences is retrained and its second run follows the first, so its
    curve can be longer than ``max_epochs`` and jump where the second run starts.

    Parameters
    ----------
    model_or_result : ConvSeq or DetectionResult
        A fitted estimator, or a result of :func:`~convseq_neo.detect.detect` (its ``model``).
    ax : matplotlib.axes.Axes, optional
        Where to draw (default: a new figure).

    Returns
    -------
    matplotlib.figure.Figure
        Per pattern ``k``, ``ax.lines`` holds its curve (``n_epochs_[k]`` points, epochs 1 to
        ``n_epochs_[k]``) followed by its stop marker.

    Raises
    ------
    TypeError
        ``model_or_result`` is neither a ConvSeq nor a DetectionResult, ``ax`` is not an Axes.
    ValueError
        The estimator is not fitted.

    Examples
    --------
    ``result`` is :func:`convseq_neo.detect` run on a generated recording, as in that function's example.

    >>> fig = plot_training_curve(result)
    >>> ax = fig.axes[0]
    >>> ax.get_xlabel(), ax.get_ylabel(), len(ax.lines[0].get_xdata()) == int(result.model.n_epochs_[0])
    ('epoch', 'loss (a.u.)', True)
    """
    if _is_result(model_or_result):
        model = model_or_result.model
    elif callable(getattr(model_or_result, "fit", None)) and callable(getattr(model_or_result, "get_params", None)):
        model = model_or_result  # a ConvSeq (duck-typed: this package does not import the core)
    else:
        raise TypeError(f"model_or_result must be a fitted convseq_neo.ConvSeq or a DetectionResult, got "
                        f"{type(model_or_result).__name__}")
    if not all(hasattr(model, name) for name in ("loss_history_", "n_epochs_", "stop_reason_")):
        raise ValueError("model_or_result is a ConvSeq that is not fitted yet (no loss_history_): call fit first")
    history = np.atleast_2d(np.asarray(model.loss_history_, dtype=float))
    n_epochs = np.asarray(model.n_epochs_, dtype=int).reshape(-1)
    reasons = list(model.stop_reason_)
    fig, ax = _one_axes(ax, "ax", (6.0, 3.5))
    for k in range(history.shape[0]):
        n = int(n_epochs[k])
        color = _color(k)
        epochs = np.arange(1, n + 1)
        ax.plot(epochs, history[k, :n], color=color, lw=1.0, label=f"_pattern{k}")
        if n == 0:
            ax.plot([], [], color=color)
            continue
        converged = reasons[k] == "converged"
        text = f"pattern{k}: converged at epoch {n}" if converged else \
            f"pattern{k}: stopped at epoch {n} (max_epochs), not converged"
        ax.plot([n], [history[k, n - 1]], "o" if converged else "X", color=color, ms=7, mec=OKABE_ITO["black"],
                label=text)
    min_epochs = getattr(model, "min_epochs", None)
    if isinstance(min_epochs, numbers.Integral) and 0 < min_epochs < int(n_epochs.max(initial=0)):
        ax.axvline(min_epochs, color=_GREY, lw=0.8, ls=":", label=f"min_epochs = {min_epochs} (no stop before)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (a.u.)")
    ax.set_title("training loss (all-data filter; lower is better)", fontsize="medium")
    ax.legend(fontsize="x-small", loc="upper right")
    return fig


def plot_membership(result: DetectionResult, pattern: int = 0, ax: Axes | None = None) -> Figure:
    """One pattern's members: their lags against their membership evidence, and their filter rows.

    Top panel: every neuron that fired near the pattern's occurrences, at its lag (ms, relative
    to the pattern centre; the mean over members is 0) against its membership score (a z-score:
    how much more often it fired at that lag in the significant occurrences than its rate
    predicts). Members (coloured; they passed the binomial test at the false discovery rate
    ``alpha``) should stand clear above the non-members (grey), and their lags should tile the
    sequence. Bottom panel (when ``ax`` is not given): the filter rows of the members, ordered
    by lag (earliest on top), on the same lag axis, with each member's estimated lag marked; a
    clean diagonal means the filter and the membership test agree. The score is capped by the
    number of occurrences, so compare scores within a pattern, not across recordings.

    Parameters
    ----------
    result : DetectionResult
    pattern : int, default 0
        Which pattern.
    ax : matplotlib.axes.Axes, optional
        Draw only the top panel (lag against score) into this Axes. Default: a new figure with
        both panels.

    Returns
    -------
    matplotlib.figure.Figure
        Without ``ax``: two Axes (evidence, filter rows) and a colour bar. The first line of the
        evidence Axes holds the members, sorted by lag.

    Raises
    ------
    TypeError
        Wrong type for ``result``, ``pattern`` or ``ax``.
    ValueError
        ``pattern`` out of range.

    Examples
    --------
    ``result`` is :func:`convseq_neo.detect` run on a generated recording, as in that function's example.

    >>> fig = plot_membership(result, pattern=0)
    >>> evidence, rows = fig.axes[:2]
    >>> evidence.get_xlabel(), evidence.get_ylabel()
    ('lag from pattern centre (ms)', 'membership score (z)')
    >>> len(evidence.lines[0].get_xdata()) == result.patterns[0].size
    True
    """
    result = _check_result(result)
    k = _check_pattern(pattern, result.n_patterns)
    if ax is None:
        fig = Figure(figsize=(6.0, 6.5), layout="constrained")
        evidence, rows_ax = fig.subplots(2, 1, height_ratios=[1, 1.4])
    else:
        fig, evidence = _one_axes(ax, "ax", (6.0, 3.5))
        rows_ax = None
    color = _color(k)
    chosen = result.patterns[k]
    table = result.membership[result.membership["pattern"] == k]
    others = table[~table["member"].to_numpy(bool) & np.isfinite(table["lag"].to_numpy(float))]
    lag_ms = chosen.lags.rescale("s").magnitude * 1e3
    evidence.plot(lag_ms, chosen.scores, "o", color=color, ms=5, label=f"members ({chosen.size})")
    evidence.plot(others["lag"].to_numpy(float) * 1e3, others["score"].to_numpy(float), "o", mfc="none",
                  color=_GREY, ms=4, label=f"non-members ({len(others)})")
    evidence.axvline(0.0, color=_GREY, lw=0.6, ls=":")
    evidence.set_ylabel("membership score (z)")
    evidence.set_xlabel("lag from pattern centre (ms)")
    evidence.set_title(f"pattern{k}: {chosen.size} members, {chosen.n_occurrences} occurrences", fontsize="medium",
                       color=color)
    evidence.legend(fontsize="x-small", loc="best")
    if rows_ax is not None:
        offset = _offsets(result)[k]
        x_low, x_high = _lag_extent_ms(result, offset)
        if chosen.size:
            image = rows_ax.imshow(chosen.filter[chosen.neurons], aspect="auto", interpolation="nearest",
                                   extent=(x_low, x_high, chosen.size - 0.5, -0.5), cmap=_CMAP)
            rows_ax.plot(lag_ms, np.arange(chosen.size), "o", mfc="none", mec="white", ms=5, mew=1.0,
                         label="estimated lag")
            colorbar = fig.colorbar(image, ax=rows_ax, fraction=0.08)
            colorbar.set_label("filter weight (row sums to 1)", fontsize="x-small")
            rows_ax.legend(fontsize="x-small", loc="upper right")
            if chosen.size <= _MAX_TICK_LABELS:
                rows_ax.set_yticks(np.arange(chosen.size), labels=list(chosen.names), fontsize="x-small")
        else:
            rows_ax.text(0.5, 0.5, "no members at this alpha", ha="center", va="center", transform=rows_ax.transAxes)
        rows_ax.set_xlim(x_low, x_high)
        evidence.set_xlim(x_low, x_high)
        rows_ax.set_xlabel("lag from pattern centre (ms)")
        rows_ax.set_ylabel("member (sorted by lag)\nfilter row")
    return fig


def plot_scale_search(result, ax: Axes | None = None, figsize=None) -> Figure:
    """The evidence of an automatic search: significant occurrences of every fit tried, by window.

    One marker per (fit, pattern) of ``result.search``: x the filter window (log axis; for a
    search over ``warp`` factors the factor), y the number of significant held-out occurrences
    of that pattern, with a small offset per number of patterns in the fit so that the fits at
    one window stand side by side. Filled and labelled ``pattern{k}``: the patterns kept; open:
    the others (the reason is in ``result.search["note"]``). Each window's test level
    (``alpha`` per fit) is in the title.

    Parameters
    ----------
    result : MultiScaleResult
        From :func:`convseq_neo.detect` with ``width="auto"`` (or ``find`` with several warps).
    ax : matplotlib.axes.Axes, optional
        Draw into this Axes (default: a new figure).
    figsize : (float, float), optional

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    TypeError
        ``result`` without a ``search`` table, or a wrong ``ax``.

    Examples
    --------
    >>> import pandas as pd
    >>> from types import SimpleNamespace
    >>> search = pd.DataFrame({"width": [0.1, 0.3, 0.3], "warp": 1.0, "n_patterns": [1, 1, 2], "pattern": [0, 0, 1],
    ...                        "n_occurrences": [0, 19, 0], "kept": [-1, 0, -1], "alpha": 0.025})
    >>> fig = plot_scale_search(SimpleNamespace(search=search))
    >>> fig.axes[0].get_xlabel()
    'filter window (s)'
    """
    search = getattr(result, "search", None)
    if search is None or not hasattr(search, "columns"):
        raise TypeError(f"result must be a MultiScaleResult (with a search table), got {type(result).__name__}")
    figsize = _check_figsize(figsize) or (6.0, 3.6)
    fig, ax = _one_axes(ax, "ax", figsize)
    warped = "warp" in search and search["warp"].nunique() > 1
    x = search["warp"].to_numpy(float) if warped else search["width"].to_numpy(float)
    # fits with more patterns a little to the right, so those at one window do not hide each other
    x = x * (1.0 + 0.06 * (search["n_patterns"].to_numpy(float) - 1.0))
    y = search["n_occurrences"].to_numpy(float)
    kept = search["kept"].to_numpy(int) >= 0
    ax.plot(x[~kept], y[~kept], "o", mfc="none", color=_GREY, ms=6, label="not kept")
    for index in np.flatnonzero(kept):
        k = int(search["kept"].iloc[index])
        ax.plot(x[index], y[index], "o", color=_color(k), ms=8)
        ax.annotate(f"pattern{k}", (x[index], y[index]), textcoords="offset points", xytext=(6, 4),
                    fontsize="x-small", color=_color(k))
    ax.set_xscale("log")
    ax.set_xlabel("compression factor (warp)" if warped else "filter window (s)")
    ax.set_ylabel("significant occurrences\n(held out)")
    levels = sorted(set(np.round(search["alpha"].to_numpy(float), 6))) if "alpha" in search else []
    ax.set_title("scale search" + (f": each fit tested at alpha {', '.join(f'{a:g}' for a in levels)}"
                                   if levels else ""), fontsize="medium")
    if (~kept).any():
        ax.legend(fontsize="x-small", loc="best")
    return fig
