"""The convSeq loss: its hand-written gradient against autograd on the formula it implements."""

import pytest
import torch

from convseq_neo.core.objective import MaskedLoss, convseq_loss


def reference_loss(responses, train_mask, explained_mask, tv_weight, explained_weight):
    """The loss written term by term, differentiated by autograd."""
    weights = (train_mask & ~explained_mask).to(responses.dtype)
    n_weights = weights.sum(dim=1).clamp_min(1.0)
    mean = (weights * responses).sum(dim=1, keepdim=True) / n_weights[:, None]
    variance = (weights * (responses - mean) ** 2).sum(dim=1) / n_weights
    pairs = weights[:, 1:] * weights[:, :-1]
    smoothness = (pairs * torch.diff(responses, dim=1) ** 2).sum(dim=1) / pairs.sum(dim=1).clamp_min(1.0)
    penalty = ((train_mask & explained_mask).to(responses.dtype) * torch.relu(responses - mean) ** 2).sum(dim=1)
    return -variance + tv_weight * smoothness + explained_weight * penalty / n_weights


def masks(n_filters, length, seed):
    generator = torch.Generator().manual_seed(seed)
    train = torch.rand((n_filters, length), generator=generator) < 0.7
    explained = torch.rand((n_filters, length), generator=generator) < 0.2
    train[0] = True  # one filter trained everywhere, nothing explained
    explained[0] = False
    return train, explained


@pytest.mark.parametrize("explained_weight", [0.0, 2.0])
@pytest.mark.parametrize("transposed", [False, True])
def test_value_and_gradient_match_autograd_on_the_formula(explained_weight, transposed):
    train, explained = masks(4, 300, seed=1)
    generator = torch.Generator().manual_seed(2)
    if transposed:  # the response operators return a transposed view of an (L, B) product
        leaf = torch.randn((300, 4), generator=generator, dtype=torch.float64, requires_grad=True)
        responses = leaf.T
    else:
        leaf = torch.randn((4, 300), generator=generator, dtype=torch.float64, requires_grad=True)
        responses = leaf
    scale = torch.arange(1.0, 5.0, dtype=torch.float64)  # a different weight per filter's loss
    loss = MaskedLoss(train, explained, 3.0, explained_weight, torch.float64)
    value = loss(responses)
    (grad,) = torch.autograd.grad((scale * value).sum(), leaf)
    expected_value = reference_loss(responses, train, explained, 3.0, explained_weight)
    (expected_grad,) = torch.autograd.grad((scale * expected_value).sum(), leaf)
    torch.testing.assert_close(value, expected_value, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(grad, expected_grad, rtol=1e-10, atol=1e-12)


def test_gradcheck():
    train, explained = masks(3, 40, seed=3)
    loss = MaskedLoss(train, explained, 0.7, 1.5, torch.float64)
    responses = torch.randn((3, 40), generator=torch.Generator().manual_seed(4), dtype=torch.float64,
                            requires_grad=True)
    assert torch.autograd.gradcheck(loss, (responses,))


def test_convseq_loss_is_the_masked_loss():
    train, explained = masks(2, 100, seed=5)
    responses = torch.randn((2, 100), generator=torch.Generator().manual_seed(6))
    torch.testing.assert_close(convseq_loss(responses, train, explained, 1.0, 1.0),
                               reference_loss(responses, train, explained, 1.0, 1.0))


def test_a_filter_with_no_training_time_has_a_finite_loss_and_no_gradient():
    train = torch.zeros((1, 50), dtype=torch.bool)
    responses = torch.randn((1, 50), dtype=torch.float64, requires_grad=True)
    value = MaskedLoss(train, torch.zeros_like(train), 1.0, 1.0, torch.float64)(responses)
    (grad,) = torch.autograd.grad(value.sum(), responses)
    assert torch.isfinite(value).all()
    assert torch.count_nonzero(grad) == 0
