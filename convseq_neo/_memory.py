"""Will a fit fit in memory? An estimate from the sizes alone, checked before anything is allocated.

A bin size far too small for the recording (``bin_size=1 * pq.ns``, or ``--bin-size 1e-6ms`` on
the command line) gives billions of bins; binning stays cheap (the raster is sparse), but the fit
allocates several float arrays as long as the recording in bins, and the process fills all memory
until the kernel kills it. :func:`check_fit_memory` turns that into a ``ValueError`` that says how
many bins there are, roughly how much memory they need, how much is available and what to change.
:func:`~convseq_neo.io.neo.plan_raster` calls it for every detection before binning, and
:meth:`ConvSeq.fit <convseq_neo.core.estimator.ConvSeq.fit>` before training.

The estimate
------------
With ``L = n_bins + 1`` response bins, ``B = n_init * (1 + n_folds)`` filters trained together
(every restart of the all-data model and of each cross-fitting fold), ``K`` patterns, ``N``
neurons, ``W`` the width in bins and ``S`` spikes (when known), training and testing take the sum of:

- training: ``100 * B * L`` bytes, i.e. 25 float32 values per trained filter and response bin
  (the response, the loss's temporaries and their gradients, the masks, the copies read back for
  re-centring);
- results: ``100 * K * L`` bytes (per pattern: the responses of every model read back as numpy,
  ``responses_``, ``tested_responses_`` and ``thresholds_`` in float64, the peak search's copies);
- filters: ``48 * (B + K * (1 + n_folds)) * N * W`` bytes (softmax filters, logits, gradients,
  Adam's two moments and their bias-corrected copies, the kept filters);
- the null: ``8 * K * C * (L / max(n_folds, 1) + 3 W) + 32 * C * S`` bytes for the ``C``
  surrogate copies processed together (``C = min(n_surrogates, SURROGATE_SPIKE_BUDGET / S)``,
  ``n_surrogates`` when ``S`` is unknown);
- the operator: ``20 * S * W`` bytes for the sparse Toeplitz matrix and its transpose when
  ``S * W`` is at most ``MAX_TOEPLITZ_ENTRIES`` (the event backend streams otherwise);

and, before all of these, the operator's construction: ``84 * S * W`` bytes (int64 rows, columns,
values, their sort order and sorted copies), freed before training. The estimate is the larger of
the two phases, plus

- the raster: ``64 * S`` bytes (sparse triplets, the copy sorted by bin, the binning's
  temporaries), and ``4 * N * n_bins`` for a dense raster when ``backend="auto"`` would densify
  it (more than 5 % of the cells non-empty, at most ``MAX_DENSE_CELLS`` cells, and on the CPU only
  when the sparse Toeplitz operator would not fit);
- 64 MB that torch and the allocator take on first use (measured 95-124 MB in all for a 50 000-bin
  fit whose sized terms come to 90 MB).

Terms that need ``S`` are left out when it is unknown. Measured on the CPU (the fit's peak
resident memory, ``resource.getrusage``, above the memory in use before it; 60 neurons,
``n_init=2``, ``n_folds=5``, 20 epochs), a fit takes about 1.2-2 kB per bin: 49 MB for 20 000
bins, 310-470 MB for 200 000 bins (event and dense responses, ``W`` 60 and 600, ``K`` 1 to 3, 5
and 200 surrogates), 370 MB for 300 000 bins (``W`` 300, streamed), 1.5 GB for 1 000 000 bins;
and 2.3 GB for 300 000 bins when the Toeplitz operator (``W`` 300, 95 000 spikes: 28.5 million
entries) is built. With a fixed term of 32 MB this estimate was 1.05-1.5 times each of those; a
50 000-bin fit then peaked at 124 MB against its 122 MB estimate in a CI run, so the fixed term is
now 64 MB, which adds 32 MB to each estimate (at most about 2.2 times the smallest fit above):
conservative, not absurd.
"""

from __future__ import annotations

import logging
import numbers
import os
from pathlib import Path

import numpy as np

from convseq_neo._validation import check_positive_int

logger = logging.getLogger(__name__)

__all__ = ["available_memory_bytes", "estimate_fit_bytes", "check_fit_memory", "format_bytes"]

#: Used as the available memory when it cannot be read: no machine this runs on has more.
UNKNOWN_AVAILABLE_BYTES = 2**40
#: Spike entries the significance test applies filters to at once
#: (:data:`convseq_neo.core.significance.SURROGATE_SPIKE_BUDGET`, repeated here so that this
#: module does not load the core).
_SURROGATE_SPIKE_BUDGET = 4_000_000
#: :data:`convseq_neo.core.response.MAX_TOEPLITZ_ENTRIES`, repeated for the same reason.
_MAX_TOEPLITZ_ENTRIES = 30_000_000
#: A cgroup limit at least this large means "no limit".
_NO_LIMIT = 2**60

_TRAINING_BYTES = 100  # per trained filter and response bin
_RESULT_BYTES = 100  # per pattern and response bin
_FILTER_BYTES = 48  # per filter weight (N * W) of each trained or kept filter
_SURROGATE_BYTES = 8  # per pattern, surrogate copy and tested response bin
_SURROGATE_SPIKE_BYTES = 32  # per surrogate copy and spike
_SPIKE_BYTES = 64  # per spike of the raster
_FIXED_BYTES = 64_000_000  # torch's and the allocator's memory on first use (thread pools, workspaces, arenas)
_DENSE_BYTES = 4  # per cell of a dense raster (float32)
#: :data:`convseq_neo.core.response.MAX_DENSE_CELLS` and the density above which backend="auto" densifies.
_MAX_DENSE_CELLS = 120_000_000
_DENSE_DENSITY = 0.05
_TOEPLITZ_BYTES = 20  # per entry (spike x lag) of the sparse Toeplitz operator and its transpose
_TOEPLITZ_BUILD_BYTES = 84  # per entry while it is built (int64 rows, columns, values, sort order, copies)


def _meminfo_available(path: Path = Path("/proc/meminfo")) -> int | None:
    """``MemAvailable`` of ``/proc/meminfo`` in bytes (None when absent)."""
    try:
        text = path.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("MemAvailable:"):
            parts = line.split()
            try:
                return int(parts[1]) * (1024 if len(parts) < 3 or parts[2].lower() == "kb" else 1)
            except (IndexError, ValueError):
                return None
    return None


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    try:
        return int(text)
    except ValueError:
        return None  # "max": no limit


def _stat_value(path: Path, key: str) -> int:
    try:
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
    except (OSError, ValueError):
        pass
    return 0


def _cgroup_available(root: Path = Path("/sys/fs/cgroup")) -> int | None:
    """Bytes left under this container's cgroup memory limit (v2, else v1); None without a limit."""
    for limit_file, usage_file, stat_file, inactive in (
            (root / "memory.max", root / "memory.current", root / "memory.stat", "inactive_file"),
            (root / "memory" / "memory.limit_in_bytes", root / "memory" / "memory.usage_in_bytes",
             root / "memory" / "memory.stat", "total_inactive_file")):
        limit = _read_int(limit_file)
        if limit is None or limit >= _NO_LIMIT:
            continue
        usage = _read_int(usage_file)
        if usage is None:
            continue
        reclaimable = _stat_value(stat_file, inactive)  # page cache the kernel drops before killing anything
        return max(0, limit - max(0, usage - reclaimable))
    return None


def available_memory_bytes() -> int | None:
    """Memory a new allocation can take now, in bytes, or None when it cannot be told.

    On Linux, ``MemAvailable`` from ``/proc/meminfo`` (what the kernel can hand out without
    swapping), lowered to what is left under a container's cgroup memory limit when there is one;
    elsewhere ``psutil.virtual_memory().available`` when psutil is installed, else the free
    physical pages from ``os.sysconf``.

    Returns
    -------
    int or None

    Examples
    --------
    >>> available = available_memory_bytes()
    >>> available is None or available > 0
    True
    """
    available = _meminfo_available()
    if available is not None:
        limit = _cgroup_available()
        return available if limit is None else min(available, limit)
    try:
        import psutil
    except ImportError:
        psutil = None
    if psutil is not None:
        try:
            return int(psutil.virtual_memory().available)
        except Exception:  # pragma: no cover - platform-specific failures
            logger.debug("psutil could not read the available memory", exc_info=True)
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return None


def format_bytes(n_bytes: float) -> str:
    """A byte count for messages: ``'1.5 GB'``, ``'460 TB'`` (powers of 1000).

    Examples
    --------
    >>> format_bytes(1.5e9), format_bytes(4.6e14), format_bytes(512)
    ('1.5 GB', '460 TB', '512 B')
    """
    value = float(n_bytes)
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if value < 999.5 or unit == "PB":
            return f"{value:.3g} {unit}"
        value /= 1000.0
    raise AssertionError("unreachable")  # pragma: no cover


def _check_sizes(n_neurons, n_bins, width, n_patterns, n_init, n_folds, n_surrogates, n_spikes):
    sizes = (check_positive_int(n_neurons, "n_neurons"), check_positive_int(n_bins, "n_bins"),
             check_positive_int(width, "width"), check_positive_int(n_patterns, "n_patterns"),
             check_positive_int(n_init, "n_init"), check_positive_int(n_folds, "n_folds", minimum=0),
             check_positive_int(n_surrogates, "n_surrogates", minimum=0))
    if isinstance(n_spikes, numbers.Real) and not isinstance(n_spikes, (bool, np.bool_)) \
            and float(n_spikes).is_integer():
        n_spikes = int(n_spikes)  # SpikeRaster.n_spikes is a float
    spikes = None if n_spikes is None else check_positive_int(n_spikes, "n_spikes", minimum=0)
    return (*sizes, spikes)


def _terms(n_neurons: int, n_bins: int, width: int, n_patterns: int, n_init: int, n_folds: int, n_surrogates: int,
           n_spikes: int | None) -> dict[str, float]:
    """The estimate's terms in bytes (floats: the sizes may be far beyond any real machine)."""
    length = float(n_bins) + 1.0
    n_models = 1 + n_folds
    batch = n_init * n_models
    if n_spikes is None:
        copies = n_surrogates
        spikes = 0.0
    else:
        copies = min(n_surrogates, max(1, _SURROGATE_SPIKE_BUDGET // max(1, n_spikes)))
        spikes = float(n_spikes)
    cells = float(n_neurons) * float(n_bins)
    toeplitz = spikes * width if spikes * width <= _MAX_TOEPLITZ_ENTRIES else 0.0
    dense = cells if spikes > _DENSE_DENSITY * cells and cells <= _MAX_DENSE_CELLS and not toeplitz else 0.0
    return {
        "fixed": float(_FIXED_BYTES),
        "training": _TRAINING_BYTES * batch * length,
        "results": _RESULT_BYTES * n_patterns * length,
        "filters": _FILTER_BYTES * (batch + n_patterns * n_models) * float(n_neurons) * width,
        "null": (_SURROGATE_BYTES * n_patterns * copies * (length / max(n_folds, 1) + 3.0 * width)
                 + _SURROGATE_SPIKE_BYTES * copies * spikes),
        "raster": _SPIKE_BYTES * spikes + _DENSE_BYTES * dense,
        "operator": _TOEPLITZ_BYTES * toeplitz,
        "operator_build": _TOEPLITZ_BUILD_BYTES * toeplitz,
    }


def _total(terms: dict[str, float]) -> float:
    """The peak: the operator's construction comes before everything that training allocates."""
    during_fit = sum(terms[key] for key in ("operator", "training", "results", "filters", "null"))
    return terms["fixed"] + terms["raster"] + max(terms["operator_build"], during_fit)


def estimate_fit_bytes(n_neurons: int, n_bins: int, width: int, n_patterns: int = 1, n_init: int = 2,
                       n_folds: int = 5, *, n_surrogates: int = 200, n_spikes: int | None = None) -> float:
    """Peak memory a :class:`~convseq_neo.core.estimator.ConvSeq` fit needs, in bytes, from the sizes alone.

    The formula is in this module's docstring; it is conservative (about 1.05-2.2 times the measured
    peak) and costs nothing to evaluate.

    Parameters
    ----------
    n_neurons, n_bins : int
        Shape of the raster.
    width : int
        Filter width in bins.
    n_patterns, n_init, n_folds, n_surrogates : int
        As :class:`~convseq_neo.core.estimator.ConvSeq` (``n_folds=0``: no cross-fitting).
    n_spikes : int, optional
        Number of spikes (or non-empty cells); leaves out the raster's own terms when unknown.

    Returns
    -------
    float
        Bytes.

    Examples
    --------
    >>> round(estimate_fit_bytes(60, 60_000, 60) / 1e6)   # 5 min at 5 ms: about 170 MB
    165
    >>> f"{estimate_fit_bytes(60, 300_000_000_000, 300_000_000):.2g}"   # 5 min at 1 ns: hundreds of TB
    '5e+14'
    """
    sizes = _check_sizes(n_neurons, n_bins, width, n_patterns, n_init, n_folds, n_surrogates, n_spikes)
    return float(_total(_terms(*sizes)))


def check_fit_memory(n_neurons: int, n_bins: int, width: int, n_patterns: int = 1, n_init: int = 2,
                     n_folds: int = 5, *, n_surrogates: int = 200, n_spikes: int | None = None,
                     bin_size_s: float | None = None, available: int | None = None) -> float:
    """Raise ``ValueError`` when a fit of this size would not fit in the available memory.

    Call it before allocating anything that grows with the number of bins. It reads only the
    sizes (see :func:`estimate_fit_bytes`) and the memory available now
    (:func:`available_memory_bytes`).

    Parameters
    ----------
    n_neurons, n_bins : int
        Shape of the raster.
    width : int
        Filter width in bins.
    n_patterns, n_init, n_folds : int, default 1, 2, 5
        As :class:`~convseq_neo.core.estimator.ConvSeq` (``n_folds=0``: no cross-fitting).
    n_surrogates : int, default 200
        As :class:`~convseq_neo.core.estimator.ConvSeq`.
    n_spikes : int, optional
        Number of spikes, when known (refines the estimate).
    bin_size_s : float, optional
        The bin size in seconds, when the bins come from one (the message then names ``bin_size``).
    available : int, optional
        Bytes available (default: :func:`available_memory_bytes`; when that cannot be told,
        :data:`UNKNOWN_AVAILABLE_BYTES`, so that only absurd sizes are refused).

    Returns
    -------
    float
        The estimate in bytes (logged at DEBUG).

    Raises
    ------
    TypeError, ValueError
        A size that is not a positive int (named); ``ValueError`` when the estimate exceeds the
        available memory, saying how many bins there are, how much memory they need, how much is
        available and what to change.

    Examples
    --------
    >>> needed = check_fit_memory(60, 60_000, 60, available=16 * 10**9)
    >>> check_fit_memory(60, 300_000_000_000, 300_000_000, bin_size_s=1e-9, available=16 * 10**9)
    Traceback (most recent call last):
    ...
    ValueError: bin_size (1e-09 s) gives 300,000,000,000 bins over 300 s: a fit would need about 503 TB of memory, ...
    """
    sizes = _check_sizes(n_neurons, n_bins, width, n_patterns, n_init, n_folds, n_surrogates, n_spikes)
    terms = _terms(*sizes)
    needed = float(_total(terms))
    if available is None:
        available = available_memory_bytes()
        if available is None:
            logger.debug("the available memory cannot be told; refusing only fits above %s",
                         format_bytes(UNKNOWN_AVAILABLE_BYTES))
            available = UNKNOWN_AVAILABLE_BYTES
    logger.debug("a fit of %d neurons x %d bins (width %d bins) needs about %s (available: %s)", sizes[0], sizes[1],
                 sizes[2], format_bytes(needed), format_bytes(available))
    if needed <= available:
        return needed
    n_bins = sizes[1]
    if bin_size_s is not None:
        what = f"bin_size ({bin_size_s:g} s) gives {n_bins:,} bins over {n_bins * bin_size_s:g} s"
        fix = "use a larger bin_size (typically 1-10 ms) or a shorter window (t_start, t_stop)"
    else:
        what = f"a raster of {sizes[0]:,} neurons x {n_bins:,} bins"
        fix = "bin the recording with a larger bin size or fit a shorter part of it"
    if terms["filters"] > needed / 2:
        fix += f", or a shorter width ({sizes[2]:,} bins) or fewer neurons ({sizes[0]:,})"
    raise ValueError(f"{what}: a fit would need about {format_bytes(needed)} of memory, but only "
                     f"{format_bytes(available)} is available; {fix}")
