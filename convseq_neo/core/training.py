"""Training: batched filters, Adam, re-centring of each pattern, the stopping rule, and patterns one after another."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import numpy as np
import torch
from tqdm.auto import tqdm

from convseq_neo.core.objective import IndependentVariance, MaskedLoss, own_lag_products
from convseq_neo.core.significance import masked_peaks
from convseq_neo.core.splitting import split_occurrences
from convseq_neo.raster import SpikeRaster

logger = logging.getLogger(__name__)

__all__ = ["TrainingSettings", "TrainingOutcome", "TrainedPatterns", "ResponseObjective", "make_objective",
           "train_coarse_to_fine", "train_filters", "train_patterns", "shift_rows", "explained_times", "split_times",
           "ModelTraining", "first_correlation_objective", "seeded_generator", "train_model"]


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
    objective: str = "variance"

    @property
    def normalized(self) -> bool:
        """Whether the loss is divided by the independent-neuron variance (``objective="normalized"``)."""
        return self.objective == "normalized"


@dataclass
class TrainingOutcome:
    """Learned logits, per-filter final loss and the loss history of a batch."""

    logits: torch.Tensor  # (B, N, W)
    final_loss: np.ndarray  # (B,)
    loss_history: np.ndarray  # (n_epochs, B); NaN after a filter's group stopped
    n_epochs: int
    stop_reason: str
    stop_reasons: tuple[str, ...] = ()  # per filter: its group's reason


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
        self._loss = MaskedLoss(train_mask, explained_mask, settings.tv_weight, settings.explained_weight, op.dtype)
        self._independent = _response_independent_variance(raster, train_mask & ~explained_mask, op.width,
                                                           op.device) if settings.normalized else None
        self._responses = None

    def losses(self, filters: torch.Tensor) -> torch.Tensor:
        """Loss of each filter (differentiable); keeps the responses for :meth:`recenter_shifts`."""
        responses = self.op(filters)
        self._responses = responses
        losses = self._loss(responses)
        if self._independent is not None:
            losses = self._independent.divide(losses, filters)
        return losses

    def recenter_shifts(self, filters: torch.Tensor) -> np.ndarray:
        """Shifts for the filters of the latest :meth:`losses` call, from where they meet the data at top peaks."""
        return self._recentring.shifts(filters.detach().cpu().numpy(), self._responses.detach().cpu().numpy(),
                                       self.train_mask.cpu().numpy() & ~self.explained_mask.cpu().numpy())


def _response_independent_variance(raster: SpikeRaster, weights: torch.Tensor, width: int,
                                   device) -> IndependentVariance:
    """:class:`IndependentVariance` over each filter's loss times (``weights``, ``(B, L)``), one model per filter.

    The lag products are anchored where the correlation objective anchors them
    (:func:`~convseq_neo.core.correlations.anchor_runs`), so they read only spikes the filter's
    training responses read.
    """
    from convseq_neo.core.correlations import anchor_runs

    rows, inverse = np.unique(weights.cpu().numpy(), axis=0, return_inverse=True)
    counts = raster.to_scipy()
    products, means = zip(*(own_lag_products(counts, anchor_runs(row, width), width) for row in rows))
    index = torch.as_tensor(np.ravel(inverse))
    return IndependentVariance(torch.as_tensor(np.stack(products), dtype=torch.float32)[index].to(device),
                               torch.as_tensor(np.stack(means), dtype=torch.float32)[index, :, None].to(device), width)


def train_filters(objective, n_batch: int, settings: TrainingSettings, generator,
                  initial_logits: torch.Tensor | None = None, groups: np.ndarray | None = None) -> TrainingOutcome:
    """Train a batch of independent filters on one objective.

    Each filter ``b`` has its own training times and explained times (held by ``objective``: a
    :class:`ResponseObjective` or a :class:`~convseq_neo.core.correlations.CorrelationObjective`);
    filters do not interact, so one pass trains several restarts and cross-fitting folds at once.
    Full-batch Adam on the softmax logits, from standard-normal logits or from ``initial_logits``.
    Every ``settings.recenter_every`` epochs each filter's pattern is moved back to the window
    centre (logits and Adam moments together). Training stops when, after ``min_epochs``, every
    filter's best loss has improved by less than ``tol`` (relative) over the last ``patience``
    epochs, or at ``max_epochs``.

    With ``groups`` (a group label per filter, groups contiguous), each group stops on its own:
    once all its filters meet the rule its logits are frozen (its later history is NaN) while
    the others go on, so a group trains exactly as it would alone. ``generator`` is then a list
    with one torch generator per group, each drawing its group's initial logits.
    """
    shape = (n_batch, objective.n_neurons, objective.width)
    labels = np.zeros(n_batch, dtype=np.int64) if groups is None else np.unique(groups, return_inverse=True)[1]
    n_groups = int(labels.max()) + 1 if n_batch else 0
    if initial_logits is None:
        generators = list(generator) if isinstance(generator, (list, tuple)) else [generator] * n_groups
        if isinstance(generator, (list, tuple)):
            if len(generators) != n_groups:
                raise ValueError(f"got {len(generators)} generators for {n_groups} groups")
            logits = torch.cat([torch.randn((int((labels == group).sum()),) + shape[1:], generator=generators[group],
                                            device=objective.device, dtype=objective.dtype)
                                for group in range(n_groups)])
        else:
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
    active = np.ones(n_groups, dtype=bool)
    group_reason = ["max_epochs"] * n_groups
    bar = tqdm(total=settings.max_epochs, desc=settings.description, disable=not settings.progress, leave=False)
    step_count = 0
    for epoch in range(settings.max_epochs):
        logits.requires_grad_(True)
        filters = torch.softmax(logits, dim=-1)
        losses = objective.losses(filters)
        (grad,) = torch.autograd.grad(losses.sum(), logits)
        logits = logits.detach()
        step_count += 1
        frozen = ~active[labels]
        with torch.no_grad():
            first_moment.mul_(beta1).add_(grad, alpha=1 - beta1)
            second_moment.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            corrected1 = first_moment / (1 - beta1**step_count)
            corrected2 = second_moment / (1 - beta2**step_count)
            stepped = logits - settings.lr * corrected1 / (corrected2.sqrt() + eps)
            if frozen.any():
                keep = torch.as_tensor(frozen, device=logits.device)[:, None, None]
                logits = torch.where(keep, logits, stepped)
            else:
                logits = stepped
        history[epoch] = losses.detach().cpu().numpy()
        history[epoch, frozen] = np.nan
        np.minimum(best_history[epoch - 1] if epoch else best_history[0], history[epoch], out=best_history[epoch])
        n_done = epoch + 1
        bar.update(1)
        if (settings.recenter_every > 0 and (epoch + 1) % settings.recenter_every == 0
                and epoch + 1 < settings.max_epochs):
            shifts = objective.recenter_shifts(filters.detach())
            shifts = np.where(frozen, 0, shifts)
            if np.any(shifts != 0):
                with torch.no_grad():
                    row_fill = logits.median(dim=-1, keepdim=True).values
                    logits = shift_rows(logits, shifts, row_fill)
                    first_moment = shift_rows(first_moment, shifts, 0.0)
                    second_moment = shift_rows(second_moment, shifts, 0.0)
        if epoch + 1 >= max(settings.min_epochs, settings.patience + 1):
            best, then = best_history[epoch], best_history[epoch - settings.patience]
            relative = (then - best) / np.maximum(np.abs(best), 1e-12)
            for group in np.flatnonzero(active):
                if np.all(relative[labels == group] < settings.tol):
                    active[group] = False
                    group_reason[group] = "converged"
            if not active.any():
                stop_reason = "converged"
                break
    bar.close()
    with torch.no_grad():
        final = objective.losses(torch.softmax(logits, dim=-1)).cpu().numpy().astype(float)
    logger.info("%s: %s after %d epochs", settings.description, stop_reason, n_done)
    return TrainingOutcome(logits.detach(), final, history[:n_done].copy(), n_done, stop_reason,
                           tuple(group_reason[label] for label in labels))


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
                lag_tolerance: int, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Times and neurons of the weaker groups wherever a model's occurrences split into neuron-specific groups.

    A model's occurrences are its peaks above ``threshold`` where ``masks`` allow; see
    :func:`~convseq_neo.core.splitting.split_occurrences`.

    Returns
    -------
    ndarray of bool, shape like ``masks``
        Times within half a window of the weaker groups' peaks.
    ndarray of bool, shape (n_models, n_neurons)
        The members specific to a weaker group.
    """
    split = np.zeros_like(masks)
    released = np.zeros((responses.shape[0], raster.n_neurons), dtype=bool)
    for model in range(responses.shape[0]):
        peaks, heights = masked_peaks(responses[model], masks[model], width)
        keep = heights > threshold
        weaker = split_occurrences(raster, peaks[keep], heights[keep], width, lag_tolerance, alpha)
        if weaker is not None:
            _mark_windows(split[model], weaker.peaks, width)
            released[model, weaker.neurons] = True
    return split, released


def train_coarse_to_fine(objective, n_batch: int, settings: TrainingSettings, generator,
                         initial_logits: torch.Tensor | None = None,
                         groups: np.ndarray | None = None) -> TrainingOutcome:
    """:func:`train_filters`, first at coarse bins when ``objective`` has a coarse version.

    The coarse filters (``objective.coarse``, bins ``c`` times longer) train on the full schedule;
    each coarse bin's logit is then repeated over its ``c`` fine bins (the same weight spread
    evenly) and training goes on at full resolution for at most ``max_epochs // 4`` epochs (at
    least ``patience + 1``), where the stopping rule may end it after ``patience + 1`` epochs. The
    loss history holds both stages, coarse first.
    """
    coarse = getattr(objective, "coarse", None)
    if coarse is None:
        return train_filters(objective, n_batch, settings, generator, initial_logits, groups)
    factor = -(-objective.width // coarse.width)
    first = train_filters(coarse, n_batch, replace(settings, description=settings.description + " (coarse)"),
                          generator, None if initial_logits is None else initial_logits[..., ::factor], groups)
    logits = first.logits.repeat_interleave(factor, dim=-1)[..., :objective.width]
    fine = replace(settings, min_epochs=min(settings.min_epochs, settings.patience + 1),
                   max_epochs=max(settings.patience + 1, settings.max_epochs // 4))
    second = train_filters(objective, n_batch, fine, generator, logits, groups)
    return TrainingOutcome(second.logits, second.final_loss, np.concatenate([first.loss_history, second.loss_history]),
                           first.n_epochs + second.n_epochs, second.stop_reason, second.stop_reasons)


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
                                    coarse_factor=1 if penalty.any() else coarse_factor(op.width),
                                    normalized=settings.normalized)
    return ResponseObjective(op, raster, torch.as_tensor(np.repeat(train_masks, n_per_model, axis=0), device=op.device),
                             torch.as_tensor(np.repeat(explained_masks, n_per_model, axis=0), device=op.device),
                             settings)


def _own_history(column: np.ndarray) -> np.ndarray:
    """A filter's loss history without the NaN epochs after its group stopped (see :func:`train_filters`)."""
    return column[~np.isnan(column)]


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
    generator : torch.Generator or list of torch.Generator
        One per model (each draws its model's initial logits, and each model stops on its own, so
        that training models together equals training each alone: :func:`train_model`), or one
        for all.
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
    groups = np.repeat(np.arange(n_models), n_init)
    explained = np.zeros((n_models, length), dtype=bool)
    model_filters = np.zeros((n_models, n_patterns, raster.n_neurons, width), dtype=np.float32)
    histories, n_epochs, reasons = [], [], []
    for pattern in range(n_patterns):
        step = replace(settings, description=f"pattern {pattern + 1}/{n_patterns}")
        if pattern == 0 and first_objective is not None:
            objective = first_objective
        else:
            objective = make_objective(training, op, raster, model_masks, explained, n_init, step)
        outcome = train_coarse_to_fine(objective, n_models * n_init, step, generator, groups=groups)
        del objective
        final = outcome.final_loss.reshape(n_models, n_init)
        best = final.argmin(axis=1)
        chosen = np.arange(n_models) * n_init + best
        with torch.no_grad():
            filters = torch.softmax(outcome.logits[chosen], dim=-1)
        history = _own_history(outcome.loss_history[:, chosen[0]])
        reason = outcome.stop_reasons[chosen[0]] if outcome.stop_reasons else outcome.stop_reason
        if n_patterns > 1:
            with torch.no_grad():
                responses = op(filters).cpu().numpy()
            logits = outcome.logits[chosen]
            # a filter that learned several sequences keeps the stronger one per split; one that
            # learned three may split twice (at most once per pattern still to learn, at least once)
            set_aside = np.zeros_like(explained)
            for _ in range(max(1, n_patterns - 1 - pattern)):
                split, released = split_times(raster, responses, model_masks & ~explained & ~set_aside, width,
                                              threshold, lag_tolerance, alpha)
                resplit = np.flatnonzero(split.any(axis=1))  # only the models whose occurrences split train again
                if not resplit.size:
                    break
                logger.info("pattern %d: occurrences split into neuron-specific groups in %d of %d models; "
                            "keeping the strongest group", pattern, resplit.size, n_models)
                set_aside |= split
                objective = make_objective(training, op, raster, model_masks[resplit], (explained | set_aside)[resplit],
                                           1, step)
                # the weaker group's rows start flat: as they were, nothing in the stronger group's times
                # would pull them apart, and the filter would go on responding to the weaker group
                index = torch.as_tensor(resplit, device=logits.device)
                initial = logits[index]
                flat = torch.as_tensor(released[resplit], device=initial.device)[:, :, None]
                initial = torch.where(flat, initial.mean(dim=-1, keepdim=True), initial)
                again = train_filters(objective, resplit.size, replace(step, description=step.description + " (split)"),
                                      generator, initial_logits=initial, groups=resplit)
                del objective
                with torch.no_grad():
                    logits = logits.clone()
                    logits[index] = again.logits
                    refit = torch.softmax(again.logits, dim=-1)
                    filters = filters.clone()
                    filters[index] = refit
                    responses[resplit] = op(refit).cpu().numpy()
                if resplit[0] == 0:
                    history = np.concatenate([history, _own_history(again.loss_history[:, 0])])
                    reason = again.stop_reasons[0]
        model_filters[:, pattern] = filters.cpu().numpy()
        histories.append(history)
        n_epochs.append(len(history))
        reasons.append(reason)
        if pattern + 1 < n_patterns:
            explained |= explained_times(responses, model_masks & ~explained, width, threshold)
    max_len = max(len(h) for h in histories)
    loss_history = np.vstack([np.pad(h, (0, max_len - len(h)), constant_values=np.nan) for h in histories])
    return TrainedPatterns(model_filters, loss_history, np.asarray(n_epochs), tuple(reasons))


@dataclass(frozen=True)
class ModelTraining:
    """What training one model needs besides its raster and training times (see :func:`train_model`)."""

    width: int
    backend: str
    device: str
    n_patterns: int
    n_init: int
    settings: TrainingSettings
    threshold: float
    lag_tolerance: int
    alpha: float
    training: str


def first_correlation_objective(raster: SpikeRaster, width: int, model_masks: np.ndarray, tv_weight: float,
                                device, normalized: bool = False):
    """The first pattern's lag-correlation objective for ``model_masks`` (nothing explained yet)."""
    from convseq_neo.core.correlations import CorrelationObjective, coarse_factor

    return CorrelationObjective(raster, width, model_masks, tv_weight, device, coarse_factor=coarse_factor(width),
                                normalized=normalized)


def seeded_generator(seed: int, device) -> torch.Generator:
    """A local torch generator on ``device`` seeded with ``seed``."""
    generator = torch.Generator(device=device)
    generator.manual_seed(int(seed))
    return generator


def train_model(model_masks: np.ndarray, seeds, first_objective=None, *, raster: SpikeRaster,
                config: ModelTraining, op=None) -> tuple[TrainedPatterns, int]:
    """Train some models' ``n_patterns`` filters (:func:`train_patterns` for some rows of the model masks).

    The models of a cross-fitted fit (the all-data model and one per fold) do not depend on each
    other: each has its own random initialisation (from its seed) and its own stopping rule, and
    they share nothing but the raster. So any group of them can be one task
    (:func:`~convseq_neo.core.tasks.run_tasks`), trained as one batch, and gives what training
    them all together gives (exactly, when the response operator treats each filter of a batch
    alone, as the event backend on the CPU does).

    Parameters
    ----------
    model_masks : ndarray of bool, shape (M, L)
        The response times each model of the group trains on.
    seeds : sequence of int, length M
        Seed each model's torch generator (its random initial logits).
    first_objective : optional
        The group's first-pattern lag-correlation objective, when already built
        (:func:`first_correlation_objective`); built here when needed and not given.
    raster : SpikeRaster
    config : ModelTraining
    op : response operator, optional
        Built from ``raster`` when not given (on a worker).

    Returns
    -------
    TrainedPatterns
        ``filters`` of shape (M, K, N, W); the history and epochs are the group's first model's.
    int
        Filter passes over the raster this training made.
    """
    from convseq_neo._validation import resolve_device
    from convseq_neo.core.response import make_response

    device = resolve_device(config.device)
    if op is None:
        op = make_response(raster, config.width, backend=config.backend, device=device)
    passes_before = op.n_passes
    masks = np.atleast_2d(np.asarray(model_masks, dtype=bool))
    if config.training == "correlations" and first_objective is None:
        first_objective = first_correlation_objective(raster, config.width, masks, config.settings.tv_weight, device,
                                                      normalized=config.settings.normalized)
    trained = train_patterns(op, raster, masks, config.n_patterns, config.n_init, config.settings, config.threshold,
                             config.lag_tolerance, config.alpha, [seeded_generator(seed, device) for seed in seeds],
                             training=config.training,
                             first_objective=first_objective)
    return trained, int(op.n_passes - passes_before)
