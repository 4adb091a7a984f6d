"""The Examples sections of the docstrings run under pytest (``--doctest-modules`` over ``convseq_neo``).

They share one generated ``recording`` and one fitted ``result`` through ``doctest_namespace``
(convseq_neo/conftest.py). These tests check that set-up: pytest is configured to run the
docstrings, every public module has examples to run, and the shared objects are what the
docstrings say they are (the calls of :func:`convseq_neo.detect`'s example).
"""

import doctest
import importlib
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Modules users read: each has an Examples section somewhere (internals such as convseq_neo.core.training need not).
PUBLIC_MODULES = [
    "convseq_neo.detect",
    "convseq_neo.result",
    "convseq_neo.raster",
    "convseq_neo.core.estimator",
    "convseq_neo.core.tasks",
    "convseq_neo.core.distributed",
    "convseq_neo.io.neo",
    "convseq_neo.io.nwb",
    "convseq_neo.io.nwb_batch",
    "convseq_neo.io.safe_write",
    "convseq_neo.io.file_lock",
    "convseq_neo.io.datasets",
    "convseq_neo.io.model_file",
    "convseq_neo.io.intervals",
    "convseq_neo.io.spikeinterface",
    "convseq_neo.io.pynapple",
    "convseq_neo.synthetic.generate",
    "convseq_neo.synthetic.session",
    "convseq_neo.synthetic.evaluate",
    "convseq_neo.synthetic.null_suite",
    "convseq_neo.plot.figures",
    "convseq_neo.analysis.placefields",
    "convseq_neo.analysis.replication",
    "convseq_neo.analysis.rank_order",
]


def test_pytest_runs_the_package_docstrings():
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    options = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert "convseq_neo" in options["testpaths"]
    assert "--doctest-modules" in options["addopts"].split()
    assert set(options["doctest_optionflags"].split()) == {"ELLIPSIS", "NORMALIZE_WHITESPACE"}
    assert (ROOT / "convseq_neo" / "conftest.py").is_file()
    assert not list((ROOT / "convseq_neo").rglob("*.ipynb"))  # nbmake collects notebooks only


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_public_module_has_examples(name):
    module = importlib.import_module(name)
    assert sum(len(test.examples) for test in doctest.DocTestFinder().find(module)) > 0


def test_shared_objects_are_the_calls_of_detects_example(monkeypatch):
    """Replay detect's example with sequence_recording and detect recorded, not run, and compare the calls."""
    conftest = importlib.import_module("convseq_neo.conftest")
    detect_module = importlib.import_module("convseq_neo.detect")
    generate = importlib.import_module("convseq_neo.synthetic.generate")
    calls = {}

    def recorder(name):
        def record(*args, **kwargs):
            calls[name] = (args, kwargs)
            return SimpleNamespace(spiketrains=f"{name}'s spike trains")
        return record

    [test] = [t for t in doctest.DocTestFinder().find(detect_module) if t.name.endswith(".detect") and t.examples]
    monkeypatch.setattr(generate, "sequence_recording", recorder("sequence_recording"))
    monkeypatch.setattr(detect_module, "detect", recorder("detect"))
    namespace = {}
    for example in test.examples:
        exec(compile(example.source, "<detect example>", "exec"), namespace)
        if "detect" in calls:
            break
    assert calls["sequence_recording"] == ((), conftest.RECORDING_OPTIONS)
    assert calls["detect"] == (("sequence_recording's spike trains",), conftest.DETECT_OPTIONS)
    assert {"recording", "result"} <= set(namespace)  # the names the other docstrings use
