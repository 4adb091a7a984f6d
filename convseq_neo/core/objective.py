"""What training minimises: response variance, smoothness and the explaining-away penalty."""

from __future__ import annotations

import torch

__all__ = ["default_tv_weight", "convseq_loss", "MaskedLoss"]


def default_tv_weight(width: int) -> float:
    """``0.005 * W**2``: the paper's 200 at ``W = 200``, scaled as the variance/smoothness ratio (1 / w^2).

    The variance term grows like ``A^2 w / T`` and the smoothness term like ``A^2 / (w T)`` for a
    response peak of width ``w``, so a weight tuned at one width is off by ``(W / 200)^2`` at another.
    """
    return 0.005 * float(width) ** 2


class MaskedLoss:
    """The loss of :func:`convseq_loss` for fixed masks and weights, with its gradient written out.

    Training evaluates the loss thousands of times with the same masks; this holds the mask
    products once and computes the value and its gradient in a few fused passes over the
    responses, instead of the two dozen elementwise kernels autograd would record and replay.

    Parameters
    ----------
    train_mask, explained_mask : Tensor of bool, shape (B, L)
        As in :func:`convseq_loss`.
    tv_weight, explained_weight : float
        As in :func:`convseq_loss`.
    dtype : torch.dtype
        The responses' dtype.

    Examples
    --------
    A response that peaks once is preferred (lower loss) to one that jitters with the same variance:

    >>> import torch
    >>> train = torch.ones((2, 100), dtype=torch.bool)
    >>> loss = MaskedLoss(train, torch.zeros_like(train), tv_weight=1.0, explained_weight=0.0, dtype=torch.float64)
    >>> peak = torch.exp(-0.5 * ((torch.arange(100.0, dtype=torch.float64) - 50) / 5) ** 2)
    >>> jitter = peak[torch.randperm(100, generator=torch.Generator().manual_seed(0))]
    >>> values = loss(torch.stack([peak, jitter]))
    >>> bool(values[0] < values[1])
    True
    """

    def __init__(self, train_mask: torch.Tensor, explained_mask: torch.Tensor, tv_weight: float,
                 explained_weight: float, dtype: torch.dtype) -> None:
        self.weights = (train_mask & ~explained_mask).to(dtype)
        self.n_weights = self.weights.sum(dim=1).clamp_min(1.0)
        self.pair_weights = self.weights[:, 1:] * self.weights[:, :-1]
        self.n_pairs = self.pair_weights.sum(dim=1).clamp_min(1.0)
        self.tv_weight = float(tv_weight)
        self.explained_weight = float(explained_weight)
        self.penalty_weights = (train_mask & explained_mask).to(dtype) if explained_weight > 0 else None

    def __call__(self, responses: torch.Tensor) -> torch.Tensor:
        """Per-filter loss, shape ``(B,)``, differentiable in ``responses``."""
        return _FusedLoss.apply(responses, self)


class _FusedLoss(torch.autograd.Function):
    """Value and gradient of the convSeq loss (see :func:`convseq_loss` for the terms).

    With weights ``w``, ``n = sum w``, mean ``m``, ``c = x - m``, pair weights ``p``, ``P = sum p``,
    ``d_t = x_{t+1} - x_t``, penalty weights ``q`` and ``r = relu(c)``::

        d/dx_t  -Var         = -2 w_t c_t / n            (sum_s w_s c_s = 0)
        d/dx_t  smoothness   = 2 (p_{t-1} d_{t-1} - p_t d_t) / P
        d/dx_t  penalty      = 2 q_t r_t / n - (w_t / n) sum_s 2 q_s r_s / n
    """

    @staticmethod
    def forward(ctx, responses, loss: MaskedLoss):
        weights, n_weights = loss.weights, loss.n_weights
        mean = (weights * responses).sum(dim=1, keepdim=True) / n_weights[:, None]
        centred = responses - mean
        weighted_centred = weights * centred
        value = -(weighted_centred * centred).sum(dim=1) / n_weights
        steps = responses[:, 1:] - responses[:, :-1]
        weighted_steps = loss.pair_weights * steps
        value += loss.tv_weight * (weighted_steps * steps).sum(dim=1) / loss.n_pairs
        weighted_excess = None
        if loss.penalty_weights is not None:
            excess = torch.relu(centred)
            weighted_excess = loss.penalty_weights * excess
            value += loss.explained_weight * (weighted_excess * excess).sum(dim=1) / n_weights
        ctx.loss = loss
        ctx.save_for_backward(weighted_centred, weighted_steps, weighted_excess)
        return value

    @staticmethod
    def backward(ctx, grad_value):
        loss = ctx.loss
        weighted_centred, weighted_steps, weighted_excess = ctx.saved_tensors
        grad = weighted_centred * (-2.0 * grad_value / loss.n_weights)[:, None]
        smooth = weighted_steps * (2.0 * loss.tv_weight * grad_value / loss.n_pairs)[:, None]
        grad[:, 1:] += smooth
        grad[:, :-1] -= smooth
        if weighted_excess is not None:
            push = weighted_excess * (2.0 * loss.explained_weight * grad_value / loss.n_weights)[:, None]
            grad += push
            grad -= loss.weights * (push.sum(dim=1) / loss.n_weights)[:, None]
        return grad, None


def convseq_loss(responses: torch.Tensor, train_mask: torch.Tensor, explained_mask: torch.Tensor,
                 tv_weight: float, explained_weight: float) -> torch.Tensor:
    """Per-filter loss ``-Var(x) + tv_weight * mean((dx)^2) + explained_weight * penalty``.

    Variance and smoothness are taken over each filter's training times that earlier patterns do
    not explain (the smoothness over neighbouring pairs of such times). Training holds the masks
    fixed and uses :class:`MaskedLoss`, the same value with its gradient written out.

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
    tv_weight : float
        Weight of the mean squared step between neighbouring times.
    explained_weight : float
        Weight of the penalty on explained times.

    Returns
    -------
    Tensor, shape (B,)

    Examples
    --------
    >>> import torch
    >>> responses = torch.tensor([[0.0, 0.0, 3.0, 0.0, 0.0]])
    >>> train = torch.ones_like(responses, dtype=torch.bool)
    >>> convseq_loss(responses, train, ~train, tv_weight=0.0, explained_weight=0.0)
    tensor([-1.4400])
    """
    return MaskedLoss(train_mask, explained_mask, tv_weight, explained_weight, responses.dtype)(responses)
