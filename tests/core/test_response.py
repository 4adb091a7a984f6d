"""The event-driven and dense responses agree, values and gradients, edges included."""

import numpy as np
import pytest
import torch

from convseq_neo.core.response import (
    DenseResponse,
    StreamingResponse,
    ToeplitzResponse,
    make_response,
    response_length,
)
from convseq_neo.raster import SpikeRaster

OPERATORS = [ToeplitzResponse, StreamingResponse]


def _random_raster(rng, n_neurons, n_bins, density, max_count=3):
    counts = (rng.random((n_neurons, n_bins)) < density) * rng.integers(1, max_count + 1, (n_neurons, n_bins))
    counts[0, 0] = 2  # spikes on both recording edges
    counts[-1, -1] = 1
    return SpikeRaster.from_dense(counts)


def _direct_response(dense, filters):
    """The definition, written out: x[t] = sum_n sum_j F[n, j] X[n, t - W//2 + j]."""
    n_filters, _, width = filters.shape
    length = response_length(dense.shape[1], width)
    padded = np.pad(dense, ((0, 0), (width // 2, width)))
    out = np.zeros((n_filters, length))
    for t in range(length):
        out[:, t] = np.einsum("knj,nj->k", filters, padded[:, t:t + width])
    return out


@pytest.mark.parametrize("width", [2, 7, 10, 33])
@pytest.mark.parametrize("operator", OPERATORS)
def test_event_response_matches_definition(operator, width):
    rng = np.random.default_rng(width)
    raster = _random_raster(rng, 9, 80, 0.08)
    filters = torch.softmax(torch.as_tensor(rng.normal(size=(3, 9, width))), dim=-1)
    expected = _direct_response(raster.to_dense().astype(float), filters.numpy())
    got = operator(raster, width, torch.device("cpu"), torch.float64)(filters).numpy()
    assert got.shape == (3, response_length(80, width))
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("width", [4, 5, 20, 21])
@pytest.mark.parametrize("operator", OPERATORS)
def test_events_and_dense_agree_in_value_and_gradient(operator, width):
    rng = np.random.default_rng(100 + width)
    raster = _random_raster(rng, 12, 150, 0.05)
    logits = torch.as_tensor(rng.normal(size=(2, 12, width)), dtype=torch.float64)
    weights = torch.as_tensor(rng.normal(size=(2, response_length(150, width))), dtype=torch.float64)
    results = []
    for op in (operator(raster, width, torch.device("cpu"), torch.float64),
               DenseResponse(raster, width, torch.device("cpu"), torch.float64)):
        theta = logits.clone().requires_grad_(True)
        response = op(torch.softmax(theta, dim=-1))
        (grad,) = torch.autograd.grad((response * weights).sum() + response.var(dim=1).sum(), theta)
        results.append((response.detach().numpy(), grad.numpy()))
    (x_events, g_events), (x_dense, g_dense) = results
    np.testing.assert_allclose(x_events, x_dense, rtol=1e-6, atol=1e-10)
    np.testing.assert_allclose(g_events, g_dense, rtol=1e-6, atol=1e-10)


def test_wrong_filter_shape_is_rejected():
    raster = SpikeRaster.from_dense(np.eye(3, 20, dtype=int))
    op = ToeplitzResponse(raster, 4, torch.device("cpu"), torch.float64)
    with pytest.raises(ValueError, match="filters must have shape"):
        op(torch.ones(1, 3, 5))


def test_auto_picks_events_for_sparse_and_never_densifies_huge(caplog, monkeypatch):
    sparse = SpikeRaster(np.array([0, 1]), np.array([3, 9]), np.array([1, 1]), 50, 1000)
    assert make_response(sparse, 10).name == "events"
    dense = SpikeRaster.from_dense((np.random.default_rng(0).random((5, 100)) < 0.5).astype(int))
    # on the CPU a dense raster stays on the sparse Toeplitz product while that fits
    assert make_response(dense, 10).name == "events"
    import convseq_neo.core.response as response_module

    monkeypatch.setattr(response_module, "MAX_TOEPLITZ_ENTRIES", 10)
    assert make_response(dense, 10).name == "dense"
    monkeypatch.setattr(response_module, "MAX_DENSE_CELLS", 100)
    assert make_response(dense, 10).name == "events"


def test_streaming_is_used_above_the_toeplitz_budget(monkeypatch):
    import convseq_neo.core.response as response_module

    raster = SpikeRaster.from_dense(np.eye(4, 30, dtype=int))
    monkeypatch.setattr(response_module, "MAX_TOEPLITZ_ENTRIES", 1)
    assert isinstance(make_response(raster, 5, backend="events"), StreamingResponse)
