"""Figures for detection results (matplotlib, without pyplot: safe on any backend, never shown)."""

from __future__ import annotations

import logging

import numpy as np
from matplotlib.figure import Figure

from convseq_neo._validation import check_time_quantity

logger = logging.getLogger(__name__)

__all__ = ["plot_detection", "sorted_rows"]

_COLORS = ("tab:red", "tab:blue", "tab:green", "tab:orange", "tab:purple", "tab:brown", "tab:pink", "tab:olive",
           "tab:cyan")


def sorted_rows(result) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Neuron order for display: each pattern's members by lag (patterns in turn), then everyone else.

    Returns the order (raster rows, top to bottom) and, per pattern, the ``[first, stop)`` display
    rows of the members placed for it (a neuron already shown for an earlier pattern is not repeated).
    """
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
    return max(start, low), min(stop, high)


def plot_detection(result, time_range=None, figsize=None) -> Figure:
    """Draw a :class:`~convseq_neo.detect.DetectionResult`.

    Left column, sharing the time axis: the spike raster with neurons sorted by the learned
    order (each pattern's members by lag, then the rest), every significant occurrence shaded
    from onset to offset over its pattern's members and its centre marked; below it, one panel
    per pattern with the filter's response, the significance threshold (where there is one) and
    the significant peaks. Right column: each pattern's filter as a heat map (neurons in the
    raster's order, lag from the window centre in s).

    Parameters
    ----------
    result : DetectionResult
    time_range : (pq.Quantity, pq.Quantity), optional
        Part of the recording to draw (default: all).
    figsize : (float, float), optional

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    See :meth:`convseq_neo.detect.DetectionResult.plot`.
    """
    start, stop = _time_range(result, time_range)
    n_patterns = result.n_patterns
    raster = result.raster
    bin_size = float(raster.bin_size_s)
    order, blocks = sorted_rows(result)
    position = np.empty(raster.n_neurons, dtype=np.int64)
    position[order] = np.arange(order.size)

    figsize = figsize or (12.0, 4.0 + 1.6 * n_patterns)
    fig = Figure(figsize=figsize, layout="constrained")
    grid = fig.add_gridspec(1 + n_patterns, 2, width_ratios=[4, 1], height_ratios=[3] + [1] * n_patterns)
    ax_raster = fig.add_subplot(grid[0, 0])
    response_axes = [fig.add_subplot(grid[1 + k, 0], sharex=ax_raster) for k in range(n_patterns)]
    filter_grid = grid[:, 1].subgridspec(n_patterns, 1)
    filter_axes = [fig.add_subplot(filter_grid[k, 0]) for k in range(n_patterns)]

    # raster
    spike_time = raster.bin_to_time(raster.bin_index + 0.5)
    keep = (spike_time >= start) & (spike_time < stop)
    ax_raster.scatter(spike_time[keep], position[raster.neuron_index[keep]], s=2, marker="|", c="k", linewidths=0.6,
                      rasterized=True)
    occ = result.occurrences
    occ = occ[(occ["offset"] >= start) & (occ["onset"] < stop)]
    for k, (first, last) in enumerate(blocks):
        color = _COLORS[k % len(_COLORS)]
        rows = occ[occ["pattern"] == k]
        low, height = (first - 0.5, last - first) if last > first else (-0.5, raster.n_neurons)
        if len(rows):
            spans = list(zip(rows["onset"].to_numpy(float), (rows["offset"] - rows["onset"]).to_numpy(float)))
            ax_raster.broken_barh(spans, (low, height), facecolors=color, alpha=0.25, edgecolor="none")
            ax_raster.plot(rows["center"], np.full(len(rows), low + height + 0.5), "v", color=color, ms=4,
                           label=f"pattern{k} ({result.patterns[k].n_occurrences})")
        if last > first:
            ax_raster.axhline(last - 0.5, color=color, lw=0.6, ls=":")
    ax_raster.set_ylim(raster.n_neurons - 0.5, -0.5)
    ax_raster.set_xlim(start, stop)
    ax_raster.set_ylabel("neuron (sorted)")
    ax_raster.set_title(f"{raster.n_neurons} neurons, {len(result.occurrences)} significant occurrences")
    if len(occ):
        ax_raster.legend(loc="upper right", fontsize="small")

    # responses
    length = result.responses.shape[1]
    response_time = raster.bin_to_time(np.arange(length) + 0.5)
    window = (response_time >= start) & (response_time < stop)
    offsets = np.asarray(getattr(result.model, "pattern_offsets_", np.zeros(n_patterns)), dtype=float)
    for k, ax in enumerate(response_axes):
        color = _COLORS[k % len(_COLORS)]
        ax.plot(response_time[window], result.responses[k][window], color=color, lw=0.7, label="response")
        if result.thresholds is not None:
            threshold = np.where(np.isfinite(result.thresholds[k]), result.thresholds[k], np.nan)
            ax.plot(response_time[window], threshold[window], color="k", lw=0.8, ls="--", label="threshold")
        rows = occ[occ["pattern"] == k]
        if len(rows):
            peak_time = rows["center"].to_numpy(float) - offsets[k] * bin_size
            ax.plot(peak_time, rows["peak"], "o", color=color, mfc="none", ms=4, label="significant peak")
        ax.set_ylabel(f"pattern{k}")
        ax.legend(loc="upper right", fontsize="x-small")
        if k < n_patterns - 1:
            ax.tick_params(labelbottom=False)
    (response_axes[-1] if response_axes else ax_raster).set_xlabel("time (s)")

    # filters
    width = result.model.filters_.shape[-1]
    extent = (-(width // 2) * bin_size, (width - width // 2) * bin_size, raster.n_neurons - 0.5, -0.5)
    for k, ax in enumerate(filter_axes):
        image = ax.imshow(result.patterns[k].filter[order], aspect="auto", interpolation="nearest", extent=extent,
                          cmap="viridis")
        ax.set_title(f"pattern{k} filter", fontsize="small")
        ax.set_ylabel("neuron (sorted)")
        fig.colorbar(image, ax=ax, fraction=0.08)
    if filter_axes:
        filter_axes[-1].set_xlabel("lag from window centre (s)")
    return fig
