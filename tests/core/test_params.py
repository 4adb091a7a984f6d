"""ConvSeq's scikit-learn parameter contract: get_params, set_params and check_params."""

import inspect

import pytest

from convseq_neo import ConvSeq


def test_get_params_names_every_init_parameter_and_round_trips():
    model = ConvSeq(n_patterns=3, width=60, alpha=0.01, significance="random_filters", random_state=7)
    params = model.get_params()
    assert list(params) == [name for name in inspect.signature(ConvSeq.__init__).parameters if name != "self"]
    assert params["n_patterns"] == 3 and params["width"] == 60 and params["random_state"] == 7
    assert ConvSeq(**params).get_params() == params
    assert ConvSeq().set_params(**params).get_params() == params


def test_set_params_sets_and_returns_self():
    model = ConvSeq()
    assert model.set_params(width=60, n_patterns=2) is model
    assert (model.width, model.n_patterns) == (60, 2)


@pytest.mark.parametrize(("params", "error", "match"), [
    ({"widht": 60}, TypeError, "widht"),
    ({"width": 60, "unknown": 1}, TypeError, "unknown"),
    ({"width": 60, "alpha": 2.0}, ValueError, "alpha"),
    ({"n_patterns": 0}, ValueError, "n_patterns"),
    ({"significance": "magic"}, ValueError, "significance"),
])
def test_set_params_rejects_and_leaves_the_model_unchanged(params, error, match):
    model = ConvSeq(width=40, n_patterns=2)
    before = model.get_params()
    with pytest.raises(error, match=match):
        model.set_params(**params)
    assert model.get_params() == before
