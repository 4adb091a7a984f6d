"""Held-out replication: do patterns learned on one part of a recording recur in another?

Without ground truth, the honest check of a detected pattern on real data is whether it recurs in
data it was not learned on, far more often than in the same data with the temporal relations
between neurons destroyed. :func:`held_out_replication` learns patterns on the first part of the
recording, then applies the fixed patterns (:meth:`DetectionResult.find`, each peak tested
against surrogates of the data it is applied to, each spike dithered by up to the width) to

- the held-out part, and
- the held-out part with each neuron's train circularly shifted by its own random offset (rates
  and each neuron's own temporal structure kept, coincidences across neurons destroyed).

A real pattern gives many significant occurrences on the first and few on the second.
"""

from __future__ import annotations

import logging
import numbers
from dataclasses import dataclass

import pandas as pd
import quantities as pq

from convseq_neo._validation import check_random_state
from convseq_neo.detect import detect
from convseq_neo.io.neo import plan_raster
from convseq_neo.raster import SpikeRaster
from convseq_neo.result import DetectionResult

logger = logging.getLogger(__name__)

__all__ = ["HeldOutReplication", "held_out_replication", "circular_shift"]


def circular_shift(raster: SpikeRaster, random_state=None) -> SpikeRaster:
    """Each neuron's row rolled by its own uniform random offset (wrapping around the end).

    Parameters
    ----------
    raster : SpikeRaster
    random_state : int, numpy.random.Generator or None

    Returns
    -------
    SpikeRaster
        Same shape, bin size, start time and spike counts per neuron.

    Examples
    --------
    >>> import numpy as np
    >>> from convseq_neo.raster import SpikeRaster
    >>> from convseq_neo.analysis.replication import circular_shift
    >>> raster = SpikeRaster.from_dense(np.eye(4, 10, dtype=int), bin_size_s=0.01)
    >>> shifted = circular_shift(raster, random_state=0)
    >>> shifted.to_dense().sum(axis=1).tolist()
    [1, 1, 1, 1]
    """
    if not isinstance(raster, SpikeRaster):
        raise TypeError(f"raster must be a SpikeRaster, got {type(raster).__name__}")
    rng = check_random_state(random_state)
    offsets = rng.integers(0, raster.n_bins, size=raster.n_neurons)
    shifted_bins = (raster.bin_index + offsets[raster.neuron_index]) % raster.n_bins
    return SpikeRaster(raster.neuron_index, shifted_bins, raster.counts, raster.n_neurons, raster.n_bins,
                       bin_size_s=raster.bin_size_s, t_start_s=raster.t_start_s, unit_names=raster.unit_names)


@dataclass(frozen=True, eq=False)
class HeldOutReplication:
    """Patterns learned on one part of a recording, applied to the rest and to a shifted copy of it.

    Attributes
    ----------
    learned : DetectionResult
        :func:`detect` on the training part.
    held_out : DetectionResult
        The learned patterns applied to the held-out part.
    shifted : DetectionResult
        The learned patterns applied to the held-out part with each neuron circularly shifted.
    split_time : pq.Quantity
        Where the recording was split (s); training is before it.
    """

    learned: DetectionResult
    held_out: DetectionResult
    shifted: DetectionResult
    split_time: pq.Quantity

    @property
    def counts(self) -> pd.DataFrame:
        """Significant occurrences per pattern: ``learned`` (on the training part), ``held_out``,
        ``shifted`` and ``ratio`` = held_out / max(shifted, 1)."""
        rows = []
        for pattern in range(self.learned.n_patterns):
            def count(result, k=pattern):
                return int((result.occurrences["pattern"] == k).sum())
            held, shifted = count(self.held_out), count(self.shifted)
            rows.append({"pattern": pattern, "n_members": self.learned.patterns[pattern].size,
                         "learned": count(self.learned), "held_out": held, "shifted": shifted,
                         "ratio": held / max(shifted, 1)})
        return pd.DataFrame(rows)

    def __repr__(self) -> str:
        table = self.counts
        return (f"HeldOutReplication(split at {float(self.split_time):g} s: held-out "
                f"{table.held_out.tolist()} vs shifted {table.shifted.tolist()} occurrences per pattern)")


def held_out_replication(spiketrains, bin_size=None, width=None, n_patterns: int = 1, *, split: float = 0.5,
                         t_start=None, t_stop=None, random_state=None, progress: bool = False,
                         **core_options) -> HeldOutReplication:
    """Learn patterns on the first part of a recording and count their recurrences in the rest.

    Parameters
    ----------
    spiketrains : list of neo.SpikeTrain, SpikeTrainList, neo.Segment, BinnedSpikeTrain or SpikeRaster
        The recording (as for :func:`convseq_neo.detect`).
    bin_size, width : pq.Quantity
        As for :func:`convseq_neo.detect`.
    n_patterns : int, default 1
    split : float, default 0.5
        Fraction of the window (in whole bins) used for training; the rest is held out.
    t_start, t_stop : pq.Quantity, optional
        Analysis window.
    random_state : int, numpy.random.Generator or None
        Seeds the fit, the surrogates and the circular shifts.
    progress : bool, default False
    **core_options
        Passed to :func:`convseq_neo.detect`.

    Returns
    -------
    HeldOutReplication

    Raises
    ------
    TypeError
        ``split`` not a number; the arguments :func:`convseq_neo.detect` rejects.
    ValueError
        ``split`` not strictly between 0 and 1, or leaving an empty part; as :func:`convseq_neo.detect`.

    Examples
    --------
    >>> import quantities as pq
    >>> from convseq_neo.synthetic.generate import sequence_recording
    >>> from convseq_neo.analysis.replication import held_out_replication
    >>> rec = sequence_recording(n_neurons=30, members_per_pattern=12, duration=80 * pq.s, rate=2 * pq.Hz,
    ...                          lag_step=10 * pq.ms, n_occurrences=40, jitter=2 * pq.ms, random_state=1)
    >>> check = held_out_replication(rec.spiketrains, bin_size=5 * pq.ms, width=200 * pq.ms, random_state=0,
    ...                              max_epochs=200, min_epochs=50, n_surrogates=40, n_folds=3)
    >>> counts = check.counts
    >>> bool(counts.held_out[0] >= 10 and counts.held_out[0] >= 3 * counts.shifted[0])
    True
    """
    if isinstance(split, bool) or not isinstance(split, numbers.Real):
        raise TypeError(f"split must be a number (a fraction strictly between 0 and 1), got {type(split).__name__}")
    if not 0 < float(split) < 1:
        raise ValueError(f"split must be a fraction strictly between 0 and 1, got {split!r}")
    if width is None:
        raise TypeError("width is required: pass a pq.Quantity such as 200 * pq.ms (the longest sequence to look for)")
    rng = check_random_state(random_state)
    raster = plan_raster(spiketrains, bin_size, t_start=t_start, t_stop=t_stop, width=width).bin()
    split_bin = int(round(float(split) * raster.n_bins))
    if not 0 < split_bin < raster.n_bins:
        raise ValueError(f"split {split} leaves an empty part of a {raster.n_bins}-bin recording")
    training, testing = raster.time_slice(0, split_bin), raster.time_slice(split_bin, raster.n_bins)
    seeds = rng.integers(0, 2**32, size=4)
    logger.info("held-out replication: training on bins [0, %d), testing on [%d, %d)", split_bin, split_bin,
                raster.n_bins)
    learned = detect(training, width=width, n_patterns=n_patterns, random_state=int(seeds[0]), progress=progress,
                     **core_options)
    held_out = learned.find(testing, random_state=int(seeds[1]))
    shifted = learned.find(circular_shift(testing, int(seeds[2])), random_state=int(seeds[3]))
    return HeldOutReplication(learned=learned, held_out=held_out, shifted=shifted,
                              split_time=raster.bin_to_time(split_bin).item() * pq.s)
