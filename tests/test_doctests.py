"""The Examples sections of the public API run as doctests."""

import doctest
import importlib

import pytest

MODULES = ["convseq_neo.raster", "convseq_neo.core.estimator"]  # generate, evaluate, adapters, detect: own tests


@pytest.mark.parametrize("name", MODULES)
def test_examples_run(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
