"""The one boundary type: a sparse binned spike raster, and the one binning rule.

Every input (Neo spike trains, NWB units, arrays) becomes a :class:`SpikeRaster`; it is the only
object that knows how bins map to seconds. The torch core reads its (neuron, bin, count)
triplets and never sees a ``Quantity``.

Binning rule
------------
Written once, here, and used by every entry point (:meth:`SpikeRaster.from_row_times`, which
:meth:`SpikeRaster.from_spike_times` and :mod:`convseq_neo.io.neo` call):

- bin ``i`` is ``[t_start + i * bin_size, t_start + (i + 1) * bin_size)``
  (:func:`time_to_bin`);
- a time within :data:`EDGE_TOLERANCE` of a bin below an edge counts as that edge (floating-point
  noise: ``0.3 s / 100 ms = 2.9999999999999996`` is bin 3), as in
  :class:`elephant.conversion.BinnedSpikeTrain`;
- the window ``[t_start, t_stop)`` has ``ceil((t_stop - t_start) / bin_size)`` bins, a partial
  last bin included (:func:`count_bins`); a ``t_stop`` within the tolerance of an edge ends there;
- spikes before ``t_start``, at or after ``t_stop``, or landing on the edge ``t_stop`` after the
  tolerance, are left out (logged).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import scipy.sparse as sp

logger = logging.getLogger(__name__)

__all__ = ["SpikeRaster", "EDGE_TOLERANCE", "MAX_COUNT", "count_bins", "time_to_bin"]

#: Fraction of a bin below an edge that still counts as that edge (floating-point noise), as the
#: default ``tolerance`` of :class:`elephant.conversion.BinnedSpikeTrain`.
EDGE_TOLERANCE = 1e-8
#: The largest spike count one (neuron, bin) cell may hold (int32's maximum, far above any real bin).
MAX_COUNT = 2**31 - 1


def time_to_bin(times_s, t_start_s: float, bin_size_s: float) -> np.ndarray:
    """The bin holding each time: ``floor((t - t_start_s) / bin_size_s)``, robust to float noise.

    A time within :data:`EDGE_TOLERANCE` of a bin below an edge is put in the bin that starts
    at that edge (the rule of :class:`elephant.conversion.BinnedSpikeTrain`). Times are not
    checked against any window: times before ``t_start_s`` give negative bins.

    Parameters
    ----------
    times_s : array_like of float
        Times in seconds (finite).
    t_start_s, bin_size_s : float
        Left edge of bin 0 and bin width, in seconds (``bin_size_s > 0``).

    Returns
    -------
    numpy.ndarray of int64
        One bin per time, same shape as ``times_s``.

    Examples
    --------
    >>> 0.3 / 0.1
    2.9999999999999996
    >>> time_to_bin([0.3, 0.7, 1.1, 0.35], 0.0, 0.1).tolist()
    [3, 7, 11, 3]
    >>> time_to_bin(0.015, 0.0, 0.005).tolist()
    3
    """
    position = (np.asarray(times_s, dtype=float) - float(t_start_s)) / float(bin_size_s)
    bins = np.floor(position)
    bins = np.where(position - bins >= 1.0 - EDGE_TOLERANCE, bins + 1.0, bins)
    return bins.astype(np.int64)


def count_bins(t_start_s: float, t_stop_s: float, bin_size_s: float) -> int:
    """Number of bins of the window ``[t_start_s, t_stop_s)``: ``ceil((t_stop_s - t_start_s) / bin_size_s)``.

    A partial last bin is kept; a ``t_stop_s`` within :data:`EDGE_TOLERANCE` of a bin of an edge
    ends the window at that edge. At least 1.

    Examples
    --------
    >>> count_bins(0.0, 1.1, 0.1), count_bins(0.0, 1.05, 0.1), count_bins(0.0, 0.015, 0.005)
    (11, 11, 3)
    """
    return max(1, int(np.ceil((float(t_stop_s) - float(t_start_s)) / float(bin_size_s) - EDGE_TOLERANCE)))


@dataclass(frozen=True, eq=False)
class SpikeRaster:
    """Sparse binned spike counts: one entry per non-empty (neuron, bin) cell.

    Entries are stored sorted by neuron, then bin, with no duplicate cells and no zero counts.

    Parameters
    ----------
    neuron_index, bin_index : numpy.ndarray of int
        Row (neuron) and column (time bin) of each non-empty cell.
    counts : numpy.ndarray
        Spike count of each cell (> 0).
    n_neurons, n_bins : int
        Shape of the dense raster this stands for.
    bin_size_s : float or None
        Bin width in seconds, when known.
    t_start_s : float
        Time of the left edge of bin 0 in seconds (0 when unknown).
    unit_names : tuple of str or None
        One name per neuron (row), when known.
    observed : numpy.ndarray of int, shape (M, 3), or None
        When only part of the window was observed (NWB ``obs_intervals``, pynapple time support):
        the observed bins as rows ``(neuron, start_bin, stop_bin)``, half-open, sorted by neuron
        and start, not overlapping within a neuron. A neuron with no row was never observed.
        ``None`` (the default) means every neuron was observed over every bin. Spikes must lie in
        observed bins. The significance test never moves a spike out of the stretch it was
        observed in (:mod:`convseq_neo.core.significance`).

    Examples
    --------
    >>> import numpy as np
    >>> raster = SpikeRaster.from_spike_times(
    ...     times_s=np.array([0.001, 0.012, 0.013, 0.031]), unit_ids=np.array([0, 1, 1, 0]),
    ...     bin_size_s=0.01, t_start_s=0.0, t_stop_s=0.04)
    >>> raster.shape, raster.nnz, int(raster.counts.sum())
    ((2, 4), 3, 4)
    >>> raster.to_dense()
    array([[1, 0, 0, 1],
           [0, 2, 0, 0]])
    """

    neuron_index: np.ndarray
    bin_index: np.ndarray
    counts: np.ndarray
    n_neurons: int
    n_bins: int
    bin_size_s: float | None = None
    t_start_s: float = 0.0
    unit_names: tuple[str, ...] | None = field(default=None)
    observed: np.ndarray | None = field(default=None)

    def __post_init__(self) -> None:
        neuron_index = np.asarray(self.neuron_index, dtype=np.int64).reshape(-1)
        bin_index = np.asarray(self.bin_index, dtype=np.int64).reshape(-1)
        counts = np.asarray(self.counts).reshape(-1)
        if not (neuron_index.size == bin_index.size == counts.size):
            raise ValueError("neuron_index, bin_index and counts must have the same length")
        if int(self.n_neurons) < 1 or int(self.n_bins) < 1:
            raise ValueError(
                f"the raster must have at least one neuron and one bin, got {self.n_neurons} x {self.n_bins}")
        if counts.size:
            if not np.issubdtype(counts.dtype, np.number) or np.issubdtype(counts.dtype, np.complexfloating):
                raise TypeError(f"counts must be real numbers, got dtype {counts.dtype}")
            if np.any(~np.isfinite(counts)):
                raise ValueError("counts must be finite (no NaN or inf)")
            if np.any(counts < 0):
                raise ValueError("counts must be non-negative")
            if np.issubdtype(counts.dtype, np.floating):
                fractional = counts[counts != np.floor(counts)]
                if fractional.size:
                    # membership tests count spikes (binomial against the rate): scaled or smoothed values
                    # would make them silently wrong
                    raise ValueError(f"counts must be whole numbers of spikes, got {fractional[0]:g}: pass the binned "
                                     "spike counts, not rates, weights or a rescaled raster")
            if counts.max() > MAX_COUNT:
                raise ValueError(f"counts must be at most {MAX_COUNT:,} spikes per bin, got {counts.max():g}: pass "
                                 "the binned spike counts, not a rescaled raster")
            if neuron_index.min() < 0 or neuron_index.max() >= self.n_neurons:
                raise ValueError(f"neuron_index must lie in [0, {self.n_neurons})")
            if bin_index.min() < 0 or bin_index.max() >= self.n_bins:
                raise ValueError(f"bin_index must lie in [0, {self.n_bins})")
        if self.bin_size_s is not None and not (np.isfinite(self.bin_size_s) and self.bin_size_s > 0):
            raise ValueError(f"bin_size_s must be a positive number of seconds, got {self.bin_size_s}")
        if self.unit_names is not None and len(self.unit_names) != self.n_neurons:
            raise ValueError(f"unit_names must have one name per neuron ({self.n_neurons}), got {len(self.unit_names)}")
        neuron_index, bin_index, counts = _canonical(neuron_index, bin_index, counts, int(self.n_bins))
        if self.observed is not None:
            observed = _check_observed(self.observed, int(self.n_neurons), int(self.n_bins))
            if observed is not None and neuron_index.size:
                inside = _in_observed(observed, neuron_index, bin_index, int(self.n_bins))
                if not inside.all():
                    bad = int(np.flatnonzero(~inside)[0])
                    raise ValueError(f"neuron {neuron_index[bad]} has spikes in bin {bin_index[bad]}, outside its "
                                     "observed intervals")
            object.__setattr__(self, "observed", observed)
        object.__setattr__(self, "neuron_index", neuron_index)
        object.__setattr__(self, "bin_index", bin_index)
        object.__setattr__(self, "counts", counts)
        object.__setattr__(self, "n_neurons", int(self.n_neurons))
        object.__setattr__(self, "n_bins", int(self.n_bins))
        object.__setattr__(self, "t_start_s", float(self.t_start_s))
        if self.unit_names is not None:
            object.__setattr__(self, "unit_names", tuple(str(name) for name in self.unit_names))

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_row_times(cls, times_s, rows, n_neurons: int, bin_size_s: float, t_start_s: float, t_stop_s: float,
                       unit_names: Sequence[str] | None = None, observed_s=None) -> SpikeRaster:
        """Bin flat spike times and their rows: the one binning kernel every entry point uses.

        Applies the module's binning rule (:func:`time_to_bin`, :func:`count_bins`): spike ``j``
        of row ``rows[j]`` goes to bin ``time_to_bin(times_s[j], t_start_s, bin_size_s)``;
        spikes outside ``[t_start_s, t_stop_s)`` or on the edge ``t_stop_s`` after the edge
        tolerance are left out (logged at INFO). Spikes go straight into sorted (neuron, bin,
        count) triplets: no dense ``n_neurons x n_bins`` array is built, so the cost grows with
        the number of spikes, not with the number of bins. The result agrees with
        :class:`elephant.conversion.BinnedSpikeTrain` on every bin of a window that ends on a bin
        edge (Elephant drops a partial last bin, which is kept here).

        Parameters
        ----------
        times_s : array_like of float
            Spike times in seconds (no NaN), in any order.
        rows : array_like of int
            Row (neuron) of each spike, in ``[0, n_neurons)``.
        n_neurons : int
            Number of rows, silent ones included.
        bin_size_s, t_start_s, t_stop_s : float
            Bin width and analysis window in seconds.
        unit_names : sequence of str, optional
            One name per row.
        observed_s : sequence, optional
            The times each row was observed: one entry per row, each ``None`` (the whole window) or
            an array of ``[start, stop)`` intervals in seconds, shape ``(k, 2)``. A bin counts as
            observed when an interval overlaps it. Spikes outside their row's intervals are left
            out (logged). Default: every row observed over the whole window.

        Returns
        -------
        SpikeRaster
            ``count_bins(t_start_s, t_stop_s, bin_size_s)`` bins starting at ``t_start_s``.

        Raises
        ------
        ValueError
            ``times_s`` and ``rows`` of different lengths, NaN times, a row outside
            ``[0, n_neurons)``, a non-finite window or bin size, ``bin_size_s <= 0`` or
            ``t_stop_s <= t_start_s``.

        Examples
        --------
        >>> import numpy as np
        >>> raster = SpikeRaster.from_row_times(np.array([0.3, 0.05, 0.7, 0.31, 1.0]), np.array([0, 1, 0, 0, 1]),
        ...                                     n_neurons=2, bin_size_s=0.1, t_start_s=0.0, t_stop_s=1.0)
        >>> raster.to_dense()   # 0.3 s is the left edge of bin 3 (0.3 / 0.1 = 2.9999999999999996); 1.0 s is t_stop
        array([[0, 0, 0, 2, 0, 0, 0, 1, 0, 0],
               [1, 0, 0, 0, 0, 0, 0, 0, 0, 0]])
        """
        times_s = np.asarray(times_s, dtype=float).reshape(-1)
        rows = np.asarray(rows).reshape(-1)
        if times_s.size != rows.size:
            raise ValueError(f"times_s and rows must have the same length, got {times_s.size} and {rows.size}")
        if rows.size and not np.issubdtype(rows.dtype, np.integer):
            raise ValueError(f"rows must be integers, got dtype {rows.dtype}")
        rows = rows.astype(np.int64, copy=False)
        _check_window(bin_size_s, t_start_s, t_stop_s)
        if np.isnan(times_s).any():
            raise ValueError("times_s contains NaN")
        n_neurons = int(n_neurons)
        if rows.size and (rows.min() < 0 or rows.max() >= n_neurons):
            raise ValueError(f"rows must lie in [0, {n_neurons})")
        bin_size_s, t_start_s, t_stop_s = float(bin_size_s), float(t_start_s), float(t_stop_s)
        n_bins = count_bins(t_start_s, t_stop_s, bin_size_s)
        n_spikes = times_s.size
        inside = (times_s >= t_start_s) & (times_s < t_stop_s)
        if not inside.all():
            times_s, rows = times_s[inside], rows[inside]
        bins = time_to_bin(times_s, t_start_s, bin_size_s)
        before_stop = bins < n_bins  # a spike a rounding error below an edge t_stop lands on t_stop
        if not before_stop.all():
            bins, rows = bins[before_stop], rows[before_stop]
        if bins.size < n_spikes:
            logger.info("left out %d of %d spikes outside the analysis window [%g, %g) s", n_spikes - bins.size,
                        n_spikes, t_start_s, t_stop_s)
        observed = None
        if observed_s is not None:
            observed = _observed_bins(observed_s, n_neurons, n_bins, bin_size_s, t_start_s)
        if observed is not None and bins.size:
            inside = _in_observed(observed, rows, bins, n_bins)
            if not inside.all():
                logger.info("left out %d spikes outside their unit's observed intervals", int((~inside).sum()))
                bins, rows = bins[inside], rows[inside]
        key = rows * n_bins + bins
        if key.size > 1 and np.any(key[1:] < key[:-1]):
            key = np.sort(key, kind="stable")
        if key.size:
            first = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
            counts = np.diff(np.r_[first, key.size]).astype(np.int64)
            key = key[first]
        else:
            counts = np.zeros(0, dtype=np.int64)
        return cls(key // n_bins, key % n_bins, counts, n_neurons, n_bins, bin_size_s=bin_size_s, t_start_s=t_start_s,
                   unit_names=None if unit_names is None else tuple(unit_names), observed=observed)

    @classmethod
    def from_spike_times(cls, times_s, unit_ids, bin_size_s: float, t_start_s: float, t_stop_s: float,
                         all_unit_ids: Sequence | None = None) -> SpikeRaster:
        """Bin flat spike-time and unit-id arrays (e.g. Kilosort output) into a raster.

        Bins follow the module's binning rule (see :meth:`from_row_times`, which does the
        binning): bin ``i`` is ``[t_start_s + i * bin_size_s, t_start_s + (i + 1) * bin_size_s)``
        up to floating-point noise at the edges, the number of bins is ``ceil((t_stop_s -
        t_start_s) / bin_size_s)`` (a partial last bin is kept), and spikes outside ``[t_start_s,
        t_stop_s)`` are left out (logged).

        Parameters
        ----------
        times_s : array_like of float
            Spike times in seconds.
        unit_ids : array_like
            Unit label of each spike (any hashable, sortable labels).
        bin_size_s, t_start_s, t_stop_s : float
            Bin width and analysis window in seconds.
        all_unit_ids : sequence, optional
            Every unit, including silent ones, in row order. Default: the sorted unique ``unit_ids``.

        Returns
        -------
        SpikeRaster
            One row per unit, named ``str(label)``.

        Examples
        --------
        >>> import numpy as np
        >>> raster = SpikeRaster.from_spike_times(np.array([0.3, 0.7, 1.1]), np.array(["b", "a", "b"]),
        ...                                       bin_size_s=0.1, t_start_s=0.0, t_stop_s=1.2)
        >>> raster.unit_names, raster.bin_index.tolist()
        (('a', 'b'), [7, 3, 11])
        """
        times_s = np.asarray(times_s, dtype=float).reshape(-1)
        unit_ids = np.asarray(unit_ids).reshape(-1)
        if times_s.size != unit_ids.size:
            raise ValueError(f"times_s and unit_ids must have the same length, got {times_s.size} and {unit_ids.size}")
        if np.any(np.isnan(times_s)):
            raise ValueError("times_s contains NaN")
        _check_window(bin_size_s, t_start_s, t_stop_s)
        if all_unit_ids is None:
            labels = np.unique(unit_ids)
        else:
            labels = np.asarray(list(all_unit_ids))
            if np.unique(labels).size != labels.size:
                raise ValueError("all_unit_ids must not repeat a unit")
        if labels.size == 0:
            raise ValueError("no units: give all_unit_ids or at least one spike")
        order = np.argsort(labels, kind="stable")
        position = np.searchsorted(labels[order], unit_ids)
        position = np.clip(position, 0, labels.size - 1)
        if unit_ids.size and np.any(labels[order][position] != unit_ids):
            raise ValueError("unit_ids contains units that are not in all_unit_ids")
        return cls.from_row_times(times_s, order[position], labels.size, bin_size_s, t_start_s, t_stop_s,
                                  unit_names=tuple(str(label) for label in labels))

    @classmethod
    def from_dense(cls, array, bin_size_s: float | None = None, t_start_s: float = 0.0,
                   unit_names: Sequence[str] | None = None) -> SpikeRaster:
        """Build from a dense ``n_neurons x n_bins`` array of non-negative counts."""
        array = np.asarray(array)
        if array.ndim != 2:
            raise ValueError(f"raster must be 2-D (n_neurons x n_bins), got shape {array.shape}")
        if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.complexfloating):
            raise TypeError(f"raster must hold real numbers, got dtype {array.dtype}")
        if np.issubdtype(array.dtype, np.floating) and np.any(np.isnan(array)):
            raise ValueError("raster contains NaN")
        if np.any(array < 0):
            raise ValueError("raster contains negative counts")
        rows, cols = np.nonzero(array)
        return cls(rows, cols, array[rows, cols], array.shape[0], array.shape[1], bin_size_s=bin_size_s,
                   t_start_s=t_start_s, unit_names=None if unit_names is None else tuple(unit_names))

    @classmethod
    def from_scipy(cls, matrix, bin_size_s: float | None = None, t_start_s: float = 0.0,
                   unit_names: Sequence[str] | None = None) -> SpikeRaster:
        """Build from a scipy sparse ``n_neurons x n_bins`` matrix of non-negative counts."""
        coo = sp.coo_matrix(matrix)
        coo.sum_duplicates()
        keep = coo.data != 0
        return cls(coo.row[keep], coo.col[keep], coo.data[keep], coo.shape[0], coo.shape[1], bin_size_s=bin_size_s,
                   t_start_s=t_start_s, unit_names=None if unit_names is None else tuple(unit_names))

    @classmethod
    def coerce(cls, raster, name: str = "raster") -> SpikeRaster:
        """Return ``raster`` as a SpikeRaster (dense array, scipy sparse matrix or SpikeRaster)."""
        if isinstance(raster, SpikeRaster):
            return raster
        if sp.issparse(raster):
            return cls.from_scipy(raster)
        if isinstance(raster, (np.ndarray, list, tuple)) or hasattr(raster, "__array__"):
            try:
                return cls.from_dense(np.asarray(raster))
            except (TypeError, ValueError) as err:
                raise type(err)(f"{name}: {err}") from err
        raise TypeError(
            f"{name} must be a SpikeRaster, a 2-D numpy array or a scipy sparse matrix, got {type(raster).__name__}"
        )

    # ------------------------------------------------------------------ views
    @property
    def shape(self) -> tuple[int, int]:
        """``(n_neurons, n_bins)``."""
        return (self.n_neurons, self.n_bins)

    @property
    def nnz(self) -> int:
        """Number of non-empty cells."""
        return int(self.counts.size)

    @property
    def n_spikes(self) -> float:
        """Total spike count."""
        return float(self.counts.sum())

    @property
    def density(self) -> float:
        """Fraction of non-empty cells."""
        return self.nnz / (self.n_neurons * self.n_bins)

    @property
    def duration_s(self) -> float | None:
        """``n_bins * bin_size_s``, when the bin size is known."""
        return None if self.bin_size_s is None else self.n_bins * self.bin_size_s

    @property
    def t_stop_s(self) -> float | None:
        """Right edge of the last bin in seconds (``bin_to_time(n_bins)``), when the bin size is known."""
        return None if self.bin_size_s is None else float(self.bin_to_time(self.n_bins))

    def rates_per_bin(self) -> np.ndarray:
        """Mean spike count per observed bin of each neuron (0 for a neuron never observed)."""
        counts = np.bincount(self.neuron_index, weights=self.counts, minlength=self.n_neurons)
        observed_bins = self.observed_bins_per_neuron()
        return np.divide(counts, observed_bins, out=np.zeros(self.n_neurons), where=observed_bins > 0)

    @property
    def observed_table(self) -> np.ndarray:
        """The observed bins as rows ``(neuron, start_bin, stop_bin)``, one row per neuron when all are observed.

        Examples
        --------
        >>> SpikeRaster([0], [1], [1], 2, 5).observed_table.tolist()
        [[0, 0, 5], [1, 0, 5]]
        """
        if self.observed is not None:
            return self.observed
        neurons = np.arange(self.n_neurons, dtype=np.int64)
        return np.stack([neurons, np.zeros_like(neurons), np.full_like(neurons, self.n_bins)], axis=1)

    def observed_bins_per_neuron(self) -> np.ndarray:
        """Number of observed bins of each neuron."""
        table = self.observed_table
        return np.bincount(table[:, 0], weights=table[:, 2] - table[:, 1], minlength=self.n_neurons)

    def observed_any(self) -> np.ndarray:
        """Boolean ``(n_bins,)``: the bins in which at least one neuron was observed."""
        if self.observed is None:
            return np.ones(self.n_bins, dtype=bool)
        change = np.zeros(self.n_bins + 1, dtype=np.int64)
        np.add.at(change, self.observed[:, 1], 1)
        np.add.at(change, self.observed[:, 2], -1)
        return np.cumsum(change[:-1]) > 0

    def to_scipy(self) -> sp.csr_matrix:
        """The raster as a scipy CSR matrix."""
        return sp.csr_matrix((self.counts, (self.neuron_index, self.bin_index)), shape=self.shape)

    def to_dense(self) -> np.ndarray:
        """The dense ``n_neurons x n_bins`` array (use only when it fits in memory)."""
        dense = np.zeros(self.shape, dtype=self.counts.dtype)
        dense[self.neuron_index, self.bin_index] = self.counts
        return dense

    def _seconds_per_bin(self) -> float:
        if self.bin_size_s is None:
            raise ValueError("this raster has no bin_size_s, so bins cannot be turned into seconds")
        return self.bin_size_s

    def bin_to_time(self, bins) -> np.ndarray:
        """Time in seconds of bin *edges*: edge ``i`` is the left edge of bin ``i``.

        Use it for window bounds and slices; for event positions (peaks, centres, spikes) use
        :meth:`position_to_time`.
        """
        return self.t_start_s + np.asarray(bins, dtype=float) * self._seconds_per_bin()

    def position_to_time(self, positions) -> np.ndarray:
        """Time in seconds of (possibly fractional) bin *positions*, such as peaks and centres.

        Position ``b`` is on the same axis as ``bin_index``: a spike in bin ``b`` sits at position
        ``b``. A spike at time ``t`` lands in bin ``floor((t - t_start) / bin_size)``, which is on
        average ``(t - t_start) / bin_size - 0.5``, so position ``b`` is the *middle* of bin ``b``:
        ``t_start + (b + 0.5) * bin_size``. This is the only place the half bin is added.

        Examples
        --------
        >>> raster = SpikeRaster([0], [3], [1], 1, 10, bin_size_s=0.1, t_start_s=1.0)
        >>> float(raster.position_to_time(3))
        1.35
        >>> round(float(raster.time_to_position(1.35)), 9)
        3.0
        """
        return self.t_start_s + (np.asarray(positions, dtype=float) + 0.5) * self._seconds_per_bin()

    def time_to_position(self, times_s) -> np.ndarray:
        """Inverse of :meth:`position_to_time`: seconds -> fractional bin positions."""
        return (np.asarray(times_s, dtype=float) - self.t_start_s) / self._seconds_per_bin() - 0.5

    def time_slice(self, start_bin: int, stop_bin: int) -> SpikeRaster:
        """The bins ``[start_bin, stop_bin)`` as a new raster whose bin 0 is ``start_bin``."""
        if not 0 <= start_bin < stop_bin <= self.n_bins:
            raise ValueError(f"need 0 <= start_bin < stop_bin <= {self.n_bins}, got {start_bin}, {stop_bin}")
        keep = (self.bin_index >= start_bin) & (self.bin_index < stop_bin)
        t_start = self.t_start_s if self.bin_size_s is None else float(self.bin_to_time(start_bin))
        observed = None
        if self.observed is not None:
            table = self.observed.copy()
            table[:, 1:] = np.clip(table[:, 1:], start_bin, stop_bin) - start_bin
            observed = table[table[:, 2] > table[:, 1]]
        return SpikeRaster(self.neuron_index[keep], self.bin_index[keep] - start_bin, self.counts[keep],
                           self.n_neurons, stop_bin - start_bin, bin_size_s=self.bin_size_s, t_start_s=t_start,
                           unit_names=self.unit_names, observed=observed)

    def reorder_rows(self, order) -> SpikeRaster:
        """The same raster with its rows permuted: row ``i`` of the result is row ``order[i]`` of this one.

        Examples
        --------
        >>> raster = SpikeRaster.from_dense([[1, 0], [0, 2]], bin_size_s=0.005)
        >>> raster.reorder_rows([1, 0]).to_dense().tolist()
        [[0, 2], [1, 0]]
        """
        order = np.asarray(order, dtype=np.int64)
        if sorted(order.tolist()) != list(range(self.n_neurons)):
            raise ValueError(f"order must be a permutation of the {self.n_neurons} rows, got {order.tolist()[:10]}")
        new_row = np.empty_like(order)
        new_row[order] = np.arange(order.size, dtype=order.dtype)
        observed = None
        if self.observed is not None:
            observed = self.observed.copy()
            observed[:, 0] = new_row[observed[:, 0]]
            observed = observed[np.lexsort((observed[:, 1], observed[:, 0]))]
        names = None if self.unit_names is None else tuple(self.unit_names[row] for row in order)
        return SpikeRaster(new_row[self.neuron_index], self.bin_index, self.counts, self.n_neurons, self.n_bins,
                           bin_size_s=self.bin_size_s, t_start_s=self.t_start_s, unit_names=names, observed=observed)

    def __repr__(self) -> str:
        size = "" if self.bin_size_s is None else f", bin_size={self.bin_size_s * 1e3:g} ms"
        return (f"SpikeRaster({self.n_neurons} neurons x {self.n_bins} bins, {self.nnz} non-empty cells, "
                f"{self.n_spikes:g} spikes{size})")

    @cached_property
    def by_bin(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The entries sorted by bin, then neuron: ``(bin_index, neuron_index, counts)``, counts as float64.

        The order in which the event-driven response and the window searches read spikes (a
        contiguous slice per time window, found with ``numpy.searchsorted`` on ``bin_index``).
        Computed on first access and cached on the raster; the arrays are shared, so do not modify them.

        Examples
        --------
        >>> raster = SpikeRaster([0, 0, 1], [2, 5, 1], [1, 2, 1], 2, 6)
        >>> bins, neurons, counts = raster.by_bin
        >>> bins.tolist(), neurons.tolist(), counts.tolist()
        ([1, 2, 5], [1, 0, 0], [1.0, 1.0, 2.0])
        >>> raster.by_bin is raster.by_bin
        True
        """
        # The stored order is (neuron, bin), so a stable sort by bin leaves ties in neuron order.
        order = np.argsort(self.bin_index, kind="stable")
        return self.bin_index[order], self.neuron_index[order], np.asarray(self.counts[order], dtype=np.float64)


def _check_window(bin_size_s, t_start_s, t_stop_s) -> None:
    """Finite window and bin size in seconds, ``bin_size_s > 0`` and ``t_stop_s > t_start_s``."""
    for name, value in (("bin_size_s", bin_size_s), ("t_start_s", t_start_s), ("t_stop_s", t_stop_s)):
        if not np.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value}")
    if bin_size_s <= 0:
        raise ValueError(f"bin_size_s must be positive, got {bin_size_s}")
    if t_stop_s <= t_start_s:
        raise ValueError(f"t_stop_s ({t_stop_s}) must be greater than t_start_s ({t_start_s})")


def _canonical(neuron_index: np.ndarray, bin_index: np.ndarray, counts: np.ndarray, n_bins: int):
    """Sort by (neuron, bin), merge duplicate cells and drop zeros."""
    if counts.size == 0:
        return neuron_index, bin_index, counts
    key = neuron_index * n_bins + bin_index
    if np.all(key[1:] > key[:-1]) and np.all(counts != 0):
        return neuron_index, bin_index, counts
    unique_key, inverse = np.unique(key, return_inverse=True)
    merged = np.zeros(unique_key.size, dtype=counts.dtype)
    np.add.at(merged, inverse, counts)
    keep = merged != 0
    unique_key = unique_key[keep]
    return unique_key // n_bins, unique_key % n_bins, merged[keep]


def _check_observed(observed, n_neurons: int, n_bins: int) -> np.ndarray | None:
    """Validate an ``observed`` table; ``None`` when it says every neuron was observed everywhere."""
    table = np.asarray(observed)
    if table.size and not np.issubdtype(table.dtype, np.integer):
        raise ValueError(f"observed must hold integer bins, got dtype {table.dtype}")
    table = table.astype(np.int64).reshape(-1, 3) if table.size else np.zeros((0, 3), dtype=np.int64)
    neuron, start, stop = table.T
    if table.size and (neuron.min() < 0 or neuron.max() >= n_neurons):
        raise ValueError(f"observed: neurons must lie in [0, {n_neurons})")
    if np.any(start < 0) or np.any(stop > n_bins) or np.any(stop <= start):
        raise ValueError(f"observed: intervals must satisfy 0 <= start < stop <= {n_bins}")
    key = neuron * (n_bins + 1) + start
    if np.any(np.diff(key) <= 0):
        raise ValueError("observed: rows must be sorted by neuron, then start, without repeats")
    same_neuron = neuron[1:] == neuron[:-1]
    if np.any(same_neuron & (start[1:] < stop[:-1])):
        raise ValueError("observed: the intervals of a neuron must not overlap")
    whole = (start == 0) & (stop == n_bins)
    if table.shape[0] == n_neurons and whole.all():
        return None
    return table


def _in_observed(observed: np.ndarray, neurons: np.ndarray, bins: np.ndarray, n_bins: int) -> np.ndarray:
    """Whether each (neuron, bin) lies in one of that neuron's observed intervals."""
    starts = observed[:, 0] * n_bins + observed[:, 1]
    stops = observed[:, 0] * n_bins + observed[:, 2]
    key = np.asarray(neurons, dtype=np.int64) * n_bins + np.asarray(bins, dtype=np.int64)
    which = np.searchsorted(starts, key, side="right") - 1
    valid = which >= 0
    inside = np.zeros(key.shape, dtype=bool)
    inside[valid] = key[valid] < stops[which[valid]]
    return inside


def _observed_bins(observed_s, n_neurons: int, n_bins: int, bin_size_s: float, t_start_s: float) -> np.ndarray | None:
    """Per-row intervals in seconds -> an ``observed`` table in bins (overlapping intervals merged)."""
    if len(observed_s) != n_neurons:
        raise ValueError(f"observed_s must have one entry per row ({n_neurons}), got {len(observed_s)}")
    rows = []
    for neuron, intervals in enumerate(observed_s):
        if intervals is None:
            rows.append(np.array([[neuron, 0, n_bins]], dtype=np.int64))
            continue
        intervals = np.asarray(intervals, dtype=float).reshape(-1, 2)
        if not np.isfinite(intervals).all() or np.any(intervals[:, 1] < intervals[:, 0]):
            raise ValueError(f"observed_s[{neuron}]: intervals must be finite [start, stop) pairs with stop >= start")
        start = np.clip(time_to_bin(intervals[:, 0], t_start_s, bin_size_s), 0, n_bins)
        stop = np.clip([count_bins(t_start_s, t, bin_size_s) if t > t_start_s else 0 for t in intervals[:, 1]],
                       0, n_bins)
        keep = stop > start
        start, stop = start[keep], np.asarray(stop)[keep]
        order = np.argsort(start, kind="stable")
        merged: list[list[int]] = []
        for a, b in zip(start[order], stop[order]):
            if merged and a <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], int(b))
            else:
                merged.append([int(a), int(b)])
        rows.extend(np.array([[neuron, a, b]], dtype=np.int64) for a, b in merged)
    table = np.concatenate(rows) if rows else np.zeros((0, 3), dtype=np.int64)
    return _check_observed(table, n_neurons, n_bins)
