"""How many cores a fit uses: ``n_jobs`` sets torch's and the BLAS libraries' threads for the fit only."""

from __future__ import annotations

import contextlib
import logging
import numbers
import os
from collections.abc import Iterator

import torch

logger = logging.getLogger(__name__)

__all__ = ["available_cores", "resolve_n_jobs", "limited_threads"]


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def resolve_n_jobs(n_jobs, name: str = "n_jobs") -> int:
    """Threads for ``n_jobs``: ``None`` keeps torch's setting, ``-1`` every available core, an int that many.

    Torch's setting defaults to the cores the process may use and follows ``OMP_NUM_THREADS``, so
    ``None`` uses the machine unless the environment says otherwise. An int is capped at the
    available cores.

    Examples
    --------
    >>> resolve_n_jobs(1)
    1
    >>> resolve_n_jobs(-1) == available_cores()
    True
    """
    if n_jobs is None:
        return torch.get_num_threads()
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, numbers.Integral) or (n_jobs < 1 and n_jobs != -1):
        raise ValueError(f"{name} must be None, -1 or a positive int, got {n_jobs!r}")
    if n_jobs == -1:
        return available_cores()
    return int(min(int(n_jobs), available_cores()))


@contextlib.contextmanager
def limited_threads(n_threads: int) -> Iterator[None]:
    """Run the block with ``n_threads`` torch and BLAS/OpenMP threads, then restore the previous settings."""
    previous = torch.get_num_threads()
    torch.set_num_threads(int(n_threads))
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - a declared dependency
        threadpool_limits = None
    try:
        if threadpool_limits is None:
            yield
        else:
            with threadpool_limits(limits=int(n_threads)):
                yield
    finally:
        torch.set_num_threads(previous)
