"""The test suite's own scheduling (the repository's conftest.py): the files it names exist."""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def suite():
    spec = importlib.util.spec_from_file_location("repository_conftest", ROOT / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_file_named_by_the_scheduling_exists(suite):
    named = list(suite.SLOWEST_FIRST) + list(suite.SHARED_FIXTURE_GROUPS)
    missing = [path for path in named if not (ROOT / path).is_file()]
    assert not missing, f"conftest.py names files that no longer exist: {missing}"


def test_slowest_files_are_listed_once(suite):
    assert len(set(suite.SLOWEST_FIRST)) == len(suite.SLOWEST_FIRST)
