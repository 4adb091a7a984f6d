"""Training from lag correlations: the correlations, the loss they give, and which spikes each model sees."""

import numpy as np
import pytest
import torch

from convseq_neo import ConvSeq
from convseq_neo.core.correlations import CorrelationObjective, anchor_runs, lag_correlations
from convseq_neo.core.crossfit import fold_regions, model_masks
from convseq_neo.core.objective import convseq_loss
from convseq_neo.core.response import ToeplitzResponse, response_length
from convseq_neo.core.significance import random_filter_threshold
from convseq_neo.raster import SpikeRaster


def _raster(seed=0, n_neurons=8, n_bins=4000, rate=0.08):
    rng = np.random.default_rng(seed)
    dense = (rng.random((n_neurons, n_bins)) < rate) * rng.integers(1, 3, (n_neurons, n_bins))
    return dense, SpikeRaster.from_dense(dense)


def test_lag_correlations_equal_the_direct_sums():
    dense, raster = _raster()
    runs = [(40, 1500), (1700, 1790), (2500, 3950)]
    max_lag = 9
    got = lag_correlations(raster, runs, max_lag).numpy()
    anchors = np.concatenate([np.arange(a, b) for a, b in runs])
    for lag in range(-max_lag, max_lag + 1):
        direct = dense[:, anchors + lag] @ dense[:, anchors].T
        np.testing.assert_allclose(got[:, :, max_lag + lag], direct, rtol=1e-5, atol=1e-3)


def test_anchor_runs_read_only_what_the_masked_responses_read():
    width = 12
    mask = np.zeros(500, dtype=bool)
    mask[100:300] = True
    mask[320:330] = True  # too short for an anchor
    (low, high), = anchor_runs(mask, width)
    half = width // 2
    # pairs anchored in [low, high) at lags up to W read bins [low - W, high + W)
    assert low - width >= 100 - half
    assert high - 1 + width <= 300 - half + width - 2


def _losses_both_ways(raster, width, masks, n_per_model=2, seed=0):
    tv = 0.005 * width**2
    objective = CorrelationObjective(raster, width, masks, tv)
    generator = torch.Generator().manual_seed(seed)
    filters = torch.softmax(3 * torch.randn((masks.shape[0] * n_per_model, raster.n_neurons, width),
                                            generator=generator), dim=-1)
    op = ToeplitzResponse(raster, width, torch.device("cpu"), torch.float32)
    train = torch.as_tensor(np.repeat(masks, n_per_model, axis=0))
    a = filters.clone().requires_grad_(True)
    b = filters.clone().requires_grad_(True)
    from_correlations = objective.losses(a)
    from_responses = convseq_loss(op(b), train, torch.zeros_like(train), tv, 0.0)
    (grad_a,) = torch.autograd.grad(from_correlations.sum(), a)
    (grad_b,) = torch.autograd.grad(from_responses.sum(), b)
    return from_correlations.detach(), from_responses.detach(), grad_a, grad_b


def test_loss_and_gradient_match_the_response_based_loss():
    _, raster = _raster(n_bins=20000)
    width = 16
    length = response_length(raster.n_bins, width)
    masks = model_masks(length, fold_regions(length, 3), width)
    corr, resp, grad_corr, grad_resp = _losses_both_ways(raster, width, masks)
    # the two differ only within W bins of each run's ends
    np.testing.assert_allclose(corr.numpy(), resp.numpy(), rtol=0.03, atol=2e-3 * float(resp.abs().max()))
    cosine = float((grad_corr * grad_resp).sum() / (grad_corr.norm() * grad_resp.norm()))
    assert cosine > 0.99


def test_a_fold_model_never_sees_its_test_region():
    dense, raster = _raster(n_bins=6000)
    width = 20
    length = response_length(raster.n_bins, width)
    regions = fold_regions(length, 3)
    masks = model_masks(length, regions, width)
    start, stop = regions[1]
    half = width // 2
    changed = dense.copy()
    # every spike a test window of fold 1 reads: bins [start - W // 2, stop - W // 2 + W - 1)
    changed[:, start - half:stop - half + width - 1] = np.random.default_rng(5).integers(
        0, 3, (dense.shape[0], stop - start + width - 1))
    filters = torch.softmax(torch.randn((masks.shape[0], raster.n_neurons, width),
                                        generator=torch.Generator().manual_seed(1)), dim=-1)
    before = CorrelationObjective(raster, width, masks, 2.0).losses(filters)
    after = CorrelationObjective(SpikeRaster.from_dense(changed), width, masks, 2.0).losses(filters)
    assert float(before[2]) == pytest.approx(float(after[2]), rel=1e-5)  # fold 1's model: unchanged
    assert float(before[0]) != pytest.approx(float(after[0]), rel=1e-3)  # the all-data model sees it


def test_reference_threshold_agrees_with_the_responses():
    _, raster = _raster(n_bins=20000)
    width = 16
    length = response_length(raster.n_bins, width)
    objective = CorrelationObjective(raster, width, np.ones((1, length), dtype=bool), 1.0)
    op = ToeplitzResponse(raster, width, torch.device("cpu"), torch.float32)
    generator = torch.Generator().manual_seed(3)
    expected = random_filter_threshold(op, 64, generator)
    generator = torch.Generator().manual_seed(3)
    logits = torch.randn((64, raster.n_neurons, width), generator=generator)
    assert objective.reference_threshold(torch.softmax(logits, dim=-1)) == pytest.approx(expected, rel=0.01)


def _planted(seed=0, n_neurons=40, n_bins=12000, width=30, every=300):
    rng = np.random.default_rng(seed)
    dense = (rng.random((n_neurons, n_bins)) < 0.01).astype(int)
    members = np.arange(20)
    starts = np.arange(100, n_bins - 100, every)
    for start in starts:
        dense[members, start + members] = 1
    return dense, starts + members.mean()


def test_recentring_moves_a_sequence_filter_to_the_window_centre():
    dense, _ = _planted()
    raster = SpikeRaster.from_dense(dense)
    width = 60
    length = response_length(raster.n_bins, width)
    objective = CorrelationObjective(raster, width, np.ones((1, length), dtype=bool), 1.0)
    filters = np.full((1, raster.n_neurons, width), 0.1 / (width - 1))
    for neuron in range(20):  # the sequence's lags 0..19, placed at window bins 5..24: centre 14.5
        filters[0, neuron] = 0.1 / (width - 1)
        filters[0, neuron, 5 + neuron] = 0.9
    filters /= filters.sum(axis=-1, keepdims=True)
    shift = objective.recenter_shifts(torch.as_tensor(filters, dtype=torch.float32))
    assert abs(int(shift[0]) - round((width - 1) / 2 - 14.5)) <= 1


def test_a_fit_from_correlations_finds_a_planted_sequence_and_is_reproducible():
    dense, centres = _planted()
    kwargs = dict(width=30, max_epochs=300, min_epochs=100, n_surrogates=40, n_folds=3, random_state=0,
                  training="correlations")
    model = ConvSeq(**kwargs).fit(dense)
    assert model.training_ == "correlations"
    found = model.occurrences_[model.occurrences_["significant"]]["center"].to_numpy()
    hits = sum(np.min(np.abs(found - c)) <= 5 for c in centres) if found.size else 0
    assert hits >= 0.9 * centres.size
    assert found.size <= centres.size + 2
    again = ConvSeq(**kwargs).fit(dense)
    np.testing.assert_array_equal(model.filters_, again.filters_)
    assert set(model.timings_) == {"training", "significance", "membership", "total"}
    assert model.n_filter_passes_ > 0


def test_auto_keeps_small_recordings_on_responses():
    dense, _ = _planted(n_bins=3000)
    model = ConvSeq(width=30, max_epochs=5, min_epochs=0, n_surrogates=5, n_folds=2, random_state=0).fit(dense)
    assert model.training_ == "responses"


@pytest.mark.parametrize("value", ["gram", 3, None])
def test_training_must_be_a_known_kind(value):
    with pytest.raises(ValueError, match="training must be one of"):
        ConvSeq(training=value).check_params()


@pytest.mark.parametrize("value", [0, -2, 1.5, "2", True])
def test_n_jobs_must_be_a_positive_int(value):
    with pytest.raises(ValueError, match="n_jobs"):
        ConvSeq(n_jobs=value).check_params()


def test_n_jobs_sets_the_threads_of_the_fit_only():
    dense, _ = _planted(n_bins=3000)
    before = torch.get_num_threads()
    seen = []
    original = ConvSeq._fit

    def spy(self, raster, client=None):
        seen.append(torch.get_num_threads())
        return original(self, raster, client)

    ConvSeq._fit = spy
    try:
        ConvSeq(width=30, max_epochs=3, min_epochs=0, n_surrogates=3, n_folds=2, n_jobs=1, random_state=0).fit(dense)
    finally:
        ConvSeq._fit = original
    assert seen == [1]
    assert torch.get_num_threads() == before


def test_the_coarse_stage_approximates_the_loss_at_coarser_bins():
    rng = np.random.default_rng(0)
    n_neurons, n_bins, width, factor = 8, 30000, 60, 3
    dense = (rng.random((n_neurons, n_bins)) < 0.05).astype(int)
    for start in range(100, n_bins - 100, 300):
        dense[np.arange(8), start + 5 * np.arange(8)] = 1
    raster = SpikeRaster.from_dense(dense)
    length = response_length(n_bins, width)
    objective = CorrelationObjective(raster, width, np.ones((1, length), dtype=bool), 0.005 * width**2,
                                     coarse_factor=factor)
    coarse = objective.coarse
    assert coarse.width == width // factor
    logits = torch.randn((4, n_neurons, coarse.width), generator=torch.Generator().manual_seed(0))
    filters = torch.softmax(logits, dim=-1)
    binned = SpikeRaster.from_dense(dense.reshape(n_neurons, n_bins // factor, factor).sum(axis=-1))
    op = ToeplitzResponse(binned, coarse.width, torch.device("cpu"), torch.float32)
    times = torch.ones((4, response_length(binned.n_bins, coarse.width)), dtype=torch.bool)
    expected = convseq_loss(op(filters), times, ~times, coarse.tv_weight, 0.0)
    np.testing.assert_allclose(coarse.losses(filters).numpy(), expected.numpy(), rtol=0.2)
