"""What training minimises: response variance, smoothness and the explaining-away penalty.

Two objectives share these terms (``ConvSeq(objective=...)``):

- ``"variance"`` (the paper's): ``-Var(x) + tv_weight * mean((dx)^2) + penalty``.
- ``"normalized"``: the same loss divided by the variance the response would have if the neurons
  fired independently, ``S(F) = sum_n Var(x_n)`` with ``x_n`` neuron ``n``'s own part of the response
  (:class:`IndependentVariance`). ``Var(x) = S(F) + sum_{n != m} Cov(x_n, x_m)``: the paper's variance
  grows when any row, member or not, peaks on its own spikes (``Var(x_n)`` is largest for a row
  concentrated on one lag), so on a weak sequence every row ends up peaked and the chance alignments
  of the non-members outweigh the sequence. The ratio ``Var(x) / S(F)`` is 1 whatever the rows when
  the neurons are independent; it grows only through covariance between neurons at the filter's lags,
  and a peaked row that brings none dilutes it. Its default smoothness weight is 0 (the smoothness
  term offsets the paper's reward for peaked rows, which the ratio no longer has).
"""

from __future__ import annotations

import numpy as np
import scipy.fft
import torch

__all__ = ["default_tv_weight", "convseq_loss", "MaskedLoss", "OBJECTIVES", "IndependentVariance",
           "own_lag_products"]

#: Values of ``ConvSeq(objective=...)``.
OBJECTIVES = ("variance", "normalized")


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


class IndependentVariance:
    """``S(F) = sum_n Var_t(x_n(t))``: the response's variance if the neurons fired independently.

    ``x_n(t) = sum_l F[n, l] X[n, t + l]`` is neuron ``n``'s part of the response. Its variance over
    the training times is ``sum_{l, l'} F[n, l] F[n, l'] a_n(l' - l) - (sum_l F[n, l] mu_n[l])^2``, with
    ``a_n(d)`` the neuron's mean lag-``d`` product ``X[n, u] X[n, u + d]`` and ``mu_n[l]`` the mean count
    read at lag ``l``, both over the training times (the lag products are taken as the same at every
    lag of the window: the edges of the training runs are ignored). The double sum is the row's
    autocorrelation against ``a_n``, one FFT per row.

    Parameters
    ----------
    lag_products : Tensor, shape (M, N, D)
        ``a_n(d)`` for ``d = 0 .. D - 1`` (``D >= W``), per model.
    lag_means : Tensor, shape (M, N, W) or (M, N, 1)
        ``mu_n[l]`` per model (one column: the same at every lag).
    width : int
        ``W``.

    Examples
    --------
    For independent Poisson neurons the ratio of the response's variance to ``S`` is about 1, here
    for a peaked and a flat filter alike:

    >>> import numpy as np, torch
    >>> counts = np.random.default_rng(0).poisson(0.2, size=(5, 20000))
    >>> products, means = own_lag_products(counts, [(0, 20000)], 8)
    >>> independent = IndependentVariance(torch.as_tensor(products[None]), torch.as_tensor(means[None, :, None]), 8)
    >>> for logits in (torch.zeros(5, 8), 4.0 * torch.eye(8)[:5]):
    ...     filters = torch.softmax(logits.double(), dim=-1)
    ...     x = sum(np.convolve(counts[n], filters[n].numpy()[::-1], mode="valid") for n in range(5))
    ...     print(round(float(x.var() / independent(filters[None])[0]), 1))
    1.0
    1.0
    """

    def __init__(self, lag_products: torch.Tensor, lag_means: torch.Tensor, width: int) -> None:
        self.width = int(width)
        if lag_products.shape[-1] < self.width:
            raise ValueError(f"lag_products must hold lags 0 .. {self.width - 1}, got {lag_products.shape[-1]}")
        # a size of at least 2 W - 1 keeps the lags -(W - 1) .. W - 1 apart in the circular product
        self.size = int(scipy.fft.next_fast_len(2 * self.width, real=True))
        self.lag_products = lag_products[..., :self.width]  # (M, N, W)
        circular = torch.zeros((*self.lag_products.shape[:-1], self.size), dtype=torch.float64,
                               device=lag_products.device)
        circular[..., :self.width] = self.lag_products
        circular[..., self.size - self.width + 1:] = self.lag_products[..., 1:].flip(-1)
        # the sequence is real and symmetric, so its spectrum is real
        self.spectrum = torch.fft.rfft(circular, dim=-1).real.to(lag_products.dtype)  # (M, N, F)
        self.lag_means = lag_means

    def __call__(self, filters: torch.Tensor) -> torch.Tensor:
        """``S`` per filter, shape ``(B,)``, differentiable; ``B`` a multiple of ``M``, grouped by model."""
        return _IndependentVarianceFunction.apply(filters, self)

    def divide(self, losses: torch.Tensor, filters: torch.Tensor) -> torch.Tensor:
        """``losses / S``, where ``S = 0`` (no training time left, or no spike in it) counts as 1.

        Earlier patterns can explain every training time of a model; its filter's ``S`` is then 0
        and the plain ratio would be infinite or NaN, which would end the whole fit.
        """
        independent = self(filters)
        return losses / torch.where(independent > 0, independent, torch.ones_like(independent))

    def products(self, filters: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``A_n F_n`` (the Toeplitz product of the lag products), the means ``mu_n`` and ``F_n . mu_n``."""
        n_models = self.spectrum.shape[0]
        per_model = filters.shape[0] // n_models
        grouped = filters.reshape(n_models, per_model, *filters.shape[1:])
        spectrum = torch.fft.rfft(grouped, n=self.size, dim=-1) * self.spectrum.to(filters.dtype)[:, None]
        product = torch.fft.irfft(spectrum, n=self.size, dim=-1)[..., :self.width].reshape(filters.shape)
        means = self.lag_means.to(filters.dtype)[:, None].expand(n_models, per_model, *self.lag_means.shape[1:])
        means = means.reshape(filters.shape[0], *self.lag_means.shape[1:])
        return product, means, (filters * means).sum(dim=-1)


class _IndependentVarianceFunction(torch.autograd.Function):
    """``S = sum_n F_n . A_n F_n - (F_n . mu_n)^2`` and its gradient ``2 A_n F_n - 2 (F_n . mu_n) mu_n``."""

    @staticmethod
    def forward(ctx, filters, independent: IndependentVariance):
        with torch.no_grad():
            product, means, mean_part = independent.products(filters)
            ctx.save_for_backward(product, means, mean_part)
            return ((filters * product).sum(dim=-1) - mean_part.square()).sum(dim=-1)

    @staticmethod
    def backward(ctx, grad_output):
        product, means, mean_part = ctx.saved_tensors
        grad = 2.0 * (product - mean_part[..., None] * means)
        return grad * grad_output[:, None, None], None


def own_lag_products(counts, runs: list[tuple[int, int]], width: int, chunk_entries: int = 2**22):
    """Each neuron's mean lag products ``a_n(d)`` (``d < width``) and mean count over anchors in ``runs``.

    ``a_n(d) = sum_u X[n, u] X[n, u + d] / U`` over the ``U`` anchor bins ``u`` of ``runs``, computed by
    FFT a block of neurons at a time from a dense or sparse ``(N, T)`` count array (bins past ``T``
    count as empty).

    Parameters
    ----------
    counts : array_like or scipy.sparse matrix, shape (N, T)
    runs : list of (start, stop)
        Anchor bins, disjoint.
    width : int
    chunk_entries : int
        Dense entries per block of neurons.

    Returns
    -------
    products : ndarray, shape (N, width)
    means : ndarray, shape (N,)

    Examples
    --------
    >>> products, means = own_lag_products(np.array([[1, 0, 1, 1, 0, 0]]), [(0, 4)], 3)
    >>> np.round(products, 6).tolist(), means.tolist()
    ([[0.75, 0.25, 0.25]], [0.75])
    """
    n_neurons, n_bins = counts.shape
    anchors = np.zeros(n_bins, dtype=bool)
    for start, stop in runs:
        anchors[max(0, start):min(n_bins, stop)] = True
    n_anchors = max(1, int(anchors.sum()))
    size = int(scipy.fft.next_fast_len(n_bins + width, real=True))
    block = max(1, chunk_entries // size)
    products = np.zeros((n_neurons, width))
    means = np.zeros(n_neurons)
    for first in range(0, n_neurons, block):
        rows = counts[first:first + block]
        dense = np.asarray(rows.toarray() if hasattr(rows, "toarray") else rows, dtype=np.float64)
        anchored = dense * anchors
        spectrum = np.conj(scipy.fft.rfft(anchored, n=size, axis=1)) * scipy.fft.rfft(dense, n=size, axis=1)
        products[first:first + block] = scipy.fft.irfft(spectrum, n=size, axis=1)[:, :width] / n_anchors
        means[first:first + block] = anchored.sum(axis=1) / n_anchors
    return products, means
