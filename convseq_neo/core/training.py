"""The optimisation loop: batched filters, Adam, re-centring of each pattern, and the stopping rule."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
from scipy.signal import find_peaks
from tqdm.auto import tqdm

from convseq_neo.core.objective import convseq_loss
from convseq_neo.raster import SpikeRaster

logger = logging.getLogger(__name__)

__all__ = ["TrainingSettings", "TrainingOutcome", "train_filters", "shift_rows"]


@dataclass(frozen=True)
class TrainingSettings:
    """Hyper-parameters of one training run (see :class:`convseq_neo.ConvSeq` for their meaning)."""

    tv_weight: float
    explained_weight: float
    lr: float
    max_epochs: int
    min_epochs: int
    tol: float
    patience: int
    recenter_every: int
    progress: bool = False
    description: str = "training"


@dataclass
class TrainingOutcome:
    """Learned logits, per-filter final loss and the loss history of a batch."""

    logits: torch.Tensor  # (B, N, W)
    final_loss: np.ndarray  # (B,)
    loss_history: np.ndarray  # (n_epochs, B)
    n_epochs: int
    stop_reason: str


def shift_rows(tensor: torch.Tensor, shifts: np.ndarray, fill: torch.Tensor | float) -> torch.Tensor:
    """Move every row of ``tensor[b]`` (``(B, N, W)``) ``shifts[b]`` bins later in the window.

    Positions vacated at the window's edge take ``fill`` (a scalar, or a ``(B, N, 1)`` tensor); what
    leaves the window is dropped, never wrapped around.
    """
    width = tensor.shape[-1]
    index = torch.arange(width, device=tensor.device)[None, :] - torch.as_tensor(
        shifts, device=tensor.device, dtype=torch.long)[:, None]  # (B, W): source position
    valid = (index >= 0) & (index < width)
    gathered = torch.gather(tensor, 2, index.clamp(0, width - 1)[:, None, :].expand_as(tensor))
    if not torch.is_tensor(fill):
        fill = torch.full_like(tensor[..., :1], float(fill))
    return torch.where(valid[:, None, :], gathered, fill.expand_as(tensor))


class _Recentring:
    """Keeps each pattern centred in its window, using where its weight meets the data at the top peaks."""

    def __init__(self, raster: SpikeRaster, width: int, n_peaks: int = 10) -> None:
        order = np.argsort(raster.bin_index, kind="stable")
        self.bins = raster.bin_index[order]
        self.neuron = raster.neuron_index[order]
        self.counts = np.asarray(raster.counts[order], dtype=float)
        self.width = width
        self.half = width // 2
        self.n_peaks = n_peaks

    def shifts(self, filters: np.ndarray, responses: np.ndarray, masks: np.ndarray) -> np.ndarray:
        """Whole-bin shift per filter that would put its pattern's weighted centre at the window centre."""
        target = (self.width - 1) / 2.0
        shifts = np.zeros(filters.shape[0], dtype=np.int64)
        for b in range(filters.shape[0]):
            masked = np.where(masks[b], responses[b], -np.inf)
            peaks, _ = find_peaks(np.nan_to_num(masked, neginf=np.min(responses[b]) - 1.0), distance=self.width)
            if peaks.size == 0:
                continue
            peaks = peaks[np.argsort(responses[b, peaks])[::-1][: self.n_peaks]]
            excess = np.clip(filters[b] - 1.0 / self.width, 0.0, None)
            weight_sum = 0.0
            position_sum = 0.0
            for peak in peaks:
                lo = np.searchsorted(self.bins, peak - self.half, side="left")
                hi = np.searchsorted(self.bins, peak - self.half + self.width, side="left")
                positions = self.bins[lo:hi] - peak + self.half
                weights = excess[self.neuron[lo:hi], positions] * self.counts[lo:hi]
                weight_sum += weights.sum()
                position_sum += (weights * positions).sum()
            if weight_sum > 0:
                shifts[b] = int(np.round(target - position_sum / weight_sum))
        return shifts


def train_filters(op, raster: SpikeRaster, train_mask: torch.Tensor, explained_mask: torch.Tensor,
                  settings: TrainingSettings, generator: torch.Generator,
                  initial_logits: torch.Tensor | None = None) -> TrainingOutcome:
    """Train a batch of independent filters on one response operator.

    Each filter ``b`` has its own training times ``train_mask[b]`` and explained times
    ``explained_mask[b]``; filters do not interact, so one pass trains several restarts and
    cross-fitting folds at once. Full-batch Adam on the softmax logits, from standard-normal
    logits or from ``initial_logits``. Every
    ``settings.recenter_every`` epochs each filter's pattern is moved back to the window centre
    (logits and Adam moments together). Training stops when, after ``min_epochs``, every filter's
    best loss has improved by less than ``tol`` (relative) over the last ``patience`` epochs, or at
    ``max_epochs``.
    """
    n_batch = train_mask.shape[0]
    shape = (n_batch, op.n_neurons, op.width)
    if initial_logits is None:
        logits = torch.randn(shape, generator=generator, device=op.device, dtype=op.dtype)
    else:
        logits = initial_logits.detach().clone().to(device=op.device, dtype=op.dtype)
    first_moment = torch.zeros_like(logits)
    second_moment = torch.zeros_like(logits)
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    recentring = _Recentring(raster, op.width) if settings.recenter_every > 0 else None
    # Preallocated: small per-epoch allocations between the large torch temporaries fragment the heap
    # (glibc's dynamic mmap threshold), which made the resident memory grow by megabytes per epoch.
    history = np.full((settings.max_epochs, n_batch), np.nan)
    best_history = np.full((settings.max_epochs, n_batch), np.inf)
    n_done = 0
    stop_reason = "max_epochs"
    bar = tqdm(total=settings.max_epochs, desc=settings.description, disable=not settings.progress, leave=False)
    step_count = 0
    for epoch in range(settings.max_epochs):
        logits.requires_grad_(True)
        filters = torch.softmax(logits, dim=-1)
        responses = op(filters)
        losses = convseq_loss(responses, train_mask, explained_mask, settings.tv_weight, settings.explained_weight)
        (grad,) = torch.autograd.grad(losses.sum(), logits)
        logits = logits.detach()
        step_count += 1
        with torch.no_grad():
            first_moment.mul_(beta1).add_(grad, alpha=1 - beta1)
            second_moment.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            corrected1 = first_moment / (1 - beta1**step_count)
            corrected2 = second_moment / (1 - beta2**step_count)
            logits -= settings.lr * corrected1 / (corrected2.sqrt() + eps)
        history[epoch] = losses.detach().cpu().numpy()
        np.minimum(best_history[epoch - 1] if epoch else best_history[0], history[epoch], out=best_history[epoch])
        n_done = epoch + 1
        bar.update(1)
        if recentring is not None and (epoch + 1) % settings.recenter_every == 0 and epoch + 1 < settings.max_epochs:
            shifts = recentring.shifts(filters.detach().cpu().numpy(), responses.detach().cpu().numpy(),
                                       train_mask.cpu().numpy() & ~explained_mask.cpu().numpy())
            if np.any(shifts != 0):
                with torch.no_grad():
                    row_fill = logits.median(dim=-1, keepdim=True).values
                    logits = shift_rows(logits, shifts, row_fill)
                    first_moment = shift_rows(first_moment, shifts, 0.0)
                    second_moment = shift_rows(second_moment, shifts, 0.0)
        if epoch + 1 >= max(settings.min_epochs, settings.patience + 1):
            best, then = best_history[epoch], best_history[epoch - settings.patience]
            relative = (then - best) / np.maximum(np.abs(best), 1e-12)
            if np.all(relative < settings.tol):
                stop_reason = "converged"
                break
    bar.close()
    with torch.no_grad():
        final = convseq_loss(op(torch.softmax(logits, dim=-1)), train_mask, explained_mask, settings.tv_weight,
                             settings.explained_weight).cpu().numpy().astype(float)
    logger.info("%s: %s after %d epochs", settings.description, stop_reason, n_done)
    return TrainingOutcome(logits.detach(), final, history[:n_done].copy(), n_done, stop_reason)
