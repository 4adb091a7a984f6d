"""Shared fixtures: the real CA1 recording and small seeded recordings built with convseq_neo.synthetic.generate.

Where the CA1 files are looked for, and what happens when they are missing (skip; fail in CI), is
the ``ca1_data_dir`` fixture of the repository's top-level ``conftest.py``.
"""

import pytest
import quantities as pq


@pytest.fixture(scope="session")
def ca1_segment(ca1_data_dir):
    """The real CA1 recording as a Neo Segment, through the dataset loader (never downloads)."""
    from convseq_neo.io.datasets import load_rubin_ca1

    return load_rubin_ca1(ca1_data_dir, download=False)


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


#: A recipe the method solves at package defaults, used by the recovery tests of both the core and
#: the front door (one fit each, shared). Not trivial: 100 neurons, participation 0.9, jitter 10 ms
#: (2 bins at 5 ms), and within an occurrence's span (190 ms) each member's 2 Hz background gives
#: 20 x 0.19 x 2 = 7.6 background spikes against 18 planted ones.
PLANTED_RECIPE = {"n_neurons": 100, "members_per_pattern": 20, "duration": 120 * pq.s, "bin_size": 5 * pq.ms,
                  "rate": 2 * pq.Hz, "lag_step": 10 * pq.ms, "n_occurrences": 40, "participation": 0.9,
                  "jitter": 10 * pq.ms}
#: The filter width of those fits: 300 ms = 60 bins (the planted span is 38 bins).
PLANTED_WIDTH = 300 * pq.ms


def _planted(n_patterns: int):
    from convseq_neo.detect import detect
    from convseq_neo.synthetic.generate import sequence_recording

    recording = sequence_recording(n_patterns=n_patterns, random_state=0, **PLANTED_RECIPE)
    result = detect(recording.spiketrains, PLANTED_RECIPE["bin_size"], PLANTED_WIDTH, n_patterns=n_patterns,
                    random_state=0)
    assert result.raster.shape == recording.raster.shape
    assert (result.raster.to_scipy() != recording.raster.to_scipy()).nnz == 0  # the core saw recording.raster
    return recording, result


@pytest.fixture(scope="session")
def planted_one():
    """``(recording, result)``: one planted sequence and ``detect`` at package defaults (seed 0)."""
    return _planted(1)


@pytest.fixture(scope="session")
def planted_two():
    """``(recording, result)``: two disjoint planted sequences and ``detect`` with ``n_patterns=2``."""
    return _planted(2)
