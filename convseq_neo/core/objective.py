"""What training minimises: response variance, smoothness and the explaining-away penalty."""

from __future__ import annotations

import torch

__all__ = ["default_tv_weight", "convseq_loss"]


def default_tv_weight(width: int) -> float:
    """``0.005 * W**2``: the paper's 200 at ``W = 200``, scaled as the variance/smoothness ratio (1 / w^2).

    The variance term grows like ``A^2 w / T`` and the smoothness term like ``A^2 / (w T)`` for a
    response peak of width ``w``, so a weight tuned at one width is off by ``(W / 200)^2`` at another.
    """
    return 0.005 * float(width) ** 2


def convseq_loss(responses: torch.Tensor, train_mask: torch.Tensor, explained_mask: torch.Tensor,
                 tv_weight: float, explained_weight: float) -> torch.Tensor:
    """Per-filter loss ``-Var(x) + tv_weight * mean((dx)^2) + explained_weight * penalty``.

    Parameters
    ----------
    responses : Tensor, shape (B, L)
        One response per filter in the batch.
    train_mask : Tensor of bool, shape (B, L)
        Times each filter is trained on (its cross-fitting training folds).
    explained_mask : Tensor of bool, shape (B, L)
        Times already explained by earlier patterns: left out of the variance, and any response above
        the mean there is penalised (``explained_weight``), so a later filter is pushed away from
        patterns already found.

    Returns
    -------
    Tensor, shape (B,)
    """
    weights = (train_mask & ~explained_mask).to(responses.dtype)
    n_weights = weights.sum(dim=1).clamp_min(1.0)
    mean = (weights * responses).sum(dim=1, keepdim=True) / n_weights[:, None]
    centred = responses - mean
    variance = (weights * centred.square()).sum(dim=1) / n_weights
    pair_weights = weights[:, 1:] * weights[:, :-1]
    smoothness = (pair_weights * (responses[:, 1:] - responses[:, :-1]).square()).sum(dim=1)
    smoothness = smoothness / pair_weights.sum(dim=1).clamp_min(1.0)
    loss = -variance + tv_weight * smoothness
    if explained_weight > 0:
        penalty_weights = (train_mask & explained_mask).to(responses.dtype)
        penalty = (penalty_weights * torch.relu(centred).square()).sum(dim=1) / n_weights
        loss = loss + explained_weight * penalty
    return loss
