"""Training: batched filters, Adam, re-centring of each pattern, the stopping rule, and patterns one after another."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import numpy as np
import torch
from tqdm.auto import tqdm

from convseq_neo.core.objective import convseq_loss
from convseq_neo.core.significance import masked_peaks
from convseq_neo.core.splitting import split_occurrences
from convseq_neo.raster import SpikeRaster

logger = logging.getLogger(__name__)

__all__ = ["TrainingSettings", "TrainingOutcome", "TrainedPatterns", "ResponseObjective", "make_objective",
           "train_coarse_to_fine", "train_filters", "train_patterns", "shift_rows", "explained_times", "split_times"]


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
        self.bins, self.neuron, self.counts = raster.by_bin
        self.width = width
        self.half = width // 2
        self.n_peaks = n_peaks

    def shifts(self, filters: np.ndarray, responses: np.ndarray, masks: np.ndarray) -> np.ndarray:
        """Whole-bin shift per filter that would put its pattern's weighted centre at the window centre."""
        target = (self.width - 1) / 2.0
        shifts = np.zeros(filters.shape[0], dtype=np.int64)
        for b in range(filters.shape[0]):
            peaks, _ = masked_peaks(responses[b], masks[b], self.width)
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


class ResponseObjective:
    """The convSeq loss computed from the filters' responses to the raster (every epoch reads every spike).

    Parameters
    ----------
    op : response operator
        From :func:`~convseq_neo.core.response.make_response`.
    raster : SpikeRaster
    train_mask, explained_mask : Tensor of bool, shape (B, L)
        Each filter's training times and the times already explained by earlier patterns.
    settings : TrainingSettings
    """

    def __init__(self, op, raster: SpikeRaster, train_mask: torch.Tensor, explained_mask: torch.Tensor,
                 settings: TrainingSettings) -> None:
        self.op = op
        self.n_neurons, self.width, self.device, self.dtype = op.n_neurons, op.width, op.device, op.dtype
        self.train_mask = train_mask
        self.explained_mask = explained_mask
        self.settings = settings
        self._recentring = _Recentring(raster, op.width) if settings.recenter_every > 0 else None
        self._responses = None

    def losses(self, filters: torch.Tensor) -> torch.Tensor:
        """Loss of each filter (differentiable); keeps the responses for :meth:`recenter_shifts`."""
        responses = self.op(filters)
        self._responses = responses
        return convseq_loss(responses, self.train_mask, self.explained_mask, self.settings.tv_weight,
                            self.settings.explained_weight)

    def recenter_shifts(self, filters: torch.Tensor) -> np.ndarray:
        """Shifts for the filters of the latest :meth:`losses` call, from where they meet the data at top peaks."""
        return self._recentring.shifts(filters.detach().cpu().numpy(), self._responses.detach().cpu().numpy(),
                                       self.train_mask.cpu().numpy() & ~self.explained_mask.cpu().numpy())


def train_filters(objective, n_batch: int, settings: TrainingSettings, generator: torch.Generator,
                  initial_logits: torch.Tensor | None = None) -> TrainingOutcome:
    """Train a batch of independent filters on one objective.

    Each filter ``b`` has its own training times and explained times (held by ``objective``: a
    :class:`ResponseObjective` or a :class:`~convseq_neo.core.correlations.CorrelationObjective`);
    filters do not interact, so one pass trains several restarts and cross-fitting folds at once.
    Full-batch Adam on the softmax logits, from standard-normal logits or from ``initial_logits``.
    Every ``settings.recenter_every`` epochs each filter's pattern is moved back to the window
    centre (logits and Adam moments together). Training stops when, after ``min_epochs``, every
    filter's best loss has improved by less than ``tol`` (relative) over the last ``patience``
    epochs, or at ``max_epochs``.
    """
    shape = (n_batch, objective.n_neurons, objective.width)
    if initial_logits is None:
        logits = torch.randn(shape, generator=generator, device=objective.device, dtype=objective.dtype)
    else:
        logits = initial_logits.detach().clone().to(device=objective.device, dtype=objective.dtype)
    first_moment = torch.zeros_like(logits)
    second_moment = torch.zeros_like(logits)
    beta1, beta2, eps = 0.9, 0.999, 1e-8
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
        losses = objective.losses(filters)
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
        if (settings.recenter_every > 0 and (epoch + 1) % settings.recenter_every == 0
                and epoch + 1 < settings.max_epochs):
            shifts = objective.recenter_shifts(filters.detach())
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
        final = objective.losses(torch.softmax(logits, dim=-1)).cpu().numpy().astype(float)
    logger.info("%s: %s after %d epochs", settings.description, stop_reason, n_done)
    return TrainingOutcome(logits.detach(), final, history[:n_done].copy(), n_done, stop_reason)


@dataclass(frozen=True)
class TrainedPatterns:
    """The filters of every model, learned one pattern after another (see :func:`train_patterns`).

    Attributes
    ----------
    filters : ndarray of float32, shape (n_models, K, N, W)
        Model 0 is fit on all the data, model ``1 + f`` on cross-fitting fold ``f``'s training times.
    loss_history : ndarray, shape (K, n_epochs)
        Loss of model 0's kept filter per epoch (NaN-padded after it stopped).
    n_epochs : ndarray of int, shape (K,)
        Epochs model 0 trained for, per pattern (both runs when its occurrences were split).
    stop_reasons : tuple of str
        "converged" or "max_epochs" per pattern.
    """

    filters: np.ndarray
    loss_history: np.ndarray
    n_epochs: np.ndarray
    stop_reasons: tuple[str, ...]


def _mark_windows(row: np.ndarray, peaks: np.ndarray, width: int) -> None:
    """Set ``row`` True within half a window of each peak."""
    half = width // 2
    for peak in peaks:
        row[max(0, peak - half):peak + half + 1] = True


def explained_times(responses: np.ndarray, masks: np.ndarray, width: int, threshold: float) -> np.ndarray:
    """Times within half a window of a peak above ``threshold`` (one row per model), peaks where ``masks`` allow."""
    explained = np.zeros_like(masks)
    for model in range(responses.shape[0]):
        peaks, heights = masked_peaks(responses[model], masks[model], width)
        _mark_windows(explained[model], peaks[heights > threshold], width)
    return explained


def split_times(raster: SpikeRaster, responses: np.ndarray, masks: np.ndarray, width: int, threshold: float,
                lag_tolerance: int, alpha: float) -> np.ndarray:
    """Times of the weaker group wherever a model's occurrences split into two neuron-specific groups.

    A model's occurrences are its peaks above ``threshold`` where ``masks`` allow; see
    :func:`~convseq_neo.core.splitting.split_occurrences`.
    """
    split = np.zeros_like(masks)
    for model in range(responses.shape[0]):
        peaks, heights = masked_peaks(responses[model], masks[model], width)
        keep = heights > threshold
        weaker = split_occurrences(raster, peaks[keep], heights[keep], width, lag_tolerance, alpha)
        if weaker is not None:
            _mark_windows(split[model], weaker, width)
    return split


def train_coarse_to_fine(objective, n_batch: int, settings: TrainingSettings, generator: torch.Generator,
                         initial_logits: torch.Tensor | None = None) -> TrainingOutcome:
    """:func:`train_filters`, first at coarse bins when ``objective`` has a coarse version.

    The coarse filters (``objective.coarse``, bins ``c`` times longer) train on the full schedule;
    each coarse bin's logit is then repeated over its ``c`` fine bins (the same weight spread
    evenly) and training goes on at full resolution for at most ``max_epochs // 4`` epochs (at
    least ``patience + 1``), where the stopping rule may end it after ``patience + 1`` epochs. The
    loss history holds both stages, coarse first.
    """
    coarse = getattr(objective, "coarse", None)
    if coarse is None:
        return train_filters(objective, n_batch, settings, generator, initial_logits)
    factor = -(-objective.width // coarse.width)
    first = train_filters(coarse, n_batch, replace(settings, description=settings.description + " (coarse)"),
                          generator, None if initial_logits is None else initial_logits[..., ::factor])
    logits = first.logits.repeat_interleave(factor, dim=-1)[..., :objective.width]
    fine = replace(settings, min_epochs=min(settings.min_epochs, settings.patience + 1),
                   max_epochs=max(settings.patience + 1, settings.max_epochs // 4))
    second = train_filters(objective, n_batch, fine, generator, logits)
    return TrainingOutcome(second.logits, second.final_loss, np.concatenate([first.loss_history, second.loss_history]),
                           first.n_epochs + second.n_epochs, second.stop_reason)


def make_objective(training: str, op, raster: SpikeRaster, train_masks: np.ndarray, explained_masks: np.ndarray,
                   n_per_model: int, settings: TrainingSettings):
    """The loss of ``n_per_model`` filters per model: from responses or from lag correlations.

    Parameters
    ----------
    training : {"responses", "correlations"}
    op : response operator
    raster : SpikeRaster
    train_masks, explained_masks : ndarray of bool, shape (n_models, L)
        Each model's training times and the times its earlier patterns explained.
    n_per_model : int
        Filters trained together per model (grouped model after model).
    settings : TrainingSettings
    """
    if training == "correlations":
        from convseq_neo.core.correlations import CorrelationObjective, coarse_factor

        penalty = train_masks & explained_masks
        return CorrelationObjective(raster, op.width, train_masks & ~explained_masks, settings.tv_weight, op.device,
                                    penalty_masks=penalty, explained_weight=settings.explained_weight,
                                    coarse_factor=1 if penalty.any() else coarse_factor(op.width))
    return ResponseObjective(op, raster, torch.as_tensor(np.repeat(train_masks, n_per_model, axis=0), device=op.device),
                             torch.as_tensor(np.repeat(explained_masks, n_per_model, axis=0), device=op.device),
                             settings)


def train_patterns(op, raster: SpikeRaster, model_masks: np.ndarray, n_patterns: int, n_init: int,
                   settings: TrainingSettings, threshold: float, lag_tolerance: int, alpha: float,
                   generator: torch.Generator, training: str = "responses",
                   first_objective=None) -> TrainedPatterns:
    """Learn ``n_patterns`` filters one after another, for every model at once.

    Each model (a row of ``model_masks``: the times it trains on) trains ``n_init`` restarts per
    pattern in one batch and keeps the one with the lowest final loss. After a pattern, the times
    within half a window of its peaks above ``threshold`` (the reference threshold) are explained:
    later patterns leave them out and are penalised there. With more than one pattern, a filter
    whose occurrences split into two neuron-specific groups is trained on, with the weaker group's
    times explained, so that it keeps the stronger group (see :mod:`convseq_neo.core.splitting`).

    Parameters
    ----------
    op : response operator
        From :func:`~convseq_neo.core.response.make_response`.
    raster : SpikeRaster
    model_masks : ndarray of bool, shape (n_models, L)
    n_patterns, n_init : int
    settings : TrainingSettings
    threshold : float
        Height above which a peak counts as an occurrence while training.
    lag_tolerance : int
        Half-width of the membership test's lag window, in bins.
    alpha : float
        False discovery rate of the membership test used to split occurrences.
    generator : torch.Generator
    training : {"responses", "correlations"}
        How each epoch's loss is computed (:func:`make_objective`).
    first_objective : optional
        The first pattern's objective, when already built (``n_init`` filters per model, nothing
        explained).

    Returns
    -------
    TrainedPatterns
    """
    width = op.width
    n_models, length = model_masks.shape
    explained = np.zeros((n_models, length), dtype=bool)
    model_filters = np.zeros((n_models, n_patterns, raster.n_neurons, width), dtype=np.float32)
    histories, n_epochs, reasons = [], [], []
    for pattern in range(n_patterns):
        step = replace(settings, description=f"pattern {pattern + 1}/{n_patterns}")
        if pattern == 0 and first_objective is not None:
            objective = first_objective
        else:
            objective = make_objective(training, op, raster, model_masks, explained, n_init, step)
        outcome = train_coarse_to_fine(objective, n_models * n_init, step, generator)
        del objective
        final = outcome.final_loss.reshape(n_models, n_init)
        best = final.argmin(axis=1)
        chosen = np.arange(n_models) * n_init + best
        with torch.no_grad():
            filters = torch.softmax(outcome.logits[chosen], dim=-1)
        history = outcome.loss_history[:, chosen[0]]
        if n_patterns > 1:
            with torch.no_grad():
                responses = op(filters).cpu().numpy()
            split = split_times(raster, responses, model_masks & ~explained, width, threshold, lag_tolerance, alpha)
            if split.any():
                logger.info("pattern %d: occurrences split into two neuron-specific groups in %d of %d models; "
                            "keeping the stronger group", pattern, int(split.any(axis=1).sum()), n_models)
                objective = make_objective(training, op, raster, model_masks, explained | split, 1, step)
                outcome = train_filters(objective, n_models, replace(step, description=step.description + " (split)"),
                                        generator, initial_logits=outcome.logits[chosen])
                del objective
                with torch.no_grad():
                    filters = torch.softmax(outcome.logits, dim=-1)
                    responses = op(filters).cpu().numpy()
                history = np.concatenate([history, outcome.loss_history[:, 0]])
        model_filters[:, pattern] = filters.cpu().numpy()
        histories.append(history)
        n_epochs.append(len(history))
        reasons.append(outcome.stop_reason)
        if pattern + 1 < n_patterns:
            explained |= explained_times(responses, model_masks & ~explained, width, threshold)
    max_len = max(len(h) for h in histories)
    loss_history = np.vstack([np.pad(h, (0, max_len - len(h)), constant_values=np.nan) for h in histories])
    return TrainedPatterns(model_filters, loss_history, np.asarray(n_epochs), tuple(reasons))
