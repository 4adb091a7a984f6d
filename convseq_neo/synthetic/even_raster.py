"""A binned raster with one sequence planted at evenly spaced times: short recordings in a few lines.

:func:`~convseq_neo.synthetic.generate.sequence_recording` builds Neo spike trains at random times;
this builds the raster directly, for the short-recording checks of the tests and the benchmarks
(a few hundred bins, 8-15 occurrences), where evenly spaced occurrences keep every one of them
inside the recording.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from convseq_neo._validation import (
    check_nonnegative_float,
    check_positive_int,
    check_probability,
    check_random_state,
)

__all__ = ["EvenRaster", "evenly_planted_raster"]


class EvenRaster(NamedTuple):
    """What :func:`evenly_planted_raster` returns.

    Attributes
    ----------
    raster : ndarray of int8, shape (n_neurons, n_bins)
        Spike counts (0 or 1).
    centres : ndarray of float
        Each occurrence's centre, in bins (onset plus half the span).
    members : ndarray of int
        The member neurons, in their order in the sequence.
    lags : ndarray of int
        Each member's bin relative to the occurrence's onset.
    """

    raster: np.ndarray
    centres: np.ndarray
    members: np.ndarray
    lags: np.ndarray


def evenly_planted_raster(n_occurrences: int, *, n_neurons: int = 75, n_members: int = 20, span: int = 10,
                          background: float = 0.05, participation: float = 0.8, bins_per_occurrence: float = 55.5,
                          random_state=None) -> EvenRaster:
    """A Bernoulli background with one sequence planted ``n_occurrences`` times, evenly spaced.

    The recording has ``round(bins_per_occurrence * n_occurrences)`` bins; each bin of each neuron
    holds a spike with probability ``background``. ``n_members`` neurons drawn at random take lags
    spread evenly over ``span`` bins (``round(linspace(0, span - 1, n_members))``); in each
    occurrence every member fires at its lag with probability ``participation``, independently.
    Occurrence ``i`` starts at ``gap // 2 - span // 2 + i * gap`` with ``gap = n_bins // n_occurrences``.

    Parameters
    ----------
    n_occurrences : int
        Occurrences planted (at least 1).
    n_neurons, n_members, span : int
        Neurons, members (at most ``n_neurons``) and the sequence's span in bins (at most the gap).
    background, participation : float
        Spike probability per bin of the background, and per member and occurrence.
    bins_per_occurrence : float
        Recording length per occurrence, in bins.
    random_state : int, numpy.random.Generator or None
        Drives every draw (background, then members, then participation per occurrence).

    Returns
    -------
    EvenRaster

    Examples
    --------
    >>> planted = evenly_planted_raster(8, random_state=0)
    >>> planted.raster.shape, planted.centres[:2]
    ((75, 444), array([26.5, 81.5]))
    """
    n_occurrences = check_positive_int(n_occurrences, "n_occurrences")
    n_neurons = check_positive_int(n_neurons, "n_neurons")
    n_members = check_positive_int(n_members, "n_members")
    span = check_positive_int(span, "span")
    if n_members > n_neurons:
        raise ValueError(f"n_members ({n_members}) must be at most n_neurons ({n_neurons})")
    background = check_probability(background, "background")
    participation = check_probability(participation, "participation")
    bins_per_occurrence = check_nonnegative_float(bins_per_occurrence, "bins_per_occurrence", positive=True)
    n_bins = round(bins_per_occurrence * n_occurrences)
    gap = n_bins // n_occurrences
    if span > gap:
        raise ValueError(f"span ({span} bins) must fit between occurrences ({gap} bins apart: "
                         f"bins_per_occurrence={bins_per_occurrence!r})")
    rng = check_random_state(random_state)
    raster = (rng.random((n_neurons, n_bins)) < background).astype(np.int8)
    members = rng.choice(n_neurons, n_members, replace=False)
    lags = np.round(np.linspace(0, span - 1, n_members)).astype(int)
    onsets = gap // 2 - span // 2 + gap * np.arange(n_occurrences)
    for onset in onsets:
        kept = rng.random(n_members) < participation
        raster[members[kept], onset + lags[kept]] = 1
    return EvenRaster(raster, onsets + (span - 1) / 2, members, lags)
