"""The paper's in-sample pattern, frozen: the comparator of ``bench_sensitivity``.

This is ``bench_peers.fit_reference`` as it stood before any change to the detector for weak
sequences, written out here so that later changes to :mod:`convseq_neo` cannot move the
comparator. It depends on numpy, scipy and torch only:

- responses: the event-driven product of the filters with the binned raster (response length
  ``T + 2 (W // 2) - W + 1``; a spike in bin ``s`` adds ``F[n, j]`` at ``t = s + W // 2 - j``);
- training: one filter per pattern from standard-normal logits, full-batch Adam (lr 0.1) for
  ``epochs`` epochs with no stopping rule and no re-centring, loss
  ``-Var(x) + tv_weight * mean((dx)^2)`` with ``tv_weight = 0.005 W^2`` (200 at ``W = 200``);
- threshold: mean over 64 random softmax filters of ``mean_t(x)`` plus 5 times that of
  ``std_t(x)`` (the paper's random-filter rule; 64 filters reach its averages);
- occurrences: ``find_peaks(response, distance=W)``, scored by peak height.

The random draws follow ``ConvSeq(random_state=seed)`` (one torch generator seeded from
``numpy.random.default_rng(seed)``; the 64 threshold filters first, then the initial logits), so
at ``K = 1`` the responses equal those of ``ConvSeq(significance="random_filters", n_init=1,
recenter_every=0, max_epochs=epochs, min_epochs=epochs, tol=0)`` as the package stood when this copy was
made (commit cbabea5, before issue 21), bit for bit; ``bench_sensitivity.py --check-frozen`` compares
the two on the CA1 crop with the package as it is now (the "random_filters" path does not use the
cross-fitted test that issue 21 changed).
"""

from __future__ import annotations

import warnings

import numpy as np

N_RANDOM_FILTERS = 64
LR = 0.1


def _operator(raster: np.ndarray, width: int):
    """Sparse ``(L, N W)`` matrix and its transpose: the response as one product with the flat filters."""
    import torch

    n_neurons, n_bins = raster.shape
    half = width // 2
    length = n_bins + 2 * half - width + 1
    neuron, bins = np.nonzero(raster)
    counts = raster[neuron, bins].astype(np.float64)
    lags = np.arange(width)
    rows = bins[:, None] + half - lags[None, :]
    cols = neuron[:, None] * width + lags[None, :]
    vals = np.broadcast_to(counts[:, None], rows.shape)
    valid = (rows >= 0) & (rows < length)
    rows, cols, vals = rows[valid], cols[valid], vals[valid]

    def csr(r, c, v, shape):
        order = np.lexsort((c, r))
        crow = np.zeros(shape[0] + 1, dtype=np.int64)
        np.cumsum(np.bincount(r, minlength=shape[0]), out=crow[1:])
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta", category=UserWarning)
            return torch.sparse_csr_tensor(torch.from_numpy(crow), torch.from_numpy(np.ascontiguousarray(c[order])),
                                           torch.from_numpy(np.ascontiguousarray(v[order])).float(), size=shape,
                                           check_invariants=False)

    return csr(rows, cols, vals, (length, n_neurons * width)), csr(cols, rows, vals, (n_neurons * width, length))


def _responses(filters, matrix, matrix_t):
    import torch

    class Product(torch.autograd.Function):
        @staticmethod
        def forward(ctx, flat):
            return matrix @ flat

        @staticmethod
        def backward(ctx, grad):
            return matrix_t @ grad.contiguous()

    flat = filters.reshape(filters.shape[0], -1).transpose(0, 1).contiguous()
    return Product.apply(flat).transpose(0, 1)


def _loss(responses, tv_weight: float):
    centred = responses - responses.mean(dim=1, keepdim=True)
    variance = centred.square().mean(dim=1)
    smoothness = (responses[:, 1:] - responses[:, :-1]).square().mean(dim=1)
    return -variance + tv_weight * smoothness


def fit_paper_pattern(raster: np.ndarray, width: int, epochs: int = 4000, n_patterns: int = 1,
                      seed: int = 0) -> dict:
    """Train the paper's filters in-sample and return their peaks, heights and the random-filter threshold.

    With ``n_patterns > 1`` the filters are ``n_patterns`` independent initialisations trained in one
    batch (the same loss for each; they do not interact).

    Returns
    -------
    dict
        ``responses`` (K, L), ``filters`` (K, N, W), ``threshold`` and, per pattern, ``centres`` and
        ``scores`` (peak bins and heights of ``find_peaks(response, distance=W)``).
    """
    import torch
    from scipy.signal import find_peaks

    raster = np.asarray(raster)
    n_neurons = raster.shape[0]
    matrix, matrix_t = _operator(raster, width)
    rng = np.random.default_rng(seed)
    generator = torch.Generator().manual_seed(int(rng.integers(0, 2**63 - 1)))
    with torch.no_grad():
        random = torch.softmax(torch.randn((N_RANDOM_FILTERS, n_neurons, width), generator=generator), dim=-1)
        random_responses = _responses(random, matrix, matrix_t)
        threshold = float(random_responses.mean(dim=1).mean() + 5.0 * random_responses.std(dim=1).mean())
    logits = torch.randn((n_patterns, n_neurons, width), generator=generator)
    tv_weight = 0.005 * float(width) ** 2
    first, second = torch.zeros_like(logits), torch.zeros_like(logits)
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    for step in range(1, epochs + 1):
        logits.requires_grad_(True)
        losses = _loss(_responses(torch.softmax(logits, dim=-1), matrix, matrix_t), tv_weight)
        (grad,) = torch.autograd.grad(losses.sum(), logits)
        logits = logits.detach()
        with torch.no_grad():
            first.mul_(beta1).add_(grad, alpha=1 - beta1)
            second.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            logits -= LR * (first / (1 - beta1**step)) / ((second / (1 - beta2**step)).sqrt() + eps)
    with torch.no_grad():
        filters = torch.softmax(logits, dim=-1)
        responses = _responses(filters, matrix, matrix_t).numpy()
    centres, scores = [], []
    for response in responses:
        peaks, _ = find_peaks(response, distance=width)
        centres.append(peaks.astype(float))
        scores.append(response[peaks].astype(float))
    return {"responses": responses, "filters": filters.numpy(), "threshold": threshold, "centres": centres,
            "scores": scores}
