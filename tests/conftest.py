"""Shared fixtures: small seeded recordings built with convseq_neo.generate."""

import os
from pathlib import Path

import pytest

DATA_DIR = Path(os.environ.get("CONVSEQ_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data"))
CA1_ACTIVITY = DATA_DIR / "ca1_rubin2019_neuronal_activity_mat.mat"


@pytest.fixture(scope="session")
def ca1_raster():
    """The real CA1 raster (452 x 18,137, 50 ms frames), read straight from the data directory."""
    if not CA1_ACTIVITY.exists():
        pytest.skip(f"CA1 data not found in {DATA_DIR} (set CONVSEQ_DATA_DIR)")
    import scipy.io

    return scipy.io.loadmat(CA1_ACTIVITY)["neuronal_activity_mat"].astype(int)


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    """Run torch on one thread: on a small shared machine, two OpenMP threads competing with another
    process for two cores slow every small parallel region down many times over."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
