"""The time scales an automatic :func:`~convseq_neo.detect` searches: one rule, from the recording alone.

A *scale* is a filter window (``width``) with the bin size tied to it. The grid is geometric,
``width_k = 0.1 s * 3 ** k``, each binned at ``width_k / 20`` (20 bins per window), and it is
bounded by the recording itself, never by what is looked for:

- **Time resolution.** No bin is finer than the data's own resolution ``r``: the bin size of a
  binned input, else the smallest gap between two distinct spike times of the population (a
  calcium-imaging raster turned into spike times at 50 ms frames has ``r = 50 ms``). Where
  ``width_k / 20 < r`` the bin is ``r`` and the window holds fewer bins; a window under
  :data:`MIN_BINS` bins is left out.
- **Rates.** A bin of the median neuron holds on average at most :data:`MAX_SPIKES_PER_BIN`
  spikes (``bin <= 0.5 / median rate``): coarser bins fill up with background and an order
  within them is lost.
- **Length.** A window is at most :data:`MAX_WIDTH_FRACTION` of the searched time (at least 50
  windows), so that a pattern can recur and the cross-fitted test has folds to hold out.
- At most :data:`MAX_SCALES` scales, the finest first.

Nothing here looks at sequences: the grid is a function of the spike times' resolution, the rates
and the length, so the same recording always gets the same grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Scale", "scale_grid", "time_resolution", "SMALLEST_WIDTH_S", "WIDTH_FACTOR", "BINS_PER_WIDTH",
           "MIN_BINS", "MAX_SPIKES_PER_BIN", "MAX_WIDTH_FRACTION", "MAX_SCALES"]

#: The finest window of the grid, in seconds (theta sequences and the fastest replay run over ~0.1 s).
SMALLEST_WIDTH_S = 0.1
#: Ratio between consecutive windows.
WIDTH_FACTOR = 3.0
#: Bins per window when the data's resolution allows it.
BINS_PER_WIDTH = 20
#: Fewest bins a window may hold.
MIN_BINS = 8
#: Largest mean count of the median neuron in one bin.
MAX_SPIKES_PER_BIN = 0.5
#: Largest window as a fraction of the searched time.
MAX_WIDTH_FRACTION = 1 / 50
#: Most scales searched.
MAX_SCALES = 5


@dataclass(frozen=True)
class Scale:
    """One searched time scale.

    Attributes
    ----------
    bin_size_s : float
        Bin size in seconds.
    width_bins : int
        Filter window in bins.
    """

    bin_size_s: float
    width_bins: int

    @property
    def width_s(self) -> float:
        """The window in seconds."""
        return self.bin_size_s * self.width_bins

    def __str__(self) -> str:
        return f"{self.width_s * 1e3:.4g} ms window in {self.bin_size_s * 1e3:.4g} ms bins"


def time_resolution(times_s: list) -> float:
    """The smallest gap between two distinct spike times of the population, in seconds.

    Parameters
    ----------
    times_s : list of numpy.ndarray
        Each neuron's spike times in seconds.

    Returns
    -------
    float
        The gap (``inf`` with fewer than two distinct times). Gaps under a nanosecond (float
        rounding of one time written twice) do not count.

    Examples
    --------
    >>> import numpy as np
    >>> round(time_resolution([np.array([0.05, 0.20]), np.array([0.10, 0.35])]), 6)
    0.05
    """
    pooled = np.unique(np.concatenate([np.asarray(t, dtype=float).ravel() for t in times_s] or [np.empty(0)]))
    gaps = np.diff(pooled)
    gaps = gaps[gaps > 1e-9]
    return float(gaps.min()) if gaps.size else float("inf")


def scale_grid(duration_s: float, median_rate_hz: float, resolution_s: float, *,
               bin_size_s: float | None = None) -> list[Scale]:
    """The scales an automatic search tries on a recording (the rule in this module's docstring).

    Parameters
    ----------
    duration_s : float
        Searched time in seconds (the sum of the intervals, when only some are searched).
    median_rate_hz : float
        Median firing rate over the neurons.
    resolution_s : float
        The data's time resolution (:func:`time_resolution`, or a binned input's bin size).
    bin_size_s : float, optional
        A bin size fixed by the caller: every window is binned at it (the windows still follow
        the grid, and ``resolution_s`` is not used).

    Returns
    -------
    list of Scale
        Finest first; empty when no window fits the bounds.

    Raises
    ------
    ValueError
        A non-positive duration, resolution or bin size.

    Examples
    --------
    A 10-minute recording at 3 Hz with spike times to the microsecond:

    >>> [str(s) for s in scale_grid(600.0, 3.0, 1e-6)]
    ['100 ms window in 5 ms bins', '300 ms window in 15 ms bins', '900 ms window in 45 ms bins', \
'2700 ms window in 135 ms bins']

    The CA1 imaging raster (15 minutes, 50 ms frames, 0.04 Hz):

    >>> [str(s) for s in scale_grid(906.85, 0.04, 0.05)]
    ['900 ms window in 50 ms bins', '2700 ms window in 135 ms bins', '8100 ms window in 405 ms bins']
    """
    for name, value in (("duration_s", duration_s), ("resolution_s", resolution_s)):
        if not value > 0:
            raise ValueError(f"{name} must be positive, got {value!r}")
    if bin_size_s is not None and not bin_size_s > 0:
        raise ValueError(f"bin_size must be positive, got {bin_size_s!r}")
    largest_bin = MAX_SPIKES_PER_BIN / median_rate_hz if median_rate_hz > 0 else float("inf")
    largest_width = duration_s * MAX_WIDTH_FRACTION
    scales: list[Scale] = []
    width = SMALLEST_WIDTH_S
    while width <= largest_width * (1 + 1e-9) and len(scales) < MAX_SCALES:
        if bin_size_s is not None:
            bin_size = float(bin_size_s)
        else:
            bin_size = max(width / BINS_PER_WIDTH, resolution_s)
        bins = int(round(width / bin_size))
        if bin_size > largest_bin * (1 + 1e-9):
            break
        if bins >= MIN_BINS:
            scales.append(Scale(bin_size_s=float(round(bin_size, 12)), width_bins=bins))
        width *= WIDTH_FACTOR
    return scales
