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


# --- nelpy's linear-track tetrode recording (load_nelpy_linear_track) ----------------------------------------------
NELPY_FILES = [remote.name for remote in datasets._NELPY_FILES.values()]


@pytest.fixture(scope="module")
def nelpy_data_dir() -> Path:
    """The folder holding the linear-track files, found as the CA1 files are (``$CONVSEQ_DATA_DIR``, else
    ``../shared/data``; in its ``nelpy_linear_track/`` subfolder or itself). Missing: skip, or fail in CI."""
    conftest = top_conftest()
    folder = conftest.data_dir()
    for candidate in (folder / datasets.NELPY_LINEAR_TRACK_SUBFOLDER, folder):
        if all((candidate / name).is_file() for name in NELPY_FILES):
            return candidate
    message = (f"linear-track data not found: {', '.join(NELPY_FILES)} missing from {folder} and its "
               f"{datasets.NELPY_LINEAR_TRACK_SUBFOLDER}/ subfolder ({datasets.DATA_DIR_ENV}="
               f"{os.environ.get(datasets.DATA_DIR_ENV, '<unset>')}); put the files there or set "
               f"{datasets.DATA_DIR_ENV} to the folder that holds them.")
    if conftest.in_ci():
        pytest.fail(f"{message} CI is set, so missing data is a failure, not a skip.", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="module")
def nelpy_segment(nelpy_data_dir):
    return datasets.load_nelpy_linear_track(nelpy_data_dir, download=False)


def test_nelpy_units_counts_and_bounds(nelpy_segment):
    trains = nelpy_segment.spiketrains
    assert len(trains) == 31
    assert sum(len(train) for train in trains) == 28_829
    names = [train.name for train in trains]
    assert len(set(names)) == 31 and names[0] == "tt1_u1"
    for index, train in enumerate(trains):
        assert train.name == f"tt{train.annotations['tetrode']}_u{train.annotations['unit']}"
        assert train.annotations["unit_index"] == index
        assert 1 <= train.annotations["tetrode"] <= 13
        assert len(train) > 0 and np.all(np.diff(train.magnitude) >= 0)
        assert train.units == pq.s
    assert len({(train.t_start.item(), train.t_stop.item()) for train in trains}) == 1
    first = min(float(train[0]) for train in trains)
    last = max(float(train[-1]) for train in trains)
    assert first == pytest.approx(4397.0023) and last == pytest.approx(6365.1473, abs=1e-4)
    # t_start: the first spike (before the first position sample); t_stop: the last position sample
    assert float(trains[0].t_start) == first
    assert float(trains[0].t_stop) == pytest.approx(6379.4556)


def test_nelpy_position_signals(nelpy_segment, nelpy_data_dir):
    x, y = nelpy_segment.irregularlysampledsignals
    assert (x.name, y.name) == ("position_x", "position_y")
    assert x.shape == y.shape == (118_965, 1)
    assert float(x.times[0]) == pytest.approx(4397.0317) and float(x.times[-1]) == pytest.approx(6379.4556)
    assert x.annotations["position_units"] == nelpy_segment.annotations["position_units"] == "pixel"
    assert 133 <= x.magnitude.min() and x.magnitude.max() <= 554 and float(x[-1, 0]) == 522
    raw = datasets._read_position_tracking(nelpy_data_dir / NELPY_FILES[1])
    np.testing.assert_array_equal(x.magnitude.ravel(), raw["x"])
    np.testing.assert_array_equal(y.magnitude.ravel(), raw["y"])
    assert not raw["x2"].any() and not raw["y2"].any()  # one LED tracked
    assert "nelpy" in nelpy_segment.annotations["citation"] and "MIT" in nelpy_segment.annotations["licence"]


def test_nelpy_run_and_rest_epochs(nelpy_segment):
    run, rest = nelpy_segment.epochs
    assert (run.name, rest.name) == ("run", "rest") and list(run.labels) == ["run"]
    t_start, t_stop = (float(nelpy_segment.spiketrains[0].t_start), float(nelpy_segment.spiketrains[0].t_stop))
    rest_start = float(rest.times[0])
    assert 5300 < rest_start < 5420
    assert float(run.times[0]) == t_start
    assert float(run.times[0] + run.durations[0]) == pytest.approx(rest_start)
    assert float(rest.times[0] + rest.durations[0]) == pytest.approx(t_stop)
    assert nelpy_segment.annotations["rest_start_s"] == rest_start
    # the rule, checked on the data: x stays within 5 px of its final value from rest_start on, not just before
    x = nelpy_segment.irregularlysampledsignals[0]
    times, values = x.times.magnitude, x.magnitude.ravel()
    assert np.all(np.abs(values[times >= rest_start] - values[-1]) <= 5)
    assert abs(values[times < rest_start][-1] - values[-1]) > 5
    assert datasets.final_rest_start(x.times, x) == rest_start


def test_final_rest_start_rule():
    times = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert datasets.final_rest_start(times, [522, 100, 300, 520, 524, 522]) == 3.0
    assert datasets.final_rest_start(times, [522, 100, 300, 520, 524, 522], tolerance=0) == 5.0
    assert datasets.final_rest_start(times, [522, 520, 524, 522, 522, 522]) == 0.0  # never moved: all rest
    assert datasets.final_rest_start(np.array(times) * 1000 * pq.ms, [1, 2, 3, 4, 5, 6], tolerance=0) == 5.0
    with pytest.raises(ValueError, match="same length"):
        datasets.final_rest_start(times, [1, 2])
    with pytest.raises(ValueError, match="tolerance"):
        datasets.final_rest_start(times, times, tolerance=-1)


def _tracking_file(path: Path, records: list[tuple[int, int, int]], clockrate: int = 30_000) -> Path:
    header = (f"<Start settings>\nthreshold: 199\ndark: 0\nclockrate: {clockrate}\ncamera resolution: 640x480\n"
              "pixel scale: 0 pix/cm\nFields: <time uint32><xloc uint16><yloc uint16><xloc2 uint16><yloc2 uint16>\n"
              "<End settings>\n")
    body = b"".join(np.array([(t, x, y, 0, 0)], dtype=datasets._POSITION_RECORD).tobytes() for t, x, y in records)
    path.write_bytes(header.encode("ascii") + body)
    return path


def test_position_parser_on_a_tiny_file(tmp_path):
    records = [(131_910_951, 134, 300), (131_911_451, 522, 8), (4_294_967_295, 65_535, 0)]
    parsed = datasets._read_position_tracking(_tracking_file(tmp_path / "tiny.videoPositionTracking", records))
    assert parsed["clockrate"] == 30_000
    np.testing.assert_allclose(parsed["time_s"], [131_910_951 / 30_000, 131_911_451 / 30_000, 4_294_967_295 / 30_000])
    np.testing.assert_array_equal(parsed["x"], [134, 522, 65_535])
    np.testing.assert_array_equal(parsed["y"], [300, 8, 0])
    np.testing.assert_array_equal(parsed["x2"], [0, 0, 0])
    other_clock = datasets._read_position_tracking(_tracking_file(tmp_path / "b", records[:1], clockrate=1000))
    np.testing.assert_allclose(other_clock["time_s"], [131_910.951])
    truncated = tmp_path / "truncated"
    truncated.write_bytes((tmp_path / "tiny.videoPositionTracking").read_bytes()[:-1])
    with pytest.raises(ValueError, match="not whole 12-byte records"):
        datasets._read_position_tracking(truncated)
    no_header = tmp_path / "no_header"
    no_header.write_bytes(b"\x00" * 24)
    with pytest.raises(ValueError, match="End settings"):
        datasets._read_position_tracking(no_header)


def test_nelpy_files_found_in_the_folder_or_its_subfolder(tmp_path, monkeypatch, no_network, nelpy_data_dir):
    monkeypatch.delenv(datasets.DATA_DIR_ENV, raising=False)
    for name in NELPY_FILES:
        shutil.copy(nelpy_data_dir / name, tmp_path / name)
    assert datasets.fetch_nelpy_linear_track(tmp_path)["spikes"] == tmp_path / NELPY_FILES[0]
    parent = tmp_path / "parent"
    (parent / datasets.NELPY_LINEAR_TRACK_SUBFOLDER).mkdir(parents=True)
    for name in NELPY_FILES:
        shutil.copy(nelpy_data_dir / name, parent / datasets.NELPY_LINEAR_TRACK_SUBFOLDER / name)
    monkeypatch.setenv(datasets.DATA_DIR_ENV, str(parent))
    assert datasets.fetch_nelpy_linear_track()["position"] == parent / datasets.NELPY_LINEAR_TRACK_SUBFOLDER / \
        NELPY_FILES[1]


def test_nelpy_missing_file_without_download_says_where_to_put_it(tmp_path, monkeypatch, no_network):
    monkeypatch.delenv(datasets.DATA_DIR_ENV, raising=False)
    with pytest.raises(FileNotFoundError, match="CONVSEQ_DATA_DIR") as info:
        datasets.load_nelpy_linear_track(tmp_path, download=False)
    assert "raw.githubusercontent.com/nelpy/example-data" in str(info.value)
    assert datasets.NELPY_LINEAR_TRACK_SUBFOLDER in str(info.value)
    with pytest.raises(OSError, match="could not download .*CONVSEQ_DATA_DIR"):
        datasets.load_nelpy_linear_track(tmp_path)
    with pytest.raises(TypeError, match="download"):
        datasets.fetch_nelpy_linear_track(tmp_path, download=1)


def test_nelpy_damaged_copy_is_an_error_not_replaced(tmp_path, monkeypatch, no_network, nelpy_data_dir):
    monkeypatch.delenv(datasets.DATA_DIR_ENV, raising=False)
    folder = tmp_path / datasets.NELPY_LINEAR_TRACK_SUBFOLDER
    folder.mkdir()
    for name in NELPY_FILES:
        shutil.copy(nelpy_data_dir / name, folder / name)
    damaged = folder / NELPY_FILES[1]
    damaged.chmod(0o644)
    damaged.write_bytes(damaged.read_bytes()[:-1] + bytes([damaged.read_bytes()[-1] ^ 0xFF]))
    before = damaged.read_bytes()
    with pytest.raises(ValueError, match="sha256"):
        datasets.load_nelpy_linear_track(tmp_path)
    assert damaged.read_bytes() == before
