"""Filter responses to a binned raster, on spikes ("events") or on bins ("dense").

The response of filter ``k`` (``N x W``, rows on the simplex) to a raster ``X`` (``N x T``) is the
multichannel cross-correlation, padded by ``W // 2`` bins on each side so that a peak marks the
centre of the filter window::

    x_k[t] = sum_n sum_j F_k[n, j] * X[n, t - W // 2 + j],   t = 0 .. L - 1,  L = T + 2 (W // 2) - W + 1

(``L = T + 1`` for even ``W``, ``T`` for odd ``W``). Written over spikes ``(n, s, c)`` instead of
bins it is ``x_k[t] = sum_spikes c * F_k[n, s - t + W // 2]``, which costs ``nnz * W`` per filter
instead of ``N * W * T``. Three interchangeable operators compute it, each differentiable in
``F`` through torch autograd:

- :class:`ToeplitzResponse` ("events"): the raster's ``L x (N W)`` Toeplitz expansion as one sparse
  CSR matrix (``nnz * W`` entries), and its transpose for the gradient. Fastest when it fits.
- :class:`StreamingResponse` ("events", large inputs): one gather and one scatter of all spikes per
  lag; memory ``O(nnz + K L)``, never ``nnz * W``.
- :class:`DenseResponse` ("dense"): ``torch.nn.functional.conv1d`` over ``N`` input channels, the
  paper's compute pattern, for dense inputs and as a cross-check.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import torch

from convseq_neo.raster import SpikeRaster

logger = logging.getLogger(__name__)

__all__ = ["response_length", "make_response", "ToeplitzResponse", "StreamingResponse", "DenseResponse",
           "MAX_TOEPLITZ_ENTRIES", "MAX_DENSE_CELLS"]

#: Above this many ``nnz * W`` entries the "events" backend streams instead of building the Toeplitz matrix.
MAX_TOEPLITZ_ENTRIES = 30_000_000
#: "auto" never densifies a raster with more cells than this (about 0.5 GB in float32 per copy).
MAX_DENSE_CELLS = 120_000_000


def response_length(n_bins: int, width: int) -> int:
    """Length of a response: ``n_bins + 2 * (width // 2) - width + 1``."""
    return n_bins + 2 * (width // 2) - width + 1


class _ResponseBase:
    """Common interface: ``op(filters) -> responses`` with filters ``(K, N, W)`` and responses ``(K, L)``."""

    name = "base"

    def __init__(self, raster: SpikeRaster, width: int, device: torch.device, dtype: torch.dtype) -> None:
        self.n_neurons = raster.n_neurons
        self.n_bins = raster.n_bins
        self.width = int(width)
        self.length = response_length(raster.n_bins, self.width)
        self.device = torch.device(device)
        self.dtype = dtype
        self.n_passes = 0  # filters applied so far (one filter over the whole raster = 1)

    def __call__(self, filters: torch.Tensor) -> torch.Tensor:
        if filters.ndim != 3 or filters.shape[1:] != (self.n_neurons, self.width):
            raise ValueError(f"filters must have shape (K, {self.n_neurons}, {self.width}), got {tuple(filters.shape)}")
        self.n_passes += int(filters.shape[0])
        return self.forward(filters)

    def forward(self, filters: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


def _spike_lag_entries(neuron: np.ndarray, bins: np.ndarray, counts: np.ndarray, width: int, length: int):
    """Rows (response time), columns (n * W + j) and values of the Toeplitz expansion, valid entries only."""
    half = width // 2
    lags = np.arange(width, dtype=np.int64)
    rows = bins[:, None] + half - lags[None, :]
    cols = neuron[:, None] * width + lags[None, :]
    vals = np.broadcast_to(counts[:, None], rows.shape)
    valid = (rows >= 0) & (rows < length)
    return rows[valid], cols[valid], vals[valid]


class _CSRProduct(torch.autograd.Function):
    """``A @ f`` with a fixed sparse ``A`` and its pre-built transpose for the backward pass."""

    @staticmethod
    def forward(ctx, flat_filters, matrix, matrix_t):  # flat_filters: (N W, K)
        ctx.matrix_t = matrix_t
        return matrix @ flat_filters

    @staticmethod
    def backward(ctx, grad_output):
        return ctx.matrix_t @ grad_output.contiguous(), None, None


class ToeplitzResponse(_ResponseBase):
    """Event-driven response as one sparse (CSR) matrix product; ``nnz * W`` stored entries."""

    name = "events"

    def __init__(self, raster: SpikeRaster, width: int, device: torch.device, dtype: torch.dtype) -> None:
        super().__init__(raster, width, device, dtype)
        rows, cols, vals = _spike_lag_entries(raster.neuron_index, raster.bin_index, raster.counts, self.width,
                                              self.length)
        n_cols = self.n_neurons * self.width
        self.n_entries = int(rows.size)
        index_dtype = torch.int32 if max(self.length, n_cols, rows.size) < 2**31 - 1 else torch.int64
        self.matrix = _csr(rows, cols, vals, (self.length, n_cols), device, dtype, index_dtype)
        self.matrix_t = _csr(cols, rows, vals, (n_cols, self.length), device, dtype, index_dtype)

    def forward(self, filters: torch.Tensor) -> torch.Tensor:
        n_filters = filters.shape[0]
        flat = filters.reshape(n_filters, -1).transpose(0, 1).contiguous()
        return _CSRProduct.apply(flat, self.matrix, self.matrix_t).transpose(0, 1)


def _csr(rows, cols, vals, shape, device, dtype, index_dtype) -> torch.Tensor:
    order = np.lexsort((cols, rows))
    rows, cols, vals = rows[order], cols[order], vals[order]
    crow = np.zeros(shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=shape[0]), out=crow[1:])
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta", category=UserWarning)
        return torch.sparse_csr_tensor(
            torch.from_numpy(crow).to(index_dtype), torch.from_numpy(np.ascontiguousarray(cols)).to(index_dtype),
            torch.from_numpy(np.ascontiguousarray(vals, dtype=np.float64)).to(dtype), size=shape,
            check_invariants=False,
        ).to(device)


class _LagLoopProduct(torch.autograd.Function):
    """For each lag ``j``: gather ``F[:, n, j]`` at every spike and add it at ``t = s + W // 2 - j``."""

    @staticmethod
    def forward(ctx, filters, op):
        n_filters = filters.shape[0]
        out = filters.new_zeros((n_filters, op.length))
        by_lag = filters.permute(2, 0, 1)  # (W, K, N)
        for lag, (first, last) in enumerate(op.valid_ranges):
            if last > first:
                out.index_add_(1, op.bins[first:last] + (op.half - lag),
                               by_lag[lag][:, op.neuron[first:last]] * op.counts[first:last])
        ctx.op = op
        ctx.shape = filters.shape
        return out

    @staticmethod
    def backward(ctx, grad_output):
        op = ctx.op
        n_filters, n_neurons, width = ctx.shape
        grad = grad_output.new_zeros((width, n_filters, n_neurons))
        for lag, (first, last) in enumerate(op.valid_ranges):
            if last > first:
                grad[lag].index_add_(1, op.neuron[first:last],
                                     grad_output[:, op.bins[first:last] + (op.half - lag)] * op.counts[first:last])
        return grad.permute(1, 2, 0), None


class StreamingResponse(_ResponseBase):
    """Event-driven response that reads only spikes and filter rows; memory ``O(nnz + K L)``.

    Spikes are kept sorted by bin, so the spikes whose lag-``j`` contribution falls inside the
    response form one contiguous slice per lag; each epoch does ``W`` gathers and scatters of
    ``nnz`` elements. No ``nnz * W`` structure is ever built.
    """

    name = "events"

    def __init__(self, raster: SpikeRaster, width: int, device: torch.device, dtype: torch.dtype) -> None:
        super().__init__(raster, width, device, dtype)
        sorted_bins, sorted_neurons, sorted_counts = raster.by_bin
        self.half = self.width // 2
        self.neuron = torch.as_tensor(sorted_neurons, device=self.device)
        self.bins = torch.as_tensor(sorted_bins, device=self.device)
        self.counts = torch.as_tensor(sorted_counts, device=self.device).to(dtype)
        lags = np.arange(self.width)
        first = np.searchsorted(sorted_bins, lags - self.half, side="left")
        last = np.searchsorted(sorted_bins, self.length - self.half + lags, side="left")
        self.valid_ranges = list(zip(first.tolist(), last.tolist()))

    def forward(self, filters: torch.Tensor) -> torch.Tensor:
        return _LagLoopProduct.apply(filters, self)


class DenseResponse(_ResponseBase):
    """Dense response: ``conv1d`` of the ``N x T`` raster with ``N``-channel kernels (the paper's pattern)."""

    name = "dense"

    def __init__(self, raster: SpikeRaster, width: int, device: torch.device, dtype: torch.dtype) -> None:
        super().__init__(raster, width, device, dtype)
        dense = torch.zeros((1, self.n_neurons, self.n_bins), dtype=dtype, device=self.device)
        dense[0, torch.as_tensor(raster.neuron_index, device=self.device),
              torch.as_tensor(raster.bin_index, device=self.device)] = torch.as_tensor(
            np.asarray(raster.counts, dtype=np.float64), device=self.device).to(dtype)
        self.dense = dense

    def forward(self, filters: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.conv1d(self.dense, filters, padding=self.width // 2)[0]


def make_response(raster: SpikeRaster, width: int, *, backend: str = "auto", device: torch.device | str = "cpu",
                  dtype: torch.dtype = torch.float32) -> _ResponseBase:
    """Build the response operator for ``raster`` and filter ``width``.

    ``backend="auto"`` picks "events" when the sparse Toeplitz product fits (``nnz * W`` at most
    ``MAX_TOEPLITZ_ENTRIES``) on the CPU; otherwise (and on a GPU) "dense" when the raster is dense
    enough (more than 5 % of cells non-empty) and small enough (at most ``MAX_DENSE_CELLS`` cells)
    for the dense convolution to be cheaper, else "events"; it logs its choice. "events" uses the
    sparse Toeplitz product when ``nnz * W`` is at most ``MAX_TOEPLITZ_ENTRIES`` and the streaming
    kernel otherwise. (On a 2-core CPU, one thread, 12 filters forward and backward on 60 neurons x
    12 000 bins at 5.3 % density, ``W = 80``: 10 ms per epoch for the Toeplitz product, 106 ms for
    the dense convolution.)
    """
    if backend not in ("auto", "events", "dense"):
        raise ValueError(f"backend must be 'auto', 'events' or 'dense', got {backend!r}")
    cells = raster.n_neurons * raster.n_bins
    if backend == "auto":
        toeplitz_fits = raster.nnz * width <= MAX_TOEPLITZ_ENTRIES and torch.device(device).type == "cpu"
        dense_pays = raster.density > 0.05 and cells <= MAX_DENSE_CELLS
        backend = "dense" if (dense_pays and not toeplitz_fits) else "events"
        logger.info("backend='auto' chose %r (density %.4f, %d cells, nnz %d)", backend, raster.density, cells,
                    raster.nnz)
    if backend == "dense":
        return DenseResponse(raster, width, device, dtype)
    if raster.nnz * width <= MAX_TOEPLITZ_ENTRIES:
        return ToeplitzResponse(raster, width, device, dtype)
    logger.info("nnz * W = %d exceeds %d: streaming the event-driven response", raster.nnz * width,
                MAX_TOEPLITZ_ENTRIES)
    return StreamingResponse(raster, width, device, dtype)
