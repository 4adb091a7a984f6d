"""Shared objects for the Examples sections of the package's docstrings (pytest only).

pytest runs every docstring under ``convseq_neo/`` as a doctest (``--doctest-modules``, see
``[tool.pytest.ini_options]`` in pyproject.toml). Rather than each docstring generating and fitting
its own recording, they share these names through pytest's ``doctest_namespace``, as pynwb's
docstrings share its mocks:

``recording``
    The generated recording of :func:`convseq_neo.detect`'s example: 30 neurons, 40 s, one planted
    pattern of 12 members, 20 occurrences (:func:`doctest_recording`).
``result``
    ``convseq_neo.detect`` on it, with that example's small fit (:func:`doctest_result`).

Each is built once per session, and only when a docstring mentions its name. Treat them as
read-only: a docstring that changes one (labels spikes, say) works on a copy.

This file is not imported by the package; it only configures pytest for the docstrings here.
"""

from __future__ import annotations

import re

import pytest
import quantities as pq
from _pytest.doctest import DoctestItem

#: ``recording`` is ``sequence_recording(**RECORDING_OPTIONS)`` and ``result`` is
#: ``detect(recording.spiketrains, **DETECT_OPTIONS)``: the calls of :func:`convseq_neo.detect`'s example
#: (tests/test_doctests.py checks that they stay the same).
RECORDING_OPTIONS = dict(n_neurons=30, members_per_pattern=12, duration=40 * pq.s, rate=2 * pq.Hz, lag_step=10 * pq.ms,
                         n_occurrences=20, jitter=2 * pq.ms, random_state=1)
DETECT_OPTIONS = dict(bin_size=5 * pq.ms, width=200 * pq.ms, n_patterns=1, random_state=0, max_epochs=200,
                      min_epochs=50, n_surrogates=40, n_folds=3)


@pytest.fixture(scope="session")
def _doctest_torch_thread():
    """One torch thread for the fits in docstrings (as tests/conftest.py does for the tests): on a small
    shared machine, competing OpenMP threads slow every small parallel region down many times over."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def doctest_recording():
    """``recording`` in the docstrings: ``sequence_recording(**RECORDING_OPTIONS)``."""
    from convseq_neo.synthetic.generate import sequence_recording

    return sequence_recording(**RECORDING_OPTIONS)


@pytest.fixture(scope="session")
def doctest_result(doctest_recording, _doctest_torch_thread):
    """``result`` in the docstrings: ``detect(recording.spiketrains, **DETECT_OPTIONS)``."""
    from convseq_neo.detect import detect

    return detect(doctest_recording.spiketrains, **DETECT_OPTIONS)


#: Name in the docstrings -> the fixture that provides it.
SHARED = {"recording": "doctest_recording", "result": "doctest_result"}
#: Words that mark a docstring that fits a model (it then runs torch on one thread).
_FITS = {"detect", "fit", "annotate", "held_out_replication"}
#: ``name = ...`` at the start of an example: the docstring defines ``name`` itself.
_ASSIGNMENT = re.compile(r"\s*(\w+)\s*=(?!=)")


@pytest.fixture(autouse=True)
def _shared_doctest_names(request, doctest_namespace):
    """Put the shared objects a docstring mentions into its namespace (each built on first use)."""
    if not isinstance(request.node, DoctestItem):
        return
    sources = [example.source for example in request.node.dtest.examples]
    words = set(re.findall(r"\w+", " ".join(sources)))
    assigned = {match.group(1) for source in sources for match in [_ASSIGNMENT.match(source)] if match}
    if words & _FITS:
        request.getfixturevalue("_doctest_torch_thread")
    for name, fixture in SHARED.items():
        if name in words and name not in assigned:  # a docstring that makes its own `result` does not need ours
            doctest_namespace[name] = request.getfixturevalue(fixture)
