"""The one boundary type: a sparse binned spike raster.

Every input (Neo spike trains, NWB units, arrays) becomes a :class:`SpikeRaster`; it is the only
object that knows how bins map to seconds. The torch core reads its (neuron, bin, count)
triplets and never sees a ``Quantity``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

logger = logging.getLogger(__name__)

__all__ = ["SpikeRaster"]


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
            if neuron_index.min() < 0 or neuron_index.max() >= self.n_neurons:
                raise ValueError(f"neuron_index must lie in [0, {self.n_neurons})")
            if bin_index.min() < 0 or bin_index.max() >= self.n_bins:
                raise ValueError(f"bin_index must lie in [0, {self.n_bins})")
        if self.bin_size_s is not None and not (np.isfinite(self.bin_size_s) and self.bin_size_s > 0):
            raise ValueError(f"bin_size_s must be a positive number of seconds, got {self.bin_size_s}")
        if self.unit_names is not None and len(self.unit_names) != self.n_neurons:
            raise ValueError(f"unit_names must have one name per neuron ({self.n_neurons}), got {len(self.unit_names)}")
        neuron_index, bin_index, counts = _canonical(neuron_index, bin_index, counts, int(self.n_bins))
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
    def from_spike_times(cls, times_s, unit_ids, bin_size_s: float, t_start_s: float, t_stop_s: float,
                         all_unit_ids: Sequence | None = None) -> SpikeRaster:
        """Bin flat spike-time and unit-id arrays (e.g. Kilosort output) into a raster.

        Bins are ``[t_start_s + i * bin_size_s, t_start_s + (i + 1) * bin_size_s)``; the number of
        bins is ``ceil((t_stop_s - t_start_s) / bin_size_s)`` (a partial last bin is kept). Spikes
        outside ``[t_start_s, t_stop_s)`` are left out (logged).

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
        """
        times_s = np.asarray(times_s, dtype=float).reshape(-1)
        unit_ids = np.asarray(unit_ids).reshape(-1)
        if times_s.size != unit_ids.size:
            raise ValueError(f"times_s and unit_ids must have the same length, got {times_s.size} and {unit_ids.size}")
        if np.any(np.isnan(times_s)):
            raise ValueError("times_s contains NaN")
        for name, value in (("bin_size_s", bin_size_s), ("t_start_s", t_start_s), ("t_stop_s", t_stop_s)):
            if not np.isfinite(value):
                raise ValueError(f"{name} must be finite, got {value}")
        if bin_size_s <= 0:
            raise ValueError(f"bin_size_s must be positive, got {bin_size_s}")
        if t_stop_s <= t_start_s:
            raise ValueError(f"t_stop_s ({t_stop_s}) must be greater than t_start_s ({t_start_s})")
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
        rows = order[position]
        n_bins = int(np.ceil((t_stop_s - t_start_s) / bin_size_s - 1e-9))
        inside = (times_s >= t_start_s) & (times_s < t_stop_s)
        if not np.all(inside):
            logger.info("left out %d of %d spikes outside [%g, %g) s", int((~inside).sum()), times_s.size,
                        t_start_s, t_stop_s)
        bins = np.floor((times_s[inside] - t_start_s) / bin_size_s).astype(np.int64)
        bins = np.clip(bins, 0, n_bins - 1)
        return cls(rows[inside], bins, np.ones(bins.size, dtype=np.int64), labels.size, n_bins,
                   bin_size_s=float(bin_size_s), t_start_s=float(t_start_s),
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

    def rates_per_bin(self) -> np.ndarray:
        """Mean spike count per bin of each neuron."""
        return np.bincount(self.neuron_index, weights=self.counts, minlength=self.n_neurons) / self.n_bins

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
        t_start = self.t_start_s + (start_bin * self.bin_size_s if self.bin_size_s else 0.0)
        return SpikeRaster(self.neuron_index[keep], self.bin_index[keep] - start_bin, self.counts[keep],
                           self.n_neurons, stop_bin - start_bin, bin_size_s=self.bin_size_s, t_start_s=t_start,
                           unit_names=self.unit_names)

    def __repr__(self) -> str:
        size = "" if self.bin_size_s is None else f", bin_size={self.bin_size_s * 1e3:g} ms"
        return (f"SpikeRaster({self.n_neurons} neurons x {self.n_bins} bins, {self.nnz} non-empty cells, "
                f"{self.n_spikes:g} spikes{size})")


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
