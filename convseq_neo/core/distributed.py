"""Data-parallel training over time chunks with :mod:`torch.distributed` (gloo on CPUs, NCCL on GPUs).

One recording too large (or too slow) for one device is cut into ``P`` contiguous chunks of
response times, one per rank. Rank ``r`` holds only the spikes its chunk's windows read: the bins
of its response times plus a halo of ``W`` bins (``W // 2 + 1`` before, ``W - 1 - W // 2`` after;
the one extra bin before gives the smoothness pair that crosses the chunk's left border). Every
epoch each rank computes its chunk's responses and partial sums, and the sums are all-reduced, so
that every rank computes the same global loss and takes the same Adam step as one process on the
whole raster would (up to float32 rounding). The training loop itself is
:func:`~convseq_neo.core.training.train_filters`, unchanged: :class:`ChunkedResponseObjective` is
an objective like :class:`~convseq_neo.core.training.ResponseObjective`.

The maths
---------
For a filter with training weights ``w_t`` (``train & ~explained``), penalty weights ``p_t``
(``train & explained``) and smoothness pair weights ``q_t = w_{t-1} w_t``, the loss of
:func:`~convseq_neo.core.objective.convseq_loss` is::

    m = S1 / n,   n = sum_t w_t,   S1 = sum_t w_t x_t
    loss = -C / n + tv * D / n_q + ew * E / n
    C = sum_t w_t (x_t - m)^2,   D = sum_t q_t (x_t - x_{t-1})^2,   E = sum_t p_t relu(x_t - m)^2

Every sum runs over time, so each is a sum over ranks of the rank's own times (a pair ``(t-1, t)``
belongs to the rank that owns ``t``). ``n`` and ``n_q`` do not depend on the filters: they are
all-reduced once. Each epoch makes two all-reduces in the forward pass, ``(S1, D)`` then ``(C, E)``
(``C`` and ``E`` need the global mean ``m``, so there is no one-pass form that stays exact in
float32), and two in the backward pass.

The gradient uses the two conjugate operators of tensor-parallel training:

- ``_SumOverRanks`` (forward: all-reduce sum; backward: identity) turns each rank's partial sums
  into the global statistics. The loss is the same function of the same statistics on every rank,
  so its gradient with respect to them is the same everywhere, and each rank passes it on to its
  own partial sum: rank ``r`` gets ``dL/dS * dS_r/dF``, its chunk's contribution.
- ``_Replicated`` (forward: identity; backward: all-reduce sum) marks a value that every rank holds
  and that enters a rank's local computation. Its true gradient is the sum of every rank's
  contribution, so the backward pass sums them. It is applied to the filters (so that every rank
  ends with the full gradient and takes the same Adam step) and to the mean ``m``.

Why the mean needs it: ``m`` is a global statistic that enters every rank's ``C`` and ``E``. With
an identity backward, rank ``r`` would get ``(dL/dC * dC_r/dm) * dS1_r/dF / n``, and the sum over
ranks of these products is not the product of the sums, ``dL/dm * dm/dF``: the cross terms between
ranks would be lost. (``dC/dm = 0`` at the weighted mean, but ``dE/dm`` is not zero when
``ew > 0``.) Summing ``dL/dm`` over ranks first gives every rank the full ``dL/dm``, and the rank
sums of ``dL/dm * dS1_r/dF / n`` then add up to the exact term.

Re-centring (``recenter_every > 0``) needs each filter's ten highest peaks over the whole
recording: every ``recenter_every`` epochs the masked responses are all-gathered (``B x L`` floats
on every rank, for that step only), every rank finds the same peaks with
:func:`~convseq_neo.core.significance.masked_peaks`, and the spike weights around the peaks are
summed over each rank's own bins and all-reduced, so the shifts are those of one process.
"""

from __future__ import annotations

import logging
import numbers
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.distributed as dist

from convseq_neo._validation import check_random_state, resolve_device
from convseq_neo.core.response import make_response, response_length
from convseq_neo.core.significance import masked_peaks
from convseq_neo.core.training import TrainingOutcome, TrainingSettings, train_filters
from convseq_neo.raster import SpikeRaster, count_bins, time_to_bin

logger = logging.getLogger(__name__)

__all__ = ["TimeChunk", "chunk_bounds", "chunk_from_spike_times", "ChunkedResponseObjective",
           "train_filters_distributed"]

#: Peaks per filter used by re-centring (as in :mod:`convseq_neo.core.training`).
RECENTER_PEAKS = 10
#: Spikes binned per block by :func:`chunk_from_spike_times` (bounds its temporaries).
_BLOCK = 1 << 24


# ---------------------------------------------------------------------------------------------
# chunks
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TimeChunk:
    """One rank's share of a recording: the response times ``[start, stop)`` it owns, and the bins it needs.

    Response times and bins share one axis: response ``t`` reads bins ``t - W // 2`` to
    ``t - W // 2 + W - 1`` (:mod:`convseq_neo.core.response`). The chunk computes responses from
    ``response_start = max(0, start - 1)`` (one time more for the smoothness pair across its left
    border) and therefore holds the bins ``[bin_start, bin_stop)``: its own times plus a halo of
    about ``W`` bins.

    Parameters
    ----------
    n_bins : int
        Bins of the whole recording (``T``).
    width : int
        Filter width ``W`` in bins.
    start, stop : int
        The response times the chunk owns, ``0 <= start < stop <= response_length(n_bins, width)``.

    Examples
    --------
    >>> chunk = TimeChunk(n_bins=3000, width=50, start=1500, stop=3001)
    >>> chunk.response_start, chunk.bin_start, chunk.bin_stop, chunk.n_chunk_bins
    (1499, 1474, 3000, 1526)
    >>> chunk.n_responses, chunk.owned_bins
    (1502, (1500, 3000))
    """

    n_bins: int
    width: int
    start: int
    stop: int

    def __post_init__(self) -> None:
        for name in ("n_bins", "width", "start", "stop"):
            value = getattr(self, name)
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
                raise TypeError(f"{name} must be an int, got {type(value).__name__}")
            object.__setattr__(self, name, int(value))
        if self.n_bins < 1 or self.width < 1:
            raise ValueError(f"n_bins and width must be at least 1, got {self.n_bins} and {self.width}")
        if not 0 <= self.start < self.stop <= self.length:
            raise ValueError(f"need 0 <= start < stop <= {self.length} (the response length), got start={self.start}, "
                             f"stop={self.stop}")

    @property
    def length(self) -> int:
        """Response length of the whole recording, ``response_length(n_bins, width)``."""
        return response_length(self.n_bins, self.width)

    @property
    def response_start(self) -> int:
        """First response time the chunk computes: ``max(0, start - 1)``."""
        return max(0, self.start - 1)

    @property
    def n_responses(self) -> int:
        """Response times the chunk computes (``stop - response_start``): the length of its masks."""
        return self.stop - self.response_start

    @property
    def bin_start(self) -> int:
        """First bin the chunk holds (bin 0 of its raster)."""
        return max(0, self.response_start - self.width // 2)

    @property
    def bin_stop(self) -> int:
        """One past the last bin the chunk holds."""
        return min(self.n_bins, self.stop + self.width - 1 - self.width // 2)

    @property
    def n_chunk_bins(self) -> int:
        """Bins of the chunk's raster, ``bin_stop - bin_start``."""
        return self.bin_stop - self.bin_start

    @property
    def owned_bins(self) -> tuple[int, int]:
        """The bins ``[start, min(stop, n_bins))``; over all chunks of a split they cover every bin once."""
        return self.start, min(self.stop, self.n_bins)

    @property
    def response_slice(self) -> slice:
        """Where the chunk's computed times lie in the response of an operator built on its raster."""
        offset = self.response_start - self.bin_start
        return slice(offset, offset + self.n_responses)

    @property
    def owned_slice(self) -> slice:
        """Where the owned times ``[start, stop)`` lie in the response of an operator built on its raster."""
        return slice(self.start - self.bin_start, self.stop - self.bin_start)

    def slice_raster(self, raster: SpikeRaster) -> SpikeRaster:
        """The chunk's bins of the whole ``raster`` (:meth:`SpikeRaster.time_slice`; nothing dense is built)."""
        if not isinstance(raster, SpikeRaster):
            raise TypeError(f"raster must be a SpikeRaster, got {type(raster).__name__}")
        if raster.n_bins != self.n_bins:
            raise ValueError(f"raster has {raster.n_bins} bins, but the chunk was cut from {self.n_bins}")
        return raster.time_slice(self.bin_start, self.bin_stop)

    def slice_mask(self, mask) -> np.ndarray:
        """The chunk's times of a whole-recording mask (``(..., L)`` -> ``(..., n_responses)``)."""
        mask = np.asarray(mask)
        if mask.shape[-1] != self.length:
            raise ValueError(f"mask must have {self.length} response times on its last axis, got shape {mask.shape}")
        return mask[..., self.response_start:self.stop]


def chunk_bounds(n_bins: int, width: int, world_size: int, rank: int) -> TimeChunk:
    """Rank ``rank``'s chunk of ``world_size`` contiguous, near-equal shares of the response times.

    Parameters
    ----------
    n_bins : int
        Bins of the whole recording.
    width : int
        Filter width in bins.
    world_size, rank : int
        Number of ranks and this rank (``0 <= rank < world_size``).

    Returns
    -------
    TimeChunk
        Owns the times ``[rank * L // world_size, (rank + 1) * L // world_size)`` of the
        ``L = response_length(n_bins, width)`` response times.

    Examples
    --------
    >>> [chunk_bounds(3000, 50, 2, rank).n_chunk_bins for rank in (0, 1)]
    [1524, 1526]
    >>> chunk_bounds(3000, 50, 2, 0).bin_stop   # 1500 own bins and 24 bins of the next chunk
    1524
    """
    for name, value in (("n_bins", n_bins), ("width", width), ("world_size", world_size), ("rank", rank)):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
            raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if n_bins < 1 or width < 1:
        raise ValueError(f"n_bins and width must be at least 1, got {n_bins} and {width}")
    if world_size < 1:
        raise ValueError(f"world_size must be at least 1, got {world_size}")
    if not 0 <= rank < world_size:
        raise ValueError(f"rank must lie in [0, {world_size}), got {rank}")
    length = response_length(int(n_bins), int(width))
    if length < world_size:
        raise ValueError(f"{length} response times cannot be split over world_size={world_size} ranks")
    return TimeChunk(int(n_bins), int(width), rank * length // world_size, (rank + 1) * length // world_size)


def chunk_from_spike_times(times_s, rows, n_neurons: int, bin_size_s: float, t_start_s: float, t_stop_s: float,
                           chunk: TimeChunk, unit_names=None) -> SpikeRaster:
    """Bin only the chunk's spikes, under the package's binning rule, without building the whole raster.

    A rank that reads spike times (from a file, say) keeps only those that fall in the chunk's
    bins. The result equals ``chunk.slice_raster(SpikeRaster.from_row_times(...))`` entry for
    entry: the bins are those of the whole window (:func:`~convseq_neo.raster.time_to_bin` from
    ``t_start_s``), so no spike changes bin at a chunk border.

    Parameters
    ----------
    times_s : array_like of float
        Spike times in seconds (any order; a memory-mapped array is read block by block).
    rows : array_like of int
        Row (neuron) of each spike.
    n_neurons : int
    bin_size_s, t_start_s, t_stop_s : float
        Bin width and the window of the *whole* recording, in seconds.
    chunk : TimeChunk
        Must have ``chunk.n_bins == count_bins(t_start_s, t_stop_s, bin_size_s)``.
    unit_names : sequence of str, optional

    Returns
    -------
    SpikeRaster
        ``chunk.n_chunk_bins`` bins; its bin 0 is the recording's bin ``chunk.bin_start``.

    Examples
    --------
    >>> import numpy as np
    >>> times, rows = np.array([0.001, 0.012, 0.052, 0.096]), np.array([0, 1, 1, 0])
    >>> chunk = chunk_bounds(10, 2, world_size=2, rank=1)
    >>> local = chunk_from_spike_times(times, rows, 2, 0.01, 0.0, 0.1, chunk)
    >>> chunk.bin_start, local.n_bins   # bins 3-9 of the recording
    (3, 7)
    >>> local.neuron_index.tolist(), (local.bin_index + chunk.bin_start).tolist()   # bins 0 and 1 left out
    ([0, 1], [9, 5])
    """
    if not isinstance(chunk, TimeChunk):
        raise TypeError(f"chunk must be a TimeChunk, got {type(chunk).__name__}")
    for name, value in (("bin_size_s", bin_size_s), ("t_start_s", t_start_s), ("t_stop_s", t_stop_s)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
            raise ValueError(f"{name} must be a finite number of seconds, got {value!r}")
    if bin_size_s <= 0 or t_stop_s <= t_start_s:
        raise ValueError(f"need bin_size_s > 0 and t_stop_s > t_start_s, got {bin_size_s}, {t_start_s}, {t_stop_s}")
    n_bins = count_bins(t_start_s, t_stop_s, bin_size_s)
    if n_bins != chunk.n_bins:
        raise ValueError(f"the window [{t_start_s}, {t_stop_s}) s has {n_bins} bins of {bin_size_s} s, but chunk was "
                         f"cut from {chunk.n_bins}")
    times_s = np.asarray(times_s).reshape(-1)
    rows = np.asarray(rows).reshape(-1)
    if times_s.size != rows.size:
        raise ValueError(f"times_s and rows must have the same length, got {times_s.size} and {rows.size}")
    if rows.size and not np.issubdtype(rows.dtype, np.integer):
        raise ValueError(f"rows must be integers, got dtype {rows.dtype}")
    kept_rows, kept_bins = [], []
    for first in range(0, times_s.size, _BLOCK):
        times = np.asarray(times_s[first:first + _BLOCK], dtype=float)
        block_rows = np.asarray(rows[first:first + _BLOCK], dtype=np.int64)
        if np.isnan(times).any():
            raise ValueError("times_s contains NaN")
        inside = (times >= t_start_s) & (times < t_stop_s)  # the rule of SpikeRaster.from_row_times
        bins = time_to_bin(times[inside], t_start_s, bin_size_s)
        block_rows = block_rows[inside]
        keep = (bins >= chunk.bin_start) & (bins < chunk.bin_stop)
        kept_rows.append(block_rows[keep])
        kept_bins.append(bins[keep] - chunk.bin_start)
    neurons = np.concatenate(kept_rows) if kept_rows else np.zeros(0, dtype=np.int64)
    bins = np.concatenate(kept_bins) if kept_bins else np.zeros(0, dtype=np.int64)
    t_start_chunk = float(t_start_s) + float(chunk.bin_start) * float(bin_size_s)
    return SpikeRaster(neurons, bins, np.ones(neurons.size, dtype=np.int64), int(n_neurons), chunk.n_chunk_bins,
                       bin_size_s=float(bin_size_s), t_start_s=t_start_chunk,
                       unit_names=None if unit_names is None else tuple(unit_names))


# ---------------------------------------------------------------------------------------------
# communication
# ---------------------------------------------------------------------------------------------
class _Comm:
    """The process group, or a single process when torch.distributed is not initialised."""

    def __init__(self, group=None) -> None:
        self.active = dist.is_available() and dist.is_initialized()
        if group is not None and not self.active:
            raise ValueError("group was given but torch.distributed is not initialised")
        self.group = group
        self.world_size = dist.get_world_size(group) if self.active else 1
        self.rank = dist.get_rank(group) if self.active else 0
        self.backend = str(dist.get_backend(group)) if self.active else "none"

    def _device_for(self, tensor: torch.Tensor) -> torch.device:
        # NCCL reduces device tensors; gloo (and anything else) gets CPU tensors
        return tensor.device if "nccl" in self.backend else torch.device("cpu")

    def all_reduce(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum of ``tensor`` over ranks (a new tensor on ``tensor``'s device)."""
        if self.world_size == 1:
            return tensor.clone()
        buffer = tensor.detach().to(self._device_for(tensor), copy=True).contiguous()
        dist.all_reduce(buffer, op=dist.ReduceOp.SUM, group=self.group)
        return buffer.to(tensor.device)

    def all_gather(self, tensor: torch.Tensor) -> list[torch.Tensor]:
        """Every rank's ``tensor`` (same shape on every rank), in rank order, on ``tensor``'s device."""
        if self.world_size == 1:
            return [tensor.clone()]
        buffer = tensor.detach().to(self._device_for(tensor), copy=True).contiguous()
        parts = [torch.empty_like(buffer) for _ in range(self.world_size)]
        dist.all_gather(parts, buffer, group=self.group)
        return [part.to(tensor.device) for part in parts]


class _SumOverRanks(torch.autograd.Function):
    """Forward: the sum over ranks (a global statistic every rank holds). Backward: identity."""

    @staticmethod
    def forward(ctx, tensor, comm):
        return comm.all_reduce(tensor)

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output, None


class _Replicated(torch.autograd.Function):
    """Forward: identity (a value every rank holds). Backward: the gradient summed over ranks."""

    @staticmethod
    def forward(ctx, tensor, comm):
        ctx.comm = comm
        return tensor.view_as(tensor)

    @staticmethod
    def backward(ctx, grad_output):
        return ctx.comm.all_reduce(grad_output), None


def _as_mask(mask, name: str, shape: tuple[int, int], device) -> torch.Tensor:
    if torch.is_tensor(mask):
        mask = mask.detach().cpu().numpy()
    mask = np.asarray(mask)
    if mask.dtype != bool:
        raise TypeError(f"{name} must be a boolean array, got dtype {mask.dtype}")
    if mask.shape != shape:
        raise ValueError(f"{name} must have shape {shape} (filters, chunk.n_responses), got {mask.shape}")
    return torch.as_tensor(mask, device=device)


# ---------------------------------------------------------------------------------------------
# the objective
# ---------------------------------------------------------------------------------------------
def _check_chunk_arguments(raster, chunk, settings) -> None:
    """TypeError/ValueError unless ``raster`` is a SpikeRaster holding exactly ``chunk``'s bins."""
    if not isinstance(raster, SpikeRaster):
        raise TypeError(f"raster must be a SpikeRaster, got {type(raster).__name__}")
    if not isinstance(chunk, TimeChunk):
        raise TypeError(f"chunk must be a TimeChunk, got {type(chunk).__name__}")
    if not isinstance(settings, TrainingSettings):
        raise TypeError(f"settings must be a TrainingSettings, got {type(settings).__name__}")
    if settings.objective != "variance":
        raise ValueError(f"settings.objective must be 'variance' for time-chunked training, got "
                         f"{settings.objective!r}: the normalized objective is not split over ranks")
    if raster.n_bins != chunk.n_chunk_bins:
        raise ValueError(f"raster has {raster.n_bins} bins, but the chunk holds {chunk.n_chunk_bins} (bins "
                         f"[{chunk.bin_start}, {chunk.bin_stop}) of the recording): pass the chunk's raster "
                         "(chunk.slice_raster or chunk_from_spike_times), not the whole recording")


class ChunkedResponseObjective:
    """The convSeq loss of the whole recording, computed by every rank from its own chunk.

    ``losses(filters)`` returns the global per-filter loss of
    :func:`~convseq_neo.core.objective.convseq_loss` (the same value on every rank) and its
    gradient, taken with :func:`torch.autograd.grad`, is the full gradient on every rank (see the
    module's notes for the maths). It has the interface of
    :class:`~convseq_neo.core.training.ResponseObjective`, so
    :func:`~convseq_neo.core.training.train_filters` trains it unchanged. Every rank must build it
    (it communicates) and then call the same methods in the same order.

    Parameters
    ----------
    op : response operator
        Built on the chunk's raster (:func:`~convseq_neo.core.response.make_response`).
    raster : SpikeRaster
        The chunk's raster (``chunk.n_chunk_bins`` bins): :meth:`TimeChunk.slice_raster` or
        :func:`chunk_from_spike_times`. Read for re-centring only.
    chunk : TimeChunk
        This rank's chunk. The chunks of the ranks, in rank order, must tile the response times.
    train_mask, explained_mask : array_like of bool, shape (B, chunk.n_responses)
        Each filter's training times and explained times at the chunk's times
        ``[chunk.response_start, chunk.stop)`` (:meth:`TimeChunk.slice_mask` of the whole masks).
    settings : TrainingSettings
    group : torch.distributed.ProcessGroup, optional
        Default: the default group; a single process when torch.distributed is not initialised.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from convseq_neo.core.response import make_response
    >>> from convseq_neo.core.training import ResponseObjective, TrainingSettings
    >>> raster = SpikeRaster.from_dense(np.random.default_rng(0).poisson(0.1, size=(8, 300)))
    >>> settings = TrainingSettings(tv_weight=1.0, explained_weight=1.0, lr=0.1, max_epochs=1, min_epochs=1,
    ...                             tol=1e-4, patience=1, recenter_every=0)
    >>> chunk = chunk_bounds(raster.n_bins, 10, world_size=1, rank=0)
    >>> train = np.ones((1, chunk.n_responses), dtype=bool)
    >>> explained = np.zeros_like(train)
    >>> explained[0, 100:120] = True
    >>> local = chunk.slice_raster(raster)
    >>> chunked = ChunkedResponseObjective(make_response(local, 10), local, chunk, train, explained, settings)
    >>> whole = ResponseObjective(make_response(raster, 10), raster, torch.as_tensor(train),
    ...                           torch.as_tensor(explained), settings)
    >>> filters = torch.softmax(torch.randn((1, 8, 10), generator=torch.Generator().manual_seed(0)), dim=-1)
    >>> bool(torch.allclose(chunked.losses(filters), whole.losses(filters)))
    True
    """

    def __init__(self, op, raster: SpikeRaster, chunk: TimeChunk, train_mask, explained_mask,
                 settings: TrainingSettings, group=None) -> None:
        _check_chunk_arguments(raster, chunk, settings)
        if op.n_bins != raster.n_bins or op.n_neurons != raster.n_neurons or op.width != chunk.width:
            raise ValueError(f"op was built for {op.n_neurons} neurons x {op.n_bins} bins at width {op.width}, "
                             f"not for this chunk ({raster.n_neurons} x {raster.n_bins}, width {chunk.width})")
        self.op = op
        self.chunk = chunk
        self.settings = settings
        self.n_neurons, self.width, self.device, self.dtype = op.n_neurons, op.width, op.device, op.dtype
        if np.ndim(train_mask) != 2 or np.shape(train_mask)[0] < 1:
            raise ValueError(f"train_mask must be 2-D (filters, chunk.n_responses) with at least one filter, got "
                             f"shape {np.shape(train_mask)}")
        n_filters = int(np.shape(train_mask)[0])
        shape = (n_filters, chunk.n_responses)
        train = _as_mask(train_mask, "train_mask", shape, self.device)
        explained = _as_mask(explained_mask, "explained_mask", shape, self.device)
        self.n_filters = n_filters
        self.comm = _Comm(group)
        self._sizes = self._check_split()

        own = chunk.start - chunk.response_start  # 1 when the chunk also computes the time before its own
        weights = (train & ~explained).to(self.dtype)
        self._weights_own = weights[:, own:]
        self._pair_weights = weights[:, 1:] * weights[:, :-1]  # pairs (t - 1, t) for the owned t
        self._penalty_weights = (train & explained)[:, own:].to(self.dtype)
        self._own = own
        self._masks_own = (train & ~explained)[:, own:]
        counts = torch.stack([self._weights_own.double().sum(dim=1), self._pair_weights.double().sum(dim=1)])
        counts = self.comm.all_reduce(counts)
        self._n_weights = counts[0].clamp_min(1.0).to(self.dtype)
        self._n_pairs = counts[1].clamp_min(1.0).to(self.dtype)
        self._responses = None
        if settings.recenter_every > 0:
            bins, neurons, spike_counts = raster.by_bin
            bins = bins + chunk.bin_start
            first, last = np.searchsorted(bins, chunk.owned_bins, side="left")
            self._spikes = (bins[first:last], neurons[first:last], spike_counts[first:last])
        logger.info("rank %d of %d: response times [%d, %d), bins [%d, %d), %d spikes entries", self.comm.rank,
                    self.comm.world_size, chunk.start, chunk.stop, chunk.bin_start, chunk.bin_stop, raster.nnz)

    def _check_split(self) -> list[int]:
        """Check that every rank has the same recording and filters and that the chunks tile the times."""
        chunk = self.chunk
        mine = torch.tensor([chunk.n_bins, chunk.width, chunk.start, chunk.stop, self.n_filters, self.n_neurons],
                            dtype=torch.int64, device=self.device)
        table = torch.stack(self.comm.all_gather(mine)).cpu().numpy()
        if np.any(table[:, [0, 1, 4, 5]] != table[0, [0, 1, 4, 5]]):
            raise ValueError("every rank must have the same n_bins, width, number of filters and neurons; got "
                             f"(n_bins, width, filters, neurons) per rank {table[:, [0, 1, 4, 5]].tolist()}")
        starts, stops = table[:, 2], table[:, 3]
        if starts[0] != 0 or stops[-1] != chunk.length or np.any(starts[1:] != stops[:-1]):
            raise ValueError(f"the ranks' chunks must tile the {chunk.length} response times in rank order; got "
                             f"[start, stop) per rank {table[:, 2:4].tolist()} (use chunk_bounds)")
        return (stops - starts).tolist()

    def losses(self, filters: torch.Tensor) -> torch.Tensor:
        """Global loss of each filter (differentiable; the same on every rank). Collective: call on every rank."""
        local_filters = _Replicated.apply(filters, self.comm)
        responses = self.op(local_filters)[:, self.chunk.response_slice]
        own = responses[:, self._own:]
        first = torch.stack([(self._weights_own * own).sum(dim=1),
                             (self._pair_weights * (responses[:, 1:] - responses[:, :-1]).square()).sum(dim=1)])
        first = _SumOverRanks.apply(first, self.comm)
        mean = _Replicated.apply(first[0] / self._n_weights, self.comm)
        centred = own - mean[:, None]
        second = [(self._weights_own * centred.square()).sum(dim=1)]
        if self.settings.explained_weight > 0:
            second.append((self._penalty_weights * torch.relu(centred).square()).sum(dim=1))
        second = _SumOverRanks.apply(torch.stack(second), self.comm)
        loss = -(second[0] / self._n_weights) + self.settings.tv_weight * (first[1] / self._n_pairs)
        if self.settings.explained_weight > 0:
            loss = loss + self.settings.explained_weight * (second[1] / self._n_weights)
        self._responses = own.detach()
        return loss

    def recenter_shifts(self, filters: torch.Tensor) -> np.ndarray:
        """Shifts for the filters of the latest :meth:`losses` call: one process's shifts. Collective.

        The masked responses are all-gathered (``B x L`` floats on every rank), so every rank
        finds the same ten highest peaks per filter; the spike weights around them are summed
        over each rank's own bins and all-reduced.
        """
        if self.settings.recenter_every <= 0:
            raise RuntimeError("this objective was built with recenter_every=0")
        masked = torch.where(self._masks_own, self._responses, torch.full_like(self._responses, -np.inf))
        longest = max(self._sizes)
        padded = torch.full((self.n_filters, longest), -np.inf, dtype=masked.dtype, device=masked.device)
        padded[:, :masked.shape[1]] = masked
        parts = self.comm.all_gather(padded)
        responses = torch.cat([part[:, :size] for part, size in zip(parts, self._sizes)], dim=1).cpu().numpy()
        filters = filters.detach().cpu().numpy()
        bins, neurons, counts = self._spikes
        half, width = self.width // 2, self.width
        sums = np.zeros((self.n_filters, 2))
        found = np.zeros(self.n_filters, dtype=bool)
        for b in range(self.n_filters):
            peaks, _ = masked_peaks(responses[b], np.isfinite(responses[b]), width)
            if peaks.size == 0:
                continue
            found[b] = True
            peaks = peaks[np.argsort(responses[b, peaks])[::-1][:RECENTER_PEAKS]]
            excess = np.clip(filters[b] - 1.0 / width, 0.0, None)
            for peak in peaks:
                lo = np.searchsorted(bins, peak - half, side="left")
                hi = np.searchsorted(bins, peak - half + width, side="left")
                positions = bins[lo:hi] - peak + half
                weights = excess[neurons[lo:hi], positions] * counts[lo:hi]
                sums[b, 0] += weights.sum()
                sums[b, 1] += (weights * positions).sum()
        sums = self.comm.all_reduce(torch.as_tensor(sums, device=self.device)).cpu().numpy()
        target = (width - 1) / 2.0
        shifts = np.zeros(self.n_filters, dtype=np.int64)
        for b in np.flatnonzero(found & (sums[:, 0] > 0)):
            shifts[b] = int(np.round(target - sums[b, 1] / sums[b, 0]))
        return shifts


# ---------------------------------------------------------------------------------------------
# the entry point
# ---------------------------------------------------------------------------------------------
def _shared_seed(random_state, comm: _Comm, device) -> int:
    """The initial logits' seed, drawn as :func:`~convseq_neo._validation.torch_generator` does; same on all ranks."""
    seed = int(check_random_state(random_state).integers(0, 2**63 - 1))
    if comm.world_size == 1:
        return seed
    seeds = torch.stack(comm.all_gather(torch.tensor([seed], dtype=torch.int64, device=device))).cpu().numpy().ravel()
    if random_state is None:
        return int(seeds[0])  # fresh entropy: rank 0's draw, shared
    if np.any(seeds != seeds[0]):
        raise ValueError(f"random_state must give the same seed on every rank (pass the same int); got seeds "
                         f"{seeds.tolist()}")
    return seed


def _check_replicated(logits: torch.Tensor, comm: _Comm) -> None:
    """Raise when the ranks' logits differ (the Adam steps must be identical everywhere)."""
    if comm.world_size == 1:
        return
    summary = torch.stack([logits.double().sum(), logits.double().square().sum()])
    table = torch.stack(comm.all_gather(summary)).cpu().numpy()
    if np.any(table != table[0]):
        raise RuntimeError(f"the ranks' filters diverged during training (sum, sum of squares per rank: "
                           f"{table.tolist()}); was every rank given the same settings and masks?")


def train_filters_distributed(raster: SpikeRaster, chunk: TimeChunk, train_mask, explained_mask,
                              settings: TrainingSettings, *, random_state=None, backend: str = "auto",
                              device="cpu", dtype: torch.dtype = torch.float32, initial_logits=None,
                              group=None) -> TrainingOutcome:
    """Train a batch of filters on one recording split over ranks: every rank calls this with its chunk.

    Builds the response operator on the chunk's raster and a :class:`ChunkedResponseObjective`,
    then runs :func:`~convseq_neo.core.training.train_filters`: the same Adam steps, stopping rule
    and re-centring as one process on the whole raster, with the loss and the gradient all-reduced
    every epoch. Every rank returns the same outcome.

    Parameters
    ----------
    raster : SpikeRaster
        This rank's chunk of the recording (``chunk.n_chunk_bins`` bins):
        :meth:`TimeChunk.slice_raster` or :func:`chunk_from_spike_times`.
    chunk : TimeChunk
        This rank's chunk (:func:`chunk_bounds` with the group's size and this rank).
    train_mask, explained_mask : array_like of bool, shape (B, chunk.n_responses)
        Each of the ``B`` filters' training times and explained times at the chunk's times.
    settings : TrainingSettings
        The same on every rank. Progress is shown by rank 0 only.
    random_state : int, numpy.random.Generator or None
        Seeds the initial logits, as :func:`convseq_neo._validation.torch_generator` does (so the
        same int gives one process's initial logits); it must give the same seed on every rank (a
        ``ValueError`` otherwise). ``None``: rank 0's fresh seed, shared.
    backend : {"auto", "events", "dense"}
        Response backend on each rank (:func:`~convseq_neo.core.response.make_response`).
    device : str or torch.device
        This rank's device, e.g. ``f"cuda:{local_rank}"`` with NCCL.
    dtype : torch.dtype
    initial_logits : Tensor, shape (B, N, W), optional
        Start from these logits (the same on every rank) instead of random ones.
    group : torch.distributed.ProcessGroup, optional
        Default: the default group; without an initialised process group this is one process.

    Returns
    -------
    TrainingOutcome
        The same on every rank.

    Raises
    ------
    TypeError, ValueError
        Bad arguments, or ranks that disagree on the recording, the filters or the seed.
    RuntimeError
        The ranks' filters diverged (they must not: all-reduced values are the same everywhere).

    Notes
    -----
    A script for ``torchrun --nproc-per-node 2 train_chunks.py`` (one rank per process; ``gloo``
    on CPUs, ``nccl`` and ``device=f"cuda:{local_rank}"`` on GPUs)::

        import os
        import numpy as np
        import torch.distributed as dist
        from convseq_neo.core.distributed import chunk_bounds, chunk_from_spike_times, train_filters_distributed
        from convseq_neo.core.objective import default_tv_weight
        from convseq_neo.core.training import TrainingSettings

        dist.init_process_group("gloo")
        rank, world = dist.get_rank(), dist.get_world_size()
        data = np.load("spikes.npz")                      # times_s, rows, n_neurons, t_stop_s
        n_bins = int(np.ceil(float(data["t_stop_s"]) / 0.005))
        chunk = chunk_bounds(n_bins, 200, world, rank)
        local = chunk_from_spike_times(data["times_s"], data["rows"], int(data["n_neurons"]), 0.005, 0.0,
                                       float(data["t_stop_s"]), chunk)
        train = np.ones((2, chunk.n_responses), dtype=bool)  # 2 restarts, every time
        settings = TrainingSettings(tv_weight=default_tv_weight(200), explained_weight=1.0, lr=0.1,
                                    max_epochs=2000, min_epochs=300, tol=1e-4, patience=100, recenter_every=25)
        outcome = train_filters_distributed(local, chunk, train, np.zeros_like(train), settings, random_state=0)
        if rank == 0:
            np.save("filters.npy", outcome.logits.softmax(-1).numpy())
        dist.destroy_process_group()

    Examples
    --------
    One process (no process group) gives :func:`~convseq_neo.core.training.train_filters` on the
    whole raster:

    >>> import numpy as np, torch
    >>> from convseq_neo._validation import check_random_state, torch_generator
    >>> from convseq_neo.core.response import make_response
    >>> from convseq_neo.core.training import ResponseObjective, TrainingSettings, train_filters
    >>> raster = SpikeRaster.from_dense(np.random.default_rng(0).poisson(0.05, size=(20, 1000)))
    >>> settings = TrainingSettings(tv_weight=2.0, explained_weight=0.0, lr=0.1, max_epochs=30, min_epochs=30,
    ...                             tol=1e-4, patience=10, recenter_every=10)
    >>> chunk = chunk_bounds(raster.n_bins, 20, world_size=1, rank=0)
    >>> train = np.ones((2, chunk.n_responses), dtype=bool)
    >>> outcome = train_filters_distributed(chunk.slice_raster(raster), chunk, train, np.zeros_like(train),
    ...                                     settings, random_state=0)
    >>> outcome.logits.shape, outcome.n_epochs
    (torch.Size([2, 20, 20]), 30)
    >>> whole = ResponseObjective(make_response(raster, 20), raster, torch.as_tensor(train),
    ...                           torch.zeros((2, chunk.n_responses), dtype=torch.bool), settings)
    >>> reference = train_filters(whole, 2, settings, torch_generator(check_random_state(0)))
    >>> bool(np.allclose(outcome.final_loss, reference.final_loss, rtol=1e-4))
    True

    With two processes, each calls it with its own chunk (see Notes):

    >>> chunk = chunk_bounds(raster.n_bins, 20, world_size=2, rank=dist.get_rank())  # doctest: +SKIP
    """
    _check_chunk_arguments(raster, chunk, settings)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating-point torch.dtype, got {dtype!r}")
    if np.ndim(train_mask) != 2:
        raise ValueError(f"train_mask must be 2-D (filters, chunk.n_responses), got shape {np.shape(train_mask)}")
    n_filters = int(np.shape(train_mask)[0])
    if n_filters < 1:
        raise ValueError("train_mask must have at least one filter (row)")
    _as_mask(train_mask, "train_mask", (n_filters, chunk.n_responses), "cpu")
    _as_mask(explained_mask, "explained_mask", (n_filters, chunk.n_responses), "cpu")
    shape = (n_filters, raster.n_neurons, chunk.width)
    if initial_logits is not None and not torch.is_tensor(initial_logits):
        raise TypeError(f"initial_logits must be a torch.Tensor, got {type(initial_logits).__name__}")
    if initial_logits is not None and tuple(initial_logits.shape) != shape:
        raise ValueError(f"initial_logits must have shape {shape}, got {tuple(initial_logits.shape)}")
    device = resolve_device(device)
    comm = _Comm(group)
    op = make_response(raster, chunk.width, backend=backend, device=device, dtype=dtype)
    objective = ChunkedResponseObjective(op, raster, chunk, train_mask, explained_mask, settings, group=group)
    generator = torch.Generator(device=device)
    generator.manual_seed(_shared_seed(random_state, comm, device))
    if comm.rank != 0 and settings.progress:
        settings = replace(settings, progress=False)
    outcome = train_filters(objective, n_filters, settings, generator, initial_logits)
    _check_replicated(outcome.logits, comm)
    return outcome
