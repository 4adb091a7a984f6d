"""Shared fixtures: small seeded recordings built with convseq_neo.synthetic.generate."""

import os
from pathlib import Path

import pytest

DATA_DIR = Path(os.environ.get("CONVSEQ_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data"))
CA1_ACTIVITY = DATA_DIR / "ca1_rubin2019_neuronal_activity_mat.mat"


@pytest.fixture(scope="session")
def ca1_segment():
    """The real CA1 recording as a Neo Segment, through the dataset loader (never downloads)."""
    if not CA1_ACTIVITY.exists():
        pytest.skip(f"CA1 data not found in {DATA_DIR} (set CONVSEQ_DATA_DIR)")
    from convseq_neo.io.datasets import load_rubin_ca1

    return load_rubin_ca1(DATA_DIR, download=False)


@pytest.fixture(scope="session")
def ca1_raster(ca1_segment):
    """The real CA1 raster (452 x 18,137, 50 ms frames) as a dense int array."""
    import quantities as pq

    from convseq_neo.io.neo import to_raster

    return to_raster(ca1_segment.spiketrains, bin_size=50 * pq.ms).to_dense().astype(int)


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    """Run torch on one thread: on a small shared machine, two OpenMP threads competing with another
    process for two cores slow every small parallel region down many times over."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
