"""The training loss from the raster's lag correlations: epochs whose cost does not grow with the recording.

The convSeq loss of a filter ``F`` (``N x W``) is a quadratic form in ``F``: the variance of its
response ``x = A F`` over the training times is ``F^T G F / n - (s . F / n)^2`` and its smoothness
``(D F)^T G (D F) / n``, where ``G = A^T A`` and ``D`` differences each row along the lags. ``G`` is
block-Toeplitz: its ``(n, j), (m, i)`` entry is the lag correlation

    C_nm(d) = sum_u X[n, u + d] X[m, u],     d = j - i,

so ``N^2 (2 W + 1)`` numbers hold it, and in the Fourier domain ``G F`` is one ``N x N`` complex
matrix product per frequency. An epoch then costs ``O(N^2 W)`` whatever the recording's length and
spike count, instead of ``O(nnz W)`` for the responses themselves (:mod:`~convseq_neo.core.response`).
The correlations are computed once from the spikes, block by block with FFTs (``O(N^2 T)`` flops in
batched matrix products, never ``N x T`` dense).

Which spikes each model sees
----------------------------
Each pair of spikes is counted at its *anchor* ``u`` (the bin of the second spike). A model trained
on the response times ``[a, b)`` reads bins ``[a - W // 2, b - W // 2 + W - 1)``; its correlations
are anchored in ``[a - W // 2 + W, b - W // 2 - 1)``, so every spike they read lies inside what its
responses would read (``W + 1`` anchors are given up at each run's end). A cross-fitting fold's
filter therefore never sees a spike its test windows read, as with the response-based loss.
Correlations over disjoint anchor sets add up, so every model's correlations are sums of those of a
few segments, each computed once.

The differences from the response-based loss are confined to ``W`` bins at the ends of each run of
training times (the variance is normalised by the number of anchors rather than of times).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import scipy.fft
import torch

from convseq_neo.core.objective import IndependentVariance
from convseq_neo.core.response import _csr, _CSRProduct, _spike_lag_entries
from convseq_neo.raster import SpikeRaster

logger = logging.getLogger(__name__)

__all__ = ["anchor_runs", "lag_correlations", "spectrum_size", "correlation_bytes", "coarse_factor",
           "CorrelationObjective"]

#: Blocks whose spectra are computed together while building the lag correlations.
_BLOCKS_PER_BATCH = 32


def spectrum_size(width: int) -> int:
    """FFT length of the training products: at least ``3 W + 2`` (no circular aliasing of ``G (D F)``)."""
    return int(scipy.fft.next_fast_len(3 * int(width) + 2, real=True))


def correlation_bytes(n_neurons: int, width: int, n_models: int) -> int:
    """Bytes held by the spectra of ``n_models`` models (complex64) plus the build's peak working set."""
    n_freq = spectrum_size(width) // 2 + 1
    held = 8 * n_models * n_freq * n_neurons**2
    lags = 4 * n_neurons**2 * (2 * width + 1)
    block = _block_size(width)
    build = 8 * (block // 2 + 1) * n_neurons**2 + 3 * 4 * n_neurons**2 * block
    return int(held + 2 * lags + build)


def _block_size(max_lag: int) -> int:
    """FFT length of the correlation blocks: a power of two at least ``4 (2 L + 1)``."""
    return int(max(256, 2 ** int(np.ceil(np.log2(4 * (2 * max_lag + 1))))))


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """``[start, stop)`` of every run of True in a boolean vector."""
    padded = np.concatenate([[False], np.asarray(mask, dtype=bool), [False]])
    change = np.flatnonzero(padded[1:] != padded[:-1])
    return [(int(a), int(b)) for a, b in zip(change[::2], change[1::2])]


def anchor_runs(mask: np.ndarray, width: int) -> list[tuple[int, int]]:
    """Anchor bins ``[start, stop)`` whose correlations read only spikes the masked response times read.

    A run ``[a, b)`` of response times reads bins ``[a - W // 2, b - W // 2 + W - 1)``; pairs anchored
    in ``[a - W // 2 + W, b - W // 2 - 1)`` at lags up to ``W`` read within it. Runs too short to hold
    an anchor are dropped.

    Examples
    --------
    >>> anchor_runs(np.r_[np.ones(100, bool), np.zeros(50, bool), np.ones(10, bool)], 10)
    [(5, 94)]
    """
    half = int(width) // 2
    runs = []
    for start, stop in _runs(mask):
        low, high = start - half + int(width), stop - half - 1
        if high > low:
            runs.append((low, high))
    return runs


def lag_correlations(raster: SpikeRaster, runs: list[tuple[int, int]], max_lag: int,
                     device: torch.device | str = "cpu") -> torch.Tensor:
    """``C[n, m, L + d] = sum_u X[n, u + d] X[m, u]`` over anchors ``u`` in ``runs``, ``|d| <= L``.

    Anchors are cut into blocks; each block's spikes and those within ``L`` bins around it are laid
    into an FFT frame, and the blocks' cross-spectra are summed by batched matrix products.

    Parameters
    ----------
    raster : SpikeRaster
    runs : list of (start, stop)
        Anchor bins (disjoint).
    max_lag : int
        ``L``.
    device : torch device

    Returns
    -------
    Tensor of float32, shape (N, N, 2 L + 1)

    Examples
    --------
    >>> raster = SpikeRaster([0, 1, 0, 1], [10, 12, 30, 32], [1, 1, 1, 1], 2, 50)
    >>> c = lag_correlations(raster, [(0, 50)], 3)
    >>> float(c[1, 0, 3 + 2]), float(c[0, 1, 3 - 2]), float(c[0, 0, 3])   # neuron 1 two bins after neuron 0
    (2.0, 2.0, 2.0)
    """
    n_neurons = raster.n_neurons
    max_lag = int(max_lag)
    frame = _block_size(max_lag)
    block = frame - 2 * max_lag
    bins, neurons, counts = raster.by_bin
    starts = [(a, min(a + block, b)) for a, b in runs for a in range(a, b, block)]
    n_freq = frame // 2 + 1
    spectra = torch.zeros((n_freq, n_neurons, n_neurons), dtype=torch.complex64, device=device)
    for first in range(0, len(starts), _BLOCKS_PER_BATCH):
        batch = starts[first:first + _BLOCKS_PER_BATCH]
        anchors = torch.zeros((len(batch), n_neurons, frame), dtype=torch.float32, device=device)
        around = torch.zeros_like(anchors)
        for index, (low, high) in enumerate(batch):
            lo, hi = np.searchsorted(bins, [low, high])
            anchors[index, neurons[lo:hi], bins[lo:hi] - low + max_lag] = torch.as_tensor(
                counts[lo:hi], dtype=torch.float32)
            lo, hi = np.searchsorted(bins, [low - max_lag, high + max_lag])
            around[index, neurons[lo:hi], bins[lo:hi] - low + max_lag] = torch.as_tensor(
                counts[lo:hi], dtype=torch.float32)
        anchor_hat = torch.fft.rfft(anchors, dim=-1).permute(2, 0, 1).conj()  # (F, blocks, N)
        around_hat = torch.fft.rfft(around, dim=-1).permute(2, 1, 0)  # (F, N, blocks)
        spectra += torch.bmm(around_hat, anchor_hat.resolve_conj())
        del anchors, around, anchor_hat, around_hat
    full = torch.fft.irfft(spectra.permute(1, 2, 0), n=frame, dim=-1)  # (N, N, frame): index d mod frame
    del spectra
    lags = torch.arange(-max_lag, max_lag + 1, device=full.device) % frame
    return full[:, :, lags].contiguous()


def _segments(model_runs: list[list[tuple[int, int]]]) -> list[tuple[list[tuple[int, int]], np.ndarray]]:
    """Split the models' anchor runs into pieces with one set of models each; group pieces by that set."""
    edges = sorted({edge for runs in model_runs for run in runs for edge in run})
    groups: dict[tuple[int, ...], list[tuple[int, int]]] = {}
    for low, high in zip(edges[:-1], edges[1:]):
        owners = tuple(model for model, runs in enumerate(model_runs)
                       if any(start <= low and high <= stop for start, stop in runs))
        if owners:
            groups.setdefault(owners, []).append((low, high))
    return [(pieces, np.asarray(owners)) for owners, pieces in groups.items()]


def _window_counts(raster: SpikeRaster, runs: list[tuple[int, int]], width: int) -> np.ndarray:
    """``s[n, j]``: neuron ``n``'s spikes in bins ``u - W // 2 + j`` summed over anchors ``u`` in ``runs``."""
    half = int(width) // 2
    keys = raster.neuron_index.astype(np.int64) * (raster.n_bins + 2 * width) + raster.bin_index
    order = np.argsort(keys, kind="stable")
    keys = keys[order]
    cumulative = np.concatenate([[0.0], np.cumsum(np.asarray(raster.counts, dtype=np.float64)[order])])
    neuron_base = np.arange(raster.n_neurons, dtype=np.int64)[:, None] * (raster.n_bins + 2 * width)
    lags = np.arange(width, dtype=np.int64)[None, :]
    out = np.zeros((raster.n_neurons, width))
    for low, high in runs:
        first = np.searchsorted(keys, neuron_base + low - half + lags)
        last = np.searchsorted(keys, neuron_base + high - half + lags)
        out += cumulative[last] - cumulative[first]
    return out


@dataclass
class _ModelStatistics:
    spectra: torch.Tensor  # (F, N, N) complex64: C_hat / n
    window_counts: torch.Tensor  # (N, W): s / n
    n_anchors: int


class CorrelationObjective:
    """The convSeq loss of every model's filters from lag correlations (see the module docstring).

    Parameters
    ----------
    raster : SpikeRaster
    width : int
    model_masks : ndarray of bool, shape (n_models, L)
        Times each model trains on, already without its explained times.
    tv_weight : float
    device : torch device
    penalty_masks : ndarray of bool, shape (n_models, L), optional
        Explained times at which a response above the mean is penalised (later patterns); these
        responses are computed from the spikes (a sparse product over those times only).
    explained_weight : float
    coarse_factor : int, default 1
        With ``c > 1``, also build ``self.coarse``: the same models at bins ``c`` times longer
        (filters ``ceil(W / c)`` bins wide), for the first stage of training
        (:func:`~convseq_neo.core.training.train_coarse_to_fine`).

    Examples
    --------
    >>> raster = SpikeRaster([0, 1, 0, 1], [10, 12, 30, 32], [1, 1, 1, 1], 2, 60)
    >>> objective = CorrelationObjective(raster, 6, np.ones((1, 61), dtype=bool), tv_weight=0.2)  # 61 response bins
    >>> objective.losses(torch.full((1, 2, 6), 1 / 6)).shape
    torch.Size([1])
    """

    def __init__(self, raster: SpikeRaster | None, width: int, model_masks: np.ndarray | None, tv_weight: float,
                 device: torch.device | str = "cpu", penalty_masks: np.ndarray | None = None,
                 explained_weight: float = 0.0, coarse_factor: int = 1, normalized: bool = False) -> None:
        self.width = int(width)
        self.device = torch.device(device)
        self.dtype = torch.float32
        self.size = spectrum_size(self.width)
        frequency = np.arange(self.size // 2 + 1)
        roughness = 2.0 - 2.0 * np.cos(2.0 * np.pi * frequency / self.size)
        self.tv_weight = float(tv_weight)
        self.loss_factor = torch.as_tensor(-1.0 + self.tv_weight * roughness, dtype=torch.float32, device=self.device)
        self.explained_weight = float(explained_weight)
        self.penalty = None
        self.coarse = None
        self.independent = None
        if raster is None:  # filled in by _coarsened
            return
        self.n_neurons = raster.n_neurons
        self.n_models = int(model_masks.shape[0])
        runs = [anchor_runs(mask, self.width) for mask in model_masks]
        coarse_factor = int(coarse_factor)
        coarse_width = -(-self.width // coarse_factor)
        max_lag = self.width if coarse_factor == 1 else max(self.width, coarse_factor * (coarse_width + 1))
        lags = self._lags(raster, runs, max_lag)
        anchors = [max(1, sum(stop - start for start, stop in model_runs)) for model_runs in runs]
        counts = [_window_counts(raster, model_runs, self.width) for model_runs in runs]
        if coarse_factor > 1:
            self.coarse = self._coarsened(lags, counts, anchors, coarse_factor, coarse_width, normalized)
        if normalized:
            own = torch.stack([torch.diagonal(model_lags, dim1=0, dim2=1).T for model_lags in lags])
            self.independent = _independent_variance(own, [count / anchor for count, anchor in zip(counts, anchors)],
                                                     anchors, self.width, self.device)
        self.models = [_ModelStatistics(self._spectra(lags[model], self.width, anchors[model]),
                                        torch.as_tensor(counts[model] / anchors[model], dtype=torch.float32,
                                                        device=self.device), anchors[model])
                       for model in range(self.n_models)]
        del lags
        if penalty_masks is not None and explained_weight > 0 and np.any(penalty_masks):
            self.penalty = _PenaltyRows(raster, self.width, penalty_masks, self.device)

    def _lags(self, raster: SpikeRaster, runs: list[list[tuple[int, int]]], max_lag: int) -> torch.Tensor:
        """Every model's lag correlations ``(n_models, N, N, 2 max_lag + 1)``, summed from shared segments."""
        lags = torch.zeros((self.n_models, self.n_neurons, self.n_neurons, 2 * max_lag + 1))
        for pieces, owners in _segments(runs):
            piece = lag_correlations(raster, pieces, max_lag, self.device).cpu()
            for model in owners:
                lags[model] += piece
            del piece
        return lags

    def _spectra(self, lags: torch.Tensor, width: int, n_anchors: int) -> torch.Tensor:
        """``(F, N, N)`` spectra of the lags ``|d| <= width`` (the middle of ``lags``), divided by ``n_anchors``."""
        max_lag = (lags.shape[-1] - 1) // 2
        size = spectrum_size(width)
        circular = torch.zeros((self.n_neurons, self.n_neurons, size))
        circular[:, :, torch.arange(-width, width + 1) % size] = lags[:, :, max_lag - width:max_lag + width + 1]
        return torch.fft.rfft(circular, dim=-1).permute(2, 0, 1).contiguous().to(self.device) / n_anchors

    def _coarsened(self, lags: torch.Tensor, counts: list[np.ndarray], anchors: list[int], factor: int,
                   width: int, normalized: bool = False) -> CorrelationObjective:
        """The same models with bins ``factor`` times longer, from the fine lag correlations.

        Coarse bins sum ``factor`` fine ones, so a coarse lag correlation is, averaged over the
        phase of the bins, ``sum_e (factor - |e|) C(factor D + e) / factor`` over
        ``|e| < factor`` (and the anchors are ``factor`` times fewer).
        """
        tv_weight = self.tv_weight * (width / self.width) ** 2
        coarse = CorrelationObjective(None, width, None, tv_weight, self.device)
        coarse.n_neurons, coarse.n_models = self.n_neurons, self.n_models
        max_lag = (lags.shape[-1] - 1) // 2
        offsets = np.arange(-(factor - 1), factor)
        weights = (factor - np.abs(offsets)) / factor
        models, own_lags, own_means, own_anchors = [], [], [], []
        for model in range(self.n_models):
            coarse_lags = torch.zeros((self.n_neurons, self.n_neurons, 2 * width + 1))
            for index, lag in enumerate(range(-width, width + 1)):
                fine = factor * lag + offsets
                valid = np.abs(fine) <= max_lag
                coarse_lags[:, :, index] = (lags[model][:, :, max_lag + fine[valid]]
                                            * torch.as_tensor(weights[valid], dtype=torch.float32)).sum(dim=-1)
            n_anchors = max(1, anchors[model] // factor)
            # a coarse bin holds ``factor`` fine bins and the anchors are ``factor`` times fewer
            window = np.stack([counts[model][:, j * factor:(j + 1) * factor].sum(axis=1) / factor
                               for j in range(width)], axis=1)
            models.append(_ModelStatistics(coarse._spectra(coarse_lags, width, n_anchors),
                                           torch.as_tensor(window / n_anchors, dtype=torch.float32,
                                                           device=self.device), n_anchors))
            if normalized:
                own_lags.append(torch.diagonal(coarse_lags, dim1=0, dim2=1).T)
                own_means.append(window / n_anchors)
                own_anchors.append(n_anchors)
        coarse.models = models
        if normalized:
            coarse.independent = _independent_variance(torch.stack(own_lags), own_means, own_anchors, width,
                                                       self.device)
        return coarse

    # -------------------------------------------------------------- products
    def _apply(self, filters: torch.Tensor, factor: torch.Tensor | None) -> torch.Tensor:
        """``(G / n) F`` (``factor=None``) or the loss's quadratic operator, for filters grouped by model."""
        n_batch = filters.shape[0]
        per_model = n_batch // self.n_models
        spectrum = torch.fft.rfft(filters, n=self.size, dim=-1)  # (B, N, F)
        if factor is not None:
            spectrum = spectrum * factor
        out = torch.empty_like(spectrum)
        for model, stats in enumerate(self.models):
            block = spectrum[model * per_model:(model + 1) * per_model].permute(2, 1, 0)  # (F, N, b)
            out[model * per_model:(model + 1) * per_model] = torch.bmm(stats.spectra, block).permute(2, 1, 0)
        return torch.fft.irfft(out, n=self.size, dim=-1)[..., :self.width]

    def _counts(self, n_batch: int) -> torch.Tensor:
        per_model = n_batch // self.n_models
        return torch.stack([stats.window_counts for stats in self.models]).repeat_interleave(per_model, dim=0)

    def losses(self, filters: torch.Tensor) -> torch.Tensor:
        """Loss of each filter (``(B, N, W)``, ``B`` a multiple of ``n_models``, grouped by model); differentiable."""
        losses = _QuadraticLoss.apply(filters, self)
        if self.penalty is not None:
            means = (filters * self._counts(filters.shape[0])).sum(dim=(1, 2))
            losses = losses + self.explained_weight * self.penalty(filters, means, self.n_models, self.models)
        if self.independent is not None:
            losses = self.independent.divide(losses, filters)
        return losses

    def reference_threshold(self, filters: torch.Tensor, n_sd: float = 5.0) -> float:
        """The random-filter threshold (mean of the means plus ``n_sd`` mean SDs) from model 0's statistics."""
        stats = self.models[0]
        with torch.no_grad():
            spectrum = torch.fft.rfft(filters, n=self.size, dim=-1).permute(2, 1, 0)
            product = torch.fft.irfft(torch.bmm(stats.spectra, spectrum).permute(2, 1, 0), n=self.size,
                                      dim=-1)[..., :self.width]
            second = (filters * product).sum(dim=(1, 2))
            mean = (filters * stats.window_counts).sum(dim=(1, 2))
            sd = (second - mean.square()).clamp_min(0).sqrt()
        return float(mean.mean() + n_sd * sd.mean())

    def recenter_shifts(self, filters: torch.Tensor) -> np.ndarray:
        """Whole-bin shift per filter that puts its co-firing weight's centre at the window centre.

        Each excess weight (above uniform) is weighted by its covariance with the other neurons'
        excess weights at their lags, which is large where members of a sequence meet.
        """
        width = self.width
        with torch.no_grad():
            excess = (filters - 1.0 / width).clamp_min(0)
            joint = self._apply(excess, None)
            counts = self._counts(filters.shape[0])
            joint = joint - counts * (counts * excess).sum(dim=(1, 2), keepdim=True)
            own = self._own(excess) - counts * (counts * excess).sum(dim=2, keepdim=True)
            weight = (excess * (joint - own)).clamp_min(0).sum(dim=1)  # (B, W)
            total = weight.sum(dim=1)
            centre = (weight * torch.arange(width, dtype=weight.dtype)).sum(dim=1) / total.clamp_min(1e-30)
            shifts = torch.round((width - 1) / 2.0 - centre)
            shifts = torch.where(total > 0, shifts, torch.zeros_like(shifts))
        return shifts.cpu().numpy().astype(np.int64)

    def _own(self, excess: torch.Tensor) -> torch.Tensor:
        """Each neuron's own part of ``(G / n) E``: its autocorrelation applied to its own row."""
        per_model = excess.shape[0] // self.n_models
        spectrum = torch.fft.rfft(excess, n=self.size, dim=-1)
        diagonal = torch.stack([torch.diagonal(stats.spectra, dim1=1, dim2=2).T for stats in self.models])
        product = spectrum * diagonal.repeat_interleave(per_model, dim=0)
        return torch.fft.irfft(product, n=self.size, dim=-1)[..., :self.width]


def _independent_variance(own: torch.Tensor, means: list[np.ndarray], anchors: list[int], width: int,
                          device) -> IndependentVariance:
    """:class:`IndependentVariance` from every model's same-neuron lag correlations ``own`` (``(M, N, 2 L + 1)``)."""
    max_lag = (own.shape[-1] - 1) // 2
    products = own[..., max_lag:max_lag + width] / torch.as_tensor(anchors, dtype=own.dtype)[:, None, None]
    return IndependentVariance(products.to(device), torch.as_tensor(np.stack(means), dtype=torch.float32,
                                                                    device=device), width)


class _QuadraticLoss(torch.autograd.Function):
    """``F . Q F + (s . F)^2`` per filter, with its gradient ``2 Q F + 2 (s . F) s`` (``Q`` symmetric)."""

    @staticmethod
    def forward(ctx, filters, objective):
        with torch.no_grad():
            product = objective._apply(filters, objective.loss_factor)
            counts = objective._counts(filters.shape[0])
            mean = (filters * counts).sum(dim=(1, 2))
            ctx.save_for_backward(product, counts, mean)
            return (filters * product).sum(dim=(1, 2)) + mean.square()

    @staticmethod
    def backward(ctx, grad_output):
        product, counts, mean = ctx.saved_tensors
        grad = 2.0 * product + 2.0 * mean[:, None, None] * counts
        return grad * grad_output[:, None, None], None


class _PenaltyRows:
    """Responses at the explained times only, as one sparse product, and the explaining-away penalty there."""

    def __init__(self, raster: SpikeRaster, width: int, penalty_masks: np.ndarray, device: torch.device) -> None:
        length = penalty_masks.shape[1]
        any_time = penalty_masks.any(axis=0)
        self.times = np.flatnonzero(any_time)
        position = np.full(length, -1, dtype=np.int64)
        position[self.times] = np.arange(self.times.size)
        rows, cols, vals = _spike_lag_entries(raster.neuron_index, raster.bin_index, raster.counts, width, length)
        keep = any_time[rows]
        rows, cols, vals = position[rows[keep]], cols[keep], vals[keep]
        shape = (self.times.size, raster.n_neurons * width)
        self.matrix = _csr(rows, cols, vals, shape, device, torch.float32, torch.int64)
        self.matrix_t = _csr(cols, rows, vals, shape[::-1], device, torch.float32, torch.int64)
        self.masks = torch.as_tensor(penalty_masks[:, self.times], device=device)

    def __call__(self, filters: torch.Tensor, means: torch.Tensor, n_models: int, models) -> torch.Tensor:
        n_batch = filters.shape[0]
        flat = filters.reshape(n_batch, -1).transpose(0, 1).contiguous()
        responses = _CSRProduct.apply(flat, self.matrix, self.matrix_t).transpose(0, 1)  # (B, times)
        masks = self.masks.repeat_interleave(n_batch // n_models, dim=0).to(responses.dtype)
        anchors = torch.tensor([stats.n_anchors for stats in models], dtype=responses.dtype,
                               device=responses.device).repeat_interleave(n_batch // n_models)
        return (masks * torch.relu(responses - means[:, None]).square()).sum(dim=1) / anchors


def coarse_factor(width: int) -> int:
    """Bins merged for the coarse stage of training: ``W // 20`` (coarse filters about 20 bins wide), 1 below 40."""
    return max(1, int(width) // 20)
