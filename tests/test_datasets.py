"""convseq_neo.io.datasets: local lookup by hash, no network when the files are there, clear errors."""

import shutil

import numpy as np
import pytest
import quantities as pq
import scipy.io
from conftest import CA1_ACTIVITY, DATA_DIR

from convseq_neo.io import datasets
from convseq_neo.io.neo import to_raster

pytestmark = pytest.mark.skipif(not CA1_ACTIVITY.exists(), reason=f"CA1 data not found in {DATA_DIR}")

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
def segment():
    return datasets.load_rubin_ca1(DATA_DIR, download=False)


def test_segment_matches_the_published_matrix(segment):
    published = scipy.io.loadmat(CA1_ACTIVITY)["neuronal_activity_mat"]
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


def test_position_signal_and_citation(segment):
    position = segment.analogsignals[0]
    published = scipy.io.loadmat(DATA_DIR / FILES[1])["position_per_frame"].ravel()
    assert position.name == "position"
    assert position.units == pq.cm
    assert float(position.sampling_rate.rescale(pq.Hz)) == pytest.approx(20.0)
    np.testing.assert_allclose(position.magnitude.ravel() / 4 + 0.5, published)
    assert "Rubin" in segment.annotations["citation"] and "2019" in segment.annotations["citation"]
    assert "Koshkin" in segment.annotations["convseq_citation"]


def test_environment_variable_is_searched(monkeypatch, no_network):
    monkeypatch.setenv(datasets.DATA_DIR_ENV, str(DATA_DIR))
    paths = datasets.fetch_rubin_ca1()
    assert paths["activity"] == DATA_DIR / FILES[0]


def test_argument_comes_before_environment(tmp_path, monkeypatch, no_network):
    for name in FILES:
        shutil.copy(DATA_DIR / name, tmp_path / name)
    monkeypatch.setenv(datasets.DATA_DIR_ENV, str(DATA_DIR))
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


def test_damaged_copy_is_an_error_not_replaced(tmp_path, monkeypatch, no_network):
    monkeypatch.delenv(datasets.DATA_DIR_ENV, raising=False)
    for name in FILES:
        shutil.copy(DATA_DIR / name, tmp_path / name)
    damaged = tmp_path / FILES[1]
    damaged.chmod(0o644)
    damaged.write_bytes(damaged.read_bytes()[:-1] + b"\x00")
    before = damaged.read_bytes()
    with pytest.raises(ValueError, match="sha256"):
        datasets.load_rubin_ca1(tmp_path)
    assert damaged.read_bytes() == before


def test_bad_arguments():
    with pytest.raises(TypeError, match="data_home"):
        datasets.load_rubin_ca1(42)
    with pytest.raises(TypeError, match="download"):
        datasets.fetch_rubin_ca1(DATA_DIR, download="no")
