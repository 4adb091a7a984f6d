"""The independent pieces of a fit, run in this process or as tasks on a ``dask.distributed`` client.

A cross-fitted fit trains ``1 + n_folds`` models (the all-data model and one per fold) that never
see each other's results, then samples the surrogate null in chunks that do not depend on each
other. :func:`run_tasks` runs such a list of calls one after another, or submits them to a
``distributed.Client`` and gathers them in the same order. Every model and every chunk draws from
its own seed, taken from the fit's ``random_state`` before any piece runs, and each model stops by
its own rule, so the same seed gives the same result with or without a client up to float
rounding (the models may train in batches of other sizes, whose sums can round differently, and
training carries that forward).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence

from tqdm.auto import tqdm

from convseq_neo._threads import limited_threads

logger = logging.getLogger(__name__)

__all__ = ["check_client", "cluster_slots", "run_tasks", "worker_threads"]


def check_client(client, name: str = "client"):
    """``client`` itself when it is ``None`` or a ``distributed.Client``; a TypeError otherwise."""
    if client is None:
        return None
    try:
        from distributed import Client
    except ImportError as err:  # pragma: no cover - the cluster extra is missing
        raise TypeError(f"{name} needs dask.distributed: pip install 'convseq_neo[cluster]'") from err
    if not isinstance(client, Client):
        raise TypeError(f"{name} must be None or a distributed.Client, got {type(client).__name__}")
    if client.status not in ("running", "connecting", "newly-created"):
        raise ValueError(f"{name} is not connected to a scheduler (status {client.status!r})")
    return client


def worker_threads() -> int:
    """Threads a task may use: 1, since a dask worker runs one task per thread it has."""
    return 1


def cluster_slots(client) -> int:
    """Tasks ``client``'s cluster runs at once (the sum of its workers' threads; at least 1)."""
    workers = client.scheduler_info().get("workers", {})
    return max(1, sum(int(info.get("nthreads", 1)) for info in workers.values()))


def _on_worker(function: Callable, arguments: tuple, shared: dict):
    with limited_threads(worker_threads()):
        return function(*arguments, **shared)


def run_tasks(function: Callable, arguments: Sequence[tuple], *, shared: dict | None = None, client=None,
              progress: bool = False, description: str = "tasks") -> list:
    """``[function(*args, **shared) for args in arguments]``, in this process or on ``client``.

    Parameters
    ----------
    function : callable
        A module-level function (it is pickled to the workers).
    arguments : sequence of tuple
        The positional arguments of each call.
    shared : dict, optional
        Keyword arguments common to every call (the raster, say): with a client they are scattered
        once and every task reads the workers' copy.
    client : distributed.Client, optional
        Run the calls as tasks on its cluster. A worker runs one task per thread it has, so each
        task limits torch and BLAS to one thread. A task whose worker dies is re-run on another worker by the scheduler.
    progress : bool
        A bar over the finished calls.
    description : str
        The bar's label, and a prefix of the task keys.

    Returns
    -------
    list
        The calls' results, in the order of ``arguments``.

    Examples
    --------
    >>> from operator import add
    >>> run_tasks(add, [(1, 2), (3, 4)])
    [3, 7]
    """
    shared = dict(shared or {})
    if client is None:
        with tqdm(total=len(arguments), desc=description, disable=not progress, leave=False) as bar:
            results = []
            for args in arguments:
                results.append(function(*args, **shared))
                bar.update(1)
        return results
    from distributed import as_completed

    scattered = {name: client.scatter(value, broadcast=False, hash=False) for name, value in shared.items()}
    prefix = f"convseq-{description.replace(' ', '-')}-{os.getpid()}"
    futures = [client.submit(_on_worker, function, tuple(args), scattered, pure=False, key=f"{prefix}-{index}-"
                             f"{os.urandom(4).hex()}") for index, args in enumerate(arguments)]
    logger.info("%s: %d tasks submitted to %s", description, len(futures), client)
    with tqdm(total=len(futures), desc=description, disable=not progress, leave=False) as bar:
        for _ in as_completed(futures):
            bar.update(1)
    return client.gather(futures)
