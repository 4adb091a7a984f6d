"""The CUDA path gives the CPU's answers: responses, gradients and a whole fit (skipped without a GPU)."""

import numpy as np
import pytest
import quantities as pq
import torch

from convseq_neo import ConvSeq
from convseq_neo.core.response import DenseResponse, StreamingResponse, ToeplitzResponse
from convseq_neo.raster import SpikeRaster
from convseq_neo.synthetic.evaluate import match_events
from convseq_neo.synthetic.generate import sequence_recording

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

CUDA = torch.device("cuda")
CPU = torch.device("cpu")


def _raster(seed=0, n_neurons=40, n_bins=3000, density=0.02):
    rng = np.random.default_rng(seed)
    counts = (rng.random((n_neurons, n_bins)) < density) * rng.integers(1, 3, (n_neurons, n_bins))
    return SpikeRaster.from_dense(counts)


@pytest.mark.parametrize("operator", [ToeplitzResponse, StreamingResponse, DenseResponse])
def test_cuda_response_and_gradient_match_cpu(operator):
    raster = _raster()
    width = 25
    rng = np.random.default_rng(1)
    logits = torch.as_tensor(rng.normal(size=(2, raster.n_neurons, width)), dtype=torch.float64)
    weights = torch.as_tensor(rng.normal(size=(2, raster.n_bins + 1)), dtype=torch.float64)
    results = []
    for device in (CPU, CUDA):
        theta = logits.clone().to(device).requires_grad_(True)
        response = operator(raster, width, device, torch.float64)(torch.softmax(theta, dim=-1))
        (response * weights.to(device)[:, :response.shape[1]]).sum().backward()
        results.append((response.detach().cpu().numpy(), theta.grad.cpu().numpy()))
    (cpu_response, cpu_grad), (cuda_response, cuda_grad) = results
    assert cuda_response.shape == cpu_response.shape
    np.testing.assert_allclose(cuda_response, cpu_response, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(cuda_grad, cpu_grad, rtol=1e-10, atol=1e-12)


def test_fit_on_cuda_finds_the_planted_sequence_like_the_cpu():
    recording = sequence_recording(n_neurons=60, n_patterns=1, members_per_pattern=15, duration=90 * pq.s,
                                   bin_size=5 * pq.ms, rate=2 * pq.Hz, lag_step=10 * pq.ms, n_occurrences=30,
                                   participation=0.9, jitter=10 * pq.ms, random_state=2)
    truth = recording.centers_bins(0)
    found = {}
    for device in ("cpu", "cuda"):
        model = ConvSeq(width=60, max_epochs=600, random_state=0, device=device).fit(recording.raster)
        occurrences = model.occurrences_[model.occurrences_["significant"]]
        found[device] = match_events(occurrences["center"].to_numpy(), truth, 15)
    assert found["cuda"].f1 >= 0.9
    assert abs(found["cuda"].f1 - found["cpu"].f1) <= 0.1


def test_same_seed_on_cuda_agrees_to_float_rounding():
    rng = np.random.default_rng(5)
    raster = (rng.random((20, 1500)) < 0.02).astype(int)
    options = dict(width=20, max_epochs=60, min_epochs=10, n_surrogates=20, n_folds=3, random_state=42, device="cuda")
    a = ConvSeq(**options).fit(raster)
    b = ConvSeq(**options).fit(raster)
    np.testing.assert_allclose(a.filters_, b.filters_, atol=1e-5)
    assert a.filters_.shape == (1, 20, 20)
