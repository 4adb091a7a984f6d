"""convseq_neo.io.datasets: local lookup by hash, no network when the files are there, clear errors;
and the test suite's own rule for the data: skip when it is missing, fail in CI."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import quantities as pq
import scipy.io

from convseq_neo.io import datasets
from convseq_neo.io.neo import to_raster

ROOT = Path(__file__).resolve().parents[1]
FILES = [remote.name for remote in datasets._RUBIN_CA1_FILES.values()]


@pytest.fixture
def no_network(monkeypatch):
    """Any download attempt fails the way an offline machine fails."""
    pooch = pytest.importorskip("pooch")

    def refuse(*args, **kwargs):
        raise ConnectionError("network unreachable (test)")

    monkeypatch.setattr(pooch, "retrieve", refuse)
    monkeypatch.setattr(datasets, "_cache_dir", lambda: None)


@pytest.fixture(scope="module")
def segment(ca1_data_dir):
    return datasets.load_rubin_ca1(ca1_data_dir, download=False)


def test_segment_matches_the_published_matrix(segment, ca1_data_dir):
    published = scipy.io.loadmat(ca1_data_dir / FILES[0])["neuronal_activity_mat"]
    assert len(segment.spiketrains) == published.shape[0] == 452
    assert float(segment.t_stop.rescale(pq.s)) == pytest.approx(18_137 * 0.05)
    raster = to_raster(segment.spiketrains, bin_size=50 * pq.ms)
    assert raster.n_bins == published.shape[1]
    np.testing.assert_array_equal(raster.to_dense(), published)


def test_events_sit_at_frame_starts(segment):
    times = np.concatenate([train.times.rescale(pq.s).magnitude for train in segment.spiketrains])
    frames = times / 0.05
    np.testing.assert_allclose(frames, np.round(frames), atol=1e-9)
    assert segment.spiketrains[0].annotations["event_time"] == "frame start"


def test_position_signal_and_citation(segment, ca1_data_dir):
    position = segment.analogsignals[0]
    published = scipy.io.loadmat(ca1_data_dir / FILES[1])["position_per_frame"].ravel()
    assert position.name == "position"
    assert position.units == pq.cm
    assert float(position.sampling_rate.rescale(pq.Hz)) == pytest.approx(20.0)
    np.testing.assert_allclose(position.magnitude.ravel() / 4 + 0.5, published)
    assert "Rubin" in segment.annotations["citation"] and "2019" in segment.annotations["citation"]
    assert "Koshkin" in segment.annotations["convseq_citation"]


def test_environment_variable_is_searched(monkeypatch, no_network, ca1_data_dir):
    monkeypatch.setenv(datasets.DATA_DIR_ENV, str(ca1_data_dir))
    paths = datasets.fetch_rubin_ca1()
    assert paths["activity"] == ca1_data_dir / FILES[0]


def test_argument_comes_before_environment(tmp_path, monkeypatch, no_network, ca1_data_dir):
    for name in FILES:
        shutil.copy(ca1_data_dir / name, tmp_path / name)
    monkeypatch.setenv(datasets.DATA_DIR_ENV, str(ca1_data_dir))
    assert datasets.fetch_rubin_ca1(tmp_path)["position"] == tmp_path / FILES[1]


def test_missing_file_without_download_says_where_to_put_it(tmp_path, monkeypatch, no_network):
    monkeypatch.delenv(datasets.DATA_DIR_ENV, raising=False)
    with pytest.raises(FileNotFoundError, match="CONVSEQ_DATA_DIR") as info:
        datasets.load_rubin_ca1(tmp_path, download=False)
    assert "raw.githubusercontent.com" in str(info.value)


def test_missing_file_offline_says_where_to_put_it(tmp_path, monkeypatch, no_network):
    monkeypatch.delenv(datasets.DATA_DIR_ENV, raising=False)
    with pytest.raises(OSError, match="could not download .*CONVSEQ_DATA_DIR"):
        datasets.load_rubin_ca1(tmp_path)


def test_damaged_copy_is_an_error_not_replaced(tmp_path, monkeypatch, no_network, ca1_data_dir):
    monkeypatch.delenv(datasets.DATA_DIR_ENV, raising=False)
    for name in FILES:
        shutil.copy(ca1_data_dir / name, tmp_path / name)
    damaged = tmp_path / FILES[1]
    damaged.chmod(0o644)
    damaged.write_bytes(damaged.read_bytes()[:-1] + b"\x00")
    before = damaged.read_bytes()
    with pytest.raises(ValueError, match="sha256"):
        datasets.load_rubin_ca1(tmp_path)
    assert damaged.read_bytes() == before


def test_bad_arguments(tmp_path):
    with pytest.raises(TypeError, match="data_home"):
        datasets.load_rubin_ca1(42)
    with pytest.raises(TypeError, match="download"):
        datasets.fetch_rubin_ca1(tmp_path, download="no")


def top_conftest():
    """The repository's top-level conftest.py, loaded under its own name (``conftest`` is taken)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("_top_conftest", ROOT / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_suite_looks_for_the_loaders_files():
    assert list(top_conftest().CA1_FILES) == FILES


@pytest.mark.parametrize(("ci", "fails"), [(None, False), ("", False), ("0", False), ("false", False),
                                           ("FALSE", False), ("true", True), ("1", True), ("yes", True)])
def test_missing_data_fails_only_when_ci_is_set(tmp_path, monkeypatch, ci, fails):
    monkeypatch.setenv(datasets.DATA_DIR_ENV, str(tmp_path))
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    expected = pytest.fail.Exception if fails else pytest.skip.Exception
    with pytest.raises(expected, match=f"missing from {tmp_path} .*CONVSEQ_DATA_DIR"):
        top_conftest().require_ca1()


# --- the suite's rule for missing data, checked on a copy of both conftest files in an empty folder
TINY_TEST = """
def test_needs_the_segment(ca1_segment):
    assert len(ca1_segment.spiketrains) == 452


def test_needs_the_folder(ca1_data_dir):
    assert ca1_data_dir.is_dir()


def test_needs_nothing():
    pass
"""


def _notebook(source: str) -> str:
    return json.dumps({"cells": [{"cell_type": "code", "execution_count": None, "id": "a1", "metadata": {},
                                  "outputs": [], "source": [source]}],
                       "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python",
                                                   "name": "python3"}},
                       "nbformat": 4, "nbformat_minor": 5})


def run_tiny_suite(tmp_path: Path, ci: str | None) -> tuple[subprocess.CompletedProcess, Path, dict]:
    """pytest on a tiny suite whose data folder is empty; returns the run, that folder and the outcomes."""
    project = tmp_path / "project"
    (project / "tests").mkdir(parents=True)
    (project / "notebooks").mkdir()
    shutil.copy(ROOT / "conftest.py", project / "conftest.py")
    shutil.copy(ROOT / "tests" / "conftest.py", project / "tests" / "conftest.py")
    (project / "tests" / "test_tiny.py").write_text(TINY_TEST)
    (project / "notebooks" / "uses_data.ipynb").write_text(_notebook(
        "from convseq_neo.io.datasets import load_rubin_ca1\nsegment = load_rubin_ca1()"))
    (project / "pytest.ini").write_text("[pytest]\n")
    empty = tmp_path / "no data here"
    empty.mkdir()
    report = tmp_path / "report.xml"
    env = {key: value for key, value in os.environ.items() if key != "CI"}
    env[datasets.DATA_DIR_ENV] = str(empty)
    if ci is not None:
        env["CI"] = ci
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rA", "--nbmake",
                           f"--junitxml={report}", "tests", "notebooks"], cwd=project, env=env,
                          capture_output=True, text=True, timeout=300)
    import xml.etree.ElementTree as ET

    outcomes = {}
    for case in ET.parse(report).iter("testcase"):
        kinds = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        outcomes[case.get("name")] = kinds[0] if kinds else "passed"
    return done, empty, outcomes


def test_missing_data_fails_in_ci_and_says_where(tmp_path):
    done, empty, outcomes = run_tiny_suite(tmp_path, "true")
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert outcomes == {"test_needs_the_segment": "error", "test_needs_the_folder": "error",
                        "test_needs_nothing": "passed", "uses_data.ipynb": "error"}, output
    assert output.count(f"missing from {empty}") >= 3, output
    assert "CONVSEQ_DATA_DIR" in output and "notebook uses_data.ipynb needs it" in output, output


def test_missing_data_skips_outside_ci(tmp_path):
    done, empty, outcomes = run_tiny_suite(tmp_path, None)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert outcomes == {"test_needs_the_segment": "skipped", "test_needs_the_folder": "skipped",
                        "test_needs_nothing": "passed", "uses_data.ipynb": "skipped"}, output
    assert f"missing from {empty}" in output and "CONVSEQ_DATA_DIR" in output, output
